//! Topic 17, `cursor_pagination`: a collection of items served over HTTP, a table that changes
//! while clients page through it, and the lab that pages with offsets and with cursors.
//!
//! | request | answer |
//! |---|---|
//! | `GET /items?cursor=C&limit=N` | `200` and a [`Page`] from the learner's `list`, or `400` and its message |
//! | `GET /items_by_offset?offset=O&limit=N` | `200` and a [`Page`] by `OFFSET`/`LIMIT` (the kit's; no cursor) |
//! | `POST /items` with `{"created": K, "title": T}` | `201` and the new [`Item`] (ids count up from 1) |
//! | `DELETE /items/{id}` | `204`, or `404` if there is no such item |
//!
//! The table is kept as an index on `(created, id)`: the ordered index a database would use for
//! `ORDER BY created, id`.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::client::{Client, Server};

/// One row of the collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: u64,
    /// The sort key (a creation time, say): many items may share one.
    pub created: u64,
    pub title: String,
}

/// The table, as its index on `(created, id)`: iterating it lists items in page order.
pub type Index = BTreeMap<(u64, u64), Item>;

/// One page of the listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub items: Vec<Item>,
    /// Where the next page starts; `None` once this page reaches the end of the table.
    pub next_cursor: Option<String>,
}

/// A request the API refuses with `400 Bad Request`, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest(pub String);

/// The learner's listing: the table, the request's `cursor` and `limit` query parameters.
pub type ListFn = fn(&Index, Option<&str>, Option<usize>) -> Result<Page, BadRequest>;

#[derive(Deserialize)]
struct ListQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
struct OffsetQuery {
    offset: Option<usize>,
    limit: Option<usize>,
}

#[derive(Deserialize, Serialize)]
struct NewItem {
    created: u64,
    title: String,
}

#[derive(Default)]
struct Table {
    index: Index,
    next_id: u64,
}

#[derive(Clone)]
struct AppState {
    table: Arc<Mutex<Table>>,
    list: ListFn,
}

/// The service, with `list` answering `GET /items`.
pub fn router(list: ListFn) -> Router {
    let state = AppState {
        table: Arc::new(Mutex::new(Table::default())),
        list,
    };
    Router::new()
        .route("/items", get(list_items).post(create_item))
        .route("/items_by_offset", get(list_by_offset))
        .route("/items/{id}", delete(delete_item))
        .with_state(state)
}

async fn list_items(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    let table = state.table.lock().unwrap();
    match (state.list)(&table.index, q.cursor.as_deref(), q.limit) {
        Ok(page) => Json(page).into_response(),
        Err(BadRequest(why)) => (StatusCode::BAD_REQUEST, why).into_response(),
    }
}

/// `ORDER BY created, id OFFSET o LIMIT n`: what many APIs do, and what the lab compares with.
async fn list_by_offset(State(state): State<AppState>, Query(q): Query<OffsetQuery>) -> Response {
    let table = state.table.lock().unwrap();
    let (offset, limit) = (q.offset.unwrap_or(0), q.limit.unwrap_or(20));
    let items: Vec<Item> = table
        .index
        .values()
        .skip(offset)
        .take(limit)
        .cloned()
        .collect();
    let more = table.index.len() > offset + items.len();
    let next_cursor = more.then(|| (offset + items.len()).to_string());
    Json(Page { items, next_cursor }).into_response()
}

async fn create_item(State(state): State<AppState>, Json(new): Json<NewItem>) -> Response {
    let mut table = state.table.lock().unwrap();
    table.next_id += 1;
    let item = Item {
        id: table.next_id,
        created: new.created,
        title: new.title,
    };
    table.index.insert((item.created, item.id), item.clone());
    (StatusCode::CREATED, Json(item)).into_response()
}

async fn delete_item(State(state): State<AppState>, Path(id): Path<u64>) -> StatusCode {
    let mut table = state.table.lock().unwrap();
    let key = table.index.keys().find(|(_, i)| *i == id).copied();
    match key {
        Some(key) => {
            table.index.remove(&key);
            StatusCode::NO_CONTENT
        }
        None => StatusCode::NOT_FOUND,
    }
}

/// `POST /items`: inserts an item and returns it (with its id).
pub async fn insert(client: &mut Client, created: u64, title: &str) -> Item {
    let body = serde_json::to_vec(&NewItem {
        created,
        title: title.to_string(),
    })
    .unwrap();
    let response = client
        .call(
            "POST",
            "/items",
            &[("content-type", "application/json")],
            body,
        )
        .await;
    assert_eq!(response.status, 201, "POST /items: {}", response.text());
    response.json()
}

