//! For exercise `replication`'s tests and lab: the far end of a replication link played by the
//! test (a replica that handshakes with the primary under test, or a primary that the replica
//! under test connects to), and the lab's write loop.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::{Rng, RngExt};
use redis::aio::MultiplexedConnection;
use sdlings_kit::lab::{Table, latency};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::Frame;
use crate::client::{LOAD_REPLY_TIMEOUT, REPLY_TIMEOUT, connect, connect_with_timeout, query};
use crate::conn::{Connection, to_bytes};
use crate::replication::ManualTime;

/// A command frame from words: `cmd("REPLCONF GETACK *")`.
pub fn cmd(words: &str) -> Frame {
    Frame::command(words.split(' '))
}

/// The bytes that command takes in the replication stream.
pub fn len(words: &str) -> u64 {
    to_bytes(&cmd(words)).len() as u64
}

/// Fails with `why`, instead of hanging, when `f` has not finished after the tests' reply
/// timeout (a WAIT that never returns). A detector of a hang, never part of a passing run's timing.
pub async fn within<T>(why: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(REPLY_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("{why}"))
}

/// Returns once a client without writes sees `n` replicas (`WAIT 0 0` answers how many are
/// connected); fails with `why` if that never happens.
pub async fn replicas_connected(primary: SocketAddr, n: usize, why: &str) {
    let mut c = connect(primary).await;
    let wait = redis::cmd("WAIT").arg(0).arg(0).clone();
    within(why, async {
        while wait.query_async::<usize>(&mut c).await.expect("WAIT 0 0") != n {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// One end of a replication link.
pub struct Peer(Connection);

impl Peer {
    pub async fn send(&mut self, frame: Frame) {
        self.0.write(&frame);
        self.0.flush().await.expect("the link is open");
    }

    pub async fn recv(&mut self) -> Frame {
        let frame = within("nothing came on the replication link", self.0.read_frame());
        frame.await.expect("a frame").expect("the link was closed")
    }
}

/// A replica played by the test: connects to `primary`, handshakes, and returns the link, the
/// offset of `+FULLRESYNC <replid> <offset>` and the snapshot that followed.
pub async fn fake_replica(primary: SocketAddr) -> (Peer, u64, Frame) {
    let stream = TcpStream::connect(primary).await.expect("connect");
    let mut link = Peer(Connection::new(stream));
    let steps = [
        ("PING", "PONG"),
        ("REPLCONF listening-port 7000", "OK"),
        ("REPLCONF capa psync2", "OK"),
    ];
    for (ask, answer) in steps {
        link.send(cmd(ask)).await;
        assert_eq!(link.recv().await, Frame::Simple(answer.into()), "{ask}");
    }
    link.send(cmd("PSYNC ? -1")).await;
    let resync = link.recv().await;
    let words: Vec<&str> = match &resync {
        Frame::Simple(line) => line.split(' ').collect(),
        _ => vec![],
    };
    let hex = |w: &str| w.len() == 40 && w.bytes().all(|b| b.is_ascii_hexdigit());
    let offset = match words[..] {
        ["FULLRESYNC", id, offset] if hex(id) => offset.parse().ok(),
        _ => None,
    };
    let offset = offset.unwrap_or_else(|| {
        panic!("PSYNC ? -1 is answered +FULLRESYNC <40 hex digits> <offset>, got {resync:?}")
    });
    let snapshot = link.recv().await;
    (link, offset, snapshot)
}

/// A replica played by the test that reads slowly: its socket's receive buffer is a few KB, and
/// it handshakes and reads `+FULLRESYNC <replid> <offset>` but not the snapshot, which waits in
/// the network (the primary's send of a large one blocks) until `recv` reads it. Returns the link
/// and FULLRESYNC's offset.
pub async fn fake_replica_stalled(primary: SocketAddr) -> (Peer, u64) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = socket.connect(primary).await.expect("connect");
    let mut link = Peer(Connection::new(stream));
    for (ask, answer) in [
        ("PING", "PONG"),
        ("REPLCONF listening-port 7001", "OK"),
        ("REPLCONF capa psync2", "OK"),
    ] {
        link.send(cmd(ask)).await;
        assert_eq!(link.recv().await, Frame::Simple(answer.into()), "{ask}");
    }
    link.send(cmd("PSYNC ? -1")).await;
    let resync = link.recv().await;
    let offset = match &resync {
        Frame::Simple(line) => line.rsplit(' ').next().and_then(|o| o.parse().ok()),
        _ => None,
    };
    let offset =
        offset.unwrap_or_else(|| panic!("PSYNC ? -1 is answered +FULLRESYNC, got {resync:?}"));
    (link, offset)
}

/// A primary played by the test: accepts the replica under test (which serves reads on `port`),
/// checks its handshake step by step, answers `+FULLRESYNC <replid> <offset>` and `snapshot`.
pub async fn fake_primary(listener: &TcpListener, port: u16, offset: u64, snapshot: Frame) -> Peer {
    let accepted = within(
        "the replica never connected to its primary",
        listener.accept(),
    );
    let mut link = Peer(Connection::new(accepted.await.expect("accept").0));
    let steps = [
        ("PING".to_string(), "PONG"),
        (format!("REPLCONF listening-port {port}"), "OK"),
        ("REPLCONF capa psync2".into(), "OK"),
    ];
    for (want, answer) in steps {
        assert_eq!(
            link.recv().await,
            cmd(&want),
            "the handshake, each step after the reply to the one before: PING, REPLCONF listening-port <port>, REPLCONF capa psync2, PSYNC ? -1"
        );
        link.send(Frame::Simple(answer.into())).await;
    }
    assert_eq!(
        link.recv().await,
        cmd("PSYNC ? -1"),
        "the handshake ends with PSYNC ? -1"
    );
    let replid = "ab".repeat(20);
    link.send(Frame::Simple(format!("FULLRESYNC {replid} {offset}")))
        .await;
    link.send(snapshot).await;
    link
}

/// The lab: once `replicas` are connected to `primary`, rows of `writes` SETs from one client,
/// each followed by nothing, then by `WAIT 1 1000`, ..., `WAIT replicas 1000`.
pub async fn lab(primary: SocketAddr, replicas: usize, writes: usize) {
    replicas_connected(primary, replicas, "the replicas never connected").await;
    println!("One client, {writes} SETs per row, {replicas} replicas on localhost:");
    let head = [
        "after each SET",
        "writes/s",
        "p50",
        "p99",
        "WAIT answered",
        "catch-up",
    ];
    let mut table = Table::new(&head);
    for wait in 0..=replicas {
        let (per_sec, p50, p99, acked, catch_up) = run(primary, replicas, wait, writes).await;
        table.row(&[
            match wait {
                0 => "nothing".into(),
                _ => format!("WAIT {wait} 1000"),
            },
            format!("{per_sec:.0}"),
            latency(p50),
            latency(p99),
            format!("{acked:.2}"),
            latency(catch_up),
        ]);
    }
    table.print();
    println!("(catch-up: after the row's last SET, until every replica acknowledged it)");
}

/// One lab row: writes/s, p50 and p99 of a SET (and its WAIT), WAIT's mean answer, catch-up.
async fn run(
    primary: SocketAddr,
    replicas: usize,
    wait: usize,
    writes: usize,
) -> (f64, Duration, Duration, f64, Duration) {
    let mut c = connect_with_timeout(primary, LOAD_REPLY_TIMEOUT).await;
    let (start, mut rtts, mut acked) = (Instant::now(), Vec::new(), 0);
    for i in 0..writes {
        let sent = Instant::now();
        let set = redis::cmd("SET").arg(format!("lab:{i}")).arg(i).clone();
        let () = set.query_async(&mut c).await.expect("SET");
        if wait > 0 {
            let w = redis::cmd("WAIT").arg(wait).arg(1000).clone();
            acked += w.query_async::<usize>(&mut c).await.expect("WAIT");
        }
        rtts.push(sent.elapsed());
    }
    let per_sec = writes as f64 / start.elapsed().as_secs_f64();
    let end = Instant::now();
    let all = redis::cmd("WAIT").arg(replicas).arg(0).clone();
    let all: usize = all.query_async(&mut c).await.expect("WAIT");
    assert_eq!(all, replicas, "every replica catches up");
    rtts.sort_unstable();
    let at = |q: f64| rtts[((writes as f64 * q) as usize).min(writes - 1)];
    let acked = acked as f64 / writes as f64;
    (per_sec, at(0.5), at(0.99), acked, end.elapsed())
}

/// `REPLCONF ACK <offset>`: what a replica sends its primary.
pub fn ack(offset: u64) -> Frame {
    cmd(&format!("REPLCONF ACK {offset}"))
}

/// A command (words split on spaces) sent by `c` from a task of its own, such as a WAIT that
/// blocks while the test plays the replicas. The task gives back the reply and the connection.
pub fn spawn_query(
    mut c: MultiplexedConnection,
    words: &str,
) -> JoinHandle<(redis::Value, MultiplexedConnection)> {
    let words = words.to_string();
    tokio::spawn(async move {
        let args: Vec<&str> = words.split(' ').collect();
        let reply = query(&mut c, &args).await;
        (reply.unwrap_or_else(|e| panic!("{words}: {e}")), c)
    })
}

/// `WAIT n 500` by `c`, when fewer than `n` replicas have acknowledged its last write: checks it
/// has not answered by the time it sleeps until its deadline on `time`, moves `time` 500 ms, and
/// returns its answer and the connection.
pub async fn wait_times_out(
    time: &ManualTime,
    c: MultiplexedConnection,
    n: usize,
) -> (redis::Value, MultiplexedConnection) {
    let mut wait = spawn_query(c, &format!("WAIT {n} 500"));
    let slept = format!("WAIT {n} 500 never slept until its deadline (Time::sleep_until)");
    tokio::select! {
        r = &mut wait => panic!(
            "WAIT {n} 500 answered {:?} before its 500 ms had passed, though fewer than {n} replicas acknowledged the client's last write",
            r.map(|r| r.0)
        ),
        _ = within(&slept, time.sleepers(1)) => {}
    }
    time.advance(Duration::from_millis(500));
    let r = within(
        "WAIT did not return once its 500 ms had passed (milliseconds)",
        wait,
    );
    r.await.expect("the WAIT's task")
}

/// The `i`th command of a random run on keys k0..k5 and counters c1..c3: SETs (NX, EX, PX, in
/// either order, options in any case), DELs of two keys, INCRs, counters set to -1 or -2, GETs.
pub fn random_command(rng: &mut impl Rng, i: usize) -> String {
    let (k, n) = (
        format!("k{}", rng.random_range(0..6)),
        rng.random_range(1..4),
    );
    match rng.random_range(0..9) {
        0 => format!("SET {k} v{i}"),
        1 => format!("SET {k} n{i} NX"),
        2 => format!("SET {k} e{i} EX {n}"),
        3 => format!("set {k} p{i} px {}", n * 700),
        4 => format!("SET {k} x{i} PX {} NX", n * 500),
        5 => format!("DEL {k} k{}", rng.random_range(0..6)),
        6 => format!("INCR c{n}"),
        7 => format!("SET c{n} -{}", rng.random_range(1..3)),
        _ => format!("GET {k}"),
    }
}
