// Group assignment — share a topic's partitions among the consumers of a group, and when the
// group changes, move as few partitions as balance needs.
//
// A consumer group reads a topic in parallel: each partition goes to exactly one member, which
// alone reads it, in order. Members join (autoscaling adds pods) and leave (a deploy restarts
// them one by one); at each change the group rebalances. Every partition that changes owner
// costs a pause, a cache warm-up and, if offsets were not committed, records read twice.
//
// Build Kafka's three classic assignors (all members subscribe to all `topics`): `range` (per
// topic, members sorted by id take consecutive runs, the first ones one more: RangeAssignor),
// `round_robin` (all partitions, sorted by topic then partition, dealt to the sorted members in
// turn) and `sticky` (balanced: counts differ by at most one; and from `previous`, it moves only
// the partitions balance requires). Every member appears in the result, even with nothing.
//
// Lab: a group grows, shrinks and loses a member; compare partitions moved per rebalance. Turn
// TOPICS up and watch range's imbalance grow (the first members get the extras of every topic).

#[allow(unused_imports)] // yours to use
use std::collections::{BTreeMap, BTreeSet};

#[allow(unused_imports)] // yours to use
use sdlings_kit::partitioned_log::clients::TopicPartition;
use sdlings_kit::partitioned_log::clients::{Assignment, rebalance_lab};

// ---- Your part -------------------------------------------------------------------------------

/// Kafka's RangeAssignor: each topic on its own; its partitions split into consecutive runs,
/// one per member in member-id order, the first `partitions % members` runs one longer.
pub fn range(members: &[&str], topics: &[(&str, u32)]) -> Assignment {
    let mut sorted = members.to_vec();
    sorted.sort_unstable();
    let mut out = empty(&sorted);
    let n = sorted.len() as u32;
    if n == 0 {
        return out;
    }
    for &(topic, partitions) in topics {
        let (each, extra) = (partitions / n, partitions % n);
        let mut next = 0;
        for (i, member) in sorted.iter().enumerate() {
            let len = each + u32::from((i as u32) < extra);
            let run = (next..next + len).map(|p| TopicPartition::new(topic, p));
            out.get_mut(*member).unwrap().extend(run);
            next += len;
        }
    }
    out
}

/// Kafka's RoundRobinAssignor: every partition of every topic, sorted by (topic, partition),
/// dealt to the members in member-id order, one each in turn.
pub fn round_robin(members: &[&str], topics: &[(&str, u32)]) -> Assignment {
    let mut sorted = members.to_vec();
    sorted.sort_unstable();
    let mut out = empty(&sorted);
    if sorted.is_empty() {
        return out;
    }
    for (i, tp) in all_partitions(topics).into_iter().enumerate() {
        out.get_mut(sorted[i % sorted.len()]).unwrap().push(tp);
    }
    out
}

/// A balanced assignment (member counts differ by at most one) that keeps as many of the
/// `previous` owners as balance allows. `previous` may name members that left and partitions of
/// topics that are gone.
pub fn sticky(members: &[&str], topics: &[(&str, u32)], previous: &Assignment) -> Assignment {
    let mut sorted = members.to_vec();
    sorted.sort_unstable();
    let mut out = empty(&sorted);
    if sorted.is_empty() {
        return out;
    }
    let all = all_partitions(topics);
    let exists: BTreeSet<&TopicPartition> = all.iter().collect();
    // What each member still has a claim to: its previous partitions that still exist.
    let mut claims: BTreeMap<&str, Vec<TopicPartition>> = BTreeMap::new();
    for &m in &sorted {
        let mine = previous.get(m).into_iter().flatten();
        claims.insert(m, mine.filter(|tp| exists.contains(tp)).cloned().collect());
    }
    // Quotas: `each` for all, one more for `extra` of them. Give the extra slots to the members
    // that already hold the most, so that nobody gives up a partition it could have kept.
    let (each, extra) = (all.len() / sorted.len(), all.len() % sorted.len());
    let mut by_claims = sorted.clone();
    by_claims.sort_by_key(|m| std::cmp::Reverse(claims[m].len()));
    let quota: BTreeMap<&str, usize> = by_claims
        .iter()
        .enumerate()
        .map(|(i, &m)| (m, each + usize::from(i < extra)))
        .collect();
    // Keep what fits under the quota; everything else is up for grabs.
    let mut taken = BTreeSet::new();
    for &m in &sorted {
        for tp in &claims[m] {
            if out[m].len() < quota[m] && taken.insert(tp.clone()) {
                out.get_mut(m).unwrap().push(tp.clone());
            }
        }
    }
    let mut free = all.into_iter().filter(|tp| !taken.contains(tp));
    for &m in &sorted {
        while out[m].len() < quota[m] {
            out.get_mut(m)
                .unwrap()
                .push(free.next().expect("quotas add up"));
        }
    }
    for list in out.values_mut() {
        list.sort();
    }
    out
}

