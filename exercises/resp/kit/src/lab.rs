//! The labs' load generator: many connections, each sending pipelines of a chosen depth.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::client::{LOAD_REPLY_TIMEOUT, connect_with_timeout};

/// What a load run measured.
#[derive(Clone, Debug)]
pub struct Load {
    /// Commands answered per second, over all connections.
    pub ops_per_sec: f64,
    /// The median and 99th percentile of a pipeline's round trip (send to last reply).
    pub p50: Duration,
    pub p99: Duration,
    /// Commands sent in all.
    pub ops: u64,
}

/// `clients` connections, each sending `rounds` pipelines of `depth` commands (a SET, a GET
/// and an INCR in turn, over 1,000 keys per client), waiting for each pipeline's replies before
/// sending the next. Panics if a reply is an error or wrong.
pub async fn load(addr: SocketAddr, clients: usize, depth: usize, rounds: usize) -> Load {
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            tokio::spawn(async move {
                let mut conn = connect_with_timeout(addr, LOAD_REPLY_TIMEOUT).await;
                let mut rtts = Vec::with_capacity(rounds);
                for r in 0..rounds {
                    let mut pipe = redis::pipe();
                    for i in 0..depth {
                        let key = format!("lab:{c}:{}", (r * depth + i) % 1_000);
                        match i % 3 {
                            0 => pipe.cmd("SET").arg(&key).arg(r).ignore(),
                            1 => pipe.cmd("GET").arg(&key).ignore(),
                            _ => pipe.cmd("INCR").arg(format!("lab:{c}:n")).ignore(),
                        };
                    }
                    let sent = Instant::now();
                    let () = pipe
                        .query_async(&mut conn)
                        .await
                        .unwrap_or_else(|e| panic!("client {c}, pipeline {r}: {e}"));
                    rtts.push(sent.elapsed());
                }
                rtts
            })
        })
        .collect();
    let mut rtts = Vec::new();
    for t in tasks {
        rtts.extend(t.await.expect("a load client panicked"));
    }
    let elapsed = start.elapsed().max(Duration::from_micros(1));
    rtts.sort_unstable();
    let at = |q: f64| rtts[((rtts.len() as f64 * q) as usize).min(rtts.len() - 1)];
    let ops = (clients * depth * rounds) as u64;
    Load {
        ops_per_sec: ops as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        ops,
    }
}
