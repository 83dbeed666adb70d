// tail_sampling — keep the traces worth reading: every failure and the slowest, on a 1% budget.
//
// A busy service produces millions of traces a day; storing them all costs more than the service.
// Head sampling decides when a trace starts (keep 1%, by trace id), so it keeps 1% of the errors
// and 1% of the slow requests: exactly the traces an engineer opens during an incident are gone.
// A tail sampler (the OpenTelemetry Collector's `tail_sampling` processor) buffers spans until
// each trace is complete, then decides on the whole trace.
//
// Build `tail_sample`: from a batch of finished spans (traces interleaved), keep all the spans of
// every trace that has an error span, plus the slowest ⌈budget × traces⌉ traces (budget in basis
// points, 100 bp = 1%; a trace's latency is its longest span; equal latencies go to the smaller
// trace id). The property: the decision is per trace (all spans or none), every error trace is
// kept, the slowest traces are kept, and nothing else.
//
// Lab: head vs tail sampling on 100 000 traces. Turn BUDGET_BP and watch the errors kept by head
// sampling follow the budget while tail sampling keeps them all (and skews the p99 it shows).

pub use sdlings_kit::observability::traces::Span;
use sdlings_kit::observability::traces::{compare, generate, head_sample};

// ---- Your part -------------------------------------------------------------------------------

/// The spans of the kept traces, in their input order: every trace with an error span, and the
/// slowest `⌈budget_bp × traces / 10 000⌉` traces (latency: the longest span; ties: the smaller
/// trace id first), where `traces` counts distinct trace ids.
pub fn tail_sample(spans: &[Span], budget_bp: u64) -> Vec<Span> {
    use std::collections::{HashMap, HashSet};

    // First pass: the whole of every trace, summarised (its latency and whether it failed).
    let mut traces: HashMap<u64, (u64, bool)> = HashMap::new();
    for s in spans {
        let (latency, failed) = traces.entry(s.trace_id).or_default();
        *latency = (*latency).max(s.duration_us);
        *failed |= s.error;
    }
    // The slow budget is a share of traces, not of spans, rounded up so a small batch keeps one.
    let slow_budget = (traces.len() as u64 * budget_bp).div_ceil(10_000) as usize;
    let mut by_latency: Vec<(u64, u64)> = traces.iter().map(|(&id, &(l, _))| (l, id)).collect();
    // Slowest first; among equal latencies the smaller id, so the choice never depends on the
    // hash map's order.
    by_latency.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let keep: HashSet<u64> = by_latency
        .iter()
        .take(slow_budget)
        .map(|&(_, id)| id)
        .chain(traces.iter().filter(|(_, t)| t.1).map(|(&id, _)| id))
        .collect();
    // Second pass: one decision per trace, applied to all of its spans.
    spans
        .iter()
        .copied()
        .filter(|s| keep.contains(&s.trace_id))
        .collect()
}

// ---- Lab -------------------------------------------------------------------------------------

/// Requests (traces) in the lab's batch.
const TRACES: usize = 100_000;
/// The share of requests that fail somewhere.
const ERROR_RATE: f64 = 0.003;
/// The sampling budget in basis points (100 = 1%).
const BUDGET_BP: u64 = 100;

