//! Real backend servers on localhost, for the labs.
//!
//! A load balancer, a rate limiter, a retry policy or a circuit breaker only shows what it does
//! when it sits in front of real servers that are slow, fail, hang or crash. This module gives a
//! lab a small fleet of such servers: each [`Backend`] is a real HTTP/1.1 server on
//! `127.0.0.1:<random port>`, built on hyper (the HTTP stack under axum, reqwest and tonic) and
//! run as tokio tasks, whose [`Behaviour`] the lab can change while it runs (healthy with some
//! latency, failing with `503`, hung) and which it can [`crash`]. The [`get`] client sends one
//! request with a deadline over hyper's client connection, as the learner's component would.
//!
//! It contains no exercise answer: no balancing, limiting, retrying or breaking logic. It is the
//! "fleet of backend servers" a lab points the learner's component at.
//!
//! Endpoints (HTTP/1.1, one request per connection, `Connection: close`):
//!
//! | request | answer |
//! |---|---|
//! | `GET /health` | `200 ok` (`503` when failing; no answer when hung) |
//! | `GET /work?ms=N` | `200` after sleeping `N` ms extra (simulated I/O-bound work) |
//! | `GET /cpu?iters=N` | `200` after `N` iterations of busy work (CPU-bound) |
//! | `GET /session?id=S` | `200 "<backend name> <count>"`: how many times this backend saw session `S` |
//! | `GET /crash` | the backend crashes (as [`Backend::crash`]), answering nothing |
//! | anything else | `404` |
//!
//! Every response carries the header `X-Backend: <name>`. A malformed query (`/work?ms=abc`,
//! `/session` without an id) gets `400`, a method other than `GET` gets `405`.
//!
//! [`crash`]: Backend::crash

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How a backend behaves right now; can be changed while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// Answers every request after `latency` (plus the request's own work).
    Healthy { latency: Duration },
    /// Answers `503 Service Unavailable` to everything, `/health` included, after `latency`.
    Failing { latency: Duration },
    /// Accepts connections but never answers (a hung process): the client must time out.
    Hung,
}

/// State shared between the [`Backend`] handle and its tasks.
struct Shared {
    name: String,
    behaviour: Mutex<Behaviour>,
    /// The listening socket; `None` once crashed. Kept here (not inside the accept task) so that
    /// [`Backend::crash`] closes it synchronously: a connect right after `crash()` is refused.
    listener: Mutex<Option<TcpListener>>,
    up: AtomicBool,
    served: AtomicU64,
    in_flight: AtomicU64,
    sessions: Mutex<HashMap<String, u64>>,
    /// `true` once crashed or dropped: every task of this backend stops.
    shutdown: watch::Sender<bool>,
}

/// Locks a mutex, ignoring poisoning (a panicking task must not take the whole fleet down).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn crash(&self) {
        self.up.store(false, Ordering::SeqCst);
        // Dropping the listener closes the socket now: pending and later connects are refused.
        drop(lock(&self.listener).take());
        // Wakes the accept task and every connection task, which drop their connections.
        self.shutdown.send_replace(true);
    }
}

/// A running backend server. Dropping it shuts the server down.
pub struct Backend {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept_task: JoinHandle<()>,
}

