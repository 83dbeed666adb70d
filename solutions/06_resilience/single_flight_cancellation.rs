// Single flight that survives its leader: a timeout or a panic must not strand the herd
//
// 01's `stampede` coalesced a herd of misses into one load, run by the first caller (the leader)
// while the others wait for its outcome. In a real service every request has a timeout. During a
// stampede the database is slow, so the leader's request times out and its future is dropped
// mid-load; or the loader panics on a bad row. A leader that cleans up only on the path where the
// load returns leaves its waiters failing or hanging, and the key marked "in flight" for good:
// every later request for that hot key waits on a load that nobody runs.
//
// Build `SingleFlight::get` on the given single-flight bookkeeping (`Flights`, below your part).
// However the leader ends, it must leave no trace: the key is never left in flight. If its
// caller gives up, the waiters still get the value, at the cost of at most one more load (not
// one per waiter). A panicking load is a failed load: every waiter gets an error, and the next
// call loads again. This is a drop guard, the tool `bulkhead` just taught.
//
// Lab (runs once the tests pass): a burst on a cold cache where IMPATIENT_PERCENT of the clients
// give up early. Nobody fails because of another's timeout and no key is left stuck; watch what
// the DB loads column says each cancelled leader costs, and lower IMPATIENT_TIMEOUT_MS.

use std::sync::Arc;
use std::time::Duration;

use sdlings_kit::caching::single_flight;
use sdlings_kit::caching::stampede::{self, Key, LoadError, Loader, Value};

// ---- Your part -------------------------------------------------------------------------------

/// A read-through cache that loads each missing key once, however many callers ask for it, and
/// stays correct when the caller running a load gives up or the load panics.
pub struct SingleFlight<L: Loader> {
    loader: Arc<L>,
    flights: Arc<Flights>,
}

/// Owned by the leader while its load runs: whatever ends the leader (the load returning, the
/// caller's future being dropped, a panic unwinding), dropping this ends the flight.
struct Leading<'a> {
    flights: &'a Flights,
    key: Key,
    /// `Some` until the flight is ended.
    leader: Option<watch::Sender<Outcome>>,
}

impl Leading<'_> {
    /// The load returned: publish its outcome. Consumes the guard, so it ends the flight once.
    fn finish(mut self, result: &Result<Value, LoadError>) {
        let leader = self.leader.take().expect("a flight ends once");
        self.flights.finish(self.key, leader, result);
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let Some(leader) = self.leader.take() else {
            return; // finished normally
        };
        if std::thread::panicking() {
            // The load panicked: that is a failed load like any other, delivered to every waiter.
            // Handing it over instead would let each waiter in turn run a load that may well panic
            // again: a key that always panics would be loaded once per waiter.
            let error = LoadError(format!("the load of key {} panicked", self.key));
            self.flights.finish(self.key, leader, &Err(error));
        } else {
            // The caller gave up (its future was dropped mid-load). The load itself did not fail,
            // so do not fail the waiters: free the key, and one of them takes over.
            self.flights.abandon(self.key, leader);
        }
    }
}

impl<L: Loader> SingleFlight<L> {
    pub fn new(loader: Arc<L>) -> Self {
        SingleFlight {
            loader,
            flights: Arc::new(Flights::default()),
        }
    }

    /// The value for `key`: cached, or loaded once however many callers ask concurrently.
    pub async fn get(&self, key: Key) -> Result<Value, LoadError> {
        loop {
            match self.flights.begin(key) {
                Begin::Hit(value) => return Ok(value),
                Begin::Lead(leader) => {
                    // Armed before the first `.await`: from here on, every way out ends the flight.
                    let leading = Leading {
                        flights: &self.flights,
                        key,
                        leader: Some(leader),
                    };
                    let result = self.loader.load(key).await;
                    leading.finish(&result);
                    return result;
                }
                Begin::Follow(mut outcome) => {
                    if let Ok(outcome) = outcome.wait_for(Option::is_some).await {
                        return outcome.clone().expect("wait_for returns once it is Some");
                    }
                    // Closed without an outcome: the leader gave up and freed the key. Start
                    // over: the first waiter back becomes the new leader, the others follow it.
                }
            }
        }
    }
}

// ---- Given: the single-flight bookkeeping of 01's `stampede` (read it, no need to edit) --------

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// The outcome of one load, as its waiters see it: `None` while it runs.
pub type Outcome = Option<Result<Value, LoadError>>;

/// What `Flights::begin` found for a key.
pub enum Begin {
    /// The value is cached.
    Hit(Value),
    /// A load is in flight: its outcome arrives here. The channel closes without an outcome if
    /// the leader abandons the flight.
    Follow(watch::Receiver<Outcome>),
    /// Nothing was cached or in flight: the caller is now the key's leader. It must end the
    /// flight with `finish` or `abandon`, or the key stays in flight.
    Lead(watch::Sender<Outcome>),
}

enum Slot {
    Ready(Value),
    Loading(watch::Receiver<Outcome>),
}

