//! Machinery shared by the rate_limiting exercises: arrival patterns, timelines, lab drivers and
//! a real HTTP front end for the labs, plus the parameter space the tests draw from. Nothing here
//! decides whether a request is admitted: that is always the learner's code, passed in.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngExt;
use rand::rngs::StdRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::backend::{self, Backend, Behaviour};
use crate::clock::ManualClock;
use crate::lab::{Table, bar_chart, percent};
use crate::workload::seeded_rng;

// ---- Arrivals and timelines ------------------------------------------------------------------

/// The most timestamps of `times` (sorted) that fall in any half-open span `[t, t + span)`.
pub fn worst_span(times: &[Duration], span: Duration) -> usize {
    let mut worst = 0;
    let mut first = 0;
    for (last, &t) in times.iter().enumerate() {
        while times[first] + span <= t {
            first += 1;
        }
        worst = worst.max(last - first + 1);
    }
    worst
}

/// `n` arrivals evenly spread over `[boundary - spread, boundary + spread)`: a client spending
/// its budget on both sides of a window boundary.
pub fn boundary_burst(boundary: Duration, spread: Duration, n: u32) -> Vec<Duration> {
    assert!(spread <= boundary, "the burst must start after time zero");
    (0..n)
        .map(|i| boundary - spread + spread * 2 * i / n)
        .collect()
}

/// `n` arrivals evenly spread over `[0, over)`.
pub fn evenly(n: u32, over: Duration) -> Vec<Duration> {
    (0..n).map(|i| over * i / n).collect()
}

/// A client that fires `burst.1` requests within ±`burst.0` of the boundary at `window`, then
/// `steady_rps` requests a second until `end`.
pub fn burst_then_steady(
    window: Duration,
    burst: (Duration, u32),
    steady_rps: u32,
    end: Duration,
) -> Vec<Duration> {
    let (spread, requests) = burst;
    let mut arrivals = boundary_burst(window, spread, requests);
    let gap = Duration::from_secs(1) / steady_rps;
    let steady = (0..).map(|i| window + spread + gap * i);
    arrivals.extend(steady.take_while(|&t| t < end));
    arrivals
}

/// Replays `arrivals` (sorted): sets `clock` to each one and calls `try_acquire`; returns the
/// times it admitted.
pub fn replay(
    arrivals: &[Duration],
    clock: &ManualClock,
    mut try_acquire: impl FnMut() -> bool,
) -> Vec<Duration> {
    let mut admitted = Vec::new();
    for &t in arrivals {
        clock.set(t);
        if try_acquire() {
            admitted.push(t);
        }
    }
    admitted
}

/// How many of `times` fall in each of `bars` consecutive bars of length `bar` from zero.
pub fn per_bar(times: &[Duration], bar: Duration, bars: usize) -> Vec<u32> {
    let mut counts = vec![0u32; bars];
    for t in times {
        if let Some(count) = counts.get_mut((t.as_nanos() / bar.as_nanos()) as usize) {
            *count += 1;
        }
    }
    counts
}

/// A bar chart of `times` per bar, a `|` marking each bar that starts a window.
pub fn timeline(times: &[Duration], bar: Duration, bars: usize, window: Duration) -> String {
    let per_window = (window.as_nanos() / bar.as_nanos()).max(1) as usize;
    let rows: Vec<(String, f64)> = per_bar(times, bar, bars)
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let mark = if i % per_window == 0 { '|' } else { ' ' };
            let start = bar * i as u32;
            (format!("{mark}{:.2}s", start.as_secs_f64()), f64::from(n))
        })
        .collect();
    bar_chart(&rows, 40)
}

/// Two timelines side by side, one `#` per admitted request (capped at `width`).
pub fn two_timelines(
    names: [&str; 2],
    times: [&[Duration]; 2],
    bar: Duration,
    bars: usize,
    window: Duration,
    width: usize,
) -> String {
    let per_window = (window.as_nanos() / bar.as_nanos()).max(1) as usize;
    let (left, right) = (per_bar(times[0], bar, bars), per_bar(times[1], bar, bars));
    let mut out = format!("        {:<w$}{}\n", names[0], names[1], w = width + 6);
    for i in 0..bars {
        let mark = if i % per_window == 0 { '|' } else { ' ' };
        let (l, r) = (left[i] as usize, right[i] as usize);
        out += &format!(
            "{mark}{:>4.1}s  {:<width$} {l:>3}  {:<width$} {r:>3}\n",
            (bar * i as u32).as_secs_f64(),
            "#".repeat(l.min(width)),
            "#".repeat(r.min(width)),
        );
    }
    out
}

