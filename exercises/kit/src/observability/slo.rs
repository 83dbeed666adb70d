//! A simulated fortnight of a service with a 99.9% SLO: steady traffic, a few harmless two-minute
//! error spikes, and three real incidents (an outage, a fast burn, a slow burn). The lab replays
//! it minute by minute through each alerting rule and prints what an on-call engineer would feel:
//! how fast each incident paged, how long the page lasted after it ended, and the false pages.

use std::time::Duration;

use rand::RngExt;

use crate::lab::Table;
use crate::workload::seeded_rng;

/// One incident of the timeline: `[start, end)` in minutes and its error ratio.
#[derive(Debug, Clone, Copy)]
pub struct Incident {
    pub name: &'static str,
    pub start: u64,
    pub end: u64,
    pub error_ratio: f64,
}

/// Per minute `(good, bad)` requests for `days` days at `rpm` requests a minute, and the incidents.
pub fn timeline(seed: u64, days: u64, rpm: u64, spikes: usize) -> (Vec<(u64, u64)>, Vec<Incident>) {
    let mut rng = seeded_rng(seed);
    let minutes = days * 1_440;
    let day = |d: f64| (d * 1_440.0) as u64;
    let incidents = vec![
        Incident {
            name: "outage (30% errors, 20 min)",
            start: day(3.3),
            end: day(3.3) + 20,
            error_ratio: 0.30,
        },
        Incident {
            name: "fast burn (20×, 3 h)",
            start: day(7.6),
            end: day(7.6) + 180,
            error_ratio: 0.02,
        },
        Incident {
            name: "slow burn (8×, 12 h)",
            start: day(11.2),
            end: day(11.2) + 720,
            error_ratio: 0.008,
        },
    ];
    let mut ratio: Vec<f64> = (0..minutes)
        .map(|_| rng.random_range(0.0..0.0006))
        .collect();
    for _ in 0..spikes {
        let at = rng.random_range(0..minutes - 2) as usize;
        let r = rng.random_range(0.2..0.4);
        ratio[at] = r;
        ratio[at + 1] = r;
    }
    for i in &incidents {
        for r in &mut ratio[i.start as usize..i.end as usize] {
            *r = i.error_ratio;
        }
    }
    let minutes = ratio
        .iter()
        .map(|&r| {
            let bad = (rpm as f64 * r * rng.random_range(0.8..1.2)).round() as u64;
            (rpm - bad.min(rpm), bad.min(rpm))
        })
        .collect();
    (minutes, incidents)
}

/// One alerting rule under test: records a minute `(now, good, bad)` and says whether it pages.
pub type Alert<'a> = Box<dyn FnMut(Duration, u64, u64) -> bool + 'a>;

/// Replays the timeline through each rule (`alert(now, good, bad)` records one minute and says
/// whether it pages now) and prints, per rule: minutes from each incident's start to its page
/// ("missed" if none before the incident ended plus an hour), minutes it kept paging after the
/// incident ended, and pages that started outside any incident.
pub fn lab(timeline: &[(u64, u64)], incidents: &[Incident], rules: Vec<(&str, Alert<'_>)>) {
    for i in incidents {
        println!("incident: {} from minute {}", i.name, i.start);
    }
    let mut header = vec!["rule".to_string()];
    for i in incidents {
        header.push(format!(
            "{}: detect / after",
            i.name.split(' ').next().unwrap_or("")
        ));
    }
    header.push("false pages".into());
    let mut table = Table::new(&header);
    for (name, mut alert) in rules {
        let firing: Vec<bool> = timeline
            .iter()
            .enumerate()
            .map(|(m, &(good, bad))| alert(Duration::from_secs(60 * (m as u64 + 1)), good, bad))
            .collect();
        let during = |m: u64| incidents.iter().any(|i| m >= i.start && m < i.end + 60);
        let mut row = vec![name.to_string()];
        for i in incidents {
            let detect = (i.start..i.end + 60).find(|&m| firing[m as usize]);
            let after = (i.end..)
                .take_while(|&m| (m as usize) < firing.len() && firing[m as usize])
                .count();
            row.push(match detect {
                Some(m) => format!("{} min / {after} min", m - i.start + 1),
                None => "missed".into(),
            });
        }
        let false_pages = (0..firing.len())
            .filter(|&m| firing[m] && (m == 0 || !firing[m - 1]) && !during(m as u64))
            .count();
        row.push(false_pages.to_string());
        table.row(&row);
    }
    table.print();
}
