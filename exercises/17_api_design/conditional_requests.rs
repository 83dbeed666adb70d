// Conditional requests — ETags and preconditions, so that no client overwrites what it never saw.
//
// Two clients edit the same document: both GET it, both change their copy, both PUT. Without a
// precondition the second PUT silently erases the first one's change: a lost update. HTTP's fix
// (RFC 9110 §13) is optimistic concurrency: every representation carries an ETag, and a write
// says `If-Match: <the ETag I read>`; if the document changed since, the server answers
// 412 Precondition Failed and changes nothing, and the client reads again. The same validators
// save bandwidth: `If-None-Match: <ETag>` on a GET gets 304 Not Modified without the body.
// Kubernetes' resourceVersion, S3's conditional writes and the Azure/GCS APIs all work this way.
//
// Build `etag`, `get` and `put` (the kit serves them on localhost). The property: an ETag names
// one version; a PUT is applied only if its If-Match lists the current ETag (strong comparison,
// or `*` for any existing document), else 412 and nothing changes; `If-None-Match: *` creates
// only what does not exist; a PUT with neither header gets 428; a GET whose If-None-Match lists
// the current ETag (weak comparison, or `*`) gets 304. Of any clients racing on one version,
// exactly one wins. Lab: blind and conditional read-modify-write; raise CLIENTS.

use sdlings_kit_http::conditional::{self, LabSetup, Reply, Store, Stored};
use serde_json::Value;

// ---- Your part -------------------------------------------------------------------------------

/// The document's ETag: a quoted string (`"..."`) naming this version and no other.
pub fn etag(doc: &Stored) -> String {
    todo!("an ETag for version {} of a document", doc.version)
}

/// `GET /docs/{id}`: 404 if absent; 304 (with the ETag, without the body) if `If-None-Match`
/// matches; else 200 with the ETag and the body.
pub fn get(store: &Store, id: &str, if_none_match: Option<&str>) -> Reply {
    todo!("GET {id} (If-None-Match: {if_none_match:?}) from {store:?}")
}

/// `PUT /docs/{id}`: 428 without a precondition; 412 (changing nothing) if `If-Match` does not
/// list the current ETag, or `If-None-Match` does; else the write, answered 200 (201 if it
/// created the document) with the new ETag and the body.
pub fn put(
    store: &mut Store,
    id: &str,
    if_match: Option<&str>,
    if_none_match: Option<&str>,
    body: Value,
) -> Reply {
    todo!(
        "PUT {id} = {body} (If-Match: {if_match:?}, If-None-Match: {if_none_match:?}) into {store:?}"
    )
}

// ---- Lab -------------------------------------------------------------------------------------

const CLIENTS: usize = 4;
const INCREMENTS: usize = 50;

