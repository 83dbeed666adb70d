// Deadline propagation — pass the time that is LEFT down a call chain, so nobody keeps working for
// a caller that has already given up.
//
// A request enters service A, which calls B, which calls C. With a fixed timeout per hop ("1 s per
// call"), A may give up after 200 ms while B and C work on for seconds for nobody: wasted capacity
// at the worst moment (an overload is when budgets run out). gRPC propagates the deadline: each
// call carries the time its caller has LEFT (the `grpc-timeout` header of the previous exercise,
// which this network hands your handler decoded, as a gRPC library does), and each hop turns it
// into a deadline on its own monotonic clock, may tighten it with its own timeout, keeps back the
// time its reply needs, and sends the rest on.
//
// Build `Deadline`'s arithmetic and `serve`, one hop. Properties: a hop never starts work its
// budget cannot cover, its work and its wait for downstream stop at its deadline (even when the
// downstream ignores deadlines), and it sends on exactly what is left of it minus its reply time.
//
// Lab (simulated time): A -> B -> C, whose database C (C_WORKERS workers) stalls now and then, with
// deadlines propagated and with fixed per-hop timeouts, for each of CLIENT_BUDGETS_MS: without
// propagation C's queue fills with requests whose clients left, and nearly everything fails. Turn
// ARRIVAL_EVERY, C_WORKERS, STALL_PROBABILITY and HOPS and watch success and wasted work move.

use std::sync::Arc;
use std::time::Duration;

// The chain's scaffolding: hops, requests (carrying the time left), replies, the simulated network.
#[allow(unused_imports)]
use sdlings_kit::resilience::deadlines::{self, Hop, Network, Reply, Request, Status};
use tokio::time::Instant;

/// An instant on THIS machine's monotonic clock (tokio's `Instant`, which tests pause and move by
/// hand). It never leaves the process: between hops, only the remaining time travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// The deadline `budget` from now (an absurd budget, beyond the clock, is 30 years: forever).
    pub fn after(budget: Duration) -> Deadline {
        let now = Instant::now();
        let forever = Duration::from_secs(30 * 365 * 24 * 3600);
        let at = now.checked_add(budget).unwrap_or_else(|| now + forever);
        Deadline { at }
    }

    /// The instant itself, for `tokio::time::timeout_at` and `sleep_until`.
    pub fn at(&self) -> Instant {
        self.at
    }
}

// ---- Your part -------------------------------------------------------------------------------

impl Deadline {
    /// The time left until the deadline: zero once it has passed (never negative, never panics).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// True from the deadline instant on: no time left means expired.
    pub fn is_expired(&self) -> bool {
        Instant::now() >= self.at
    }

    /// The deadline to give a downstream call: `reserve` earlier than this one, keeping that
    /// much back for this hop's own reply. Never later than `self`; already expired if `reserve`
    /// is more than the time left.
    pub fn child(&self, reserve: Duration) -> Deadline {
        // `checked_sub` only fails for an instant before the clock's origin; that child is
        // expired whatever it is, and "now" (or the parent, if earlier) says so.
        let at = self
            .at
            .checked_sub(reserve)
            .unwrap_or_else(|| Instant::now().min(self.at));
        Deadline { at }
    }

    /// This deadline tightened by a hop's own timeout: the earlier of `self` and
    /// `local_timeout` from now. A hop may shorten its caller's deadline, never extend it.
    pub fn capped(&self, local_timeout: Duration) -> Deadline {
        (*self).min(Deadline::after(local_timeout))
    }
}

