//! A real Redis client (the `redis` crate) for the tests and labs.

use std::net::SocketAddr;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, IntoConnectionInfo, RedisConnectionInfo};

/// How long a reply may take before the client gives up: a server that never answers (a
/// pipeline it did not read, a flush it never did) fails the test instead of hanging it.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// A connection of the `redis` crate to the server at `addr`. It does not send the
/// `CLIENT SETINFO` the crate sends by default, so the first command a server sees is the test's.
pub async fn connect(addr: SocketAddr) -> MultiplexedConnection {
    let info = format!("redis://{addr}/")
        .into_connection_info()
        .expect("a valid address")
        .set_redis_settings(RedisConnectionInfo::default().set_skip_set_lib_name());
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(REPLY_TIMEOUT))
        .set_response_timeout(Some(REPLY_TIMEOUT));
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