/// The sliding-log lab's report: what a fixed window admitted of `arrivals` (`fixed`: the
/// admitted times and the bytes of state it holds) and what a sliding log admitted (`log`: the
/// admitted times and the most timestamps it held), their worst one-window spans, the memory
/// each needs per client, and both timelines side by side in bars of a tenth of a window.
pub fn log_vs_fixed_lab(
    arrivals: &[Duration],
    limit: u32,
    window: Duration,
    fixed: (&[Duration], usize),
    log: (&[Duration], usize),
) {
    let ((by_fixed, fixed_bytes), (by_log, peak_log)) = (fixed, log);
    let bytes_per_timestamp = std::mem::size_of::<Duration>();
    println!(
        "{limit} requests per {window:?}. A client fires a burst of requests around the boundary \
         at {window:?}, then a steady stream: {} requests in all.\n",
        arrivals.len()
    );
    let mut table = Table::new(&[
        "algorithm",
        "sent",
        "admitted",
        "worst 1-window span",
        "state held",
        "memory per client",
    ]);
    for (name, admitted, state, bytes) in [
        (
            "fixed window",
            by_fixed,
            "1 counter".to_string(),
            fixed_bytes,
        ),
        (
            "sliding log (yours)",
            by_log,
            format!("≤ {peak_log} timestamps"),
            peak_log * bytes_per_timestamp,
        ),
    ] {
        table.row(&[
            name.to_string(),
            arrivals.len().to_string(),
            admitted.len().to_string(),
            worst_span(admitted, window).to_string(),
            state,
            format!("{bytes} B"),
        ]);
    }
    table.print();
    println!("\nadmitted per {:?} (| starts a window)\n", window / 10);
    let last = arrivals.last().copied().unwrap_or_default();
    let bars = (last.as_nanos() / (window / 10).as_nanos()) as usize + 1;
    let names = ["fixed window", "sliding log (yours)"];
    let chart = two_timelines(
        names,
        [by_fixed, by_log],
        window / 10,
        bars,
        window,
        limit as usize,
    );
    println!("{chart}");
    println!(
        "At a limit of 10 000 per hour a busy client would hold up to {} KiB of timestamps in the \
         sliding log; the fixed window holds one counter whatever the limit.",
        10_000 * bytes_per_timestamp / 1024
    );
}

/// Arrival times for five traffic patterns over `duration`, sorted: random ones at `load` × the
/// limit on average (steady, Poisson, bursty), and twice the limit packed into the first or the
/// last fifth of every window (front-loaded, back-loaded).
pub fn traffic_patterns(
    limit: u32,
    window: Duration,
    duration: Duration,
    load: f64,
    seed: u64,
) -> Vec<(&'static str, Vec<Duration>)> {
    let mean_gap = window.as_secs_f64() / (f64::from(limit) * load);
    let mut rng = seeded_rng(seed);
    let mut arrivals = |gap: &mut dyn FnMut(&mut StdRng) -> f64| {
        let mut times = Vec::new();
        let mut t = 0.0;
        loop {
            t += gap(&mut rng);
            if t >= duration.as_secs_f64() {
                return times;
            }
            times.push(Duration::from_secs_f64(t));
        }
    };
    let steady = arrivals(&mut |rng| rng.random_range(0.0..2.0 * mean_gap));
    let poisson = arrivals(&mut |rng| -mean_gap * (1.0 - rng.random_range(0.0..1.0_f64)).ln());
    let bursty = arrivals(&mut |rng| {
        if rng.random_range(0.0..1.0) < 0.9 {
            rng.random_range(0.0..0.2 * mean_gap)
        } else {
            rng.random_range(0.0..18.0 * mean_gap)
        }
    });
    let packed = |at_end: bool| {
        let windows = (duration.as_nanos() / window.as_nanos()) as u32;
        let fifth = window / 5;
        let offset = if at_end {
            window - fifth
        } else {
            Duration::ZERO
        };
        (0..windows)
            .flat_map(|w| {
                (0..2 * limit).map(move |i| window * w + offset + fifth * i / (2 * limit))
            })
            .collect::<Vec<_>>()
    };
    vec![
        ("steady", steady),
        ("poisson", poisson),
        ("bursty", bursty),
        ("front-loaded", packed(false)),
        ("back-loaded", packed(true)),
    ]
}