impl Backend {
    /// Starts a server named `name` on 127.0.0.1:0 with the given behaviour. Must be called
    /// inside a tokio runtime (the server runs as tokio tasks).
    pub async fn start(name: &str, behaviour: Behaviour) -> io::Result<Backend> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            name: name.to_string(),
            behaviour: Mutex::new(behaviour),
            listener: Mutex::new(Some(listener)),
            up: AtomicBool::new(true),
            served: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            sessions: Mutex::new(HashMap::new()),
            shutdown,
        });
        let accept_task = tokio::spawn(accept_loop(Arc::clone(&shared)));
        Ok(Backend {
            shared,
            addr,
            accept_task,
        })
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes the behaviour for the requests that arrive from now on (a request already being
    /// handled keeps the behaviour it started with).
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *lock(&self.shared.behaviour) = behaviour;
    }

    /// The current behaviour.
    pub fn behaviour(&self) -> Behaviour {
        lock(&self.shared.behaviour).clone()
    }

    /// Crashes the server: stops accepting, drops open connections; later connects are refused.
    /// A crashed backend stays down (start a new one to "restart" it, on a new port).
    pub fn crash(&self) {
        self.shared.crash();
    }

    /// Whether it is still running (not crashed).
    pub fn is_up(&self) -> bool {
        self.shared.up.load(Ordering::SeqCst)
    }

    /// Requests answered with a 2xx so far (any endpoint but /health).
    pub fn served(&self) -> u64 {
        self.shared.served.load(Ordering::SeqCst)
    }

    /// Requests currently being handled (in flight): read from the wire and not yet answered,
    /// hung requests included.
    pub fn in_flight(&self) -> u64 {
        self.shared.in_flight.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.shared.name)
            .field("addr", &self.addr)
            .field("behaviour", &self.behaviour())
            .field("up", &self.is_up())
            .field("served", &self.served())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.shared.crash();
        self.accept_task.abort();
    }
}

/// Resolves once the backend has crashed or been dropped.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: the backend is gone too.
    let _ = shutdown.wait_for(|down| *down).await;
}

/// Accepts connections until the backend crashes, one task per connection.
async fn accept_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        // The lock is held only while polling, never across an await, so `crash()` can always
        // take the listener away.
        let accepted = poll_fn(|cx| match lock(&shared.listener).as_ref() {
            Some(listener) => listener.poll_accept(cx).map(Some),
            None => Poll::Ready(None),
        });
        let stream = tokio::select! {
            _ = stopped(&mut shutdown) => return,
            accepted = accepted => match accepted {
                None => return,
                Some(Ok((stream, _peer))) => stream,
                // Out of file descriptors and the like: back off a little and keep serving.
                Some(Err(_)) => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
            },
        };
        let conn_shared = Arc::clone(&shared);
        let mut conn_shutdown = shared.shutdown.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                _ = stopped(&mut conn_shutdown) => {}
                _ = handle_connection(conn_shared, stream) => {}
            }
        });
    }
}

/// Counts a request as in flight for as long as it lives (also when its task is cancelled).
struct InFlight(Arc<Shared>);

impl InFlight {
    fn enter(shared: &Arc<Shared>) -> Self {
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(shared))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What the server needs of a request: method, path, query parameters.
struct Request {
    method: Method,
    path: String,
    query: HashMap<String, String>,
}

impl Request {
    fn from_http(request: &hyper::Request<Incoming>) -> Request {
        let query = request
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (key.to_string(), value.to_string())
            })
            .collect();
        Request {
            method: request.method().clone(),
            path: request.uri().path().to_string(),
            query,
        }
    }

    /// The query parameter `key` as a number; `Ok(None)` when absent, `Err` when not a number.
    fn number(&self, key: &str) -> Result<Option<u64>, ()> {
        match self.query.get(key) {
            None => Ok(None),
            Some(value) => value.parse().map(Some).map_err(|_| ()),
        }
    }
}

/// Deterministic CPU-bound work: `iters` rounds of a 64-bit hash mix.
fn busy_work(iters: u64) -> u64 {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..iters {
        x ^= i;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 31;
        x = std::hint::black_box(x);
    }
    x
}

