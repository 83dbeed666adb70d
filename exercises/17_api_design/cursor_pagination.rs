// Cursor pagination — pages that stay correct while the table changes under the reader.
//
// `GET /items?limit=20&offset=40` is `OFFSET 40`: the database walks past 40 rows to return 20,
// and if a row is inserted before row 40 between two requests, the client sees the 40th row
// twice; if one is deleted, it never sees the 41st. Slack, Stripe and GitHub's GraphQL API page
// with an opaque cursor instead: the position of the last row returned, `(sort key, id)`, so the
// next page is an index seek `WHERE (created, id) > (k, i) ORDER BY created, id LIMIT n`.
//
// Build `list`, the handler of `GET /items?cursor=C&limit=N` (the kit serves it on localhost),
// and its cursor. The property: a client that follows `next_cursor` sees every row that exists
// all along exactly once, in `(created, id)` order, whatever is inserted or deleted between its
// requests; ties on `created` are broken by id; `next_cursor` is null only on the last page; a
// cursor the server did not issue (garbage, edited, truncated) and a limit outside
// 1..=MAX_LIMIT get 400. Lab: offset against cursor paging; raise DELETES_PER_PAGE.

// At hand: `base64` (URL_SAFE_NO_PAD), `hmac` and `sha2` (an HMAC-SHA256 tag), BTreeMap::range.
use sdlings_kit_http::pagination::{self, BadRequest, Index, LabSetup, Page};

// ---- Your part -------------------------------------------------------------------------------

/// The page size when the request gives none, and the largest one allowed.
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

/// The server's secret for cursors: a client must not be able to forge or edit one.
#[allow(dead_code)] // (only silences "never used" until you use it: delete it)
const CURSOR_KEY: &[u8] = b"sdlings cursor key: keep it on the server";

/// The opaque cursor for "after the row `(created, id)`": URL-safe, and unforgeable.
pub fn encode_cursor(created: u64, id: u64) -> String {
    todo!("an opaque, URL-safe cursor for the position ({created}, {id})")
}

/// The position `(created, id)` in a cursor this server issued; `None` for anything else.
pub fn decode_cursor(cursor: &str) -> Option<(u64, u64)> {
    todo!("the position in {cursor:?}, if this server issued it")
}

/// `GET /items?cursor=C&limit=N`: the first `limit` rows after the cursor's position (from the
/// start without one), and the cursor of the next page, or `None` if this page reaches the end.
/// `index` is the table's index on `(created, id)`.
pub fn list(index: &Index, cursor: Option<&str>, limit: Option<usize>) -> Result<Page, BadRequest> {
    todo!(
        "page {} rows of {} after cursor {cursor:?}",
        limit.unwrap_or(DEFAULT_LIMIT),
        index.len()
    )
}

// ---- Lab -------------------------------------------------------------------------------------

const ITEMS: usize = 300;
const LIMIT: usize = 20;
const INSERTS_PER_PAGE: usize = 5;
const DELETES_PER_PAGE: usize = 3;
const RUNS: u64 = 10;