/// Runs one client through `phases` of (length, requests per second) against a token bucket and
/// prints, per phase, what it sent and what was admitted, then a timeline in bars of `bar`.
/// `acquire` asks the bucket for one token; `tokens` reads what it holds.
pub fn phases_lab<B>(
    bucket: &mut B,
    clock: &ManualClock,
    phases: &[(Duration, u32)],
    bar: Duration,
    acquire: impl Fn(&mut B) -> bool,
    tokens: impl Fn(&mut B) -> f64,
) {
    let total: Duration = phases.iter().map(|(d, _)| *d).sum();
    let mut admitted_at = Vec::new();
    let mut table = Table::new(&[
        "phase",
        "sends/s",
        "sent",
        "admitted",
        "admitted/s",
        "tokens at end",
    ]);
    let (mut start, mut sent_total) = (Duration::ZERO, 0u64);
    for (i, &(length, rps)) in phases.iter().enumerate() {
        let (mut sent, before) = (0u64, admitted_at.len());
        if rps > 0 {
            let gap = Duration::from_secs(1) / rps;
            let mut t = start;
            while t < start + length {
                clock.set(t);
                sent += 1;
                if acquire(bucket) {
                    admitted_at.push(t);
                }
                t += gap;
            }
        }
        start += length;
        clock.set(start);
        let admitted = (admitted_at.len() - before) as u64;
        table.row(&[
            format!("{} ({:.1}s)", i + 1, length.as_secs_f64()),
            rps.to_string(),
            sent.to_string(),
            admitted.to_string(),
            format!("{:.1}", admitted as f64 / length.as_secs_f64()),
            format!("{:.1}", tokens(bucket)),
        ]);
        sent_total += sent;
    }
    table.print();
    let admitted = admitted_at.len() as u64;
    println!(
        "\n{admitted} of {sent_total} requests admitted ({}).",
        percent(admitted, sent_total)
    );
    println!("\nadmitted per {bar:?}");
    let bars = (total.as_nanos() / bar.as_nanos()) as usize;
    println!("{}", timeline(&admitted_at, bar, bars, total));
}

// ---- Per-client limiting: the HTTP front end and the simulated scans ---------------------------

/// A limiter with one budget per client key, as the lab drivers see it.
pub trait KeyedLimiter {
    /// Decides one request from `client`: whether it is allowed, the whole requests left
    /// (`X-RateLimit-Remaining`) and, when rejected, how long to wait (`Retry-After`).
    fn check(&mut self, client: &str) -> (bool, u32, Option<Duration>);
    fn tracked_clients(&self) -> usize;
}

/// How a lab client behaves.
#[derive(Clone, Copy)]
struct Persona {
    key: &'static str,
    /// Requests per second it tries to send.
    rps: u32,
    /// Whether it waits for Retry-After after a 429 (a well-behaved SDK does).
    honours_retry_after: bool,
}

fn personas(abusive_rps: u32) -> [Persona; 4] {
    [
        Persona {
            key: "alice",
            rps: 3,
            honours_retry_after: true,
        },
        Persona {
            key: "bob",
            rps: 12,
            honours_retry_after: false,
        },
        Persona {
            key: "polite-batch",
            rps: 40,
            honours_retry_after: true,
        },
        Persona {
            key: "mallory",
            rps: abusive_rps,
            honours_retry_after: false,
        },
    ]
}

#[derive(Default)]
struct ClientReport {
    sent: u64,
    ok: u64,
    limited: u64,
    errors: u64,
    retry_after_ms: Vec<u64>,
}

