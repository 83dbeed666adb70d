//! The RESP2 framing the harness uses (exercise `resp_codec` builds its own).

use crate::Frame;

/// The largest bulk string accepted (Redis's `proto-max-bulk-len` default: 512 MB).
const MAX_BULK: i64 = 512 * 1024 * 1024;
/// The longest line (type byte to `\r\n`) accepted before the frame is declared malformed.
const MAX_LINE: usize = 64 * 1024;

/// Parses one frame from the front of `buf`: `Ok(Some((frame, bytes used)))`, `Ok(None)` if
/// more bytes are needed, `Err` if what is there can never become a frame.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, String> {
    let Some((line, mut at)) = line(buf)? else {
        return Ok(None);
    };
    let (&kind, rest) = line.split_first().ok_or("empty line")?;
    let text = std::str::from_utf8(rest).map_err(|_| "line is not UTF-8")?;
    let number = || {
        text.parse::<i64>()
            .map_err(|_| format!("bad length or integer {text:?}"))
    };
    let frame = match kind {
        b'+' => Frame::Simple(text.to_string()),
        b'-' => Frame::Error(text.to_string()),
        b':' => Frame::Integer(number()?),
        b'$' => match number()? {
            -1 => Frame::Null,
            n if (0..=MAX_BULK).contains(&n) => {
                let end = at + n as usize;
                if buf.len() < end + 2 {
                    return Ok(None);
                }
                if &buf[end..end + 2] != b"\r\n" {
                    return Err("bulk string not followed by \\r\\n".into());
                }
                let bytes = buf[at..end].to_vec();
                at = end + 2;
                Frame::Bulk(bytes)
            }
            n => return Err(format!("bad bulk length {n}")),
        },
        b'*' => match number()? {
            -1 => Frame::Null,
            n if (0..=1024 * 1024).contains(&n) => {
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let Some((item, used)) = parse(&buf[at..])? else {
                        return Ok(None);
                    };
                    items.push(item);
                    at += used;
                }
                Frame::Array(items)
            }
            n => return Err(format!("bad array length {n}")),
        },
        other => return Err(format!("unknown frame type {:?}", other as char)),
    };
    Ok(Some((frame, at)))
}

/// The first line of `buf` without its `\r\n`, and where the next byte starts.
fn line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, String> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(end) => Ok(Some((&buf[..end], end + 2))),
        None if buf.len() > MAX_LINE => Err("line too long".into()),
        None => Ok(None),
    }
}

pub(crate) fn encode(frame: &Frame, out: &mut Vec<u8>) {
    match frame {
        Frame::Simple(s) => out.extend_from_slice(format!("+{s}\r\n").as_bytes()),
        Frame::Error(s) => out.extend_from_slice(format!("-{s}\r\n").as_bytes()),
        Frame::Integer(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
        Frame::Bulk(b) => {
            out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
            out.extend_from_slice(b);
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
