// Pipelining and clients — the server loop: many connections, pipelines, MULTI/EXEC, QUIT.
//
// A Redis server serves thousands of connections at once, and each client may pipeline: send a
// hundred commands, then read a hundred replies. Replies must come back in order on each
// connection, one slow or silent client must never hold up the others, and replies to a
// pipeline should leave in one write, not one system call each. Connection state lives with the
// connection: a client inside MULTI has its commands queued (each answered `+QUEUED`) until EXEC
// runs them all at once and answers with one array of their replies.
//
// Build `serve` (accept connections forever, a task each) and `handle` (one connection's loop).
// The property: 8 clients × 1,000 pipelined INCRs count to 8,000, replies in order; a client
// that sent half a command, or nothing, blocks nobody; a malformed frame gets an error and the
// connection closed; MULTI/EXEC/DISCARD/QUIT as in Redis (no rollback: EXEC runs every command).
//
// Lab: load from many connections; turn DEPTHS and CLIENTS and watch ops/s and p99 move.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

use sdlings_kit::lab::{Table, latency};
use sdlings_kit_resp::conn::Connection;
use sdlings_kit_resp::{Command, Frame, command_name, lab};
use tokio::net::TcpListener;

/// The shared data: a plain map and a tiny command set (exercise 2 built the real one).
pub type Db = Arc<Mutex<HashMap<Vec<u8>, Vec<u8>>>>;

/// Runs PING, GET, SET key value, DEL key and INCR key on the map.
pub fn execute(db: &mut HashMap<Vec<u8>, Vec<u8>>, cmd: &[Vec<u8>]) -> Frame {
    match (command_name(cmd).as_str(), &cmd[1..]) {
        ("PING", []) => Frame::Simple("PONG".into()),
        ("GET", [k]) => db.get(k).map_or(Frame::Null, |v| Frame::Bulk(v.clone())),
        ("SET", [k, v]) => {
            db.insert(k.clone(), v.clone());
            Frame::ok()
        }
        ("DEL", [k]) => Frame::Integer(i64::from(db.remove(k).is_some())),
        ("INCR", [k]) => {
            let n = db
                .get(k)
                .map_or(Some(0), |v| String::from_utf8_lossy(v).parse::<i64>().ok());
            match n.and_then(|n| n.checked_add(1)) {
                Some(n) => {
                    db.insert(k.clone(), n.to_string().into_bytes());
                    Frame::Integer(n)
                }
                None => Frame::error("ERR value is not an integer or out of range"),
            }
        }
        (name, _) => Frame::error(format!("ERR unknown command or wrong arguments '{name}'")),
    }
}

// ---- Your part -------------------------------------------------------------------------------

/// Accepts connections forever, serving each in a task of its own.
pub async fn serve(listener: TcpListener, db: Db) {
    let _ = (listener, db, handle);
    todo!("accept connections, and serve each one with `handle`")
}

/// One connection: read commands, answer each in order, flush when no further command is already
/// buffered. `Ok` when the client closes or QUITs; a malformed frame gets
/// `-ERR Protocol error: ...` and the connection is closed.
pub async fn handle(mut conn: Connection, db: Db) -> io::Result<()> {
    // Connection state: the commands queued since MULTI, if inside one.
    let queued: Option<Vec<Command>> = None;
    let _ = (conn.read_command().await, queued, db);
    todo!("read commands, answer them through `execute`, handle MULTI/EXEC/DISCARD/QUIT")
}

// ---- Lab -------------------------------------------------------------------------------------

/// Client connections and pipeline depths of the table; commands each client sends per row.
const CLIENTS: [usize; 3] = [1, 8, 50];
const DEPTHS: [usize; 4] = [1, 10, 100, 1_000];
const COMMANDS_PER_CLIENT: usize = 4_000;

