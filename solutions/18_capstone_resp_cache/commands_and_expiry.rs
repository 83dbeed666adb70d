// Commands and expiry — GET, SET (EX/PX/NX/XX/KEEPTTL), DEL, INCR, EXPIRE, TTL, as Redis does them.
//
// Clients of a cache depend on exact semantics: a rate limiter does INCR then EXPIRE, a lock does
// SET NX PX, a session store reads TTL. Get one detail wrong (SET keeping an old TTL, NX treating
// an expired key as present) and the application misbehaves in ways that are hard to trace.
// Expired keys leave memory two ways: lazily, when a command touches one, and by a periodic sweep
// that samples keys with a TTL (a cache of a million keys cannot scan them all every 100 ms).
//
// Build `Store::execute` and `Store::sweep`. The property: every reply matches real Redis (TTL -2
// for a missing key, -1 without expiry, whole seconds rounded; a key is alive until the clock
// passes its deadline); the sweep removes only expired keys, samples only keys with a TTL,
// removes at most SWEEP_SAMPLE × SWEEP_ROUNDS per call, and goes on sampling only while more
// than a quarter of a sample had expired. The tests speak to it over TCP with the `redis` crate.
//
// Lab: your store behind the kit's server, loaded by many connections with pipelines. Turn
// DEPTHS and CLIENTS and watch ops/s follow the pipeline depth while one lock caps the total.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use rand::rngs::StdRng;
use std::sync::Mutex;

use sdlings_kit::clock::{Clock, SystemClock};
use sdlings_kit::lab::{Table, latency};
use sdlings_kit::workload::seeded_rng;
use sdlings_kit_resp::{Frame, command_name, lab, server};

/// Keys with a TTL sampled per round of a sweep, and the most rounds per sweep.
pub const SWEEP_SAMPLE: usize = 20;
pub const SWEEP_ROUNDS: usize = 16;

// ---- Your part -------------------------------------------------------------------------------

pub struct Store {
    clock: Arc<dyn Clock>,
    rng: StdRng,
    /// Key -> (value, deadline on the clock: alive while `now <= deadline`).
    data: HashMap<Vec<u8>, (Vec<u8>, Option<Duration>)>,
    /// The keys that have a deadline, for the sweep to sample from in O(1).
    with_ttl: Vec<Vec<u8>>,
    /// Where each of those keys sits in `with_ttl` (for O(1) removal by swap).
    ttl_index: HashMap<Vec<u8>, usize>,
}

impl Store {
    pub fn new(clock: Arc<dyn Clock>, rng: StdRng) -> Self {
        Store {
            clock,
            rng,
            data: HashMap::new(),
            with_ttl: Vec::new(),
            ttl_index: HashMap::new(),
        }
    }

