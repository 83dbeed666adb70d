//! Machinery shared by the ids_and_clocks exercises: a wall clock that can step backwards, and one
//! lab driver per exercise (a fleet of id workers with skewed clocks, a sorted index that counts
//! the pages inserts touch, a random message history between nodes, skewed nodes exchanging
//! hybrid timestamps). Nothing here issues an id or orders an event: that is always the
//! learner's code, passed in.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::RngExt;
use rand::rngs::StdRng;

use crate::lab::{Table, percent};

// ---- Wall clocks -------------------------------------------------------------------------------

/// A wall clock: Unix time in milliseconds. Unlike [`crate::clock::Clock`] it may go backwards,
/// as a real one does when NTP steps it, a VM migrates or an operator fixes it by hand.
pub trait WallClock {
    fn now_ms(&self) -> u64;
}

/// A wall clock that reads what it is told, in any direction. Clones share the same reading, so
/// a test keeps one handle and gives another to the component under test.
#[derive(Debug, Clone, Default)]
pub struct StepClock {
    ms: Arc<AtomicU64>,
}

impl StepClock {
    /// A clock reading `ms`.
    pub fn at(ms: u64) -> Self {
        let clock = StepClock::default();
        clock.set(ms);
        clock
    }

    /// Sets the reading to `ms`, earlier or later.
    pub fn set(&self, ms: u64) {
        self.ms.store(ms, Ordering::SeqCst);
    }

    /// Moves the reading forward by `by` ms.
    pub fn advance(&self, by: u64) {
        self.ms.fetch_add(by, Ordering::SeqCst);
    }

    /// Moves the reading back by `by` ms (an NTP step, a VM restored from a snapshot).
    pub fn step_back(&self, by: u64) {
        self.ms.fetch_sub(by, Ordering::SeqCst);
    }
}

impl WallClock for StepClock {
    fn now_ms(&self) -> u64 {
        self.ms.load(Ordering::SeqCst)
    }
}

// ---- Snowflake lab -----------------------------------------------------------------------------

/// The knobs of the snowflake lab.
#[derive(Debug, Clone, Copy)]
pub struct FleetKnobs {
    /// Workers, ids 0..workers, each with its own clock.
    pub workers: u16,
    /// Worker w's clock runs `w × skew_ms` ahead of true time.
    pub skew_ms: u64,
    /// How far the last worker's clock steps back halfway through the run.
    pub step_back_ms: u64,
    /// Id requests each worker gets per true millisecond.
    pub ids_per_ms: u32,
    /// Extra requests worker 0 gets in one millisecond, a quarter into the run.
    pub burst: u32,
    /// True milliseconds simulated.
    pub duration_ms: u64,
}

/// Unix ms at which the lab's true time starts (2026-01-01T00:00:00Z).
pub const LAB_START_MS: u64 = 1_767_225_600_000;

