//! Topic 17, `schema_evolution`: the order payloads of four producer versions, the kit's own old
//! consumers (v1 and v2 readers, and a strict v1 reader that refuses unknown fields), and the lab
//! that serves every producer version on localhost and reads it with every consumer.
//!
//! | version | an order payload |
//! |---|---|
//! | v1 | `id`, `customer`, `total_cents` (all required) |
//! | v2 | v1 + `currency` (was implicitly "USD") + optional `note` (absent or null when none) |
//! | v3 | `customer` renamed `customer_id`; adds `lines` and `channel` |
//! | v4 | breaking: `total_cents` removed, replaced by `total: {amount, currency}` |

use serde::Deserialize;
use serde_json::{Value, json};

use crate::client::Server;

/// What a producer knows about one order (every version writes what it has a field for).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub id: u64,
    pub customer: String,
    pub total_cents: u64,
    pub currency: String,
    pub note: Option<String>,
}

/// The JSON text a producer of `version` (1..=4) writes for `order`.
pub fn produce(version: u8, order: &Sample) -> Vec<u8> {
    let value = match version {
        1 => json!({"id": order.id, "customer": order.customer, "total_cents": order.total_cents}),
        2 => {
            let mut v = json!({"id": order.id, "customer": order.customer,
                "total_cents": order.total_cents, "currency": order.currency});
            if let Some(note) = &order.note {
                v["note"] = json!(note);
            }
            v
        }
        3 => {
            json!({"id": order.id, "customer_id": order.customer, "total_cents": order.total_cents,
            "currency": order.currency, "note": order.note, "channel": "web",
            "lines": [{"sku": "tea-1", "qty": 2}]})
        }
        4 => json!({"id": order.id, "customer_id": order.customer, "note": order.note,
            "total": {"amount": order.total_cents, "currency": order.currency}}),
        _ => panic!("producers are versions 1 to 4"),
    };
    serde_json::to_vec(&value).unwrap()
}

/// The v1 consumer (deployed long ago): tolerant of fields it does not know.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OrderV1 {
    pub id: u64,
    pub customer: String,
    pub total_cents: u64,
}

/// The v2 consumer: knows the currency (required) and the note.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OrderV2 {
    pub id: u64,
    pub customer: String,
    pub total_cents: u64,
    pub currency: String,
    #[serde(default)]
    pub note: Option<String>,
}

/// A v1 consumer written strictly: any field it does not know is an error.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrictOrderV1 {
    pub id: u64,
    pub customer: String,
    pub total_cents: u64,
}

pub fn read_v1(body: &[u8]) -> Result<OrderV1, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

pub fn read_v2(body: &[u8]) -> Result<OrderV2, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

pub fn read_v1_strict(body: &[u8]) -> Result<StrictOrderV1, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

/// A consumer in the lab's matrix: its name and whether it reads a payload (or why not).
pub type Consumer<'a> = (&'a str, &'a dyn Fn(&[u8]) -> Result<(), String>);

/// Serves each producer version's payload at `/v{n}/order` on localhost, fetches it with the
/// real client, and prints which consumer reads which producer; the last column is v3's payload
/// after `rewrite` (the learner's read, then write: what a v3 consumer writes back).
pub fn lab(consumers: &[Consumer<'_>], sample: &Sample, rewrite: &dyn Fn(&[u8]) -> Vec<u8>) {
    let payloads = sdlings_kit::lab::runtime().block_on(async {
        let mut router = axum::Router::new();
        for version in 1..=4u8 {
            let body: Value = serde_json::from_slice(&produce(version, sample)).unwrap();
            router = router.route(
                &format!("/v{version}/order"),
                axum::routing::get(move || async move { axum::Json(body) }),
            );
        }
        let server = Server::start(router).await;
        let mut client = server.client().await;
        let mut payloads = Vec::new();
        for version in 1..=4u8 {
            payloads.push(client.get(&format!("/v{version}/order"), &[]).await.body);
        }
        let v3 = payloads[2].clone();
        payloads.push(rewrite(&v3));
        payloads
    });
    let mut header = vec!["consumer".to_string()];
    header.extend((1..=4).map(|v| format!("producer v{v}")));
    header.push("v3, rewritten by yours".to_string());
    let mut table = sdlings_kit::lab::Table::new(&header);
    let mut errors = Vec::new();
    for (name, read) in consumers {
        let mut row = vec![name.to_string()];
        for (v, body) in payloads.iter().enumerate() {
            match read(body) {
                Ok(()) => row.push("reads".to_string()),
                Err(e) => {
                    row.push("ERROR".to_string());
                    let producer = if v < 4 {
                        format!("v{}", v + 1)
                    } else {
                        "your rewrite".into()
                    };
                    errors.push(format!("{name} on {producer}: {e}"));
                }
            }
        }
        table.row(&row);
    }
    table.print();
    println!();
    for e in errors {
        println!("  {e}");
    }
}