/// The cached values and the loads in flight, behind a lock never held across an `.await`.
#[derive(Default)]
pub struct Flights {
    slots: Mutex<HashMap<Key, Slot>>,
}

impl Flights {
    /// Checks the key and, on a miss with nothing in flight, registers the caller as its leader,
    /// in one step (01's lesson: a check, then a separate registration, lets the herd through).
    pub fn begin(&self, key: Key) -> Begin {
        let mut slots = self.slots.lock().expect("no panics under this lock");
        match slots.get(&key) {
            Some(Slot::Ready(value)) => Begin::Hit(value.clone()),
            Some(Slot::Loading(outcome)) => {
                assert!(
                    outcome.has_changed().is_ok(),
                    "key {key} is still marked in flight, but its leader is gone without ending \
                     the flight (finish or abandon): every later caller would wait on a load \
                     nobody runs"
                );
                Begin::Follow(outcome.clone())
            }
            None => {
                let (leader, outcome) = watch::channel(None);
                slots.insert(key, Slot::Loading(outcome));
                Begin::Lead(leader)
            }
        }
    }

    /// Ends the flight with the load's result: a value is cached, an error is not (the next
    /// call loads again), and every waiter gets the result.
    pub fn finish(
        &self,
        key: Key,
        leader: watch::Sender<Outcome>,
        result: &Result<Value, LoadError>,
    ) {
        let mut slots = self.slots.lock().expect("no panics under this lock");
        match result {
            Ok(value) => slots.insert(key, Slot::Ready(value.clone())),
            Err(_) => slots.remove(&key),
        };
        leader.send_replace(Some(result.clone()));
    }

