//! The client side of the small Kafka: a producer's record accumulator (batches, linger) for
//! `partitioner`, the rebalance lab of `group_assignment`, and for `delivery_semantics` a
//! consumer with injected crash points, an idempotent sink, and the lab's TCP broker and
//! consumer group on localhost. None of it is an answer: the learner writes the partitioner, the
//! assignors and the consumer's processing loop.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use rand::RngExt;

use crate::lab::{Table, bar_chart};
use crate::workload::seeded_rng;

// ---- Hashing ----------------------------------------------------------------------------------

/// Kafka's `Utils.murmur2` (clients/src/main/java/org/apache/kafka/common/utils/Utils.java): the
/// 32-bit MurmurHash2 with seed 0x9747b28c that the default partitioner applies to the key's
/// bytes, as Java computes it (an `int`, often negative). Ported line by line; the kit's tests
/// check it against the vectors of Kafka's `UtilsTest.testMurmur2`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

// ---- The producer's accumulator (partitioner) -------------------------------------------------

/// What the producer asks of a partitioner, as Kafka's `Partitioner` interface does: a
/// partition for each record (`key` is `None` for a keyless record) and, when the record's
/// partition has no open batch so a new one would start, `on_new_batch(previous)` with the
/// partition it had picked; the producer then asks `partition` again (KafkaProducer.doSend with
/// `abortOnNewBatch`, Kafka 2.4–3.2).
pub trait Partitioner {
    fn partition(&mut self, key: Option<&[u8]>) -> u32;
    fn on_new_batch(&mut self, previous: u32);
}

/// A batch the producer sent: its partition and its records (key, value), in append order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub partition: u32,
    pub records: Vec<(Option<Vec<u8>>, u64)>,
    /// The tick its first record arrived and the tick it was sent.
    pub opened: u64,
    pub sent: u64,
}

struct Open {
    opened: u64,
    records: Vec<(Option<Vec<u8>>, u64)>,
}

/// A producer's record accumulator on a tick clock: one record arrives per tick; a partition's
/// batch is sent when it holds `batch_records` records (Kafka's batch.size) or when it has
/// waited `linger_ticks` (linger.ms), whichever comes first.
pub struct Producer<P> {
    partitioner: P,
    partitions: u32,
    batch_records: usize,
    linger_ticks: u64,
    now: u64,
    open: Vec<Option<Open>>,
    sent: Vec<Batch>,
}

impl<P: Partitioner> Producer<P> {
    pub fn new(partitioner: P, partitions: u32, batch_records: usize, linger_ticks: u64) -> Self {
        assert!(partitions > 0 && batch_records > 0);
        Producer {
            partitioner,
            partitions,
            batch_records,
            linger_ticks,
            now: 0,
            open: (0..partitions).map(|_| None).collect(),
            sent: Vec::new(),
        }
    }

    fn checked(&mut self, key: Option<&[u8]>) -> u32 {
        let p = self.partitioner.partition(key);
        assert!(
            p < self.partitions,
            "the partitioner returned partition {p}, but the topic has {} (0..{})",
            self.partitions,
            self.partitions
        );
        p
    }

    fn close(&mut self, p: u32) {
        if let Some(open) = self.open[p as usize].take() {
            self.sent.push(Batch {
                partition: p,
                records: open.records,
                opened: open.opened,
                sent: self.now,
            });
        }
    }

    /// One tick: batches that lingered long enough are sent, then the record is appended to the
    /// partition the partitioner picks. Returns that partition.
    pub fn send(&mut self, key: Option<&[u8]>, value: u64) -> u32 {
        self.now += 1;
        for p in 0..self.partitions {
            if let Some(open) = &self.open[p as usize]
                && self.now - open.opened >= self.linger_ticks
            {
                self.close(p);
            }
        }
        let mut p = self.checked(key);
        if self.open[p as usize].is_none() {
            self.partitioner.on_new_batch(p);
            p = self.checked(key);
        }
        let now = self.now;
        let open = self.open[p as usize].get_or_insert_with(|| Open {
            opened: now,
            records: Vec::new(),
        });
        open.records.push((key.map(<[u8]>::to_vec), value));
        if open.records.len() >= self.batch_records {
            self.close(p);
        }
        p
    }

