// Saga with a transactional outbox — undo what was done, and never lose or double an event.
//
// Checkout reserves stock (inventory service), charges the card (payments), then records the
// order: three services, no shared transaction. A saga runs the steps one by one and, when one
// fails, runs the compensations of the steps already done (release the stock, refund the card).
// And the order service must tell the world "order placed" even if it crashes right after its
// commit: it writes the event into an outbox table in the same local transaction, and a relay
// publishes the outbox to the broker. A crash between publish and "mark published" publishes
// again, so consumers drop duplicates by message id.
// Build `run_saga`, `relay` and `Consumer`. Properties: when step k fails, the compensations of
// steps k-1 down to 0 run in that order (never step k's, never forward), each retried until it
// succeeds; the relay publishes every outbox row in order, at least once, whatever operation a
// crash interrupts, and re-publishes nothing already marked; the consumer applies each message
// id exactly once. Lab: CRASH_PCT; compare double charges, lost events and orphaned reservations
// per 10,000 orders for dual write, outbox, and saga + outbox.

use std::collections::HashSet;

use sdlings_kit::transactions::orders::{self, Broker, Crashed, Message, OrderDb, SagaSteps};

// ---- Your part -------------------------------------------------------------------------------

/// Runs steps `0..n` in order. If step k fails, compensates k-1, ..., 0 (each retried until it
/// succeeds) and returns `Err(k)`.
pub fn run_saga(steps: &mut dyn SagaSteps, n: usize) -> Result<(), usize> {
    let _ = steps;
    todo!("run {n} steps; on a failure, undo the steps already done")
}

/// Publishes every unpublished outbox row, oldest first (`db.unpublished()`,
/// `broker.publish(..)`, `db.mark_published(..)`). Stops at the first crash (the caller restarts
/// it). Returns how many rows it published.
pub fn relay(db: &mut OrderDb, broker: &mut Broker) -> Result<usize, Crashed> {
    let _ = (db, broker);
    todo!("publish the outbox")
}

#[derive(Default)]
pub struct Consumer {
    /// Add what you need to recognise a message you have already applied.
    seen: HashSet<u64>,
    /// The payloads applied, in order.
    pub applied: Vec<String>,
}

impl Consumer {
    /// Applies `message` unless its id was applied before; returns whether it applied it.
    pub fn handle(&mut self, message: &Message) -> bool {
        let _ = &self.seen;
        todo!("apply {message:?} exactly once")
    }
}

// ---- Lab -------------------------------------------------------------------------------------

const ORDERS: u64 = 10_000;
/// The share of orders (and of relay runs) interrupted by a crash.
const CRASH_PCT: u32 = 5;

