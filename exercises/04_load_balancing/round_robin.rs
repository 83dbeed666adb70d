// Round robin — rotate over a pool whose members come and go.
//
// Build `RoundRobin::pick` and `RoundRobin::remove`. Each pick returns the next available backend
// in pool order, wrapping around. The pool changes under you: backends are removed (scale-in, a
// failed instance) and added (at the end of the rotation), and members are marked unavailable
// (draining for a deploy) while keeping their place. Through all that the rotation carries on
// where it was: skip unavailable members without giving their turn to a neighbour, never return
// a removed backend, never index past the end of a pool that just shrank, and return `None`
// (not panic) when nobody can take the request.
//
// Why it matters: round robin is the default of nginx and HAProxy, and in Kubernetes the
// endpoint list changes every time a pod restarts. A balancer that restarts from the first
// backend after each change sends the front of the list far more than its share; one that hands
// a draining backend's turn to its neighbour doubles that neighbour's load for the whole deploy.
//
// Lab: turn UPDATE_EVERY (requests between endpoint updates) and FLAP_DOWN. Every backend's
// "load / fair share" should stay at 1.00 and nothing should reach a removed or drained backend.
// Random picking is fair on average too, but compare the peaks: within a short window it hands
// some backend nearly twice its share, which round robin never does.

use sdlings_kit::balancing::{BackendId, Balancer, EndpointChurnLab, Pool};

/// One member of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: BackendId,
    /// `false` while the backend is draining or otherwise should get no new requests. It stays
    /// in the pool (and keeps its place in the rotation) and comes back when set to `true`.
    pub available: bool,
}

pub struct RoundRobin {
    /// The pool in rotation order. New members join at the end.
    members: Vec<Member>,
    /// Index into `members` of the first candidate for the next pick. It may be equal to
    /// `members.len()` (the rotation wraps around to index 0 at the next pick).
    next: usize,
}

// ---- Your part -------------------------------------------------------------------------------

impl RoundRobin {
    /// Takes `id` out of the pool for good. The rotation carries on where it was: the backend
    /// that would have come next (if it is not the one removed) still comes next. Returns
    /// `false`, changing nothing, if `id` is not in the pool.
    pub fn remove(&mut self, id: BackendId) -> bool {
        todo!("take backend {id} out of the pool and keep the cursor on the right member")
    }
}

impl Balancer for RoundRobin {
    /// The next available backend after the last one picked, in pool order, wrapping around;
    /// `None` if the pool is empty or nobody in it is available.
    fn pick(&mut self) -> Option<BackendId> {
        todo!("the next available member after the last pick, wrapping around")
    }
}

// ---- Given: building and changing the pool ---------------------------------------------------

impl RoundRobin {
    /// A pool of the given backends, all available, in this rotation order.
    pub fn new(ids: impl IntoIterator<Item = BackendId>) -> Self {
        let mut rr = RoundRobin {
            members: Vec::new(),
            next: 0,
        };
        for id in ids {
            rr.add(id);
        }
        rr
    }