/// Reads one request head (a GET has no body) and returns its target, e.g. `/api?key=alice`.
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 8 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8(head).ok()?;
    let mut parts = head.lines().next()?.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Some(target.to_string()),
        _ => None,
    }
}

async fn respond(stream: &mut TcpStream, status: &str, headers: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The front end: identifies the client by its API key (`?key=`), asks the limiter, and either
/// answers 429 itself or forwards the request to the backend.
async fn serve_connection<L: KeyedLimiter + Send + 'static>(
    mut stream: TcpStream,
    limiter: Arc<Mutex<L>>,
    upstream: SocketAddr,
) {
    let Some(target) = read_target(&mut stream).await else {
        return;
    };
    let key = target
        .split_once("key=")
        .map(|(_, rest)| rest.split('&').next().unwrap_or(""))
        .unwrap_or("anonymous")
        .to_string();
    // A std Mutex is fine: it is held for one `check`, never across an `.await`.
    let (_, remaining, retry_after) = limiter.lock().expect("not poisoned").check(&key);
    if let Some(wait) = retry_after {
        // HTTP's Retry-After is in whole seconds: round up again. The exact wait goes in the body
        // (real APIs add a header such as `RateLimit-Reset` or `X-RateLimit-Reset-After`).
        let ms = wait.as_millis();
        let headers = format!(
            "Retry-After: {}\r\nX-RateLimit-Remaining: 0\r\n",
            ms.div_ceil(1000)
        );
        let body = format!("rate limited, retry after {ms} ms");
        respond(&mut stream, "429 Too Many Requests", &headers, &body).await;
        return;
    }
    let headers = format!("X-RateLimit-Remaining: {remaining}\r\n");
    match backend::get(upstream, "/work?ms=2", Duration::from_secs(1)).await {
        Ok(answer) if answer.status == 200 => {
            respond(&mut stream, "200 OK", &headers, &answer.body).await
        }
        _ => respond(&mut stream, "502 Bad Gateway", &headers, "upstream failed").await,
    }
}

/// One client: sends at its rate for `run_for`, over a new connection per request.
async fn run_client(persona: Persona, front: SocketAddr, run_for: Duration) -> ClientReport {
    let report = Arc::new(Mutex::new(ClientReport::default()));
    let gap = Duration::from_secs(1) / persona.rps.max(1);
    let deadline = tokio::time::Instant::now() + run_for;
    let mut in_flight = JoinSet::new();
    let mut next = tokio::time::Instant::now();
    while next < deadline {
        tokio::time::sleep_until(next).await;
        next += gap;
        let report = Arc::clone(&report);
        let path = format!("/api?key={}", persona.key);
        let request = async move {
            let answer = backend::get(front, &path, Duration::from_secs(2)).await;
            let mut r = report.lock().expect("not poisoned");
            r.sent += 1;
            match answer {
                Ok(a) if a.status == 200 => r.ok += 1,
                Ok(a) if a.status == 429 => {
                    r.limited += 1;
                    let ms = a
                        .body
                        .split_whitespace()
                        .find_map(|w| w.parse::<u64>().ok())
                        .unwrap_or(0);
                    r.retry_after_ms.push(ms);
                    return Some(Duration::from_millis(ms));
                }
                _ => r.errors += 1,
            }
            None
        };
        if persona.honours_retry_after {
            // One request at a time; after a 429, wait as told before sending again.
            if let Some(wait) = request.await {
                next = next.max(tokio::time::Instant::now() + wait);
            }
        } else {
            // Fire and forget: the offered rate does not depend on the answers.
            in_flight.spawn(request);
        }
    }
    in_flight.join_all().await;
    Arc::try_unwrap(report)
        .ok()
        .expect("every request has finished")
        .into_inner()
        .expect("not poisoned")
}

/// Part 1 of the per-client lab, over real sockets in real time: an HTTP front end on 127.0.0.1
/// asks `limiter` about every request before forwarding it to a backend; four clients (one
/// polite batch job honouring Retry-After, one abusive client sending `abusive_rps` and ignoring
/// it) send for `run_for`. Prints what each client saw.
pub fn socket_lab<L: KeyedLimiter + Send + 'static>(
    limiter: L,
    rate: f64,
    burst: u32,
    abusive_rps: u32,
    run_for: Duration,
) {
    let runtime = crate::lab::runtime();
    let limiter = Arc::new(Mutex::new(limiter));
    if let Err(e) = runtime.block_on(socket_lab_run(limiter, rate, burst, abusive_rps, run_for)) {
        println!("the socket lab could not run: {e}");
    }
}

