// Priority shedding — when you must refuse work, refuse the work that matters least.
//
// Past capacity, something gets refused: the only choice is what. A checkout and a prefetch
// cost a server the same, but losing the first costs a sale. Google's SRE book ("Handling
// Overload") tags every request with a criticality and sheds the least critical first.
//
// Build `Shedder::offer` and `Shedder::next_to_serve`: a bounded queue of `capacity` requests in front
// of a server. The property: nothing is shed while the queue has room; when it is full, the
// newcomer takes the place of the queued request of the lowest priority below its own (the
// newest of that priority: FIFO order within a priority is kept), or is itself refused if
// nothing queued is less important; the server takes the most important request first, the
// oldest first within a priority. So at 1.5× load critical traffic is fully served and the
// excess is taken from the lowest priorities; critical requests are shed last, newest first.
//
// Lab: load swept 0.5× to 2×, served share and p99 per priority. Change MIX so critical
// alone exceeds capacity and see who pays.

use std::collections::VecDeque;
use std::time::Duration;

use sdlings_kit::backpressure::shedding::{Load, Priority, Shed, sweep_lab};

/// A bounded queue that sheds by priority.
pub struct Shedder<T> {
    capacity: usize,
    /// One FIFO per priority, indexed by `Priority as usize` (Low first).
    queues: [VecDeque<T>; 4],
}

// ---- Your part -------------------------------------------------------------------------------

impl<T> Shedder<T> {
    /// Queues `item`; returns what was shed to make room, if anything: the newest queued
    /// request of the lowest priority below `priority`, or `item` itself when there is none.
    pub fn offer(&mut self, priority: Priority, item: T) -> Option<(Priority, T)> {
        if self.len() < self.capacity {
            self.queues[priority as usize].push_back(item);
            return None;
        }
        // Full: look for a less important victim, lowest priority first.
        let victim = Priority::ALL
            .into_iter()
            .take_while(|&p| p < priority)
            .find(|&p| !self.queues[p as usize].is_empty());
        match victim {
            Some(p) => {
                // The newest of its priority: the older ones keep their place in line.
                let evicted = self.queues[p as usize].pop_back().expect("not empty");
                self.queues[priority as usize].push_back(item);
                Some((p, evicted))
            }
            // Nothing less important is queued: refuse the newcomer, even a critical one
            // (the queued ones came first and have waited already).
            None => Some((priority, item)),
        }
    }

    /// The next request to serve: the oldest of the most important priority queued.
    pub fn next_to_serve(&mut self) -> Option<(Priority, T)> {
        Priority::ALL
            .into_iter()
            .rev()
            .find_map(|p| self.queues[p as usize].pop_front().map(|item| (p, item)))
    }
}

// ---- Given -----------------------------------------------------------------------------------

impl<T> Shedder<T> {
    pub fn new(capacity: usize) -> Self {
        Shedder {
            capacity,
            queues: Default::default(),
        }
    }

