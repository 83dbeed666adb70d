// Webhook signatures — the receiver accepts only what the sender signed, and only once in a while.
//
// A webhook endpoint is a public URL: anyone can POST `{"type": "invoice.paid"}` to it. Stripe,
// GitHub and Slack sign each delivery with a secret shared with the receiver. Stripe's scheme:
// the header `Stripe-Signature: t=1700000000,v1=<hex HMAC-SHA256 of "1700000000." + raw body>`,
// several `v1` entries while a secret is being rotated, and a 5-minute tolerance on `t` so that a
// captured delivery cannot be replayed tomorrow (the timestamp is signed, so it cannot be moved).
//
// Build the sender's `sign` and `signature_header` and the receiver's `verify`. The property:
// a delivery verifies exactly when one of its `v1` signatures is the HMAC of `t`, ".", and the
// raw body bytes under one of the receiver's secrets, and `t` is within TOLERANCE_SECS of now,
// either way; other schemes (`v0`) are ignored; the comparison runs in constant time. Lab:
// genuine, rotated, replayed, re-serialised and forged deliveries to a localhost receiver; turn
// REPLAY_AFTER_SECS below the tolerance and watch replays get through.

// At hand: `hmac` and `sha2` (Hmac<Sha256>, and its constant-time verify_slice).
use sdlings_kit_http::webhooks::{self, LabSetup, Reject};

// ---- Your part -------------------------------------------------------------------------------

/// How far a delivery's timestamp may be from the receiver's clock, in seconds (Stripe's default).
pub const TOLERANCE_SECS: u64 = 300;

/// The lowercase hex HMAC-SHA256, under `secret`, of `timestamp`, ".", then `body`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    todo!(
        "sign {} body bytes at {timestamp} with a {}-byte secret",
        body.len(),
        secret.len()
    )
}

/// The header value `t=<timestamp>,v1=<sig>[,v1=<sig>...]`: one signature per secret, in order.
pub fn signature_header(secrets: &[&[u8]], timestamp: u64, body: &[u8]) -> String {
    todo!(
        "the header for {} body bytes at {timestamp}, signed with {} secret(s)",
        body.len(),
        secrets.len()
    )
}

/// The receiver's check of one delivery: its header, its raw body, the secrets it accepts (the
/// current one and, during a rotation, the previous one), and the receiver's clock in seconds.
pub fn verify(header: &str, body: &[u8], secrets: &[&[u8]], now: u64) -> Result<(), Reject> {
    todo!(
        "check {header:?} over {} bytes against {} secret(s) at {now}",
        body.len(),
        secrets.len()
    )
}

// ---- Lab -------------------------------------------------------------------------------------

const DELIVERIES: u64 = 50;
/// When the attacker resends a captured delivery, in seconds after it was signed.
const REPLAY_AFTER_SECS: u64 = 600;
/// How far the sender's clock is ahead of the receiver's.
const SENDER_CLOCK_AHEAD_SECS: u64 = 30;

