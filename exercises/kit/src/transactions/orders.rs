//! An order service's outbox, a broker, scripted saga steps, crash points, and the topic lab
//! that compares dual write, outbox and saga + outbox (`saga_with_outbox`).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

use rand::RngExt;

use crate::lab::Table;
use crate::workload::seeded_rng;

/// The process crashed in the middle of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crashed;

/// A saga step (or its compensation) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepFailed;

/// The steps of a saga, numbered 0..n, each with a compensation that undoes it.
pub trait SagaSteps {
    fn execute(&mut self, step: usize) -> Result<(), StepFailed>;
    /// Undoes a step that succeeded. It may fail for a while (the service is down); it is
    /// idempotent, so calling it again is safe.
    fn compensate(&mut self, step: usize) -> Result<(), StepFailed>;
}

/// Scripted steps that record every call: `fail_at` fails that step; each compensation fails
/// `compensation_failures` times before it succeeds.
#[derive(Debug, Default)]
pub struct ScriptedSteps {
    pub fail_at: Option<usize>,
    pub compensation_failures: usize,
    failures_left: BTreeMap<usize, usize>,
    /// Every call, e.g. `"execute 2"`, `"execute 2 failed"`, `"compensate 1 failed"`.
    pub calls: Vec<String>,
}

impl ScriptedSteps {
    pub fn new(fail_at: Option<usize>, compensation_failures: usize) -> Self {
        ScriptedSteps {
            fail_at,
            compensation_failures,
            ..Self::default()
        }
    }
}

impl SagaSteps for ScriptedSteps {
    fn execute(&mut self, step: usize) -> Result<(), StepFailed> {
        if self.fail_at == Some(step) {
            self.calls.push(format!("execute {step} failed"));
            return Err(StepFailed);
        }
        self.calls.push(format!("execute {step}"));
        Ok(())
    }

    fn compensate(&mut self, step: usize) -> Result<(), StepFailed> {
        let left = self
            .failures_left
            .entry(step)
            .or_insert(self.compensation_failures);
        if *left > 0 {
            *left -= 1;
            self.calls.push(format!("compensate {step} failed"));
            return Err(StepFailed);
        }
        self.calls.push(format!("compensate {step}"));
        Ok(())
    }
}

/// Counts operations and fails the `at`-th one (0-based) with [`Crashed`]. Shared by the
/// outbox and the broker, so "the 5th operation" counts both.
#[derive(Clone, Debug, Default)]
pub struct CrashPoint {
    ops: Rc<Cell<u64>>,
    at: Option<u64>,
    /// Whether a crashing publish reaches the broker before the crash (its ack is lost).
    pub publish_lands: bool,
}

impl CrashPoint {
    pub fn never() -> Self {
        Self::default()
    }

    pub fn at(op: u64, publish_lands: bool) -> Self {
        CrashPoint {
            ops: Rc::new(Cell::new(0)),
            at: Some(op),
            publish_lands,
        }
    }

    /// How many operations were attempted so far (the crashing one included).
    pub fn operations(&self) -> u64 {
        self.ops.get()
    }

    fn tick(&self) -> bool {
        let n = self.ops.get();
        self.ops.set(n + 1);
        self.at == Some(n)
    }
}

/// A row of the outbox table, written in the same local transaction as the order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: u64,
    pub payload: String,
    pub published: bool,
}

/// The order service's database: orders and their outbox rows, committed together.
#[derive(Debug, Default)]
pub struct OrderDb {
    pub orders: Vec<String>,
    rows: Vec<OutboxRow>,
    pub crash: CrashPoint,
}

impl OrderDb {
    /// One local transaction: the order and its event, both or neither. Returns the event's id.
    pub fn place_order(&mut self, order: &str) -> u64 {
        let id = 100 + self.rows.len() as u64;
        self.orders.push(order.to_string());
        self.rows.push(OutboxRow {
            id,
            payload: format!("{order} placed"),
            published: false,
        });
        id
    }

    /// The rows not yet marked published, oldest first.
    pub fn unpublished(&self) -> Vec<OutboxRow> {
        self.rows.iter().filter(|r| !r.published).cloned().collect()
    }

    pub fn mark_published(&mut self, id: u64) -> Result<(), Crashed> {
        if self.crash.tick() {
            return Err(Crashed);
        }
        if let Some(row) = self.rows.iter_mut().find(|r| r.id == id) {
            row.published = true;
        }
        Ok(())
    }
}

/// A message on the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: u64,
    pub payload: String,
}

/// The broker: everything published, in order, duplicates included.
#[derive(Debug, Default)]
pub struct Broker {
    pub delivered: Vec<Message>,
    pub crash: CrashPoint,
}

impl Broker {
    pub fn publish(&mut self, message: Message) -> Result<(), Crashed> {
        if self.crash.tick() {
            if self.crash.publish_lands {
                self.delivered.push(message);
            }
            return Err(Crashed);
        }
        self.delivered.push(message);
        Ok(())
    }
}

