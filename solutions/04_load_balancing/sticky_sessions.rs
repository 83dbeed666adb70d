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
use std::time::Duration;

use sdlings_kit::balancing::{BackendId, SessionAffinityLab, SessionRouter, score};

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

// ---- Your part -------------------------------------------------------------------------------

impl StickyBalancer {
    /// The session's home: among the backends that are up, the one with the highest
    /// `score(session, id)` (lowest id on equal scores). `None` if no backend is up.
    pub fn place(&self, session: &str) -> Option<BackendId> {
        // Each backend's score depends only on (session, backend), never on how many backends
        // there are: removing one backend cannot change which of the *others* scores highest.
        // `max_by_key` keeps the last maximum, so compare (score, Reverse(id)) to prefer the
        // lowest id on a tie.
        (0..self.up.len())
            .filter(|&id| self.up[id])
            .max_by_key(|&id| (score(session, id), std::cmp::Reverse(id)))
    }

    /// Routes one request of `session`: to the backend in its table entry if that backend is
    /// up; otherwise to `place(session)`, recording the choice in the table (evicting the least
    /// recently used session if the table is full). Refreshes the entry's `last_used`. `None`
    /// (table unchanged) if no backend is up.
    pub fn route(&mut self, session: &str) -> Option<BackendId> {
        self.tick += 1;
        let tick = self.tick;
        if let Some(stick) = self.table.get_mut(session)
            && self.up[stick.backend]
        {
            stick.last_used = tick;
            return Some(stick.backend);
        }
        // Not in the table, or its backend is down: find it a (new) home.
        let backend = self.place(session)?;
        if let Some(stick) = self.table.get_mut(session) {
            // It moved. The table now remembers the new backend, so the session stays there
            // even after the old one comes back.
            *stick = Stick {
                backend,
                last_used: tick,
            };
            return Some(backend);
        }
        if self.capacity == 0 {
            return Some(backend);
        }
        if self.table.len() >= self.capacity {
            // A linear scan for the oldest entry: fine for a lab-sized table. HAProxy keeps its
            // stick table in a tree ordered by expiry to make this cheap at millions of entries.
            let oldest = self
                .table
                .iter()
                .min_by_key(|(_, stick)| stick.last_used)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                self.table.remove(&oldest);
            }
        }
        self.table.insert(
            session.to_string(),
            Stick {
                backend,
                last_used: tick,
            },
        );
        Some(backend)
    }
}

// ---- Given: construction and inspection ----------------------------------------------------

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

    /// Sessions in the affinity table.
    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    /// Where the table says `session` sticks, without touching its recency.
    pub fn stuck_to(&self, session: &str) -> Option<BackendId> {
        self.table.get(session).map(|stick| stick.backend)
    }
}

impl SessionRouter for StickyBalancer {
    /// Marks a backend up or down (health checks decide; see the last exercise of this topic).
    fn set_up(&mut self, id: BackendId, up: bool) {
        self.up[id] = up;
    }
    fn route(&mut self, session: &str) -> Option<BackendId> {
        StickyBalancer::route(self, session) // yours, above
    }
}

// ---- Lab --------------------------------------------------------------------------------------
// Real HTTP servers count requests per session; backend CRASHING crashes, then restarts empty.
// sdlings_kit::balancing runs the three phases for hash mod N, placement alone and your table.

const BACKENDS: usize = 4;
const CRASHING: BackendId = 2;
/// Sessions that exist from phase 1 on.
const SESSIONS: usize = 120;
const NEW_SESSIONS_PER_PHASE: usize = 40;
const REQUESTS_PER_PHASE: usize = 2;
/// Your affinity table's size. Try 100 (fewer than the active sessions) and 0.
const TABLE_CAPACITY: usize = 1_000;

fn main() {
    let lab = SessionAffinityLab {
        backends: BACKENDS,
        crashing: CRASHING,
        sessions: SESSIONS,
        new_sessions_per_phase: NEW_SESSIONS_PER_PHASE,
        requests_per_phase: REQUESTS_PER_PHASE,
        concurrency: 16,
        client_timeout: Duration::from_secs(2),
    };
    lab.run(TABLE_CAPACITY, |capacity| {
        Box::new(StickyBalancer::new(BACKENDS, capacity))
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
        let home = (0..5).max_by_key(|&id| score("alice", id)).unwrap();
        assert_eq!(
            lb.place("alice"),
            Some(home),
            "alice's home is the backend with the highest score(\"alice\", backend)"
        );
        for _ in 0..20 {
            assert_eq!(lb.route("alice"), Some(home), "alice's state lives there");
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
        let mut no_backends = StickyBalancer::new(0, 10);
        assert_eq!(no_backends.place("erin"), None, "no backends at all");
        assert_eq!(no_backends.route("erin"), None);
        assert_eq!(no_backends.table_len(), 0);
    }

    #[test]
    fn random_routes_and_outages_match_a_reference_lru_table() {
        // The reference: the table as a list ordered from least to most recently routed, and
        // placement as the best score among the backends that are up (lowest id on a tie).
        use rand::RngExt;
        sdlings_kit::property::for_seeds(100, |rng| {
            let backends = rng.random_range(1..=5);
            let capacity = rng.random_range(0..=5);
            let mut lb = StickyBalancer::new(backends, capacity);
            let mut up = vec![true; backends];
            let mut lru: Vec<(String, BackendId)> = Vec::new();
            let names: Vec<String> = (0..10).map(|i| format!("s{i}")).collect();
            // (session, route result) or (backend, up) for set_up: printed if a case fails.
            let mut log: Vec<(&str, usize, Option<BackendId>)> = Vec::new();
            for step in 0..100 {
                if rng.random_range(0..6) == 0 {
                    let id = rng.random_range(0..backends);
                    let is_up = rng.random_range(0..3) > 0;
                    lb.set_up(id, is_up);
                    up[id] = is_up;
                    log.push(("set_up", id, Some(usize::from(is_up))));
                    continue;
                }
                let which = rng.random_range(0..names.len());
                let session = &names[which];
                let home = (0..backends)
                    .filter(|&id| up[id])
                    .max_by_key(|&id| (score(session, id), std::cmp::Reverse(id)));
                let known = lru.iter().position(|(s, _)| s == session);
                let expected = match known {
                    Some(i) if up[lru[i].1] => {
                        let entry = lru.remove(i);
                        let backend = entry.1;
                        lru.push(entry);
                        Some(backend)
                    }
                    _ => match home {
                        None => None,
                        Some(backend) => {
                            if let Some(i) = known {
                                lru.remove(i);
                                lru.push((session.clone(), backend));
                            } else if capacity > 0 {
                                if lru.len() >= capacity {
                                    lru.remove(0);
                                }
                                lru.push((session.clone(), backend));
                            }
                            Some(backend)
                        }
                    },
                };
                let got = lb.route(session);
                log.push(("route s", which, got));
                assert_eq!(
                    got, expected,
                    "step {step}: {backends} backends (up: {up:?}), capacity {capacity}; routing \
                     {session} should give {expected:?} (ops so far: {log:?})"
                );
                for name in &names {
                    let want = lru.iter().find(|(s, _)| s == name).map(|&(_, b)| b);
                    assert_eq!(
                        lb.stuck_to(name),
                        want,
                        "step {step}: the table should hold {:?} (least to most recently \
                         routed), but {name} sticks to {:?} (ops so far: {log:?})",
                        lru,
                        lb.stuck_to(name)
                    );
                }
            }
        });
    }
}
