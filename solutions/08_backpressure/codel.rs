// CoDel — drop by how long requests have waited, not by how many are waiting.
//
// A queue is for absorbing bursts. A queue that never drains (a "standing queue") absorbs
// nothing: it only adds its length to every request's latency, and under overload its requests
// are answered after their clients gave up. Length limits cannot tell the two apart (a fast
// server drains 1000 items in a blink, a slow one not 10). CoDel (Nichols & Jacobson, 2012; RFC
// 8289) watches each item's *sojourn time* instead: if it stayed above TARGET for a whole
// INTERVAL, the queue is standing, and CoDel drops from the head, more often the longer it
// lasts, until the sojourn falls below TARGET. Facebook adapted it for its RPC queues.
//
// Build `CoDel::dequeue`, following RFC 8289's dequeue logic. The property: a burst that drains
// within INTERVAL is never dropped; a standing queue is, first after INTERVAL, then at a spacing
// of INTERVAL/√count; under sustained overload the drop rate rises until it matches the excess.
//
// Lab: load swept 0.5× to 1.5× for five queues: FIFO's latency hockey stick; CoDel's slow ramp
// against requests that do not back off, and Facebook's RPC variant. Turn DURATION up.

use std::collections::VecDeque;
use std::time::Duration;

use sdlings_kit::backpressure::overload::{Discipline, Fifo, Lifo, Load, RpcCoDel, sweep_lab};

/// RFC 8289's defaults: the acceptable standing delay, and the window it may last.
pub const TARGET: Duration = Duration::from_millis(5);
pub const INTERVAL: Duration = Duration::from_millis(100);

/// A FIFO queue with CoDel's drop logic at the head.
pub struct CoDel<T> {
    target: Duration,
    interval: Duration,
    /// The items, each with the time it was enqueued.
    queue: VecDeque<(Duration, T)>,
    /// When the sojourn time first went above target (plus an interval: when dropping may
    /// start); `None` while it is below.
    first_above_time: Option<Duration>,
    /// In the dropping state: when to drop next.
    drop_next: Duration,
    /// Drops since entering the dropping state, and its value when the state was last entered.
    count: u32,
    last_count: u32,
    dropping: bool,
    /// Items dropped so far.
    dropped: u64,
}

// ---- Your part -------------------------------------------------------------------------------
// Add any helper method you need here (RFC 8289 splits the work in two).

impl<T> CoDel<T> {
    /// The next item to serve at `now`, after dropping (from the head) what CoDel decides to
    /// drop; `None` if the queue is empty. Every dropped item counts in `dropped()`. A queue
    /// holding at most one item after this dequeue is never judged standing (RFC 8289's
    /// `bytes() <= MAXPACKET`, with one item as a packet).
    pub fn dequeue(&mut self, now: Duration) -> Option<T> {
        let (mut item, ok_to_drop) = self.do_dequeue(now);
        let Some(_) = item else {
            self.dropping = false;
            return None;
        };
        if self.dropping {
            if !ok_to_drop {
                // The sojourn time went below target: leave the dropping state.
                self.dropping = false;
            }
            // Drop at the scheduled times; each drop makes the next one come sooner.
            while self.dropping && now >= self.drop_next {
                self.dropped += 1;
                self.count += 1;
                let (next, ok) = self.do_dequeue(now);
                item = next;
                if !ok {
                    self.dropping = false;
                } else {
                    self.drop_next = self.control_law(self.drop_next);
                }
            }
        } else if ok_to_drop {
            // Above target for a whole interval: drop this one and enter the dropping state.
            self.dropped += 1;
            item = self.do_dequeue(now).0;
            self.dropping = true;
            // If we were dropping recently, start from the drop rate that was working then.
            let delta = self.count - self.last_count;
            self.count = 1;
            if delta > 1 && now.saturating_sub(self.drop_next) < 16 * self.interval {
                self.count = delta;
            }
            self.drop_next = self.control_law(now);
            self.last_count = self.count;
        }
        item
    }
}