fn main() {
    let setup = LabSetup {
        deliveries: DELIVERIES,
        replay_after_secs: REPLAY_AFTER_SECS,
        sender_clock_ahead_secs: SENDER_CLOCK_AHEAD_SECS,
    };
    webhooks::lab(verify, signature_header, &setup);
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit_http::webhooks::{Receiver, deliver, reserialise};

    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret";
    const T: u64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1","amount": 1200}"#;

    #[test]
    fn sign_matches_known_hmac_sha256_vectors() {
        // Computed with Python's hmac module: hmac.new(key, b"<t>." + body, sha256).hexdigest().
        assert_eq!(
            sign(SECRET, T, BODY),
            "4914ef878f0e02e4db923b020fcb5278d5af41fcca2cd4201bc2cb7ac568ec9b",
            "HMAC-SHA256 of b\"1700000000.\" + the raw body, as lowercase hex"
        );
        assert_eq!(
            sign(SECRET, T, b""),
            "316b9ab98c15bfa039d243f3196acee619cf29749a91a634e6a8154e2f7b6727",
            "an empty body still signs \"<t>.\""
        );
        assert_eq!(
            sign(b"key", 0, b"hello"),
            "552b25b10c33de2db9fe7fa273d44ab105d596c023fa954d01444d4642487149"
        );
        assert_eq!(
            sign(b"key", 1 << 32, &[0xff, 0xfe, 0x00, 0x80]),
            "ad66ed92ca1482441e3d3a4642746f0b1bd0ad584e7923d540ba11cdb0cf47b4",
            "a timestamp past 32 bits, and a body of bytes that are not UTF-8: signed as they are"
        );
    }

    #[test]
    fn the_header_carries_the_timestamp_then_one_v1_signature_per_secret() {
        assert_eq!(
            signature_header(&[SECRET], T, BODY),
            format!("t={T},v1={}", sign(SECRET, T, BODY))
        );
        assert_eq!(
            signature_header(&[b"old", b"new"], 7, b"x"),
            format!(
                "t=7,v1={},v1={}",
                sign(b"old", 7, b"x"),
                sign(b"new", 7, b"x")
            ),
            "during a rotation the sender signs with both secrets"
        );
    }

    #[test]
    fn a_genuine_delivery_verifies_within_the_tolerance_on_either_side() {
        let header = signature_header(&[SECRET], T, BODY);
        for now in [T, T + 1, T + TOLERANCE_SECS, T - 1, T - TOLERANCE_SECS] {
            assert_eq!(
                verify(&header, BODY, &[SECRET], now),
                Ok(()),
                "signed at {T}, received at {now}: within {TOLERANCE_SECS} s (inclusive), and \
                 a sender's clock may be a little ahead of ours"
            );
        }
    }

    #[test]
    fn a_delivery_outside_the_tolerance_is_refused_in_the_past_and_in_the_future() {
        let header = signature_header(&[SECRET], T, BODY);
        for now in [
            T + TOLERANCE_SECS + 1,
            T + 86_400,
            T - TOLERANCE_SECS - 1,
            0,
        ] {
            assert_eq!(
                verify(&header, BODY, &[SECRET], now),
                Err(Reject::OutsideTolerance),
                "signed at {T}, received at {now}: a replayed (or post-dated) delivery"
            );
        }
    }

    #[test]
    fn changed_bytes_a_wrong_secret_or_a_moved_timestamp_do_not_verify() {
        let header = signature_header(&[SECRET], T, BODY);
        let cases: [(&str, String, &[u8], &[u8]); 5] = [
            ("wrong secret", header.clone(), BODY, b"whsec_other"),
            (
                "body re-serialised",
                header.clone(),
                &reserialise(BODY).leak()[..],
                SECRET,
            ),
            (
                "a byte appended",
                header.clone(),
                br#"{"id":"evt_1","amount": 1200} "#,
                SECRET,
            ),
            (
                "amount edited",
                header.clone(),
                br#"{"id":"evt_1","amount": 9200}"#,
                SECRET,
            ),
            (
                "t moved",
                header.replace(&format!("t={T}"), &format!("t={}", T + 1)),
                BODY,
                SECRET,
            ),
        ];
        for (what, header, body, secret) in cases {
            assert_eq!(
                verify(&header, body, &[secret], T),
                Err(Reject::NoValidSignature),
                "{what}: the signature covers the timestamp and the exact bytes sent"
            );
        }
    }

    #[test]
    fn during_a_rotation_any_secret_and_any_v1_signature_may_match() {
        let (old, new): (&[u8], &[u8]) = (b"whsec_old", b"whsec_new");
        for signed_with in [vec![old], vec![new], vec![old, new], vec![new, old]] {
            let header = signature_header(&signed_with, T, BODY);
            for knows in [vec![old, new], vec![new, old]] {
                assert_eq!(
                    verify(&header, BODY, &knows, T),
                    Ok(()),
                    "signed with {} secret(s), the receiver knows both: one match is enough",
                    signed_with.len()
                );
            }
        }
        let header = format!("t={T},v1={},v1={}", "ab".repeat(32), sign(new, T, BODY));
        assert_eq!(
            verify(&header, BODY, &[new], T),
            Ok(()),
            "the second v1 matches"
        );
        let header = signature_header(&[new], T, BODY);
        assert_eq!(
            verify(&header, BODY, &[old], T),
            Err(Reject::NoValidSignature)
        );
    }

    #[test]
    fn other_schemes_are_ignored_and_a_header_without_t_or_v1_is_malformed() {
        let good = sign(SECRET, T, BODY);
        let cases = [
            (format!("v0={good},t={T},v1={good}"), Ok(())),
            (format!("t={T},v0={good}"), Err(Reject::Malformed)),
            (
                format!("t={T},v0={good},v1={}", "00".repeat(32)),
                Err(Reject::NoValidSignature),
            ),
            (format!("v1={good}"), Err(Reject::Malformed)),
            (format!("t=soon,v1={good}"), Err(Reject::Malformed)),
            (format!("t={T}"), Err(Reject::Malformed)),
            (String::new(), Err(Reject::Malformed)),
            (format!("t={T},v1=not-hex"), Err(Reject::NoValidSignature)),
            (
                format!("t={T},v1={}", &good[..62]),
                Err(Reject::NoValidSignature),
            ),
        ];
        for (header, expected) in cases {
            assert_eq!(
                verify(&header, BODY, &[SECRET], T),
                expected,
                "header {header:?}: only v1 signatures count (v0 is another scheme), and t and \
                 at least one v1 are required"
            );
        }
    }

    #[test]
    fn verify_accepts_exactly_what_a_reference_check_accepts() {
        sdlings_kit::property::for_seeds(300, |rng| {
            let secrets: Vec<Vec<u8>> = (0..rng.random_range(1..4))
                .map(|i| format!("s{i}-{}", rng.random::<u16>()).into_bytes())
                .collect();
            let known: Vec<&[u8]> = secrets
                .iter()
                .take(rng.random_range(1..=secrets.len()))
                .map(Vec::as_slice)
                .collect();
            let signer: Vec<&[u8]> = secrets
                .iter()
                .skip(rng.random_range(0..secrets.len()))
                .map(Vec::as_slice)
                .collect();
            // Timestamps of any era: before and after 2038 (2^31 s) and 2106 (2^32 s).
            let t = match rng.random_range(0..4) {
                0 => rng.random_range(1_000..1_000_000u64),
                1 => rng.random_range(1_700_000_000..2_000_000_000),
                2 => rng.random_range(2_100_000_000..4_000_000_000),
                _ => rng.random_range(4_300_000_000..100_000_000_000),
            };
            let now = t.saturating_add_signed(rng.random_range(-400i64..400));
            let body: Vec<u8> = (0..rng.random_range(0..40)).map(|_| rng.random()).collect();
            let header = signature_header(&signer, t, &body);
            let signed_by_known = signer.iter().any(|s| known.contains(s));
            let expected = if !signed_by_known {
                Err(Reject::NoValidSignature)
            } else if now.abs_diff(t) > TOLERANCE_SECS {
                Err(Reject::OutsideTolerance)
            } else {
                Ok(())
            };
            let got = verify(&header, &body, &known, now);
            assert_eq!(
                got.is_ok(),
                expected.is_ok(),
                "t {t}, now {now}, header {header:?}"
            );
            if signed_by_known {
                assert_eq!(
                    got, expected,
                    "t {t}, now {now}: a genuine signature, so the time decides"
                );
            }
            if let Some(i) = (!body.is_empty()).then(|| rng.random_range(0..body.len())) {
                let mut forged = body.clone();
                forged[i] ^= rng.random_range(1..=255u8);
                assert_eq!(
                    verify(&header, &forged, &known, t),
                    Err(Reject::NoValidSignature),
                    "byte {i} of the body changed ({body:?} → {forged:?}): the signature covers \
                     the exact bytes"
                );
            }
        });
    }

    #[tokio::test]
    async fn over_http_the_receiver_takes_a_delivery_once_and_refuses_its_replay_and_its_copy() {
        let receiver = Receiver::start(verify, &[SECRET], T).await;
        let mut client = receiver.server.client().await;
        let header = signature_header(&[SECRET], T, BODY);
        assert_eq!(
            deliver(&mut client, &header, BODY).await,
            200,
            "genuine and on time"
        );
        assert_eq!(
            deliver(&mut client, &header, &reserialise(BODY)).await,
            400,
            "the same JSON, re-serialised: other bytes, so the signature does not verify"
        );
        receiver.set_now(T + 3600);
        assert_eq!(
            deliver(&mut client, &header, BODY).await,
            400,
            "replayed an hour later"
        );
        assert_eq!(receiver.accepted(), 1);
    }
}
