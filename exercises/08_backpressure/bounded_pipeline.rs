// Bounded pipeline — stages joined by bounded channels, so a slow consumer slows the producer.
//
// A log shipper reads, parses, enriches and sends lines to a search cluster. The day the cluster
// slows down tenfold, a pipeline joined by unbounded queues keeps reading at full speed: the
// queue in front of the slow stage grows until the process runs out of memory. Bounded channels
// make a writer wait when full, and the wait travels back to the producer: backpressure.
//
// Build `spawn_pipeline`: one task per stage, in order, joined by channels of `capacity`. The
// property: items come out once each and in order; the items between producer and sink never
// exceed the channels' capacities plus one in hand per stage; dropping the producer's sender
// drains every item and then closes the output; an error or a panic in a stage ends the whole
// pipeline (closing its input and output) and `done` says which stage failed, never a hang.
//
// Lab: a fast producer and a slow sink; turn CAPACITIES up and watch memory and latency grow
// while the throughput stays the sink's.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sdlings_kit::backpressure::flow;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// One stage: an async function of an item, which may fail.
pub type Stage =
    Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send>> + Send + Sync>;

/// How a pipeline ended badly: which stage (0 = first) and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Error { stage: usize, message: String },
    Panic { stage: usize },
}

/// A running pipeline: its output, and the task that reports how it ended once every stage has.
pub struct Pipeline {
    pub output: mpsc::Receiver<u64>,
    pub done: JoinHandle<Result<(), Failure>>,
}

// ---- Your part -------------------------------------------------------------------------------

/// Spawns one task per stage, joined by channels of `capacity` (at least 1), from `input` to
/// the returned output.
pub fn spawn_pipeline(input: mpsc::Receiver<u64>, stages: Vec<Stage>, capacity: usize) -> Pipeline {
    let _ = input; // (only silences "unused variable" until you use `input`: delete it)
    todo!(
        "{} stages joined by channels of {capacity}, and a task reporting how they ended",
        stages.len()
    )
}

// ---- Lab -------------------------------------------------------------------------------------

/// Channel capacities to compare, the items and the pace of the producer and of the sink.
const CAPACITIES: [usize; 4] = [1, 8, 64, 1_024];
const ITEMS: u64 = 1_000;
const PRODUCE_EVERY: Duration = Duration::from_millis(1);
const SINK_EVERY: Duration = Duration::from_millis(10);
/// Stages, each taking this long per item.
const STAGES: usize = 3;
const STAGE_TIME: Duration = Duration::from_millis(2);

