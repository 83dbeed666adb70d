// RESP codec — the wire format of Redis: an incremental parser and an encoder.
//
// Every Redis client sends commands as RESP arrays of bulk strings (`*3\r\n$3\r\nSET\r\n...`),
// and the server answers with simple strings, errors, integers, bulk strings, nulls and arrays.
// TCP delivers a byte stream, not messages: one `read` may hold half a command, or the end of
// one command and three more (a pipeline). A parser that assumes "one read is one command"
// works in a demo and loses commands under load. Values are binary: a bulk string may contain
// `\r\n`, so it is read by its declared length, never up to the next line end.
//
// Build `Parser` (bytes in with `feed`, complete frames out with `next_frame`) and `encode`.
// The property: whatever the split of the byte stream into reads, the same frames come out in
// the same order; incomplete input asks for more bytes; malformed input is an error, never a
// hang, a panic or a huge allocation.
//
// Lab: a pipeline of SETs is fed to the parser in reads of different sizes. Turn `VALUE_SIZE`
// up and watch the cost per command follow the bytes, and small reads cost more per byte.

use std::time::Instant;

use sdlings_kit::lab::Table;
use sdlings_kit_resp::Frame;

// ---- Your part -------------------------------------------------------------------------------

/// The largest bulk string accepted (Redis's `proto-max-bulk-len` default: 512 MB).
pub const MAX_BULK_LEN: usize = 512 * 1024 * 1024;
/// The longest line (`+...`, `:...`, `$...` up to `\r\n`) accepted before the input is declared
/// malformed: a peer that never sends `\r\n` must not make the buffer grow without bound.
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// Why the bytes can never become a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

/// An incremental RESP2 parser: bytes go in as they are read from the socket, frames come out
/// as soon as they are complete.
#[derive(Default)]
pub struct Parser {
    /// Bytes received; those before `start` were consumed by frames already returned.
    buf: Vec<u8>,
    start: usize,
}

impl Parser {
    pub fn new() -> Self {
        Parser::default()
    }

    /// Appends bytes just read from the connection.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame: `Ok(None)` if the buffered bytes do not hold one yet (keep
    /// them, read more), `Err` if they never will. Call it again after a frame: one read may
    /// hold several.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        // Parse from the start of the buffer without consuming anything; only a complete frame
        // consumes its bytes. An incomplete one is parsed again from its start after the next
        // read: simple, and cheap, because a bulk string's length is checked against the
        // buffer before a single byte of it is copied.
        match parse(&self.buf, self.start)? {
            Some((frame, end)) => {
                self.start = end;
                // Consumed bytes are dropped in bulk, not after every frame: draining each
                // frame would move the whole rest of a 64 KB read, for every command in it.
                if self.start == self.buf.len() || self.start > 64 * 1024 {
                    self.buf.drain(..self.start);
                    self.start = 0;
                }
                Ok(Some(frame))
            }
            None => Ok(None),
        }
    }
}

/// Parses one frame starting at `at`: the frame and the index just past it, or `None` if the
/// buffer ends first.
fn parse(buf: &[u8], at: usize) -> Result<Option<(Frame, usize)>, ProtocolError> {
    let Some((kind, line, mut next)) = line(buf, at)? else {
        return Ok(None);
    };
    let frame = match kind {
        b'+' => Frame::Simple(text(line)?.to_string()),
        b'-' => Frame::Error(text(line)?.to_string()),
        b':' => Frame::Integer(integer(line)?),
        b'$' => match integer(line)? {
            -1 => Frame::Null,
            n if n >= 0 && n as usize <= MAX_BULK_LEN => {
                // By length, not up to the next "\r\n": the value may contain one.
                let end = next + n as usize;
                if buf.len() < end + 2 {
                    return Ok(None);
                }
                if &buf[end..end + 2] != b"\r\n" {
                    return Err(ProtocolError("bulk string not followed by \\r\\n".into()));
                }
                let bytes = buf[next..end].to_vec();
                next = end + 2;
                Frame::Bulk(bytes)
            }
            n => return Err(ProtocolError(format!("invalid bulk length {n}"))),
        },
        b'*' => match integer(line)? {
            -1 => Frame::Null,
            n if n >= 0 => {
                // No `with_capacity(n)`: the count is the peer's claim, not memory we owe it.
                let mut items = Vec::new();
                for _ in 0..n {
                    let Some((item, end)) = parse(buf, next)? else {
                        return Ok(None);
                    };
                    items.push(item);
                    next = end;
                }
                Frame::Array(items)
            }
            n => return Err(ProtocolError(format!("invalid array length {n}"))),
        },
        other => return Err(ProtocolError(format!("unknown type byte {other:#04x}"))),
    };
    Ok(Some((frame, next)))
}