/// The topic lab: `orders` orders of three steps (reserve stock, charge the card, commit the
/// order and its event), with a crash between two steps in `crash_pct`% of them, after which
/// the client retries. Prints double charges, lost events and orphaned reservations per 10,000
/// orders for dual write, outbox, and saga + outbox (the learner's `saga`, `relay` and a fresh
/// consumer per strategy).
pub fn lab(
    orders: u64,
    crash_pct: u32,
    saga: impl Fn(&mut dyn SagaSteps, usize) -> Result<(), usize>,
    relay: impl Fn(&mut OrderDb, &mut Broker) -> Result<usize, Crashed>,
    new_consumer: impl Fn() -> Box<dyn FnMut(&Message) -> bool>,
) {
    #[derive(Default)]
    struct Ledger {
        reserved: BTreeMap<u64, i64>,
        charged: BTreeMap<u64, i64>,
    }
    struct Steps<'a> {
        order: u64,
        crash_before: Option<usize>,
        ledger: &'a mut Ledger,
        db: &'a mut OrderDb,
    }
    impl SagaSteps for Steps<'_> {
        fn execute(&mut self, step: usize) -> Result<(), StepFailed> {
            if self.crash_before == Some(step) {
                return Err(StepFailed); // recovery finds the saga interrupted here
            }
            match step {
                0 => *self.ledger.reserved.entry(self.order).or_default() += 1,
                1 => *self.ledger.charged.entry(self.order).or_default() += 1,
                _ => {
                    self.db.place_order(&format!("order {}", self.order));
                }
            }
            Ok(())
        }
        fn compensate(&mut self, step: usize) -> Result<(), StepFailed> {
            match step {
                0 => *self.ledger.reserved.entry(self.order).or_default() -= 1,
                1 => *self.ledger.charged.entry(self.order).or_default() -= 1,
                _ => {}
            }
            Ok(())
        }
    }

    let mut table = Table::new(&[
        "strategy",
        "orders",
        "crashed",
        "double charges /10k",
        "lost events /10k",
        "orphaned reservations /10k",
        "redeliveries",
    ]);
    for strategy in ["dual write", "outbox", "saga + outbox"] {
        let mut rng = seeded_rng(15);
        let (mut ledger, mut db, mut broker) =
            (Ledger::default(), OrderDb::default(), Broker::default());
        let (mut crashed, mut events) = (0u64, Vec::new());
        for order in 0..orders {
            // A crash after step g (0: reserved, 1: charged, 2: committed, before publishing).
            let crash_after =
                (rng.random_range(0..100) < crash_pct).then(|| rng.random_range(0..3));
            crashed += u64::from(crash_after.is_some());
            let mut attempt =
                |crash_after: Option<usize>, ledger: &mut Ledger, db: &mut OrderDb| {
                    if strategy == "saga + outbox" {
                        let mut steps = Steps {
                            order,
                            crash_before: crash_after.map(|g| g + 1).filter(|&s| s < 3),
                            ledger,
                            db,
                        };
                        return saga(&mut steps, 3).is_ok() || crash_after == Some(2);
                    }
                    *ledger.reserved.entry(order).or_default() += 1;
                    if crash_after == Some(0) {
                        return false;
                    }
                    *ledger.charged.entry(order).or_default() += 1;
                    if crash_after == Some(1) {
                        return false;
                    }
                    let id = db.place_order(&format!("order {order}"));
                    if strategy == "dual write" {
                        // The event goes straight to the broker, after the commit.
                        db.mark_published(id).ok();
                        if crash_after != Some(2) {
                            events.push(id);
                        }
                    }
                    true
                };
            // The client retries until the order exists.
            if !attempt(crash_after, &mut ledger, &mut db) {
                attempt(None, &mut ledger, &mut db);
            }
            // Meanwhile the relay runs, crashing now and then (and restarting).
            if strategy != "dual write" && order % 10 == 9 {
                broker.crash = match rng.random_range(0..100) < crash_pct {
                    true => CrashPoint::at(rng.random_range(0..20), rng.random()),
                    false => CrashPoint::never(),
                };
                db.crash = broker.crash.clone();
                let _ = relay(&mut db, &mut broker);
            }
        }
        if strategy != "dual write" {
            (broker.crash, db.crash) = (CrashPoint::never(), CrashPoint::never());
            let _ = relay(&mut db, &mut broker);
        }
        let mut redeliveries = 0;
        let mut consumer = new_consumer();
        for message in &broker.delivered {
            if consumer(message) {
                events.push(message.id);
            } else {
                redeliveries += 1;
            }
        }
        let committed = db.orders.len() as u64;
        let double = ledger.charged.values().filter(|&&c| c > 1).count() as u64;
        let orphaned: i64 = ledger.reserved.values().map(|&r| (r - 1).max(0)).sum();
        let lost = committed.saturating_sub(events.len() as u64);
        let per10k = |x: u64| format!("{:.0}", x as f64 * 10_000.0 / orders.max(1) as f64);
        table.row(&[
            strategy.to_string(),
            orders.to_string(),
            crashed.to_string(),
            per10k(double),
            per10k(lost),
            per10k(orphaned as u64),
            redeliveries.to_string(),
        ]);
    }
    table.print();
}
