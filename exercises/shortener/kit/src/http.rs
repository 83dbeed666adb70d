//! Real HTTP on localhost: serve an axum [`Router`] on `127.0.0.1:<random port>` inside the
//! caller's tokio runtime, and send requests to it over hyper's HTTP/1.1 client (one connection
//! per request, `Connection: close`), as a browser or another service would.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A server running a router; dropping it stops the server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    /// Serves `router` on 127.0.0.1 at a port the OS picks, as a task of the current runtime.
    pub async fn start(router: Router) -> io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Server { addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A response as the client saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    /// Header names in lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Value::Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// How long the client waits for a whole exchange before giving up.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `method path` with the given headers and body to `addr`. Errors: connection refused,
/// timeout ([`TIMEOUT`]), a malformed answer.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> io::Result<Response> {
    let what = format!("{method} {path} to {addr}");
    match tokio::time::timeout(TIMEOUT, exchange(addr, method, path, headers, body)).await {
        Ok(result) => result.map_err(|e| io::Error::new(e.kind(), format!("{what}: {e}"))),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what}: no answer within {TIMEOUT:?}"),
        )),
    }
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> io::Result<Response> {
    request(addr, "GET", path, &[], "").await
}

/// `POST path` with a JSON body and extra headers (e.g. `("Idempotency-Key", "k1")`).
pub async fn post_json(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    json: &serde_json::Value,
) -> io::Result<Response> {
    let mut all = vec![(CONTENT_TYPE.as_str(), "application/json")];
    all.extend_from_slice(headers);
    request(addr, "POST", path, &all, &json.to_string()).await
}

async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> io::Result<Response> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(to_io)?;
    tokio::spawn(connection);
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, addr.to_string())
        .header(CONNECTION, "close");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let response = sender.send_request(request).await.map_err(to_io)?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (n.as_str().to_string(), v)
        })
        .collect();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(to_io)?
        .to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn to_io(error: hyper::Error) -> io::Error {
    let kind = if error.is_incomplete_message() || error.is_closed() || error.is_canceled() {
        io::ErrorKind::UnexpectedEof
    } else if error.is_parse() || error.is_parse_status() {
        io::ErrorKind::InvalidData
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, error.to_string())
}

#[cfg(test)]
mod tests {
    use axum::routing::{get as route_get, post};

    use super::*;

    #[tokio::test]
    async fn a_router_answers_over_real_http() {
        let router = Router::new()
            .route("/hello", route_get(|| async { "hi" }))
            .route("/echo", post(|body: String| async move { body }));
        let server = Server::start(router).await.unwrap();
        let r = get(server.addr(), "/hello").await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "hi"));
        let r = post_json(server.addr(), "/echo", &[], &serde_json::json!({"a": 1}))
            .await
            .unwrap();
        assert_eq!(r.json(), serde_json::json!({"a": 1}));
        assert_eq!(get(server.addr(), "/nope").await.unwrap().status, 404);
        let addr = server.addr();
        drop(server);
        tokio::task::yield_now().await;
        assert!(
            get(addr, "/hello").await.is_err(),
            "a dropped server is gone"
        );
    }
}
