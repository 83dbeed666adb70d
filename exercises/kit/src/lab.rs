//! Printing a lab's figures: a small aligned table and a horizontal bar chart.
//!
//! Labs print what an engineer would look at on a dashboard. These helpers keep that output
//! consistent across exercises so the learner's eye knows where to look.

use std::fmt::Display;

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
}