    /// Sends every open batch.
    pub fn flush(&mut self) {
        for p in 0..self.partitions {
            self.close(p);
        }
    }

    /// The batches sent since the last call, in the order they were sent.
    pub fn take_sent(&mut self) -> Vec<Batch> {
        std::mem::take(&mut self.sent)
    }
}

/// The baseline the sticky partitioner is measured against: keyed records by `by_key`, keyless
/// ones to the next partition in turn (Kafka's default for keyless records before 2.4).
pub struct RoundRobin {
    pub partitions: u32,
    pub next: u32,
    pub by_key: fn(&[u8], u32) -> u32,
}

impl Partitioner for RoundRobin {
    fn partition(&mut self, key: Option<&[u8]>) -> u32 {
        match key {
            Some(key) => (self.by_key)(key, self.partitions),
            None => {
                self.next = (self.next + 1) % self.partitions;
                self.next
            }
        }
    }
    fn on_new_batch(&mut self, _previous: u32) {}
}

/// The partitioner lab's knobs.
pub struct ProducerKnobs {
    pub partitions: u32,
    pub batch_records: usize,
    pub linger_ticks: u64,
    /// Share of records (in percent) that carry a key; the others are keyless.
    pub keyed_percent: u32,
    pub records: u64,
}

/// Runs the same stream of records through the learner's partitioner and the round-robin
/// baseline and prints batches sent, their fill, how long records waited, and each partition's
/// share of records.
pub fn partitioner_lab<P: Partitioner>(
    knobs: &ProducerKnobs,
    sticky: P,
    by_key: fn(&[u8], u32) -> u32,
) {
    fn run<Q: Partitioner>(knobs: &ProducerKnobs, p: Q) -> (Vec<Batch>, Vec<u64>) {
        let mut rng = seeded_rng(7);
        let mut producer =
            Producer::new(p, knobs.partitions, knobs.batch_records, knobs.linger_ticks);
        for v in 0..knobs.records {
            let key = (rng.random_range(0..100) < knobs.keyed_percent)
                .then(|| format!("user-{}", rng.random_range(0..1_000)));
            producer.send(key.as_deref().map(str::as_bytes), v);
        }
        producer.flush();
        let sent = producer.take_sent();
        let mut per = vec![0; knobs.partitions as usize];
        for b in &sent {
            per[b.partition as usize] += b.records.len() as u64;
        }
        (sent, per)
    }
    let rr = RoundRobin {
        partitions: knobs.partitions,
        next: 0,
        by_key,
    };
    let runs = [
        ("round-robin", run(knobs, rr)),
        ("sticky (yours)", run(knobs, sticky)),
    ];
    println!(
        "{} records, {}% keyed, {} partitions, batch {} records, linger {} ticks (1 record/tick)\n",
        knobs.records,
        knobs.keyed_percent,
        knobs.partitions,
        knobs.batch_records,
        knobs.linger_ticks
    );
    let mut table = Table::new(&[
        "keyless policy",
        "batches",
        "records/batch",
        "full batches",
        "ticks a batch stays open",
        "busiest partition",
    ]);
    for (name, (sent, per)) in &runs {
        let records: u64 = per.iter().sum();
        let full = sent
            .iter()
            .filter(|b| b.records.len() >= knobs.batch_records)
            .count();
        let open_ticks: u64 = sent.iter().map(|b| b.sent - b.opened).sum();
        let busiest = per.iter().max().copied().unwrap_or(0);
        table.row(&[
            name.to_string(),
            sent.len().to_string(),
            format!("{:.1}", records as f64 / sent.len().max(1) as f64),
            crate::lab::percent(full as u64, sent.len() as u64),
            format!("{:.1}", open_ticks as f64 / sent.len().max(1) as f64),
            crate::lab::percent(busiest, records),
        ]);
    }
    table.print();
    println!("\nrecords per partition with your partitioner:");
    let (_, per) = &runs[1].1;
    let bars: Vec<(String, f64)> = per
        .iter()
        .enumerate()
        .map(|(p, &n)| (format!("partition {p}"), n as f64))
        .collect();
    println!("{}", bar_chart(&bars, 40));
    println!("Fewer, fuller batches mean fewer requests to the brokers for the same records.");
}

