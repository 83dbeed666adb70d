//! One client's connection: commands in, frames out, over a real TCP stream.

use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Command, Frame, codec};

/// Flushes that sent bytes, per local port (a server's connections share its port).
static FLUSHES: Mutex<BTreeMap<u16, usize>> = Mutex::new(BTreeMap::new());

/// How many flushes that sent bytes the connections on local port `port` have made: the writes
/// a server listening there made, for tests that count them.
pub fn flushes_on(port: u16) -> usize {
    FLUSHES.lock().unwrap().get(&port).copied().unwrap_or(0)
}

/// A TCP connection read as RESP commands and written as RESP frames. Writes are buffered until
/// [`Connection::flush`]: a server answering a pipeline writes all the replies it can, then
/// flushes once (one system call, one packet, instead of one per reply).
pub struct Connection {
    stream: TcpStream,
    read: BytesMut,
    write: Vec<u8>,
}

impl Connection {
    pub fn new(stream: TcpStream) -> Self {
        // Replies go out when flushed, not when Nagle's algorithm decides (40 ms stalls).
        let _ = stream.set_nodelay(true);
        Connection {
            stream,
            read: BytesMut::with_capacity(16 * 1024),
            write: Vec::with_capacity(16 * 1024),
        }
    }

    /// The next command, reading from the socket only when the buffer holds no complete one.
    /// `Ok(None)` when the client closed the connection between commands; an error of kind
    /// `InvalidData` for a malformed frame or one that is not an array of bulk strings, and
    /// `UnexpectedEof` when the client closed in the middle of a command.
    pub async fn read_command(&mut self) -> io::Result<Option<Command>> {
        loop {
            if let Some(frame) = self.parse_buffered()? {
                return as_command(frame).map(Some);
            }
            if self.stream.read_buf(&mut self.read).await? == 0 {
                return if self.read.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    /// Frames (any kind) rather than commands: what a replica reads from its primary, or a
    /// primary from its replica. Cancel-safe (bytes read stay buffered), so it may race another
    /// future in a `tokio::select!`.
    pub async fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.parse_buffered()? {
                return Ok(Some(frame));
            }
            if self.stream.read_buf(&mut self.read).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// Does the read buffer already hold a complete frame (the rest of a pipeline)? A server
    /// flushes its replies when it does not: the client is waiting for them.
    pub fn has_buffered_command(&self) -> bool {
        matches!(codec::parse(&self.read), Ok(Some(_)))
    }

    /// Buffers `frame` for the next flush.
    pub fn write(&mut self, frame: &Frame) {
        codec::encode(frame, &mut self.write);
    }

    /// Sends everything written so far.
    pub async fn flush(&mut self) -> io::Result<()> {
        if let (false, Ok(local)) = (self.write.is_empty(), self.stream.local_addr()) {
            *FLUSHES.lock().unwrap().entry(local.port()).or_default() += 1;
        }
        self.stream.write_all(&self.write).await?;
        self.write.clear();
        self.stream.flush().await
    }

    /// The address of the peer.
    pub fn peer(&self) -> io::Result<std::net::SocketAddr> {
        self.stream.peer_addr()
    }

    fn parse_buffered(&mut self) -> io::Result<Option<Frame>> {
        match codec::parse(&self.read) {
            Ok(Some((frame, used))) => {
                self.read.advance(used);
                Ok(Some(frame))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}

fn as_command(frame: Frame) -> io::Result<Command> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "expected an array of bulk strings",
        )
    };
    match frame {
        Frame::Array(items) if !items.is_empty() => items
            .into_iter()
            .map(|f| match f {
                Frame::Bulk(b) => Ok(b),
                _ => Err(bad()),
            })
            .collect(),
        _ => Err(bad()),
    }
}

/// Parses one frame from the front of `buf`: `Ok(Some((frame, bytes used)))`, `Ok(None)` if the
/// bytes end before the frame does (a torn tail), `Err` if they can never become a frame.
pub fn parse_prefix(buf: &[u8]) -> Result<Option<(Frame, usize)>, String> {
    codec::parse(buf)
}

/// Encodes a frame into bytes (for writing a frame somewhere other than a connection).
pub fn to_bytes(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode(frame, &mut out);
    out
}