fn main() {
    let spans = generate(16, TRACES, ERROR_RATE);
    println!(
        "{TRACES} traces, {} spans, {ERROR_RATE} of them failing; budget {BUDGET_BP} bp",
        spans.len()
    );
    compare(
        &spans,
        &[
            ("head (by trace id)", head_sample(&spans, BUDGET_BP)),
            ("tail (yours)", tail_sample(&spans, BUDGET_BP)),
        ],
    );
    println!(
        "tail sampling keeps what an incident needs; but the kept traces are the slow ones, so"
    );
    println!(
        "their p99 says nothing about the service's: read percentiles from metrics, not samples."
    );
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use rand::seq::{IndexedRandom, SliceRandom};
    use sdlings_kit::property::for_seeds;

    use super::*;

    fn span(trace_id: u64, span_id: u64, duration_us: u64, error: bool) -> Span {
        Span {
            trace_id,
            span_id,
            duration_us,
            error,
        }
    }

    fn trace_ids(spans: &[Span]) -> Vec<u64> {
        let mut ids: Vec<u64> = spans.iter().map(|s| s.trace_id).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The rule, brute force: rank every trace, take the top of the ranking and the errors.
    fn model(spans: &[Span], budget_bp: u64) -> Vec<Span> {
        let ids = trace_ids(spans);
        let latency = |id: u64| {
            spans
                .iter()
                .filter(|s| s.trace_id == id)
                .map(|s| s.duration_us)
                .max()
                .unwrap()
        };
        let failed = |id: u64| spans.iter().any(|s| s.trace_id == id && s.error);
        let mut ranked = ids.clone();
        ranked.sort_by_key(|&id| (std::cmp::Reverse(latency(id)), id));
        let slow = ((ids.len() as u64 * budget_bp + 9_999) / 10_000) as usize;
        let kept: Vec<u64> = ranked
            .iter()
            .enumerate()
            .filter(|&(rank, &id)| rank < slow || failed(id))
            .map(|(_, &id)| id)
            .collect();
        spans
            .iter()
            .copied()
            .filter(|s| kept.contains(&s.trace_id))
            .collect()
    }

    #[test]
    fn keeps_the_error_trace_and_the_slowest_trace_whole() {
        // Ten traces; trace 7 is the slowest, trace 3 fails in a child span. Budget 10%: one slow trace.
        let mut spans = Vec::new();
        for id in 1..=10 {
            spans.push(span(
                id,
                id * 100,
                1_000 + id * 10 + if id == 7 { 50_000 } else { 0 },
                false,
            ));
            spans.push(span(id, id * 100 + 1, 500, id == 3));
        }
        let kept = tail_sample(&spans, 1_000);
        assert_eq!(
            trace_ids(&kept),
            [3, 7],
            "trace 3 failed, trace 7 is the slowest: 10% of 10 traces is one"
        );
        assert_eq!(
            kept.len(),
            4,
            "both spans of each kept trace, the healthy root of trace 3 included"
        );
    }

    #[test]
    fn an_error_deep_in_a_trace_keeps_every_span_of_it() {
        let spans = [
            span(5, 50, 900, false),
            span(2, 20, 100, false),
            span(5, 51, 50, true),
            span(5, 52, 5, false),
            span(2, 21, 90, true),
            span(8, 80, 70, false),
        ];
        let kept = tail_sample(&spans, 0);
        assert_eq!(
            kept,
            spans[..5],
            "budget 0 keeps only error traces: trace 5 failed in its second span (not its root, not \
             its last), trace 2 in its last, so all their spans are kept, in the order they arrived"
        );
    }

    #[test]
    fn a_traces_latency_is_its_longest_span_not_the_sum_or_the_first() {
        // Trace 1: many short spans (sum 400, longest 100). Trace 2: a short span first, then a 250 one.
        let spans = [
            span(1, 10, 100, false),
            span(1, 11, 100, false),
            span(1, 12, 100, false),
            span(1, 13, 100, false),
            span(2, 20, 10, false),
            span(2, 21, 250, false),
            span(3, 30, 200, false),
        ];
        assert_eq!(
            trace_ids(&tail_sample(&spans, 1)),
            [2],
            "⌈0.01% of 3⌉ = 1 slow trace: trace 2's longest span (250) beats 200 and 100; \
             summing spans would pick trace 1, the first span would pick trace 3"
        );
    }

    #[test]
    fn the_budget_counts_traces_and_rounds_up() {
        // 150 traces of 3 spans each, latencies 1..=150: 1% is 1.5 traces, rounded up to 2.
        let spans: Vec<Span> = (1..=150u64)
            .flat_map(|id| (0..3).map(move |i| span(id, id * 10 + i, id * 7 - i, false)))
            .collect();
        assert_eq!(
            trace_ids(&tail_sample(&spans, 100)),
            [149, 150],
            "⌈1% of 150 traces⌉ = 2 (not 1% of 450 spans)"
        );
        assert_eq!(
            trace_ids(&tail_sample(&spans, 1)).len(),
            1,
            "⌈0.01% of 150⌉ = 1: any non-zero budget keeps one"
        );
        assert_eq!(
            trace_ids(&tail_sample(&spans, 0)),
            Vec::<u64>::new(),
            "no budget, no errors: nothing"
        );
        assert_eq!(
            tail_sample(&spans, 10_000),
            spans,
            "a 100% budget keeps everything"
        );
        assert_eq!(
            tail_sample(&spans, 50_000),
            spans,
            "more than 100% is still everything"
        );
        assert_eq!(tail_sample(&[], 100), [], "no spans, nothing to keep");
    }

    #[test]
    fn error_traces_do_not_use_up_the_slow_budget_twice_and_ties_go_to_the_smaller_id() {
        // 100 traces. Trace 50 is the slowest and failed; traces 20 and 80 tie for second.
        let spans: Vec<Span> = (1..=100u64)
            .map(|id| {
                span(
                    id,
                    id,
                    match id {
                        50 => 9_000,
                        20 | 80 => 5_000,
                        _ => id,
                    },
                    id == 50 || id == 33,
                )
            })
            .collect();
        assert_eq!(
            trace_ids(&tail_sample(&spans, 100)),
            [33, 50],
            "1% of 100 = one slow trace, the slowest of all (50, which also failed), plus the failed 33"
        );
        assert_eq!(
            trace_ids(&tail_sample(&spans, 200)),
            [20, 33, 50],
            "two slow traces: 50, then 20 and 80 tie at 5000 and the smaller id wins"
        );
    }

    #[test]
    fn the_slow_share_is_exact_for_every_whole_percent_and_batch_size() {
        let spans: Vec<Span> = (1..=100u64).map(|id| span(id, id, id, false)).collect();
        for traces in 0..=100 {
            for budget_bp in (0..=100).map(|percent| percent * 100).chain([1, 33, 9_999]) {
                let want = (traces as u64 * budget_bp).div_ceil(10_000);
                assert_eq!(
                    trace_ids(&tail_sample(&spans[..traces], budget_bp)).len() as u64,
                    want,
                    "{traces} traces at {budget_bp} bp keep ⌈{traces} × {budget_bp} / 10 000⌉ = \
                     {want}, computed in integers (a float share rounds up one too many)"
                );
            }
        }
    }

    #[test]
    fn matches_the_rule_over_many_interleaved_batches() {
        for_seeds(300, |rng| {
            let traces = rng.random_range(0..120u64);
            // Few distinct latencies (ties at the budget's edge everywhere) or many.
            let tops: &[u64] = [&[4][..], &[30, 100_000], &[100_000]].choose(rng).unwrap();
            let mut spans = Vec::new();
            for id in 0..traces {
                let trace_id = rng.random_range(0..1_000_000) * 1_000 + id; // distinct, unordered
                for i in 0..rng.random_range(1..5) {
                    let top = *tops.choose(rng).unwrap();
                    let duration_us = rng.random_range(1..top);
                    spans.push(span(trace_id, i, duration_us, rng.random_bool(0.03)));
                }
            }
            spans.shuffle(rng);
            let budget_bp = *[0, 1, 50, 100, 250, 1_000, 3_333, 10_000]
                .choose(rng)
                .unwrap();
            let kept = tail_sample(&spans, budget_bp);
            assert_eq!(
                kept,
                model(&spans, budget_bp),
                "{traces} traces at {budget_bp} bp: every error trace and the ⌈budget × traces⌉ \
                 slowest (longest span, ties to the smaller id), all spans, input order"
            );
            let errors = trace_ids(
                &spans
                    .iter()
                    .copied()
                    .filter(|s| s.error)
                    .collect::<Vec<_>>(),
            )
            .len() as u64;
            assert!(
                trace_ids(&kept).len() as u64
                    <= errors + (trace_ids(&spans).len() as u64 * budget_bp).div_ceil(10_000),
                "the budget holds: at most the error traces plus the slow share"
            );
        });
    }
}
