// Replication — a replica handshake, the stream of writes, and WAIT.
//
// A Redis primary copies its data to replicas: a replica connects, asks for everything (PSYNC),
// loads a snapshot, then applies every write the primary applies, in the primary's order, without
// ever replying. Both count the bytes of that stream (the replication offset), so `WAIT n t` can
// block a client until n replicas acknowledge its last write: a payment service does that before
// answering "paid", so that losing the primary does not lose the payment.
//
// Build the primary's side (`execute`, `serve_replica`, `wait`) and the replica's (`replicate`).
// The property: when `WAIT n t` answers k, k replicas have applied the client's writes, late
// joiners included; the stream carries exactly the successful writes, a relative TTL as an
// absolute PXAT; offsets count every byte of the stream; WAIT gives up at its timeout, not before.
//
// Lab: writes/s with no WAIT, WAIT 1 and WAIT 2 after each SET; turn REPLICAS and compare.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngExt;
use sdlings_kit_resp::conn::{Connection, to_bytes};
use sdlings_kit_resp::replication::{Store, Time, command_of};
use sdlings_kit_resp::{Command, Frame, command_name, peers, server};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

// ---- Your part -------------------------------------------------------------------------------

/// What replicas must apply for a client's command given its reply: nothing for a read, an error
/// or a write that changed nothing; `SET k v PXAT <ms>` for a SET with EX or PX; else the command.
fn propagated(cmd: &[Vec<u8>], reply: &Frame, now: Duration) -> Option<Command> {
    if let Frame::Error(_) = reply {
        return None;
    }
    match (command_name(cmd).as_str(), reply) {
        ("SET", Frame::Null) => None, // NX, and the key was there: nothing changed
        ("SET", _) => {
            let ttl = cmd[3..].windows(2).find_map(|w| {
                let n: u64 = std::str::from_utf8(&w[1]).ok()?.parse().ok()?;
                match String::from_utf8_lossy(&w[0]).to_ascii_uppercase().as_str() {
                    "EX" => Some(Duration::from_secs(n)),
                    "PX" => Some(Duration::from_millis(n)),
                    _ => None,
                }
            });
            Some(match ttl {
                // Absolute, so a replica applying it late (or a replay) does not extend it.
                Some(ttl) => {
                    let at = (now + ttl).as_millis().to_string();
                    vec![
                        b"SET".to_vec(),
                        cmd[1].clone(),
                        cmd[2].clone(),
                        b"PXAT".to_vec(),
                        at.into_bytes(),
                    ]
                }
                None => cmd.to_vec(),
            })
        }
        ("DEL", Frame::Integer(0)) => None,
        ("DEL" | "INCR", _) => Some(cmd.to_vec()),
        _ => None, // PING, GET: reads
    }
}

/// A replica, as its primary sees it.
struct Replica {
    /// To the task that serves this replica's link: what it receives, it writes to the socket.
    stream: mpsc::UnboundedSender<Frame>,
    /// The offset this replica last acknowledged (`REPLCONF ACK <offset>`); 0 until it does.
    acked: u64,
}

struct State {
    store: Store,
    /// Bytes of the replication stream so far (Redis's `master_repl_offset`).
    offset: u64,
    replicas: HashMap<u64, Replica>,
    next_id: u64,
}

pub struct Primary {
    time: Time,
    /// This primary's replication id, 40 hex digits, sent in `+FULLRESYNC <replid> <offset>`.
    replid: String,
    state: Mutex<State>,
    /// Changed whenever a replica acknowledges or leaves: what a WAIT waits on.
    acks: watch::Sender<()>,
}

impl Primary {
    pub fn new(time: Time) -> Arc<Primary> {
        let mut rng = rand::rng();
        let replid = (0..40)
            .map(|_| char::from_digit(rng.random_range(0..16), 16).expect("a hex digit"))
            .collect();
        let state = State {
            store: Store::new(time.clone()),
            offset: 0,
            replicas: HashMap::new(),
            next_id: 0,
        };
        Arc::new(Primary {
            time,
            replid,
            state: Mutex::new(state),
            acks: watch::Sender::new(()),
        })
    }

