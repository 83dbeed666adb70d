//! A real Redis client (the `redis` crate) for the tests and labs.

use std::net::SocketAddr;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, IntoConnectionInfo, RedisConnectionInfo};

/// How long a test waits for a reply before calling the server hung: a server that never answers
/// (a pipeline it did not read, a flush it never did, a WAIT that never returns) fails the test
/// instead of hanging it. A working server answers a test's commands within milliseconds, even
/// unoptimised on a busy machine: 3 s is hundreds of times that, and a learner whose server
/// hangs hears so in 3 s, not 20.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a lab's load generator waits for a pipeline's replies: under a load the lab chose
/// (thousands of commands in flight) a round trip can take a second.
pub const LOAD_REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection of the `redis` crate to the server at `addr`, for a test: it gives up on a reply
/// after [`REPLY_TIMEOUT`]. It does not send the `CLIENT SETINFO` the crate sends by default, so
/// the first command a server sees is the test's.
pub async fn connect(addr: SocketAddr) -> MultiplexedConnection {
    connect_with_timeout(addr, REPLY_TIMEOUT).await
}

/// [`connect`], waiting up to `timeout` for each reply.
pub async fn connect_with_timeout(addr: SocketAddr, timeout: Duration) -> MultiplexedConnection {
    let info = format!("redis://{addr}/")
        .into_connection_info()
        .expect("a valid address")
        .set_redis_settings(RedisConnectionInfo::default().set_skip_set_lib_name());
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    Client::open(info)
        .expect("a client")
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap_or_else(|e| panic!("connect to the server at {addr}: {e}"))
}

/// Sends one command and returns the raw reply (`redis::Value`), errors included as
/// `Err`: `query(&mut c, &["SET", "k", "v", "NX"]).await`.
pub async fn query(
    conn: &mut MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<redis::Value> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(conn).await
}
