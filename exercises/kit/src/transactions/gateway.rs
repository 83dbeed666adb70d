//! A fake payment gateway for `idempotency_keys`: it counts every charge, and a test can hold
//! calls at its door (to put a duplicate in flight at a chosen moment) or script its failures.
//! Plus the request/response types of the payment API the learner builds, and its lab.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngExt;
use rand::rngs::StdRng;
use tokio::sync::watch;

use crate::lab::Table;
use crate::workload::seeded_rng;

/// One call to the payment API: charge `amount_cents` to `customer`, under an idempotency key
/// the client chose (a fresh UUID per order, reused by its retries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeRequest {
    pub key: String,
    pub customer: u64,
    pub amount_cents: u64,
}

/// A successful charge, as the API returns it (and replays it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub charge_id: u64,
    pub amount_cents: u64,
}

/// Why the API did not return a receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiError {
    /// The card was declined: a final answer, stored and replayed like a receipt.
    Declined,
    /// The gateway refused the call before charging (it was down): nothing happened, retry later.
    Unavailable,
    /// A request with this key is still being processed (HTTP 409): retry later.
    InProgress,
    /// This key was used for a different request (HTTP 422): a client bug, never retried.
    KeyReused,
}

/// What the gateway can answer instead of a charge id. Both are definite: no money moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayError {
    Declined,
    Unavailable,
}

/// A charge the gateway made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charge {
    pub id: u64,
    pub customer: u64,
    pub amount_cents: u64,
}

#[derive(Default)]
struct State {
    attempts: u64,
    charges: Vec<Charge>,
    script: VecDeque<GatewayError>,
    delays: Option<(StdRng, u64)>,
}

/// The fake gateway. `charge` is the only call the API makes.
pub struct Gateway {
    state: Mutex<State>,
    open: watch::Sender<bool>,
    entered: watch::Sender<u64>,
}

impl Default for Gateway {
    fn default() -> Self {
        Self::new()
    }
}

impl Gateway {
    pub fn new() -> Self {
        Gateway {
            state: Mutex::new(State::default()),
            open: watch::Sender::new(true),
            entered: watch::Sender::new(0),
        }
    }

    /// Each call waits `0..=max_ms` milliseconds (drawn from `seed`) before answering.
    pub fn with_delays(seed: u64, max_ms: u64) -> Self {
        let gateway = Self::new();
        gateway.state.lock().unwrap().delays = Some((seeded_rng(seed), max_ms));
        gateway
    }

    /// From now on, calls wait at the door (after counting as entered) until [`Gateway::release`].
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    pub fn release(&self) {
        self.open.send_replace(true);
    }

    /// The next call that gets through the door fails with `error` and charges nothing.
    pub fn fail_next(&self, error: GatewayError) {
        self.state.lock().unwrap().script.push_back(error);
    }

    /// Waits (up to 10 simulated seconds) until `n` calls in all have entered the gateway;
    /// returns whether they did.
    pub async fn wait_entered(&self, n: u64) -> bool {
        let mut entered = self.entered.subscribe();
        let reached = entered.wait_for(|&e| e >= n);
        matches!(
            tokio::time::timeout(Duration::from_secs(10), reached).await,
            Ok(Ok(_))
        )
    }

    /// How many calls reached the gateway.
    pub fn attempts(&self) -> u64 {
        self.state.lock().unwrap().attempts
    }

    /// Every charge made, in order.
    pub fn charges(&self) -> Vec<Charge> {
        self.state.lock().unwrap().charges.clone()
    }

    /// Charges `amount_cents` to `customer`; returns the charge id.
    pub async fn charge(&self, customer: u64, amount_cents: u64) -> Result<u64, GatewayError> {
        let delay = {
            let mut state = self.state.lock().unwrap();
            state.attempts += 1;
            state
                .delays
                .as_mut()
                .map(|(rng, max)| rng.random_range(0..=*max))
        };
        self.entered.send_modify(|e| *e += 1);
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|&o| o).await;
        if let Some(ms) = delay {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let mut state = self.state.lock().unwrap();
        if let Some(error) = state.script.pop_front() {
            return Err(error);
        }
        let id = 1000 + state.charges.len() as u64;
        state.charges.push(Charge {
            id,
            customer,
            amount_cents,
        });
        Ok(id)
    }
}

