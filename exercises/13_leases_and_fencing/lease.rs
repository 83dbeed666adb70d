// Lease — the holder's side: act as the owner only while the server surely still agrees.
//
// A lease is a lock with a time limit (Gray & Cheriton, 1989): the server grants it for a TTL
// and, once that has passed on ITS clock, gives it to someone else without asking the holder —
// which may be paused, partitioned or dead. Chubby, etcd and ZooKeeper sessions, Kafka's
// controller and every "leader lease" work this way. The holder's danger is to believe it still
// holds the lease after the server has moved on: two primaries writing at once.
//
// Build `Lease`: record each acquire-or-renew request sent, take the server's grants, and answer
// `holds(now)`. The property: with messages delayed, lost and duplicated, and the holder's clock
// running up to MAX_DRIFT faster or slower than the server's, a holder never believes it holds
// the lease at a moment when the server has already granted it to another; and it does hold it
// for as long as that guarantee allows. `now` is always the holder's own clock.
//
// Lab: three holders share a lease over many runs, for several assumed margins. Turn DRIFT (how
// far the clocks really run apart) above the margin and watch two holders appear.

use std::collections::BTreeMap;
use std::time::Duration;

use sdlings_kit::leases::Grant;
use sdlings_kit::leases::lease::{self, Holder, Setup};

/// Over any span of time, the holder's clock measures between (1 − MAX_DRIFT) and (1 + MAX_DRIFT)
/// of what the server's clock measures.
pub const MAX_DRIFT: f64 = 0.05;

// ---- Your part -------------------------------------------------------------------------------

#[derive(Clone, Debug)]
#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
pub struct Lease {
    max_drift: f64,
    /// Requests in flight: request id → when it was sent (this holder's clock).
    sent: BTreeMap<u64, Duration>,
    /// Until when (this holder's clock) the lease is surely still ours; `None`: never granted.
    until: Option<Duration>,
}

impl Lease {
    pub fn new(max_drift: f64) -> Self {
        Lease {
            max_drift,
            sent: BTreeMap::new(),
            until: None,
        }
    }
}

impl Holder for Lease {
    fn sent(&mut self, req: u64, now: Duration) {
        todo!("remember when request {req} was sent ({now:?})")
    }

    fn granted(&mut self, grant: &Grant, now: Duration) {
        todo!(
            "the server granted {grant:?}; it arrived at {now:?}: until when is the lease surely ours?"
        )
    }