fn main() {
    conditional::lab(
        get,
        put,
        &LabSetup {
            clients: CLIENTS,
            increments: INCREMENTS,
        },
    );
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit_http::client::{Client, Response, Server};
    use sdlings_kit_http::conditional::{put_json, router};
    use serde_json::json;

    use super::*;

    async fn start() -> (Server, Client) {
        let server = Server::start(router(get, put)).await;
        let client = server.client().await;
        (server, client)
    }

    async fn create(client: &mut Client, id: &str, body: Value) -> String {
        let r = put_json(
            client,
            &format!("/docs/{id}"),
            &[("if-none-match", "*")],
            &body,
        )
        .await;
        assert_eq!(
            r.status, 201,
            "PUT If-None-Match: * on a new document creates it"
        );
        r.header("etag")
            .expect("a created document has an ETag")
            .to_string()
    }

    async fn read(client: &mut Client, id: &str) -> (String, Value) {
        let r = client.get(&format!("/docs/{id}"), &[]).await;
        assert_eq!(r.status, 200, "GET /docs/{id}: {}", r.text());
        (
            r.header("etag")
                .expect("GET answers with an ETag")
                .to_string(),
            r.json(),
        )
    }

    async fn put_if(client: &mut Client, id: &str, if_match: &str, body: Value) -> Response {
        put_json(
            client,
            &format!("/docs/{id}"),
            &[("if-match", if_match)],
            &body,
        )
        .await
    }

    #[tokio::test]
    async fn get_returns_the_body_with_a_quoted_etag_that_stays_put_until_a_write() {
        let (_server, mut client) = start().await;
        assert_eq!(
            client.get("/docs/a", &[]).await.status,
            404,
            "no such document"
        );
        let created = create(&mut client, "a", json!({"n": 1})).await;
        let (tag, body) = read(&mut client, "a").await;
        assert_eq!(body, json!({"n": 1}));
        assert_eq!(
            tag, created,
            "the ETag of the PUT's answer is the one GET shows"
        );
        assert!(
            tag.len() > 2 && tag.starts_with('"') && tag.ends_with('"'),
            "an ETag is quoted: {tag}"
        );
        assert_eq!(
            read(&mut client, "a").await.0,
            tag,
            "nothing changed, so neither did the ETag"
        );
    }

    #[tokio::test]
    async fn a_put_with_the_current_etag_applies_and_changes_the_etag() {
        let (_server, mut client) = start().await;
        let first = create(&mut client, "a", json!({"n": 1})).await;
        let r = put_if(&mut client, "a", &first, json!({"n": 2})).await;
        assert_eq!(
            r.status,
            200,
            "If-Match names the current version: {}",
            r.text()
        );
        let second = r
            .header("etag")
            .expect("the answer carries the new ETag")
            .to_string();
        assert_ne!(
            second, first,
            "a new version needs a new ETag, or a stale client would still match"
        );
        assert_eq!(
            read(&mut client, "a").await,
            (second.clone(), json!({"n": 2}))
        );
        let r = put_if(&mut client, "a", &second, json!({"n": 2})).await;
        assert_eq!(r.status, 200);
        assert_ne!(
            r.header("etag").unwrap(),
            second,
            "every write is a new version"
        );
    }

    #[tokio::test]
    async fn a_put_with_a_stale_etag_gets_412_and_changes_nothing() {
        let (_server, mut client) = start().await;
        let old = create(&mut client, "a", json!({"n": 1})).await;
        let r = put_if(&mut client, "a", &old, json!({"n": 2})).await;
        let current = r.header("etag").unwrap().to_string();
        let stale = put_if(&mut client, "a", &old, json!({"n": 99})).await;
        assert_eq!(
            stale.status, 412,
            "If-Match {old} names a version that was overwritten"
        );
        assert_eq!(
            read(&mut client, "a").await,
            (current, json!({"n": 2})),
            "a refused write must leave the document and its ETag as they were"
        );
    }

    #[tokio::test]
    async fn if_match_uses_strong_comparison_takes_a_list_and_a_star() {
        let (_server, mut client) = start().await;
        let tag = create(&mut client, "a", json!(1)).await;
        let weak = format!("W/{tag}");
        assert_eq!(
            put_if(&mut client, "a", &weak, json!(2)).await.status,
            412,
            "If-Match {weak}: a weak tag never matches strongly"
        );
        let listed = format!("\"nope\", {tag}");
        let r = put_if(&mut client, "a", &listed, json!(3)).await;
        assert_eq!(r.status, 200, "If-Match: {listed} lists the current ETag");
        assert_eq!(
            put_if(&mut client, "a", "*", json!(4)).await.status,
            200,
            "If-Match: * on an existing document"
        );
        assert_eq!(
            put_if(&mut client, "b", "*", json!(5)).await.status,
            412,
            "If-Match: * needs the document to exist"
        );
        assert_eq!(
            put_if(&mut client, "b", &tag, json!(6)).await.status,
            412,
            "no document b to match"
        );
        assert_eq!(
            client.get("/docs/b", &[]).await.status,
            404,
            "the refused PUTs created nothing"
        );
        assert_eq!(read(&mut client, "a").await.1, json!(4));
    }

    #[tokio::test]
    async fn a_put_without_a_precondition_gets_428_and_if_none_match_star_creates_once() {
        let (_server, mut client) = start().await;
        let r = put_json(&mut client, "/docs/a", &[], &json!(1)).await;
        assert_eq!(
            r.status, 428,
            "a write that says nothing about what it expects is refused"
        );
        assert_eq!(
            client.get("/docs/a", &[]).await.status,
            404,
            "and creates nothing"
        );
        create(&mut client, "a", json!(1)).await;
        let again = put_json(&mut client, "/docs/a", &[("if-none-match", "*")], &json!(2)).await;
        assert_eq!(
            again.status, 412,
            "If-None-Match: * must not overwrite an existing document"
        );
        assert_eq!(
            put_json(&mut client, "/docs/a", &[], &json!(3))
                .await
                .status,
            428
        );
        assert_eq!(read(&mut client, "a").await.1, json!(1));
    }

    #[tokio::test]
    async fn every_precondition_a_put_sends_must_hold() {
        let (_server, mut client) = start().await;
        // `old` and `cur` stand for a document's previous and current ETags.
        for (i, (if_match, if_none_match, status)) in [
            (None, Some("old"), 200),
            (None, Some("cur"), 412),
            (None, Some("W/cur"), 412),
            (Some("\"x\" ,old ,  cur"), None, 200),
            (Some("*"), Some("*"), 412),
            (Some("*"), Some("cur"), 412),
            (Some("cur"), Some("old"), 200),
            (Some("cur"), Some("\"x\", W/cur"), 412),
        ]
        .into_iter()
        .enumerate()
        {
            let path = format!("/docs/d{i}");
            let old = create(&mut client, &format!("d{i}"), json!(1)).await;
            let r = put_if(&mut client, &format!("d{i}"), &old, json!(2)).await;
            let cur = r.header("etag").unwrap().to_string();
            let fill = |h: &str| h.replace("old", &old).replace("cur", &cur);
            let (if_match, if_none_match) = (if_match.map(fill), if_none_match.map(fill));
            let mut headers = Vec::new();
            if let Some(h) = &if_match {
                headers.push(("if-match", h.as_str()));
            }
            if let Some(h) = &if_none_match {
                headers.push(("if-none-match", h.as_str()));
            }
            let r = put_json(&mut client, &path, &headers, &json!(3)).await;
            assert_eq!(
                r.status, status,
                "PUT with If-Match {if_match:?} and If-None-Match {if_none_match:?} on {cur}: \
                 If-Match first, then If-None-Match (weak, even after a passing If-Match); \
                 every precondition sent must hold (RFC 9110 §13.2.2)"
            );
            let body = if status == 200 { 3 } else { 2 };
            assert_eq!(read(&mut client, &format!("d{i}")).await.1, json!(body));
        }
    }

    #[tokio::test]
    async fn get_with_a_matching_if_none_match_gets_304_with_the_etag_and_no_body() {
        let (_server, mut client) = start().await;
        let old = create(&mut client, "a", json!({"n": 1})).await;
        let tag = put_if(&mut client, "a", &old, json!({"n": 2}))
            .await
            .header("etag")
            .unwrap()
            .to_string();
        for header in [
            tag.clone(),
            format!("W/{tag}"),
            format!("{old}, {tag}"),
            "*".into(),
        ] {
            let r = client.get("/docs/a", &[("if-none-match", &header)]).await;
            assert_eq!(
                r.status, 304,
                "If-None-Match: {header} matches {tag} (weak comparison)"
            );
            assert_eq!(
                r.header("etag"),
                Some(tag.as_str()),
                "a 304 still names the version"
            );
            assert!(r.body.is_empty(), "a 304 has no body");
        }
        let r = client.get("/docs/a", &[("if-none-match", &old)]).await;
        assert_eq!(
            r.status, 200,
            "the client's copy {old} is stale: it gets the new body"
        );
        assert_eq!(r.json::<Value>(), json!({"n": 2}));
        let r = client.get("/docs/missing", &[("if-none-match", "*")]).await;
        assert_eq!(r.status, 404, "* matches only an existing document");
    }

    #[test]
    fn interleaved_read_modify_write_clients_never_lose_an_update() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        sdlings_kit::property::for_seeds(40, |rng| {
            runtime.block_on(async {
                let (server, mut admin) = start().await;
                create(&mut admin, "c", json!(0)).await;
                let k = rng.random_range(1..5);
                let mut clients = Vec::new();
                for _ in 0..k {
                    let mut c = server.client().await;
                    let (tag, value) = read(&mut c, "c").await;
                    clients.push((c, tag, value.as_u64().unwrap()));
                }
                // The model: the value, and which client's read is of the current version.
                let (mut value, mut fresh) = (0u64, vec![true; k]);
                for step in 0..rng.random_range(1..30) {
                    let i = rng.random_range(0..k);
                    let (c, tag, seen) = &mut clients[i];
                    if rng.random_bool(0.4) {
                        (*tag, *seen) = {
                            let (t, v) = read(c, "c").await;
                            (t, v.as_u64().unwrap())
                        };
                        assert_eq!(
                            *seen, value,
                            "step {step}: a GET sees the last applied write"
                        );
                        fresh[i] = true;
                        continue;
                    }
                    let r = put_if(c, "c", tag, json!(*seen + 1)).await;
                    let expected = if fresh[i] { 200 } else { 412 };
                    assert_eq!(
                        r.status,
                        expected,
                        "step {step}: client {i} writes {} with the ETag it read; someone wrote \
                         since: {}",
                        *seen + 1,
                        !fresh[i]
                    );
                    if r.status == 200 {
                        value = *seen + 1;
                        fresh.iter_mut().for_each(|f| *f = false);
                        fresh[i] = true;
                        (*tag, *seen) = (r.header("etag").unwrap().to_string(), value);
                    }
                }
                assert_eq!(
                    read(&mut admin, "c").await.1,
                    json!(value),
                    "the final value"
                );
            })
        });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_clients_racing_on_one_version_exactly_one_wins() {
        let (server, mut admin) = start().await;
        let tag = create(&mut admin, "c", json!(0)).await;
        let mut racers = Vec::new();
        for i in 0..8 {
            let (mut c, tag) = (server.client().await, tag.clone());
            racers.push(tokio::spawn(async move {
                put_if(&mut c, "c", &tag, json!(i)).await.status
            }));
        }
        let mut statuses = Vec::new();
        for r in racers {
            statuses.push(r.await.unwrap());
        }
        statuses.sort();
        assert_eq!(
            statuses,
            [200, 412, 412, 412, 412, 412, 412, 412],
            "8 writes on the same version: one wins"
        );
    }
}
