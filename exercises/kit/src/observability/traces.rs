//! Traces for the tail-sampling exercise: a seeded generator of interleaved spans, the head
//! sampler tail sampling is compared with, and the lab's table (latency percentiles from a real
//! HDR histogram).

use std::collections::{HashMap, HashSet};

use hdrhistogram::Histogram;
use rand::RngExt;
use rand::seq::SliceRandom;

use crate::lab::{Table, percent};
use crate::workload::seeded_rng;

/// One finished span, as a collector receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub trace_id: u64,
    pub span_id: u64,
    /// How long the span took, in microseconds.
    pub duration_us: u64,
    /// The span ended in an error.
    pub error: bool,
}

/// `traces` requests, each a trace of 1–8 spans whose latency (the root span, the longest) is
/// log-normal around 20 ms with a slow tail; `error_rate` of the traces have one failing span
/// somewhere inside. The spans of different traces arrive interleaved, as at a collector.
pub fn generate(seed: u64, traces: usize, error_rate: f64) -> Vec<Span> {
    let mut rng = seeded_rng(seed);
    let mut spans = Vec::new();
    for _ in 0..traces {
        let trace_id = rng.random::<u64>() | 1;
        let normal: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
        let slow = if rng.random_bool(0.02) {
            rng.random_range(3.0..20.0)
        } else {
            1.0
        };
        let root = ((20_000.0 * (0.5 * normal).exp() * slow) as u64).max(100);
        let n = rng.random_range(1..=8);
        let failing = rng.random_bool(error_rate).then(|| rng.random_range(0..n));
        for i in 0..n {
            let duration_us = if i == 0 {
                root
            } else {
                rng.random_range(1..=root)
            };
            spans.push(Span {
                trace_id,
                span_id: rng.random(),
                duration_us,
                error: failing == Some(i),
            });
        }
    }
    spans.shuffle(&mut rng);
    spans
}

/// Head sampling: the decision is made when the trace starts, from its id alone (as a
/// `traceparent` sampled flag or OpenTelemetry's TraceIdRatioBased sampler would), before anyone
/// knows whether it will fail or be slow. Keeps about `budget_bp` in 10 000 traces.
pub fn head_sample(spans: &[Span], budget_bp: u64) -> Vec<Span> {
    let keep = |id: u64| id.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 10_000 < budget_bp;
    spans.iter().copied().filter(|s| keep(s.trace_id)).collect()
}

struct Summary {
    traces: usize,
    spans: usize,
    errors: usize,
    slowest: usize,
    p99: u64,
}

fn summarise(kept: &[Span], error_ids: &HashSet<u64>, slowest_ids: &HashSet<u64>) -> Summary {
    let mut latency: HashMap<u64, u64> = HashMap::new();
    for s in kept {
        let l = latency.entry(s.trace_id).or_default();
        *l = (*l).max(s.duration_us);
    }
    let mut hist = Histogram::<u64>::new(3).expect("3 significant figures");
    for &l in latency.values() {
        hist.record(l)
            .expect("an auto-resizing histogram takes any value");
    }
    Summary {
        traces: latency.len(),
        spans: kept.len(),
        errors: latency.keys().filter(|id| error_ids.contains(id)).count(),
        slowest: latency.keys().filter(|id| slowest_ids.contains(id)).count(),
        p99: hist.value_at_quantile(0.99),
    }
}

/// Prints what each sampler kept from `spans`: traces and spans stored, error traces and the
/// slowest 1% of traces kept, and the p99 latency a dashboard built on the kept traces shows.
pub fn compare(spans: &[Span], samplers: &[(&str, Vec<Span>)]) {
    let mut latency: HashMap<u64, u64> = HashMap::new();
    let mut error_ids = HashSet::new();
    for s in spans {
        let l = latency.entry(s.trace_id).or_default();
        *l = (*l).max(s.duration_us);
        if s.error {
            error_ids.insert(s.trace_id);
        }
    }
    let mut by_latency: Vec<(u64, u64)> = latency.iter().map(|(&id, &l)| (l, id)).collect();
    by_latency.sort_unstable_by(|a, b| b.cmp(a));
    let slowest_ids: HashSet<u64> = by_latency[..by_latency.len().div_ceil(100)]
        .iter()
        .map(|&(_, id)| id)
        .collect();
    let all = summarise(spans, &error_ids, &slowest_ids);
    let mut table = Table::new(&[
        "sampler",
        "traces",
        "spans",
        "error traces",
        "slowest 1%",
        "p99 of kept",
    ]);
    let row = |name: &str, s: &Summary, table: &mut Table| {
        table.row(&[
            name.to_string(),
            s.traces.to_string(),
            s.spans.to_string(),
            format!(
                "{} ({})",
                s.errors,
                percent(s.errors as u64, all.errors as u64)
            ),
            format!(
                "{} ({})",
                s.slowest,
                percent(s.slowest as u64, all.slowest as u64)
            ),
            format!("{:.1} ms", s.p99 as f64 / 1000.0),
        ]);
    };
    row("everything", &all, &mut table);
    for (name, kept) in samplers {
        row(name, &summarise(kept, &error_ids, &slowest_ids), &mut table);
    }
    table.print();
}