    pub fn contains(&self, id: BackendId) -> bool {
        self.members.iter().any(|m| m.id == id)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl Pool for RoundRobin {
    /// Adds a backend at the end of the rotation (available). Adding one that is already in the
    /// pool changes nothing. Returns whether it was added.
    fn add(&mut self, id: BackendId) -> bool {
        if self.contains(id) {
            return false;
        }
        self.members.push(Member {
            id,
            available: true,
        });
        true
    }

    fn remove(&mut self, id: BackendId) -> bool {
        RoundRobin::remove(self, id) // yours, above
    }

    /// Marks a member available or not. Returns `false` if `id` is not in the pool.
    fn set_available(&mut self, id: BackendId, available: bool) -> bool {
        match self.members.iter_mut().find(|m| m.id == id) {
            Some(member) => {
                member.available = available;
                true
            }
            None => false,
        }
    }

    fn ids(&self) -> Vec<BackendId> {
        self.members.iter().map(|m| m.id).collect()
    }

    fn available_ids(&self) -> Vec<BackendId> {
        self.members
            .iter()
            .filter(|m| m.available)
            .map(|m| m.id)
            .collect()
    }
}

// ---- Lab --------------------------------------------------------------------------------------

const BACKENDS: usize = 6;
const REQUESTS: usize = 60_000;
/// Requests between two endpoint updates (one pod restarting). Try 1, 3, 100.
const UPDATE_EVERY: usize = 7;
/// Backend drained for FLAP_DOWN requests out of every FLAP_PERIOD (a slow rolling deploy).
const FLAPPING: BackendId = 2;
const FLAP_PERIOD: usize = 50;
const FLAP_DOWN: usize = 20;
/// "Peak" = the most requests one backend got within any WINDOW consecutive requests.
const WINDOW: usize = 60;
const SEED: u64 = 7;

fn main() {
    let lab = EndpointChurnLab {
        backends: BACKENDS,
        requests: REQUESTS,
        update_every: UPDATE_EVERY,
        flapping: FLAPPING,
        flap_period: FLAP_PERIOD,
        flap_down: FLAP_DOWN,
        window: WINDOW,
        seed: SEED,
    };
    // A Kubernetes-like day of endpoint updates, your rotation against random picks.
    lab.run(|ids| RoundRobin::new(ids));
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;
    use sdlings_kit::workload::seeded_rng;

    fn picks(rr: &mut RoundRobin, n: usize) -> Vec<Option<BackendId>> {
        (0..n).map(|_| rr.pick()).collect()
    }

    fn some(ids: &[BackendId]) -> Vec<Option<BackendId>> {
        ids.iter().copied().map(Some).collect()
    }

    #[test]
    fn rotates_through_every_backend_in_pool_order() {
        let mut rr = RoundRobin::new([10, 20, 30]);
        assert_eq!(
            picks(&mut rr, 7),
            some(&[10, 20, 30, 10, 20, 30, 10]),
            "each pick takes the next backend in pool order and wraps around at the end"
        );
    }

    #[test]
    fn a_single_backend_gets_every_request() {
        let mut rr = RoundRobin::new([4]);
        assert_eq!(picks(&mut rr, 3), some(&[4, 4, 4]));
    }

    #[test]
    fn an_empty_pool_returns_none_instead_of_panicking() {
        let mut rr = RoundRobin::new([]);
        assert_eq!(
            rr.pick(),
            None,
            "no backend at all: there is nobody to pick"
        );
        let mut rr = RoundRobin::new([1, 2]);
        rr.pick();
        rr.remove(1);
        rr.remove(2);
        assert_eq!(
            rr.pick(),
            None,
            "every backend was removed: pick must say so, not panic"
        );
        rr.add(3);
        assert_eq!(
            rr.pick(),
            Some(3),
            "a pool that was emptied can be refilled"
        );
    }

    #[test]
    fn a_pool_with_nobody_available_returns_none() {
        let mut rr = RoundRobin::new([0, 1, 2]);
        for id in 0..3 {
            rr.set_available(id, false);
        }
        assert_eq!(
            rr.pick(),
            None,
            "every member is unavailable: None, and no endless search for one"
        );
        rr.set_available(1, true);
        assert_eq!(rr.pick(), Some(1));
    }

    #[test]
    fn skips_an_unavailable_backend_without_giving_its_turn_to_the_next_one() {
        let mut rr = RoundRobin::new([0, 1, 2, 3]);
        rr.set_available(1, false);
        assert_eq!(
            picks(&mut rr, 6),
            some(&[0, 2, 3, 0, 2, 3]),
            "backend 1 is skipped and the rotation goes on 0, 2, 3: backend 2 must not be \
             picked twice in a row (once in its own turn, once in 1's)"
        );
        let mut counts = [0u32; 4];
        for _ in 0..300 {
            counts[rr.pick().unwrap()] += 1;
        }
        assert_eq!(
            counts,
            [100, 0, 100, 100],
            "while backend 1 is unavailable, the other three share the load equally"
        );
    }

    #[test]
    fn an_unavailable_backend_gets_its_turn_back_when_it_returns() {
        let mut rr = RoundRobin::new([0, 1, 2]);
        rr.set_available(1, false);
        assert_eq!(picks(&mut rr, 2), some(&[0, 2]));
        rr.set_available(1, true);
        assert_eq!(
            picks(&mut rr, 6),
            some(&[0, 1, 2, 0, 1, 2]),
            "backend 1 is available again and takes its usual place in the rotation"
        );
    }

    #[test]
    fn a_removed_backend_is_never_picked_again() {
        let mut rr = RoundRobin::new([0, 1, 2, 3]);
        rr.pick();
        assert!(rr.remove(2), "backend 2 was in the pool");
        for pick in picks(&mut rr, 30) {
            assert_ne!(pick, Some(2), "backend 2 was removed from the pool");
        }
        assert_eq!(rr.ids(), vec![0, 1, 3]);
    }

    #[test]
    fn removing_an_unknown_backend_returns_false_and_changes_nothing() {
        let mut rr = RoundRobin::new([0, 1, 2]);
        assert!(!rr.remove(9), "backend 9 was never in the pool");
        rr.pick();
        assert!(!rr.remove(9), "backend 9 is still not in the pool");
        assert_eq!(
            picks(&mut rr, 3),
            some(&[1, 2, 0]),
            "the rotation is undisturbed"
        );
    }

    #[test]
    fn a_removal_continues_the_rotation_instead_of_restarting_from_the_first_backend() {
        let mut rr = RoundRobin::new([0, 1, 2, 3, 4]);
        assert_eq!(picks(&mut rr, 2), some(&[0, 1]));
        rr.remove(4);
        assert_eq!(
            picks(&mut rr, 4),
            some(&[2, 3, 0, 1]),
            "0 and 1 were just served and backend 2 was next; removing backend 4 must not send \
             the next request back to backend 0 (with frequent endpoint updates, restarting \
             from the front overloads the first backends)"
        );
    }

    #[test]
    fn removing_a_backend_already_passed_does_not_skip_the_next_one() {
        let mut rr = RoundRobin::new([0, 1, 2, 3]);
        assert_eq!(picks(&mut rr, 3), some(&[0, 1, 2]));
        rr.remove(1);
        assert_eq!(
            picks(&mut rr, 3),
            some(&[3, 0, 2]),
            "backend 3 was next; removing backend 1 (earlier in the list) shifts the positions, \
             and the rotation must still continue with 3"
        );
    }

    #[test]
    fn removing_the_backend_just_picked_continues_with_its_successor() {
        let mut rr = RoundRobin::new([0, 1, 2, 3]);
        assert_eq!(picks(&mut rr, 2), some(&[0, 1]));
        rr.remove(1);
        assert_eq!(
            picks(&mut rr, 3),
            some(&[2, 3, 0]),
            "backend 1 was the last picked; the next one is still its successor, backend 2"
        );
    }

    #[test]
    fn removing_the_next_backend_moves_on_to_the_one_after_it() {
        let mut rr = RoundRobin::new([0, 1, 2, 3]);
        assert_eq!(picks(&mut rr, 2), some(&[0, 1]));
        rr.remove(2);
        assert_eq!(picks(&mut rr, 3), some(&[3, 0, 1]));
    }

    #[test]
    fn shrinking_the_pool_below_the_cursor_wraps_around_instead_of_panicking() {
        let mut rr = RoundRobin::new([0, 1, 2, 3]);
        assert_eq!(picks(&mut rr, 3), some(&[0, 1, 2]));
        rr.remove(3);
        rr.remove(2);
        assert_eq!(
            picks(&mut rr, 3),
            some(&[0, 1, 0]),
            "the cursor pointed past the end of the shrunken pool: the rotation wraps to the \
             start (and must not index out of bounds)"
        );
    }

    #[test]
    fn the_only_available_member_is_found_wherever_the_rotation_stands() {
        for len in 1..=6 {
            for before in 0..=len {
                for only in 0..len {
                    let mut rr = RoundRobin::new(0..len);
                    picks(&mut rr, before);
                    for id in 0..len {
                        rr.set_available(id, id == only);
                    }
                    assert_eq!(
                        picks(&mut rr, 2),
                        some(&[only, only]),
                        "pool 0..{len}, {before} picks made, then only backend {only} left \
                         available: every pick must find it, wherever it sits relative to the \
                         rotation (even if it was the last one picked)"
                    );
                }
            }
        }
    }

    #[test]
    fn a_new_backend_joins_at_the_end_of_the_rotation() {
        let mut rr = RoundRobin::new([0, 1, 2]);
        assert_eq!(picks(&mut rr, 2), some(&[0, 1]));
        rr.add(7);
        assert_eq!(
            picks(&mut rr, 5),
            some(&[2, 7, 0, 1, 2]),
            "backend 7 joined at the end of the list, so it comes after backend 2"
        );
    }

    #[test]
    fn under_random_churn_nobody_is_picked_twice_while_another_waits() {
        // Between two picks of the same backend, every backend that was in the pool and
        // available the whole time in between must have been picked: that is what "rotation"
        // means, whatever happens to the pool.
        let mut rng = seeded_rng(2024);
        let mut rr = RoundRobin::new(0..6);
        let mut next_id = 6;
        // For each backend: when it was last picked (step), and since when it has been
        // continuously in the pool and available.
        let mut last_pick: Vec<Option<usize>> = vec![None; 64];
        let mut eligible_since: Vec<Option<usize>> =
            (0..64).map(|id| (id < 6).then_some(0)).collect();
        let mut picked_at: Vec<Vec<usize>> = vec![Vec::new(); 64];
        for step in 0..3_000 {
            match rng.random_range(0..10) {
                0 if next_id < 64 => {
                    rr.add(next_id);
                    eligible_since[next_id] = Some(step);
                    next_id += 1;
                }
                1 => {
                    let ids = rr.ids();
                    if ids.len() > 1 {
                        let victim = ids[rng.random_range(0..ids.len())];
                        assert!(rr.remove(victim));
                        eligible_since[victim] = None;
                    }
                }
                2 => {
                    let ids = rr.ids();
                    let id = ids[rng.random_range(0..ids.len())];
                    let available = rng.random_range(0..2) == 0;
                    let was = rr.members.iter().find(|m| m.id == id).unwrap().available;
                    rr.set_available(id, available);
                    if !available {
                        eligible_since[id] = None;
                    } else if !was {
                        eligible_since[id] = Some(step);
                    }
                }
                _ => {
                    let Some(id) = rr.pick() else {
                        let waiting: Vec<usize> =
                            (0..64).filter(|&id| eligible_since[id].is_some()).collect();
                        assert!(
                            waiting.is_empty(),
                            "step {step}: pick returned None while backends {waiting:?} were in \
                             the pool and available"
                        );
                        continue;
                    };
                    assert!(
                        eligible_since[id].is_some(),
                        "step {step}: picked backend {id}, which is removed or unavailable"
                    );
                    if let Some(previous) = last_pick[id] {
                        for (other, since) in eligible_since.iter().enumerate() {
                            let Some(since) = *since else { continue };
                            if other == id || since > previous {
                                continue;
                            }
                            assert!(
                                picked_at[other].iter().any(|&s| s > previous),
                                "step {step}: backend {id} was picked again (last at step \
                                 {previous}) while backend {other}, available the whole time, \
                                 waited for its turn: the rotation lost its place after a pool \
                                 change"
                            );
                        }
                    }
                    last_pick[id] = Some(step);
                    picked_at[id].push(step);
                }
            }
        }
    }
}