impl<T> CoDel<T> {
    /// Takes the head and says whether it may be dropped: its sojourn time has been above
    /// target for at least an interval.
    fn do_dequeue(&mut self, now: Duration) -> (Option<T>, bool) {
        let Some((enqueued, item)) = self.queue.pop_front() else {
            self.first_above_time = None;
            return (None, false);
        };
        let sojourn = now - enqueued;
        let mut ok_to_drop = false;
        if sojourn < self.target || self.queue.len() <= 1 {
            self.first_above_time = None;
        } else {
            match self.first_above_time {
                None => self.first_above_time = Some(now + self.interval),
                Some(t) if now >= t => ok_to_drop = true,
                Some(_) => {}
            }
        }
        (Some(item), ok_to_drop)
    }

    /// The next drop time: `interval / √count` after `t`.
    fn control_law(&self, t: Duration) -> Duration {
        t + self.interval.div_f64(f64::from(self.count).sqrt())
    }
}

// ---- Given -----------------------------------------------------------------------------------

impl<T> CoDel<T> {
    pub fn new(target: Duration, interval: Duration) -> Self {
        CoDel {
            target,
            interval,
            queue: VecDeque::new(),
            first_above_time: None,
            drop_next: Duration::ZERO,
            count: 0,
            last_count: 0,
            dropping: false,
            dropped: 0,
        }
    }