async fn socket_lab_run<L: KeyedLimiter + Send + 'static>(
    limiter: Arc<Mutex<L>>,
    rate: f64,
    burst: u32,
    abusive_rps: u32,
    run_for: Duration,
) -> std::io::Result<()> {
    let backend = Backend::start(
        "api",
        Behaviour::Healthy {
            latency: Duration::from_millis(1),
        },
    )
    .await?;
    let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let front = listener.local_addr()?;
    let upstream = backend.addr();
    let server = {
        let limiter = Arc::clone(&limiter);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_connection(stream, Arc::clone(&limiter), upstream));
            }
        })
    };
    println!(
        "Part 1 — real sockets: front end on {front} → backend on {upstream}. Each client gets \
         {burst} burst + {rate}/s; they send for {run_for:?}.\n"
    );
    let mut clients = JoinSet::new();
    for persona in personas(abusive_rps) {
        clients.spawn(async move { (persona, run_client(persona, front, run_for).await) });
    }
    let mut results = clients.join_all().await;
    results.sort_by_key(|(p, _)| p.rps);
    server.abort();

    let mut table = Table::new(&[
        "client",
        "sends/s",
        "honours Retry-After",
        "sent",
        "200 OK",
        "429",
        "errors",
        "admitted/s",
        "Retry-After seen (ms)",
    ]);
    for (persona, r) in &results {
        let seen = match (r.retry_after_ms.iter().min(), r.retry_after_ms.iter().max()) {
            (Some(lo), Some(hi)) => format!("{lo}..{hi}"),
            _ => "-".to_string(),
        };
        table.row(&[
            persona.key.to_string(),
            persona.rps.to_string(),
            (if persona.honours_retry_after {
                "yes"
            } else {
                "no"
            })
            .to_string(),
            r.sent.to_string(),
            r.ok.to_string(),
            format!("{} ({})", r.limited, percent(r.limited, r.sent)),
            r.errors.to_string(),
            format!("{:.1}", r.ok as f64 / run_for.as_secs_f64()),
            seen,
        ]);
    }
    table.print();
    let sent: u64 = results.iter().map(|(_, r)| r.sent).sum();
    println!(
        "\nThe backend served {} of {sent} requests; the limiter answered the rest with 429 \
         before they cost the backend anything. Expected per client: at most {burst} + {rate} \
         × {:.0} s = {:.0} admitted.",
        backend.served(),
        run_for.as_secs_f64(),
        f64::from(burst) + rate * run_for.as_secs_f64()
    );
    Ok(())
}

/// Part 2, simulated time: `clients` distinct keys, one request each (a scan, or a botnet
/// rotating IPs), arriving at each rate of `per_sec`, against a fresh limiter from `new_limiter`
/// each time. Prints the peak number of tracked clients and how many were turned away.
pub fn one_off_lab<P: Copy, L: KeyedLimiter>(
    policy: P,
    new_limiter: impl Fn(P, ManualClock) -> L,
    max_clients: usize,
    rate: f64,
) {
    let (clients, per_sec) = (ONE_OFF_CLIENTS, ONE_OFF_PER_SEC);
    println!(
        "\nPart 2 — simulated: {clients} one-off clients (one request each); a drained token \
         comes back after {:.0} ms, then the client is idle.\n",
        1000.0 / rate
    );
    let mut table = Table::new(&[
        "new clients/s",
        "max tracked",
        "peak tracked",
        "admitted",
        "turned away (table full)",
    ]);
    for rate in per_sec {
        let clock = ManualClock::new();
        let mut limiter = new_limiter(policy, clock.clone());
        let gap = Duration::from_secs(1) / rate;
        let (mut peak, mut admitted) = (0, 0u64);
        for i in 0..clients {
            clock.set(gap * i);
            let key = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
            admitted += u64::from(limiter.check(&key).0);
            peak = peak.max(limiter.tracked_clients());
        }
        let turned_away = u64::from(clients) - admitted;
        table.row(&[
            rate.to_string(),
            max_clients.to_string(),
            peak.to_string(),
            admitted.to_string(),
            format!(
                "{turned_away} ({})",
                percent(turned_away, u64::from(clients))
            ),
        ]);
    }
    table.print();
    println!(
        "\nMemory stays bounded by max_clients. When more clients are mid-refill than the table \
         holds, refused newcomers wait (429 + Retry-After) instead of an active client being \
         forgotten."
    );
}