fn main() {
    sdlings_kit::lab::runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a local port");
        let addr = listener.local_addr().expect("bound");
        tokio::spawn(serve(listener, Db::default()));
        println!("Your server, loaded by the redis crate (SET, GET, INCR in turn):");
        let mut table = Table::new(&["clients", "pipeline depth", "ops/s", "p50 round trip", "p99 round trip"]);
        for clients in CLIENTS {
            for depth in DEPTHS {
                let rounds = (COMMANDS_PER_CLIENT / depth).max(4);
                let l = lab::load(addr, clients, depth, rounds).await;
                table.row(&[clients.to_string(), depth.to_string(), format!("{:.0}", l.ops_per_sec), latency(l.p50), latency(l.p99)]);
            }
        }
        table.print();
        println!("(With redis-benchmark installed, from Debian's redis-tools: redis-benchmark -p {} -t set,get,incr -P 16 -c 50)", addr.port());
    });
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use redis::Value;
    use sdlings_kit_resp::client::{connect, query};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    async fn server() -> (SocketAddr, Db) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let db = Db::default();
        tokio::spawn(serve(listener, Arc::clone(&db)));
        (addr, db)
    }

    /// Sends raw bytes on a fresh connection and reads everything until the server closes it.
    async fn raw_until_closed(addr: SocketAddr, bytes: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(bytes).await.unwrap();
        let mut out = Vec::new();
        let read = tokio::time::timeout(
            sdlings_kit_resp::client::REPLY_TIMEOUT,
            s.read_to_end(&mut out),
        );
        read.await
            .expect("the server must close the connection, not leave it hanging")
            .unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn eight_clients_of_a_thousand_pipelined_incrs_count_to_8000_replies_in_order() {
        let (addr, _) = server().await;
        let clients: Vec<_> = (0..8)
            .map(|c| {
                tokio::spawn(async move {
                    let mut conn = connect(addr).await;
                    let mut pipe = redis::pipe();
                    for _ in 0..1_000 {
                        pipe.cmd("INCR")
                            .arg("total")
                            .ignore()
                            .cmd("INCR")
                            .arg(format!("mine:{c}"));
                    }
                    let mine: Vec<i64> = pipe
                        .query_async(&mut conn)
                        .await
                        .expect("a pipeline of 2,000 commands is answered");
                    assert_eq!(
                        mine,
                        (1..=1_000).collect::<Vec<_>>(),
                        "client {c}: its own counter's replies come back in the order sent"
                    );
                })
            })
            .collect();
        for c in clients {
            c.await.expect("a client failed");
        }
        let total = query(&mut connect(addr).await, &["GET", "total"])
            .await
            .unwrap();
        assert_eq!(
            total,
            Value::BulkString(b"8000".to_vec()),
            "one shared store: 8 clients × 1,000 INCRs"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_with_half_a_command_or_none_does_not_block_the_others() {
        let (addr, _) = server().await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut half = TcpStream::connect(addr).await.unwrap();
        half.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nval")
            .await
            .unwrap();
        let mut other = connect(addr).await;
        assert_eq!(
            query(&mut other, &["SET", "k", "x"]).await.unwrap(),
            Value::Okay,
            "two clients are stuck mid-command; this one is served anyway"
        );
        half.write_all(b"ue\r\n").await.unwrap();
        let mut reply = [0; 5];
        half.read_exact(&mut reply).await.unwrap();
        assert_eq!(
            &reply, b"+OK\r\n",
            "the half command is answered once complete"
        );
        silent.write_all(b"*1\r\n$4\r\nPING\r\n").await.unwrap();
        let mut pong = [0; 7];
        silent.read_exact(&mut pong).await.unwrap();
        assert_eq!(
            &pong, b"+PONG\r\n",
            "the silent client is served when it speaks"
        );
        assert_eq!(
            query(&mut other, &["GET", "k"]).await.unwrap(),
            Value::BulkString(b"value".to_vec())
        );
    }

    #[tokio::test]
    async fn a_client_that_vanishes_mid_command_leaves_the_server_serving() {
        let (addr, _) = server().await;
        let mut gone = TcpStream::connect(addr).await.unwrap();
        gone.write_all(b"*2\r\n$3\r\nGET\r\n").await.unwrap();
        drop(gone);
        let mut c = connect(addr).await;
        assert_eq!(
            query(&mut c, &["PING"]).await.unwrap(),
            Value::SimpleString("PONG".into())
        );
    }

    #[tokio::test]
    async fn a_pipeline_in_one_write_is_answered_in_order_and_in_full() {
        let (addr, _) = server().await;
        let mut bytes = Vec::new();
        for i in 0..50 {
            bytes.extend(redis::cmd("SET").arg("k").arg(i).get_packed_command());
            bytes.extend(redis::cmd("GET").arg("k").get_packed_command());
        }
        bytes.extend(redis::cmd("QUIT").get_packed_command());
        let want: String = (0..50)
            .map(|i| format!("+OK\r\n${}\r\n{i}\r\n", i.to_string().len()))
            .collect::<String>()
            + "+OK\r\n";
        assert_eq!(
            raw_until_closed(addr, &bytes).await,
            want,
            "101 commands in one write: 101 replies in order, then QUIT closes"
        );
        let flushes = sdlings_kit_resp::conn::flushes_on(addr.port());
        assert!(
            flushes <= 4,
            "101 commands arrived in one write and were answered in {flushes} writes: flush only when no further command is buffered"
        );
    }

    #[tokio::test]
    async fn a_malformed_frame_is_answered_with_an_error_and_the_connection_closed() {
        let (addr, _) = server().await;
        let out = raw_until_closed(addr, b"*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n").await;
        assert!(
            out.starts_with("+PONG\r\n-ERR Protocol error"),
            "the PING before is answered, then an error, then the close: got {out:?}"
        );
        assert!(
            out.ends_with("\r\n") && out.matches("\r\n").count() == 2,
            "nothing after the error: {out:?}"
        );
    }

    #[tokio::test]
    async fn quit_answers_ok_and_closes_the_connection() {
        let (addr, _) = server().await;
        let out = raw_until_closed(addr, b"*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n").await;
        assert_eq!(
            out, "+OK\r\n",
            "QUIT replies +OK, then the server closes: the PING after it is never run"
        );
    }

    #[tokio::test]
    async fn multi_queues_commands_until_exec_runs_them_as_one_reply() {
        let (addr, _) = server().await;
        let (mut a, mut b) = (connect(addr).await, connect(addr).await);
        assert_eq!(query(&mut a, &["MULTI"]).await.unwrap(), Value::Okay);
        assert_eq!(
            query(&mut a, &["INCR", "n"]).await.unwrap(),
            Value::SimpleString("QUEUED".into())
        );
        assert_eq!(
            query(&mut a, &["SET", "k", "v"]).await.unwrap(),
            Value::SimpleString("QUEUED".into())
        );
        assert_eq!(
            query(&mut b, &["GET", "k"]).await.unwrap(),
            Value::Nil,
            "queued commands do not run before EXEC"
        );
        assert_eq!(
            query(&mut b, &["INCR", "n"]).await.unwrap(),
            Value::Int(1),
            "another connection is not inside a's MULTI"
        );
        let exec = query(&mut a, &["EXEC"]).await.unwrap();
        assert_eq!(
            exec,
            Value::Array(vec![Value::Int(2), Value::Okay]),
            "EXEC answers one array: each queued command's reply"
        );
        assert_eq!(
            query(&mut a, &["GET", "k"]).await.unwrap(),
            Value::BulkString(b"v".to_vec()),
            "after EXEC, commands run at once again"
        );
        let atomic: (i64, i64) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg("n")
            .cmd("INCR")
            .arg("n")
            .query_async(&mut a)
            .await
            .unwrap();
        assert_eq!(
            atomic,
            (3, 4),
            "the redis crate's own atomic pipeline (MULTI ... EXEC) works"
        );
    }

    #[tokio::test]
    async fn exec_runs_every_queued_command_even_after_one_fails_and_quit_is_never_queued() {
        let (addr, _) = server().await;
        let mut bytes = Vec::new();
        for cmd in [
            &["SET", "s", "text"][..],
            &["MULTI"],
            &["INCR", "n"],
            &["INCR", "s"],
            &["SET", "k", "v"],
            &["INCR", "n"],
            &["EXEC"],
            &["QUIT"],
        ] {
            bytes.extend(redis::cmd(cmd[0]).arg(&cmd[1..]).get_packed_command());
        }
        let out = raw_until_closed(addr, &bytes).await;
        assert!(
            out.starts_with(
                "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*4\r\n:1\r\n-ERR "
            ) && out.ends_with("\r\n+OK\r\n:2\r\n+OK\r\n"),
            "a command that fails inside EXEC is an error in the array; the others still run (no rollback): {out:?}"
        );
        let out = raw_until_closed(addr, b"*1\r\n$5\r\nMULTI\r\n*1\r\n$4\r\nQUIT\r\n").await;
        assert_eq!(
            out, "+OK\r\n+OK\r\n",
            "QUIT inside MULTI is not queued: it closes at once"
        );
    }

    #[tokio::test]
    async fn discard_drops_the_queue_and_misplaced_exec_discard_and_multi_are_errors() {
        let (addr, _) = server().await;
        let mut a = connect(addr).await;
        assert!(
            query(&mut a, &["EXEC"]).await.is_err(),
            "EXEC without MULTI is an error"
        );
        assert!(
            query(&mut a, &["DISCARD"]).await.is_err(),
            "DISCARD without MULTI is an error"
        );
        query(&mut a, &["MULTI"]).await.unwrap();
        query(&mut a, &["SET", "k", "old"]).await.unwrap();
        assert!(
            query(&mut a, &["MULTI"]).await.is_err(),
            "MULTI inside MULTI is an error"
        );
        assert_eq!(query(&mut a, &["DISCARD"]).await.unwrap(), Value::Okay);
        assert_eq!(
            query(&mut a, &["GET", "k"]).await.unwrap(),
            Value::Nil,
            "the discarded SET never ran, and GET runs at once"
        );
        query(&mut a, &["MULTI"]).await.unwrap();
        assert_eq!(
            query(&mut a, &["EXEC"]).await.unwrap(),
            Value::Array(vec![]),
            "a new MULTI starts empty: nothing from the discarded one"
        );
    }
}
