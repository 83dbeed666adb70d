//! Topic 17, `conditional_requests`: a document store served over HTTP whose rules (ETags and
//! preconditions) are the learner's, and the lab's read-modify-write clients.
//!
//! | request | answer |
//! |---|---|
//! | `GET /docs/{id}` (`If-None-Match`) | the learner's [`Reply`] from `get` |
//! | `PUT /docs/{id}` (`If-Match`, `If-None-Match`) with a JSON body | the learner's [`Reply`] from `put` |
//! | `PUT /blind/{id}` with a JSON body | `200`: written unconditionally (the kit's; the lab's "before") |
//!
//! A [`Reply`] becomes the response: its status, an `ETag` header if it has one, its body as JSON.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use serde_json::Value;

use crate::client::{Client, Server};

/// A stored document and its version: the store counts every write, across all documents, so
/// a version is never reused (not even after the same body is written again).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub version: u64,
    pub body: Value,
}

/// The documents, by id.
#[derive(Debug, Default)]
pub struct Store {
    docs: HashMap<String, Stored>,
    writes: u64,
}

impl Store {
    pub fn get(&self, id: &str) -> Option<&Stored> {
        self.docs.get(id)
    }

    /// Writes `body` as the document `id`, with a fresh version; returns the stored document.
    pub fn write(&mut self, id: &str, body: Value) -> &Stored {
        self.writes += 1;
        let stored = Stored {
            version: self.writes,
            body,
        };
        self.docs.insert(id.to_string(), stored);
        &self.docs[id]
    }
}

/// What the service answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub etag: Option<String>,
    pub body: Option<Value>,
}

/// The learner's `GET`: the store, the id, the `If-None-Match` header.
pub type GetFn = fn(&Store, &str, Option<&str>) -> Reply;
/// The learner's `PUT`: the store, the id, `If-Match`, `If-None-Match`, the new body.
pub type PutFn = fn(&mut Store, &str, Option<&str>, Option<&str>, Value) -> Reply;

#[derive(Clone)]
struct AppState {
    store: Arc<Mutex<Store>>,
    get: GetFn,
    put: PutFn,
}

/// The service, with the learner's `get` and `put`.
pub fn router(get: GetFn, put_fn: PutFn) -> Router {
    let state = AppState {
        store: Arc::new(Mutex::new(Store::default())),
        get,
        put: put_fn,
    };
    Router::new()
        .route("/docs/{id}", put(put_doc).get(get_doc))
        .route("/blind/{id}", put(blind_put))
        .with_state(state)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).expect("a valid status code");
    let mut response = match reply.body {
        Some(body) => (status, Json(body)).into_response(),
        None => status.into_response(),
    };
    if let Some(etag) = reply.etag {
        let value = HeaderValue::from_str(&etag).expect("an ETag is a valid header value");
        response.headers_mut().insert("etag", value);
    }
    response
}

async fn get_doc(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let store = s.store.lock().unwrap();
    respond((s.get)(&store, &id, header(&headers, "if-none-match")))
}

async fn put_doc(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut store = s.store.lock().unwrap();
    let (if_match, if_none_match) = (
        header(&headers, "if-match"),
        header(&headers, "if-none-match"),
    );
    respond((s.put)(&mut store, &id, if_match, if_none_match, body))
}

async fn blind_put(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> StatusCode {
    s.store.lock().unwrap().write(&id, body);
    StatusCode::OK
}

/// `PUT path` with a JSON body and the given headers.
pub async fn put_json(
    client: &mut Client,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> crate::client::Response {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    client
        .call("PUT", path, &all, serde_json::to_vec(body).unwrap())
        .await
}

/// The lab's knobs.
pub struct LabSetup {
    pub clients: usize,
    pub increments: usize,
}

/// Clients increment one counter by read-modify-write, blindly and with `If-Match` (retrying on
/// `412`), and the table shows the updates lost.
pub fn lab(get: GetFn, put_fn: PutFn, setup: &LabSetup) {
    let rows = sdlings_kit::lab::runtime().block_on(async {
        let mut rows = Vec::new();
        for conditional in [false, true] {
            let server = Server::start(router(get, put_fn)).await;
            let mut first = server.client().await;
            let created = put_json(
                &mut first,
                "/docs/counter",
                &[("if-none-match", "*")],
                &serde_json::json!({"n": 0}),
            )
            .await;
            assert_eq!(
                created.status, 201,
                "PUT If-None-Match: * creates the counter"
            );
            let mut tasks = Vec::new();
            for _ in 0..setup.clients {
                let mut client = server.client().await;
                let increments = setup.increments;
                tasks.push(tokio::spawn(async move {
                    let mut conflicts = 0;
                    for _ in 0..increments {
                        loop {
                            let read = client.get("/docs/counter", &[]).await;
                            let n = read.json::<Value>()["n"].as_u64().unwrap();
                            let etag = read.header("etag").unwrap_or("").to_string();
                            let next = serde_json::json!({"n": n + 1});
                            tokio::task::yield_now().await;
                            if !conditional {
                                put_json(&mut client, "/blind/counter", &[], &next).await;
                                break;
                            }
                            let write = put_json(
                                &mut client,
                                "/docs/counter",
                                &[("if-match", &etag)],
                                &next,
                            )
                            .await;
                            match write.status {
                                200 => break,
                                412 => conflicts += 1,
                                other => panic!("PUT If-Match answered {other}: {}", write.text()),
                            }
                        }
                    }
                    conflicts
                }));
            }
            let mut conflicts = 0;
            for task in tasks {
                conflicts += task.await.unwrap();
            }
            let n = first.get("/docs/counter", &[]).await.json::<Value>()["n"]
                .as_u64()
                .unwrap();
            let total = (setup.clients * setup.increments) as u64;
            rows.push([
                if conditional {
                    "If-Match, retry on 412 (yours)"
                } else {
                    "blind PUT"
                }
                .to_string(),
                total.to_string(),
                n.to_string(),
                (total - n).to_string(),
                conflicts.to_string(),
            ]);
        }
        rows
    });
    println!(
        "{} clients, each adding 1 to a counter {} times\n",
        setup.clients, setup.increments
    );
    let mut table = sdlings_kit::lab::Table::new(&[
        "writes",
        "increments",
        "final value",
        "lost updates",
        "412s retried",
    ]);
    for row in &rows {
        table.row(row);
    }
    table.print();
}