fn empty(members: &[&str]) -> Assignment {
    members
        .iter()
        .map(|m| (m.to_string(), Vec::new()))
        .collect()
}

fn all_partitions(topics: &[(&str, u32)]) -> Vec<TopicPartition> {
    let mut all: Vec<TopicPartition> = topics
        .iter()
        .flat_map(|&(t, n)| (0..n).map(move |p| TopicPartition::new(t, p)))
        .collect();
    all.sort();
    all
}

// ---- Lab -------------------------------------------------------------------------------------

/// Topics the group reads, with their partition counts.
const TOPICS: &[(&str, u32)] = &[
    ("orders", 12),
    ("payments", 5),
    ("clicks", 7),
    ("audit", 3),
    ("alerts", 2),
];
/// Group size over time: members join and leave (the last to join leaves first; at the crash
/// step a member in the middle dies).
const SIZES: &[usize] = &[3, 4, 5, 4, 6, 3];
const CRASH_AT_STEP: usize = 3;

fn main() {
    rebalance_lab(
        TOPICS,
        SIZES,
        CRASH_AT_STEP,
        &[
            ("range", &|m, t, _| range(m, t)),
            ("round-robin", &|m, t, _| round_robin(m, t)),
            ("sticky (yours)", &sticky),
        ],
    );
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use rand::rngs::StdRng;

    use super::*;

    fn tp(topic: &str, partition: u32) -> TopicPartition {
        TopicPartition::new(topic, partition)
    }

    fn owned(a: &Assignment, member: &str) -> Vec<(String, u32)> {
        let list = a
            .get(member)
            .unwrap_or_else(|| panic!("{member} is missing"));
        let mut v: Vec<_> = list
            .iter()
            .map(|t| (t.topic.clone(), t.partition))
            .collect();
        v.sort();
        v
    }

    /// Every partition exactly once, to a member of the group; every member present.
    fn check_exact_cover(a: &Assignment, members: &[&str], topics: &[(&str, u32)], who: &str) {
        let keys: BTreeSet<&str> = a.keys().map(String::as_str).collect();
        let want: BTreeSet<&str> = members.iter().copied().collect();
        assert_eq!(
            keys, want,
            "{who}: one entry per member, even for members with nothing"
        );
        let mut got: Vec<&TopicPartition> = a.values().flatten().collect();
        got.sort();
        let all = every_partition(topics);
        assert_eq!(
            got,
            all.iter().collect::<Vec<_>>(),
            "{who}: every existing partition exactly once (members {members:?}, topics {topics:?})"
        );
    }

    fn spread(a: &Assignment) -> usize {
        let counts = a.values().map(Vec::len);
        counts.clone().max().unwrap_or(0) - counts.min().unwrap_or(0)
    }

    /// The number of partitions whose owner changed from `before` to `after`.
    fn moved(before: &Assignment, after: &Assignment) -> usize {
        let owner: BTreeMap<&TopicPartition, &String> = before
            .iter()
            .flat_map(|(m, l)| l.iter().map(move |t| (t, m)))
            .collect();
        let after = after
            .iter()
            .flat_map(|(m, l)| l.iter().map(move |t| (t, m)));
        after.filter(|(t, m)| owner.get(t) != Some(m)).count()
    }

    /// The fewest moves a balanced assignment needs: each member keeps at most its quota of its
    /// previous (still existing) partitions, the larger quotas going to those who hold the most.
    fn fewest_moves(members: &[&str], topics: &[(&str, u32)], previous: &Assignment) -> usize {
        let all = every_partition(topics);
        let mut held: Vec<usize> = members
            .iter()
            .map(|m| {
                previous
                    .get(*m)
                    .map_or(0, |l| l.iter().filter(|t| all.contains(t)).count())
            })
            .collect();
        held.sort_unstable_by(|a, b| b.cmp(a));
        let (each, extra) = (all.len() / members.len(), all.len() % members.len());
        let kept: usize = held
            .iter()
            .enumerate()
            .map(|(i, &h)| h.min(each + usize::from(i < extra)))
            .sum();
        all.len() - kept
    }

    #[test]
    fn range_gives_each_member_a_consecutive_run_the_first_ones_one_longer() {
        // Kafka's RangeAssignor javadoc: C0, C1; t0 and t1 with 3 partitions each.
        let a = range(&["C1", "C0"], &[("t0", 3), ("t1", 3)]);
        assert_eq!(
            owned(&a, "C0"),
            owned_of(&[("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1)])
        );
        assert_eq!(
            owned(&a, "C1"),
            owned_of(&[("t0", 2), ("t1", 2)]),
            "members sorted by id"
        );
        let a = range(&["b", "c", "a"], &[("t", 8)]);
        let runs: Vec<_> = ["a", "b", "c"].iter().map(|m| owned(&a, m).len()).collect();
        assert_eq!(
            runs,
            [3, 3, 2],
            "8 over 3: the first two members get one more"
        );
        assert_eq!(owned(&a, "c"), owned_of(&[("t", 6), ("t", 7)]));
    }

    fn every_partition(topics: &[(&str, u32)]) -> Vec<TopicPartition> {
        let mut all: Vec<TopicPartition> = topics
            .iter()
            .flat_map(|&(t, n)| (0..n).map(move |p| tp(t, p)))
            .collect();
        all.sort();
        all
    }

    fn members_of(members: &[&str]) -> Assignment {
        members
            .iter()
            .map(|m| (m.to_string(), Vec::new()))
            .collect()
    }

    fn owned_of(list: &[(&str, u32)]) -> Vec<(String, u32)> {
        list.iter().map(|&(t, p)| (t.to_string(), p)).collect()
    }

    #[test]
    fn round_robin_deals_sorted_partitions_to_sorted_members_in_turn() {
        // Kafka's RoundRobinAssignor javadoc: C0, C1; t0 and t1 with 3 partitions each.
        let a = round_robin(&["C1", "C0"], &[("t1", 3), ("t0", 3)]);
        assert_eq!(
            owned(&a, "C0"),
            owned_of(&[("t0", 0), ("t0", 2), ("t1", 1)])
        );
        assert_eq!(
            owned(&a, "C1"),
            owned_of(&[("t0", 1), ("t1", 0), ("t1", 2)])
        );
    }

    #[test]
    fn members_without_partitions_still_appear_and_empty_groups_get_nothing() {
        let topics = [("t", 2)];
        for (name, a) in [
            ("range", range(&["x", "y", "z"], &topics)),
            ("round-robin", round_robin(&["x", "y", "z"], &topics)),
            (
                "sticky",
                sticky(&["x", "y", "z"], &topics, &Assignment::new()),
            ),
        ] {
            check_exact_cover(&a, &["x", "y", "z"], &topics, name);
        }
        assert!(range(&[], &topics).is_empty() && round_robin(&[], &topics).is_empty());
        assert!(sticky(&[], &topics, &Assignment::new()).is_empty());
        let none = sticky(&["x"], &[("t", 0)], &Assignment::new());
        assert_eq!(owned(&none, "x"), owned_of(&[]), "a topic of no partitions");
    }

    #[test]
    fn when_a_member_leaves_sticky_moves_only_its_partitions_and_stays_balanced() {
        let topics = [("t", 9)];
        let before = sticky(&["a", "b", "c"], &topics, &Assignment::new());
        let after = sticky(&["a", "c"], &topics, &before);
        check_exact_cover(&after, &["a", "c"], &topics, "sticky");
        assert_eq!(spread(&after), 1, "9 over 2 members: 5 and 4");
        for m in ["a", "c"] {
            let kept: BTreeSet<_> = owned(&before, m).into_iter().collect();
            assert!(
                owned(&after, m)
                    .iter()
                    .filter(|p| kept.contains(*p))
                    .count()
                    == 3,
                "{m} keeps its 3 partitions; only b's 3 move: {after:?}"
            );
        }
        assert_eq!(
            moved(&before, &after),
            3,
            "only b's partitions change owner"
        );
    }

    #[test]
    fn when_a_member_joins_sticky_moves_only_as_many_as_balance_needs() {
        let topics = [("t", 8)];
        let mut previous = Assignment::new();
        previous.insert("a".into(), (0..4).map(|p| tp("t", p)).collect());
        previous.insert("b".into(), (4..8).map(|p| tp("t", p)).collect());
        let after = sticky(&["a", "b", "c"], &topics, &previous);
        check_exact_cover(&after, &["a", "b", "c"], &topics, "sticky");
        assert_eq!(spread(&after), 1, "8 over 3: 3, 3, 2");
        assert_eq!(
            moved(&previous, &after),
            2,
            "a and b hold 4 each; c joins: 2 partitions (one from each, or two from one) move, \
             no more. Got {after:?}"
        );
        // The extra slot goes to whoever already holds more: nobody gives up what it could keep.
        previous.insert("a".into(), (0..2).map(|p| tp("t", p)).collect());
        previous.insert("b".into(), (2..4).map(|p| tp("t", p)).collect());
        previous.insert("c".into(), (4..7).map(|p| tp("t", p)).collect());
        let after = sticky(&["a", "b", "c"], &[("t", 7)], &previous);
        assert_eq!(
            moved(&previous, &after),
            0,
            "already balanced (2, 2, 3): nothing moves, c keeps its third: {after:?}"
        );
    }

    #[test]
    fn sticky_drops_partitions_of_topics_that_are_gone_and_picks_up_new_ones() {
        let mut previous = Assignment::new();
        previous.insert("a".into(), vec![tp("old", 0), tp("t", 0), tp("t", 5)]);
        previous.insert("gone".into(), vec![tp("t", 1)]);
        let after = sticky(&["a", "b"], &[("t", 4)], &previous);
        check_exact_cover(&after, &["a", "b"], &[("t", 4)], "sticky");
        assert!(owned(&after, "a").contains(&("t".into(), 0)), "a keeps t-0");
    }

    fn random_group(rng: &mut StdRng) -> Vec<String> {
        let n = rng.random_range(1..9);
        let mut ids: BTreeSet<String> = BTreeSet::new();
        while ids.len() < n {
            ids.insert(format!("consumer-{}", rng.random_range(0..20)));
        }
        ids.into_iter().collect()
    }

    fn random_topics(rng: &mut StdRng) -> Vec<(&'static str, u32)> {
        let names = ["clicks", "orders", "payments"];
        let k = rng.random_range(1..4);
        names[..k]
            .iter()
            .map(|&t| (t, rng.random_range(0..13)))
            .collect()
    }

    #[test]
    fn range_and_round_robin_match_kafkas_assignors_on_random_groups() {
        sdlings_kit::property::for_seeds(200, |rng| {
            let group = random_group(rng);
            let mut members: Vec<&str> = group.iter().map(String::as_str).collect();
            let topics = random_topics(rng);
            // The reference, from the assignors' definitions, over sorted members.
            let mut sorted = members.clone();
            sorted.sort();
            let (mut want_range, mut want_rr) = (members_of(&sorted), members_of(&sorted));
            let n = sorted.len() as u32;
            for &(t, parts) in &topics {
                for p in 0..parts {
                    // Member i takes [i*q + min(i, r), ...) of length q + (i < r).
                    let (q, r) = (parts / n, parts % n);
                    let i = (0..n).find(|&i| p < (i + 1) * q + (i + 1).min(r)).unwrap();
                    want_range
                        .get_mut(sorted[i as usize])
                        .unwrap()
                        .push(tp(t, p));
                }
            }
            for (i, t) in every_partition(&topics).into_iter().enumerate() {
                want_rr.get_mut(sorted[i % sorted.len()]).unwrap().push(t);
            }
            members.reverse();
            let normal = |mut a: Assignment| {
                a.values_mut().for_each(|l| l.sort());
                a
            };
            let why = format!("members {members:?}, topics {topics:?}");
            assert_eq!(
                normal(range(&members, &topics)),
                normal(want_range),
                "range: {why}"
            );
            assert_eq!(
                normal(round_robin(&members, &topics)),
                normal(want_rr),
                "rr: {why}"
            );
        });
    }

    #[test]
    fn sticky_stays_balanced_and_moves_the_fewest_partitions_through_joins_and_leaves() {
        sdlings_kit::property::for_seeds(80, |rng| {
            let mut group = random_group(rng);
            let mut topics = random_topics(rng);
            let mut previous = Assignment::new();
            for step in 0..8 {
                match rng.random_range(0..4) {
                    0 if group.len() > 1 => {
                        group.remove(rng.random_range(0..group.len()));
                    }
                    1 => group.push(format!("late-{step}")),
                    2 => topics[0].1 += rng.random_range(1..4),
                    3 if topics.len() > 1 => {
                        topics.pop(); // a topic is deleted
                    }
                    _ => {}
                }
                let members: Vec<&str> = group.iter().map(String::as_str).collect();
                let next = sticky(&members, &topics, &previous);
                let why = format!("step {step}, members {members:?}, topics {topics:?}");
                check_exact_cover(&next, &members, &topics, &why);
                assert!(
                    spread(&next) <= 1,
                    "{why}: counts differ by at most one: {next:?}"
                );
                let fewest = fewest_moves(&members, &topics, &previous);
                let changed = next
                    .iter()
                    .flat_map(|(m, l)| l.iter().map(move |t| (t, m)))
                    .filter(|(t, m)| previous.get(m.as_str()).is_none_or(|l| !l.contains(t)))
                    .count();
                assert_eq!(
                    changed, fewest,
                    "{why}: partitions given to a new owner; balance needs only {fewest}. \
                     Before {previous:?}, after {next:?}"
                );
                previous = next;
            }
        });
    }
}
