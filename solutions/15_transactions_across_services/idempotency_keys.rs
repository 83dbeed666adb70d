// Idempotency keys — a retried or doubled payment request charges the card once.
//
// A checkout calls the payment API, the response is lost (a timeout, a dropped connection), and
// the client retries: did the first call charge the card? Stripe's answer is the idempotency
// key: the client sends a unique key and reuses it on every retry; the server remembers each
// key's request and response, and a repeat gets the stored response, not a second charge.
//
// Build `PaymentApi::charge`. The property: per key, the gateway charges at most once, however
// retries and duplicates interleave. A duplicate of a completed request gets the stored answer
// (a receipt or a decline); a duplicate that arrives while the first is still in flight is
// refused at once with `InProgress` (HTTP 409), never waits; the same key with another request
// (amount or customer) gets `KeyReused` in any state; a call the gateway refused before charging
// (`Unavailable`) stores nothing, so a retry runs again. Different keys never wait for each other.
// Lab: clients that time out and retry; lower TIMEOUT_MS below the gateway's delay and watch
// plain retries double-charge while the keyed path does not.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use sdlings_kit::transactions::gateway::{
    self, ApiError, ChargeRequest, Gateway, GatewayError, Receipt,
};

// ---- Your part -------------------------------------------------------------------------------

/// What the API remembers about one key.
enum Entry {
    /// A request with this fingerprint is being processed: duplicates are refused, not run.
    InFlight { fingerprint: (u64, u64) },
    /// Finished with a final answer (a receipt or a decline), replayed to every duplicate.
    Done {
        fingerprint: (u64, u64),
        response: Result<Receipt, ApiError>,
    },
}

pub struct PaymentApi {
    gateway: Arc<Gateway>,
    /// key → entry. A plain mutex, held only between awaits: the charge itself runs unlocked, so
    /// requests with different keys proceed in parallel.
    keys: Mutex<HashMap<String, Entry>>,
}

impl PaymentApi {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        PaymentApi {
            gateway,
            keys: Mutex::new(HashMap::new()),
        }
    }

    pub async fn charge(&self, request: &ChargeRequest) -> Result<Receipt, ApiError> {
        // The fingerprint is everything that makes two requests "the same request".
        let fingerprint = (request.customer, request.amount_cents);
        {
            // Check and claim the key in one critical section: two duplicates cannot both see
            // the key free.
            let mut keys = self.keys.lock().unwrap();
            match keys.get(&request.key) {
                Some(Entry::InFlight { fingerprint: f } | Entry::Done { fingerprint: f, .. })
                    if *f != fingerprint =>
                {
                    return Err(ApiError::KeyReused);
                }
                Some(Entry::InFlight { .. }) => return Err(ApiError::InProgress),
                Some(Entry::Done { response, .. }) => return response.clone(),
                None => {
                    keys.insert(request.key.clone(), Entry::InFlight { fingerprint });
                }
            }
        }
        let outcome = self
            .gateway
            .charge(request.customer, request.amount_cents)
            .await;
        let response = match outcome {
            Ok(charge_id) => Ok(Receipt {
                charge_id,
                amount_cents: request.amount_cents,
            }),
            Err(GatewayError::Declined) => Err(ApiError::Declined),
            Err(GatewayError::Unavailable) => {
                // Nothing happened: forget the key so that a retry runs the request again.
                self.keys.lock().unwrap().remove(&request.key);
                return Err(ApiError::Unavailable);
            }
        };
        let done = Entry::Done {
            fingerprint,
            response: response.clone(),
        };
        self.keys.lock().unwrap().insert(request.key.clone(), done);
        response
    }
}

// ---- Lab -------------------------------------------------------------------------------------

const ORDERS: u64 = 2_000;
/// How long a client waits for an answer before it retries with the same key.
const TIMEOUT_MS: u64 = 40;
const ATTEMPTS: u32 = 4;
/// The gateway answers in 0..=MAX_DELAY_MS.
const MAX_DELAY_MS: u64 = 60;
/// The share of gateway calls refused because it is down.
const UNAVAILABLE_PCT: u32 = 5;

