//! Seeded generators for the tests: commands as a real client packs them, and arbitrary frames.

use rand::{Rng, RngExt};

use crate::{Command, Frame};

/// A random command as the `redis` crate packs it, with the frame it must parse to. Its
/// arguments are short strings of bytes chosen to trip parsers: `\r`, `\n`, `$`, `*`, `0`, 0xff.
pub fn command(rng: &mut impl Rng) -> (Vec<u8>, Frame) {
    let name = ["SET", "GET", "INCR", "DEL"][rng.random_range(0..4)];
    let mut cmd = redis::cmd(name);
    let mut args = vec![Frame::bulk(name)];
    for _ in 0..rng.random_range(0..4) {
        let arg: Vec<u8> = (0..rng.random_range(0..12))
            .map(|_| b"a\r\n$*0\xff"[rng.random_range(0..7)])
            .collect();
        cmd.arg(&arg[..]);
        args.push(Frame::Bulk(arg));
    }
    (cmd.get_packed_command(), Frame::Array(args))
}

/// A random frame of any type, arrays nested up to two levels.
pub fn frame(rng: &mut impl Rng) -> Frame {
    frame_at(rng, 0)
}

fn frame_at(rng: &mut impl Rng, depth: u32) -> Frame {
    match rng.random_range(0..if depth < 2 { 6 } else { 5 }) {
        0 => Frame::Simple(["OK", "PONG", "", "FULLRESYNC x 0"][rng.random_range(0..4)].into()),
        1 => Frame::Error(format!("ERR e{}", rng.random_range(0..9))),
        2 => Frame::Integer(rng.random_range(-1_000_000i64..1_000_000)),
        3 => Frame::Bulk(
            (0..rng.random_range(0..6))
                .map(|_| b"\r\nx\xc3"[rng.random_range(0..4)])
                .collect(),
        ),
        4 => Frame::Null,
        _ => Frame::Array(
            (0..rng.random_range(0..4))
                .map(|_| frame_at(rng, depth + 1))
                .collect(),
        ),
    }
}

/// Fills a store, through `execute`, for tests of the expiry sweep; the test then moves its
/// clock on by exactly 1 s. `live` keys end without a TTL (a third of them had one, cleared by
/// a plain SET; `live` more had one and were deleted), `fresh` keys keep a TTL not yet passed (a
/// tenth of them exactly at their deadline 1 s later), `dead` keys expire within that second
/// (half of them got their TTL by a second SET of a key that already existed).
pub fn expiring_keys(
    mut execute: impl FnMut(Command) -> Frame,
    live: usize,
    fresh: usize,
    dead: usize,
) {
    let mut set = |name: String, px: &str| {
        let mut cmd: Command = vec![b"SET".to_vec(), name.into_bytes(), b"v".to_vec()];
        if !px.is_empty() {
            cmd.extend([b"PX".to_vec(), px.as_bytes().to_vec()]);
        }
        assert_eq!(execute(cmd), Frame::ok());
    };
    (0..live).for_each(|i| set(format!("l{i}"), if i % 3 == 0 { "500" } else { "" }));
    (0..live).for_each(|i| set(format!("l{i}"), ""));
    (0..live).for_each(|i| set(format!("g{i}"), "1000000"));
    (0..fresh).for_each(|i| {
        set(
            format!("f{i}"),
            if i % 10 == 0 { "1000" } else { "1000000" },
        )
    });
    (0..dead).for_each(|i| set(format!("d{i}"), if i % 2 == 0 { "" } else { "10" }));
    (0..dead).for_each(|i| set(format!("d{i}"), "10"));
    for i in 0..live {
        let del = vec![b"DEL".to_vec(), format!("g{i}").into_bytes()];
        assert_eq!(execute(del), Frame::Integer(1), "DEL g{i}");
    }
}