/// Serves one request at `hop` (the task `Network::call` runs); `DeadlineExceeded` when time runs
/// out. 1. The deadline: the request's `timeout` (else the hop's own), tightened by the hop's own.
/// 2. Refuse at once, before any work, if the time left cannot cover `work + reply`.
/// 3. Do the local work (`net.work(hop)`), stopping at the deadline.
/// 4. The last hop's reply is `Reply { served_by: vec![] }`. Otherwise call downstream with a
///    child deadline that keeps `reply` back, sending what is left of it (if it has already
///    passed, do not call); stop waiting at it (the downstream may ignore it); pass errors up.
/// 5. Build the reply (`net.build_reply(hop)`), add this hop's name to `served_by`.
pub async fn serve(net: Arc<Network>, hop: usize, request: Request) -> Result<Reply, Status> {
    let me = net.hop(hop).clone();
    let deadline = Deadline::after(request.timeout.unwrap_or(me.timeout)).capped(me.timeout);

    // Doomed from the start: say so now, so the caller can react while it still has time.
    if deadline.remaining() < me.work + me.reply {
        return Err(Status::DeadlineExceeded);
    }
    // A deadline bounds our own work too, not only the calls we make: a stall must not keep us
    // busy after everyone upstream has stopped waiting.
    tokio::time::timeout_at(deadline.at(), net.work(hop))
        .await
        .map_err(|_| Status::DeadlineExceeded)?;

    let mut reply = match net.downstream(hop) {
        None => Reply { served_by: vec![] },
        Some(next) => {
            let child = deadline.child(me.reply);
            // The work ran long: nothing is left for downstream. Do not send it zero.
            if child.is_expired() {
                return Err(Status::DeadlineExceeded);
            }
            // Relative, not absolute: the next machine's clock is not ours.
            let call = net.call(next, Request::with_timeout(child.remaining()));
            tokio::time::timeout_at(child.at(), call)
                .await
                .map_err(|_| Status::DeadlineExceeded)??
        }
    };
    net.build_reply(hop).await;
    reply.served_by.push(me.name);
    Ok(reply)
}

// ---- Lab: simulated ms on tokio's paused clock, the same requests and stalls in both runs ------

/// The client's budgets to try, in ms.
const CLIENT_BUDGETS_MS: [u64; 5] = [400, 250, 180, 140, 110];
/// The hops: (name, local work ms, reply ms). An API gateway, an order service, a database.
const HOPS: [(&str, u64, u64); 3] = [("A", 10, 5), ("B", 25, 5), ("C", 40, 5)];
/// C's workers (database connections). 4 workers x 40 ms: at most 100 requests/s.
const C_WORKERS: usize = 4;
/// One client request every 12 ms: about 83 requests/s.
const ARRIVAL_EVERY: Duration = Duration::from_millis(12);
/// Each hop, on each request, stalls (up to 300 ms) with this probability: a GC pause, a lock.
const STALL_PROBABILITY: f64 = 0.08;

fn main() {
    let knobs = deadlines::Knobs {
        client_budgets_ms: CLIENT_BUDGETS_MS.to_vec(),
        hops: HOPS.to_vec(),
        c_workers: C_WORKERS,
        arrival_every: ARRIVAL_EVERY,
        stall_probability: STALL_PROBABILITY,
        ..Default::default()
    };
    deadlines::run(|net, hop, req| Box::pin(serve(net, hop, req)), &knobs);
}