/// Part 2: how many one-off clients (one request each) arrive, and at which rates per second.
pub const ONE_OFF_CLIENTS: u32 = 10_000;
pub const ONE_OFF_PER_SEC: [u32; 3] = [1_000, 5_000, 20_000];
/// Part 3: key visits per second by the attacker, new clients per second, and for how long.
pub const ATTACK_VISITS_PER_SEC: u32 = 2_000;
pub const NEWCOMERS_PER_SEC: u32 = 100;
pub const ATTACK_FOR: Duration = Duration::from_secs(2);

/// Part 3, simulated time: for `ATTACK_FOR`, an attacker rotates through twice `max_clients`
/// keys, sending `burst` requests per key visit, `ATTACK_VISITS_PER_SEC` visits a second, while
/// new one-off clients arrive at `NEWCOMERS_PER_SEC`. One row per policy, each limiter built by
/// `new_limiter` and driven by its own clock.
pub fn key_rotation_lab<P: Copy + std::fmt::Debug, L: KeyedLimiter>(
    policies: &[P],
    new_limiter: impl Fn(P, ManualClock) -> L,
    max_clients: usize,
    rate: f64,
    burst: u32,
) {
    let (visits_per_sec, newcomers_per_sec) = (ATTACK_VISITS_PER_SEC, NEWCOMERS_PER_SEC);
    let run_for = ATTACK_FOR;
    let attack_keys = 2 * max_clients as u32;
    println!(
        "\nPart 3 — simulated, {run_for:?}: an attacker rotates through {attack_keys} keys (the \
         table holds {max_clients}), {burst} requests per key visit, {visits_per_sec} visits/s; \
         {newcomers_per_sec} new clients/s arrive meanwhile.\n"
    );
    let mut table = Table::new(&[
        "limiter",
        "attacker sent",
        "attacker admitted",
        "attacker admitted/s",
        "newcomers admitted",
    ]);
    for &policy in policies {
        let clock = ManualClock::new();
        let mut limiter = new_limiter(policy, clock.clone());
        let visit_gap = Duration::from_secs(1) / visits_per_sec;
        let newcomer_every = (visits_per_sec / newcomers_per_sec).max(1);
        let (mut sent, mut admitted, mut newcomers, mut welcomed) = (0u64, 0u64, 0u64, 0u64);
        let visits = (run_for.as_nanos() / visit_gap.as_nanos()) as u32;
        for visit in 0..visits {
            clock.set(visit_gap * visit);
            let key = format!("attacker-{}", visit % attack_keys);
            for _ in 0..burst {
                sent += 1;
                admitted += u64::from(limiter.check(&key).0);
            }
            if visit % newcomer_every == 0 {
                newcomers += 1;
                welcomed += u64::from(limiter.check(&format!("newcomer-{visit}")).0);
            }
        }
        table.row(&[
            format!("{policy:?}"),
            sent.to_string(),
            format!("{admitted} ({})", percent(admitted, sent)),
            format!("{:.0}", admitted as f64 / run_for.as_secs_f64()),
            format!("{welcomed} of {newcomers}"),
        ]);
    }
    table.print();
    println!(
        "\nRefusing newcomers holds the attacker to the keys it got in first: one burst of {burst} \
         each, then max_clients × rate = {:.0}/s; but it locks the new clients out. Evicting the \
         least recently seen lets them in, and hands every key the attacker comes back with a \
         fresh burst of {burst}.",
        max_clients as f64 * rate
    );
}

// ---- The parameter space the tests draw from ---------------------------------------------------