    /// Adds `item` at the tail, stamped with `now`. CoDel never refuses an item.
    pub fn enqueue(&mut self, item: T, now: Duration) {
        self.queue.push_back((now, item));
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Discipline for CoDel<u64> {
    fn enqueue(&mut self, id: u64, now: Duration) -> bool {
        CoDel::enqueue(self, id, now);
        true
    }

    fn dequeue(&mut self, now: Duration) -> Option<u64> {
        CoDel::dequeue(self, now)
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Offered load as multiples of the server's capacity.
const LOADS: [f64; 11] = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5];
/// The server's time per request, the clients' deadline, and the simulated run.
const SERVICE: Duration = Duration::from_millis(1);
const DEADLINE: Duration = Duration::from_millis(100);
const DURATION: Duration = Duration::from_secs(30);
/// The bounded FIFO's queue limit.
const QUEUE_LIMIT: usize = 50;

fn main() {
    let base = Load {
        load: 1.0,
        service: SERVICE,
        deadline: DEADLINE,
        duration: DURATION,
        seed: 8,
    };
    sweep_lab(
        &LOADS,
        base,
        &mut [
            ("FIFO", &mut || Box::new(Fifo::unbounded())),
            ("bounded", &mut || Box::new(Fifo::bounded(QUEUE_LIMIT))),
            ("LIFO", &mut || Box::new(Lifo::default())),
            ("CoDel", &mut || {
                Box::new(CoDel::<u64>::new(TARGET, INTERVAL))
            }),
            ("RPC CoDel", &mut || {
                Box::new(RpcCoDel::new(TARGET, INTERVAL))
            }),
        ],
        &["FIFO", "CoDel", "RPC CoDel"],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;
    use sdlings_kit::backpressure::overload::simulate;

    const MS: Duration = Duration::from_millis(1);

    /// RFC 8289, section 5, transcribed: the reference the property test compares against.
    struct Reference {
        q: VecDeque<(Duration, u32)>,
        first_above: Option<Duration>,
        drop_next: Duration,
        count: u32,
        last_count: u32,
        dropping: bool,
        dropped: u64,
    }

    impl Reference {
        fn dodequeue(&mut self, now: Duration) -> (Option<u32>, bool) {
            let Some((t, p)) = self.q.pop_front() else {
                self.first_above = None;
                return (None, false);
            };
            if now - t < TARGET || self.q.len() <= 1 {
                self.first_above = None;
                return (Some(p), false);
            }
            let Some(first) = self.first_above else {
                self.first_above = Some(now + INTERVAL);
                return (Some(p), false);
            };
            (Some(p), now >= first)
        }

        fn law(&self, t: Duration) -> Duration {
            t + INTERVAL.div_f64(f64::from(self.count).sqrt())
        }

        fn dequeue(&mut self, now: Duration) -> Option<u32> {
            let (mut p, mut ok) = self.dodequeue(now);
            if p.is_none() {
                self.dropping = false;
                return None;
            }
            if self.dropping {
                self.dropping = ok;
                while now >= self.drop_next && self.dropping {
                    (self.dropped, self.count) = (self.dropped + 1, self.count + 1);
                    (p, ok) = self.dodequeue(now);
                    self.dropping = ok;
                    if ok {
                        self.drop_next = self.law(self.drop_next);
                    }
                }
            } else if ok {
                self.dropped += 1;
                p = self.dodequeue(now).0;
                self.dropping = true;
                let delta = self.count - self.last_count;
                self.count = if delta > 1 && now.saturating_sub(self.drop_next) < 16 * INTERVAL {
                    delta
                } else {
                    1
                };
                self.drop_next = self.law(now);
                self.last_count = self.count;
            }
            p
        }
    }

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn a_burst_that_drains_within_the_interval_is_delayed_not_dropped() {
        let mut q = CoDel::new(TARGET, INTERVAL);
        for i in 0..90 {
            q.enqueue(i, at(0));
        }
        let served: Vec<u32> = (0..90).map_while(|t| q.dequeue(at(t))).collect();
        assert_eq!(
            served,
            (0..90).collect::<Vec<_>>(),
            "90 items at once, served one per ms: the last waits 89 ms, far above the 5 ms \
             target, but the queue drains within the 100 ms interval: a burst, not a standing \
             queue, so nothing is dropped"
        );
        assert_eq!(q.dropped(), 0);
        assert_eq!(q.dequeue(at(90)), None, "empty");
    }

    #[test]
    fn a_standing_queue_is_dropped_after_one_interval_then_at_interval_over_sqrt_count() {
        // 20 items waiting, then one arrives and one is served every ms: 20 ms of standing
        // delay that never drains by itself.
        let mut q = CoDel::new(TARGET, INTERVAL);
        for i in 0..20 {
            q.enqueue(i, at(0));
        }
        let mut drops = Vec::new();
        for t in 0..1_000 {
            let before = q.dropped();
            q.dequeue(at(t));
            if q.dropped() > before {
                assert_eq!(q.dropped(), before + 1, "at most one drop per ms here");
                drops.push(t);
            }
            q.enqueue(20 + t as u32, at(t));
        }
        // Above target from t = 5 on (sojourn 5 ms is not below 5 ms): first drop at 105. Then
        // drop_next = 105 + 100/√1 = 205, 205 + 100/√2 = 275.7, + 100/√3 = 333.4, + 100/√4...
        assert_eq!(
            drops[..5],
            [105, 205, 276, 334, 384],
            "the first drop waits for a whole interval above target, the next ones come at \
             interval/√count after the previous scheduled drop; all drops: {drops:?}"
        );
        assert!(
            drops.len() >= 10 && drops.len() <= 17,
            "each drop shortens the standing queue by one item (1 ms): dropping goes on \
             until the sojourn time falls below 5 ms, about 15 drops: {drops:?}"
        );
        let last = *drops.last().unwrap();
        assert!(
            last < 900,
            "and then it stops: the queue is no longer standing: {drops:?}"
        );
    }

    #[test]
    fn a_queue_left_with_one_item_is_not_judged_standing() {
        // Two items, 200 ms old: after taking one, a single item is left: never dropped.
        let mut q = CoDel::new(TARGET, INTERVAL);
        q.enqueue(1, at(0));
        q.enqueue(2, at(0));
        q.enqueue(3, at(0));
        assert_eq!(
            q.dequeue(at(200)),
            Some(1),
            "above target: the clock starts"
        );
        assert_eq!(
            q.dequeue(at(400)),
            Some(2),
            "one item left after this one: not standing"
        );
        q.enqueue(4, at(400));
        q.enqueue(5, at(400));
        assert_eq!(
            q.dequeue(at(500)),
            Some(3),
            "the interval restarted when the queue was nearly empty: no drop yet"
        );
        assert_eq!(q.dropped(), 0);
    }

    #[test]
    fn an_empty_queue_returns_none_and_leaves_the_dropping_state() {
        let mut q: CoDel<u32> = CoDel::new(TARGET, INTERVAL);
        assert_eq!(q.dequeue(at(0)), None);
        assert!(!q.dropping && q.first_above_time.is_none());
    }

    #[test]
    fn serves_and_drops_exactly_as_rfc_8289_on_random_traffic() {
        sdlings_kit::property::for_seeds(60, |rng| {
            let mut q = CoDel::new(TARGET, INTERVAL);
            let mut r = Reference {
                q: VecDeque::new(),
                first_above: None,
                drop_next: Duration::ZERO,
                count: 0,
                last_count: 0,
                dropping: false,
                dropped: 0,
            };
            // Phases of overload and underload, in microseconds, so the control law's
            // fractions of a millisecond matter.
            let (mut now, mut id) = (Duration::ZERO, 0u32);
            for phase in 0..rng.random_range(2..6) {
                let (arrive, serve) = (rng.random_range(1..4u32), rng.random_range(1..4u32));
                for step in 0..rng.random_range(100..800) {
                    now += Duration::from_micros(rng.random_range(100..900));
                    for _ in 0..rng.random_range(0..=arrive) {
                        q.enqueue(id, now);
                        r.q.push_back((now, id));
                        id += 1;
                    }
                    for _ in 0..rng.random_range(0..=serve) {
                        let want = r.dequeue(now);
                        assert_eq!(
                            q.dequeue(now),
                            want,
                            "phase {phase}, step {step}, at {now:?}: RFC 8289 serves {want:?}"
                        );
                        assert_eq!(q.dropped(), r.dropped, "drops so far, at {now:?}");
                    }
                }
                if rng.random_range(0..3) == 0 {
                    now += Duration::from_millis(rng.random_range(0..3_000));
                }
            }
        });
    }

    #[test]
    fn at_twice_the_capacity_the_drop_rate_rises_until_it_matches_the_excess() {
        // Open-loop traffic at 2×: half the requests must go. CoDel's drop rate grows as
        // √count / INTERVAL, so it takes a while (about 20 s here) to get there.
        let mut q = CoDel::new(TARGET, INTERVAL);
        let l = Load {
            load: 2.0,
            service: MS,
            deadline: DEADLINE,
            duration: Duration::from_secs(60),
            seed: 3,
        };
        let out = simulate(&mut q, l);
        let shed = q.dropped() as f64 / out.offered as f64;
        assert!(
            shed > 0.4,
            "offered twice what the server can do, CoDel must end up dropping about half: \
             dropped {:.0}% of {} requests (does the spacing shrink as drops go on?)",
            shed * 100.0,
            out.offered
        );
        assert!(
            out.served as f64 >= 0.99 * out.capacity as f64,
            "and never so much that the server idles: served {} of a capacity of {}",
            out.served,
            out.capacity
        );
        assert_eq!(
            out.served + q.dropped(),
            out.offered,
            "every request served or dropped"
        );
    }

    #[test]
    fn below_capacity_nothing_is_dropped_and_no_request_is_late() {
        let mut q = CoDel::new(TARGET, INTERVAL);
        let l = Load {
            load: 0.5,
            service: MS,
            deadline: DEADLINE,
            duration: Duration::from_secs(5),
            seed: 3,
        };
        let out = simulate(&mut q, l);
        assert_eq!(
            q.dropped(),
            0,
            "at half load the queue never stands: no drop"
        );
        assert_eq!(out.served, out.offered, "every request is served");
    }
}
