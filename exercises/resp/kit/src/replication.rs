//! For exercise `replication`: time that a test moves by hand (a WAIT's timeout included), the
//! small store that is replicated, and its snapshot format.
//!
//! Never an answer: what goes into the replication stream, the offsets, the handshake and WAIT
//! are the exercise's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sdlings_kit::clock::{Clock, SystemClock};
use tokio::sync::watch;

use crate::conn::{parse_prefix, to_bytes};
use crate::{Command, Frame, command_name};

/// The time a server reads (for expiry) and sleeps on (for WAIT's timeout): real, or moved by
/// a test. Clones share the same time.
#[derive(Clone)]
pub enum Time {
    System(SystemClock),
    Manual(ManualTime),
}

impl Time {
    /// Real time, from now.
    pub fn system() -> Time {
        Time::System(SystemClock::new())
    }

    /// The time elapsed since this time's epoch (PXAT's milliseconds count from it).
    pub fn now(&self) -> Duration {
        match self {
            Time::System(clock) => clock.now(),
            Time::Manual(time) => time.now(),
        }
    }

    /// Returns once `now() >= deadline` (at once if it already is). Cancel-safe: use it in a
    /// `tokio::select!`.
    pub async fn sleep_until(&self, deadline: Duration) {
        match self {
            Time::System(clock) => {
                tokio::time::sleep(deadline.saturating_sub(clock.now())).await;
            }
            Time::Manual(time) => time.sleep_until(deadline).await,
        }
    }
}

impl From<ManualTime> for Time {
    fn from(time: ManualTime) -> Time {
        Time::Manual(time)
    }
}

/// Time that only moves when a test says so; sleepers wake when it passes their deadline.
#[derive(Clone)]
pub struct ManualTime {
    now: Arc<watch::Sender<Duration>>,
    sleepers: Arc<watch::Sender<usize>>,
}

impl Default for ManualTime {
    fn default() -> Self {
        Self::at(Duration::ZERO)
    }
}

impl ManualTime {
    /// Time reading zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Time reading `start` (a server whose clock is ahead: it applies everything later).
    pub fn at(start: Duration) -> Self {
        ManualTime {
            now: Arc::new(watch::Sender::new(start)),
            sleepers: Arc::new(watch::Sender::new(0)),
        }
    }

    pub fn now(&self) -> Duration {
        *self.now.borrow()
    }

    /// Moves time forward, waking every sleeper whose deadline it reaches.
    pub fn advance(&self, by: Duration) {
        self.now.send_modify(|now| *now += by);
    }

    /// Returns once at least `n` tasks sleep on this time: the moment a test may move time to
    /// fire their timeouts, knowing they are waiting.
    pub async fn sleepers(&self, n: usize) {
        let mut count = self.sleepers.subscribe();
        let _ = count.wait_for(|count| *count >= n).await;
    }

    async fn sleep_until(&self, deadline: Duration) {
        let mut now = self.now.subscribe();
        self.sleepers.send_modify(|n| *n += 1);
        let _awake = Awake(&self.sleepers);
        let _ = now.wait_for(|now| *now >= deadline).await;
    }
}

/// Counts a sleeper out when its sleep ends or is cancelled.
struct Awake<'a>(&'a watch::Sender<usize>);

impl Drop for Awake<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// The data a server holds: PING, GET key, SET key value [NX] [EX s | PX ms | PXAT ms],
/// DEL key..., INCR key, with Redis's replies (a reduced version of exercise
/// `commands_and_expiry`). A key is alive while `now <= its deadline`.
pub struct Store {
    time: Time,
    data: HashMap<Vec<u8>, (Vec<u8>, Option<Duration>)>,
}

impl Store {
    pub fn new(time: Time) -> Self {
        Store {
            time,
            data: HashMap::new(),
        }
    }

