//! Backpressure per partition, against Apache Kafka: one partition's store writes stall for
//! longer than `max.poll.interval.ms` while a producer writes. The other partitions keep
//! archiving, the consumer keeps polling (its stalled partition paused), so the member never
//! leaves the group; once the store answers again, every record is in exactly one file.

mod common;

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use hubcap::store::faults::{Faults, FaultyStore};
use hubcap::store::Location;

const PARTITIONS: i32 = 4;
/// The consumer's `max.poll.interval.ms`, and how long partition 0's writes stall: 2.5 times it.
const MAX_POLL: Duration = Duration::from_secs(10);
const STALL: Duration = Duration::from_secs(25);

/// The run's log, captured: this test binary runs hubcap in-process.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        std::io::stderr().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn next_offsets(out: &std::path::Path, group: &str, topic: &str) -> Vec<i64> {
    (0..PARTITIONS)
        .map(|p| local_next_offset(out, group, topic, p))
        .collect()
}

/// Waits until `done(next offsets)` holds, or panics after `timeout`.
async fn wait_offsets(
    out: &std::path::Path,
    group: &str,
    topic: &str,
    timeout: Duration,
    what: &str,
    done: impl Fn(&[i64]) -> bool,
) -> Vec<i64> {
    let deadline = Instant::now() + timeout;
    loop {
        let next = next_offsets(out, group, topic);
        if done(&next) {
            return next;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {timeout:?}: {next:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_partition_holds_back_only_itself_and_the_member_stays() {
    let log = Log::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter("info,librdkafka=info,rdkafka=warn")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let t = Kafka::shared();
    let topic = unique("stall");
    let group = unique("g");
    t.create_topic(&topic, PARTITIONS).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_string();
    let producer = BackgroundProducer::start(&t.brokers, &topic, 40, Duration::from_millis(100));

    let base = Location::open(&out, "--output").unwrap();
    let faulty = FaultyStore::new(base.store.clone(), Faults::default());
    let control = faulty.counts();
    let output = Location {
        store: Arc::new(faulty),
        ..base
    };
    let checkpoints = output.child("_checkpoints");
    let max_poll = format!("max.poll.interval.ms={}", MAX_POLL.as_millis());
    let cfg = run_config(&[
        "--brokers",
        &t.brokers,
        "--topic",
        &topic,
        "--group",
        &group,
        "--output",
        &out,
        "--namespace",
        "ns",
        "--window-size",
        "4KiB",
        "--window-time",
        "1s",
        "-X",
        &max_poll,
        "-X",
        "session.timeout.ms=6000",
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let run = tokio::spawn(hubcap::run::run_with(
        cfg,
        output,
        checkpoints,
        stop.clone(),
    ));
    wait_offsets(
        dir.path(),
        &group,
        &topic,
        Duration::from_secs(60),
        "every partition checkpointed",
        |next| next.iter().all(|&n| n > 0),
    )
    .await;

    // Partition 0's data files, manifests and checkpoint stop being written.
    control.stall_writes(Some(&format!("{topic}/0")));
    tokio::time::sleep(Duration::from_secs(1)).await; // writes under way land
    let before = next_offsets(dir.path(), &group, &topic);
    tokio::time::sleep(STALL - Duration::from_secs(1)).await;
    let during = next_offsets(dir.path(), &group, &topic);
    let lines_before_release = log.text().lines().count();
    control.stall_writes(None);
    println!("checkpoints when the stall began {before:?}, {STALL:?} later {during:?}");
    assert_eq!(during[0], before[0], "partition 0 stalled");
    for p in 1..PARTITIONS as usize {
        assert!(
            during[p] > before[p] + 100,
            "partition {p} kept archiving while partition 0 stalled: {before:?} -> {during:?}"
        );
    }

    producer.wait_for_more(200, Duration::from_secs(60)).await;
    let produced = producer.finish().await;
    let mut ends = vec![0i64; PARTITIONS as usize];
    for r in &produced {
        ends[r.partition as usize] = ends[r.partition as usize].max(r.offset + 1);
    }
    wait_offsets(
        dir.path(),
        &group,
        &topic,
        Duration::from_secs(90),
        "partition 0 caught up after the stall",
        |next| next == ends.as_slice(),
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run stops")
        .unwrap()
        .expect("the run succeeds");

    let text = log.text();
    let stalled: Vec<&str> = text.lines().take(lines_before_release).collect();
    for needle in ["partitions revoked", "MAXPOLL", "leaving group"] {
        let hits: Vec<&&str> = stalled.iter().filter(|l| l.contains(needle)).collect();
        assert!(hits.is_empty(), "the member left the group: {hits:#?}");
    }
    assert_eq!(
        stalled
            .iter()
            .filter(|l| l.contains("partitions assigned"))
            .count(),
        1,
        "one assignment, never a rebalance"
    );
    let files = read_local(dir.path());
    let a = audit(&files, &topic, &produced);
    check_manifests(dir.path(), &files);
    println!(
        "stall: partition 0's writes held {STALL:?} (max.poll.interval.ms {MAX_POLL:?}); partitions 1-3 archived \
         {} records meanwhile; no rebalance; {} files, {} events of {} produced, {} duplicates, {} missing",
        (1..PARTITIONS as usize)
            .map(|p| during[p] - before[p])
            .sum::<i64>(),
        a.files,
        a.events,
        produced.len(),
        a.duplicates,
        a.missing
    );
    assert_eq!((a.events, a.duplicates, a.missing), (produced.len(), 0, 0));
}
