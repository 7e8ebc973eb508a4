//! Completeness watermarks against Apache Kafka: an idle partition never holds a topic's
//! watermark back, a lagging one does until it catches up, and a run killed with SIGKILL over
//! and over never leaves a watermark past what its checkpoints say is durable. The archive is
//! read back with fastavro, the watermark document as JSON and through `hubcap inspect`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::Value;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Produces `count` records of `size` bytes into `partition`; returns their offsets.
async fn produce_to(
    brokers: &str,
    topic: &str,
    partition: i32,
    count: usize,
    size: usize,
) -> Vec<i64> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let body = vec![b'x'; size];
    let mut offsets = Vec::new();
    for _ in 0..count {
        let rec = FutureRecord::<(), _>::to(topic)
            .partition(partition)
            .payload(&body);
        let d = producer.send(rec, Duration::from_secs(30)).await.unwrap();
        offsets.push(d.offset);
    }
    offsets
}

/// A continuous run of `topic` into `output` that checks watermarks every `interval`, files
/// plus `extra` flags (the windows, librdkafka settings).
fn continuous(
    t: &Kafka,
    topic: &str,
    group: &str,
    output: &str,
    interval: &str,
    extra: &[&str],
) -> std::process::Command {
    let mut cmd = hubcap();
    cmd.args([
        "run",
        "--brokers",
        &t.brokers,
        "--topic",
        topic,
        "--group",
        group,
    ])
    .args(["--output", output, "--namespace", "ns"])
    .args(["--watermark-interval", interval])
    .args(extra);
    cmd
}

fn watermark_file(dir: &Path, group: &str, topic: &str) -> std::path::PathBuf {
    dir.join("_watermarks")
        .join(group)
        .join(format!("{topic}.json"))
}

fn read_watermark(dir: &Path, group: &str, topic: &str) -> Option<Value> {
    let data = std::fs::read(watermark_file(dir, group, topic)).ok()?;
    Some(serde_json::from_slice(&data).unwrap())
}

