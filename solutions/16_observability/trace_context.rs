// trace_context — the W3C `traceparent` header that stitches one request's spans into a trace.
//
// A request crosses a gateway, a checkout service and a payment service; each emits spans. To
// draw them as one trace, every call carries `traceparent: 00-<trace-id>-<parent-id>-<flags>`
// (W3C Trace Context, used by OpenTelemetry, Jaeger, Datadog, AWS X-Ray, every major vendor).
// A service that misreads it starts a new trace, and the request's story is cut in two; one that
// accepts garbage (upper case, zeros) joins spans from unrelated requests.
//
// Build `parse` (exactly the spec's grammar: version 2 hex digits, not `ff`; trace-id 32 and
// parent-id 16 lowercase hex digits, neither all zeros; flags 2 hex digits; version 00 is exactly
// 55 characters, a later version may append `-...` fields), `to_header` (version 00), `sampled`
// and `child` (the context sent on an outgoing call). The property: a valid header round-trips,
// anything else is rejected, and a child keeps the trace id and the sampled flag only.
//
// Lab: requests cross three services through proxies that sometimes mangle the header, emitting
// `tracing` spans. Turn MANGLE up and watch whole traces turn into fragments.

use rand::RngExt;
use sdlings_kit::observability::tracing_lab::{proxy, record_spans, report};
use sdlings_kit::workload::seeded_rng;

// ---- Your part -------------------------------------------------------------------------------

/// The `sampled` bit of the flags: the caller recorded its span, so callees should record theirs.
pub const SAMPLED: u8 = 0x01;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The whole request's id, the same in every span of the trace.
    pub trace_id: [u8; 16],
    /// The id of the caller's span: the parent of the span the receiver starts.
    pub parent_id: [u8; 8],
    pub flags: u8,
}

/// `bytes` as lowercase hex digits into `out`, or `None` if any is not one of `0-9a-f`.
fn decode_hex(text: &[u8], out: &mut [u8]) -> Option<()> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None, // upper case, '+', '-', anything else: the spec allows only lowercase
        }
    }
    if text.len() != out.len() * 2 {
        return None;
    }
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(())
}

impl TraceContext {
    /// Parses a `traceparent` value; `None` when it does not follow the spec.
    pub fn parse(header: &str) -> Option<TraceContext> {
        // Work on bytes: the grammar is ASCII, and slicing a `str` mid-character would panic.
        let h = header.as_bytes();
        if h.len() < 55 {
            return None;
        }
        let mut version = [0u8; 1];
        decode_hex(&h[0..2], &mut version)?;
        match version[0] {
            0xff => return None,                               // forbidden forever
            0x00 if h.len() != 55 => return None,              // version 00 has exactly four fields
            _ if h.len() > 55 && h[55] != b'-' => return None, // later versions append "-..."
            _ => {}
        }
        if h[2] != b'-' || h[35] != b'-' || h[52] != b'-' {
            return None;
        }
        let mut ctx = TraceContext {
            trace_id: [0; 16],
            parent_id: [0; 8],
            flags: 0,
        };
        decode_hex(&h[3..35], &mut ctx.trace_id)?;
        decode_hex(&h[36..52], &mut ctx.parent_id)?;
        let mut flags = [0u8; 1];
        decode_hex(&h[53..55], &mut flags)?;
        ctx.flags = flags[0];
        // All zeros means "no id": such a header is invalid, not a trace to join.
        if ctx.trace_id == [0; 16] || ctx.parent_id == [0; 8] {
            return None;
        }
        Some(ctx)
    }

