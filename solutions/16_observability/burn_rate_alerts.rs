// burn_rate_alerts — page when the error budget burns fast, not on every blip.
//
// An SLO of 99.9% over 30 days allows 0.1% of requests to fail: the error budget. The burn rate is
// how fast it goes: the error ratio divided by 0.1%, so a burn rate of 14.4 spends 2% of a month's
// budget in one hour. Google's SRE workbook pages on multi-window, multi-burn-rate rules: "14.4×
// over the last hour AND over the last 5 minutes", "6× over 6 hours AND 30 minutes". The long
// window ignores a two-minute spike; the short one makes the page stop soon after the fix.
//
// Build `record` (requests counted at the clock's now, forgetting what no window needs),
// `burn_rate` over a window (the requests at times in (now − window, now]) and `firing` (some
// rule burns at least its rate over both of its windows). The property: a short spike does not
// page, a sustained burn pages within minutes, the page stops once the short window recovers,
// and memory stays bounded by the longest window.
//
// Lab: a fortnight with spikes and three incidents through a fixed threshold, a single window
// and the multi-window rules. Turn SPIKES up and count the false pages of each.

use std::collections::VecDeque;
use std::time::Duration;

use sdlings_kit::clock::{Clock, ManualClock};
use sdlings_kit::observability::slo::{lab, timeline};

// ---- Your part -------------------------------------------------------------------------------

/// Page when the burn rate over `long` AND over `short` is at least `burn_rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub long: Duration,
    pub short: Duration,
    pub burn_rate: f64,
}

pub struct BurnRateAlert<C: Clock> {
    clock: C,
    /// The SLO target, e.g. 0.999: the error budget is `1 − slo`.
    slo: f64,
    rules: Vec<Rule>,
    /// `(when, good, bad)` per `record` call, oldest first.
    events: VecDeque<(Duration, u64, u64)>,
}

impl<C: Clock> BurnRateAlert<C> {
    /// Counts `good` and `bad` requests at the clock's now, and drops the events that no rule's
    /// window can still see.
    pub fn record(&mut self, good: u64, bad: u64) {
        let now = self.clock.now();
        self.events.push_back((now, good, bad));
        // The longest window of any rule (not the first rule's, not the short ones) bounds
        // what must be kept.
        let keep = self
            .rules
            .iter()
            .map(|r| r.long.max(r.short))
            .max()
            .unwrap_or_default();
        if let Some(horizon) = now.checked_sub(keep) {
            while self.events.front().is_some_and(|&(at, _, _)| at <= horizon) {
                self.events.pop_front();
            }
        }
    }

    /// The burn rate over the requests recorded at times in `(now − window, now]`: their error
    /// ratio divided by the error budget. 0 when there were no requests.
    pub fn burn_rate(&self, window: Duration) -> f64 {
        let now = self.clock.now();
        let (mut good, mut bad) = (0, 0);
        // Newest first, stopping at the window's (excluded) start.
        for &(at, g, b) in self.events.iter().rev() {
            if now.checked_sub(window).is_some_and(|start| at <= start) {
                break;
            }
            good += g;
            bad += b;
        }
        if good + bad == 0 {
            return 0.0; // no traffic burns no budget (and 0/0 would be NaN)
        }
        (bad as f64 / (good + bad) as f64) / (1.0 - self.slo)
    }

    /// Whether any rule pages now: its burn rate reached over both its long and short window.
    pub fn firing(&self) -> bool {
        self.rules.iter().any(|r| {
            self.burn_rate(r.long) >= r.burn_rate && self.burn_rate(r.short) >= r.burn_rate
        })
    }
}

// ---- Given -----------------------------------------------------------------------------------

impl<C: Clock> BurnRateAlert<C> {
    pub fn new(clock: C, slo: f64, rules: Vec<Rule>) -> Self {
        assert!(
            slo > 0.0 && slo < 1.0,
            "an SLO target is a ratio between 0 and 1"
        );
        BurnRateAlert {
            clock,
            slo,
            rules,
            events: VecDeque::new(),
        }
    }

    /// How many events are held (the memory bound).
    pub fn stored(&self) -> usize {
        self.events.len()
    }
}

/// The SRE workbook's two paging rules.
pub fn paging_rules() -> Vec<Rule> {
    let min = |m: u64| Duration::from_secs(60 * m);
    vec![
        Rule {
            long: min(60),
            short: min(5),
            burn_rate: 14.4,
        },
        Rule {
            long: min(360),
            short: min(30),
            burn_rate: 6.0,
        },
    ]
}

// ---- Lab -------------------------------------------------------------------------------------

/// The SLO target.
const SLO: f64 = 0.999;
/// Harmless two-minute spikes of 20–40% errors in the fortnight.
const SPIKES: usize = 12;

