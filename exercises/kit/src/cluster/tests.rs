//! The cluster's own checks, on a toy protocol: node 0 takes numbers from clients, keeps them
//! (in memory, and on disk when told to), acknowledges them and passes them on to its peers.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use super::*;

#[derive(Clone, Debug, PartialEq)]
enum Msg {
    Number(u64),
    Ack(u64),
    Pass(u64),
}

struct Keeper {
    in_memory: Vec<u64>,
    disk: Disk<Vec<u64>>,
    persist: bool,
    ticks: Vec<Duration>,
}

impl Node for Keeper {
    type Msg = Msg;

    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        match msg {
            Msg::Number(n) => {
                self.in_memory.push(n);
                if self.persist {
                    self.disk.write(|d| d.push(n));
                }
                ctx.send(from, Msg::Ack(n));
                let peers: Vec<NodeId> = ctx.peers().collect();
                for peer in peers {
                    ctx.send(peer, Msg::Pass(n));
                }
            }
            Msg::Pass(n) => self.in_memory.push(n),
            Msg::Ack(_) => {}
        }
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, Msg>) {
        self.ticks.push(ctx.now());
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn keepers(config: Config, seed: u64, persist: bool) -> Cluster<Keeper> {
    Cluster::with_disks(config, seed, move |_, disk: Disk<Vec<u64>>| Keeper {
        in_memory: disk.read(|d| d.clone()),
        disk,
        persist,
        ticks: Vec::new(),
    })
}

/// A client that sends `count` numbers to node 0, one every 50 ms, and records each ack's time.
fn sender(cluster: &mut Cluster<Keeper>, count: u64) -> Rc<RefCell<Vec<(u64, Duration)>>> {
    let acks = Rc::new(RefCell::new(Vec::new()));
    let record = Rc::clone(&acks);
    cluster.client(move |client| async move {
        for n in 0..count {
            client.send(0, Msg::Number(n));
            if let Some((0, Msg::Ack(a))) = client.recv(ms(200)).await {
                record.borrow_mut().push((a, client.now()));
            }
            client.sleep(ms(50)).await;
        }
    });
    acks
}

#[test]
fn clients_are_answered_and_the_same_seed_replays_the_same_run() {
    let trace = |seed| {
        let mut cluster = keepers(Config::default(), seed, false);
        let acks = sender(&mut cluster, 10);
        let events = Rc::new(RefCell::new(Vec::new()));
        let log = Rc::clone(&events);
        cluster
            .observe(move |id, node, now| log.borrow_mut().push((id, node.in_memory.len(), now)));
        assert!(cluster.run(), "the client finishes well within the limit");
        assert_eq!(
            acks.borrow().len(),
            10,
            "every number is acknowledged on a healthy network"
        );
        let events = events.borrow().clone();
        (events, acks.borrow().clone())
    };
    assert_eq!(trace(7), trace(7), "one seed, one run");
    assert_ne!(trace(7), trace(8), "another seed, other latencies");
}

#[test]
fn a_partition_stops_messages_until_it_heals() {
    let mut cluster = keepers(Config::default(), 1, false);
    cluster.faults(
        FaultPlan::new()
            .at(ms(0), Fault::Partition(vec![0], vec![1, 2]))
            .at(ms(300), Fault::Heal),
    );
    sender(&mut cluster, 10);
    cluster.run_until(ms(280));
    assert_eq!(
        cluster.node(1, |n| n.in_memory.len()),
        Some(0),
        "nothing crosses the partition"
    );
    assert!(
        cluster.node(0, |n| n.in_memory.len()).unwrap() > 0,
        "the client still reaches node 0"
    );
    cluster.run();
    let passed = cluster.node(2, |n| n.in_memory.clone()).unwrap();
    assert!(
        !passed.is_empty() && passed.iter().all(|&n| n >= 5),
        "only numbers sent after the heal: {passed:?}"
    );
}

#[test]
fn a_crash_loses_memory_but_keeps_the_disk() {
    for persist in [false, true] {
        let mut cluster = keepers(Config::default(), 3, persist);
        sender(&mut cluster, 4);
        cluster.run();
        assert_eq!(cluster.node(0, |n| n.in_memory.len()), Some(4));
        cluster.inject(Fault::Crash(0));
        assert!(!cluster.is_up(0) && cluster.node(0, |_| ()).is_none());
        cluster.inject(Fault::Restart(0));
        cluster.run_until(cluster.now() + ms(50));
        let kept = if persist { 4 } else { 0 };
        assert_eq!(
            cluster.node(0, |n| n.in_memory.len()),
            Some(kept),
            "persist = {persist}"
        );
    }
}

#[test]
fn a_paused_node_handles_nothing_until_the_pause_ends() {
    let mut cluster = keepers(Config::default(), 4, false);
    cluster.faults(FaultPlan::new().at(ms(100), Fault::Pause(1, ms(400))));
    cluster.run_until(ms(800));
    let ticks = cluster.node(1, |n| n.ticks.clone()).unwrap();
    assert!(
        ticks.iter().all(|t| *t <= ms(105) || *t >= ms(500)),
        "{ticks:?}"
    );
    assert!(
        ticks.iter().any(|t| *t >= ms(500)),
        "it resumes after the pause"
    );
}

#[test]
fn a_fast_clock_ticks_more_often_and_reads_ahead() {
    let mut cluster = keepers(Config::default(), 5, false);
    cluster.set_clock(2, ms(1000), 2.0);
    cluster.run_until(ms(1000));
    let normal = cluster.node(0, |n| n.ticks.len()).unwrap();
    let fast = cluster.node(2, |n| n.ticks.clone()).unwrap();
    assert!(
        (fast.len() as f64 / normal as f64 - 2.0).abs() < 0.1,
        "{} vs {normal}",
        fast.len()
    );
    assert!(
        *fast.last().unwrap() > ms(2900),
        "1 s offset + 2 × ~1 s: {:?}",
        fast.last()
    );
}

#[test]
fn loss_and_duplication_are_counted_and_seen() {
    let mut lossy = keepers(
        Config {
            loss: 1.0,
            ..Config::default()
        },
        6,
        false,
    );
    let acks = sender(&mut lossy, 3);
    lossy.run();
    assert!(acks.borrow().is_empty());
    assert_eq!(lossy.stats().dropped, 3, "{:?}", lossy.stats());

    let mut doubled = keepers(
        Config {
            duplicate: 1.0,
            ..Config::default()
        },
        6,
        false,
    );
    sender(&mut doubled, 3);
    doubled.run();
    assert_eq!(
        doubled.node(0, |n| n.in_memory.len()),
        Some(6),
        "each number arrives twice"
    );
    assert_eq!(
        doubled.node(1, |n| n.in_memory.len()),
        Some(12),
        "and each pass of each copy too"
    );
}

#[test]
fn a_probe_delivers_one_message_and_returns_what_was_sent() {
    let mut keeper = Keeper {
        in_memory: Vec::new(),
        disk: Disk::default(),
        persist: true,
        ticks: Vec::new(),
    };
    let sent = Probe::new(0, 3)
        .at(ms(40))
        .deliver(&mut keeper, 3, Msg::Number(9));
    assert_eq!(
        sent,
        vec![(3, Msg::Ack(9)), (1, Msg::Pass(9)), (2, Msg::Pass(9))]
    );
    assert_eq!(keeper.disk.read(|d| d.clone()), vec![9]);
    Probe::new(0, 3).at(ms(70)).tick(&mut keeper);
    assert_eq!(keeper.ticks, vec![ms(70)]);
}