/// Runs a fleet of generators, one per worker, against skewed clocks that step back, and prints
/// per worker what it issued and how long it stalled, then duplicates and ordering across the
/// fleet. `make(worker, clock)` builds a generator; `next` asks it for an id (`Err(until_ms)`:
/// refused until then; the request is retried a millisecond later); `unix_ms(id)` decodes an
/// id's timestamp.
pub fn fleet_lab<G>(
    knobs: FleetKnobs,
    mut make: impl FnMut(u16, StepClock) -> G,
    mut next: impl FnMut(&mut G) -> Result<u64, u64>,
    unix_ms: impl Fn(u64) -> u64,
) {
    let FleetKnobs {
        workers,
        skew_ms,
        step_back_ms,
        ids_per_ms,
        burst,
        duration_ms,
    } = knobs;
    let clocks: Vec<StepClock> = (0..workers).map(|_| StepClock::default()).collect();
    let mut generators: Vec<G> = (0..workers)
        .map(|w| make(w, clocks[usize::from(w)].clone()))
        .collect();
    // (id, true ms, worker) of every id issued.
    let mut issued: Vec<(u64, u64, u16)> = Vec::new();
    let mut stalled = vec![0u64; usize::from(workers)];
    let mut backlog = vec![0u64; usize::from(workers)];
    let mut worst_backlog = vec![0u64; usize::from(workers)];
    for t in 0..duration_ms {
        for w in 0..usize::from(workers) {
            let mut reading = LAB_START_MS + t + w as u64 * skew_ms;
            if w + 1 == usize::from(workers) && t >= duration_ms / 2 {
                reading -= step_back_ms;
            }
            clocks[w].set(reading);
            backlog[w] += u64::from(ids_per_ms);
            if w == 0 && t == duration_ms / 4 {
                backlog[w] += u64::from(burst);
            }
            worst_backlog[w] = worst_backlog[w].max(backlog[w]);
            while backlog[w] > 0 {
                match next(&mut generators[w]) {
                    Ok(id) => {
                        issued.push((id, t, w as u16));
                        backlog[w] -= 1;
                    }
                    Err(_until) => {
                        // Refused: the rest of the backlog waits for the next millisecond.
                        stalled[w] += 1;
                        break;
                    }
                }
            }
        }
    }
    println!(
        "{workers} workers, {ids_per_ms} ids/ms each for {duration_ms} ms; worker w's clock is \
         w x {skew_ms} ms ahead; worker {} steps back {step_back_ms} ms halfway; worker 0 gets a \
         burst of {burst}.\n",
        workers - 1
    );
    let mut table = Table::new(&["worker", "clock", "ids", "stalled ms", "worst backlog"]);
    for w in 0..usize::from(workers) {
        let ids = issued.iter().filter(|i| usize::from(i.2) == w).count();
        let clock = if w + 1 == usize::from(workers) && step_back_ms > 0 {
            format!("+{} ms, then -{step_back_ms}", w as u64 * skew_ms)
        } else {
            format!("+{} ms", w as u64 * skew_ms)
        };
        table.row(&[
            w.to_string(),
            clock,
            ids.to_string(),
            stalled[w].to_string(),
            worst_backlog[w].to_string(),
        ]);
    }
    table.print();
    let distinct: HashSet<u64> = issued.iter().map(|i| i.0).collect();
    let mut by_id = issued.clone();
    by_id.sort_unstable();
    let inversions = by_id.windows(2).filter(|p| p[1].1 < p[0].1).count() as u64;
    // k of "k-sorted": how much earlier (in true time) than some id before it an id was made.
    let mut latest = 0;
    let mut k = 0;
    for &(_, t, _) in &by_id {
        latest = latest.max(t);
        k = k.max(latest - t);
    }
    let worst_error = issued
        .iter()
        .map(|&(id, t, _)| unix_ms(id).abs_diff(LAB_START_MS + t))
        .max()
        .unwrap_or(0);
    println!(
        "\n{} ids, {} duplicates; an id's timestamp is up to {worst_error} ms off true time. Sorted by id, {} of neighbouring pairs are in the opposite \
         true order, and an id can sort after ids made up to {k} ms after it: k-sorted, not \
         sorted, as skew decides the order across workers.",
        issued.len(),
        issued.len() - distinct.len(),
        percent(inversions, issued.len().saturating_sub(1) as u64),
    );
}

// ---- UUIDv7 lab: an index that counts the pages inserts touch ----------------------------------

/// The knobs of the index lab.
#[derive(Debug, Clone, Copy)]
pub struct IndexKnobs {
    /// Keys inserted in all.
    pub keys: usize,
    /// Keys per batch: the pages a batch dirties are written back together.
    pub batch: usize,
    /// Keys a leaf page holds.
    pub page_keys: usize,
}

/// The leaf level of a B+-tree: sorted pages of at most `page_keys` keys. A full page splits in
/// half, except that an insert past the last key of the rightmost page starts a new page and
/// leaves the full one as it is: the rightmost-split rule that makes ever-increasing keys pack
/// pages tightly (PostgreSQL's B-tree leaves the left page at its fillfactor, 90% by default;
/// this model at 100%).
#[derive(Debug)]
pub struct LeafLevel {
    page_keys: usize,
    pages: Vec<Vec<u128>>,
}