    /// Runs a client's command on the store. A write that changed something goes to every
    /// replica, in the order applied; `last_write` becomes the stream's offset just after it.
    pub fn execute(&self, cmd: &[Vec<u8>], last_write: &mut u64) -> Frame {
        // One lock for apply + propagate: two clients' writes reach the replicas in the order
        // the primary applied them.
        let mut state = self.state.lock().unwrap();
        let reply = state.store.execute(cmd);
        if let Some(write) = propagated(cmd, &reply, self.time.now()) {
            state.propagate(Frame::command(write));
            *last_write = state.offset;
        }
        reply
    }

    /// A connection that sent `PSYNC ? -1`: answers `+FULLRESYNC <replid> <offset>` and the
    /// snapshot, then writes the stream to it and reads its `REPLCONF ACK <offset>`s until it
    /// goes away (and is no longer counted).
    pub async fn serve_replica(&self, mut conn: Connection) -> io::Result<()> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let id = {
            // Snapshot and registration under one lock: every write is either in the snapshot
            // or in the stream, never both, never neither.
            let mut state = self.state.lock().unwrap();
            let resync = format!("FULLRESYNC {} {}", self.replid, state.offset);
            conn.write(&Frame::Simple(resync));
            conn.write(&state.store.snapshot());
            let id = state.next_id;
            state.next_id += 1;
            let replica = Replica {
                stream: tx,
                acked: 0,
            };
            state.replicas.insert(id, replica);
            id
        };
        let served = self.feed(&mut conn, &mut rx, id).await;
        self.state.lock().unwrap().replicas.remove(&id);
        self.acks.send_replace(());
        served
    }

    async fn feed(
        &self,
        conn: &mut Connection,
        rx: &mut mpsc::UnboundedReceiver<Frame>,
        id: u64,
    ) -> io::Result<()> {
        conn.flush().await?;
        loop {
            tokio::select! {
                Some(frame) = rx.recv() => {
                    conn.write(&frame);
                    while let Ok(more) = rx.try_recv() {
                        conn.write(&more);
                    }
                    conn.flush().await?;
                }
                frame = conn.read_frame() => {
                    let Some(frame) = frame? else { return Ok(()) };
                    let cmd = command_of(&frame).unwrap_or_default();
                    let ack = match &cmd[..] {
                        [_, ack, offset] if command_name(&cmd) == "REPLCONF"
                            && ack.eq_ignore_ascii_case(b"ACK") => std::str::from_utf8(offset)
                            .ok()
                            .and_then(|o| o.parse::<u64>().ok()),
                        _ => None,
                    };
                    if let Some(offset) = ack {
                        if let Some(r) = self.state.lock().unwrap().replicas.get_mut(&id) {
                            r.acked = offset;
                        }
                        self.acks.send_replace(());
                    }
                }
            }
        }
    }

    /// `WAIT numreplicas timeout_ms` for a client whose last write ended at `last_write`: how
    /// many replicas acknowledged an offset at least that far, as soon as that is enough, or
    /// when the timeout passes (0: no timeout). Asks the replicas for acks with a GETACK.
    pub async fn wait(&self, last_write: u64, numreplicas: usize, timeout_ms: u64) -> Frame {
        let deadline = self.time.now() + Duration::from_millis(timeout_ms);
        let timeout = async {
            match timeout_ms {
                0 => std::future::pending().await,
                _ => self.time.sleep_until(deadline).await,
            }
        };
        tokio::pin!(timeout);
        // Subscribed before counting: an ack that lands after the count still wakes us.
        let mut acks = self.acks.subscribe();
        {
            let mut state = self.state.lock().unwrap();
            let acked = state.acked(last_write);
            if acked >= numreplicas {
                return Frame::Integer(acked as i64);
            }
            // Part of the stream like any command: it moves the offset, replicas count it.
            state.propagate(Frame::command(["REPLCONF", "GETACK", "*"]));
        }
        loop {
            tokio::select! {
                _ = acks.changed() => {}
                _ = &mut timeout => break,
            }
            let acked = self.state.lock().unwrap().acked(last_write);
            if acked >= numreplicas {
                return Frame::Integer(acked as i64);
            }
        }
        Frame::Integer(self.state.lock().unwrap().acked(last_write) as i64)
    }
}

