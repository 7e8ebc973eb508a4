//! What only a real broker shows, against Apache Kafka, each read back with fastavro:
//! transactions (committed, aborted and open ones, with their control records), a compacted
//! topic after compaction ran, retention that deleted the oldest segments before hubcap first
//! read them, and a broker that crashes and restarts under a continuous run.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// A transactional producer writing [`record`]s, keeping what each transaction wrote.
struct Transactional {
    producer: FutureProducer,
    topic: String,
    next: usize,
}

impl Transactional {
    fn new(brokers: &str, topic: &str) -> Transactional {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("transactional.id", unique("tx"))
            .set("linger.ms", "5")
            .create()
            .unwrap();
        producer.init_transactions(Duration::from_secs(30)).unwrap();
        Transactional {
            producer,
            topic: topic.to_string(),
            next: 0,
        }
    }

    /// Begins a transaction and writes `count` records round-robin over `partitions`; returns
    /// them as acked (the transaction is still open).
    async fn write(&mut self, count: usize, partitions: i32) -> Vec<Produced> {
        self.producer.begin_transaction().unwrap();
        let first = self.next;
        self.next += count;
        let sends = (first..first + count).map(|i| {
            let (key, value, headers) = record(i);
            let producer = &self.producer;
            let topic = &self.topic;
            let ts = 1_790_000_000_000 + i as i64 * 250;
            async move {
                let rec = future_record(topic, &key, &value, &headers, ts)
                    .partition(i as i32 % partitions);
                let d = producer
                    .send(rec, Duration::from_secs(30))
                    .await
                    .map_err(|(e, _)| e)
                    .unwrap();
                Produced {
                    partition: d.partition,
                    offset: d.offset,
                    key,
                    value,
                    headers,
                    timestamp: ts,
                }
            }
        });
        futures::future::join_all(sends).await
    }

    fn commit(&self) {
        self.producer
            .commit_transaction(Duration::from_secs(30))
            .unwrap();
    }

    fn abort(&self) {
        self.producer
            .abort_transaction(Duration::from_secs(30))
            .unwrap();
    }
}

/// Every (partition, offset) a plain consumer reads from the start to the end with
/// `isolation_level`: what Kafka holds now.
fn read_offsets(
    brokers: &str,
    topic: &str,
    partitions: i32,
    isolation_level: &str,
) -> BTreeSet<(i32, i64)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("isolation.level", isolation_level)
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut seen = BTreeSet::new();
    let mut at_end = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while at_end.len() < partitions as usize {
        assert!(Instant::now() < deadline, "reading {topic} took over 60 s");
        match c.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                seen.insert((m.partition(), m.offset()));
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    seen
}