// ---- Consumer groups (group_assignment) --------------------------------------------------------

/// One partition of one topic. Sorts by topic, then partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

impl TopicPartition {
    pub fn new(topic: &str, partition: u32) -> Self {
        TopicPartition {
            topic: topic.to_string(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Member id → the partitions it reads.
pub type Assignment = BTreeMap<String, Vec<TopicPartition>>;

/// An assignor: (members, topics with their partition counts, the previous assignment).
pub type Assignor<'a> = &'a dyn Fn(&[&str], &[(&str, u32)], &Assignment) -> Assignment;

/// The group_assignment lab: a group whose size follows `sizes` (joins add `consumer-N` with the
/// next N; leaves remove the newest member, except at step `crash_at`, where a member in the
/// middle dies). Each assignor rebalances at every step from its own previous assignment; the
/// table shows partitions that changed owner and the largest minus smallest member's load.
pub fn rebalance_lab(
    topics: &[(&str, u32)],
    sizes: &[usize],
    crash_at: usize,
    assignors: &[(&str, Assignor)],
) {
    let total: u32 = topics.iter().map(|t| t.1).sum();
    println!(
        "topics {}: {total} partitions\n",
        topics
            .iter()
            .map(|(t, n)| format!("{t} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // The group over time.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    let (mut group, mut next_id) = (Vec::<String>::new(), 0);
    for (step, &size) in sizes.iter().enumerate() {
        let mut what = Vec::new();
        while group.len() > size {
            let gone = if step == crash_at {
                group.remove(group.len() / 2)
            } else {
                group.pop().unwrap()
            };
            what.push(format!("-{gone}"));
        }
        while group.len() < size {
            group.push(format!("consumer-{next_id}"));
            what.push(format!("+consumer-{next_id}"));
            next_id += 1;
        }
        let what = if step == 0 {
            format!("start with {size}")
        } else {
            what.join(" ")
        };
        groups.push((what, group.clone()));
    }
    let mut header = vec!["step".to_string(), "members".to_string()];
    for (name, _) in assignors {
        header.push(format!("{name}: moved"));
        header.push("max-min".to_string());
    }
    let mut table = Table::new(&header);
    let mut previous: Vec<Assignment> = vec![Assignment::new(); assignors.len()];
    let mut moved_total = vec![0usize; assignors.len()];
    for (step, (what, members)) in groups.iter().enumerate() {
        let ids: Vec<&str> = members.iter().map(String::as_str).collect();
        let mut row = vec![format!("{step}: {what}"), members.len().to_string()];
        for (i, (_, assign)) in assignors.iter().enumerate() {
            let next = assign(&ids, topics, &previous[i]);
            let owner: HashMap<&TopicPartition, &String> = previous[i]
                .iter()
                .flat_map(|(m, l)| l.iter().map(move |t| (t, m)))
                .collect();
            let moved = next
                .iter()
                .flat_map(|(m, l)| l.iter().map(move |t| (t, m)))
                .filter(|(t, m)| owner.get(t).is_some_and(|o| o != m))
                .count();
            let loads: Vec<usize> = next.values().map(Vec::len).collect();
            let spread = loads.iter().max().unwrap_or(&0) - loads.iter().min().unwrap_or(&0);
            moved_total[i] += moved;
            row.push(if step == 0 {
                "-".to_string()
            } else {
                moved.to_string()
            });
            row.push(spread.to_string());
            previous[i] = next;
        }
        table.row(&row);
    }
    table.print();
    println!("\npartitions that changed owner over all rebalances:");
    let bars: Vec<(&str, f64)> = assignors
        .iter()
        .zip(&moved_total)
        .map(|((name, _), &m)| (*name, m as f64))
        .collect();
    println!("{}", bar_chart(&bars, 40));
    println!(
        "Each move is a partition paused, its consumer's state rebuilt, maybe records reread."
    );
}

// ---- Delivery semantics: a consumer that crashes where it is told ------------------------------

/// A record as a consumer receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConsumerRecord {
    pub partition: u32,
    pub offset: u64,
    pub key: u64,
    pub value: u64,
}

/// The consumer process died; everything it had not committed or written is gone. Return it
/// (`?`) at once: the kit restarts the consumer from the group's committed offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crashed;

/// Where, around one record, the process dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// When the sink is asked to apply the record: nothing of it is applied.
    BeforeProcess,
    /// Right after the sink applied the record (and stored its offset, if asked in the same call).
    AfterProcess,
    /// Right after the commit that moves past the record (`next_offset == offset + 1`) is durable.
    AfterCommit,
}

/// A crash at `point` around the record at (`partition`, `offset`), the first time it gets there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crash {
    pub point: CrashPoint,
    pub partition: u32,
    pub offset: u64,
}

type Schedule = Arc<Mutex<Vec<Crash>>>;

fn fire(schedule: &Schedule, point: CrashPoint, partition: u32, offset: u64) -> bool {
    let mut pending = schedule.lock().unwrap();
    let hit = pending
        .iter()
        .position(|c| c.point == point && c.partition == partition && c.offset == offset);
    hit.map(|i| pending.remove(i)).is_some()
}

/// The consumer's commits to the group coordinator. A commit is durable the moment `commit`
/// returns (or crashes with `AfterCommit`).
pub struct Consumer {
    made: Vec<(u32, u64)>,
    schedule: Schedule,
}

impl Consumer {
    /// Commits: after a restart, the group reads `partition` from `next_offset` on (Kafka
    /// commits the offset of the next record to read, not of the last one read).
    pub fn commit(&mut self, partition: u32, next_offset: u64) -> Result<(), Crashed> {
        self.made.push((partition, next_offset));
        if next_offset > 0
            && fire(
                &self.schedule,
                CrashPoint::AfterCommit,
                partition,
                next_offset - 1,
            )
        {
            return Err(Crashed);
        }
        Ok(())
    }
}

/// What the sink holds durably: the effects applied, in order, and the offset stored last for
/// each partition.
#[derive(Debug, Default)]
pub struct Store {
    pub effects: Vec<ConsumerRecord>,
    pub stored: BTreeMap<u32, u64>,
}

/// A consumer process just (re)started: no commits made yet, writing to the shared store, under
/// the shared crash schedule.
fn fresh_process(schedule: &Schedule, store: &Arc<Mutex<Store>>) -> (Consumer, Sink) {
    let consumer = Consumer {
        made: Vec::new(),
        schedule: schedule.clone(),
    };
    let sink = Sink {
        store: store.clone(),
        schedule: schedule.clone(),
    };
    (consumer, sink)
}

/// The downstream system the consumer writes to (say, account balances): each applied record
/// is an effect, and applying one twice counts twice.
pub struct Sink {
    store: Arc<Mutex<Store>>,
    schedule: Schedule,
}

impl Sink {
    fn effect(&mut self, record: &ConsumerRecord, store_offset: bool) -> Result<(), Crashed> {
        let (p, o) = (record.partition, record.offset);
        if fire(&self.schedule, CrashPoint::BeforeProcess, p, o) {
            return Err(Crashed);
        }
        let mut store = self.store.lock().unwrap();
        store.effects.push(*record);
        if store_offset {
            store.stored.insert(p, o);
        }
        drop(store);
        if fire(&self.schedule, CrashPoint::AfterProcess, p, o) {
            return Err(Crashed);
        }
        Ok(())
    }

    /// Applies the record's effect.
    pub fn apply(&mut self, record: &ConsumerRecord) -> Result<(), Crashed> {
        self.effect(record, false)
    }

    /// Applies the record's effect and stores its offset as its partition's last applied one,
    /// in one transaction: both happen or neither.
    pub fn apply_and_store_offset(&mut self, record: &ConsumerRecord) -> Result<(), Crashed> {
        self.effect(record, true)
    }

    /// Stores an offset as `partition`'s last applied one, in a write of its own.
    pub fn store_offset(&mut self, partition: u32, offset: u64) -> Result<(), Crashed> {
        self.store.lock().unwrap().stored.insert(partition, offset);
        Ok(())
    }

    /// The offset stored last for `partition`, if any.
    pub fn stored_offset(&self, partition: u32) -> Option<u64> {
        self.store.lock().unwrap().stored.get(&partition).copied()
    }
}

/// What a run left behind.
#[derive(Debug)]
pub struct Outcome {
    /// The log the consumer read, per partition.
    pub log: Vec<Vec<ConsumerRecord>>,
    /// The sink's effects, in the order applied.
    pub effects: Vec<ConsumerRecord>,
    /// The group's committed offset per partition at the end.
    pub committed: Vec<u64>,
    /// How many times the consumer crashed and restarted.
    pub restarts: usize,
}

/// The consumer's processing of one poll's records, as the exercise writes it.
pub type Handler<'a> =
    &'a mut dyn FnMut(&[ConsumerRecord], &mut Consumer, &mut Sink) -> Result<(), Crashed>;

/// The log of the delivery tests: `lengths[p]` records in partition p; keys repeat within a
/// partition (key = p * 10 + offset % 3), values count up.
pub fn sample_log(lengths: &[u64]) -> Vec<Vec<ConsumerRecord>> {
    let mut value = 0;
    (0..lengths.len() as u32)
        .map(|p| {
            (0..lengths[p as usize])
                .map(|offset| {
                    value += 1;
                    ConsumerRecord {
                        partition: p,
                        offset,
                        key: u64::from(p) * 10 + offset % 3,
                        value,
                    }
                })
                .collect()
        })
        .collect()
}

/// Runs one consumer over `log` until it has read everything: each poll returns up to
/// `poll_max` records (consecutive within a partition, from partitions in turn); on `Crashed` the
/// process restarts from the committed offsets, its sink's durable state intact.
pub fn run_consumer(
    log: Vec<Vec<ConsumerRecord>>,
    poll_max: usize,
    crashes: &[Crash],
    handler: Handler,
) -> Outcome {
    assert!(poll_max > 0);
    let schedule: Schedule = Arc::new(Mutex::new(crashes.to_vec()));
    let store = Arc::new(Mutex::new(Store::default()));
    let mut committed = vec![0u64; log.len()];
    let (mut restarts, mut polls) = (0, 0);
    'process: loop {
        let mut position = committed.clone();
        let mut turn = 0;
        loop {
            polls += 1;
            assert!(
                polls < 100_000,
                "the consumer makes no progress: it keeps rereading the same records"
            );
            let mut records = Vec::new();
            for i in 0..log.len() {
                let p = (turn + i) % log.len();
                let from = (position[p] as usize).min(log[p].len());
                let take = (poll_max - records.len()).min(log[p].len() - from);
                records.extend_from_slice(&log[p][from..from + take]);
                position[p] += take as u64;
            }
            turn += 1;
            if records.is_empty() {
                break 'process;
            }
            let (mut consumer, mut sink) = fresh_process(&schedule, &store);
            let result = handler(&records, &mut consumer, &mut sink);
            for (p, next) in consumer.made {
                assert!(
                    (p as usize) < log.len(),
                    "commit to partition {p}, which does not exist"
                );
                committed[p as usize] = next;
            }
            if result.is_err() {
                restarts += 1;
                continue 'process;
            }
        }
    }
    let effects = std::mem::take(&mut store.lock().unwrap().effects);
    Outcome {
        log,
        effects,
        committed,
        restarts,
    }
}

// ---- The delivery lab: a broker and a consumer group over TCP ----------------------------------

/// The consumer's delivery guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantics {
    AtMostOnce,
    AtLeastOnce,
    /// At least once, with a sink that deduplicates by (partition, offset).
    ExactlyOnce,
}

/// The delivery lab's knobs.
pub struct DeliveryKnobs {
    pub partitions: u32,
    pub consumers: usize,
    pub records: u64,
    /// Crashes injected into consumer 0, spread over partition 0, and where around the record.
    pub crashes: usize,
    pub crash_point: CrashPoint,
}

/// The exercise's `handle`.
pub type Handle = fn(Semantics, &[ConsumerRecord], &mut Consumer, &mut Sink) -> Result<(), Crashed>;

mod wire {
    //! Frames: a length-delimited codec around `crc32 (4 bytes) | body`; a frame whose checksum
    //! does not match is refused. Requests: 1 produce (n × (partition, key, value)); 2 fetch
    //! (partition, offset, max) → records; 3 commit (n × (partition, next offset)); 4 committed
    //! offset of a partition.
    use bytes::{Buf, BufMut, Bytes, BytesMut};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

    pub struct Conn {
        stream: TcpStream,
        codec: LengthDelimitedCodec,
        buf: BytesMut,
    }

    impl Conn {
        pub fn new(stream: TcpStream) -> Self {
            stream.set_nodelay(true).ok();
            Conn {
                stream,
                codec: LengthDelimitedCodec::new(),
                buf: BytesMut::new(),
            }
        }

        pub async fn send(&mut self, body: Bytes) -> std::io::Result<()> {
            let mut payload = BytesMut::with_capacity(body.len() + 4);
            payload.put_u32(crc32fast::hash(&body));
            payload.put_slice(&body);
            let mut frame = BytesMut::new();
            self.codec.encode(payload.freeze(), &mut frame)?;
            self.stream.write_all(&frame).await
        }

        /// The next frame's body, `None` at end of stream.
        pub async fn recv(&mut self) -> std::io::Result<Option<Bytes>> {
            loop {
                if let Some(mut frame) = self.codec.decode(&mut self.buf)? {
                    let crc = frame.get_u32();
                    if crc != crc32fast::hash(&frame) {
                        return Err(std::io::Error::other("frame checksum mismatch"));
                    }
                    return Ok(Some(frame.freeze()));
                }
                if self.stream.read_buf(&mut self.buf).await? == 0 {
                    return Ok(None);
                }
            }
        }

        pub async fn call(&mut self, body: Bytes) -> Bytes {
            self.send(body).await.expect("the broker is up");
            self.recv()
                .await
                .expect("a reply")
                .expect("the broker is up")
        }
    }
}

use bytes::{Buf, BufMut, Bytes, BytesMut};
use wire::Conn;

#[derive(Default)]
struct BrokerState {
    logs: Vec<Vec<(u64, u64)>>,
    committed: Vec<u64>,
    max_lag: u64,
}

impl BrokerState {
    fn note_lag(&mut self) {
        let produced: u64 = self.logs.iter().map(|l| l.len() as u64).sum();
        let committed: u64 = self.committed.iter().sum();
        self.max_lag = self.max_lag.max(produced.saturating_sub(committed));
    }

    fn serve(&mut self, mut req: Bytes) -> Bytes {
        let mut out = BytesMut::new();
        match req.get_u8() {
            1 => {
                for _ in 0..req.get_u32() {
                    let (p, key, value) = (req.get_u32() as usize, req.get_u64(), req.get_u64());
                    self.logs[p].push((key, value));
                }
                self.note_lag();
            }
            2 => {
                let (p, from, max) = (
                    req.get_u32() as usize,
                    req.get_u64() as usize,
                    req.get_u32() as usize,
                );
                let log = &self.logs[p];
                let from = from.min(log.len());
                let to = (from + max).min(log.len());
                out.put_u32((to - from) as u32);
                for (i, (key, value)) in log[from..to].iter().enumerate() {
                    out.put_u64((from + i) as u64);
                    out.put_u64(*key);
                    out.put_u64(*value);
                }
            }
            3 => {
                for _ in 0..req.get_u32() {
                    let (p, next) = (req.get_u32() as usize, req.get_u64());
                    self.committed[p] = next;
                }
                self.note_lag();
            }
            _ => out.put_u64(self.committed[req.get_u32() as usize]),
        }
        out.freeze()
    }
}

async fn broker(listener: tokio::net::TcpListener, state: Arc<Mutex<BrokerState>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let mut conn = Conn::new(stream);
            while let Ok(Some(req)) = conn.recv().await {
                let reply = state.lock().unwrap().serve(req);
                if conn.send(reply).await.is_err() {
                    break;
                }
            }
        });
    }
}