fn main() {
    let setup = LabSetup {
        items: ITEMS,
        limit: LIMIT,
        inserts_per_page: INSERTS_PER_PAGE,
        deletes_per_page: DELETES_PER_PAGE,
        runs: RUNS,
    };
    pagination::lab(list, &setup);
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use std::ops::Bound::{Excluded, Unbounded};

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rand::RngExt;
    use sdlings_kit_http::client::{Client, Server};
    use sdlings_kit_http::pagination::{Item, fetch, follow, insert, remove, router};

    use super::*;

    async fn status(client: &mut Client, query: &str) -> u16 {
        client.get(&format!("/items?{query}"), &[]).await.status
    }

    #[tokio::test]
    async fn following_next_cursor_lists_every_row_once_in_created_then_id_order() {
        let server = Server::start(router(list)).await;
        let mut client = server.client().await;
        let mut expected = BTreeMap::new();
        for (i, created) in [50, 10, 30, 10, 70, 30, 20, 90, 60, 40]
            .into_iter()
            .enumerate()
        {
            let item = insert(&mut client, created, &format!("t{i}")).await;
            expected.insert((created, item.id), item.id);
        }
        let expected: Vec<u64> = expected.into_values().collect();
        for limit in [1, 3, 4, 9, 10, 11] {
            let (ids, pages) = follow(&mut client, limit).await;
            assert_eq!(
                ids, expected,
                "pages of {limit}: every row once, by (created, id)"
            );
            assert_eq!(
                pages,
                10usize.div_ceil(limit),
                "pages of {limit} over 10 rows"
            );
        }
    }

    #[tokio::test]
    async fn an_empty_table_gives_one_empty_page_without_a_next_cursor() {
        let server = Server::start(router(list)).await;
        let page = fetch(&mut server.client().await, None, 5).await;
        assert_eq!(
            page,
            Page {
                items: vec![],
                next_cursor: None
            }
        );
    }

    #[tokio::test]
    async fn a_page_that_reaches_the_last_row_has_no_next_cursor() {
        let server = Server::start(router(list)).await;
        let mut client = server.client().await;
        for created in [1, 2, 3] {
            insert(&mut client, created, "x").await;
        }
        let page = fetch(&mut client, None, 3).await;
        assert_eq!(page.items.len(), 3);
        assert_eq!(
            page.next_cursor, None,
            "these 3 rows are the whole table: a next cursor would make the client fetch an \
             empty page"
        );
        let page = fetch(&mut client, None, 2).await;
        assert!(
            page.next_cursor.is_some(),
            "one row remains after a page of 2"
        );
    }

    #[tokio::test]
    async fn rows_sharing_a_sort_key_are_neither_skipped_nor_repeated() {
        let server = Server::start(router(list)).await;
        let mut client = server.client().await;
        let mut ids = Vec::new();
        for _ in 0..7 {
            ids.push(insert(&mut client, 5, "same time").await.id);
        }
        insert(&mut client, 4, "before").await;
        insert(&mut client, 6, "after").await;
        let (seen, _) = follow(&mut client, 2).await;
        assert_eq!(
            seen[1..8],
            ids[..],
            "7 rows share created = 5: the cursor must carry the id too, or a page boundary \
             inside the tie skips or repeats rows; seen {seen:?}"
        );
    }

    #[tokio::test]
    async fn rows_inserted_or_deleted_before_the_cursor_do_not_shift_the_next_page() {
        let server = Server::start(router(list)).await;
        let mut client = server.client().await;
        for created in 1..=6 {
            insert(&mut client, created * 10, "x").await;
        }
        let first = fetch(&mut client, None, 3).await;
        let last = first.items.last().unwrap().clone();
        insert(&mut client, 5, "new, before everything").await;
        remove(&mut client, first.items[0].id).await;
        remove(&mut client, last.id).await;
        let second = fetch(&mut client, first.next_cursor.as_deref(), 3).await;
        let created: Vec<u64> = second.items.iter().map(|i| i.created).collect();
        assert_eq!(
            created,
            [40, 50, 60],
            "page 2 starts after (30, id): rows inserted or deleted before it (the row the \
             cursor points at included) change nothing"
        );
    }

    #[test]
    fn a_cursor_decodes_to_the_position_it_encodes() {
        sdlings_kit::property::for_seeds(200, |rng| {
            let created = [0, u64::MAX, rng.random()][rng.random_range(0..3)];
            let id = [0, u64::MAX, rng.random()][rng.random_range(0..3)];
            let cursor = encode_cursor(created, id);
            assert_eq!(
                decode_cursor(&cursor),
                Some((created, id)),
                "cursor {cursor:?}"
            );
            assert!(
                cursor
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "a cursor goes in a URL as is: {cursor:?}"
            );
        });
    }

    #[tokio::test]
    async fn the_limit_defaults_to_20_and_must_be_between_1_and_the_maximum() {
        let server = Server::start(router(list)).await;
        let mut client = server.client().await;
        for created in 0..130 {
            insert(&mut client, created, "x").await;
        }
        let page: Page = client.get("/items", &[]).await.json();
        assert_eq!(
            page.items.len(),
            DEFAULT_LIMIT,
            "no limit given: DEFAULT_LIMIT rows"
        );
        assert_eq!(
            fetch(&mut client, None, MAX_LIMIT).await.items.len(),
            MAX_LIMIT
        );
        assert_eq!(fetch(&mut client, None, 1).await.items.len(), 1);
        for bad in [
            "limit=0",
            "limit=101",
            "limit=100000",
            "limit=-1",
            "limit=ten",
        ] {
            assert_eq!(
                status(&mut client, bad).await,
                400,
                "?{bad}: a page must hold 1..={MAX_LIMIT} rows; anything else is the client's \
                 error (400), not silently a different size"
            );
        }
    }

    #[tokio::test]
    async fn a_cursor_the_server_did_not_issue_gets_400() {
        let server = Server::start(router(list)).await;
        let mut client = server.client().await;
        for created in 0..5 {
            insert(&mut client, created, "x").await;
        }
        let good = fetch(&mut client, None, 2).await.next_cursor.unwrap();
        let forged = URL_SAFE_NO_PAD.encode([0u8; 16]);
        let mut bad = vec![
            String::new(),
            "garbage".into(),
            "!!!".into(),
            "MTIzOjQ1Ng".into(),
            forged,
            good[..good.len() - 1].to_string(),
            format!("{good}AA"),
        ];
        // The issued bytes cut short or with bytes appended, each validly re-encoded.
        let issued = URL_SAFE_NO_PAD.decode(&good).unwrap();
        for len in 0..issued.len() {
            bad.push(URL_SAFE_NO_PAD.encode(&issued[..len]));
        }
        for extra in [&[0u8][..], &[0, 0], b"xyz"] {
            bad.push(URL_SAFE_NO_PAD.encode([&issued[..], extra].concat()));
        }
        for (i, c) in good.char_indices() {
            let other = if c == 'A' { 'B' } else { 'A' };
            bad.push(format!("{}{other}{}", &good[..i], &good[i + 1..]));
        }
        for cursor in bad {
            assert_eq!(
                status(&mut client, &format!("cursor={cursor}&limit=2")).await,
                400,
                "cursor {cursor:?} is not one the server issued ({good:?} is): it must be \
                 refused with 400, not read as a position or as the first page"
            );
        }
    }

    #[test]
    fn no_row_is_skipped_or_repeated_while_rows_are_inserted_and_deleted_between_pages() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        sdlings_kit::property::for_seeds(40, |rng| {
            runtime.block_on(async {
                let server = Server::start(router(list)).await;
                let mut client = server.client().await;
                let span = rng.random_range(1..30u64);
                // The model: the same table, and the position of the last row returned.
                let mut model: BTreeMap<(u64, u64), u64> = BTreeMap::new();
                for _ in 0..rng.random_range(0..40) {
                    let item = insert(&mut client, rng.random_range(0..span), "x").await;
                    model.insert((item.created, item.id), item.id);
                }
                let always: BTreeSet<u64> = model.values().copied().collect();
                let mut deleted = BTreeSet::new();
                let (mut cursor, mut after, mut seen) = (None::<String>, None, Vec::new());
                loop {
                    let limit = rng.random_range(1..8);
                    let page = fetch(&mut client, cursor.as_deref(), limit).await;
                    let rest: Vec<(&(u64, u64), &u64)> = match after {
                        None => model.iter().collect(),
                        Some(p) => model.range((Excluded(p), Unbounded)).collect(),
                    };
                    let expected: Vec<u64> = rest.iter().take(limit).map(|(_, id)| **id).collect();
                    let got: Vec<u64> = page.items.iter().map(|i: &Item| i.id).collect();
                    assert_eq!(
                        got, expected,
                        "page of {limit} after position {after:?}: the next rows by (created, \
                         id) in the table as it is now"
                    );
                    assert_eq!(
                        page.next_cursor.is_some(),
                        rest.len() > limit,
                        "next_cursor"
                    );
                    seen.extend(got);
                    let Some(next) = page.next_cursor else { break };
                    let last = page.items.last().unwrap();
                    (cursor, after) = (Some(next), Some((last.created, last.id)));
                    for _ in 0..rng.random_range(0..4) {
                        let item = insert(&mut client, rng.random_range(0..span), "x").await;
                        model.insert((item.created, item.id), item.id);
                    }
                    for _ in 0..rng.random_range(0..3) {
                        if let Some((&key, &id)) =
                            model.iter().nth(rng.random_range(0..model.len().max(1)))
                        {
                            remove(&mut client, id).await;
                            model.remove(&key);
                            deleted.insert(id);
                        }
                    }
                }
                let unique: BTreeSet<u64> = seen.iter().copied().collect();
                assert_eq!(
                    unique.len(),
                    seen.len(),
                    "a row was returned twice: {seen:?}"
                );
                for id in always.difference(&deleted) {
                    assert!(
                        unique.contains(id),
                        "row {id} existed all along but was skipped"
                    );
                }
            })
        });
    }
}