fn main() {
    orders::lab(ORDERS, CRASH_PCT, run_saga, relay, || {
        let mut consumer = Consumer::default();
        Box::new(move |m| consumer.handle(m))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdlings_kit::transactions::orders::{CrashPoint, ScriptedSteps};

    fn calls(steps: &ScriptedSteps) -> Vec<&str> {
        steps.calls.iter().map(String::as_str).collect()
    }

    #[test]
    fn a_saga_whose_steps_all_succeed_compensates_nothing() {
        let mut steps = ScriptedSteps::new(None, 0);
        assert_eq!(run_saga(&mut steps, 3), Ok(()));
        assert_eq!(calls(&steps), ["execute 0", "execute 1", "execute 2"]);
    }

    #[test]
    fn a_failure_at_step_3_undoes_step_2_then_step_1() {
        let mut steps = ScriptedSteps::new(Some(2), 0);
        assert_eq!(run_saga(&mut steps, 4), Err(2));
        assert_eq!(
            calls(&steps),
            [
                "execute 0",
                "execute 1",
                "execute 2 failed",
                "compensate 1",
                "compensate 0"
            ],
            "the third step failed: undo the second, then the first; never the failed step \
             (it did nothing), never the fourth (it never ran)"
        );
    }

    #[test]
    fn a_failing_first_step_has_nothing_to_undo() {
        let mut steps = ScriptedSteps::new(Some(0), 0);
        assert_eq!(run_saga(&mut steps, 3), Err(0));
        assert_eq!(calls(&steps), ["execute 0 failed"]);
        let mut steps = ScriptedSteps::new(None, 0);
        assert_eq!(run_saga(&mut steps, 0), Ok(()), "an empty saga succeeds");
        assert!(steps.calls.is_empty());
    }

    #[test]
    fn a_failing_compensation_is_retried_until_it_succeeds() {
        let mut steps = ScriptedSteps::new(Some(2), 2);
        assert_eq!(run_saga(&mut steps, 3), Err(2));
        assert_eq!(
            calls(&steps),
            [
                "execute 0",
                "execute 1",
                "execute 2 failed",
                "compensate 1 failed",
                "compensate 1 failed",
                "compensate 1",
                "compensate 0 failed",
                "compensate 0 failed",
                "compensate 0",
            ],
            "a refund that fails must be retried (it is idempotent), and step 0 is undone only \
             after step 1 is"
        );
    }

    #[test]
    fn every_failure_point_undoes_exactly_the_done_steps_in_reverse() {
        sdlings_kit::property::for_seeds(200, |rng| {
            use rand::RngExt;
            let n = rng.random_range(0..7);
            let fail_at = rng.random_range(0..=n);
            // Mostly a few failures, sometimes a long outage: no retry limit is enough.
            let retries = [0, 1, 2, rng.random_range(3..200)][rng.random_range(0..4)];
            let mut steps = ScriptedSteps::new((fail_at < n).then_some(fail_at), retries);
            let mut expected: Vec<String> = (0..fail_at).map(|s| format!("execute {s}")).collect();
            if fail_at < n {
                expected.push(format!("execute {fail_at} failed"));
                for s in (0..fail_at).rev() {
                    expected.extend((0..retries).map(|_| format!("compensate {s} failed")));
                    expected.push(format!("compensate {s}"));
                }
            }
            let result = run_saga(&mut steps, n);
            assert_eq!(result, if fail_at < n { Err(fail_at) } else { Ok(()) });
            assert_eq!(steps.calls, expected, "{n} steps, step {fail_at} fails");
        });
    }

    fn db_with_orders(n: usize) -> OrderDb {
        let mut db = OrderDb::default();
        for i in 0..n {
            db.place_order(&format!("order {i}"));
        }
        db
    }

    #[test]
    fn the_relay_publishes_every_row_in_order_once_and_marks_it() {
        let (mut db, mut broker) = (db_with_orders(3), Broker::default());
        assert_eq!(relay(&mut db, &mut broker), Ok(3));
        let ids: Vec<u64> = broker.delivered.iter().map(|m| m.id).collect();
        assert_eq!(ids, [100, 101, 102], "oldest first");
        assert_eq!(broker.delivered[1].payload, "order 1 placed");
        assert!(db.unpublished().is_empty(), "published rows are marked");
        assert_eq!(
            relay(&mut db, &mut broker),
            Ok(0),
            "nothing left: publish nothing again"
        );
        assert_eq!(broker.delivered.len(), 3);
    }

    #[test]
    fn a_crash_between_publish_and_mark_publishes_again_and_the_consumer_applies_once() {
        let (mut db, mut broker) = (db_with_orders(2), Broker::default());
        // Operation 0 is the first publish; it lands, then the relay crashes before marking.
        broker.crash = CrashPoint::at(0, true);
        db.crash = broker.crash.clone();
        assert_eq!(relay(&mut db, &mut broker), Err(Crashed));
        assert_eq!(db.unpublished().len(), 2, "the crash came before the mark");
        broker.crash = CrashPoint::never();
        db.crash = CrashPoint::never();
        assert_eq!(
            relay(&mut db, &mut broker),
            Ok(2),
            "the restarted relay publishes again"
        );
        let ids: Vec<u64> = broker.delivered.iter().map(|m| m.id).collect();
        assert_eq!(ids, [100, 100, 101], "at least once: message 100 twice");
        let mut consumer = Consumer::default();
        let applied: Vec<bool> = broker
            .delivered
            .iter()
            .map(|m| consumer.handle(m))
            .collect();
        assert_eq!(
            applied,
            [true, false, true],
            "the duplicate is dropped by its id"
        );
        assert_eq!(consumer.applied, ["order 0 placed", "order 1 placed"]);
    }

    #[test]
    fn the_consumer_dedupes_by_message_id_not_by_payload() {
        let mut consumer = Consumer::default();
        let m = |id: u64| Message {
            id,
            payload: "refund 5 EUR".into(),
        };
        assert!(consumer.handle(&m(1)));
        assert!(
            consumer.handle(&m(2)),
            "two refunds of the same amount are two messages"
        );
        assert!(!consumer.handle(&m(1)));
        assert_eq!(consumer.applied.len(), 2);
    }

    #[test]
    fn the_consumer_applies_each_id_once_whatever_order_and_distance_duplicates_arrive_in() {
        // Several relays (or broker partitions) interleave: ids arrive out of order, and a
        // duplicate can come long after the original.
        sdlings_kit::property::for_seeds(100, |rng| {
            use rand::RngExt;
            use rand::seq::SliceRandom;
            let mut ids: Vec<u64> = (0..rng.random_range(1..12)).collect();
            let copies: Vec<u64> = (0..rng.random_range(0..12))
                .map(|_| ids[rng.random_range(0..ids.len())])
                .collect();
            ids.extend(copies);
            ids.shuffle(rng);
            let mut consumer = Consumer::default();
            let mut first_seen = HashSet::new();
            for &id in &ids {
                let message = Message {
                    id,
                    payload: format!("event {id}"),
                };
                assert_eq!(
                    consumer.handle(&message),
                    first_seen.insert(id),
                    "arrivals {ids:?}: message {id} must be applied on its first arrival only"
                );
            }
        });
    }

    #[test]
    fn a_crash_at_any_operation_loses_no_event_and_applies_each_once() {
        for rows in 0..4 {
            for op in 0..2 * rows as u64 + 1 {
                for lands in [false, true] {
                    let (mut db, mut broker) = (db_with_orders(rows), Broker::default());
                    broker.crash = CrashPoint::at(op, lands);
                    db.crash = broker.crash.clone();
                    let first = relay(&mut db, &mut broker);
                    if op < 2 * rows as u64 {
                        assert_eq!(
                            (first, broker.crash.operations()),
                            (Err(Crashed), op + 1),
                            "{rows} rows, crash at operation {op}: the relay stops at the crash \
                             and reports it (a crashed process does nothing more)"
                        );
                    }
                    broker.crash = CrashPoint::never();
                    db.crash = CrashPoint::never();
                    assert!(relay(&mut db, &mut broker).is_ok());
                    let mut consumer = Consumer::default();
                    for message in &broker.delivered {
                        consumer.handle(message);
                    }
                    let expected: Vec<String> =
                        (0..rows).map(|i| format!("order {i} placed")).collect();
                    assert_eq!(
                        consumer.applied, expected,
                        "{rows} rows, crash at operation {op} (publish lands: {lands}): every \
                         event exactly once, in order"
                    );
                    assert!(
                        broker.delivered.len() <= rows + 1,
                        "one crash re-publishes at most one row, not the whole outbox"
                    );
                }
            }
        }
    }
}