impl State {
    /// Appends a command to the stream: counts its bytes and hands it to every replica.
    fn propagate(&mut self, cmd: Frame) {
        self.offset += to_bytes(&cmd).len() as u64;
        for replica in self.replicas.values() {
            let _ = replica.stream.send(cmd.clone());
        }
    }

    /// Replicas that acknowledged `offset` or more (at or past it: it has everything up to it).
    fn acked(&self, offset: u64) -> usize {
        self.replicas.values().filter(|r| r.acked >= offset).count()
    }
}

/// A replica of the primary at `primary`, announcing `port` (where it serves reads): the
/// handshake (PING, REPLCONF listening-port, REPLCONF capa psync2, PSYNC ? -1, each waiting for
/// its reply), the snapshot into `store`, then the stream applied in order without replying,
/// except `REPLCONF GETACK *`, answered `REPLCONF ACK <offset>`. `Ok` when the primary closes.
pub async fn replicate(primary: SocketAddr, port: u16, store: Arc<Mutex<Store>>) -> io::Result<()> {
    let mut link = Connection::new(TcpStream::connect(primary).await?);
    let port = port.to_string();
    let handshake: [&[&str]; 4] = [
        &["PING"],
        &["REPLCONF", "listening-port", &port],
        &["REPLCONF", "capa", "psync2"],
        &["PSYNC", "?", "-1"],
    ];
    let mut reply = Frame::Null;
    for cmd in handshake {
        link.write(&Frame::command(cmd.iter().copied()));
        link.flush().await?;
        reply = link
            .read_frame()
            .await?
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        if let Frame::Error(e) = &reply {
            return Err(io::Error::other(format!("{cmd:?}: {e}")));
        }
    }
    // +FULLRESYNC <replid> <offset>: the stream that follows the snapshot starts at <offset>.
    let resync = match &reply {
        Frame::Simple(line) => line.strip_prefix("FULLRESYNC "),
        _ => None,
    };
    let mut offset: u64 = resync
        .and_then(|rest| rest.split(' ').nth(1)?.parse().ok())
        .ok_or_else(|| io::Error::other(format!("expected +FULLRESYNC, got {reply:?}")))?;
    let snapshot = link
        .read_frame()
        .await?
        .ok_or(io::ErrorKind::UnexpectedEof)?;
    store
        .lock()
        .unwrap()
        .load_snapshot(&snapshot)
        .map_err(io::Error::other)?;
    while let Some(frame) = link.read_frame().await? {
        let cmd = command_of(&frame).ok_or_else(|| io::Error::other("not a command"))?;
        let getack = command_name(&cmd) == "REPLCONF"
            && cmd
                .get(1)
                .is_some_and(|a| a.eq_ignore_ascii_case(b"GETACK"));
        if getack {
            // The offset of what was processed before this GETACK (it counts from the next ACK).
            let ack = Frame::command(["REPLCONF".into(), "ACK".into(), offset.to_string()]);
            link.write(&ack);
            link.flush().await?;
        } else {
            // Applied, never answered: the primary's link reads only ACKs.
            store.lock().unwrap().execute(&cmd);
        }
        offset += to_bytes(&frame).len() as u64;
    }
    Ok(())
}

// ---- The server (provided: exercise `pipelining_and_clients` built its loop) ---------------

