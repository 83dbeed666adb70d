// Redirect API — create short links safely under retries, and redirect every click.
//
// A phone on a bad network sends `POST /links`, the link is created, the answer is lost, and
// the app retries: without care the user now has two links. Clients send an `Idempotency-Key`
// header (Stripe's API does; an IETF draft standardises it): the same key with the same body
// must return the same link, created once, even when the retries arrive together; the same key
// with a different body is a client bug, refused with 422. `GET /{code}` redirects with 302
// Found and a `Location`: a 301 would be cached by browsers, whose next clicks never reach us,
// and analytics must see every click. Unknown code: 404. A URL that is not absolute http(s)
// with a host, or has whitespace, or is over 2,048 bytes: 400.
//
// Build the handlers of the router below (and `valid_url`); the tests talk to it over real
// HTTP. Lab: RATE redirects per second, open loop, over real sockets: p50/p99 and clicks.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
#[allow(unused_imports)] // yours to use
use axum::http::{HeaderMap, StatusCode, header};
#[allow(unused_imports)]
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sdlings_kit_shortener::links::LinkStore;
use serde::Deserialize;
use serde_json::json;

/// The body of `POST /links`.
#[derive(Debug, Deserialize)]
pub struct CreateLink {
    pub url: String,
}

/// What an idempotency key is remembered with: the request's URL and the link it created.
#[derive(Debug, Clone)]
pub struct Saved {
    pub url: String,
    pub code: String,
}

#[derive(Debug, Clone, Default)]
pub struct Shortener {
    pub links: Arc<LinkStore>,
    pub keys: Arc<tokio::sync::Mutex<HashMap<String, Saved>>>,
}

/// `POST /links` → 201 `{"code", "url"}`; `GET /links/{code}` → 200 `{"code", "url", "clicks"}`;
/// `GET /{code}` → 302 to the URL.
pub fn app(state: Shortener) -> Router {
    Router::new()
        .route("/links", post(create))
        .route("/links/{code}", get(stats))
        .route("/{code}", get(follow))
        .with_state(state)
}

// ---- Your part -------------------------------------------------------------------------------

/// Absolute `http://` or `https://` (lowercase) with a non-empty host, no whitespace or control
/// characters anywhere, at most 2,048 bytes.
pub fn valid_url(url: &str) -> bool {
    todo!("decide whether {url:?} is an absolute http(s) URL with a host")
}

/// `POST /links`: 400 for an invalid URL; 201 `{"code", "url"}` for a new link (`app.links
/// .create`); with an `Idempotency-Key` header, the same answer for the same key and URL (one
/// link, even for retries arriving together), 422 for the same key with another URL.
async fn create(
    State(app): State<Shortener>,
    headers: HeaderMap,
    Json(body): Json<CreateLink>,
) -> Response {
    todo!("create the link of {body:?} ({headers:?}, {app:?})")
}

/// `GET /{code}`: 302 Found with `Location: url`, counting the click; 404 if unknown.
async fn follow(State(app): State<Shortener>, Path(code): Path<String>) -> Response {
    todo!("redirect {code} ({app:?})")
}

/// `GET /links/{code}`: 200 `{"code", "url", "clicks"}`; 404 if unknown.
async fn stats(State(app): State<Shortener>, Path(code): Path<String>) -> Response {
    todo!("the stats of {code} ({app:?}); e.g. `Json(json!({{...}})).into_response()`")
}

// ---- Lab -------------------------------------------------------------------------------------

const LINKS: usize = 200;
/// Redirects per second, sent on a schedule whatever the server does (open loop).
const RATE: f64 = 1_000.0;
const SECONDS: f64 = 1.0;

fn main() {
    use sdlings_kit::lab::{Table, latency, runtime};
    use sdlings_kit::workload::ZipfKeys;
    use sdlings_kit_shortener::{http, load};

    runtime().block_on(async {
        let state = Shortener::default();
        let server = http::Server::start(app(state.clone()))
            .await
            .expect("a server");
        let addr = server.addr();
        let mut codes = Vec::new();
        for i in 0..LINKS {
            let body = json!({"url": format!("https://example.com/page/{i}")});
            let key = format!("create-{i}");
            // Every create is sent twice, as a client whose first answer was lost would.
            let mut answers = Vec::new();
            for _ in 0..2 {
                let r = http::post_json(addr, "/links", &[("Idempotency-Key", &key)], &body).await;
                answers.push(r.expect("an answer").json()["code"].clone());
            }
            assert_eq!(answers[0], answers[1], "a retry returns the same link");
            codes.push(answers[0].as_str().expect("a code").to_string());
        }
        let mut zipf = ZipfKeys::new(LINKS, 1.0, 7);
        let duration = std::time::Duration::from_secs_f64(SECONDS);
        let report = load::open_loop(RATE, duration, |_| {
            let path = format!("/{}", codes[zipf.next_key() as usize]);
            async move { matches!(http::get(addr, &path).await, Ok(r) if r.status == 302) }
        })
        .await;
        let mut table = Table::new(&["figure", "value"]);
        table
            .row(&[
                "links created (each POST sent twice)",
                &state.links.len().to_string(),
            ])
            .row(&["redirects sent (open loop)", &report.sent().to_string()])
            .row(&["not a 302", &report.errors.to_string()])
            .row(&["clicks counted", &state.links.total_clicks().to_string()])
            .row(&["p50 from the scheduled time", &latency(report.p50())])
            .row(&["p99 from the scheduled time", &latency(report.p99())]);
        table.print();
    });
}

