// Sticky sessions — send a session back to the backend that holds its state.
//
// Some backends keep per-user state in memory (a cart, a websocket's subscriptions, an upload in
// progress), so the balancer must send the same session id to the same backend. The naive
// `hash(session) % live_backends` breaks when the pool changes: if one of 4 backends dies, about
// 3 sessions in 4 move, most of them away from healthy backends. Their state is lost for nothing.
//
// Build `StickyBalancer` in two layers:
// - `place(session)`: among the backends that are up, the one with the highest given
//   `score(session, backend)` (rendezvous hashing; lowest id on equal scores). When a backend
//   dies, only the sessions whose top score was that backend get a new home.
// - `route(session)`: an affinity table, like an HAProxy stick table. A session in the table goes
//   to its backend while that backend is up; if it is down, the session is placed again and the
//   table updated. Decision: when the dead backend returns, moved sessions *stay* where they are
//   (moving back would lose their state again); it gets new sessions. The table holds at most
//   `capacity` sessions and forgets the least recently routed one to make room (capacity 0: no
//   table, pure `place`).
//
// Lab: real HTTP backends count requests per session; a backend crashes, then restarts empty.
// "Lost state" counts sessions that found none: hash mod N loses most sessions twice, rendezvous
// alone the dead backend's sessions twice (away, then back to an empty process), your table once.
// The price: the restarted backend only gets new sessions (last column). Set TABLE_CAPACITY to
// 100, below the ~200 active sessions: an LRU table that small remembers nothing useful.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use sdlings_kit::backend::{self, Backend, Behaviour};
use sdlings_kit::lab::{Table, bar_chart, percent};

/// Backends are numbered 0..n in the order they were configured.
pub type BackendId = usize;

/// How much `backend` "wants" `session`: a stable 64-bit hash of the pair (the same on every run
/// and machine). Rendezvous hashing sends a session to the backend with the highest score.
pub fn score(session: &str, backend: BackendId) -> u64 {
    // FNV-1a over the session id, mixed with the backend id through splitmix64's finaliser.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in session.bytes() {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut x = h ^ (backend as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One affinity table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stick {
    /// Where the session goes.
    pub backend: BackendId,
    /// The balancer's `tick` when the session was last routed: the smallest is the least
    /// recently used.
    pub last_used: u64,
}

pub struct StickyBalancer {
    /// Whether each backend is up (index = `BackendId`).
    up: Vec<bool>,
    /// The most sessions the table may hold.
    capacity: usize,
    /// Session id -> where it sticks.
    table: HashMap<String, Stick>,
    /// A logical clock: add one on every `route`, and stamp the session's entry with it.
    tick: u64,
}

impl StickyBalancer {
    /// Backends `0..backends`, all up; an affinity table of at most `capacity` sessions.
    pub fn new(backends: usize, capacity: usize) -> Self {
        StickyBalancer {
            up: vec![true; backends],
            capacity,
            table: HashMap::new(),
            tick: 0,
        }
    }

    /// Marks a backend up or down (health checks decide; see the last exercise of this topic).
    pub fn set_up(&mut self, id: BackendId, up: bool) {
        self.up[id] = up;
    }

    pub fn is_up(&self, id: BackendId) -> bool {
        self.up[id]
    }

    /// Sessions in the affinity table.
    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    /// Where the table says `session` sticks, without touching its recency.
    pub fn stuck_to(&self, session: &str) -> Option<BackendId> {
        self.table.get(session).map(|stick| stick.backend)
    }
}

// ---- Your part -------------------------------------------------------------------------------

impl StickyBalancer {
    /// The session's home: among the backends that are up, the one with the highest
    /// `score(session, id)` (lowest id on equal scores). `None` if no backend is up.
    pub fn place(&self, session: &str) -> Option<BackendId> {
        todo!("the up backend with the highest score for {session}")
    }