    /// Keys held in memory, expired ones not yet removed included.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Runs one command (`["SET", "k", "v", "EX", "10"]`) and returns its reply.
    pub fn execute(&mut self, cmd: &[Vec<u8>]) -> Frame {
        let args = &cmd[1..];
        match (command_name(cmd).as_str(), args.len()) {
            ("PING", 0) => Frame::Simple("PONG".into()),
            ("GET", 1) => match self.live(&args[0]) {
                Some((value, _)) => Frame::Bulk(value.clone()),
                None => Frame::Null,
            },
            ("SET", n) if n >= 2 => self.set(args),
            ("DEL", n) if n >= 1 => {
                // One key at a time, as Redis does: `DEL k k` deletes k once and answers 1.
                let mut deleted = 0;
                for key in args {
                    deleted += i64::from(self.live(key).is_some());
                    self.remove(key);
                }
                Frame::Integer(deleted)
            }
            ("INCR", 1) => {
                let (old, deadline) = match self.live(&args[0]) {
                    Some((v, d)) => (parse_i64(v), *d),
                    None => (Some(0), None),
                };
                // INCR keeps the key's TTL: it modifies the value, it does not replace the key.
                match old.and_then(|n| n.checked_add(1)) {
                    Some(n) => {
                        self.insert(args[0].clone(), n.to_string().into_bytes(), deadline);
                        Frame::Integer(n)
                    }
                    None => Frame::error("ERR value is not an integer or out of range"),
                }
            }
            ("EXPIRE", 2) => match parse_i64(&args[1]) {
                None => Frame::error("ERR value is not an integer or out of range"),
                Some(_) if self.live(&args[0]).is_none() => Frame::Integer(0),
                // A TTL of zero or less deletes the key at once, as Redis does.
                Some(s) if s <= 0 => {
                    self.remove(&args[0]);
                    Frame::Integer(1)
                }
                Some(s) => {
                    let value = self.data[&args[0]].0.clone();
                    let deadline = self.clock.now() + Duration::from_secs(s as u64);
                    self.insert(args[0].clone(), value, Some(deadline));
                    Frame::Integer(1)
                }
            },
            ("TTL", 1) => {
                let now = self.clock.now();
                match self.live(&args[0]) {
                    None => Frame::Integer(-2),
                    Some((_, None)) => Frame::Integer(-1),
                    // Rounded to the nearest second, like Redis's (ttl_ms + 500) / 1000.
                    Some((_, Some(d))) => {
                        Frame::Integer(((*d - now).as_millis() as i64 + 500) / 1000)
                    }
                }
            }
            (name, _)
                if matches!(
                    name,
                    "PING" | "GET" | "SET" | "DEL" | "INCR" | "EXPIRE" | "TTL"
                ) =>
            {
                Frame::error(format!(
                    "ERR wrong number of arguments for '{}' command",
                    name.to_lowercase()
                ))
            }
            (name, _) => Frame::error(format!("ERR unknown command '{name}'")),
        }
    }

    /// SET key value [NX | XX] [EX seconds | PX milliseconds | KEEPTTL]
    fn set(&mut self, args: &[Vec<u8>]) -> Frame {
        let (mut nx, mut xx, mut keep, mut ttl) = (false, false, false, None);
        let mut opts = args[2..].iter();
        while let Some(opt) = opts.next() {
            match String::from_utf8_lossy(opt).to_ascii_uppercase().as_str() {
                "NX" => nx = true,
                "XX" => xx = true,
                "KEEPTTL" => keep = true,
                unit @ ("EX" | "PX") if ttl.is_none() => {
                    match opts.next().and_then(|n| parse_i64(n)) {
                        Some(n) if n > 0 => {
                            let n = n as u64;
                            ttl = Some(if unit == "EX" {
                                Duration::from_secs(n)
                            } else {
                                Duration::from_millis(n)
                            });
                        }
                        Some(_) => return Frame::error("ERR invalid expire time in 'set' command"),
                        None => return Frame::error("ERR syntax error"),
                    }
                }
                _ => return Frame::error("ERR syntax error"),
            }
        }
        if (nx && xx) || (keep && ttl.is_some()) {
            return Frame::error("ERR syntax error");
        }
        // An expired key counts as absent for NX and XX alike.
        let old = self.live(&args[0]).map(|(_, d)| *d);
        if (nx && old.is_some()) || (xx && old.is_none()) {
            return Frame::Null;
        }
        // Without KEEPTTL a SET replaces the key, TTL included: no EX means no expiry.
        let deadline = match ttl {
            Some(ttl) => Some(self.clock.now() + ttl),
            None if keep => old.flatten(),
            None => None,
        };
        self.insert(args[0].clone(), args[1].clone(), deadline);
        Frame::ok()
    }

    /// The key's entry if it exists and has not expired; an expired one is removed on the spot
    /// (lazy expiry).
    fn live(&mut self, key: &[u8]) -> Option<&(Vec<u8>, Option<Duration>)> {
        let now = self.clock.now();
        if matches!(self.data.get(key), Some((_, Some(d))) if now > *d) {
            self.remove(key);
        }
        self.data.get(key)
    }