/// A window length: fractions of a second, several seconds, an hour, and lengths that are not a
/// whole number of milliseconds.
pub fn random_window(rng: &mut StdRng) -> Duration {
    match rng.random_range(0..6) {
        0 => Duration::from_millis(250),
        1 => Duration::from_secs(7),
        2 => Duration::from_secs(3600),
        3 => Duration::from_millis(100),
        4 => Duration::from_nanos(333_333_333),
        _ => Duration::from_nanos(rng.random_range(1_000..5_000_000_000)),
    }
}

/// A limit: 0, 1, 2 or 3 (each one time in five), otherwise between 4 and `max`.
pub fn random_limit(rng: &mut StdRng, max: u32) -> u32 {
    match rng.random_range(0..5) {
        small @ 0..=3 => small,
        _ => rng.random_range(4..=max.max(4)),
    }
}

/// The arrival after one at `t` for limiters with windows of `window` aligned to the clock:
/// often at the same instant or soon after, often exactly on the next window boundary, a
/// nanosecond either side of it, or well into the next window; sometimes after idle windows.
pub fn next_arrival(rng: &mut StdRng, t: Duration, window: Duration) -> Duration {
    let w = window.as_nanos() as u64;
    let next_boundary = Duration::from_nanos((t.as_nanos() as u64 / w + 1) * w);
    match rng.random_range(0..9) {
        0 | 1 => t,
        2 | 3 => t + Duration::from_nanos(rng.random_range(1..=w / 3 + 1)),
        4 => next_boundary,
        5 => next_boundary + Duration::from_nanos(1),
        6 => next_boundary - Duration::from_nanos(1),
        7 => next_boundary + window / rng.random_range(2..8),
        _ => t + window * rng.random_range(2..20),
    }
}

/// The gap before the next request to a token bucket refilled at `rate` tokens a second: the same
/// instant, a few nanoseconds or microseconds later, about one token's worth later, or an idle
/// stretch of up to `3 × capacity` tokens' worth (at most 150).
pub fn next_refill_gap(rng: &mut StdRng, rate: f64, capacity: u32) -> Duration {
    let token_time = Duration::from_secs_f64(1.0 / rate);
    match rng.random_range(0..7) {
        0 | 1 => Duration::ZERO,
        2 => Duration::from_nanos(rng.random_range(1..1_000)),
        3 => Duration::from_micros(rng.random_range(1..100_000)),
        4 | 5 => token_time.mul_f64(rng.random_range(0.2..1.5)),
        _ => token_time * rng.random_range(1..3 * capacity.min(50)),
    }
}

/// How many clock ticks pass before the next request of a per-client test: often none (a burst
/// at one instant), a few, many, or a long idle spell.
pub fn idle_or_burst_ticks(rng: &mut StdRng) -> u32 {
    match rng.random_range(0..6) {
        0 | 1 => 0,
        2 => rng.random_range(1..8),
        3 | 4 => rng.random_range(8..200),
        _ => rng.random_range(200..3000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn worst_span_counts_the_busiest_half_open_span() {
        let times = [ms(0), ms(500), ms(999), ms(1000), ms(1001)];
        assert_eq!(worst_span(&times, ms(1000)), 4, "[500 ms, 1500 ms) holds 4");
        assert_eq!(worst_span(&[], ms(1000)), 0);
    }

    #[test]
    fn a_boundary_burst_straddles_the_boundary_evenly() {
        let burst = boundary_burst(ms(1000), ms(50), 4);
        assert_eq!(burst, [ms(950), ms(975), ms(1000), ms(1025)]);
    }

    #[test]
    fn burst_then_steady_is_sorted_and_stops_before_the_end() {
        let arrivals = burst_then_steady(ms(1000), (ms(50), 4), 10, ms(1300));
        assert_eq!(
            arrivals,
            [950, 975, 1000, 1025, 1050, 1150, 1250].map(ms),
            "the burst straddles 1000 ms, then one every 100 ms from its end until 1300 ms"
        );
    }

    #[test]
    fn next_arrival_never_goes_back_in_time() {
        crate::property::for_seeds(200, |rng| {
            let window = random_window(rng);
            let mut t = Duration::ZERO;
            for _ in 0..50 {
                let next = next_arrival(rng, t, window);
                assert!(next >= t);
                t = next;
            }
        });
    }
}