/// Accepts connections forever, a task each; a connection that sends PSYNC becomes a replica's.
pub async fn serve(listener: TcpListener, primary: Arc<Primary>) {
    while let Ok((stream, _)) = listener.accept().await {
        let primary = Arc::clone(&primary);
        tokio::spawn(async move { handle(Connection::new(stream), primary).await });
    }
}

async fn handle(mut conn: Connection, primary: Arc<Primary>) -> io::Result<()> {
    let mut last_write = 0; // the stream's offset after this client's last write
    while let Some(cmd) = conn.read_command().await? {
        let number = |i: usize| std::str::from_utf8(&cmd[i]).ok()?.parse::<u64>().ok();
        let reply = match (command_name(&cmd).as_str(), cmd.len()) {
            ("PSYNC", _) => return primary.serve_replica(conn).await,
            ("REPLCONF", _) => Frame::ok(),
            ("WAIT", 3) => match (number(1), number(2)) {
                (Some(n), Some(ms)) => primary.wait(last_write, n as usize, ms).await,
                _ => Frame::error("ERR value is not an integer or out of range"),
            },
            _ => primary.execute(&cmd, &mut last_write),
        };
        conn.write(&reply);
        if !conn.has_buffered_command() {
            conn.flush().await?;
        }
    }
    Ok(())
}

/// A replica: its own store, served for reads on a local port, kept in step with `primary` by
/// `replicate`. Returns its address and the replication task (abort it to disconnect).
pub async fn spawn_replica(
    primary: SocketAddr,
    time: Time,
) -> (SocketAddr, tokio::task::JoinHandle<io::Result<()>>) {
    let store = Arc::new(Mutex::new(Store::new(time)));
    let reads = Arc::clone(&store);
    let addr = server::spawn(move |cmd| reads.lock().unwrap().execute(&cmd)).await;
    (addr, tokio::spawn(replicate(primary, addr.port(), store)))
}

// ---- Lab -------------------------------------------------------------------------------------

/// Replicas of the primary, and SETs per row (one client, each SET followed by its WAIT).
const REPLICAS: usize = 2;
const WRITES: usize = 2_000;

fn main() {
    sdlings_kit::lab::runtime().block_on(async {
        let time = Time::system();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let addr = listener.local_addr().expect("bound");
        tokio::spawn(serve(listener, Primary::new(time.clone())));
        for _ in 0..REPLICAS {
            spawn_replica(addr, time.clone()).await;
        }
        peers::lab(addr, REPLICAS, WRITES).await;
    });
}

#[cfg(test)]
mod tests {
    use redis::Value;
    use redis::aio::MultiplexedConnection;
    use sdlings_kit::property::for_seeds;
    use sdlings_kit_resp::client::{connect, query};
    use sdlings_kit_resp::peers::{
        ack, cmd, fake_primary, fake_replica, fake_replica_stalled, len, random_command,
        replicas_connected, spawn_query, wait_times_out, within,
    };
    use sdlings_kit_resp::replication::ManualTime;

    use super::*;

    const CONNECTED: &str = "WAIT 0 0 (no writes yet) answers the number of replicas connected";