struct RunFigures {
    seconds: f64,
    effects: Vec<ConsumerRecord>,
    produced: u64,
    max_lag: u64,
    restarts: usize,
}

async fn consume(
    addr: std::net::SocketAddr,
    owned: Vec<u32>,
    handle: Handle,
    semantics: Semantics,
    schedule: Schedule,
    store: Arc<Mutex<Store>>,
    producing: Arc<std::sync::atomic::AtomicBool>,
) -> usize {
    let mut restarts = 0;
    'process: loop {
        let mut conn = Conn::new(tokio::net::TcpStream::connect(addr).await.expect("connect"));
        let mut position = Vec::new();
        for &p in &owned {
            let mut req = BytesMut::new();
            req.put_u8(4);
            req.put_u32(p);
            position.push(conn.call(req.freeze()).await.get_u64());
        }
        loop {
            let done = !producing.load(std::sync::atomic::Ordering::SeqCst);
            let mut records = Vec::new();
            for (i, &p) in owned.iter().enumerate() {
                let mut req = BytesMut::new();
                req.put_u8(2);
                req.put_u32(p);
                req.put_u64(position[i]);
                req.put_u32(50);
                let mut reply = conn.call(req.freeze()).await;
                for _ in 0..reply.get_u32() {
                    let (offset, key, value) = (reply.get_u64(), reply.get_u64(), reply.get_u64());
                    records.push(ConsumerRecord {
                        partition: p,
                        offset,
                        key,
                        value,
                    });
                }
                position[i] += records.iter().filter(|r| r.partition == p).count() as u64;
            }
            if records.is_empty() {
                if done {
                    return restarts;
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                continue;
            }
            let (mut consumer, mut sink) = fresh_process(&schedule, &store);
            let result = handle(semantics, &records, &mut consumer, &mut sink);
            // Commits made before a crash reached the coordinator: send them (the last per
            // partition is what a sequence of commits leaves).
            let mut last: BTreeMap<u32, u64> = BTreeMap::new();
            last.extend(consumer.made);
            let mut req = BytesMut::new();
            req.put_u8(3);
            req.put_u32(last.len() as u32);
            for (p, next) in last {
                req.put_u32(p);
                req.put_u64(next);
            }
            conn.call(req.freeze()).await;
            if result.is_err() {
                restarts += 1;
                continue 'process;
            }
        }
    }
}

