//! Scaffolding for topic 18, the capstone: a Redis-compatible cache.
//!
//! - [`Frame`]: a RESP2 value (what travels on the wire, both ways).
//! - [`conn::Connection`]: one client's TCP connection, read as commands and written as frames
//!   (the framing of exercise `resp_codec`, done for the later exercises).
//! - [`server::spawn`]: a test harness that serves a command handler on a local port.
//! - [`client`]: a real Redis client (the `redis` crate) connected to such a server.
//! - [`lab`]: a load generator for the labs: many connections, pipelines of a chosen depth.
//! - [`replication`]: time a test moves by hand, the store a replica copies, its snapshot;
//!   [`peers`]: the far end of a replication link played by a test, and the lab's write loop.
//!
//! Never an answer: the exercises build the parser, the commands, the server loop, eviction,
//! the append-only file and replication themselves.

pub mod client;
mod codec;
pub mod conn;
pub mod generate;
pub mod lab;
pub mod peers;
pub mod replication;
pub mod server;

/// A command as clients send it: an array of bulk strings, name first (`SET`, `k`, `v`).
pub type Command = Vec<Vec<u8>>;

/// A RESP2 value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// `+OK\r\n`: a short status line, never containing `\r` or `\n`.
    Simple(String),
    /// `-ERR unknown command\r\n`: an error reply; the first word is its kind.
    Error(String),
    /// `:42\r\n`
    Integer(i64),
    /// `$3\r\nfoo\r\n`: binary safe, any bytes (even `\r\n`).
    Bulk(Vec<u8>),
    /// `$-1\r\n` (the null bulk string; a parser also reads the null array `*-1\r\n` as this).
    Null,
    /// `*2\r\n...`: an array of frames.
    Array(Vec<Frame>),
}

impl Frame {
    /// `+OK`
    pub fn ok() -> Frame {
        Frame::Simple("OK".into())
    }

    /// An error reply: `Frame::error("ERR value is not an integer or out of range")`.
    pub fn error(message: impl Into<String>) -> Frame {
        Frame::Error(message.into())
    }

    pub fn bulk(bytes: impl Into<Vec<u8>>) -> Frame {
        Frame::Bulk(bytes.into())
    }

    /// A command frame as a client sends it: an array of bulk strings.
    pub fn command<I, A>(args: I) -> Frame
    where
        I: IntoIterator<Item = A>,
        A: Into<Vec<u8>>,
    {
        Frame::Array(args.into_iter().map(|a| Frame::Bulk(a.into())).collect())
    }
}

/// The command's name in upper case (`set` and `SET` are the same command), for matching.
pub fn command_name(cmd: &[Vec<u8>]) -> String {
    cmd.first()
        .map(|n| String::from_utf8_lossy(n).to_ascii_uppercase())
        .unwrap_or_default()
}