/// Requests that differ from `(customer, amount_cents)` yet agree with it under a careless
/// fingerprint: the two fields swapped, moved by equal and opposite amounts, flipped by the same
/// bits, or their decimal digits run together and cut elsewhere (`(1, 23)` and `(12, 3)`). A key
/// used for `(customer, amount_cents)` must refuse every one of them.
pub fn look_alikes(customer: u64, amount_cents: u64, rng: &mut StdRng) -> Vec<(u64, u64)> {
    let mut out = vec![(amount_cents, customer)];
    let d = rng.random_range(1..=customer.min(amount_cents).max(1));
    out.push((customer + d, amount_cents.saturating_sub(d)));
    out.push((customer.saturating_sub(d), amount_cents + d));
    let bits = rng.random_range(1..64u64);
    out.push((customer ^ bits, amount_cents ^ bits));
    let digits = format!("{customer}{amount_cents}");
    for cut in 1..digits.len() {
        let (left, right) = digits.split_at(cut);
        if !right.starts_with('0') {
            out.push((left.parse().unwrap(), right.parse().unwrap()));
        }
    }
    out.retain(|&other| other != (customer, amount_cents));
    out.sort_unstable();
    out.dedup();
    out
}

/// The idempotency lab: `orders` checkouts whose clients give up waiting after `timeout_ms` and
/// retry (same key) up to `attempts` times, against a gateway answering in 0..=`max_delay_ms`
/// that is down for `unavailable_pct`% of calls. Run once with no idempotency (every attempt goes
/// straight to the gateway) and once through `api`; prints charges per order.
pub fn lab<A, F, Fut>(
    orders: u64,
    timeout_ms: u64,
    attempts: u32,
    max_delay_ms: u64,
    unavailable_pct: u32,
    make_api: A,
) where
    A: Fn(Arc<Gateway>) -> F,
    F: Fn(ChargeRequest) -> Fut + 'static,
    Fut: Future<Output = Result<Receipt, ApiError>> + 'static,
{
    let mut table = Table::new(&[
        "path",
        "orders",
        "charges",
        "double-charged orders",
        "never charged",
        "per 10,000",
        "409 seen",
    ]);
    for with_keys in [false, true] {
        let runtime = crate::lab::simulated_runtime();
        let local = tokio::task::LocalSet::new();
        let gateway = Arc::new(Gateway::with_delays(7, max_delay_ms));
        let api = Rc::new(make_api(gateway.clone()));
        let (in_progress, failed_pct_rng) = (Rc::new(Mutex::new(0u64)), seeded_rng(11));
        let failed_pct_rng = Rc::new(Mutex::new(failed_pct_rng));
        local.block_on(&runtime, async {
            let mut clients = Vec::new();
            for order in 0..orders {
                let (gateway, api) = (gateway.clone(), api.clone());
                let (in_progress, rng) = (in_progress.clone(), failed_pct_rng.clone());
                clients.push(tokio::task::spawn_local(async move {
                    tokio::time::sleep(Duration::from_millis(order * 3)).await;
                    let request = ChargeRequest {
                        key: format!("order-{order}"),
                        customer: order,
                        amount_cents: 500 + order % 7,
                    };
                    for _ in 0..attempts {
                        if rng.lock().unwrap().random_range(0..100) < unavailable_pct {
                            gateway.fail_next(GatewayError::Unavailable);
                        }
                        let call: std::pin::Pin<Box<dyn Future<Output = _>>> = if with_keys {
                            Box::pin(api(request.clone()))
                        } else {
                            let gateway = gateway.clone();
                            let request = request.clone();
                            Box::pin(async move {
                                gateway
                                    .charge(request.customer, request.amount_cents)
                                    .await
                                    .map(|id| Receipt {
                                        charge_id: id,
                                        amount_cents: request.amount_cents,
                                    })
                                    .map_err(|_| ApiError::Unavailable)
                            })
                        };
                        // The call goes on when the client stops waiting for it: the network
                        // does not cancel work already sent.
                        let call = tokio::task::spawn_local(call);
                        let answer = tokio::time::timeout(Duration::from_millis(timeout_ms), call);
                        match answer.await {
                            Ok(Ok(Ok(_))) | Ok(Ok(Err(ApiError::Declined))) => return,
                            Ok(Ok(Err(ApiError::InProgress))) => *in_progress.lock().unwrap() += 1,
                            _ => {}
                        }
                        tokio::time::sleep(Duration::from_millis(timeout_ms / 4)).await;
                    }
                }));
            }
            for client in clients {
                let _ = client.await;
            }
            // Let calls the clients gave up on finish.
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let mut per_order: BTreeMap<u64, u64> = BTreeMap::new();
        for charge in gateway.charges() {
            *per_order.entry(charge.customer).or_default() += 1;
        }
        let doubled = per_order.values().filter(|&&n| n > 1).count() as u64;
        let never = orders - per_order.len() as u64;
        table.row(&[
            if with_keys {
                "idempotency keys"
            } else {
                "plain retries"
            }
            .to_string(),
            orders.to_string(),
            gateway.charges().len().to_string(),
            doubled.to_string(),
            never.to_string(),
            format!("{:.0}", doubled as f64 * 10_000.0 / orders.max(1) as f64),
            in_progress.lock().unwrap().to_string(),
        ]);
    }
    table.print();
}
