//! `sdlings list`: topics and exercises with their status, and overall progress.

use anyhow::Result;
use colored::Colorize;

use super::Outcome;
use crate::term::progress_bar;
use crate::workbook::{Progress, Status, Workbook};

pub fn run(workbook: &Workbook) -> Result<Outcome> {
    let state = workbook.store.load()?;
    let progress = Progress::new(&workbook.info, &state);
    print!("{}", list_text(workbook, &progress));
    Ok(Outcome::Success)
}

pub fn list_text(workbook: &Workbook, progress: &Progress) -> String {
    let info = &workbook.info;
    let mut out = String::new();
    for (t, topic) in info.topics.iter().enumerate() {
        let indices: Vec<usize> = info.topic_exercises(t).collect();
        let done = indices.iter().filter(|&&i| progress.done[i]).count();
        let lock_note = if t >= progress.first_locked_topic {
            "  (locked: finish the topics above first)"
                .dimmed()
                .to_string()
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{} {}/{}{lock_note}\n",
            format!("{} · {}", topic.dir, topic.title).bold(),
            done,
            indices.len()
        ));
        for i in indices {
            let status = progress.status(info, i);
            out.push_str(&format!(
                "  {} {:<28} {}\n",
                status_mark(status),
                info.exercises[i].name,
                status_label(status)
            ));
        }
    }
    out.push_str(&format!(
        "\nProgress: {}\n",
        progress_bar(progress.done_count(), info.exercises.len(), 30)
    ));
    out
}

pub fn status_mark(status: Status) -> String {
    match status {
        Status::Done => "✓".green().to_string(),
        Status::Current => "▶".yellow().bold().to_string(),
        Status::Pending => "○".normal().to_string(),
        Status::Locked => "-".dimmed().to_string(),
    }
}

fn status_label(status: Status) -> String {
    match status {
        Status::Done => status.label().green().to_string(),
        Status::Current => status.label().yellow().to_string(),
        Status::Pending => status.label().to_string(),
        Status::Locked => status.label().dimmed().to_string(),
    }
}