/// Records per produce request in the delivery lab.
const PRODUCE_BATCH: u64 = 20;

async fn delivery_run(knobs: &DeliveryKnobs, semantics: Semantics, handle: Handle) -> RunFigures {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(Mutex::new(BrokerState {
        logs: vec![Vec::new(); knobs.partitions as usize],
        committed: vec![0; knobs.partitions as usize],
        max_lag: 0,
    }));
    let server = tokio::spawn(broker(listener, state.clone()));
    let producing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let start = std::time::Instant::now();
    let (records, partitions) = (knobs.records, knobs.partitions);
    let flag = producing.clone();
    let producer = tokio::spawn(async move {
        let mut conn = Conn::new(tokio::net::TcpStream::connect(addr).await.expect("connect"));
        // Batches of PRODUCE_BATCH records, one request each, as a producer's accumulator sends.
        for first in (0..records).step_by(PRODUCE_BATCH as usize) {
            let last = (first + PRODUCE_BATCH).min(records);
            let mut req = BytesMut::new();
            req.put_u8(1);
            req.put_u32((last - first) as u32);
            for value in first..last {
                let key = value % 97;
                let key_bytes = format!("user-{key}");
                let p = (murmur2(key_bytes.as_bytes()) & 0x7fff_ffff) as u32 % partitions;
                req.put_u32(p);
                req.put_u64(key);
                req.put_u64(value);
            }
            conn.call(req.freeze()).await;
        }
        flag.store(false, std::sync::atomic::Ordering::SeqCst);
    });
    let store = Arc::new(Mutex::new(Store::default()));
    let per_partition = knobs.records / u64::from(knobs.partitions);
    let crashes: Vec<Crash> = (1..=knobs.crashes as u64)
        .map(|k| Crash {
            point: knobs.crash_point,
            partition: 0,
            offset: k * per_partition / (knobs.crashes as u64 + 1),
        })
        .collect();
    let consumers: Vec<_> = (0..knobs.consumers)
        .map(|c| {
            let owned = (0..knobs.partitions)
                .filter(|p| *p as usize % knobs.consumers == c)
                .collect();
            let schedule = Arc::new(Mutex::new(if c == 0 {
                crashes.clone()
            } else {
                Vec::new()
            }));
            tokio::spawn(consume(
                addr,
                owned,
                handle,
                semantics,
                schedule,
                store.clone(),
                producing.clone(),
            ))
        })
        .collect();
    producer.await.unwrap();
    let mut restarts = 0;
    for c in consumers {
        restarts += c.await.unwrap();
    }
    let seconds = start.elapsed().as_secs_f64();
    server.abort();
    let effects = std::mem::take(&mut store.lock().unwrap().effects);
    let max_lag = state.lock().unwrap().max_lag;
    RunFigures {
        seconds,
        effects,
        produced: knobs.records,
        max_lag,
        restarts,
    }
}