    fn holds(&self, now: Duration) -> bool {
        todo!("is the lease surely still ours at {now:?}?")
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// How far the clocks really run apart (the margins in the table are what the holder assumes).
const DRIFT: f64 = 0.05;
const TTL_MS: u64 = 200;
const LOSS: f64 = 0.1;
const RUNS: u64 = 40;

fn main() {
    let setup = Setup {
        ttl: Duration::from_millis(TTL_MS),
        drift: DRIFT,
        loss: LOSS,
        ..Setup::default()
    };
    lease::lab(&setup, &[0.0, 0.01, 0.03, MAX_DRIFT, 0.2], RUNS, Lease::new);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEDS: u64 = 100;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn grant(req: u64, ttl_ms: u64, expires_at_ms: u64) -> Grant {
        Grant {
            req,
            key: 0,
            ttl: ms(ttl_ms),
            expires_at: ms(expires_at_ms),
            token: 1,
        }
    }

    #[test]
    fn holds_from_the_grant_until_the_send_time_plus_the_ttl_less_the_drift_margin() {
        let mut lease = Lease::new(0.05);
        assert!(!lease.holds(ms(0)), "nothing was granted yet");
        lease.sent(1, ms(100));
        assert!(!lease.holds(ms(150)), "a request in flight is not a lease");
        lease.granted(&grant(1, 1_000, 77_000), ms(130));
        for t in [130, 600, 1_049] {
            assert!(
                lease.holds(ms(t)),
                "sent at 100 ms, TTL 1000 ms less 5%: held at {t} ms"
            );
        }
        for t in [1_050, 1_051, 5_000] {
            assert!(
                !lease.holds(ms(t)),
                "sent at 100 ms, TTL 1000 ms less 5%: the lease is over at 1050 ms, not held at {t}"
            );
        }
    }

    #[test]
    fn the_ttl_counts_from_when_the_request_was_sent_not_when_the_reply_came() {
        let mut lease = Lease::new(0.1);
        lease.sent(7, ms(1_000));
        lease.granted(&grant(7, 500, 0), ms(1_300));
        assert!(lease.holds(ms(1_449)));
        assert!(
            !lease.holds(ms(1_450)),
            "the server may have started the TTL as early as 1000 ms (when we sent): 1000 + 450 \
             is the end, however late the reply arrived"
        );
    }

    #[test]
    fn with_no_drift_the_lease_lasts_exactly_the_ttl() {
        let mut lease = Lease::new(0.0);
        lease.sent(1, ms(0));
        lease.granted(&grant(1, 200, 0), ms(10));
        assert!(
            lease.holds(ms(199)) && !lease.holds(ms(200)),
            "TTL 200 ms, no margin"
        );
    }

    #[test]
    fn the_servers_expiry_time_is_on_its_clock_and_means_nothing_on_ours() {
        let mut lease = Lease::new(0.05);
        lease.sent(1, ms(100));
        lease.granted(&grant(1, 1_000, 60_000), ms(120));
        assert!(
            !lease.holds(ms(2_000)),
            "the server's clock reads 60 s when ours reads 0.1 s: its expiry says nothing here"
        );
        let mut lease = Lease::new(0.05);
        lease.sent(1, ms(60_000));
        lease.granted(&grant(1, 1_000, 1_000), ms(60_010));
        assert!(lease.holds(ms(60_500)), "nor when its clock is behind ours");
    }

    #[test]
    fn a_renewal_extends_the_lease_from_its_own_send_time() {
        let mut lease = Lease::new(0.1);
        lease.sent(1, ms(0));
        lease.granted(&grant(1, 1_000, 0), ms(20));
        lease.sent(2, ms(300));
        lease.granted(&grant(2, 1_000, 0), ms(320));
        assert!(
            lease.holds(ms(1_199)),
            "renewed at 300 ms: held until 300 + 900"
        );
        assert!(
            !lease.holds(ms(1_200)),
            "the renewal runs from its own send time (300 ms), not from the old expiry (900 ms)"
        );
    }

    #[test]
    fn a_pending_renewal_neither_ends_nor_extends_the_lease() {
        let mut lease = Lease::new(0.0);
        lease.sent(1, ms(0));
        lease.granted(&grant(1, 100, 0), ms(10));
        lease.sent(2, ms(90));
        assert!(
            lease.holds(ms(99)),
            "the renewal in flight does not end the lease we have: still ours until 100 ms"
        );
        assert!(
            !lease.holds(ms(100)),
            "the renewal sent at 90 ms has no answer yet: the server may refuse it"
        );
    }

    #[test]
    fn a_late_grant_uses_its_own_requests_send_time() {
        let mut lease = Lease::new(0.0);
        lease.sent(1, ms(0));
        lease.sent(2, ms(50));
        lease.granted(&grant(1, 100, 0), ms(60));
        assert!(
            lease.holds(ms(99)),
            "request 1 was granted: the lease is ours from its send (0 ms) for 100 ms, whether or \
             not request 2 is ever answered (remember every request in flight, not the last one)"
        );
        assert!(
            !lease.holds(ms(100)),
            "the grant answers request 1, sent at 0 ms: over at 100 ms (request 2 may be lost)"
        );
        let mut lease = Lease::new(0.0);
        lease.sent(1, ms(0));
        lease.sent(2, ms(50));
        lease.granted(&grant(2, 100, 0), ms(70));
        assert!(lease.holds(ms(149)), "request 2's grant runs from 50 ms");
        lease.granted(&grant(1, 100, 0), ms(80));
        assert!(
            lease.holds(ms(149)),
            "the grant of request 1 arrived after request 2's (reordered): it must not cut the \
             newer lease short"
        );
    }

    #[test]
    fn a_grant_for_a_request_never_sent_is_ignored() {
        let mut lease = Lease::new(0.0);
        lease.granted(&grant(9, 1_000, 0), ms(10));
        assert!(
            !lease.holds(ms(20)),
            "no request 9 was sent: nothing is known of its timing"
        );
    }

    #[test]
    fn no_holder_acts_on_a_lease_the_server_gave_to_another_over_drift_loss_and_delay() {
        let setup = Setup {
            drift: MAX_DRIFT,
            ..Setup::default()
        };
        let (mut runs, mut handed_over) = (0, 0);
        sdlings_kit::property::for_seeds(SEEDS, |rng| {
            let seed = rand::RngExt::random(rng);
            let views = lease::run(&setup, seed, || Lease::new(MAX_DRIFT));
            runs += 1;
            if let Some(&(at, holder, owner)) = views.conflicts.first() {
                panic!(
                    "at {at:?} (true time) node {holder} still believed it held the lease, but \
                     the server had granted it to node {owner} since ({} ms of such overlap): \
                     count from the send, and leave room for the drift",
                    views.conflicts.len()
                );
            }
            let run_ms = setup.duration.as_millis() as u64;
            assert!(
                views.any_held_ms * 2 > run_ms,
                "someone should hold the lease most of the run, held {} of {run_ms} ms",
                views.any_held_ms
            );
            handed_over += usize::from(views.held_ms.iter().filter(|&&h| h > 0).count() >= 2);
        });
        // Some runs keep one holder throughout (every renewal got through): fine, if rare.
        assert!(
            runs < 10 || handed_over * 2 >= runs,
            "the lease should change hands in most runs: it did in {handed_over} of {runs}"
        );
    }
}