// ---- Tests -----------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;
    use sdlings_kit::resilience::deadlines::Scripted;
    use sdlings_kit::resilience::testing::paused;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A -> B -> C, every hop running your `serve`; each hop: own timeout 1 s (except `timeout`:
    /// (hop, ms)), work 20 ms, reply 5 ms, so 75 ms end to end.
    fn three_hops(timeout: (usize, u64)) -> Network {
        let hops = (0..3).map(|i| Hop {
            name: ["A", "B", "C"][i],
            timeout: ms(if i == timeout.0 { timeout.1 } else { 1000 }),
            work: ms(20),
            reply: ms(5),
        });
        Network::new(hops.collect(), |net, hop, req| {
            Box::pin(serve(net, hop, req))
        })
    }

    /// The client's answer from a chain of `n` hops: served by all (innermost first), or not.
    fn outcome(served: bool, n: usize) -> Result<Reply, Status> {
        let served_by = ["A", "B", "C"][..n].iter().rev().copied().collect();
        served
            .then_some(Reply { served_by })
            .ok_or(Status::DeadlineExceeded)
    }

    /// What a hop received: `n` ms left.
    fn left(n: u64) -> Option<Option<Duration>> {
        Some(Some(ms(n)))
    }

    #[tokio::test(start_paused = true)]
    async fn remaining_counts_down_with_the_clock_and_stops_at_zero() {
        let deadline = Deadline::after(ms(100));
        tokio::time::advance(ms(30)).await;
        assert_eq!(deadline.remaining(), ms(70), "30 ms into 100 ms");
        tokio::time::advance(ms(69)).await;
        assert!(!deadline.is_expired(), "1 ms is still left");
        tokio::time::advance(ms(1)).await;
        assert!(deadline.is_expired(), "no time left at the instant");
        tokio::time::advance(ms(50)).await;
        let why = "50 ms past the deadline: zero left, not negative, not a panic";
        assert_eq!(deadline.remaining(), Duration::ZERO, "{why}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_child_keeps_the_reserve_back_and_a_cap_tightens_but_never_extends() {
        let parent = Deadline::after(ms(100));
        let why = "a child keeping 30 ms back for our reply has 70 left; with no reserve it is \
                   its parent; the parent itself is unchanged";
        let got = (
            parent.child(ms(30)).remaining(),
            parent.child(ms(0)),
            parent.remaining(),
        );
        assert_eq!(got, (ms(70), parent, ms(100)), "{why}");
        let starved = parent.child(ms(150));
        let why = "150 ms kept back out of 100: nothing is left";
        assert!(starved.is_expired() && starved <= parent, "{why}");
        let why =
            "the caller allows 100 ms: a 40 ms own timeout tightens that, 500 must not extend it";
        let got = (
            parent.capped(ms(40)).remaining(),
            parent.capped(ms(500)).remaining(),
        );
        assert_eq!(got, (ms(40), ms(100)), "{why}");
        tokio::time::advance(ms(60)).await;
        let why = "60 ms into a 100 ms deadline, a 100 ms cap counted from now changes nothing";
        assert_eq!(parent.capped(ms(100)).remaining(), ms(40), "{why}");
    }

    #[tokio::test(start_paused = true)]
    async fn each_hop_sends_on_what_is_left_of_the_tightest_deadline_minus_its_reply() {
        // (what, one hop's own timeout (hop, ms), client budget ms, what each hop received,
        // served?, when the client got its answer)
        #[rustfmt::skip]
        let cases = [
            // A works 20 and keeps 5 back, so B gets 175 (passing on 200 restarts the clock at
            // every hop; 180 forgets the reply). B does the same.
            ("200 ms",       (0, 1000), Some(200), [left(200), left(175), left(150)], true, 75),
            ("no deadline",  (0, 1000), None,      [Some(None), left(975), left(950)], true, 75),
            ("B's own 100",  (1, 100),  Some(500), [left(500), left(475), left(75)], true, 75),
            // Every hop's own 1 s timeout must not extend the client's 100 ms.
            ("100 ms",       (0, 1000), Some(100), [left(100), left(75), left(50)], true, 75),
            // C's own timeout covers its 20 ms of work + 5 of reply exactly: refuse only LESS.
            ("C's own 25",   (2, 25),   Some(200), [left(200), left(175), left(150)], true, 75),
            // 24 ms cannot cover A's 20 + 5: A refuses at once, without working or calling B.
            ("24 ms",        (0, 1000), Some(24),  [left(24), None, None], false, 0),
            // C gets 10 ms for its 20 + 5 and refuses: the client knows at 40 ms, not at its
            // 60 ms deadline, and can still retry elsewhere or degrade.
            ("60 ms",        (0, 1000), Some(60),  [left(60), left(35), left(10)], false, 40),
        ];
        for (what, timeout, budget, received, served, took_ms) in cases {
            let net = Arc::new(three_hops(timeout));
            let (answer, took) = net.client_call(budget.map(ms)).await;
            let why = "the time left each hop received";
            assert_eq!(net.received(), received, "{what}: {why}");
            assert_eq!(answer, outcome(served, 3), "{what}");
            assert_eq!(took, ms(took_ms), "{what}: when the client got its answer");
            let (refusing, work) = (received.iter().rposition(Option::is_some), net.work_log());
            let why = "a refused request costs the hop that refused it no work";
            assert!(
                served || work.iter().all(|w| Some(w.0) != refusing),
                "{what}: {why}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_hop_is_cut_off_at_its_deadline_even_if_it_ignores_it() {
        // C stalls 500 ms. It gets 200 - 2 x (20 + 5) = 150 ms at 40 ms: its deadline is 190.
        for (deaf, c_work) in [(false, (2, 40, 190, false)), (true, (2, 40, 560, true))] {
            let mut net = three_hops((0, 1000)).with_stall(2, ms(500));
            if deaf {
                net = net.ignoring_deadlines(2); // an old server: it works on its own 1 s
            }
            let net = Arc::new(net);
            let (answer, took) = net.client_call(Some(ms(200))).await;
            let work = net.work_log().into_iter().find(|w| w.0 == 2);
            assert_eq!(
                (answer, took, work),
                (Err(Status::DeadlineExceeded), ms(190), Some(c_work)),
                "(answer, when, C's work) when C ignores deadlines: {deaf}. C must stop working \
                 at its deadline, not grind on until 560 ms for a caller that is gone (unless it \
                 ignores it), and B must stop WAITING at C's deadline (its child deadline) \
                 whatever C does: trusting the downstream to honour it is not enough"
            );
        }
    }

    /// What the chain must do, in whole ms: the time left each hop received (`None`: never
    /// called), every stretch of work and reply (hop, from, to, finished), and whether the case is
    /// ambiguous: two events on the same instant, or a reply that would end after the deadline.
    #[derive(Default)]
    struct Model {
        hops: Vec<Scripted>,
        received: Vec<Option<Option<Duration>>>,
        worked: Vec<(usize, u128, u128, bool)>,
        ambiguous: bool,
    }

    impl Model {
        /// Hop `i` gets a request at `now` with `left` ms; returns (served?, when it answers).
        fn visit(&mut self, i: usize, now: u64, left: Option<u64>) -> (bool, u64) {
            let hop = self.hops[i];
            let left = if hop.deaf { None } else { left };
            self.received.push(Some(left.map(ms)));
            let deadline = now + left.unwrap_or(hop.timeout).min(hop.timeout);
            if deadline - now < hop.work + hop.reply {
                return (false, now); // refused at once
            }
            let work_done = (now + hop.work + hop.stall).min(deadline);
            let finished = work_done < deadline;
            self.ambiguous |= now + hop.work + hop.stall == deadline;
            let stretch = (i, now.into(), work_done.into(), finished);
            self.worked.push(stretch);
            if !finished {
                return (false, deadline); // work cut at the deadline
            }
            let mut answered = work_done;
            if i + 1 < self.hops.len() {
                let child = deadline - hop.reply;
                if child <= work_done {
                    return (false, work_done); // nothing left for downstream: do not call
                }
                let (ok, at) = self.visit(i + 1, work_done, Some(child - work_done));
                self.ambiguous |= ok && at == child;
                if !ok || at > child {
                    return (false, at.min(child)); // stopped waiting at the child deadline
                }
                answered = at;
            }
            let end = answered + hop.reply;
            self.ambiguous |= end > deadline; // a stalled last hop: finish the reply late, or give up
            self.worked.push((i, answered.into(), end.into(), true));
            (true, end)
        }
    }

    #[test]
    fn the_chain_matches_a_model_over_random_hops_budgets_stalls_and_deaf_hops() {
        let mut checked = 0;
        sdlings_kit::property::for_seeds(800, |rng| {
            let hops = Scripted::random_chain(rng);
            let budget = rng.random_bool(0.85).then(|| rng.random_range(0..=250_u64));
            let mut model = Model {
                hops: hops.clone(),
                ..Model::default()
            };
            let (ok, at) = model.visit(0, 0, budget);
            model.received.resize(hops.len(), None); // never called
            if model.ambiguous {
                return;
            }
            checked += 1;
            let what = format!("hops {hops:?}, client budget {budget:?} ms");
            paused(async {
                let net = Network::scripted(&hops, |net, hop, req| Box::pin(serve(net, hop, req)));
                let net = Arc::new(net);
                let (answer, took) = net.client_call(budget.map(ms)).await;
                assert_eq!(
                    net.received(),
                    model.received,
                    "{what}: the time left each hop received (None: not called). A hop's \
                     deadline is the earlier of what it received and its own timeout; it refuses \
                     when that cannot cover work + reply, and sends on its deadline minus its \
                     reply, minus the time spent"
                );
                let expected = outcome(ok, hops.len());
                assert_eq!(answer, expected, "{what}: the client's answer");
                assert_eq!(took, ms(at), "{what}: when the client got its answer");
                let (mut worked, mut expected) = (net.work_log(), model.worked.clone());
                worked.sort();
                expected.sort();
                assert_eq!(
                    worked, expected,
                    "{what}: every stretch of work and reply (hop, from ms, to ms, finished). \
                     Work stops at the hop's deadline; a refused or uncalled hop does none"
                );
            });
        });
        assert!(
            checked > 500,
            "only {checked} unambiguous cases were checked"
        );
    }
}