/// The delivery lab: for each semantics, a fresh broker on localhost, a producer writing
/// `records` keyed records, and `consumers` consumers (consumer c reads the partitions p with
/// p % consumers == c) running the exercise's `handle`, consumer 0 crashing as the knobs say.
pub fn delivery_lab(knobs: &DeliveryKnobs, handle: Handle) {
    assert!(knobs.partitions > 0 && knobs.consumers > 0);
    println!(
        "{} records on {} partitions, {} consumers over TCP on localhost; {} crashes of consumer 0 at {:?}\n",
        knobs.records, knobs.partitions, knobs.consumers, knobs.crashes, knobs.crash_point
    );
    let rt = crate::lab::runtime();
    let mut table = Table::new(&[
        "semantics",
        "records/s",
        "max lag",
        "restarts",
        "duplicates",
        "losses",
        "per-key reorders",
    ]);
    for semantics in [
        Semantics::AtMostOnce,
        Semantics::AtLeastOnce,
        Semantics::ExactlyOnce,
    ] {
        let run = rt.block_on(delivery_run(knobs, semantics, handle));
        let mut seen = std::collections::HashSet::new();
        let mut last: HashMap<u64, u64> = HashMap::new();
        let mut reorders = 0;
        for r in &run.effects {
            if seen.insert((r.partition, r.offset)) {
                if last.get(&r.key).is_some_and(|&v| v > r.value) {
                    reorders += 1;
                }
                last.insert(r.key, r.value);
            }
        }
        let duplicates = run.effects.len() - seen.len();
        table.row(&[
            format!("{semantics:?}"),
            format!("{:.0}", run.effects.len() as f64 / run.seconds),
            run.max_lag.to_string(),
            run.restarts.to_string(),
            duplicates.to_string(),
            (run.produced - seen.len() as u64).to_string(),
            reorders.to_string(),
        ]);
    }
    table.print();
    println!("\nDuplicates and losses come only from crashes; per-key reorders must stay 0.");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_utils_test_vectors() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, hash) in cases {
            assert_eq!(murmur2(key), hash, "{:?}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn a_full_batch_is_sent_at_once_and_a_lingering_one_after_the_linger() {
        let to_0 = || RoundRobin {
            partitions: 2,
            next: 0,
            by_key: |_, _| 0,
        };
        let values = |sent: Vec<Batch>| -> Vec<Vec<u64>> {
            sent.iter()
                .map(|b| b.records.iter().map(|r| r.1).collect())
                .collect()
        };
        let mut full = Producer::new(to_0(), 2, 2, 10);
        for v in 0..3 {
            full.send(Some(b"k"), v);
        }
        assert_eq!(values(full.take_sent()), [[0, 1]], "full after two records");
        let mut lingering = Producer::new(to_0(), 2, 3, 2);
        for v in 0..3 {
            lingering.send(Some(b"k"), v);
        }
        assert_eq!(
            values(lingering.take_sent()),
            [[0, 1]],
            "sent 2 ticks after it opened"
        );
    }

    #[test]
    fn each_scheduled_crash_fires_once_and_the_consumer_resumes_from_its_commits() {
        let crashes = [Crash {
            point: CrashPoint::AfterProcess,
            partition: 0,
            offset: 1,
        }];
        let mut handler = |records: &[ConsumerRecord], c: &mut Consumer, s: &mut Sink| {
            for r in records {
                s.apply(r)?;
                c.commit(r.partition, r.offset + 1)?;
            }
            Ok(())
        };
        let o = run_consumer(sample_log(&[3]), 2, &crashes, &mut handler);
        let offsets: Vec<u64> = o.effects.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [0, 1, 1, 2]);
        assert_eq!((o.restarts, o.committed.as_slice()), (1, &[3][..]));
    }
}