    async fn primary(time: &ManualTime) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, Primary::new(time.clone().into())));
        addr
    }

    async fn q(c: &mut MultiplexedConnection, args: &str) -> Value {
        let args: Vec<&str> = args.split(' ').collect();
        let cut: Vec<&str> = args.iter().map(|&a| a.get(..40).unwrap_or(a)).collect(); // MB values
        query(c, &args)
            .await
            .unwrap_or_else(|e| panic!("{cut:?}: {e}"))
    }

    type Replicating = tokio::task::JoinHandle<io::Result<()>>;

    /// Your replica, of a primary played by the test: FULLRESYNC at `offset`, a snapshot holding
    /// `gone` = `snap`. Returns the link, the replica's address (for reads) and its task.
    async fn replica_of_fake(offset: u64) -> (peers::Peer, SocketAddr, Replicating) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let time = Time::from(ManualTime::new());
        let (replica, task) = spawn_replica(listener.local_addr().unwrap(), time.clone()).await;
        let mut source = Store::new(time);
        source.execute(&[b"SET".to_vec(), b"gone".to_vec(), b"snap".to_vec()]);
        let link = fake_primary(&listener, replica.port(), offset, source.snapshot()).await;
        (link, replica, task)
    }

    #[tokio::test]
    async fn the_replica_handshakes_loads_the_snapshot_applies_silently_and_acks_exact_offsets() {
        let (mut link, replica, task) = replica_of_fake(500).await;
        link.send(cmd("REPLCONF GETACK *")).await;
        let ack =
            "nothing streamed yet: the offset is FULLRESYNC's (the snapshot's bytes do not count)";
        assert_eq!(link.recv().await, cmd("REPLCONF ACK 500"), "{ack}");
        let mut r = connect(replica).await;
        assert_eq!(
            q(&mut r, "GET gone").await,
            Value::BulkString(b"snap".to_vec()),
            "the snapshot is loaded"
        );
        let stream = "SET a 1|PING|INCR n|DEL gone|SET b 2 PX 100000|INCR n".split('|');
        for c in stream.clone() {
            link.send(cmd(c)).await;
        }
        link.send(cmd("REPLCONF GETACK *")).await;
        let first = 500 + len("REPLCONF GETACK *") + stream.map(len).sum::<u64>();
        assert_eq!(
            link.recv().await,
            cmd(&format!("REPLCONF ACK {first}")),
            "a replica answers nothing in the stream (not even PING) but GETACK, with FULLRESYNC's offset plus every byte before the GETACK"
        );
        link.send(cmd("INCR n")).await;
        link.send(cmd("REPLCONF GETACK *")).await;
        let second = first + len("REPLCONF GETACK *") + len("INCR n");
        assert_eq!(
            link.recv().await,
            cmd(&format!("REPLCONF ACK {second}")),
            "the previous GETACK's bytes count too"
        );
        assert_eq!(
            q(&mut r, "GET n").await,
            Value::BulkString(b"3".to_vec()),
            "every command applied once, in order"
        );
        assert_eq!(
            q(&mut r, "GET gone").await,
            Value::Nil,
            "the stream's DEL applied"
        );
        drop(link);
        let ended = within("replicate went on after its primary closed the link", task);
        let why = "replicate returns Ok(()) when the primary closes the link";
        assert!(matches!(ended.await, Ok(Ok(()))), "{why}");
    }

    #[tokio::test]
    async fn a_write_is_on_the_replica_once_wait_1_answers_1() {
        let time = ManualTime::new();
        let p = primary(&time).await;
        let (replica, _task) = spawn_replica(p, time.into()).await;
        replicas_connected(p, 1, CONNECTED).await;
        let mut c = connect(p).await;
        assert_eq!(q(&mut c, "SET k v").await, Value::Okay);
        let acked = within(
            "WAIT 1 0 never returned though the replica answers GETACK",
            q(&mut c, "WAIT 1 0"),
        );
        assert_eq!(acked.await, Value::Int(1));
        let mut r = connect(replica).await;
        assert_eq!(
            q(&mut r, "GET k").await,
            Value::BulkString(b"v".to_vec()),
            "WAIT answered 1: the replica has the write"
        );
    }

    #[tokio::test]
    async fn the_stream_carries_exactly_the_successful_writes_in_order_ttls_as_pxat() {
        let time = ManualTime::at(Duration::from_millis(1_000_250));
        let p = primary(&time).await;
        let (mut link, _, _) = fake_replica(p).await;
        let mut c = connect(p).await;
        let script = "SET k 1|GET k|SET k 2 NX|SET n x|INCR n|DEL nil|DEL k nil|INCR c|SET m -1|INCR m|SET t v EX 10|SET u v NX PX 1500|SET w v PXAT 2000000|PING|SET end 1";
        for command in script.split('|') {
            let _ = query(&mut c, &command.split(' ').collect::<Vec<_>>()).await;
        }
        let mut got = Vec::new();
        while got.last() != Some(&cmd("SET end 1")) && got.len() < 20 {
            got.push(link.recv().await);
        }
        let want = "SET k 1|SET n x|DEL k nil|INCR c|SET m -1|INCR m|SET t v PXAT 1010250|SET u v PXAT 1001750|SET w v PXAT 2000000|SET end 1";
        assert_eq!(
            got,
            want.split('|').map(cmd).collect::<Vec<_>>(),
            "only writes that changed something, in order (no reads, errors, NX that did not set, DEL of nothing; an INCR that reached 0 did write); EX and PX as SET key value PXAT <absolute ms>"
        );
    }

    #[tokio::test]
    async fn fullresync_offset_counts_every_byte_streamed_getacks_included() {
        let time = ManualTime::new();
        let p = primary(&time).await;
        let (mut a, mut offset, _) = fake_replica(p).await;
        let mut c = connect(p).await;
        q(&mut c, "SET x 1").await;
        let wait = spawn_query(c, "WAIT 1 0");
        assert_eq!(a.recv().await, cmd("SET x 1"));
        assert_eq!(
            a.recv().await,
            cmd("REPLCONF GETACK *"),
            "WAIT 1 with no ack yet asks for one"
        );
        offset += len("SET x 1");
        a.send(ack(offset)).await;
        offset += len("REPLCONF GETACK *");
        let (acked, mut c) = within("WAIT 1 0 did not return once acknowledged", wait)
            .await
            .unwrap();
        assert_eq!(acked, Value::Int(1));
        q(&mut c, "SET y 2 EX 100").await;
        q(&mut c, "SET y 3 NX").await;
        let streamed = a.recv().await;
        assert_eq!(streamed, cmd("SET y 2 PXAT 100000"));
        offset += to_bytes(&streamed).len() as u64;
        let (mut b, b_offset, snapshot) = fake_replica(p).await;
        assert_eq!(
            b_offset, offset,
            "a late replica's FULLRESYNC offset is every byte streamed so far, GETACKs included (the bytes of the frames sent: SET ... PXAT, not the client's SET ... EX)"
        );
        let mut copy = Store::new(time.into());
        copy.load_snapshot(&snapshot).unwrap();
        assert_eq!(
            copy.execute(&[b"GET".to_vec(), b"y".to_vec()]),
            Frame::bulk("2"),
            "the snapshot holds the data"
        );
        q(&mut c, "INCR z").await;
        assert_eq!(
            b.recv().await,
            cmd("INCR z"),
            "after its snapshot, a late replica gets the stream"
        );
    }

    #[tokio::test]
    async fn ex_and_px_become_absolute_so_a_replica_applying_late_does_not_extend_them() {
        let (time, late) = (ManualTime::new(), ManualTime::at(Duration::from_secs(8)));
        let p = primary(&time).await;
        let (replica, _task) = spawn_replica(p, late.clone().into()).await;
        replicas_connected(p, 1, CONNECTED).await;
        let mut c = connect(p).await;
        q(&mut c, "set a v ex 10").await; // options are case-insensitive
        q(&mut c, "SET b v PX 10000 NX").await; // the TTL need not be last
        assert_eq!(
            within("WAIT 1 0 never returned", q(&mut c, "WAIT 1 0")).await,
            Value::Int(1)
        );
        let mut r = connect(replica).await;
        assert_eq!(
            q(&mut r, "GET a").await,
            Value::BulkString(b"v".to_vec()),
            "applied 8 s late: 2 s left"
        );
        late.advance(Duration::from_millis(2_001));
        let gone = (q(&mut r, "GET a").await, q(&mut r, "GET b").await);
        assert_eq!(
            gone,
            (Value::Nil, Value::Nil),
            "10 s after the primary's SET the keys are gone on the replica too: a relative EX/PX applied late lives longer"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wait_counts_acks_of_this_clients_last_write_not_the_latest_write() {
        let p = primary(&ManualTime::new()).await;
        let (mut f, offset, _) = fake_replica(p).await;
        let (mut a, mut b) = (connect(p).await, connect(p).await);
        q(&mut a, "SET a 1").await;
        q(&mut b, "SET b 2").await;
        q(&mut a, "GET b").await; // a read: a's last write is still SET a 1
        let wait = spawn_query(a, "WAIT 1 0");
        for sent in ["SET a 1", "SET b 2", "REPLCONF GETACK *"] {
            assert_eq!(f.recv().await, cmd(sent));
        }
        // A replica that has applied a's write but not yet b's says so.
        f.send(ack(offset + len("SET a 1"))).await;
        let acked = within(
            "WAIT 1 0 of client a never returned, though the replica acknowledged exactly a's last write (b's came after)",
            wait,
        );
        assert_eq!(acked.await.unwrap().0, Value::Int(1));
    }

    #[tokio::test]
    async fn wait_answers_how_many_acknowledged_the_write_at_once_or_at_its_timeout() {
        let time = ManualTime::new();
        let p = primary(&time).await;
        let (_replica, _task) = spawn_replica(p, time.clone().into()).await;
        let (mut silent, silent_start, _) = fake_replica(p).await;
        replicas_connected(p, 2, CONNECTED).await;
        let mut c = connect(p).await;
        q(&mut c, "SET k v").await;
        let one = within("WAIT 1 0 never returned", q(&mut c, "WAIT 1 0")).await;
        let why = "two replicas are connected, one acknowledged: WAIT counts acks";
        assert_eq!(one, Value::Int(1), "{why}");
        let (r, mut c) = wait_times_out(&time, c, 2).await;
        let why = "at its timeout, WAIT answers how many acknowledged";
        assert_eq!(r, Value::Int(1), "{why}");
        // Joins after the write (its snapshot holds it), but has acknowledged nothing yet.
        let (mut late, late_start, _) = fake_replica(p).await;
        replicas_connected(p, 3, CONNECTED).await;
        let why = "WAIT 0 answers at once how many replicas acknowledged the client's last write, not how many are connected; a replica counts from its first ACK (it may not have loaded its snapshot yet)";
        assert_eq!(q(&mut c, "WAIT 0 0").await, Value::Int(1), "{why}");
        silent.send(ack(silent_start + len("SET k v"))).await;
        late.send(ack(late_start)).await;
        let three = within("WAIT 3 0 never returned", q(&mut c, "WAIT 3 0"));
        assert_eq!(three.await, Value::Int(3));
        let (r, _) = wait_times_out(&time, c, 4).await;
        let why = "WAIT 4 with 3 replicas, all acknowledged: it waits for a fourth until its timeout (as Redis does), then answers 3";
        assert_eq!(r, Value::Int(3), "{why}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wait_with_timeout_0_waits_as_long_as_it_takes() {
        let time = ManualTime::new();
        let p = primary(&time).await;
        let (_replica, _task) = spawn_replica(p, time.clone().into()).await;
        let (mut f, offset, _) = fake_replica(p).await;
        replicas_connected(p, 2, CONNECTED).await;
        let mut c = connect(p).await;
        q(&mut c, "SET k v").await;
        let mut wait = spawn_query(c, "WAIT 2 0");
        let getack = async {
            assert_eq!(f.recv().await, cmd("SET k v"));
            assert_eq!(f.recv().await, cmd("REPLCONF GETACK *"));
        };
        tokio::select! {
            r = &mut wait => panic!("WAIT 2 0 answered {:?} with one ack of two: timeout 0 means no timeout", r.map(|r| r.0)),
            _ = getack => {}
        }
        time.advance(Duration::from_secs(3_600));
        f.send(ack(offset + len("SET k v"))).await;
        let r = within(
            "WAIT 2 0 never returned after both replicas acknowledged",
            wait,
        );
        assert_eq!(
            r.await.unwrap().0,
            Value::Int(2),
            "an hour later, the second ack ends the WAIT"
        );
    }

    #[tokio::test]
    async fn a_replica_that_disconnects_is_no_longer_counted() {
        let time = ManualTime::new();
        let p = primary(&time).await;
        let (_replica, task) = spawn_replica(p, time.into()).await;
        let (f, _, _) = fake_replica(p).await;
        replicas_connected(p, 2, CONNECTED).await;
        let still = "a replica that closed its connection is still counted";
        drop(f);
        replicas_connected(p, 1, still).await;
        task.abort();
        replicas_connected(p, 0, still).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_made_while_a_replica_receives_its_snapshot_reaches_it_in_the_stream() {
        let p = primary(&ManualTime::new()).await;
        let mut c = connect(p).await;
        let big = "x".repeat(1 << 20);
        for i in 0..16 {
            q(&mut c, &format!("SET big{i} {big}")).await;
        }
        q(&mut c, "INCR n").await;
        // Reads FULLRESYNC, not yet the 16 MB snapshot: the primary's send of it cannot finish.
        let (mut slow, _) = fake_replica_stalled(p).await;
        assert_eq!(q(&mut c, "INCR n").await, Value::Int(2));
        let snapshot = slow.recv().await;
        let mut copy = Store::new(ManualTime::new().into());
        copy.load_snapshot(&snapshot).unwrap();
        let n = copy.execute(&[b"GET".to_vec(), b"n".to_vec()]);
        let why = "the snapshot was taken before the second INCR";
        assert_eq!(n, Frame::bulk("1"), "{why}");
        q(&mut c, "SET end 1").await;
        assert_eq!(
            slow.recv().await,
            cmd("INCR n"),
            "a write made after the snapshot was taken, while the replica was still receiving it, is in the stream: take the snapshot and register the replica in one step (one lock), then send"
        );
    }

    #[test]
    fn after_wait_every_replica_holds_the_primarys_data_late_joiners_included() {
        for_seeds(6, |rng| {
            sdlings_kit::lab::runtime().block_on(async {
                let time = ManualTime::new();
                let p = primary(&time).await;
                let mut replicas = vec![spawn_replica(p, time.clone().into()).await.0];
                let mut clients = [connect(p).await, connect(p).await];
                for i in 0..120 {
                    if i == 40 || i == 80 {
                        replicas.push(spawn_replica(p, time.clone().into()).await.0); // joins late
                    }
                    let command = random_command(rng, i);
                    let _ = query(&mut clients[rng.random_range(0..2)], &command.split(' ').collect::<Vec<_>>()).await;
                    time.advance(Duration::from_millis(rng.random_range(0..100)));
                }
                replicas_connected(p, 3, CONNECTED).await;
                for c in &mut clients {
                    let n = within("WAIT 3 0 never returned, three replicas answering GETACK", q(c, "WAIT 3 0"));
                    assert_eq!(n.await, Value::Int(3));
                }
                for k in (0..6).map(|k| format!("k{k}")).chain((1..4).map(|n| format!("c{n}"))) {
                    let want = q(&mut clients[0], &format!("GET {k}")).await;
                    for (i, replica) in replicas.iter().enumerate() {
                        let got = q(&mut connect(*replica).await, &format!("GET {k}")).await;
                        assert_eq!(got, want, "replica {i} (joined after {} commands), key {k}: once WAIT 3 answered 3, it holds what the primary holds", [0, 40, 80][i]);
                    }
                }
            })
        });
    }
}