    /// Ends the flight without a result: the key is free again, and the waiters see their
    /// channel close without an outcome.
    pub fn abandon(&self, key: Key, leader: watch::Sender<Outcome>) {
        self.slots
            .lock()
            .expect("no panics under this lock")
            .remove(&key);
        drop(leader);
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Share of clients that give up early, in percent: one lab row each.
const IMPATIENT_PERCENT: [u32; 4] = [0, 10, 50, 90];
/// An impatient client's timeout; a query takes DB_LATENCY_MS.
const IMPATIENT_TIMEOUT_MS: u64 = 15;
const DB_LATENCY_MS: u64 = 20;

fn main() {
    let knobs = single_flight::Knobs {
        requests: 1_000,
        keys: 10,
        arrival_window: Duration::from_millis(50),
        db_latency: Duration::from_millis(DB_LATENCY_MS),
        impatient_timeout: Duration::from_millis(IMPATIENT_TIMEOUT_MS),
        patient_timeout: Duration::from_secs(1),
        impatient_percent: IMPATIENT_PERCENT.to_vec(),
        seed: 11,
    };
    single_flight::run_lab(&knobs, SingleFlight::new);
}

/// The lab drives the cache through this trait (in the kit).
impl<L: Loader> stampede::LabCache for SingleFlight<L> {
    fn lookup(&self, key: Key) -> impl Future<Output = Result<Value, LoadError>> + Send {
        self.get(key)
    }
}

#[cfg(test)]
mod tests {
    use sdlings_kit::caching::stampede::SlowDb;
    use sdlings_kit::caching::within;
    use tokio::task::{JoinHandle, JoinSet};
    use tokio::time::{sleep, timeout};

    use super::*;

    const LATENCY: Duration = Duration::from_millis(100);

    fn setup() -> (Arc<SlowDb>, Arc<SingleFlight<SlowDb>>) {
        let db = Arc::new(SlowDb::new(LATENCY));
        (Arc::clone(&db), Arc::new(SingleFlight::new(db)))
    }

    /// A caller that gives up after `limit` (its `get` future is dropped then): `None` if it did.
    fn impatient(
        cache: &Arc<SingleFlight<SlowDb>>,
        key: Key,
        limit: Duration,
    ) -> JoinHandle<Option<Result<Value, LoadError>>> {
        let cache = Arc::clone(cache);
        tokio::spawn(async move { timeout(limit, cache.get(key)).await.ok() })
    }

    /// `n` concurrent callers of `get(key)` that wait as long as it takes.
    fn patient(
        cache: &Arc<SingleFlight<SlowDb>>,
        key: Key,
        n: usize,
    ) -> JoinSet<Result<Value, LoadError>> {
        let mut set = JoinSet::new();
        for _ in 0..n {
            let cache = Arc::clone(cache);
            set.spawn(async move { cache.get(key).await });
        }
        set
    }

    /// What each caller ended with: its result, or `None` if its task panicked.
    async fn outcomes(
        set: JoinSet<Result<Value, LoadError>>,
    ) -> Vec<Option<Result<Value, LoadError>>> {
        within("the waiting callers", async {
            let mut set = set;
            let mut out = Vec::new();
            while let Some(joined) = set.join_next().await {
                out.push(joined.ok());
            }
            out
        })
        .await
    }

    fn row(key: Key) -> Result<Value, LoadError> {
        Ok(format!("row {key}"))
    }

    // --- still a single flight ---

    #[tokio::test(start_paused = true)]
    async fn a_herd_shares_one_load_and_its_error_and_the_next_call_retries() {
        let (db, cache) = setup();
        db.fail_next(1, "connection reset");
        for outcome in outcomes(patient(&cache, 1, 10)).await {
            let error = Err(LoadError("connection reset".to_string()));
            assert_eq!(
                outcome,
                Some(error),
                "every waiter gets the one load's error"
            );
        }
        assert_eq!(
            outcomes(patient(&cache, 1, 10)).await,
            vec![Some(row(1)); 10]
        );
        assert_eq!(
            db.calls(),
            2,
            "one failed load, then one retry shared by the next herd"
        );
    }

    // --- the leader gives up ---

    #[tokio::test(start_paused = true)]
    async fn a_leader_timing_out_does_not_fail_its_waiters_and_one_of_them_takes_over() {
        let (db, cache) = setup();
        let leader = impatient(&cache, 1, LATENCY / 2);
        sleep(LATENCY / 4).await; // the leader's load is running
        let waiters = patient(&cache, 1, 10);
        assert_eq!(
            within("the leader", leader).await.unwrap(),
            None,
            "the leader timed out"
        );
        assert_eq!(
            outcomes(waiters).await,
            vec![Some(row(1)); 10],
            "the leader's caller gave up, not the database: its ten waiters must still get the \
             value (no error, no panic, no hang)"
        );
        assert!(
            db.calls() <= 2,
            "the abandoned load, then at most one more for all ten waiters, not one per waiter \
             (a retry storm on a database already too slow to answer in time); got {}",
            db.calls()
        );
        let calls = db.calls();
        assert_eq!(within("get(1)", cache.get(1)).await, row(1));
        assert_eq!(db.calls(), calls, "the value the waiters got is cached");
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_timing_out_alone_leaves_the_key_free_for_the_next_caller() {
        let (db, cache) = setup();
        let leader = impatient(&cache, 1, LATENCY / 2);
        assert_eq!(
            within("the leader", leader).await.unwrap(),
            None,
            "the leader timed out"
        );
        assert_eq!(
            within("the get after the leader timed out", cache.get(1)).await,
            row(1),
            "no key may stay marked in flight once its leader is gone"
        );
        assert!(db.calls() <= 2, "got {} loads for two callers", db.calls());
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_took_over_and_timed_out_too_hands_over_again() {
        let (db, cache) = setup();
        let leader = impatient(&cache, 1, LATENCY / 2);
        sleep(LATENCY / 4).await;
        // Takes over when the leader gives up, then gives up too, before its own load is done.
        let second = impatient(&cache, 1, LATENCY);
        sleep(LATENCY / 2).await;
        let waiters = patient(&cache, 1, 5); // they wait on the second caller's load
        assert_eq!(within("the leader", leader).await.unwrap(), None);
        let second = within("the second caller", second).await.unwrap();
        assert!(
            matches!(second, None | Some(Ok(_))),
            "timed out, or got the value: {second:?}"
        );
        assert_eq!(
            outcomes(waiters).await,
            vec![Some(row(1)); 5],
            "a waiter that took over the load is a leader like the first: when its caller gives \
             up too, the others must still get the value"
        );
        assert!(
            db.calls() <= 3,
            "got {} loads for two cancelled leaders",
            db.calls()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_giving_up_changes_nothing_for_the_others() {
        let (db, cache) = setup();
        let waiters = patient(&cache, 1, 3);
        sleep(LATENCY / 4).await;
        let quitter = impatient(&cache, 1, LATENCY / 4);
        assert_eq!(within("the quitter", quitter).await.unwrap(), None);
        assert_eq!(outcomes(waiters).await, vec![Some(row(1)); 3]);
        assert_eq!(db.calls(), 1, "nobody who ran the load gave up: one load");
    }

    // --- the load panics ---

    #[tokio::test(start_paused = true)]
    async fn a_panicking_load_fails_every_waiter_once_and_frees_the_key() {
        let (db, cache) = setup();
        db.panic_next(1);
        let outcomes = outcomes(patient(&cache, 1, 5)).await;
        let panicked = outcomes.iter().filter(|o| o.is_none()).count();
        assert!(
            panicked <= 1,
            "only the leader may panic with its loader; {panicked} callers panicked"
        );
        for outcome in outcomes.into_iter().flatten() {
            assert!(
                outcome.is_err(),
                "a panicking load is a failed load: its waiters get an error, not a value from \
                 a load of their own; got {outcome:?}"
            );
        }
        assert_eq!(
            db.calls(),
            1,
            "one load for the five callers: a waiter that takes over after a panic runs a load \
             that may panic again, and a key whose load always panics is loaded once per waiter"
        );
        assert_eq!(
            within("the get after the panic", cache.get(1)).await,
            row(1),
            "the key is free again: the next call loads it"
        );
        assert_eq!(db.calls(), 2);
    }
}