fn main() {
    gateway::lab(
        ORDERS,
        TIMEOUT_MS,
        ATTEMPTS,
        MAX_DELAY_MS,
        UNAVAILABLE_PCT,
        |gateway| {
            let api = Rc::new(PaymentApi::new(gateway));
            move |request| {
                let api = api.clone();
                async move { api.charge(&request).await }
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: &str, customer: u64, amount_cents: u64) -> ChargeRequest {
        ChargeRequest {
            key: key.to_string(),
            customer,
            amount_cents,
        }
    }

    fn api() -> (Arc<Gateway>, Arc<PaymentApi>) {
        let gateway = Arc::new(Gateway::new());
        (gateway.clone(), Arc::new(PaymentApi::new(gateway)))
    }

    /// Calls the API, failing the test if the call waits instead of answering.
    async fn call(api: &PaymentApi, r: &ChargeRequest) -> Result<Receipt, ApiError> {
        let answer = tokio::time::timeout(std::time::Duration::from_secs(5), api.charge(r));
        answer
            .await
            .expect("the API waited for another request: a duplicate must be answered at once")
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_request_charges_once_and_returns_the_receipt() {
        let (gateway, api) = api();
        let receipt = call(&api, &request("k1", 7, 500)).await.unwrap();
        assert_eq!(gateway.charges().len(), 1, "one request, one charge");
        let charge = gateway.charges()[0];
        assert_eq!((charge.customer, charge.amount_cents), (7, 500));
        assert_eq!(
            receipt,
            Receipt {
                charge_id: charge.id,
                amount_cents: 500
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_duplicate_after_completion_replays_the_stored_receipt_without_charging() {
        let (gateway, api) = api();
        let first = call(&api, &request("k1", 7, 500)).await;
        for _ in 0..3 {
            assert_eq!(
                call(&api, &request("k1", 7, 500)).await,
                first,
                "a retry with the same key gets the first call's response, byte for byte"
            );
        }
        assert_eq!(gateway.attempts(), 1, "a replay never calls the gateway");
    }

    #[tokio::test(start_paused = true)]
    async fn different_keys_are_different_requests() {
        let (gateway, api) = api();
        let a = call(&api, &request("a", 7, 500)).await.unwrap();
        let b = call(&api, &request("b", 7, 500)).await.unwrap();
        assert_ne!(
            a, b,
            "two keys are two orders: the same customer and amount charge twice"
        );
        assert_eq!(gateway.charges().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_duplicate_while_the_first_is_in_flight_is_refused_and_does_not_charge() {
        let (gateway, api) = api();
        gateway.hold();
        let first = tokio::spawn({
            let api = api.clone();
            async move { api.charge(&request("k1", 7, 500)).await }
        });
        assert!(
            gateway.wait_entered(1).await,
            "the first call reaches the gateway"
        );
        assert_eq!(
            call(&api, &request("k1", 7, 500)).await,
            Err(ApiError::InProgress),
            "the first call has not answered yet: its duplicate is refused with 409, not run"
        );
        assert_eq!(
            gateway.attempts(),
            1,
            "the duplicate must not reach the gateway"
        );
        gateway.release();
        let receipt = first.await.unwrap().expect("the first call charges");
        assert_eq!(gateway.charges().len(), 1);
        assert_eq!(
            call(&api, &request("k1", 7, 500)).await,
            Ok(receipt),
            "once the first call is done, a retry gets its receipt"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn requests_with_different_keys_are_in_flight_at_the_same_time() {
        let (gateway, api) = api();
        gateway.hold();
        let calls: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|key| {
                let api = api.clone();
                tokio::spawn(async move { api.charge(&request(key, 1, 100)).await })
            })
            .collect();
        assert!(
            gateway.wait_entered(3).await,
            "three keys, three calls at the gateway at once: a lock held across the charge \
             makes every checkout wait for the slowest one"
        );
        gateway.release();
        for c in calls {
            assert!(c.await.unwrap().is_ok());
        }
        assert_eq!(gateway.charges().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_key_with_another_request_is_refused_after_completion() {
        let (gateway, api) = api();
        let first = call(&api, &request("k1", 7, 500)).await;
        assert_eq!(
            call(&api, &request("k1", 7, 900)).await,
            Err(ApiError::KeyReused),
            "same key, another amount: replaying the 500 receipt would lie to the client"
        );
        assert_eq!(
            call(&api, &request("k1", 8, 500)).await,
            Err(ApiError::KeyReused),
            "same key and amount, another customer: still another request"
        );
        assert_eq!(
            gateway.attempts(),
            1,
            "a refused request never reaches the gateway"
        );
        assert_eq!(
            call(&api, &request("k1", 7, 500)).await,
            first,
            "the stored response stays"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_key_with_another_request_is_refused_while_in_flight() {
        let (gateway, api) = api();
        gateway.hold();
        let first = tokio::spawn({
            let api = api.clone();
            async move { api.charge(&request("k1", 7, 500)).await }
        });
        assert!(gateway.wait_entered(1).await);
        assert_eq!(
            call(&api, &request("k1", 7, 900)).await,
            Err(ApiError::KeyReused),
            "a different request under a used key is a client bug, in flight or not: 422, not 409"
        );
        gateway.release();
        assert!(first.await.unwrap().is_ok());
        assert_eq!(gateway.charges().len(), 1);
    }

    #[test]
    fn any_other_customer_or_amount_under_a_used_key_is_refused() {
        sdlings_kit::property::for_seeds(30, |rng| {
            use rand::RngExt;
            let (customer, amount) = (rng.random_range(1..1000), rng.random_range(1..100_000));
            for (other_customer, other_amount) in gateway::look_alikes(customer, amount, rng) {
                let (gateway, api) = api();
                let other = request("k", other_customer, other_amount);
                // The first request ends in a receipt or in a decline: both are stored answers.
                let declined = rng.random::<bool>();
                if declined {
                    gateway.fail_next(GatewayError::Declined);
                }
                let answers = sdlings_kit::lab::simulated_runtime().block_on(async {
                    gateway.hold();
                    let first = tokio::spawn({
                        let api = api.clone();
                        async move { api.charge(&request("k", customer, amount)).await }
                    });
                    assert!(gateway.wait_entered(1).await);
                    let in_flight = call(&api, &other).await;
                    gateway.release();
                    assert_eq!(first.await.unwrap().is_err(), declined);
                    (in_flight, call(&api, &other).await)
                });
                assert_eq!(
                    answers,
                    (Err(ApiError::KeyReused), Err(ApiError::KeyReused)),
                    "key used for customer {customer}, {amount} cents (declined: {declined}); then \
                     customer {other_customer}, {other_amount} cents (in flight, then done): the \
                     fingerprint must tell every field apart, whatever the stored answer"
                );
                assert_eq!(gateway.attempts(), 1);
            }
        });
    }

    #[tokio::test(start_paused = true)]
    async fn a_decline_is_stored_and_replayed_without_a_second_attempt() {
        let (gateway, api) = api();
        gateway.fail_next(GatewayError::Declined);
        assert_eq!(
            call(&api, &request("k1", 7, 500)).await,
            Err(ApiError::Declined)
        );
        assert_eq!(
            call(&api, &request("k1", 7, 500)).await,
            Err(ApiError::Declined),
            "a decline is a final answer: the retry gets it again"
        );
        assert_eq!(
            gateway.attempts(),
            1,
            "the card is not tried again under the same key"
        );
        assert!(gateway.charges().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn after_an_unavailable_gateway_a_retry_runs_again_and_charges_once() {
        let (gateway, api) = api();
        gateway.fail_next(GatewayError::Unavailable);
        assert_eq!(
            call(&api, &request("k1", 7, 500)).await,
            Err(ApiError::Unavailable)
        );
        let retry = call(&api, &request("k1", 7, 500)).await;
        assert!(
            retry.is_ok(),
            "the gateway charged nothing the first time: the retry must run, not replay the \
             failure or be refused as in progress (got {retry:?})"
        );
        assert_eq!(call(&api, &request("k1", 7, 500)).await, retry);
        assert_eq!(gateway.charges().len(), 1, "one charge for the key in all");
        assert_eq!(gateway.attempts(), 2);
    }

    #[test]
    fn retries_and_duplicates_in_any_order_charge_each_key_at_most_once() {
        sdlings_kit::property::for_seeds(40, |rng| {
            use rand::RngExt;
            let seed = rng.random::<u64>();
            let runtime = sdlings_kit::lab::simulated_runtime();
            let gateway = Arc::new(Gateway::with_delays(seed, 20));
            let api = Arc::new(PaymentApi::new(gateway.clone()));
            let mut calls = Vec::new();
            for _ in 0..60 {
                let key = rng.random_range(0..8u64);
                let at = rng.random_range(0..100u64);
                if rng.random_range(0..5) == 0 {
                    gateway.fail_next(if rng.random() {
                        GatewayError::Unavailable
                    } else {
                        GatewayError::Declined
                    });
                }
                let api = api.clone();
                calls.push((key, async move {
                    tokio::time::sleep(std::time::Duration::from_millis(at)).await;
                    api.charge(&request(&format!("k{key}"), key, 100 + key))
                        .await
                }));
            }
            let answers: Vec<(u64, Result<Receipt, ApiError>)> = runtime.block_on(async {
                let handles: Vec<_> = calls
                    .into_iter()
                    .map(|(key, c)| (key, tokio::spawn(c)))
                    .collect();
                let mut answers = Vec::new();
                for (key, h) in handles {
                    answers.push((key, h.await.unwrap()));
                }
                answers
            });
            for key in 0..8u64 {
                let charges: Vec<_> = gateway
                    .charges()
                    .into_iter()
                    .filter(|c| c.customer == key)
                    .collect();
                assert!(
                    charges.len() <= 1,
                    "key k{key} was charged {} times",
                    charges.len()
                );
                for (_, answer) in answers.iter().filter(|(k, _)| *k == key) {
                    match answer {
                        Ok(receipt) => assert_eq!(
                            Some(receipt.charge_id),
                            charges.first().map(|c| c.id),
                            "every receipt for k{key} names its one charge"
                        ),
                        Err(ApiError::KeyReused) => panic!("k{key} was only used for one request"),
                        Err(_) => {}
                    }
                }
            }
        });
    }
}