    fn insert(&mut self, key: Vec<u8>, value: Vec<u8>, deadline: Option<Duration>) {
        self.untrack(&key);
        if deadline.is_some() {
            self.ttl_index.insert(key.clone(), self.with_ttl.len());
            self.with_ttl.push(key.clone());
        }
        self.data.insert(key, (value, deadline));
    }

    fn remove(&mut self, key: &[u8]) {
        self.untrack(key);
        self.data.remove(key);
    }

    /// Takes `key` out of the sampling list: swap it with the last key, and fix that one's index.
    fn untrack(&mut self, key: &[u8]) {
        if let Some(i) = self.ttl_index.remove(key) {
            self.with_ttl.swap_remove(i);
            if let Some(moved) = self.with_ttl.get(i) {
                self.ttl_index.insert(moved.clone(), i);
            }
        }
    }

    /// One active-expiry cycle (Redis runs it 10 times a second): sample keys with a TTL, remove
    /// the expired ones, and go on while more than a quarter of the sample had expired. Returns
    /// how many keys it removed.
    pub fn sweep(&mut self) -> usize {
        let now = self.clock.now();
        let mut removed = 0;
        for _ in 0..SWEEP_ROUNDS {
            let sample = SWEEP_SAMPLE.min(self.with_ttl.len());
            let mut expired = 0;
            for _ in 0..sample {
                let key = self.with_ttl[self.rng.random_range(0..self.with_ttl.len())].clone();
                if matches!(self.data.get(&key), Some((_, Some(d))) if now > *d) {
                    self.remove(&key);
                    expired += 1;
                }
            }
            removed += expired;
            if expired * 4 <= SWEEP_SAMPLE {
                break;
            }
        }
        removed
    }
}

/// An integer as Redis reads one (`string2ll`): `0`, or an optional `-` and digits that do not
/// start with 0. Rust's `parse` would also take `+5`, `05` and `-0`.
fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    if bytes != b"0" && !digits.first().is_some_and(|d| (b'1'..=b'9').contains(d)) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

// ---- Lab -------------------------------------------------------------------------------------

/// Client connections and pipeline depths of the table; pipelines each client sends.
const CLIENTS: [usize; 3] = [1, 8, 32];
const DEPTHS: [usize; 3] = [1, 16, 128];
const ROUNDS: usize = 200;

fn main() {
    sdlings_kit::lab::runtime().block_on(async {
        let store = Mutex::new(Store::new(Arc::new(SystemClock::new()), seeded_rng(1)));
        let addr = server::spawn(move |cmd| store.lock().unwrap().execute(&cmd)).await;
        println!("Your store behind the kit's server (a task per connection, one lock):");
        let mut table = Table::new(&[
            "clients",
            "pipeline depth",
            "ops/s",
            "p50 round trip",
            "p99 round trip",
        ]);
        for clients in CLIENTS {
            for depth in DEPTHS {
                let rounds = (ROUNDS * 16 / depth).max(10);
                let l = lab::load(addr, clients, depth, rounds).await;
                table.row(&[
                    clients.to_string(),
                    depth.to_string(),
                    format!("{:.0}", l.ops_per_sec),
                    latency(l.p50),
                    latency(l.p99),
                ]);
            }
        }
        table.print();
    });
}

#[cfg(test)]
mod tests {
    use redis::Value;
    use redis::aio::MultiplexedConnection;
    use sdlings_kit::clock::ManualClock;
    use sdlings_kit::property::for_seeds;
    use sdlings_kit_resp::client::{connect, query};
    use sdlings_kit_resp::generate;

    use super::*;

    /// A server on a local port running a fresh store on a manual clock, and a client of it.
    async fn server() -> (MultiplexedConnection, ManualClock, Arc<Mutex<Store>>) {
        let clock = ManualClock::new();
        let store = Arc::new(Mutex::new(Store::new(
            Arc::new(clock.clone()),
            seeded_rng(7),
        )));
        let shared = Arc::clone(&store);
        let addr =
            sdlings_kit_resp::server::spawn(move |cmd| shared.lock().unwrap().execute(&cmd)).await;
        (connect(addr).await, clock, store)
    }

