//! Running a lab and printing its figures: the runtime socket labs share, an aligned table, a
//! horizontal bar chart, and latencies as text.
//!
//! Labs print what an engineer would look at on a dashboard. These helpers keep that output
//! consistent across exercises so the learner's eye knows where to look.

use std::fmt::Display;
use std::time::Duration;

/// The runtime the socket labs run on: two worker threads (the machine the figures in the
/// exercise headers were measured on had two cores), with timers and sockets enabled.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A table with a header row, printed with aligned columns.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Display>(header: &[S]) -> Self {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; it must have as many cells as the header.
    pub fn row<S: Display>(&mut self, cells: &[S]) -> &mut Self {
        assert_eq!(
            cells.len(),
            self.header.len(),
            "a table row needs one cell per column"
        );
        self.rows
            .push(cells.iter().map(|c| c.to_string()).collect());
        self
    }

    /// The table as text, one line per row, columns separated by two spaces. The first column is
    /// left-aligned (labels), the others right-aligned (numbers).
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|col| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|r| r[col].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, w))| {
                    if i == 0 {
                        format!("{c:<w$}")
                    } else {
                        format!("{c:>w$}")
                    }
                })
                .collect();
            parts.join("  ").trim_end().to_string()
        };
        let mut out = line(&self.header);
        out.push('\n');
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&rule.join("  "));
        for row in &self.rows {
            out.push('\n');
            out.push_str(&line(row));
        }
        out
    }

    pub fn print(&self) {
        println!("{}", self.render());
    }
}

/// A horizontal bar chart: one line per label, bars scaled so the largest value is `width`
/// characters long.
pub fn bar_chart<L: Display>(bars: &[(L, f64)], width: usize) -> String {
    let labels: Vec<String> = bars.iter().map(|(l, _)| l.to_string()).collect();
    let label_width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let max = bars.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max);
    labels
        .iter()
        .zip(bars)
        .map(|(label, (_, value))| {
            let len = if max > 0.0 {
                ((value / max) * width as f64).round() as usize
            } else {
                0
            };
            format!("{label:>label_width$} | {} {value}", "#".repeat(len))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A percentage with one decimal, e.g. `"87.5%"`; `"-"` when there is nothing to divide by.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// The runtime the simulated labs run on: one thread and a paused clock, so time only moves when
/// every task waits on a timer. The lab plays seconds of traffic in milliseconds, and the figures
/// come out the same on every run and every machine.
pub fn simulated_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a tokio runtime")
}

/// A duration in milliseconds with one decimal, e.g. `"12.3 ms"`.
pub fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A duration in whole milliseconds, e.g. `"12 ms"`: for figures where a tenth would be noise.
pub fn whole_millis(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// A latency as text: in µs under a millisecond (a rejection or a fast failure takes
/// microseconds, and "0.0 ms" would hide how much faster it is), in ms otherwise.
pub fn latency(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    } else {
        millis(d)
    }
}

/// The q-quantile (`q` from 0.0 to 1.0) of `sorted` by nearest rank: the smallest sample with at
/// least a share q of all samples at or below it, so always a latency some request really had.
/// `None` when there are no samples. Crate-only: the labs use it, and `percentiles` asks the
/// learner to write this very function, so it must not be callable from an exercise.
pub(crate) fn nearest_rank(sorted: &[Duration], q: f64) -> Option<Duration> {
    debug_assert!(sorted.is_sorted(), "nearest_rank needs sorted samples");
    let exact = q * sorted.len() as f64;
    // A q like 0.07 has no exact binary form: 0.07 × 100 is 7.000000000000001, whose ceiling
    // would be one rank too high. Within a hair of a whole number, take that number.
    let nearest = exact.round();
    let rank = if (exact - nearest).abs() <= 1e-9 * nearest.max(1.0) {
        nearest
    } else {
        exact.ceil()
    } as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// The q-quantile of `latencies` as text (see [`nearest_rank`] and [`latency`]), sorting them in
/// place; `"-"` when there are none.
pub(crate) fn quantile(latencies: &mut [Duration], q: f64) -> String {
    latencies.sort_unstable();
    nearest_rank(latencies, q).map_or_else(|| "-".to_string(), latency)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["capacity", "hit rate"]);
        t.row(&["10", "41.0%"]).row(&["1000", "97.5%"]);
        assert_eq!(
            t.render(),
            "capacity  hit rate\n--------  --------\n10           41.0%\n1000         97.5%"
        );
    }

    #[test]
    fn bar_chart_scales_to_the_largest_value() {
        let chart = bar_chart(&[("a", 10.0), ("bb", 5.0)], 4);
        assert_eq!(chart, " a | #### 10\nbb | ## 5");
    }

    #[test]
    fn percent_handles_zero() {
        assert_eq!(percent(1, 8), "12.5%");
        assert_eq!(percent(0, 0), "-");
    }

    #[test]
    fn nearest_rank_is_a_sample_and_never_under_reports() {
        let ms = Duration::from_millis;
        let sorted: Vec<Duration> = (1..=10).map(ms).collect();
        assert_eq!(nearest_rank(&sorted, 0.0), Some(ms(1)));
        assert_eq!(nearest_rank(&sorted, 0.5), Some(ms(5)));
        assert_eq!(nearest_rank(&sorted, 0.91), Some(ms(10)));
        let hundred: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(
            nearest_rank(&hundred, 0.07),
            Some(ms(7)),
            "0.07 × 100 is a hair above 7"
        );
        assert_eq!(nearest_rank(&sorted, 1.0), Some(ms(10)));
        assert_eq!(nearest_rank(&[], 0.5), None);
    }

    #[test]
    fn latencies_under_a_millisecond_are_shown_in_microseconds() {
        assert_eq!(latency(Duration::from_micros(12)), "12.0 µs");
        assert_eq!(latency(Duration::from_micros(12_345)), "12.3 ms");
        let mut unsorted = [Duration::from_millis(30), Duration::from_millis(10)];
        assert_eq!(quantile(&mut unsorted, 0.5), "10.0 ms");
        assert_eq!(quantile(&mut [], 0.5), "-");
    }
}