#[cfg(test)]
mod tests {
    use sdlings_kit_shortener::http::{self, Server};
    use serde_json::Value;

    use super::*;

    async fn start() -> (Shortener, Server) {
        let state = Shortener::default();
        let server = Server::start(app(state.clone())).await.expect("a server");
        (state, server)
    }

    async fn post(server: &Server, key: Option<&str>, url: &str) -> http::Response {
        let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
        http::post_json(server.addr(), "/links", &headers, &json!({ "url": url }))
            .await
            .expect("an answer")
    }

    async fn get(server: &Server, path: &str) -> http::Response {
        http::get(server.addr(), path).await.expect("an answer")
    }

    fn code_of(r: &http::Response) -> String {
        assert_eq!(r.status, 201, "a link is created with 201 Created: {r:?}");
        match &r.json()["code"] {
            Value::String(code) if !code.is_empty() => code.clone(),
            other => panic!("the body of 201 is {{\"code\": ..., \"url\": ...}}, got {other}"),
        }
    }

    #[tokio::test]
    async fn a_created_link_redirects_with_302_found_to_its_url() {
        let (_, server) = start().await;
        let url = "https://example.com/a/long/path?q=1";
        let r = post(&server, None, url).await;
        let code = code_of(&r);
        assert_eq!(r.json()["url"], url, "the 201 body echoes the url");
        let r = get(&server, &format!("/{code}")).await;
        assert_eq!(
            r.status, 302,
            "302 Found, not 301/308 (permanent: the browser caches it and later clicks never \
             reach us) nor 303/307"
        );
        assert_eq!(
            r.header("location"),
            Some(url),
            "the Location header holds the url"
        );
    }

    #[tokio::test]
    async fn an_unknown_code_is_404_and_counts_no_click() {
        let (state, server) = start().await;
        let code = code_of(&post(&server, None, "https://example.com").await);
        assert_eq!(get(&server, "/nosuchcode").await.status, 404);
        assert_eq!(get(&server, "/links/nosuchcode").await.status, 404);
        assert_eq!(
            state.links.clicks(&code),
            Some(0),
            "nobody clicked the real link"
        );
    }

    #[tokio::test]
    async fn every_click_is_counted_and_viewing_stats_is_not_a_click() {
        let (state, server) = start().await;
        let code = code_of(&post(&server, None, "https://example.com/x").await);
        let other = code_of(&post(&server, None, "https://example.com/y").await);
        for _ in 0..5 {
            assert_eq!(get(&server, &format!("/{code}")).await.status, 302);
        }
        let mut clicks = tokio::task::JoinSet::new();
        for _ in 0..30 {
            let (addr, path) = (server.addr(), format!("/{code}"));
            clicks.spawn(async move { http::get(addr, &path).await.unwrap().status });
        }
        while let Some(status) = clicks.join_next().await {
            assert_eq!(status.unwrap(), 302);
        }
        for _ in 0..2 {
            let r = get(&server, &format!("/links/{code}")).await;
            assert_eq!(r.status, 200);
            let expected = json!({"code": code, "url": "https://example.com/x", "clicks": 35});
            assert_eq!(
                r.json(),
                expected,
                "35 redirects, 35 clicks; viewing stats is no click"
            );
        }
        assert_eq!(state.links.clicks(&other), Some(0), "clicks count per link");
    }