    /// Routes one request of `session`: to the backend in its table entry if that backend is
    /// up; otherwise to `place(session)`, recording the choice in the table (evicting the least
    /// recently used session if the table is full). Refreshes the entry's `last_used`. `None`
    /// (table unchanged) if no backend is up.
    pub fn route(&mut self, session: &str) -> Option<BackendId> {
        todo!("route {session} through the affinity table")
    }
}

// ---- Lab --------------------------------------------------------------------------------------
// Real HTTP servers on 127.0.0.1. `GET /session?id=S` answers "<backend> <count>": how many
// requests of session S *this backend process* has seen. A session whose request comes back with
// count 1 although it was served before has lost its state (it landed on a backend that never saw
// it, or on a restarted process).
//
// Phase 1: all backends up. Phase 2: backend 2 crashes (and is marked down). Phase 3: backend 2
// is restarted (a new, empty process) and marked up. Each phase, every known session sends
// REQUESTS_PER_PHASE requests and NEW_SESSIONS_PER_PHASE new sessions arrive.

const BACKENDS: usize = 4;
const CRASHING: BackendId = 2;
/// Sessions that exist from phase 1 on.
const SESSIONS: usize = 120;
const NEW_SESSIONS_PER_PHASE: usize = 40;
const REQUESTS_PER_PHASE: usize = 2;
/// Your affinity table's size. Try 100 (fewer than the active sessions) and 0.
const TABLE_CAPACITY: usize = 1_000;
const CONCURRENCY: usize = 16;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// The three routing strategies compared.
enum Router {
    /// BASELINE FOR COMPARISON: hash(session) % (number of live backends), over the live ones.
    ModN { up: Vec<bool> },
    /// Your balancer (with a table of capacity 0 it is pure rendezvous hashing).
    Sticky(StickyBalancer),
}

impl Router {
    fn set_up(&mut self, id: BackendId, is_up: bool) {
        match self {
            Router::ModN { up } => up[id] = is_up,
            Router::Sticky(balancer) => balancer.set_up(id, is_up),
        }
    }

    fn route(&mut self, session: &str) -> Option<BackendId> {
        match self {
            Router::ModN { up } => {
                let live: Vec<BackendId> = (0..up.len()).filter(|&id| up[id]).collect();
                // Any stable hash will do; reuse `score` with a fixed "backend".
                (!live.is_empty()).then(|| live[(score(session, 0) % live.len() as u64) as usize])
            }
            Router::Sticky(balancer) => balancer.route(session),
        }
    }
}

#[derive(Default)]
struct PhaseStats {
    requests: u64,
    errors: u64,
    /// Known sessions that found no state (count 1) on their first request of the phase.
    lost_state: u64,
    per_backend: [u64; BACKENDS],
}

/// One phase: every session in `sessions` sends REQUESTS_PER_PHASE requests, in rounds.
async fn phase(
    router: &mut Router,
    addrs: &[SocketAddr],
    sessions: &[String],
    known: &[bool],
) -> PhaseStats {
    let mut stats = PhaseStats::default();
    for round in 0..REQUESTS_PER_PHASE {
        let routed: Vec<(usize, Option<BackendId>)> = sessions
            .iter()
            .enumerate()
            .map(|(i, s)| (i, router.route(s)))
            .collect();
        for chunk in routed.chunks(CONCURRENCY) {
            let mut requests = tokio::task::JoinSet::new();
            for &(i, id) in chunk {
                let Some(id) = id else {
                    stats.errors += 1;
                    continue;
                };
                let (addr, path) = (addrs[id], format!("/session?id={}", sessions[i]));
                requests
                    .spawn(async move { (i, id, backend::get(addr, &path, CLIENT_TIMEOUT).await) });
            }
            for (i, id, result) in requests.join_all().await {
                stats.requests += 1;
                stats.per_backend[id] += 1;
                match result {
                    Ok(r) if r.status == 200 => {
                        let count = r.body.rsplit(' ').next().unwrap_or("0");
                        if round == 0 && known[i] && count == "1" {
                            stats.lost_state += 1;
                        }
                    }
                    _ => stats.errors += 1,
                }
            }
        }
    }
    stats
}