/// Serves one connection: one request (no keep-alive, like the labs' clients), parsed and
/// answered by hyper.
async fn handle_connection(shared: Arc<Shared>, stream: TcpStream) {
    let service = service_fn(move |request| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(respond(&shared, request).await) }
    });
    // An error here is the client's (it went away, or sent something that is not HTTP): the
    // connection simply ends.
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Answers one request according to the backend's behaviour.
async fn respond(
    shared: &Arc<Shared>,
    request: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let request = Request::from_http(&request);
    let in_flight = InFlight::enter(shared);
    let behaviour = lock(&shared.behaviour).clone();
    if request.method == Method::GET && request.path == "/crash" {
        // A kill switch, honoured whatever the behaviour: the connection is dropped unanswered
        // (the crash ends the connection's task while this waits).
        shared.crash();
        return std::future::pending().await;
    }
    let (status, body) = match behaviour {
        Behaviour::Hung => std::future::pending().await,
        Behaviour::Failing { latency } => {
            tokio::time::sleep(latency).await;
            (503, "unavailable".to_string())
        }
        Behaviour::Healthy { latency } => {
            tokio::time::sleep(latency).await;
            route(shared, &request).await
        }
    };
    // Counted before the answer is sent, so a client that has read it always sees the counters
    // up to date.
    if (200..300).contains(&status) && request.path != "/health" {
        shared.served.fetch_add(1, Ordering::SeqCst);
    }
    drop(in_flight);
    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    if let Ok(name) = HeaderValue::from_str(&shared.name) {
        headers.insert(X_BACKEND, name);
    }
    response
}

/// What a healthy backend answers to `request`.
async fn route(shared: &Shared, request: &Request) -> (u16, String) {
    if request.method != Method::GET {
        return (405, "method not allowed".to_string());
    }
    match request.path.as_str() {
        "/health" => (200, "ok".to_string()),
        "/work" => match request.number("ms") {
            Err(()) => (400, "ms must be a number".to_string()),
            Ok(ms) => {
                tokio::time::sleep(Duration::from_millis(ms.unwrap_or(0))).await;
                (200, "ok".to_string())
            }
        },
        "/cpu" => match request.number("iters") {
            Err(()) => (400, "iters must be a number".to_string()),
            Ok(iters) => {
                let iters = iters.unwrap_or(0);
                match tokio::task::spawn_blocking(move || busy_work(iters)).await {
                    Ok(hash) => (200, format!("ok {hash:016x}")),
                    Err(_) => (503, "work interrupted".to_string()),
                }
            }
        },
        "/session" => match request.query.get("id") {
            None => (400, "session id missing".to_string()),
            Some(id) => {
                let count = {
                    let mut sessions = lock(&shared.sessions);
                    let count = sessions.entry(id.clone()).or_insert(0);
                    *count += 1;
                    *count
                };
                (200, format!("{} {count}", shared.name))
            }
        },
        _ => (404, "not found".to_string()),
    }
}

/// The response header that names the backend that answered.
const X_BACKEND: &str = "x-backend";

/// A response as seen by the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    /// The `X-Backend` header: which backend answered.
    pub backend: Option<String>,
    pub body: String,
}

/// Sends `GET path` to `addr`, waiting at most `timeout` for the whole exchange.
/// Errors: connection refused (backend down), timeout (`io::ErrorKind::TimedOut`), bad response.
///
/// A backend that drops the connection without answering (it crashed) gives
/// `io::ErrorKind::UnexpectedEof` or `ConnectionReset`; an unparsable answer gives `InvalidData`.
pub async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> io::Result<Response> {
    match tokio::time::timeout(timeout, exchange(addr, path)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("GET {path} to {addr}: no answer within {timeout:?}"),
        )),
    }
}

async fn exchange(addr: SocketAddr, path: &str) -> io::Result<Response> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| http_error(addr, path, e))?;
    // The connection is driven by its own task; it ends with the exchange (Connection: close).
    tokio::spawn(connection);
    let slash = if path.starts_with('/') { "" } else { "/" };
    let request = hyper::Request::get(format!("{slash}{path}"))
        .header(HOST, addr.to_string())
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("GET {path}: {e}")))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| http_error(addr, path, e))?;
    let status = response.status().as_u16();
    let backend = response
        .headers()
        .get(X_BACKEND)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| http_error(addr, path, e))?
        .to_bytes();
    let body = String::from_utf8(body.to_vec()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("GET {path} to {addr}: the body is not UTF-8"),
        )
    })?;
    Ok(Response {
        status,
        backend,
        body,
    })
}