    async fn q(c: &mut MultiplexedConnection, args: &str) -> Value {
        let args: Vec<&str> = args.split(' ').collect();
        match query(c, &args).await {
            Ok(v) => v,
            Err(e) if e.kind() == redis::ErrorKind::Io => {
                panic!("{args:?}: the connection failed: {e}")
            }
            Err(e) => Value::SimpleString(format!("error: {}", e.detail().unwrap_or_default())),
        }
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn secs(n: f64) -> Duration {
        Duration::from_secs_f64(n)
    }

    fn is_error(v: &Value) -> bool {
        matches!(v, Value::SimpleString(s) if s.starts_with("error"))
    }

    #[tokio::test]
    async fn set_get_del_and_ping_answer_as_redis_does() {
        let (mut c, _, _) = server().await;
        assert_eq!(q(&mut c, "PING").await, Value::SimpleString("PONG".into()));
        assert_eq!(q(&mut c, "GET k").await, Value::Nil, "a missing key is nil");
        assert_eq!(q(&mut c, "SET k v1").await, Value::Okay);
        assert_eq!(q(&mut c, "GET k").await, bulk("v1"));
        assert_eq!(q(&mut c, "SET k v2").await, Value::Okay, "SET overwrites");
        assert_eq!(q(&mut c, "GET k").await, bulk("v2"));
        assert_eq!(
            q(&mut c, "DEL k missing k").await,
            Value::Int(1),
            "DEL counts the keys that existed, once each"
        );
        assert_eq!(q(&mut c, "GET k").await, Value::Nil);
        assert!(
            is_error(&q(&mut c, "FLUSHEVERYTHING").await),
            "an unknown command is an error reply, and the connection lives on"
        );
        for bad in ["GET", "GET a b", "SET k", "INCR", "TTL", "EXPIRE k", "DEL"] {
            assert!(
                is_error(&q(&mut c, bad).await),
                "{bad:?}: a wrong number of arguments is an error reply, and the connection lives on"
            );
        }
        assert_eq!(
            q(&mut c, "get k").await,
            Value::Nil,
            "command names are case-insensitive"
        );
    }

    #[tokio::test]
    async fn ttl_is_minus_two_for_a_missing_key_minus_one_without_expiry_and_rounds_to_seconds() {
        let (mut c, clock, _) = server().await;
        assert_eq!(q(&mut c, "TTL nope").await, Value::Int(-2), "missing key");
        q(&mut c, "SET k v").await;
        assert_eq!(
            q(&mut c, "TTL k").await,
            Value::Int(-1),
            "a key without expiry"
        );
        q(&mut c, "SET t v EX 10").await;
        assert_eq!(q(&mut c, "TTL t").await, Value::Int(10));
        clock.advance(secs(3.4));
        assert_eq!(
            q(&mut c, "TTL t").await,
            Value::Int(7),
            "6.6 s left rounds to 7, as Redis rounds"
        );
        clock.advance(secs(0.2));
        assert_eq!(
            q(&mut c, "TTL t").await,
            Value::Int(6),
            "6.4 s left rounds to 6"
        );
        q(&mut c, "SET p v PX 1500").await;
        assert_eq!(
            q(&mut c, "TTL p").await,
            Value::Int(2),
            "PX is milliseconds: 1.5 s rounds to 2"
        );
    }

    #[tokio::test]
    async fn a_key_lives_until_the_clock_passes_its_deadline_then_is_gone_and_freed() {
        let (mut c, clock, store) = server().await;
        q(&mut c, "SET k v PX 100").await;
        clock.advance(secs(0.1));
        assert_eq!(
            q(&mut c, "GET k").await,
            bulk("v"),
            "at exactly its deadline the key still lives (Redis expires when now > deadline)"
        );
        assert_eq!(q(&mut c, "TTL k").await, Value::Int(0));
        clock.advance(secs(0.001));
        assert_eq!(
            q(&mut c, "GET k").await,
            Value::Nil,
            "1 ms past its deadline the key is gone"
        );
        assert_eq!(
            store.lock().unwrap().len(),
            0,
            "touching an expired key removes it from memory (lazy expiry)"
        );
        assert_eq!(
            q(&mut c, "TTL k").await,
            Value::Int(-2),
            "an expired key is a missing key"
        );
        q(&mut c, "SET k v PX 100").await;
        clock.advance(secs(0.2));
        assert_eq!(
            q(&mut c, "DEL k").await,
            Value::Int(0),
            "DEL does not count an expired key"
        );
    }

    #[tokio::test]
    async fn an_expired_key_is_missing_to_every_command_even_before_anything_touched_it() {
        let (mut c, clock, _) = server().await;
        let cases = [
            ("TTL", "", Value::Int(-2)),
            ("EXPIRE", " 100", Value::Int(0)),
            ("GET", "", Value::Nil),
            ("DEL", "", Value::Int(0)),
            ("INCR", "", Value::Int(1)),
            ("SET", " x XX", Value::Nil),
            ("SET", " x NX", Value::Okay),
        ];
        for (i, _) in cases.iter().enumerate() {
            q(&mut c, &format!("SET e{i} 7 PX 100")).await;
        }
        clock.advance(secs(0.2));
        for (i, (name, rest, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                q(&mut c, &format!("{name} e{i}{rest}")).await,
                want,
                "{name} on a key that expired but was never touched since: it is a missing key"
            );
        }
        assert_eq!(
            q(&mut c, "GET e1").await,
            Value::Nil,
            "EXPIRE does not bring an expired key back"
        );
    }

    #[tokio::test]
    async fn set_without_keepttl_clears_the_ttl_and_with_it_keeps_it() {
        let (mut c, clock, _) = server().await;
        q(&mut c, "SET k v EX 5").await;
        assert_eq!(q(&mut c, "SET k v2 KEEPTTL").await, Value::Okay);
        assert_eq!(
            q(&mut c, "TTL k").await,
            Value::Int(5),
            "KEEPTTL keeps the deadline"
        );
        assert_eq!(q(&mut c, "SET k v3").await, Value::Okay);
        assert_eq!(
            q(&mut c, "TTL k").await,
            Value::Int(-1),
            "a plain SET replaces the key, TTL included"
        );
        clock.advance(secs(60.0));
        assert_eq!(q(&mut c, "GET k").await, bulk("v3"), "so it never expires");
        q(&mut c, "SET k v EX 5").await;
        assert_eq!(q(&mut c, "SET k v3 XX").await, Value::Okay);
        assert_eq!(
            q(&mut c, "TTL k").await,
            Value::Int(-1),
            "SET XX replaces the key too: without KEEPTTL the TTL goes"
        );
        assert_eq!(q(&mut c, "set k v4 keepttl").await, Value::Okay);
        assert_eq!(q(&mut c, "set k v4 xx ex 7").await, Value::Okay);
        assert_eq!(
            q(&mut c, "TTL k").await,
            Value::Int(7),
            "options are case-insensitive, like command names"
        );
        q(&mut c, "SET k v4 EX 5").await;
        q(&mut c, "SET k v5 EX 50").await;
        assert_eq!(
            q(&mut c, "TTL k").await,
            Value::Int(50),
            "a new EX replaces the old one"
        );
    }

    #[tokio::test]
    async fn nx_sets_only_an_absent_key_and_xx_only_a_present_one_and_expired_is_absent() {
        let (mut c, clock, _) = server().await;
        assert_eq!(
            q(&mut c, "SET k a XX").await,
            Value::Nil,
            "XX on a missing key does nothing"
        );
        assert_eq!(q(&mut c, "GET k").await, Value::Nil);
        assert_eq!(
            q(&mut c, "SET k a NX").await,
            Value::Okay,
            "NX on a missing key sets it"
        );
        assert_eq!(
            q(&mut c, "SET k b NX").await,
            Value::Nil,
            "NX on a present key does nothing"
        );
        assert_eq!(q(&mut c, "GET k").await, bulk("a"));
        assert_eq!(
            q(&mut c, "SET k c XX PX 100").await,
            Value::Okay,
            "XX on a present key sets it"
        );
        assert_eq!(q(&mut c, "GET k").await, bulk("c"));
        clock.advance(secs(0.2));
        assert_eq!(
            q(&mut c, "SET k d XX").await,
            Value::Nil,
            "an expired key is absent: XX does nothing"
        );
        assert_eq!(
            q(&mut c, "SET k e NX EX 9").await,
            Value::Okay,
            "an expired key is absent: NX sets it"
        );
        assert_eq!(q(&mut c, "TTL k").await, Value::Int(9));
        for bad in [
            "SET k v NX XX",
            "SET k v EX 0",
            "SET k v PX -5",
            "SET k v EX ten",
            "SET k v EX",
            "SET k v EX 5 KEEPTTL",
            "SET k v EX 5 PX 100",
            "SET k v PX 100 EX 5",
            "SET k v SOON",
        ] {
            assert!(
                is_error(&q(&mut c, bad).await),
                "{bad:?} is an error reply, as in Redis"
            );
        }
        assert_eq!(
            q(&mut c, "GET k").await,
            bulk("e"),
            "a refused SET changes nothing"
        );
    }

    #[tokio::test]
    async fn incr_counts_from_zero_keeps_the_ttl_and_refuses_what_is_not_an_integer() {
        let (mut c, clock, _) = server().await;
        assert_eq!(
            q(&mut c, "INCR n").await,
            Value::Int(1),
            "a missing key counts from 0"
        );
        assert_eq!(q(&mut c, "INCR n").await, Value::Int(2));
        q(&mut c, "SET n -10 EX 10").await;
        assert_eq!(q(&mut c, "INCR n").await, Value::Int(-9));
        assert_eq!(
            q(&mut c, "TTL n").await,
            Value::Int(10),
            "INCR modifies the value and keeps the TTL"
        );
        clock.advance(secs(11.0));
        assert_eq!(
            q(&mut c, "INCR n").await,
            Value::Int(1),
            "the expired counter starts again from 0"
        );
        assert_eq!(
            q(&mut c, "TTL n").await,
            Value::Int(-1),
            "without the old TTL"
        );
        for (value, why) in [
            ("abc", "not a number"),
            ("1.5", "not an integer"),
            ("05", "Redis reads no leading zero"),
            ("-0", "nor a negative zero"),
            ("9223372036854775807", "the next value overflows i64"),
        ] {
            q(&mut c, &format!("SET s {value}")).await;
            assert!(
                is_error(&q(&mut c, "INCR s").await),
                "INCR of {value:?}: {why}, so an error"
            );
            assert_eq!(
                q(&mut c, "GET s").await,
                bulk(value),
                "a refused INCR leaves the value alone"
            );
        }
    }

    #[tokio::test]
    async fn expire_sets_a_new_deadline_and_zero_or_negative_deletes_the_key() {
        let (mut c, clock, _) = server().await;
        assert_eq!(q(&mut c, "EXPIRE k 10").await, Value::Int(0), "no such key");
        q(&mut c, "SET k v").await;
        assert_eq!(q(&mut c, "EXPIRE k 10").await, Value::Int(1));
        assert_eq!(q(&mut c, "TTL k").await, Value::Int(10));
        clock.advance(secs(4.0));
        assert_eq!(
            q(&mut c, "EXPIRE k 100").await,
            Value::Int(1),
            "EXPIRE replaces the deadline"
        );
        assert_eq!(
            q(&mut c, "TTL k").await,
            Value::Int(100),
            "counted from now"
        );
        assert_eq!(
            q(&mut c, "EXPIRE k 0").await,
            Value::Int(1),
            "zero deletes the key at once"
        );
        assert_eq!(q(&mut c, "GET k").await, Value::Nil);
        q(&mut c, "SET k v").await;
        assert_eq!(q(&mut c, "EXPIRE k -1").await, Value::Int(1));
        assert_eq!(
            q(&mut c, "TTL k").await,
            Value::Int(-2),
            "a negative TTL deletes it too"
        );
        assert!(
            is_error(&q(&mut c, "EXPIRE k +5").await),
            "Redis reads no + sign: +5 is not an integer"
        );
    }

    /// A store filled by the kit (`live` keys without TTL, `fresh` with one not yet passed,
    /// `dead` expired), its clock moved on 1 s.
    fn store_with(live: usize, fresh: usize, dead: usize, seed: u64) -> (Store, ManualClock) {
        let clock = ManualClock::new();
        let mut store = Store::new(Arc::new(clock.clone()), seeded_rng(seed));
        generate::expiring_keys(|cmd| store.execute(&cmd), live, fresh, dead);
        clock.advance(secs(1.0));
        (store, clock)
    }

    #[test]
    fn sweeps_remove_every_expired_key_and_never_a_live_one() {
        for_seeds(30, |rng| {
            let (live, fresh, dead) = (
                rng.random_range(0..300),
                rng.random_range(0..300),
                rng.random_range(1..300),
            );
            let (mut store, _) = store_with(live, fresh, dead, rng.random());
            let removed: usize = (0..1_000).map(|_| store.sweep()).sum();
            assert_eq!(
                removed, dead,
                "{live} keys without TTL, {fresh} alive with one, {dead} expired: sweeps remove exactly the expired"
            );
            assert_eq!(store.len(), live + fresh, "and every live key stays");
        });
    }

    #[test]
    fn a_sweep_samples_only_keys_with_a_ttl() {
        let (mut store, _) = store_with(20_000, 0, 50, 3);
        let removed: usize = (0..10).map(|_| store.sweep()).sum();
        assert_eq!(
            removed, 50,
            "50 expired keys among 20,000 without a TTL: sample from the keys that have one, or the sweep never finds them"
        );
    }

    #[test]
    fn a_sweep_is_bounded_and_stops_early_when_few_sampled_keys_had_expired() {
        let (mut store, _) = store_with(0, 0, 10_000, 4);
        let removed = store.sweep();
        assert!(
            (SWEEP_SAMPLE * SWEEP_ROUNDS / 2..=SWEEP_SAMPLE * SWEEP_ROUNDS).contains(&removed),
            "all 10,000 keys expired: one sweep runs its {SWEEP_ROUNDS} rounds of {SWEEP_SAMPLE} and stops (removed {removed}): a full scan stalls the server"
        );
        for_seeds(20, |rng| {
            let (mut store, _) = store_with(0, 8_000, 2_000, rng.random());
            let removed = store.sweep();
            assert!(
                removed < 30,
                "20% of the keys expired: a sample of {SWEEP_SAMPLE} finds about 4, no more than a quarter, so the sweep stops after a round or two (removed {removed}; all {SWEEP_ROUNDS} rounds would remove about 64)"
            );
        });
    }

    #[test]
    fn a_sweep_goes_on_only_while_more_than_a_quarter_of_a_sample_had_expired() {
        // Exactly a quarter of the keys with a TTL expired: a sample of 20 finds exactly 5 (a
        // quarter, not more: stop) about one time in five. Going on only after 6 or more removes
        // about 7.4 keys per sweep on average; going on after 5 too, about 9.8.
        let (cases, mut removed) = (400, 0);
        for_seeds(cases, |rng| {
            let (mut store, _) = store_with(0, 300, 100, rng.random());
            removed += store.sweep();
        });
        let mean = removed as f64 / cases as f64;
        assert!(
            mean < 8.5,
            "a quarter of the keys expired: a sweep removed {mean:.1} keys on average; it goes on after a round only if MORE than a quarter of its sample had expired"
        );
    }
}