fn main() {
    let (minutes, incidents) = timeline(16, 14, 1_000, SPIKES);
    let min = |m: u64| Duration::from_secs(60 * m);
    let configs = [
        (
            "fixed: >1% errors over 5 min",
            vec![Rule {
                long: min(5),
                short: min(5),
                burn_rate: 10.0,
            }],
        ),
        (
            "single window: 14.4× over 1 h",
            vec![Rule {
                long: min(60),
                short: min(60),
                burn_rate: 14.4,
            }],
        ),
        ("multi-window, multi-burn-rate", paging_rules()),
    ];
    let rules = configs
        .into_iter()
        .map(|(name, rules)| {
            let clock = ManualClock::new();
            let mut alert = BurnRateAlert::new(clock.clone(), SLO, rules);
            let run: Box<dyn FnMut(Duration, u64, u64) -> bool> =
                Box::new(move |now, good, bad| {
                    clock.set(now);
                    alert.record(good, bad);
                    alert.firing()
                });
            (name, run)
        })
        .collect();
    println!("14 days at 1000 req/min, SLO {SLO}, {SPIKES} two-minute spikes");
    lab(&minutes, &incidents, rules);
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit::property::for_seeds;

    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn alert(slo: f64, rules: Vec<Rule>) -> (ManualClock, BurnRateAlert<ManualClock>) {
        let clock = ManualClock::new();
        (clock.clone(), BurnRateAlert::new(clock, slo, rules))
    }

    /// A minute of 1000 requests at `error_ratio`, recorded at the end of the minute.
    fn minute(clock: &ManualClock, a: &mut BurnRateAlert<ManualClock>, error_ratio: f64) {
        clock.advance(MIN);
        let bad = (1_000.0 * error_ratio).round() as u64;
        a.record(1_000 - bad, bad);
    }

    #[test]
    fn the_burn_rate_is_the_error_ratio_over_the_budget() {
        let (clock, mut a) = alert(0.5, paging_rules());
        clock.advance(MIN);
        a.record(3, 1);
        assert_eq!(
            a.burn_rate(MIN),
            0.5,
            "1 bad of 4 requests is 25%; the budget is 50%: half the budget rate (not 1/3: bad over all, not over good)"
        );
        let (clock, mut a) = alert(0.999, paging_rules());
        clock.advance(MIN);
        a.record(980, 20);
        let burn = a.burn_rate(60 * MIN);
        assert!(
            (burn - 20.0).abs() < 1e-9,
            "2% errors against a 0.1% budget burn 20× (got {burn})"
        );
    }

    #[test]
    fn no_requests_burn_nothing() {
        let (clock, mut a) = alert(0.999, paging_rules());
        assert_eq!(
            a.burn_rate(60 * MIN),
            0.0,
            "nothing recorded: a burn rate of 0, not NaN"
        );
        assert!(!a.firing());
        clock.advance(MIN);
        a.record(0, 0);
        assert_eq!(a.burn_rate(5 * MIN), 0.0, "zero requests: 0, not NaN");
        assert!(!a.firing());
    }

    #[test]
    fn a_window_holds_exactly_the_requests_in_now_minus_window_to_now() {
        let (clock, mut a) = alert(0.5, paging_rules());
        a.record(0, 1); // at t = 0
        clock.advance(5 * MIN - Duration::from_secs(1));
        assert_eq!(
            a.burn_rate(5 * MIN),
            2.0,
            "at 4:59 the failure at 0:00 is in the last 5 minutes"
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            a.burn_rate(5 * MIN),
            0.0,
            "at 5:00 it is exactly 5 minutes old: out of (now − 5 min, now]"
        );
        assert_eq!(a.burn_rate(6 * MIN), 2.0, "but still in the last 6 minutes");
    }

    #[test]
    fn a_rule_pages_at_exactly_its_burn_rate() {
        let rule = Rule {
            long: 10 * MIN,
            short: MIN,
            burn_rate: 1.0,
        };
        let (clock, mut a) = alert(0.5, vec![rule]);
        clock.advance(MIN);
        a.record(1, 1);
        assert!(
            a.firing(),
            "50% errors on a 50% budget is a burn rate of exactly 1.0: at least the rule's 1.0, so it pages"
        );
    }

    #[test]
    fn a_two_minute_spike_does_not_page() {
        let (clock, mut a) = alert(0.999, paging_rules());
        for m in 0..300 {
            let ratio = if (120..122).contains(&m) { 0.2 } else { 0.0 };
            minute(&clock, &mut a, ratio);
            assert!(
                !a.firing(),
                "minute {m}: 2 minutes at 20% errors burn 200× over 5 min and 30 min but only 6.7× \
                 over the hour and about 1.3× over the 5 hours seen: no rule burns over both windows"
            );
        }
    }

    #[test]
    fn a_sustained_burn_pages_within_minutes_and_stops_when_the_short_window_recovers() {
        let rule = paging_rules()[0];
        let (clock, mut a) = alert(0.999, vec![rule]);
        for _ in 0..120 {
            minute(&clock, &mut a, 0.0);
        }
        let mut first = None;
        for m in 1..=30 {
            minute(&clock, &mut a, 0.1);
            if a.firing() && first.is_none() {
                first = Some(m);
            }
        }
        assert_eq!(
            first,
            Some(9),
            "10% errors burn 100×: the last 5 minutes at once, the last hour at 9 minutes \
             (900 bad of 60 000 = 15×; at 8 minutes 13.3× is still under 14.4)"
        );
        for m in 1..=5 {
            minute(&clock, &mut a, 0.0);
            let long = a.burn_rate(rule.long);
            assert!(
                long > 14.4,
                "the hour still burns {long}× after the fix: the long window alone would page for ages"
            );
            assert_eq!(
                a.firing(),
                m < 5,
                "{m} good minutes after the fix: the page stops once the 5-minute window holds no \
                 failure (the long window still burns)"
            );
        }
    }

    #[test]
    fn memory_is_bounded_by_the_longest_window_of_any_rule() {
        let rules = vec![
            Rule {
                long: 10 * MIN,
                short: MIN,
                burn_rate: 10.0,
            },
            Rule {
                long: 120 * MIN,
                short: 10 * MIN,
                burn_rate: 3.0,
            },
        ];
        let (clock, mut a) = alert(0.99, rules);
        for m in 0..1_000 {
            minute(&clock, &mut a, if m < 200 { 0.05 } else { 0.0 });
            assert!(
                a.stored() <= 121,
                "minute {m}: {} events held; a 2-hour window needs 120 one-minute events",
                a.stored()
            );
        }
        assert!(
            a.stored() >= 120,
            "the 2-hour rule still needs its 120 minutes"
        );
    }

    /// The rule, by brute force over every event ever recorded.
    fn model_burn(
        events: &[(Duration, u64, u64)],
        now: Duration,
        window: Duration,
        slo: f64,
    ) -> f64 {
        let (mut good, mut bad) = (0, 0);
        for &(at, g, b) in events {
            if at <= now && at + window > now {
                good += g;
                bad += b;
            }
        }
        if good + bad == 0 {
            0.0
        } else {
            bad as f64 / (good + bad) as f64 / (1.0 - slo)
        }
    }

    #[test]
    fn matches_the_rules_over_slos_windows_and_traffic() {
        for_seeds(150, |rng| {
            let slo = [0.9, 0.99, 0.995, 0.999, 0.9995][rng.random_range(0..5)];
            let rules: Vec<Rule> = (0..rng.random_range(1..4))
                .map(|_| {
                    let long = Duration::from_secs(rng.random_range(2..600) * 60);
                    let short = long / rng.random_range(1..20);
                    Rule {
                        long,
                        short,
                        burn_rate: rng.random_range(1.0..20.0),
                    }
                })
                .collect();
            let (clock, mut a) = alert(slo, rules.clone());
            let mut events = Vec::new();
            let mut error_ratio = 0.0;
            for step in 0..400 {
                clock.advance(Duration::from_secs(rng.random_range(0..300)));
                if rng.random_bool(0.05) {
                    error_ratio = [0.0, 0.0, 0.3 * (1.0 - slo), 5.0 * (1.0 - slo), 0.5]
                        [rng.random_range(0..5)];
                }
                let total = rng.random_range(0..2_000);
                let bad =
                    ((total as f64 * error_ratio * rng.random_range(0.5..1.5)) as u64).min(total);
                a.record(total - bad, bad);
                let now = clock.now();
                events.push((now, total - bad, bad));
                let longest = rules.iter().map(|r| r.long.max(r.short)).max().unwrap();
                // The model forgets what no window can see any more (time only moves on), which
                // keeps this test fast; what it keeps is exactly what the alert may hold.
                events.retain(|e| e.0 + longest > now);
                let visible = events.len();
                assert!(
                    a.stored() <= visible + 1,
                    "step {step}: {} events held, but only {visible} are in the longest window \
                     ({longest:?}): drop every event no window can see, however far time jumped",
                    a.stored()
                );
                let mut near = false;
                let mut want = false;
                for r in &rules {
                    let (l, s) = (
                        model_burn(&events, now, r.long, slo),
                        model_burn(&events, now, r.short, slo),
                    );
                    let got = a.burn_rate(r.long);
                    assert!(
                        (got - l).abs() <= 1e-9 * l.max(1.0),
                        "step {step}, SLO {slo}, window {:?}: burn rate {got}, expected {l}",
                        r.long
                    );
                    near |= (l - r.burn_rate).abs() < 1e-6 || (s - r.burn_rate).abs() < 1e-6;
                    want |= l >= r.burn_rate && s >= r.burn_rate;
                }
                if !near {
                    assert_eq!(
                        a.firing(),
                        want,
                        "step {step}, SLO {slo}, rules {rules:?}: pages iff some rule burns over both windows"
                    );
                }
            }
        });
    }
}