/// Committed, aborted and open transactions across partitions. hubcap reads with
/// `isolation.level=read_committed`: every committed record is archived once and no aborted one;
/// `--once` ends at the last stable offset although transaction markers (and an open
/// transaction) sit at the end; a later run archives the open transaction once it commits.
#[tokio::test(flavor = "multi_thread")]
async fn transactions_archive_committed_records_once_and_no_aborted_one() {
    const PARTITIONS: i32 = 3;
    let t = Kafka::shared();
    let topic = unique("tx");
    let group = unique("g");
    t.create_topic(&topic, PARTITIONS).await;
    let mut tx = Transactional::new(&t.brokers, &topic);
    let (mut committed, mut aborted) = (Vec::new(), Vec::new());
    for n in 0..24 {
        let records = tx.write(5 + n % 7, PARTITIONS).await;
        // Aborted about one in three, in no regular pattern.
        if n % 3 == 1 || n == 10 {
            tx.abort();
            aborted.extend(records);
        } else {
            tx.commit();
            committed.extend(records);
        }
    }
    // A transaction still open while the first run reads.
    let open = tx.write(9, PARTITIONS).await;
    tx.producer.flush(Duration::from_secs(30)).unwrap();

    let out = tempfile::tempdir().unwrap();
    let output = out.path().to_str().unwrap();
    let started = Instant::now();
    let (ok, _, stderr) = run_once(
        &t.brokers,
        &topic,
        &group,
        output,
        &["--window-size", "2KiB"],
    );
    let first_run = started.elapsed();
    assert!(ok, "--once with an open transaction:\n{stderr}");
    let files = read_local(out.path());
    let a = audit(&files, &topic, &committed);
    assert_eq!(
        (a.events, a.duplicates, a.missing),
        (committed.len(), 0, 0),
        "every committed record once, none aborted or open"
    );

    // The open transaction commits; the next run archives just it.
    tx.commit();
    let (ok, _, stderr) = run_once(
        &t.brokers,
        &topic,
        &group,
        output,
        &["--window-size", "2KiB"],
    );
    assert!(ok, "--once after the commit:\n{stderr}");
    let all: Vec<Produced> = committed.iter().chain(&open).cloned().collect();
    let files = read_local(out.path());
    let a = audit(&files, &topic, &all);
    assert_eq!((a.events, a.duplicates, a.missing), (all.len(), 0, 0));
    check_manifests(out.path(), &files);

    // What read_uncommitted sees and read_committed does not: the aborted records; neither sees
    // the markers. Together they are the offsets no file holds.
    let uncommitted = read_offsets(&t.brokers, &topic, PARTITIONS, "read_uncommitted");
    let aborted_offsets: BTreeSet<(i32, i64)> =
        aborted.iter().map(|r| (r.partition, r.offset)).collect();
    assert!(aborted_offsets.is_subset(&uncommitted));
    let marks = t.watermarks(&topic, PARTITIONS);
    let offsets_in_log: i64 = marks.iter().map(|(low, high)| high - low).sum();
    let markers = offsets_in_log as usize - uncommitted.len();
    assert!(
        markers >= 25,
        "one marker per partition a transaction wrote to"
    );
    for p in 0..PARTITIONS {
        let c = local_checkpoint(out.path(), &group, &topic, p);
        assert_eq!(
            c["next_offset"], marks[p as usize].1,
            "partition {p}: the checkpoint passed the final marker"
        );
    }

    // The files alone cannot tell markers and aborted records from lost files; Kafka can.
    let (clean, report) = audit_cli_with(out.path(), &group, &[]);
    assert!(!clean, "without --brokers the offset gaps fail:\n{report}");
    let (clean, report) = audit_cli_with(out.path(), &group, &["--brokers", &t.brokers]);
    println!("{report}");
    assert!(clean, "hubcap audit --brokers:\n{report}");
    let explained = report
        .lines()
        .filter(|l| l.contains("hold no committed record in Kafka"))
        .count();
    assert!(explained >= PARTITIONS as usize, "{report}");
    println!(
        "transactions: {} records committed ({} of them in the transaction open during the first run, which took \
         {first_run:.1?}), {} aborted, {markers} control records; {} files, {} events, {} duplicates, {} missing",
        all.len(),
        open.len(),
        aborted.len(),
        a.files,
        a.events,
        a.duplicates,
        a.missing
    );
}

/// `hubcap run --once` of `topic` into `out` with 4 KiB windows, then fastavro's reading checked
/// against `expected`: every record once, nothing else.
fn archive_once(t: &Kafka, topic: &str, group: &str, out: &Path, expected: &[Produced]) -> Audit {
    let output = out.to_str().unwrap();
    let (ok, _, stderr) = run_once(&t.brokers, topic, group, output, &["--window-size", "4KiB"]);
    assert!(ok, "--once of {topic}:\n{stderr}");
    let a = audit(&read_local(out), topic, expected);
    assert_eq!(
        (a.events, a.duplicates, a.missing),
        (expected.len(), 0, 0),
        "{stderr}"
    );
    a
}