impl LeafLevel {
    pub fn new(page_keys: usize) -> Self {
        assert!(page_keys >= 2, "a page holds at least two keys");
        LeafLevel {
            page_keys,
            pages: vec![Vec::new()],
        }
    }

    /// Inserts `key`; returns the index of the page it went into, before any split.
    pub fn insert(&mut self, key: u128) -> usize {
        // The last page whose first key is <= key (or the first page).
        let page = self
            .pages
            .partition_point(|p| p.first().is_some_and(|&f| f <= key));
        let page = page.saturating_sub(1);
        let rightmost = page + 1 == self.pages.len();
        let keys = &mut self.pages[page];
        let at = keys.partition_point(|&k| k < key);
        let rightmost_append = rightmost && at == keys.len();
        if keys.len() == self.page_keys {
            if rightmost_append {
                self.pages.push(vec![key]);
                return page + 1;
            }
            let upper = keys.split_off(self.page_keys / 2);
            self.pages.insert(page + 1, upper);
            return self.insert(key);
        }
        keys.insert(at, key);
        page
    }

    pub fn pages(&self) -> usize {
        self.pages.len()
    }

    /// Keys stored over the room the pages have: 1.0 is every page full.
    pub fn fill(&self) -> f64 {
        let keys: usize = self.pages.iter().map(Vec::len).sum();
        keys as f64 / (self.pages.len() * self.page_keys) as f64
    }
}

/// Inserts `knobs.keys` keys from each source into its own [`LeafLevel`] and prints the pages a
/// batch of inserts touches (each touched page is one page write at the next checkpoint), the
/// pages in the end and how full they are. `v7()` gives the learner's next id as a big-endian
/// integer; the comparison is random version-4 keys.
pub fn index_lab(knobs: IndexKnobs, mut v7: impl FnMut() -> u128) {
    let IndexKnobs {
        keys,
        batch,
        page_keys,
    } = knobs;
    let mut rng = crate::workload::seeded_rng(4);
    let mut v4 = move || {
        let random: u128 = rng.random();
        // Version 4 and variant 0b10, the other 122 bits random.
        random & !(0xF << 76 | 0b11 << 62) | 0x4 << 76 | 0b10 << 62
    };
    println!("{keys} inserts in batches of {batch}, {page_keys} keys per leaf page:\n");
    let mut table = Table::new(&[
        "keys",
        "pages touched per batch (last)",
        "writes per insert",
        "leaf pages",
        "fill",
    ]);
    let sources: [(&str, &mut dyn FnMut() -> u128); 2] = [("v4 random", &mut v4), ("v7", &mut v7)];
    for (name, next) in sources {
        let mut index = LeafLevel::new(page_keys);
        let mut touched_total = 0;
        let mut touched_last = 0;
        for start in (0..keys).step_by(batch) {
            let mut touched = HashSet::new();
            for _ in start..(start + batch).min(keys) {
                // A page split touches the new page too; count the page the key lands on.
                touched.insert(index.insert(next()));
            }
            touched_last = touched.len();
            touched_total += touched.len();
        }
        table.row(&[
            name.to_string(),
            touched_last.to_string(),
            format!("{:.3}", touched_total as f64 / keys as f64),
            index.pages().to_string(),
            format!("{:.0}%", index.fill() * 100.0),
        ]);
    }
    table.print();
    println!(
        "\nA random key lands on any page, so each batch dirties up to one page per insert and \
         the whole index must stay in memory; time-ordered keys all land on the rightmost pages."
    );
}

// ---- Lamport and vector clocks: random message histories ---------------------------------------

/// A node's name in a message history.
pub type NodeId = u32;

/// How two events relate: `a.compare(b) == Before` means a happened before b.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Causality {
    Before,
    After,
    /// The same event (or two clocks with the same reading).
    Equal,
    /// Neither happened before the other.
    Concurrent,
}

/// One event of a message history, in the order the events happened (any order a real run could
/// produce: a message is received after it was sent, but messages overtake each other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Something happened at a node, with no message.
    Local(NodeId),
    /// `from` sends message number `msg` (0, 1, 2... in the order sent) to `to`.
    Send {
        from: NodeId,
        to: NodeId,
        msg: usize,
    },
    /// `to` receives message number `msg`.
    Receive { to: NodeId, msg: usize },
}