/// hyper's error as the io::Error kinds callers match on: a connection closed before the whole
/// answer is `UnexpectedEof`, an unparsable answer `InvalidData`, a socket error its own kind.
fn http_error(addr: SocketAddr, path: &str, error: hyper::Error) -> io::Error {
    let kind = if error.is_incomplete_message() || error.is_closed() || error.is_canceled() {
        io::ErrorKind::UnexpectedEof
    } else if error.is_parse() || error.is_parse_status() {
        io::ErrorKind::InvalidData
    } else {
        std::error::Error::source(&error)
            .and_then(|source| source.downcast_ref::<io::Error>())
            .map_or(io::ErrorKind::Other, io::Error::kind)
    };
    io::Error::new(kind, format!("GET {path} to {addr}: {error}"))
}

/// Starts `n` healthy backends named "backend-0".."backend-{n-1}" with the given latency.
pub async fn start_fleet(n: usize, latency: Duration) -> io::Result<Vec<Backend>> {
    let mut fleet = Vec::with_capacity(n);
    for i in 0..n {
        fleet.push(Backend::start(&format!("backend-{i}"), Behaviour::Healthy { latency }).await?);
    }
    Ok(fleet)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn healthy() -> Behaviour {
        Behaviour::Healthy {
            latency: Duration::ZERO,
        }
    }

    #[tokio::test]
    async fn health_answers_200_with_the_backend_name() {
        let backend = Backend::start("b0", healthy()).await.unwrap();
        assert!(backend.is_up());
        assert_eq!(backend.name(), "b0");
        assert!(backend.addr().ip().is_loopback());
        let response = get(backend.addr(), "/health", TIMEOUT).await.unwrap();
        assert_eq!(
            response,
            Response {
                status: 200,
                backend: Some("b0".to_string()),
                body: "ok".to_string(),
            }
        );
    }

    #[tokio::test]
    async fn work_and_cpu_answer_200() {
        let backend = Backend::start("b0", healthy()).await.unwrap();
        let work = get(backend.addr(), "/work?ms=5", TIMEOUT).await.unwrap();
        assert_eq!(work.status, 200);
        let cpu = get(backend.addr(), "/cpu?iters=10000", TIMEOUT)
            .await
            .unwrap();
        assert_eq!(cpu.status, 200);
        let again = get(backend.addr(), "/cpu?iters=10000", TIMEOUT)
            .await
            .unwrap();
        assert_eq!(cpu.body, again.body, "the busy work is deterministic");
        let bad = get(backend.addr(), "/work?ms=soon", TIMEOUT).await.unwrap();
        assert_eq!(bad.status, 400);
    }

    #[tokio::test]
    async fn session_counts_per_session_id() {
        let backend = Backend::start("b1", healthy()).await.unwrap();
        let body = |r: Response| r.body;
        let a1 = get(backend.addr(), "/session?id=alice", TIMEOUT).await;
        let a2 = get(backend.addr(), "/session?id=alice", TIMEOUT).await;
        let b1 = get(backend.addr(), "/session?id=bob", TIMEOUT).await;
        assert_eq!(body(a1.unwrap()), "b1 1");
        assert_eq!(body(a2.unwrap()), "b1 2");
        assert_eq!(body(b1.unwrap()), "b1 1");
        let missing = get(backend.addr(), "/session", TIMEOUT).await.unwrap();
        assert_eq!(missing.status, 400);
    }

    #[tokio::test]
    async fn failing_answers_503_to_everything() {
        let backend = Backend::start("b0", healthy()).await.unwrap();
        backend.set_behaviour(Behaviour::Failing {
            latency: Duration::ZERO,
        });
        for path in ["/health", "/work?ms=1", "/session?id=a"] {
            let response = get(backend.addr(), path, TIMEOUT).await.unwrap();
            assert_eq!(response.status, 503, "{path}");
            assert_eq!(response.backend.as_deref(), Some("b0"));
        }
        assert_eq!(backend.served(), 0);
        backend.set_behaviour(healthy());
        let response = get(backend.addr(), "/health", TIMEOUT).await.unwrap();
        assert_eq!(response.status, 200);
    }

    #[tokio::test]
    async fn hung_backend_makes_the_client_time_out() {
        let backend = Backend::start("b0", Behaviour::Hung).await.unwrap();
        let error = get(backend.addr(), "/health", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(backend.is_up());
    }

    #[tokio::test]
    async fn crash_refuses_later_connections() {
        let backend = Backend::start("b0", healthy()).await.unwrap();
        assert_eq!(
            get(backend.addr(), "/health", TIMEOUT)
                .await
                .unwrap()
                .status,
            200
        );
        backend.crash();
        assert!(!backend.is_up());
        let error = get(backend.addr(), "/health", TIMEOUT).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn crash_drops_in_flight_connections() {
        let backend = Backend::start("b0", Behaviour::Hung).await.unwrap();
        let addr = backend.addr();
        let client = tokio::spawn(async move { get(addr, "/work", TIMEOUT).await });
        while backend.in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        backend.crash();
        let error = client.await.unwrap().unwrap_err();
        assert_ne!(
            error.kind(),
            io::ErrorKind::TimedOut,
            "the connection is dropped, not left hanging"
        );
        while backend.in_flight() != 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn crash_endpoint_crashes_the_backend() {
        let backend = Backend::start("b0", healthy()).await.unwrap();
        let error = get(backend.addr(), "/crash", TIMEOUT).await.unwrap_err();
        assert_ne!(error.kind(), io::ErrorKind::TimedOut);
        assert!(!backend.is_up());
        let error = get(backend.addr(), "/health", TIMEOUT).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn dropping_the_backend_shuts_it_down() {
        let backend = Backend::start("b0", healthy()).await.unwrap();
        let addr = backend.addr();
        drop(backend);
        let error = get(addr, "/health", TIMEOUT).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn served_counts_2xx_answers_but_not_health() {
        let backend = Backend::start("b0", healthy()).await.unwrap();
        get(backend.addr(), "/health", TIMEOUT).await.unwrap();
        get(backend.addr(), "/work", TIMEOUT).await.unwrap();
        get(backend.addr(), "/session?id=x", TIMEOUT).await.unwrap();
        get(backend.addr(), "/nope", TIMEOUT).await.unwrap();
        assert_eq!(backend.served(), 2);
        assert_eq!(backend.in_flight(), 0);
    }

    #[tokio::test]
    async fn unknown_paths_get_404() {
        let backend = Backend::start("b0", healthy()).await.unwrap();
        let response = get(backend.addr(), "/nope", TIMEOUT).await.unwrap();
        assert_eq!(response.status, 404);
        assert_eq!(response.backend.as_deref(), Some("b0"));
    }

    #[tokio::test]
    async fn a_fleet_has_named_healthy_backends() {
        let fleet = start_fleet(3, Duration::ZERO).await.unwrap();
        for (i, backend) in fleet.iter().enumerate() {
            let response = get(backend.addr(), "/health", TIMEOUT).await.unwrap();
            assert_eq!(response.backend, Some(format!("backend-{i}")));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_are_all_answered() {
        let backend = Backend::start("b0", healthy()).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..50 {
            let addr = backend.addr();
            tasks.spawn(async move { get(addr, &format!("/session?id={i}"), TIMEOUT).await });
        }
        while let Some(result) = tasks.join_next().await {
            assert_eq!(result.unwrap().unwrap().status, 200);
        }
        assert_eq!(backend.served(), 50);
    }
}