/// Waits until Kafka holds exactly the offsets `expected` (read_uncommitted: tombstones too),
/// i.e. the log cleaner finished; panics after two minutes.
fn wait_compacted(t: &Kafka, topic: &str, partitions: i32, expected: &BTreeSet<(i32, i64)>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let held = read_offsets(&t.brokers, topic, partitions, "read_uncommitted");
        if &held == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the log cleaner did not compact {topic} within 120 s: {} records held, {} expected",
            held.len(),
            expected.len()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A compacted topic after the log cleaner ran: offsets inside the log hold no record. `--once`
/// finishes, archives exactly the records Kafka still holds, and the audit is clean with
/// `--allow-gaps`, and with `--brokers`, which finds the offsets without records in Kafka.
#[tokio::test(flavor = "multi_thread")]
async fn a_compacted_topic_is_archived_exactly_once_through_its_offset_gaps() {
    const PARTITIONS: i32 = 2;
    const KEYS: usize = 37;
    let t = Kafka::shared();
    let topic = unique("compacted");
    let group = unique("g");
    t.create_topic_with(
        &topic,
        PARTITIONS,
        &[
            ("cleanup.policy", "compact"),
            ("segment.ms", "500"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("min.compaction.lag.ms", "0"),
            ("delete.retention.ms", "86400000"),
        ],
    )
    .await;
    // Rounds over the same keys, each in a segment of its own: a segment rolls when a record's
    // timestamp is segment.ms past the segment's first one, so rounds are a minute apart in
    // record time. The last round only rolls the one before it. A compacted topic takes only
    // keyed records; tombstones (no value) among them.
    const ROUND: usize = 4 * KEYS;
    let keyed = |i: usize| {
        let (_, value, headers) = record(i);
        let key = format!("user-{}", i % KEYS).into_bytes();
        let ts = 1_790_000_000_000 + (i / ROUND) as i64 * 60_000 + (i % ROUND) as i64;
        (Some(key), value, headers, ts)
    };
    let mut produced = Vec::new();
    for round in 0..4 {
        let count = if round == 3 { 10 } else { ROUND };
        produced.extend(produce_with(&t.brokers, &topic, produced.len(), count, keyed).await);
    }
    // The cleaner compacts the rolled segments (the first three rounds) and leaves the active
    // one: the last record of each key in those rounds survives, and the whole last round.
    let mut last_of_key = std::collections::BTreeMap::new();
    for r in &produced[..3 * ROUND] {
        last_of_key.insert(r.key.clone(), r);
    }
    let mut survivors: Vec<Produced> = last_of_key.into_values().cloned().collect();
    survivors.extend_from_slice(&produced[3 * ROUND..]);
    let expected = survivors.iter().map(|r| (r.partition, r.offset)).collect();
    wait_compacted(t, &topic, PARTITIONS, &expected);

    let out = tempfile::tempdir().unwrap();
    let a = archive_once(t, &topic, &group, out.path(), &survivors);
    let (clean, report) = audit_cli_with(out.path(), &group, &["--allow-gaps"]);
    assert!(clean, "hubcap audit --allow-gaps:\n{report}");
    // With the brokers, the audit sees the offsets below the first file and asks Kafka about
    // them: compacted away, nothing lost.
    let (clean, report) = audit_cli_with(out.path(), &group, &["--brokers", &t.brokers]);
    println!("{report}");
    assert!(clean, "hubcap audit --brokers:\n{report}");
    println!(
        "compaction: {} records produced, {} left after compaction; {} files, {} events, {} duplicates, {} missing; \
         audit clean with --allow-gaps and with --brokers",
        produced.len(),
        survivors.len(),
        a.files,
        a.events,
        a.duplicates,
        a.missing
    );
}

/// Retention deleted the oldest segments before hubcap first read the topic: hubcap starts at
/// the log start, archives what is left exactly once, and `hubcap audit --brokers` says which
/// offsets were removed before they were archived.
#[tokio::test(flavor = "multi_thread")]
async fn retention_before_the_first_read_is_reported_by_the_audit() {
    const PARTITIONS: i32 = 2;
    let t = Kafka::shared();
    let topic = unique("retained");
    let group = unique("g");
    t.create_topic_with(
        &topic,
        PARTITIONS,
        &[("retention.ms", "3600000"), ("segment.ms", "500")],
    )
    .await;
    // Records from months ago, past the hour of retention, then records of now.
    let old = produce(&t.brokers, &topic, 0, 300).await;
    std::thread::sleep(Duration::from_millis(1200));
    let now = chrono::Utc::now().timestamp_millis();
    let fresh = produce_stamped(&t.brokers, &topic, 300, 200, |i| now + i as i64).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let marks = loop {
        let marks = t.watermarks(&topic, PARTITIONS);
        let first_fresh = |p: i32| {
            fresh
                .iter()
                .filter(|r| r.partition == p)
                .map(|r| r.offset)
                .min()
                .unwrap()
        };
        if (0..PARTITIONS).all(|p| marks[p as usize].0 == first_fresh(p)) {
            break marks;
        }
        assert!(
            Instant::now() < deadline,
            "retention did not delete the old segments within 120 s: {marks:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    };

    let out = tempfile::tempdir().unwrap();
    let a = archive_once(t, &topic, &group, out.path(), &fresh);
    let (clean, report) = audit_cli_with(out.path(), &group, &["--brokers", &t.brokers]);
    println!("{report}");
    assert!(clean, "hubcap audit --brokers:\n{report}");
    for (p, (low, _)) in marks.iter().enumerate() {
        let removed = format!(
            "offsets 0..{} were removed by Kafka's retention before hubcap first read this partition",
            low - 1
        );
        assert!(
            report.contains(&removed),
            "partition {p}: {removed:?} in\n{report}"
        );
    }
    println!(
        "retention: {} records deleted by retention before the first run, {} left; {} files, {} events, {} duplicates, \
         {} missing; low watermarks {:?}",
        old.len(),
        fresh.len(),
        a.files,
        a.events,
        a.duplicates,
        a.missing,
        marks.iter().map(|m| m.0).collect::<Vec<_>>()
    );
}

/// The broker crashes (SIGKILL) and restarts in the middle of a continuous run while a producer
/// writes: hubcap waits, goes on archiving, and nothing is lost or doubled.
#[tokio::test(flavor = "multi_thread")]
async fn a_broker_restart_under_a_continuous_run_loses_and_doubles_nothing() {
    const PARTITIONS: i32 = 4;
    let mut t = Kafka::start();
    let topic = unique("restart");
    let group = unique("g");
    t.create_topic(&topic, PARTITIONS).await;
    let out = tempfile::tempdir().unwrap();
    let producer = BackgroundProducer::start(&t.brokers, &topic, 20, Duration::from_millis(100));
    let mut h = hubcap();
    h.args(["run", "--brokers", &t.brokers, "--topic", &topic])
        .args(["--group", &group, "--output", out.path().to_str().unwrap()])
        .args([
            "--namespace",
            "ns",
            "--window-size",
            "8KiB",
            "--window-time",
            "1s",
        ]);
    let mut h = Instance::spawn("hubcap", h);
    h.wait_for_line(0, "partitions assigned", Duration::from_secs(60));
    h.wait_for_line(0, "file written", Duration::from_secs(30));

    let before = h.line_count();
    let down_at = Instant::now();
    t.crash();
    std::thread::sleep(Duration::from_secs(3));
    t.restart();
    let back_after = down_at.elapsed();
    producer.wait_for_more(200, Duration::from_secs(90)).await;
    let after_restart = h.line_count();
    h.wait_for_line(after_restart, "file written", Duration::from_secs(60));
    assert!(
        h.exited().is_none(),
        "hubcap survives the restart\n{}",
        h.log()
    );
    let files_since = h.count_since(before, "file written");

    h.signal(libc::SIGTERM);
    let status = h.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "after SIGTERM: {status}\n{}", h.log());
    let produced = producer.finish().await;
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, produced.len() as i64);
    let (ok, _, stderr) = run_once(
        &t.brokers,
        &topic,
        &group,
        out.path().to_str().unwrap(),
        &["--namespace", "ns", "--window-size", "8KiB"],
    );
    assert!(ok, "final --once:\n{stderr}");
    let files = read_local(out.path());
    let a = audit(&files, &topic, &produced);
    check_manifests(out.path(), &files);
    let (clean, report) = audit_cli_with(out.path(), &group, &["--brokers", &t.brokers]);
    assert!(clean, "hubcap audit --brokers:\n{report}");
    println!(
        "broker restart: broker back {back_after:.1?} after the crash; the continuous run wrote {files_since} files \
         since; after the final --once: {} files, {} events of {} produced, {} duplicates, {} missing",
        a.files,
        a.events,
        produced.len(),
        a.duplicates,
        a.missing
    );
    assert_eq!((a.events, a.duplicates, a.missing), (produced.len(), 0, 0));
}