/// Polls the watermark document until `done` holds; panics with the last one and the log.
fn wait_watermark(
    dir: &Path,
    group: &str,
    topic: &str,
    run: &Instance,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    while Instant::now() < deadline {
        if let Some(w) = read_watermark(dir, group, topic) {
            if done(&w) {
                return w;
            }
            last = Some(w);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what}: not within {timeout:?}; last watermark {last:#?}\nlog:\n{}",
        run.log()
    );
}

fn part(w: &Value, partition: i64) -> &Value {
    w["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["partition"] == partition)
        .unwrap_or_else(|| panic!("no partition {partition} in {w:#}"))
}

/// Each partition's archived offsets and their timestamps (x-opt-enqueued-time), by fastavro.
fn archived(dir: &Path, topic: &str) -> BTreeMap<i32, BTreeMap<i64, i64>> {
    let mut out: BTreeMap<i32, BTreeMap<i64, i64>> = BTreeMap::new();
    for f in read_local(dir) {
        let p = partition_of(f["name"].as_str().unwrap(), topic);
        for r in f["records"].as_array().unwrap() {
            let offset = r["seq"].as_i64().unwrap();
            let ts = r["sys"]["x-opt-enqueued-time"]["long"].as_i64().unwrap();
            let before = out.entry(p).or_default().insert(offset, ts);
            assert!(before.is_none(), "partition {p} offset {offset} twice");
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_partition_never_holds_the_watermark_back_and_a_lagging_one_does_until_it_catches_up(
) {
    let t = Kafka::shared();
    let topic = unique("wm-lag");
    // The brokers stamp records as they append them, as Event Hubs does.
    let stamped = [("message.timestamp.type", "LogAppendTime")];
    t.create_topic_with(&topic, 3, &stamped).await;
    let group = unique("g");
    let out = tempfile::tempdir().unwrap();
    let dir = out.path();
    let output = dir.to_str().unwrap();
    let start = now_ms();

    // Partition 0: five records archived by a --once run, then nothing more.
    // Partition 2: never written to.
    produce_to(&t.brokers, &topic, 0, 5, 100).await;
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, output, &[]);
    assert!(ok, "{stderr}");
    let w0 = read_watermark(dir, &group, &topic).expect("--once writes the watermark at its end");
    assert!(w0["complete_until_ms"].as_i64().unwrap() >= start, "{w0:#}");
    let idle_last = *archived(dir, &topic)[&0].values().max().unwrap();

    // A continuous run: files roll at 4 KiB or after 15 s.
    let window = ["--window-size", "4KiB", "--window-time", "15s"];
    let mut run = Instance::spawn(
        "archiver",
        continuous(t, &topic, &group, output, "300ms", &window),
    );
    run.wait_for_line(0, "partitions assigned", Duration::from_secs(60));

    // Partition 1: 43 records of 1 KB. The ones that fill 4 KiB files are archived at once;
    // the last ones (43 is prime) wait in the open window.
    std::thread::sleep(Duration::from_millis(500));
    produce_to(&t.brokers, &topic, 1, 43, 1_000).await;
    let produced_at = now_ms();

    // Lagging: the watermark is partition 1's last archived record, neither partition 0's last
    // record nor the check's time. Taken once partition 1's next offset has stayed put for 2 s
    // (the full files are archived, the rest waits for the window's time).
    let mut settled: Option<(i64, Instant)> = None;
    let lagging = wait_watermark(
        dir,
        &group,
        &topic,
        &run,
        Duration::from_secs(12),
        "partition 1 behind, its full files archived",
        |w| {
            let p1 = part(w, 1);
            let next = p1["next_offset"].as_i64().unwrap_or(0);
            if p1["basis"] != "behind" || next == 0 {
                return false;
            }
            match settled {
                Some((n, since)) if n == next => since.elapsed() >= Duration::from_secs(2),
                _ => {
                    settled = Some((next, Instant::now()));
                    false
                }
            }
        },
    );
    let next1 = part(&lagging, 1)["next_offset"].as_i64().unwrap();
    assert!(
        next1 < 43,
        "everything was archived before the check: {lagging:#}"
    );
    let until = lagging["complete_until_ms"].as_i64().unwrap();
    // What fastavro reads agrees: partition 1's files hold the offsets below the checkpoint,
    // and the watermark is the time of the last of them.
    let files = archived(dir, &topic);
    let p1: Vec<i64> = files[&1].keys().copied().collect();
    assert_eq!(p1, (0..next1).collect::<Vec<_>>(), "partition 1's files");
    assert_eq!(until, files[&1][&(next1 - 1)], "{lagging:#}");
    assert!(
        until > idle_last,
        "the idle partition held the watermark back: {lagging:#}"
    );
    for p in [0, 2] {
        assert_eq!(part(&lagging, p)["basis"], "caught-up", "{lagging:#}");
        let idle = part(&lagging, p)["complete_until_ms"].as_i64().unwrap();
        assert!(idle >= produced_at - 1_000 && idle >= until, "{lagging:#}");
    }
    assert_eq!(files[&0].len(), 5);

    // `inspect --watermarks` shows the same document.
    let shown = hubcap()
        .args(["inspect", "--watermarks", output])
        .output()
        .unwrap();
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let line: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(line["topic"], topic.as_str());
    assert!(line["complete_until_ms"].as_i64().unwrap() >= until);
    assert!(line["behind_seconds"].as_f64().unwrap() >= 0.0, "{line:#}");
    assert_eq!(line["partitions"].as_array().unwrap().len(), 3, "{line:#}");

    // Catching up: the window's 15 s run out, the last records are archived, and the
    // watermark moves to the check's time.
    let caught_up = wait_watermark(
        dir,
        &group,
        &topic,
        &run,
        Duration::from_secs(45),
        "partition 1 caught up",
        |w| part(w, 1)["basis"] == "caught-up",
    );
    let moved = caught_up["complete_until_ms"].as_i64().unwrap();
    assert!(moved >= produced_at, "{caught_up:#}");
    assert_eq!(part(&caught_up, 1)["next_offset"], 43);
    assert_eq!(archived(dir, &topic)[&1].len(), 43);
    run.signal(libc::SIGTERM);
    assert!(
        run.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        run.log()
    );
    let after = read_watermark(dir, &group, &topic).unwrap();
    assert!(
        after["complete_until_ms"].as_i64().unwrap() >= moved,
        "never backwards"
    );
}

/// Produces into both partitions of `topic` until `stop` is set (each round acked before the
/// next), so the archiver is nearly always behind by something.
fn keep_producing(
    brokers: &str,
    topic: &str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<usize> {
    let (brokers, topic) = (brokers.to_string(), topic.to_string());
    tokio::spawn(async move {
        let mut sent = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            for p in 0..2 {
                sent += produce_to(&brokers, &topic, p, 20, 300).await.len();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sent
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_run_never_leaves_a_watermark_past_what_is_durable() {
    let t = Kafka::shared();
    let topic = unique("wm-kill");
    t.create_topic_with(&topic, 2, &[("message.timestamp.type", "LogAppendTime")])
        .await;
    let group = unique("g");
    let out = tempfile::tempdir().unwrap();
    let dir = out.path();
    let output = dir.to_str().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producing = keep_producing(&t.brokers, &topic, stop.clone());

    // Five runs killed with SIGKILL after 1.5 to 4 s; after each, the watermark and the
    // checkpoints as the kill left them.
    let mut after_kills: Vec<(i64, [i64; 2])> = Vec::new();
    let member = unique("member");
    for round in 0..5 {
        // A static member: the next run takes the killed one's place at once.
        let static_member = format!("group.instance.id={member}");
        let flags = [
            "--window-size",
            "8KiB",
            "--window-time",
            "1s",
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "heartbeat.interval.ms=1000",
            "-X",
            &static_member,
        ];
        let mut run = Instance::spawn(
            &format!("run {round}"),
            continuous(t, &topic, &group, output, "100ms", &flags),
        );
        run.wait_for_line(0, "partitions assigned", Duration::from_secs(60));
        let wait = rand::random_range(1_500..4_000);
        std::thread::sleep(Duration::from_millis(wait));
        run.kill();
        let Some(w) = read_watermark(dir, &group, &topic) else {
            continue;
        };
        let Some(until) = w["complete_until_ms"].as_i64() else {
            continue;
        };
        let next = [0, 1].map(|p| local_next_offset(dir, &group, &topic, p));
        after_kills.push((until, next));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = producing.await.unwrap();
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, output, &[]);
    assert!(ok, "{stderr}");

    // Every record once, with the time the broker gave it.
    let files = archived(dir, &topic);
    assert_eq!(files.values().map(BTreeMap::len).sum::<usize>(), sent);
    for (p, offsets) in &files {
        let want: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets.keys().copied().collect::<Vec<_>>(),
            want,
            "partition {p}"
        );
    }
    // After each kill, every record stamped before the watermark was below its partition's
    // checkpoint: durable, in a file.
    assert!(
        after_kills.len() >= 3,
        "the watermark moved after only {} of 5 kills",
        after_kills.len()
    );
    let mut before = i64::MIN;
    for (until, next) in &after_kills {
        assert!(*until >= before, "the watermark went back: {after_kills:?}");
        before = *until;
        for (p, offsets) in &files {
            for (offset, ts) in offsets {
                assert!(
                    *ts >= *until || *offset < next[*p as usize],
                    "partition {p} offset {offset} stamped {ts} is before the watermark {until} but not below the checkpoint {}",
                    next[*p as usize]
                );
            }
        }
    }
    // The --once run at the end caught up with everything.
    let last = read_watermark(dir, &group, &topic).unwrap();
    let newest = files.values().flat_map(|o| o.values()).max().unwrap();
    assert!(
        last["complete_until_ms"].as_i64().unwrap() > *newest,
        "{last:#}"
    );
    eprintln!(
        "{sent} records, {} kills with a watermark; watermarks {:?}",
        after_kills.len(),
        after_kills
            .iter()
            .map(|(u, n)| (u - after_kills[0].0, n))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_partition_whose_last_write_was_a_transaction_counts_as_caught_up() {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let t = Kafka::shared();
    let topic = unique("wm-txn");
    t.create_topic(&topic, 1).await;
    let group = unique("g");
    let out = tempfile::tempdir().unwrap();
    let (dir, output) = (out.path(), out.path().to_str().unwrap());

    // Ten records in a committed transaction: the commit marker takes offset 10, so the end
    // offset is 11 and the last record is 9.
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &t.brokers)
        .set("transactional.id", unique("txn"))
        .create()
        .unwrap();
    producer.init_transactions(Duration::from_secs(30)).unwrap();
    producer.begin_transaction().unwrap();
    for _ in 0..10 {
        let rec = BaseRecord::<(), _>::to(&topic).partition(0).payload("x");
        producer.send(rec).map_err(|(e, _)| e).unwrap();
    }
    producer
        .commit_transaction(Duration::from_secs(30))
        .unwrap();
    // The coordinator writes the marker after the commit returns.
    wait_for_high_watermarks(&t.brokers, &topic, 1, 11);

    let window = ["--window-time", "1s"];
    let mut run = Instance::spawn(
        "archiver",
        continuous(t, &topic, &group, output, "200ms", &window),
    );
    let w = wait_watermark(
        dir,
        &group,
        &topic,
        &run,
        Duration::from_secs(30),
        "the partition caught up",
        |w| part(w, 0)["basis"] == "caught-up",
    );
    assert_eq!(part(&w, 0)["next_offset"], 11, "{w:#}");
    assert_eq!(local_next_offset(dir, &group, &topic, 0), 11);
    assert_eq!(archived(dir, &topic)[&0].len(), 10);
    run.signal(libc::SIGTERM);
    assert!(
        run.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        run.log()
    );
}