async fn scenario(mut router: Router) -> [PhaseStats; 3] {
    let mut fleet: Vec<Backend> = backend::start_fleet(BACKENDS, Duration::from_millis(1))
        .await
        .expect("start the backends on 127.0.0.1");
    let mut sessions: Vec<String> = (0..SESSIONS).map(|i| format!("user{i}")).collect();
    let mut known = vec![false; SESSIONS];
    let mut results = Vec::new();
    for phase_no in 0..3 {
        match phase_no {
            1 => {
                fleet[CRASHING].crash();
                router.set_up(CRASHING, false);
            }
            2 => {
                fleet[CRASHING] = Backend::start(
                    &format!("backend-{CRASHING}"),
                    Behaviour::Healthy {
                        latency: Duration::from_millis(1),
                    },
                )
                .await
                .expect("restart the backend");
                router.set_up(CRASHING, true);
            }
            _ => {}
        }
        sessions.extend((0..NEW_SESSIONS_PER_PHASE).map(|i| format!("new{phase_no}-{i}")));
        known.resize(sessions.len(), false);
        let addrs: Vec<SocketAddr> = fleet.iter().map(Backend::addr).collect();
        results.push(phase(&mut router, &addrs, &sessions, &known).await);
        for k in known.iter_mut() {
            *k = true;
        }
    }
    let mut results = results.into_iter();
    std::array::from_fn(|_| results.next().expect("three phases"))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        println!(
            "{BACKENDS} backends on 127.0.0.1; {SESSIONS} sessions (+{NEW_SESSIONS_PER_PHASE} new \
             per phase), {REQUESTS_PER_PHASE} requests per session per phase.\nPhase 2: \
             backend-{CRASHING} crashes. Phase 3: backend-{CRASHING} is restarted (empty) and \
             marked up.\n"
        );
        let strategies = [
            (
                "hash mod N (baseline)",
                Router::ModN {
                    up: vec![true; BACKENDS],
                },
            ),
            (
                "rendezvous, no table",
                Router::Sticky(StickyBalancer::new(BACKENDS, 0)),
            ),
            (
                "rendezvous + table (yours)",
                Router::Sticky(StickyBalancer::new(BACKENDS, TABLE_CAPACITY)),
            ),
        ];
        let mut table = Table::new(&[
            "strategy",
            "lost state: crash",
            "lost state: restart",
            "errors",
            "backend-2 share, phase 3",
        ]);
        let mut bars = Vec::new();
        for (name, router) in strategies {
            let [_, crash, restart] = scenario(router).await;
            let total_errors: u64 = crash.errors + restart.errors;
            table.row(&[
                name.to_string(),
                crash.lost_state.to_string(),
                restart.lost_state.to_string(),
                total_errors.to_string(),
                percent(restart.per_backend[CRASHING], restart.requests),
            ]);
            bars.push((
                name.to_string(),
                (crash.lost_state + restart.lost_state) as f64,
            ));
        }
        table.print();
        println!(
            "\nsessions that lost their state (of {} known sessions, over both events)\n{}",
            SESSIONS + NEW_SESSIONS_PER_PHASE,
            bar_chart(&bars, 40)
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("session-{i}")).collect()
    }

    /// Routes every session once and returns where each went.
    fn route_all(lb: &mut StickyBalancer, sessions: &[String]) -> Vec<BackendId> {
        sessions
            .iter()
            .map(|s| lb.route(s).expect("some backend is up"))
            .collect()
    }

    #[test]
    fn the_same_session_always_lands_on_the_same_backend() {
        let mut lb = StickyBalancer::new(5, 100);
        let first = lb.route("alice").unwrap();
        for _ in 0..20 {
            assert_eq!(lb.route("alice"), Some(first), "alice's state lives there");
        }
    }

    #[test]
    fn place_picks_the_up_backend_with_the_highest_score() {
        let mut lb = StickyBalancer::new(6, 0);
        for s in sessions(50) {
            let best = (0..6).max_by_key(|&id| score(&s, id)).unwrap();
            assert_eq!(
                lb.place(&s),
                Some(best),
                "{s}: the home is the backend with the highest score(session, backend)"
            );
        }
        lb.set_up(3, false);
        for s in sessions(50) {
            let best = (0..6)
                .filter(|&id| id != 3)
                .max_by_key(|&id| score(&s, id))
                .unwrap();
            assert_eq!(
                lb.place(&s),
                Some(best),
                "{s}: backend 3 is down, so the home is the best-scoring backend that is up"
            );
        }
    }

    #[test]
    fn sessions_spread_evenly_over_the_backends() {
        let mut lb = StickyBalancer::new(4, 10_000);
        let mut counts = [0u32; 4];
        for id in route_all(&mut lb, &sessions(4_000)) {
            counts[id] += 1;
        }
        for (id, &c) in counts.iter().enumerate() {
            assert!(
                (850..=1_150).contains(&c),
                "backend {id} got {c} of 4000 sessions; each should get about 1000: {counts:?}"
            );
        }
    }

    #[test]
    fn when_a_backend_dies_only_its_sessions_move() {
        let all = sessions(2_000);
        let mut lb = StickyBalancer::new(4, 0); // no table: placement alone must be stable
        let before = route_all(&mut lb, &all);
        lb.set_up(1, false);
        let after = route_all(&mut lb, &all);
        for (i, s) in all.iter().enumerate() {
            if before[i] != 1 {
                assert_eq!(
                    after[i], before[i],
                    "{s} was on backend {}, which is still up: it must not move when backend 1 \
                     dies (hash mod N moves about 3 sessions in 4)",
                    before[i]
                );
            } else {
                assert_ne!(after[i], 1, "{s}'s backend is down: it must move");
            }
        }
    }

    #[test]
    fn a_dead_backends_sessions_spread_over_the_survivors() {
        let all = sessions(3_000);
        let mut lb = StickyBalancer::new(4, 10_000);
        let before = route_all(&mut lb, &all);
        lb.set_up(2, false);
        let after = route_all(&mut lb, &all);
        let mut landed = [0u32; 4];
        for i in 0..all.len() {
            if before[i] == 2 {
                landed[after[i]] += 1;
            }
        }
        let moved: u32 = landed.iter().sum();
        for id in [0, 1, 3] {
            assert!(
                landed[id] * 5 >= moved,
                "backend 2's {moved} sessions should be shared by the three survivors (about a \
                 third each), not dumped on one neighbour: {landed:?}"
            );
        }
    }

    #[test]
    fn a_session_is_never_routed_to_a_dead_backend() {
        let all = sessions(300);
        let mut lb = StickyBalancer::new(3, 1_000);
        let before = route_all(&mut lb, &all);
        let on_zero: Vec<&String> = all
            .iter()
            .zip(&before)
            .filter(|(_, id)| **id == 0)
            .map(|(s, _)| s)
            .collect();
        assert!(!on_zero.is_empty());
        lb.set_up(0, false);
        for s in on_zero {
            assert_ne!(
                lb.route(s),
                Some(0),
                "{s}'s table entry points at backend 0, but backend 0 is down"
            );
        }
    }

    #[test]
    fn moved_sessions_stay_on_their_new_backend_when_the_old_one_returns() {
        let all = sessions(400);
        let mut lb = StickyBalancer::new(4, 1_000);
        let before = route_all(&mut lb, &all);
        lb.set_up(3, false);
        let during = route_all(&mut lb, &all);
        lb.set_up(3, true);
        let after = route_all(&mut lb, &all);
        let mut moved = 0;
        for i in 0..all.len() {
            if before[i] == 3 {
                moved += 1;
                assert_eq!(
                    after[i], during[i],
                    "{} moved to backend {} while backend 3 was down, and its state now lives \
                     there: it stays when backend 3 returns (the table remembers)",
                    all[i], during[i]
                );
            } else {
                assert_eq!(after[i], before[i], "{} never had to move", all[i]);
            }
        }
        assert!(moved > 0);
        assert_eq!(lb.stuck_to(&all[0]), Some(after[0]));
    }

    #[test]
    fn a_backend_that_returns_gets_new_sessions() {
        let mut lb = StickyBalancer::new(4, 10_000);
        lb.set_up(3, false);
        route_all(&mut lb, &sessions(200));
        lb.set_up(3, true);
        let fresh: Vec<String> = (0..400).map(|i| format!("fresh-{i}")).collect();
        let to_three = route_all(&mut lb, &fresh)
            .into_iter()
            .filter(|&id| id == 3)
            .count();
        assert!(
            (60..=140).contains(&to_three),
            "backend 3 is back: about a quarter of the new sessions (100 of 400) should go \
             there, got {to_three}"
        );
    }

    #[test]
    fn the_table_never_holds_more_than_its_capacity() {
        let mut lb = StickyBalancer::new(4, 50);
        for (i, s) in sessions(5_000).iter().enumerate() {
            lb.route(s);
            assert!(
                lb.table_len() <= 50,
                "after {} sessions the table holds {}: it must be bounded (capacity 50), or \
                 every visitor ever seen stays in memory",
                i + 1,
                lb.table_len()
            );
        }
        assert_eq!(lb.table_len(), 50, "a full table stays full");
    }

    #[test]
    fn the_least_recently_routed_session_is_forgotten_first() {
        let mut lb = StickyBalancer::new(4, 3);
        lb.route("a");
        lb.route("b");
        lb.route("c");
        lb.route("a"); // a is now the most recently used; b is the oldest
        lb.route("d");
        assert!(
            lb.stuck_to("b").is_none(),
            "b was routed least recently, so it is the one forgotten to make room for d"
        );
        for s in ["a", "c", "d"] {
            assert!(lb.stuck_to(s).is_some(), "{s} must still be in the table");
        }
    }

    #[test]
    fn a_forgotten_session_still_goes_home_while_its_backend_is_up() {
        let all = sessions(500);
        let mut lb = StickyBalancer::new(5, 10); // far fewer slots than sessions
        let before = route_all(&mut lb, &all);
        lb.set_up(4, false);
        let after = route_all(&mut lb, &all);
        for i in 0..all.len() {
            if before[i] != 4 {
                assert_eq!(
                    after[i], before[i],
                    "{} was forgotten by the small table, but its backend {} is still up: \
                     placing it again must give the same backend (a placement that depends on \
                     the number of live backends moves it)",
                    all[i], before[i]
                );
            }
        }
    }

    #[test]
    fn capacity_zero_routes_without_a_table() {
        let mut lb = StickyBalancer::new(3, 0);
        let first = route_all(&mut lb, &sessions(100));
        assert_eq!(lb.table_len(), 0, "capacity 0: nothing is remembered");
        assert_eq!(
            route_all(&mut lb, &sessions(100)),
            first,
            "placement alone keeps sessions sticky"
        );
    }

    #[test]
    fn no_backend_up_means_none_and_the_table_is_kept() {
        let mut lb = StickyBalancer::new(2, 10);
        let home = lb.route("carol").unwrap();
        lb.set_up(0, false);
        lb.set_up(1, false);
        assert_eq!(lb.route("carol"), None, "nobody is up");
        assert_eq!(lb.route("dave"), None);
        assert_eq!(
            lb.stuck_to("carol"),
            Some(home),
            "an outage of every backend is not a reason to forget carol's backend"
        );
        lb.set_up(home, true);
        assert_eq!(lb.route("carol"), Some(home));
    }
}