    /// The header value, version 00, lowercase hex: `00-{trace_id}-{parent_id}-{flags}`.
    pub fn to_header(&self) -> String {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.parent_id),
            self.flags
        )
    }

    /// Whether the caller sampled (recorded) this trace.
    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    /// The context for an outgoing call from a new span: the same trace id, the new span's id as
    /// parent id (from `next_id`, drawn again while it returns all zeros), and only the sampled
    /// flag (version 00 defines no other bit, so unknown bits are not passed on).
    pub fn child(&self, mut next_id: impl FnMut() -> [u8; 8]) -> TraceContext {
        let span_id = std::iter::repeat_with(&mut next_id)
            .find(|id| *id != [0; 8])
            .expect("repeat_with never ends");
        TraceContext {
            trace_id: self.trace_id,
            parent_id: span_id,
            flags: self.flags & SAMPLED,
        }
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Requests sent through the three services.
const REQUESTS: usize = 2_000;
/// The probability that a proxy between two services damages or drops the header.
const MANGLE: f64 = 0.05;

fn main() {
    let services = ["gateway", "checkout", "payments"];
    let mut rng = seeded_rng(16);
    let ((), spans) = record_spans(|| {
        for _ in 0..REQUESTS {
            // The gateway receives no header: it starts the trace.
            let mut incoming: Option<String> = None;
            for service in services {
                let fresh_trace: [u8; 16] = rng.random();
                let mut id = || rng.random::<[u8; 8]>();
                let ctx = match incoming.as_deref().and_then(TraceContext::parse) {
                    Some(parent) => parent.child(&mut id),
                    // Nothing valid arrived: a new trace, sampled, rooted here.
                    None => TraceContext {
                        trace_id: fresh_trace,
                        parent_id: [0; 8],
                        flags: SAMPLED,
                    }
                    .child(&mut id),
                };
                let parent = incoming.as_deref().and_then(TraceContext::parse);
                let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
                let span = tracing::info_span!(
                    "request",
                    service,
                    trace_id = hex(&ctx.trace_id).as_str(),
                    span_id = hex(&ctx.parent_id).as_str(),
                    parent_id = parent.map_or("-".into(), |p| hex(&p.parent_id)).as_str(),
                );
                let _entered = span.enter();
                incoming = proxy(ctx.to_header(), &mut rng, MANGLE);
            }
        }
    });
    println!("{REQUESTS} requests through {services:?}, proxies mangling {MANGLE} of headers");
    report(&spans, REQUESTS, services.len());
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit::property::for_seeds;

    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn ids_from(ids: &[[u8; 8]]) -> impl FnMut() -> [u8; 8] + '_ {
        let mut it = ids.iter();
        move || {
            *it.next()
                .expect("child drew more ids than the test offered")
        }
    }

    #[test]
    fn parses_the_specs_example() {
        let ctx = TraceContext::parse(EXAMPLE).expect("the spec's own example is valid");
        assert_eq!(
            ctx.trace_id,
            [
                0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                0x47, 0x36
            ]
        );
        assert_eq!(
            ctx.parent_id,
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert_eq!(ctx.flags, 0x01);
        assert!(ctx.sampled());
        assert_eq!(
            ctx.to_header(),
            EXAMPLE,
            "a parsed header formats back unchanged"
        );
        let unsampled =
            TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
                .expect("flags 00 is valid: not sampled");
        assert!(!unsampled.sampled());
    }

    #[test]
    fn formats_with_leading_zeros_in_lowercase() {
        let ctx = TraceContext {
            trace_id: [0x0a; 16],
            parent_id: [0x01, 0, 0, 0, 0, 0, 0, 0xbc],
            flags: 0,
        };
        assert_eq!(
            ctx.to_header(),
            "00-0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-01000000000000bc-00",
            "every byte is two lowercase hex digits, zeros included"
        );
    }

    #[test]
    fn any_context_round_trips() {
        for_seeds(300, |rng| {
            let mut trace_id = rng
                .random::<[u8; 16]>()
                .map(|b| if rng.random_bool(0.3) { 0 } else { b });
            // A 64-bit id left-padded with zeros, or a half that happens to be zero: only all 32
            // digits zero make the id invalid.
            match rng.random_range(0..4) {
                0 => trace_id[..8].fill(0),
                1 => trace_id[8..].fill(0),
                _ => {}
            }
            let ctx = TraceContext {
                trace_id,
                parent_id: rng
                    .random::<[u8; 8]>()
                    .map(|b| if rng.random_bool(0.3) { 0 } else { b }),
                flags: rng.random(),
            };
            if ctx.trace_id == [0; 16] || ctx.parent_id == [0; 8] {
                return;
            }
            let header = ctx.to_header();
            assert_eq!(header.len(), 55, "{header}: version 00 is 55 characters");
            assert_eq!(
                TraceContext::parse(&header),
                Some(ctx),
                "{header} parses back to {ctx:?}"
            );
        });
    }

    #[test]
    fn rejects_what_the_spec_forbids() {
        for (bad, why) in [
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                "upper-case trace id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
                "upper-case parent id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
                "upper-case flags",
            ),
            (
                "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "upper-case version",
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "all-zero trace id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "all-zero parent id",
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "version ff is forbidden",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
                "a 31-digit trace id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e47366-0f067aa0ba902b7-01",
                "a 33-digit trace id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-701",
                "a 15-digit parent id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
                "a one-digit flags field",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
                "version 00 with a trailing dash",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-ab",
                "version 00 with a fifth field",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
                "a wrong separator",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7+01",
                "a wrong separator",
            ),
            (
                "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "a sign is not a hex digit",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-+0f067aa0ba902b7-01",
                "a sign is not a hex digit",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-+1",
                "a sign is not a hex digit",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4g36-00f067aa0ba902b7-01",
                "g is not a hex digit",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
                "x is not a hex digit",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0é736-00f067aa0ba902b7-01",
                "not ASCII (and 55 bytes)",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0é",
                "not ASCII at the end",
            ),
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01xyz",
                "a later version's extra data starts with a dash",
            ),
            ("", "empty"),
        ] {
            assert_eq!(
                TraceContext::parse(bad),
                None,
                "{bad:?}: {why}, so the header is invalid"
            );
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_four_fields() {
        for (header, why) in [
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09",
                "version 01, 55 characters",
            ),
            (
                "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-comes-next",
                "extra fields after a dash",
            ),
        ] {
            let ctx = TraceContext::parse(header).unwrap_or_else(|| {
                panic!("{header:?}: {why}: a later version must still be joined")
            });
            assert_eq!(
                ctx.flags, 0x09,
                "{header}: any flags byte parses; only the sampled bit has a meaning"
            );
            assert_eq!(
                ctx.to_header(),
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09",
                "we speak version 00"
            );
        }
    }

    #[test]
    fn a_valid_header_with_one_character_changed_is_judged_by_the_grammar() {
        // Every position, every replacement: 55 × 27 headers, each judged by the grammar.
        for at in 0..EXAMPLE.len() {
            for c in "0123456789abcdefABCDEFgz-+ ".bytes() {
                let mut header: Vec<u8> = EXAMPLE.bytes().collect();
                header[at] = c;
                let text = String::from_utf8(header).unwrap();
                let valid = if matches!(at, 2 | 35 | 52) {
                    c == b'-'
                } else {
                    c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
                } && !text.starts_with("ff");
                assert_eq!(
                    TraceContext::parse(&text).is_some(),
                    valid,
                    "{text:?} (position {at} set to {:?}): only lowercase hex digits in the \
                     fields and dashes between them are valid",
                    c as char
                );
            }
        }
    }

    #[test]
    fn a_child_keeps_the_trace_and_takes_a_new_span_id() {
        let parent = TraceContext::parse(EXAMPLE).unwrap();
        let id = [1, 2, 3, 4, 5, 6, 7, 8];
        let child = parent.child(ids_from(&[id]));
        assert_eq!(
            child.trace_id, parent.trace_id,
            "the same request, the same trace"
        );
        assert_eq!(
            child.parent_id, id,
            "the callee's parent is the new span, not the caller's parent"
        );
        assert_eq!(
            child.flags, SAMPLED,
            "the caller sampled, so the callee must too"
        );
        assert_eq!(
            child.to_header(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01"
        );
    }

    #[test]
    fn a_child_passes_on_the_sampled_flag_and_no_other_bit() {
        for flags in 0..=255u8 {
            let parent = TraceContext {
                trace_id: [7; 16],
                parent_id: [9; 8],
                flags,
            };
            let child = parent.child(ids_from(&[[5; 8]]));
            assert_eq!(
                child.flags,
                flags & SAMPLED,
                "flags {flags:#04x}: only the sampled bit travels on"
            );
            assert_eq!(
                child.sampled(),
                flags & SAMPLED != 0,
                "flags {flags:#04x}: sampled is bit 0"
            );
            assert_eq!(
                parent.sampled(),
                flags & SAMPLED != 0,
                "flags {flags:#04x}: sampled is bit 0"
            );
        }
    }

    #[test]
    fn a_child_never_takes_the_all_zero_span_id() {
        let parent = TraceContext::parse(EXAMPLE).unwrap();
        let child = parent.child(ids_from(&[[0; 8], [0; 8], [0, 0, 0, 0, 0, 0, 0, 3]]));
        assert_eq!(
            child.parent_id,
            [0, 0, 0, 0, 0, 0, 0, 3],
            "all zeros is not a span id (a receiver would reject the header): draw again"
        );
        assert!(TraceContext::parse(&child.to_header()).is_some());
    }
}