    /// Runs one command and returns its reply (errors as `-ERR ...` replies).
    pub fn execute(&mut self, cmd: &[Vec<u8>]) -> Frame {
        let now = self.time.now();
        self.data
            .retain(|_, (_, deadline)| deadline.is_none_or(|d| now <= d));
        match (command_name(cmd).as_str(), &cmd[1..]) {
            ("PING", []) => Frame::Simple("PONG".into()),
            ("GET", [k]) => self
                .data
                .get(k)
                .map_or(Frame::Null, |(v, _)| Frame::bulk(&v[..])),
            ("SET", [k, v, options @ ..]) => match set_options(options, now) {
                Some((nx, _)) if nx && self.data.contains_key(k) => Frame::Null,
                Some((_, deadline)) => {
                    self.data.insert(k.clone(), (v.clone(), deadline));
                    Frame::ok()
                }
                None => Frame::error("ERR syntax error"),
            },
            ("DEL", keys) if !keys.is_empty() => Frame::Integer(
                keys.iter()
                    .filter(|k| self.data.remove(*k).is_some())
                    .count() as i64,
            ),
            ("INCR", [k]) => {
                let (value, deadline) = self.data.get(k).cloned().unwrap_or((b"0".to_vec(), None));
                let n = std::str::from_utf8(&value)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok());
                match n.and_then(|n| n.checked_add(1)) {
                    Some(n) => {
                        self.data
                            .insert(k.clone(), (n.to_string().into_bytes(), deadline));
                        Frame::Integer(n)
                    }
                    None => Frame::error("ERR value is not an integer or out of range"),
                }
            }
            (name, _) => Frame::error(format!("ERR unknown command or wrong arguments '{name}'")),
        }
    }

    /// The live keys as a snapshot: one bulk string holding a `SET key value [PXAT ms]` command
    /// per key, in key order (Redis sends an RDB file here; this format is simpler).
    pub fn snapshot(&self) -> Frame {
        let now = self.time.now();
        let mut keys: Vec<_> = self
            .data
            .iter()
            .filter(|(_, (_, deadline))| deadline.is_none_or(|d| now <= d))
            .collect();
        keys.sort();
        let mut bytes = Vec::new();
        for (k, (v, deadline)) in keys {
            let mut set = vec![b"SET".to_vec(), k.clone(), v.clone()];
            if let Some(d) = deadline {
                set.extend([b"PXAT".to_vec(), d.as_millis().to_string().into_bytes()]);
            }
            bytes.extend(to_bytes(&Frame::command(set)));
        }
        Frame::Bulk(bytes)
    }

    /// Replaces everything this store holds by the snapshot's keys.
    pub fn load_snapshot(&mut self, snapshot: &Frame) -> Result<(), String> {
        let Frame::Bulk(bytes) = snapshot else {
            return Err(format!("a snapshot is a bulk string, not {snapshot:?}"));
        };
        self.data.clear();
        let mut at = 0;
        while at < bytes.len() {
            let (frame, used) = parse_prefix(&bytes[at..])?.ok_or("a torn snapshot")?;
            let cmd = command_of(&frame).ok_or(format!("not a command: {frame:?}"))?;
            if let Frame::Error(e) = self.execute(&cmd) {
                return Err(e);
            }
            at += used;
        }
        Ok(())
    }
}

/// The command a frame carries (an array of bulk strings), or None.
pub fn command_of(frame: &Frame) -> Option<Command> {
    match frame {
        Frame::Array(items) if !items.is_empty() => items
            .iter()
            .map(|f| match f {
                Frame::Bulk(b) => Some(b.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// SET's options: (NX given, the deadline), or None for a syntax error.
fn set_options(options: &[Vec<u8>], now: Duration) -> Option<(bool, Option<Duration>)> {
    let (mut nx, mut deadline) = (false, None);
    let mut options = options.iter();
    while let Some(option) = options.next() {
        let option = String::from_utf8_lossy(option).to_ascii_uppercase();
        if option == "NX" {
            nx = true;
            continue;
        }
        let n: u64 = std::str::from_utf8(options.next()?).ok()?.parse().ok()?;
        if deadline.is_some() || n == 0 {
            return None;
        }
        deadline = Some(match option.as_str() {
            "EX" => now + Duration::from_secs(n),
            "PX" => now + Duration::from_millis(n),
            "PXAT" => Duration::from_millis(n),
            _ => return None,
        });
    }
    Some((nx, deadline))
}