/// The line starting at `at`: its type byte, the rest up to `\r\n`, and the index after it.
fn line(buf: &[u8], at: usize) -> Result<Option<(u8, &[u8], usize)>, ProtocolError> {
    let rest = &buf[at..];
    match rest.windows(2).position(|w| w == b"\r\n") {
        Some(0) => Err(ProtocolError("empty line".into())),
        Some(end) => Ok(Some((rest[0], &rest[1..end], at + end + 2))),
        None if rest.len() > MAX_LINE_LEN => Err(ProtocolError("line too long".into())),
        None => Ok(None),
    }
}

fn text(line: &[u8]) -> Result<&str, ProtocolError> {
    std::str::from_utf8(line).map_err(|_| ProtocolError("line is not UTF-8".into()))
}

fn integer(line: &[u8]) -> Result<i64, ProtocolError> {
    let s = text(line)?;
    s.parse()
        .map_err(|_| ProtocolError(format!("invalid integer {s:?}")))
}

/// Appends the RESP2 encoding of `frame` to `out`.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) {
    match frame {
        Frame::Simple(s) => out.extend_from_slice(format!("+{s}\r\n").as_bytes()),
        Frame::Error(s) => out.extend_from_slice(format!("-{s}\r\n").as_bytes()),
        Frame::Integer(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
        Frame::Bulk(bytes) => {
            // The length in bytes, then the bytes as they are: binary safe.
            out.extend_from_slice(format!("${}\r\n", bytes.len()).as_bytes());
            out.extend_from_slice(bytes);
            out.extend_from_slice(b"\r\n");
        }
        Frame::Null => out.extend_from_slice(b"$-1\r\n"),
        Frame::Array(items) => {
            out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
            for item in items {
                encode(item, out);
            }
        }
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Commands in the pipeline, and the size of each SET's value.
const COMMANDS: usize = 20_000;
const VALUE_SIZE: usize = 100;
/// Sizes of the reads the stream is cut into.
const READ_SIZES: [usize; 4] = [7, 64, 1_500, 64 * 1024];

fn main() {
    let value = vec![b'x'; VALUE_SIZE];
    let mut stream = Vec::new();
    for i in 0..COMMANDS {
        let cmd = [
            b"SET".to_vec(),
            format!("key:{i}").into_bytes(),
            value.clone(),
        ];
        encode(&Frame::command(cmd), &mut stream);
    }
    println!(
        "{COMMANDS} pipelined SETs of {VALUE_SIZE}-byte values, parsed in reads of each size:"
    );
    let mut table = Table::new(&["read size", "commands", "MB/s", "ns/command"]);
    for size in READ_SIZES {
        let (mut parser, start, mut commands) = (Parser::new(), Instant::now(), 0);
        for chunk in stream.chunks(size) {
            parser.feed(chunk);
            while parser.next_frame().expect("well-formed").is_some() {
                commands += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let (mb_s, ns) = (
            stream.len() as f64 / secs / 1e6,
            secs * 1e9 / commands as f64,
        );
        table.row(&[size, commands, mb_s as usize, ns as usize]);
    }
    table.print();
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use redis::Value;
    use sdlings_kit::property::for_seeds;
    use sdlings_kit_resp::generate;

    use super::*;

    const CASES: u64 = 200;

    /// Feeds `bytes` in pieces cut at `cuts`, collecting every frame and failing on an error.
    fn parse_in_pieces(bytes: &[u8], cuts: &[usize]) -> Vec<Frame> {
        let mut parser = Parser::new();
        let mut frames = Vec::new();
        let mut from = 0;
        for &to in cuts.iter().chain([&bytes.len()]) {
            parser.feed(&bytes[from..to]);
            from = to;
            while let Some(f) = parser
                .next_frame()
                .expect("well-formed input is never an error")
            {
                frames.push(f);
            }
        }
        frames
    }

    fn one(bytes: &[u8]) -> Result<Option<Frame>, ProtocolError> {
        let mut parser = Parser::new();
        parser.feed(bytes);
        parser.next_frame()
    }

    fn encoded(frame: &Frame) -> Vec<u8> {
        let mut out = Vec::new();
        encode(frame, &mut out);
        out
    }

    #[test]
    fn a_set_command_in_one_read_parses_to_an_array_of_bulk_strings() {
        let frame = one(b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n").unwrap();
        assert_eq!(frame, Some(Frame::command(["SET", "key", "value"])));
    }

    #[test]
    fn every_reply_type_parses_from_its_known_bytes() {
        let cases: [(&[u8], Frame); 10] = [
            (b"+OK\r\n", Frame::ok()),
            (b":9223372036854775807\r\n", Frame::Integer(i64::MAX)),
            (b":-9223372036854775808\r\n", Frame::Integer(i64::MIN)),
            (
                b"-ERR unknown command 'FOO'\r\n",
                Frame::error("ERR unknown command 'FOO'"),
            ),
            (b":-42\r\n", Frame::Integer(-42)),
            (b"$0\r\n\r\n", Frame::bulk("")),
            (b"$-1\r\n", Frame::Null),
            (b"*-1\r\n", Frame::Null),
            (b"*0\r\n", Frame::Array(vec![])),
            (
                b"*2\r\n:1\r\n*1\r\n$1\r\nx\r\n",
                Frame::Array(vec![
                    Frame::Integer(1),
                    Frame::Array(vec![Frame::bulk("x")]),
                ]),
            ),
        ];
        for (bytes, want) in cases {
            let got = one(bytes);
            assert_eq!(got, Ok(Some(want)), "{:?}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn every_frame_type_encodes_to_its_known_bytes() {
        let cases: [(Frame, &[u8]); 6] = [
            (Frame::ok(), b"+OK\r\n"),
            (Frame::error("ERR no"), b"-ERR no\r\n"),
            (Frame::Integer(-7), b":-7\r\n"),
            (Frame::bulk("é\r\n"), b"$4\r\n\xc3\xa9\r\n\r\n"),
            (Frame::Null, b"$-1\r\n"),
            (
                Frame::Array(vec![Frame::bulk(""), Frame::Array(vec![])]),
                b"*2\r\n$0\r\n\r\n*0\r\n",
            ),
        ];
        for (frame, want) in cases {
            assert_eq!(
                encoded(&frame),
                want,
                "encoding {frame:?}; the null bulk is $-1, the empty one $0"
            );
        }
    }

    #[test]
    fn a_command_split_at_every_byte_boundary_parses_the_same() {
        for_seeds(CASES, |rng| {
            let (bytes, want) = generate::command(rng);
            for cut in 0..=bytes.len() {
                let mut parser = Parser::new();
                parser.feed(&bytes[..cut]);
                if cut < bytes.len() {
                    assert_eq!(
                        parser.next_frame(),
                        Ok(None),
                        "only {cut} of {} bytes of {:?} arrived: no frame yet, no error",
                        bytes.len(),
                        String::from_utf8_lossy(&bytes)
                    );
                }
                parser.feed(&bytes[cut..]);
                assert_eq!(
                    parser.next_frame(),
                    Ok(Some(want.clone())),
                    "split at byte {cut} of {:?}",
                    String::from_utf8_lossy(&bytes)
                );
                assert_eq!(parser.next_frame(), Ok(None), "one command, one frame");
            }
        });
    }

    #[test]
    fn a_pipeline_cut_into_random_reads_gives_every_command_in_order() {
        for_seeds(CASES, |rng| {
            let mut stream = Vec::new();
            let mut want = Vec::new();
            for _ in 0..rng.random_range(1..12) {
                let (bytes, frame) = generate::command(rng);
                stream.extend(bytes);
                want.push(frame);
            }
            let mut cuts: Vec<usize> = (0..rng.random_range(0..6))
                .map(|_| rng.random_range(0..=stream.len()))
                .collect();
            cuts.sort_unstable();
            assert_eq!(
                parse_in_pieces(&stream, &cuts),
                want,
                "reads cut at {cuts:?}: one read may end mid-command or hold several"
            );
        });
    }

    #[test]
    fn a_long_stream_with_values_beyond_the_line_limit_parses_in_any_reads() {
        // Megabytes of pipeline, some values larger than MAX_LINE_LEN (the line limit is for
        // lines, not for what is buffered), cut into reads that end anywhere.
        for_seeds(6, |rng| {
            let (mut stream, mut want) = (Vec::new(), Vec::new());
            for i in 0..300 {
                let len = match rng.random_range(0..20) {
                    0 => rng.random_range(MAX_LINE_LEN..3 * MAX_LINE_LEN),
                    _ => rng.random_range(0..64),
                };
                let value: Vec<u8> = (0..len).map(|j| b"\r\n$*x"[(i + j) % 5]).collect();
                let frame = Frame::command([b"SET".to_vec(), format!("k{i}").into_bytes(), value]);
                stream.extend(encoded(&frame));
                want.push(frame);
            }
            let (mut cuts, mut at) = (Vec::new(), 0);
            loop {
                at += rng.random_range(1..20_000);
                if at >= stream.len() {
                    break;
                }
                cuts.push(at);
            }
            let got = parse_in_pieces(&stream, &cuts);
            let first_wrong = got.iter().zip(&want).position(|(g, w)| g != w);
            assert!(
                got.len() == want.len() && first_wrong.is_none(),
                "{} bytes in {} reads: {} of {} frames, first wrong at {first_wrong:?}",
                stream.len(),
                cuts.len() + 1,
                got.len(),
                want.len()
            );
        });
    }

    #[test]
    fn two_commands_in_one_read_are_two_frames() {
        let mut parser = Parser::new();
        parser.feed(b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4");
        assert_eq!(parser.next_frame(), Ok(Some(Frame::command(["PING"]))));
        assert_eq!(
            parser.next_frame(),
            Ok(Some(Frame::command(["GET", "k"]))),
            "the second command was in the same read: keep the bytes after the first frame"
        );
        assert_eq!(parser.next_frame(), Ok(None), "the third is incomplete");
        parser.feed(b"\r\nPING\r\n");
        assert_eq!(
            parser.next_frame(),
            Ok(Some(Frame::command(["PING"]))),
            "the start of the third command was kept until the rest came"
        );
    }

    #[test]
    fn bulk_strings_are_binary_safe_and_read_by_length() {
        let value = b"line one\r\n$3\r\n*1\r\n\x00\xff".to_vec();
        let bytes = encoded(&Frame::command([
            b"SET".to_vec(),
            b"k".to_vec(),
            value.clone(),
        ]));
        assert_eq!(
            parse_in_pieces(&bytes, &[20]),
            vec![Frame::command([b"SET".to_vec(), b"k".to_vec(), value])],
            "a value containing \\r\\n is read by its declared length"
        );
    }

    #[test]
    fn any_frame_round_trips_through_encode_and_parse() {
        for_seeds(CASES, |rng| {
            let frames: Vec<Frame> = (0..rng.random_range(1..5))
                .map(|_| generate::frame(rng))
                .collect();
            let bytes: Vec<u8> = frames.iter().flat_map(encoded).collect();
            let cut = rng.random_range(0..=bytes.len());
            assert_eq!(
                parse_in_pieces(&bytes, &[cut]),
                frames,
                "encoded as {:?}",
                String::from_utf8_lossy(&bytes)
            );
        });
    }

    #[test]
    fn a_real_clients_parser_reads_what_encode_writes() {
        fn value(f: &Frame) -> Value {
            match f {
                Frame::Simple(s) if s == "OK" => Value::Okay,
                Frame::Simple(s) => Value::SimpleString(s.clone()),
                Frame::Integer(n) => Value::Int(*n),
                Frame::Bulk(b) => Value::BulkString(b.clone()),
                Frame::Null => Value::Nil,
                Frame::Array(items) => Value::Array(items.iter().map(value).collect()),
                Frame::Error(_) => unreachable!(),
            }
        }
        for_seeds(CASES, |rng| {
            let frame = generate::frame(rng);
            if format!("{frame:?}").contains("Error(") {
                return; // redis-rs turns an error reply into an Err
            }
            let bytes = encoded(&frame);
            let theirs = redis::parse_redis_value(&bytes).unwrap_or_else(|e| {
                panic!(
                    "redis-rs cannot parse {:?}: {e}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            assert_eq!(
                theirs,
                value(&frame),
                "redis-rs reads {:?} differently",
                String::from_utf8_lossy(&bytes)
            );
        });
    }

    #[test]
    fn incomplete_input_asks_for_more_bytes_and_is_never_an_error() {
        // Up to 512 MB is allowed; a huge array count is a claim, not memory to reserve.
        let max = format!("${MAX_BULK_LEN}\r\n");
        for bytes in [
            max.as_bytes(),
            b"*2147483647\r\n:1\r\n",
            &b""[..],
            b"*",
            b"*2\r",
            b"*2\r\n$3\r\nGET\r\n",
            b"$5\r\nab",
            b"$5\r\nabcde",
            b"$5\r\nabcde\r",
            b"$1000000\r\nxyz",
            b":12",
        ] {
            assert_eq!(
                one(bytes),
                Ok(None),
                "{:?} is the start of a valid frame",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn malformed_input_is_an_error_not_a_hang_or_a_panic() {
        let huge = format!("${}\r\n", MAX_BULK_LEN + 1);
        let cases: [&[u8]; 16] = [
            b"?x\r\n",
            b":9223372036854775808\r\n",
            b"$99999999999999999999\r\n",
            b"*-9223372036854775809\r\n",
            b":-\r\n",
            b":12\n:3\r\n",
            b"\r\n",
            b"$abc\r\n",
            b"$-2\r\n",
            b"*-3\r\n",
            b":12a\r\n",
            b":\r\n",
            b"$3\r\nfooXY",
            b"*1\r\n$1\r\nab\r\n",
            huge.as_bytes(),
            b"*2\r\n!\r\n",
        ];
        for bytes in cases {
            assert!(
                one(bytes).is_err(),
                "{:?} can never become a valid frame: report it rather than wait for more",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn a_line_that_never_ends_is_an_error_before_the_buffer_grows_without_bound() {
        let mut parser = Parser::new();
        parser.feed(b"+");
        let mut verdict = Ok(None);
        for _ in 0..(MAX_LINE_LEN / 1024 + 2) {
            parser.feed(&[b'a'; 1024]);
            verdict = parser.next_frame();
            if verdict.is_err() {
                break;
            }
        }
        assert!(
            verdict.is_err(),
            "{} bytes without \\r\\n: a peer that never ends its line is malformed",
            MAX_LINE_LEN + 1024
        );
    }
}