/// `DELETE /items/{id}`.
pub async fn remove(client: &mut Client, id: u64) {
    let response = client
        .call("DELETE", &format!("/items/{id}"), &[], Vec::new())
        .await;
    assert_eq!(
        response.status,
        204,
        "DELETE /items/{id}: {}",
        response.text()
    );
}

/// The lab's knobs.
pub struct LabSetup {
    pub items: usize,
    pub limit: usize,
    pub inserts_per_page: usize,
    pub deletes_per_page: usize,
    pub runs: u64,
}

#[derive(Default)]
struct Tally {
    pages: usize,
    seen: usize,
    repeated: usize,
    skipped: usize,
}

/// Pages through a table that changes between pages, by offset and by the learner's cursor, and
/// prints how many rows each way repeated and skipped.
pub fn lab(list: ListFn, setup: &LabSetup) {
    let runtime = sdlings_kit::lab::runtime();
    let (offset, cursor) = runtime.block_on(async {
        let mut offset = Tally::default();
        let mut cursor = Tally::default();
        for run in 0..setup.runs {
            walk(list, setup, run, false, &mut offset).await;
            walk(list, setup, run, true, &mut cursor).await;
        }
        (offset, cursor)
    });
    println!(
        "{} runs: {} items, pages of {}, {} inserts and {} deletes between pages\n",
        setup.runs, setup.items, setup.limit, setup.inserts_per_page, setup.deletes_per_page
    );
    let mut table = sdlings_kit::lab::Table::new(&[
        "paging",
        "pages",
        "rows returned",
        "repeated",
        "skipped (present all along)",
    ]);
    for (name, t) in [("offset", offset), ("cursor (yours)", cursor)] {
        table.row(&[
            name.to_string(),
            t.pages.to_string(),
            t.seen.to_string(),
            t.repeated.to_string(),
            t.skipped.to_string(),
        ]);
    }
    table.print();
}

async fn walk(list: ListFn, setup: &LabSetup, run: u64, by_cursor: bool, tally: &mut Tally) {
    let server = Server::start(router(list)).await;
    let mut client = server.client().await;
    let mut rng = StdRng::seed_from_u64(run);
    let span = (setup.items as u64).max(1) * 4;
    let mut alive = Vec::new();
    for i in 0..setup.items {
        alive.push(
            insert(&mut client, rng.random_range(0..span), &format!("item {i}"))
                .await
                .id,
        );
    }
    // Rows present from the first page to the last: each must be returned exactly once.
    let mut deleted = HashSet::new();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut next: Option<String> = None;
    let mut offset = 0;
    loop {
        let path = match (by_cursor, &next) {
            (true, None) => format!("/items?limit={}", setup.limit),
            (true, Some(c)) => format!("/items?limit={}&cursor={c}", setup.limit),
            (false, _) => format!("/items_by_offset?limit={}&offset={offset}", setup.limit),
        };
        let response = client.get(&path, &[]).await;
        assert_eq!(response.status, 200, "GET {path}: {}", response.text());
        let page: Page = response.json();
        tally.pages += 1;
        for item in &page.items {
            tally.seen += 1;
            if !seen.insert(item.id) {
                tally.repeated += 1;
            }
        }
        offset += page.items.len();
        next = page.next_cursor;
        if next.is_none() {
            break;
        }
        for _ in 0..setup.inserts_per_page {
            insert(&mut client, rng.random_range(0..span), "new").await;
        }
        for _ in 0..setup.deletes_per_page.min(alive.len()) {
            let id = alive.swap_remove(rng.random_range(0..alive.len()));
            remove(&mut client, id).await;
            deleted.insert(id);
        }
    }
    tally.skipped += alive.iter().filter(|id| !seen.contains(id)).count();
}

/// `GET /items?limit=N[&cursor=C]`; panics unless the answer is `200` and a page.
pub async fn fetch(client: &mut Client, cursor: Option<&str>, limit: usize) -> Page {
    let path = match cursor {
        None => format!("/items?limit={limit}"),
        Some(c) => format!("/items?limit={limit}&cursor={c}"),
    };
    let response = client.get(&path, &[]).await;
    assert_eq!(response.status, 200, "GET {path}: {}", response.text());
    response.json()
}

/// Follows `next_cursor` from the first page to the last: the ids in order, and the pages.
pub async fn follow(client: &mut Client, limit: usize) -> (Vec<u64>, usize) {
    let (mut ids, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let page = fetch(client, cursor.as_deref(), limit).await;
        pages += 1;
        ids.extend(page.items.iter().map(|i| i.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return (ids, pages),
        }
        assert!(pages < 1000, "next_cursor never ends: {ids:?}");
    }
}