    #[tokio::test]
    async fn urls_that_are_not_absolute_http_with_a_host_are_refused_with_400() {
        let (state, server) = start().await;
        let long = format!("https://example.com/{}", "a".repeat(2_030));
        let wide = format!("https://example.com/{}", "é".repeat(1_100)); // 1,120 chars, 2,220 bytes
        let bad = [
            "",
            "example.com",
            "www.example.com/page",
            "ftp://example.com/file",
            "javascript:alert(1)",
            "https://",
            "http:///path",
            "http://?q=1",
            "http://#frag",
            "http:/example.com",
            "httpx://example.com",
            "https://exa mple.com",
            "https://example.com/a b",
            "https://example.com/\n",
            "https://example.com/\t",
            "https://example.com/\u{7}",
            "https://example.com/\u{7f}",
            " https://example.com",
            &long,
            &wide,
        ];
        for url in bad {
            let r = post(&server, None, url).await;
            assert_eq!(
                r.status, 400,
                "{url:?} is not an absolute http(s) URL with a host"
            );
        }
        assert_eq!(state.links.len(), 0, "a refused request creates nothing");
        assert!(valid_url(&long[..2_048]), "2,048 bytes is still allowed");
    }

    #[tokio::test]
    async fn urls_of_every_reasonable_shape_are_accepted() {
        let (_, server) = start().await;
        for url in [
            "http://a",
            "https://example.com",
            "http://localhost:8080/x?y=z#frag",
            "https://example.com/caf%C3%A9",
            "https://example.com/café",
            "https://example.com/?q=a+b&r=%20",
        ] {
            code_of(&post(&server, None, url).await);
        }
    }

    #[tokio::test]
    async fn the_same_key_and_body_return_the_same_link_created_once() {
        let (state, server) = start().await;
        let first = post(&server, Some("k-1"), "https://example.com/once").await;
        let again = post(&server, Some("k-1"), "https://example.com/once").await;
        assert_eq!(
            code_of(&first),
            code_of(&again),
            "a retry gets the link the first made"
        );
        assert_eq!(
            again.json(),
            first.json(),
            "a replay answers exactly as the first time"
        );
        assert_eq!(
            state.links.len(),
            1,
            "one link for two requests with one key"
        );
    }

    #[tokio::test]
    async fn the_same_key_with_another_body_is_refused_with_422_and_changes_nothing() {
        let (state, server) = start().await;
        let code = code_of(&post(&server, Some("k-1"), "https://example.com/a").await);
        let r = post(&server, Some("k-1"), "https://example.com/b").await;
        assert_eq!(
            r.status, 422,
            "a key reused for another request is a client bug: 422"
        );
        assert_eq!(state.links.len(), 1, "the misused key created nothing");
        let r = post(&server, Some("k-1"), "https://example.com/a").await;
        assert_eq!(code_of(&r), code, "the key still replays its first request");
        let r = get(&server, &format!("/{code}")).await;
        assert_eq!(r.header("location"), Some("https://example.com/a"));
    }

    #[tokio::test]
    async fn other_keys_or_no_key_make_new_links_even_for_the_same_url() {
        let (state, server) = start().await;
        let url = "https://example.com/same";
        let codes = [
            code_of(&post(&server, Some("k-1"), url).await),
            code_of(&post(&server, Some("k-2"), url).await),
            code_of(&post(&server, None, url).await),
            code_of(&post(&server, None, url).await),
        ];
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(
            distinct.len(),
            4,
            "the key, not the url, identifies a request: {codes:?}"
        );
        assert_eq!(state.links.len(), 4);
    }

    #[tokio::test]
    async fn a_refused_request_does_not_use_up_its_key() {
        let (state, server) = start().await;
        assert_eq!(post(&server, Some("k-9"), "not a url").await.status, 400);
        let r = post(&server, Some("k-9"), "https://example.com/fixed").await;
        code_of(&r);
        assert_eq!(state.links.len(), 1);
    }

    #[tokio::test]
    async fn retries_with_one_key_arriving_together_create_one_link() {
        let (state, server) = start().await;
        let mut retries = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let addr = server.addr();
            retries.spawn(async move {
                let body = json!({"url": "https://example.com/burst"});
                http::post_json(addr, "/links", &[("Idempotency-Key", "k-b")], &body).await
            });
        }
        let mut codes = std::collections::HashSet::new();
        while let Some(r) = retries.join_next().await {
            let r = r.unwrap().unwrap();
            match r.status {
                201 => codes.insert(code_of(&r)),
                409 => true, // "still in progress, retry later" is allowed too
                other => panic!("a retry gets the same link (201) or 409, not {other}"),
            };
        }
        assert_eq!(codes.len(), 1, "every 201 names the same link: {codes:?}");
        assert_eq!(
            state.links.len(),
            1,
            "20 retries of one request create one link, even when they arrive together (a \
             check of the key and a create that do not happen as one step let them all in)"
        );
    }
}