fn main() {
    flow::lab(
        &CAPACITIES,
        STAGES,
        ITEMS,
        PRODUCE_EVERY,
        SINK_EVERY,
        |rx, capacity| {
            let stage: Stage = Arc::new(|x| {
                Box::pin(async move {
                    tokio::time::sleep(STAGE_TIME).await;
                    Ok(x)
                })
            });
            spawn_pipeline(rx, vec![stage; STAGES], capacity).output
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;
    use sdlings_kit::lab::simulated_runtime;
    use tokio::time::{sleep, timeout};

    const MS: Duration = Duration::from_millis(1);

    /// A stage that takes `delay(item)` and maps the item with `f`, failing with `Err` when
    /// `f` does.
    fn stage(
        delay: impl Fn(u64) -> Duration + Send + Sync + 'static,
        f: impl Fn(u64) -> Result<u64, String> + Send + Sync + 'static,
    ) -> Stage {
        let (delay, f) = (Arc::new(delay), Arc::new(f));
        Arc::new(move |x| {
            let (delay, f) = (delay.clone(), f.clone());
            Box::pin(async move {
                sleep(delay(x)).await;
                f(x)
            })
        })
    }

    fn plus(n: u64) -> Stage {
        stage(|_| MS, move |x| Ok(x + n))
    }

    async fn collect(output: &mut mpsc::Receiver<u64>) -> Vec<u64> {
        let mut items = Vec::new();
        while let Some(x) = output.recv().await {
            items.push(x);
        }
        items
    }

    #[tokio::test(start_paused = true)]
    async fn items_pass_every_stage_once_and_in_order() {
        let (tx, rx) = mpsc::channel(4);
        // Stage 0 takes longer for even items: a pipeline that processes items concurrently
        // would let odd ones overtake.
        let slow_evens = stage(|x| if x % 2 == 0 { 5 * MS } else { MS }, |x| Ok(x * 10));
        let mut p = spawn_pipeline(rx, vec![slow_evens, plus(1)], 2);
        tokio::spawn(async move {
            for i in 0..20 {
                tx.send(i).await.unwrap();
            }
        });
        let expected: Vec<u64> = (0..20).map(|i| i * 10 + 1).collect();
        assert_eq!(
            collect(&mut p.output).await,
            expected,
            "x × 10 + 1, in input order"
        );
        assert_eq!(
            p.done.await.unwrap(),
            Ok(()),
            "the producer finished: a clean end"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_sink_pauses_the_producer_and_memory_stays_within_the_capacities() {
        // Producer: an item per ms; 3 fast stages, channels of 2; sink: 10 ms per item.
        let flow = flow::run(300, 1, MS, 10 * MS, |rx| {
            spawn_pipeline(rx, vec![plus(0), plus(0), plus(0)], 2).output
        })
        .await;
        assert_eq!(
            flow.received,
            (0..300).collect::<Vec<_>>(),
            "nothing lost, nothing repeated"
        );
        let bound = 1 + 3 * 2 + 3;
        assert!(
            flow.peak_in_flight <= bound,
            "between producer and sink at most the input channel (1) + 3 channels of 2 + one \
             item in hand per stage (3) = {bound}, got {}: is some queue unbounded or larger \
             than `capacity`?",
            flow.peak_in_flight
        );
        assert!(
            flow.peak_in_flight >= 6,
            "the buffers do fill up when the sink is slow (peak {})",
            flow.peak_in_flight
        );
        assert!(
            flow.producer_done >= 2_800 * MS,
            "the producer is paused by the sink's pace: 300 items at 10 ms each, so its last \
             send completes near 3 s, got {:?}",
            flow.producer_done
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_producer_drains_every_item_then_closes_the_output() {
        let (tx, rx) = mpsc::channel(8);
        let mut p = spawn_pipeline(rx, vec![plus(1), plus(1)], 3);
        for i in 0..8 {
            tx.send(i).await.unwrap();
        }
        drop(tx);
        sleep(100 * MS).await;
        assert_eq!(
            collect(&mut p.output).await,
            (2..10).collect::<Vec<_>>(),
            "the input ended: every item still in the pipeline comes out, then the output ends"
        );
        assert_eq!(p.done.await.unwrap(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_in_a_stage_ends_the_pipeline_and_says_which_stage() {
        let (tx, rx) = mpsc::channel(2);
        let failing = stage(
            |_| MS,
            |x| {
                if x == 5 {
                    Err(format!("bad {x}"))
                } else {
                    Ok(x)
                }
            },
        );
        // The last stage is slow and holds a token: it is dropped when its task ends.
        let token = Arc::new(());
        let alive = Arc::downgrade(&token);
        let last = stage(
            move |_| {
                let _held = &token;
                20 * MS
            },
            Ok,
        );
        let Pipeline { mut output, done } = spawn_pipeline(rx, vec![plus(0), failing, last], 2);
        let producer = tokio::spawn(async move {
            let mut sent = 0;
            // One item per ms: a producer that never waits would never let a timer fire.
            while tx.send(sent).await.is_ok() {
                sent += 1;
                sleep(MS).await;
            }
            sent
        });
        let out = tokio::spawn(async move { collect(&mut output).await });
        let failure = Failure::Error {
            stage: 1,
            message: "bad 5".into(),
        };
        assert_eq!(
            timeout(Duration::from_secs(10), done)
                .await
                .unwrap()
                .unwrap(),
            Err(failure),
            "done names the stage and the error"
        );
        assert_eq!(
            alive.strong_count(),
            0,
            "done reports once every stage has ended, the slow last one too"
        );
        assert_eq!(
            timeout(Duration::from_secs(10), out)
                .await
                .unwrap()
                .unwrap(),
            [0, 1, 2, 3, 4],
            "the items before the failing one come out, then the output closes (no hang)"
        );
        let sent = timeout(Duration::from_secs(10), producer).await;
        assert!(
            matches!(sent, Ok(Ok(n)) if n < 20),
            "the pipeline must close its input so the producer stops, not swallow its items \
             forever: {sent:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_in_a_stage_ends_the_pipeline_instead_of_hanging() {
        let (tx, rx) = mpsc::channel(2);
        let panics = stage(|_| MS, |x| if x == 3 { panic!("stage bug") } else { Ok(x) });
        let mut p = spawn_pipeline(rx, vec![panics, plus(0)], 2);
        tokio::spawn(async move {
            for i in 0.. {
                if tx.send(i).await.is_err() {
                    break;
                }
                sleep(MS).await;
            }
        });
        let out = timeout(Duration::from_secs(10), collect(&mut p.output)).await;
        assert_eq!(
            out,
            Ok(vec![0, 1, 2]),
            "the items before the panic, then the end"
        );
        let done = timeout(Duration::from_secs(10), p.done).await;
        assert!(
            matches!(done, Ok(Ok(Err(Failure::Panic { stage: 0 })))),
            "done reports the panic of stage 0, got {done:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_consumer_that_goes_away_stops_the_pipeline_cleanly() {
        let (tx, rx) = mpsc::channel(2);
        let p = spawn_pipeline(rx, vec![plus(0), plus(0)], 1);
        drop(p.output);
        let producer = tokio::spawn(async move {
            let mut sent = 0u64;
            // One item per ms: a producer that never waits would never let a timer fire.
            while tx.send(sent).await.is_ok() {
                sent += 1;
                sleep(MS).await;
            }
            sent
        });
        let sent = timeout(Duration::from_secs(10), producer).await;
        assert!(
            matches!(sent, Ok(Ok(n)) if n < 10),
            "the producer is told to stop: {sent:?}"
        );
        assert_eq!(p.done.await.unwrap(), Ok(()), "nobody failed: a clean end");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pipeline_without_stages_passes_items_straight_through() {
        let (tx, rx) = mpsc::channel(4);
        let mut p = spawn_pipeline(rx, vec![], 4);
        tx.send(7).await.unwrap();
        drop(tx);
        assert_eq!(collect(&mut p.output).await, [7]);
        assert_eq!(p.done.await.unwrap(), Ok(()));
    }

    #[test]
    fn order_and_the_memory_bound_hold_for_any_stages_and_capacities() {
        sdlings_kit::property::for_seeds(30, |rng| {
            let n = rng.random_range(1..5);
            let capacity = rng.random_range(1..4);
            let input = rng.random_range(1..3);
            let stages: Vec<Stage> = (0..n)
                .map(|_| {
                    let slow = rng.random_range(1..4);
                    stage(move |x| ((x % slow + 1) as u32) * MS, Ok)
                })
                .collect();
            let flow = simulated_runtime().block_on(flow::run(60, input, MS, 5 * MS, |rx| {
                spawn_pipeline(rx, stages, capacity).output
            }));
            let bound = (input + n * (capacity + 1)) as u64;
            assert_eq!(
                flow.received,
                (0..60).collect::<Vec<_>>(),
                "{n} stages of {capacity}"
            );
            assert!(
                flow.peak_in_flight <= bound,
                "{n} stages, channels of {capacity}, input {input}: at most {bound} in flight, \
                 got {}",
                flow.peak_in_flight
            );
        });
    }
}