impl Step {
    /// The node the event happens at.
    pub fn node(&self) -> NodeId {
        match *self {
            Step::Local(n) | Step::Send { from: n, .. } | Step::Receive { to: n, .. } => n,
        }
    }
}

/// A random history of `steps` events between `nodes`: each step receives a random message in
/// flight (any of them, not the oldest), or a random node sends to another with probability
/// `send_share`, or does something local. Some messages are never received.
pub fn random_history(
    rng: &mut StdRng,
    nodes: &[NodeId],
    steps: usize,
    send_share: f64,
) -> Vec<Step> {
    assert!(!nodes.is_empty(), "a history needs a node");
    let mut in_flight: Vec<(NodeId, usize)> = Vec::new();
    let mut sent = 0;
    let mut history = Vec::with_capacity(steps);
    for _ in 0..steps {
        let node = nodes[rng.random_range(0..nodes.len())];
        if !in_flight.is_empty() && rng.random_range(0.0..1.0) < 0.4 {
            let (to, msg) = in_flight.swap_remove(rng.random_range(0..in_flight.len()));
            history.push(Step::Receive { to, msg });
        } else if nodes.len() > 1 && rng.random_range(0.0..1.0) < send_share {
            let to = loop {
                let to = nodes[rng.random_range(0..nodes.len())];
                if to != node {
                    break to;
                }
            };
            history.push(Step::Send {
                from: node,
                to,
                msg: sent,
            });
            in_flight.push((to, sent));
            sent += 1;
        } else {
            history.push(Step::Local(node));
        }
    }
    history
}

/// Counts, over every pair of distinct events of `history`, how `compare(a, b)` (the vector
/// clocks' verdict) relates them, and what the Lamport timestamps `lamport[e]` would suggest for
/// the pairs that are concurrent; prints a table.
pub fn causality_lab(
    history: &[Step],
    lamport: &[u64],
    entries: impl Fn(usize) -> usize,
    compare: impl Fn(usize, usize) -> Causality,
) {
    let n = history.len();
    let (mut ordered, mut concurrent, mut lamport_orders, mut lamport_ties) =
        (0u64, 0u64, 0u64, 0u64);
    for a in 0..n {
        for b in a + 1..n {
            match compare(a, b) {
                Causality::Concurrent => {
                    concurrent += 1;
                    if lamport[a] == lamport[b] {
                        lamport_ties += 1;
                    } else {
                        lamport_orders += 1;
                    }
                }
                _ => ordered += 1,
            }
        }
    }
    let pairs = ordered + concurrent;
    let nodes: HashSet<NodeId> = history.iter().map(Step::node).collect();
    let sends = history
        .iter()
        .filter(|s| matches!(s, Step::Send { .. }))
        .count();
    let receives = history
        .iter()
        .filter(|s| matches!(s, Step::Receive { .. }))
        .count();
    let mean_entries = (0..n).map(&entries).sum::<usize>() as f64 / n.max(1) as f64;
    println!(
        "{n} events at {} nodes ({sends} sends, {receives} receives): {pairs} pairs of events.\n",
        nodes.len()
    );
    let mut table = Table::new(&["pairs", "count", "share"]);
    table.row(&[
        "one happened before the other",
        &ordered.to_string(),
        &percent(ordered, pairs),
    ]);
    table.row(&[
        "concurrent",
        &concurrent.to_string(),
        &percent(concurrent, pairs),
    ]);
    table.row(&[
        "  of which Lamport timestamps differ",
        &lamport_orders.to_string(),
        &percent(lamport_orders, pairs),
    ]);
    table.row(&[
        "  of which they tie",
        &lamport_ties.to_string(),
        &percent(lamport_ties, pairs),
    ]);
    table.print();
    println!(
        "\nLamport order puts {} of the concurrent pairs in some order that no message \
         established: it cannot tell a conflict from a sequence. Vector clocks can, at the price of \
         {mean_entries:.1} entries per timestamp instead of one number.",
        percent(lamport_orders, concurrent)
    );
}

