//! `sdlings list`: topics and exercises with their status, and overall progress.

use anyhow::Result;
use colored::Colorize;

use super::Outcome;
use crate::set::ExerciseSet;
use crate::term::progress_bar;
use crate::workbook::{Progress, Status, Workbook};

pub fn run(workbook: &Workbook) -> Result<Outcome> {
    let (_, set, progress) = workbook.progress()?;
    print!("{}", list_text(workbook, &set, &progress));
    Ok(Outcome::Success)
}

pub fn list_text(workbook: &Workbook, set: &ExerciseSet, progress: &Progress) -> String {
    let info = &workbook.info;
    let mut out = String::new();
    if !set.is_whole_workbook() {
        out.push_str(&format!(
            "{} {} — {}\n\n",
            "Set:".bold(),
            set.name,
            set.title
        ));
    }
    for (topic, members) in progress.topics(info) {
        let topic_info = &info.topics[topic];
        let done = members.iter().filter(|&&i| progress.done[i]).count();
        let locked = members.iter().all(|&i| !progress.is_unlocked(i));
        let lock_note = if locked {
            "  (locked: finish the topics above first)"
                .dimmed()
                .to_string()
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{} {}/{}{lock_note}\n",
            format!("{} · {}", topic_info.dir, topic_info.title).bold(),
            done,
            members.len()
        ));
        for i in members {
            let status = progress.status(i);
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
        progress_bar(progress.done_count(), progress.total(), 30)
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