    /// Requests queued, all priorities.
    pub fn len(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Shed for Shedder<u64> {
    fn offer(&mut self, priority: Priority, id: u64) -> Option<(Priority, u64)> {
        Shedder::offer(self, priority, id)
    }

    fn next(&mut self) -> Option<(Priority, u64)> {
        Shedder::next_to_serve(self)
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Offered load as multiples of capacity.
const LOADS: [f64; 6] = [0.5, 0.8, 1.0, 1.2, 1.5, 2.0];
/// Share of the traffic per priority: low, normal, high, critical.
const MIX: [f64; 4] = [0.2, 0.2, 0.3, 0.3];
/// Queue slots, the server's time per request, and the simulated run.
const QUEUE: usize = 100;
const SERVICE: Duration = Duration::from_millis(1);
const DURATION: Duration = Duration::from_secs(20);

fn main() {
    let base = Load {
        load: 1.0,
        mix: MIX,
        service: SERVICE,
        duration: DURATION,
        seed: 8,
    };
    sweep_lab(&LOADS, base, || Box::new(Shedder::<u64>::new(QUEUE)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use Priority::*;
    use rand::RngExt;
    use sdlings_kit::backpressure::shedding::simulate;

    fn full(capacity: usize, items: &[(Priority, u32)]) -> Shedder<u32> {
        let mut s = Shedder::new(capacity);
        for &(p, i) in items {
            assert_eq!(
                s.offer(p, i),
                None,
                "the queue has room for {i}: nothing is shed"
            );
        }
        s
    }

    fn drain(s: &mut Shedder<u32>) -> Vec<(Priority, u32)> {
        std::iter::from_fn(|| s.next_to_serve()).collect()
    }

    #[test]
    fn serves_the_most_important_first_and_the_oldest_first_within_a_priority() {
        let mut s = full(
            10,
            &[
                (Low, 1),
                (Critical, 2),
                (Normal, 3),
                (Critical, 4),
                (High, 5),
            ],
        );
        s.offer(Normal, 6);
        assert_eq!(
            drain(&mut s),
            [
                (Critical, 2),
                (Critical, 4),
                (High, 5),
                (Normal, 3),
                (Normal, 6),
                (Low, 1)
            ],
            "critical first, then high, normal, low; within a priority in arrival order"
        );
        assert_eq!(s.next_to_serve(), None, "empty");
    }

    #[test]
    fn a_full_queue_sheds_the_newest_request_of_the_lowest_priority() {
        let mut s = full(4, &[(Normal, 1), (Low, 2), (High, 3), (Low, 4)]);
        assert_eq!(
            s.offer(High, 5),
            Some((Low, 4)),
            "full: the high request takes the place of the newest low one (4)"
        );
        assert_eq!(
            s.offer(Normal, 6),
            Some((Low, 2)),
            "then of the other low one"
        );
        assert_eq!(
            s.offer(High, 7),
            Some((Normal, 6)),
            "no low left: the newest normal one goes; the older normal request 1 keeps its \
             place in line"
        );
        assert_eq!(s.len(), 4, "the queue stays at its capacity");
        assert_eq!(
            drain(&mut s),
            [(High, 3), (High, 5), (High, 7), (Normal, 1)]
        );
    }

    #[test]
    fn a_newcomer_is_refused_when_nothing_less_important_is_queued() {
        let mut s = full(3, &[(Normal, 1), (High, 2), (Normal, 3)]);
        assert_eq!(
            s.offer(Normal, 4),
            Some((Normal, 4)),
            "a normal request does not push out another normal one: it is refused itself"
        );
        assert_eq!(s.offer(Low, 5), Some((Low, 5)), "nor does a low one");
        assert_eq!(drain(&mut s), [(High, 2), (Normal, 1), (Normal, 3)]);
    }

    #[test]
    fn critical_traffic_beyond_capacity_sheds_the_newcomer_not_a_queued_critical_request() {
        let mut s = full(2, &[(Critical, 1), (Critical, 2)]);
        assert_eq!(
            s.offer(Critical, 3),
            Some((Critical, 3)),
            "when everything queued is critical, the newcomer is shed: the queued ones have \
             waited already and came first"
        );
        assert_eq!(drain(&mut s), [(Critical, 1), (Critical, 2)]);
    }

    #[test]
    fn a_queue_of_capacity_zero_sheds_every_request_and_one_holds_one() {
        let mut s = Shedder::new(0);
        assert_eq!(s.offer(Critical, 1), Some((Critical, 1)), "no room at all");
        assert_eq!(s.next_to_serve(), None);
        let mut s = full(1, &[(Low, 1)]);
        assert_eq!(s.offer(Critical, 2), Some((Low, 1)));
        assert_eq!(s.offer(High, 3), Some((High, 3)));
        assert_eq!(drain(&mut s), [(Critical, 2)]);
    }

    #[test]
    fn sheds_and_serves_exactly_as_a_sorted_list_does_over_random_traffic() {
        sdlings_kit::property::for_seeds(200, |rng| {
            let capacity = rng.random_range(0..8);
            let mut s = Shedder::new(capacity);
            // The reference: (priority, arrival number), the queue's contents.
            let mut model: Vec<(Priority, u32)> = Vec::new();
            for i in 0..200u32 {
                if rng.random_range(0..3) == 0 {
                    let best = model
                        .iter()
                        .copied()
                        .max_by_key(|&(p, n)| (p, u32::MAX - n));
                    model.retain(|e| Some(*e) != best);
                    assert_eq!(
                        s.next_to_serve(),
                        best,
                        "capacity {capacity}, step {i}: serve {best:?}"
                    );
                    continue;
                }
                let p = Priority::ALL[rng.random_range(0..4)];
                let want = if model.len() < capacity {
                    None
                } else {
                    // The lowest priority below p, the newest of it.
                    let victim = model
                        .iter()
                        .copied()
                        .filter(|&(q, _)| q < p)
                        .min_by_key(|&(q, n)| (q, u32::MAX - n));
                    Some(victim.unwrap_or((p, i)))
                };
                model.push((p, i));
                model.retain(|e| Some(*e) != want);
                assert_eq!(
                    s.offer(p, i),
                    want,
                    "capacity {capacity}, step {i}: offer {p:?}"
                );
            }
        });
    }

    fn run(load: f64, mix: [f64; 4]) -> [sdlings_kit::backpressure::shedding::ClassOutcome; 4] {
        let mut s = Shedder::<u64>::new(50);
        let l = Load {
            load,
            mix,
            service: Duration::from_millis(1),
            duration: Duration::from_secs(5),
            seed: 5,
        };
        simulate(&mut s, l)
    }

    #[test]
    fn at_one_and_a_half_times_capacity_critical_is_fully_served_and_low_pays_first() {
        // Low 20%, normal 20%, high 30%, critical 30% of 1.5× capacity: critical and high need
        // 0.9 of capacity, normal 0.3 for the 0.1 left, low 0.3 for nothing.
        let out = run(1.5, [0.2, 0.2, 0.3, 0.3]);
        let [low, normal, high, critical] = &out;
        assert_eq!(
            critical.shed, 0,
            "critical traffic is never shed while lower traffic is queued"
        );
        assert_eq!(critical.served, critical.offered);
        assert_eq!(high.shed, 0, "high traffic fits in capacity too: {high:?}");
        let share = |c: &sdlings_kit::backpressure::shedding::ClassOutcome| {
            c.shed as f64 / c.offered as f64
        };
        assert!(
            share(low) > 0.95,
            "low is shed first: {:.2} of it shed",
            share(low)
        );
        assert!(
            share(normal) > 0.5 && share(normal) < 0.85,
            "normal gets what is left, about a third of it: {:.2} of it shed",
            share(normal)
        );
        assert!(
            critical.p99() < Duration::from_millis(5),
            "critical waits little: {:?}",
            critical.p99()
        );
    }

    #[test]
    fn below_capacity_nothing_is_shed() {
        let out = run(0.8, [0.25; 4]);
        for (p, c) in Priority::ALL.iter().zip(&out) {
            assert_eq!(
                c.shed, 0,
                "at 0.8× with room for 50 queued, no {p:?} request is shed"
            );
            assert_eq!(c.served, c.offered);
        }
    }
}
