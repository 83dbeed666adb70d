//! Topic 17, `webhook_signatures`: a webhook receiver on localhost that checks each delivery with
//! the learner's `verify`, and the lab's deliveries (genuine, replayed, re-serialised, forged).
//!
//! | request | answer |
//! |---|---|
//! | `POST /webhook` with header `Webhook-Signature` and a raw body | `200 accepted`, or `400` and the [`Reject`] reason |
//!
//! The receiver's clock is a number of seconds the test or lab sets ([`Receiver::set_now`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use crate::client::{Client, Server};

/// The header that carries `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`.
pub const HEADER: &str = "webhook-signature";

/// Why a delivery is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// No header, no `t=`, a `t` that is not a number, or no `v1=` signature.
    Malformed,
    /// No `v1` signature matches the body under any of the secrets.
    NoValidSignature,
    /// The timestamp is further than the tolerance from now, in the past or the future.
    OutsideTolerance,
}

/// The learner's check: header, raw body, the receiver's secrets, now (unix seconds).
pub type VerifyFn = fn(&str, &[u8], &[&[u8]], u64) -> Result<(), Reject>;

#[derive(Clone)]
struct AppState {
    verify: VerifyFn,
    secrets: Arc<Vec<Vec<u8>>>,
    now: Arc<AtomicU64>,
    accepted: Arc<AtomicU64>,
}

/// A webhook receiver on localhost.
pub struct Receiver {
    pub server: Server,
    now: Arc<AtomicU64>,
    accepted: Arc<AtomicU64>,
}

impl Receiver {
    /// Starts a receiver that accepts deliveries signed with any of `secrets`.
    pub async fn start(verify: VerifyFn, secrets: &[&[u8]], now: u64) -> Receiver {
        let state = AppState {
            verify,
            secrets: Arc::new(secrets.iter().map(|s| s.to_vec()).collect()),
            now: Arc::new(AtomicU64::new(now)),
            accepted: Arc::new(AtomicU64::new(0)),
        };
        let (now, accepted) = (state.now.clone(), state.accepted.clone());
        let router = Router::new()
            .route("/webhook", post(receive))
            .with_state(state);
        Receiver {
            server: Server::start(router).await,
            now,
            accepted,
        }
    }

    pub fn set_now(&self, now: u64) {
        self.now.store(now, Ordering::SeqCst);
    }

    /// Deliveries accepted so far (the receiver's side effects: events processed).
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let Some(header) = headers.get(HEADER).and_then(|v| v.to_str().ok()) else {
        return (StatusCode::BAD_REQUEST, format!("{:?}", Reject::Malformed));
    };
    let secrets: Vec<&[u8]> = state.secrets.iter().map(Vec::as_slice).collect();
    let now = state.now.load(Ordering::SeqCst);
    match (state.verify)(header, &body, &secrets, now) {
        Ok(()) => {
            state.accepted.fetch_add(1, Ordering::SeqCst);
            (StatusCode::OK, "accepted".into())
        }
        Err(reject) => (StatusCode::BAD_REQUEST, format!("{reject:?}")),
    }
}

/// `POST /webhook` with the given signature header and raw body; the status code.
pub async fn deliver(client: &mut Client, header: &str, body: &[u8]) -> u16 {
    client
        .call(
            "POST",
            "/webhook",
            &[(HEADER, header), ("content-type", "application/json")],
            body.to_vec(),
        )
        .await
        .status
}

/// The same JSON with other bytes: what a proxy or a framework that parses and re-serialises
/// the body hands the receiver (keys sorted, whitespace dropped).
pub fn reserialise(body: &[u8]) -> Vec<u8> {
    let value: serde_json::Value = serde_json::from_slice(body).expect("a JSON body");
    serde_json::to_vec(&value).unwrap()
}

/// The learner's signer: the header for a delivery at `timestamp`, signed with each secret.
pub type SignFn = fn(&[&[u8]], u64, &[u8]) -> String;

/// The lab's knobs.
pub struct LabSetup {
    pub deliveries: u64,
    pub replay_after_secs: u64,
    pub sender_clock_ahead_secs: u64,
}

/// Sends each kind of delivery to a receiver running `verify` and prints how many it accepted.
pub fn lab(verify: VerifyFn, sign: SignFn, setup: &LabSetup) {
    let (old, new, wrong): (&[u8], &[u8], &[u8]) = (b"whsec_old", b"whsec_new", b"whsec_guess");
    let now = 1_700_000_000;
    let rows = sdlings_kit::lab::runtime().block_on(async {
        let mut rows = Vec::new();
        let kinds = [
            "genuine",
            "genuine, sender rotated to the new secret",
            "captured and replayed later",
            "re-serialised by a proxy",
            "signed with a guessed secret",
            "sender's clock ahead",
        ];
        for kind in kinds {
            let receiver = Receiver::start(verify, &[old, new], now).await;
            let mut client = receiver.server.client().await;
            let mut refused = std::collections::BTreeMap::<String, u64>::new();
            for i in 0..setup.deliveries {
                let body = format!(
                    "{{\"id\": \"evt_{i}\", \"type\": \"invoice.paid\", \"amount\": {}}}",
                    100 * i
                );
                let body = body.as_bytes();
                let (header, sent): (String, Vec<u8>) = match kind {
                    "genuine" => (sign(&[old], now, body), body.to_vec()),
                    "genuine, sender rotated to the new secret" => {
                        (sign(&[new], now, body), body.to_vec())
                    }
                    "captured and replayed later" => {
                        receiver.set_now(now + setup.replay_after_secs);
                        (sign(&[old], now, body), body.to_vec())
                    }
                    "re-serialised by a proxy" => (sign(&[old], now, body), reserialise(body)),
                    "signed with a guessed secret" => (sign(&[wrong], now, body), body.to_vec()),
                    _ => (
                        sign(&[old], now + setup.sender_clock_ahead_secs, body),
                        body.to_vec(),
                    ),
                };
                let response = client
                    .call("POST", "/webhook", &[(HEADER, header.as_str())], sent)
                    .await;
                if response.status != 200 {
                    *refused.entry(response.text()).or_default() += 1;
                }
            }
            let why: Vec<String> = refused.iter().map(|(r, n)| format!("{r} x{n}")).collect();
            rows.push([
                kind.to_string(),
                setup.deliveries.to_string(),
                receiver.accepted().to_string(),
                if why.is_empty() {
                    "-".to_string()
                } else {
                    why.join(", ")
                },
            ]);
        }
        rows
    });
    println!(
        "receiver knows the old and the new secret; replays after {} s; sender clock {} s ahead\n",
        setup.replay_after_secs, setup.sender_clock_ahead_secs
    );
    let mut table = sdlings_kit::lab::Table::new(&["delivery", "sent", "accepted", "refused as"]);
    for row in &rows {
        table.row(row);
    }
    table.print();
}