// ---- Hybrid logical clock lab: skewed nodes exchanging timestamps -------------------------------

/// The knobs of the HLC lab.
#[derive(Debug, Clone, Copy)]
pub struct HlcKnobs {
    /// Well-behaved nodes; node i's clock runs i × skew_ms behind true time.
    pub nodes: u32,
    pub skew_ms: u64,
    /// How far node 0's clock steps back halfway through.
    pub step_back_ms: u64,
    /// The max offset the nodes were built with (for the report).
    pub max_offset_ms: u64,
    /// One extra node whose clock runs this far ahead of true time.
    pub rogue_ahead_ms: u64,
    /// True milliseconds simulated.
    pub duration_ms: u64,
}

/// Runs the learner's clock on every node of a small cluster for `duration_ms` true
/// milliseconds: each millisecond some nodes stamp an event, and some of those events send a
/// message that arrives 1 to 10 ms later. Compares, per message and per node, the order the
/// physical clocks would give with the order the hybrid timestamps give. `make` builds a node's
/// clock; `now` stamps a local event or a send, as (l, c); `update` stamps a receive, or refuses
/// (`None`).
pub fn hlc_lab<H>(
    knobs: HlcKnobs,
    mut make: impl FnMut(StepClock) -> H,
    mut now: impl FnMut(&mut H) -> (u64, u32),
    mut update: impl FnMut(&mut H, (u64, u32)) -> Option<(u64, u32)>,
) {
    let HlcKnobs {
        nodes,
        skew_ms,
        step_back_ms,
        max_offset_ms,
        rogue_ahead_ms,
        duration_ms,
    } = knobs;
    let n = nodes as usize + 1; // the last one is the rogue
    let offset = |i: usize| -> i64 {
        if i + 1 == n {
            rogue_ahead_ms as i64
        } else {
            -((i as u64 * skew_ms) as i64)
        }
    };
    let clocks: Vec<StepClock> = (0..n).map(|_| StepClock::default()).collect();
    let mut hlcs: Vec<H> = clocks.iter().map(|c| make(c.clone())).collect();
    let mut rng = crate::workload::seeded_rng(12);
    // (arrival true ms, to, sender's physical stamp, sender's hybrid stamp)
    let mut in_flight: Vec<(u64, usize, u64, (u64, u32))> = Vec::new();
    let mut last_pt = vec![0u64; n];
    let mut last_hlc = vec![(0u64, 0u32); n];
    let (mut events, mut pt_back, mut received, mut refused) =
        (vec![0u64; n], vec![0u64; n], vec![0u64; n], vec![0u64; n]);
    let (mut pt_misordered, mut hlc_misordered, mut messages) = (0u64, 0u64, 0u64);
    let mut ahead = vec![0u64; n]; // the largest l - pt seen
    let mut hlc_back = vec![0u64; n];
    for t in 0..duration_ms {
        for (i, clock) in clocks.iter().enumerate() {
            let mut reading = (LAB_START_MS + t) as i64 + offset(i);
            if i == 0 && t >= duration_ms / 2 {
                reading -= step_back_ms as i64;
            }
            clock.set(reading as u64);
        }
        let mut note = |i: usize, pt: u64, stamp: (u64, u32), events: &mut Vec<u64>| {
            events[i] += 1;
            if pt < last_pt[i] {
                pt_back[i] += 1;
            }
            if stamp <= last_hlc[i] {
                hlc_back[i] += 1;
            }
            last_pt[i] = pt;
            last_hlc[i] = stamp;
            ahead[i] = ahead[i].max(stamp.0.saturating_sub(pt));
        };
        let (arrived, later): (Vec<_>, Vec<_>) = in_flight.into_iter().partition(|m| m.0 == t);
        in_flight = later;
        for (_, to, sent_pt, sent_hlc) in arrived {
            messages += 1;
            let pt = clocks[to].now_ms();
            match update(&mut hlcs[to], sent_hlc) {
                Some(stamp) => {
                    received[to] += 1;
                    pt_misordered += u64::from(pt <= sent_pt);
                    hlc_misordered += u64::from(stamp <= sent_hlc);
                    note(to, pt, stamp, &mut events);
                }
                None => refused[to] += 1,
            }
        }
        for i in 0..n {
            if rng.random_range(0..4) != 0 {
                continue;
            }
            let pt = clocks[i].now_ms();
            let stamp = now(&mut hlcs[i]);
            note(i, pt, stamp, &mut events);
            if rng.random_range(0..2) == 0 {
                let to = (i + rng.random_range(1..n)) % n;
                in_flight.push((t + rng.random_range(1..=10), to, pt, stamp));
            }
        }
    }
    println!(
        "{nodes} nodes, node i's clock i x {skew_ms} ms behind true time, node 0 stepping back \
         {step_back_ms} ms halfway, plus a rogue node {rogue_ahead_ms} ms ahead; max offset \
         {max_offset_ms} ms; {duration_ms} ms, {messages} messages.\n"
    );
    let mut table = Table::new(&[
        "node",
        "clock",
        "events",
        "received",
        "refused",
        "pt went back",
        "hlc went back",
        "max l - pt",
    ]);
    for i in 0..n {
        let name = if i + 1 == n {
            format!("{i} (rogue)")
        } else {
            i.to_string()
        };
        table.row(&[
            name,
            format!("{:+} ms", offset(i)),
            events[i].to_string(),
            received[i].to_string(),
            refused[i].to_string(),
            pt_back[i].to_string(),
            hlc_back[i].to_string(),
            format!("{} ms", ahead[i]),
        ]);
    }
    table.print();
    let delivered = messages - refused.iter().sum::<u64>();
    println!(
        "\nOf {delivered} messages delivered, physical time stamps {} at or before their send \
         (a reader would see the effect before its cause); hybrid time stamps {}.",
        percent(pt_misordered, delivered),
        percent(hlc_misordered, delivered)
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_step_clock_moves_both_ways_and_clones_share_it() {
        let clock = StepClock::at(100);
        let handle = clock.clone();
        handle.step_back(30);
        assert_eq!(clock.now_ms(), 70);
        handle.advance(5);
        assert_eq!(clock.now_ms(), 75);
    }

    #[test]
    fn the_leaf_level_keeps_keys_sorted_and_packs_appends_tightly() {
        let mut appended = LeafLevel::new(4);
        for key in 0..40 {
            appended.insert(key);
        }
        assert_eq!(
            (appended.pages(), appended.fill()),
            (10, 1.0),
            "appends fill every page"
        );
        let mut random = LeafLevel::new(4);
        let mut rng = crate::workload::seeded_rng(3);
        for _ in 0..400 {
            random.insert(rng.random());
        }
        let keys: Vec<u128> = random.pages.concat();
        assert!(keys.is_sorted() && keys.len() == 400);
        assert!(random.pages.iter().all(|p| p.len() <= 4 && !p.is_empty()));
        assert!(
            random.fill() < 0.85,
            "half splits leave pages part empty: {}",
            random.fill()
        );
    }

    #[test]
    fn a_random_history_receives_each_message_once_after_its_send_at_its_destination() {
        let mut rng = crate::workload::seeded_rng(5);
        let history = random_history(&mut rng, &[3, 7, 9], 500, 0.4);
        let mut sent: BTreeMap<usize, NodeId> = BTreeMap::new();
        let mut received = HashSet::new();
        for step in &history {
            match *step {
                Step::Send { from, to, msg } => {
                    assert_ne!(from, to);
                    assert_eq!(msg, sent.len(), "messages are numbered in the order sent");
                    sent.insert(msg, to);
                }
                Step::Receive { to, msg } => {
                    assert_eq!(sent.get(&msg), Some(&to), "received after sent, where sent");
                    assert!(received.insert(msg), "received once");
                }
                Step::Local(_) => {}
            }
        }
        assert!(received.len() > 50 && received.len() <= sent.len());
        let one = random_history(&mut rng, &[1], 50, 0.9);
        assert!(
            one.iter().all(|s| matches!(s, Step::Local(1))),
            "one node sends nothing"
        );
    }
}
