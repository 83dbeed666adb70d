//! A test harness: serve a command handler on a local port, one task per connection.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::conn::Connection;
use crate::{Command, Frame};

/// Binds 127.0.0.1 on a free port and serves `handler` there until the runtime ends: every
/// connection is a task of its own, reads commands, answers each with `handler(command)` in
/// order, and flushes whenever no further command is already buffered. A malformed frame is
/// answered with `-ERR Protocol error` and the connection closed, as Redis does.
pub async fn spawn<H>(handler: H) -> SocketAddr
where
    H: Fn(Command) -> Frame + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let addr = listener.local_addr().expect("bound");
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = Arc::clone(&handler);
            tokio::spawn(async move {
                let mut conn = Connection::new(stream);
                loop {
                    match conn.read_command().await {
                        Ok(Some(cmd)) => conn.write(&handler(cmd)),
                        Ok(None) => return,
                        Err(e) => {
                            conn.write(&Frame::error(format!("ERR Protocol error: {e}")));
                            let _ = conn.flush().await;
                            return;
                        }
                    }
                    if !conn.has_buffered_command() && conn.flush().await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}
