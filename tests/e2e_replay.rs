//! `hubcap replay` against Apache Kafka, the replayed topics read by confluent-kafka as a
//! read_committed consumer (tests/py/read_topic.py), not by hubcap: odd records (tombstones,
//! empty values, binary keys and headers, repeated header names) come back as they were, in
//! archived order per partition, from Avro and Parquet archives; a replay killed with SIGKILL
//! five times and run again leaves every event once; real Event Hubs Capture files replay; a
//! time range selects exactly its events.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Test record `i`: [`record`]'s odd keys, values and headers, plus a header name repeated
/// (two `dup` headers, in order) on every fifth.
fn make(i: usize) -> (Option<Vec<u8>>, Option<Vec<u8>>, Headers, i64) {
    let (key, value, mut headers) = record(i);
    if i.is_multiple_of(5) {
        headers.push(("dup".into(), Some(format!("first-{i}").into_bytes())));
        headers.push(("dup".into(), Some(format!("second-{i}").into_bytes())));
    }
    (key, value, headers, 1_790_000_000_000 + i as i64 * 250)
}

fn hex(b: &Option<Vec<u8>>) -> Value {
    b.as_ref().map_or(Value::Null, |b| {
        Value::String(b.iter().map(|x| format!("{x:02x}")).collect())
    })
}

/// The topic's records as confluent-kafka reads them (read_committed).
fn read_topic(brokers: &str, topic: &str) -> Vec<Value> {
    let out = run_python(&script("read_topic.py"), &[brokers, topic]);
    let doc: Value = serde_json::from_slice(&out).expect("read_topic.py prints JSON");
    doc["records"].as_array().unwrap().clone()
}

/// The `hubcap.source` header of a replayed record: (topic, partition, offset).
fn source_of(record: &Value) -> (String, i32, i64) {
    let headers = record["headers"].as_array().unwrap();
    let value = headers
        .iter()
        .find(|h| h[0] == "hubcap.source")
        .and_then(|h| h[1].as_str())
        .expect("a hubcap.source header");
    let bytes: Vec<u8> = (0..value.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&value[i..i + 2], 16).unwrap())
        .collect();
    let text = String::from_utf8(bytes).unwrap();
    let mut parts = text.rsplitn(3, '/');
    let offset = parts.next().unwrap().parse().unwrap();
    let partition = parts.next().unwrap().parse().unwrap();
    (parts.next().unwrap().to_string(), partition, offset)
}

/// `hubcap replay` with `args`: (exit code, stdout, stderr).
fn replay(args: &[&str]) -> (i32, String, String) {
    let (status, stdout, stderr) =
        run_status(hubcap().arg("replay").args(args), Duration::from_secs(180));
    (status.code().unwrap_or(-1), stdout, stderr)
}

/// Every record of `records` is one of `produced`, with its key, value, headers (in order,
/// repeated names too), timestamp and partition, each once, and each partition's records in
/// archived order.
fn assert_replayed_exactly(label: &str, records: &[Value], produced: &[Produced]) {
    let by_source: BTreeMap<(i32, i64), &Produced> = produced
        .iter()
        .map(|p| ((p.partition, p.offset), p))
        .collect();
    let mut seen = BTreeMap::new();
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for r in records {
        let (_, partition, offset) = source_of(r);
        let p = by_source
            .get(&(partition, offset))
            .unwrap_or_else(|| panic!("{label}: {partition}/{offset} was not produced"));
        *seen.entry((partition, offset)).or_insert(0) += 1;
        assert_eq!(r["partition"], partition, "{label}: partition kept");
        assert_eq!(
            r["key"],
            hex(&p.key),
            "{label}: key of {partition}/{offset}"
        );
        assert_eq!(
            r["value"],
            hex(&p.value),
            "{label}: value of {partition}/{offset}"
        );
        let headers: Vec<Value> = r["headers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h[0] != "hubcap.source")
            .cloned()
            .collect();
        let want: Vec<Value> = p
            .headers
            .iter()
            .map(|(k, v)| serde_json::json!([k, hex(v)]))
            .collect();
        assert_eq!(headers, want, "{label}: headers of {partition}/{offset}");
        assert_eq!(
            r["timestamp"],
            serde_json::json!([1, p.timestamp]),
            "{label}: timestamp"
        );
        let previous = last.insert(partition, offset);
        assert!(
            previous.is_none_or(|o| o < offset),
            "{label}: partition {partition} out of order at {offset}"
        );
    }
    let duplicates = seen.values().filter(|n| **n > 1).count();
    let missing = by_source.len() - seen.len();
    println!(
        "{label}: {} records read, {duplicates} duplicates, {missing} missing",
        records.len()
    );
    assert_eq!((duplicates, missing), (0, 0), "{label}");
}

#[tokio::test(flavor = "multi_thread")]
async fn replayed_records_come_back_as_they_were_from_avro_and_parquet() {
    const PARTITIONS: i32 = 3;
    let t = Kafka::shared();
    let topic = unique("orders");
    t.create_topic(&topic, PARTITIONS).await;
    let produced = produce_with(&t.brokers, &topic, 0, 600, make).await;
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, 600);
    for format in ["avro", "parquet"] {
        let out = tempfile::tempdir().unwrap();
        let output = out.path().to_str().unwrap();
        let flags = ["--format", format, "--window-size", "16KiB"];
        let (ok, _, stderr) = run_once(&t.brokers, &topic, &unique("g"), output, &flags);
        assert!(ok, "{stderr}");
        let target = unique("restored");
        t.create_topic(&target, PARTITIONS).await;
        let args = [
            "--from",
            output,
            "--to-topic",
            &target,
            "--brokers",
            &t.brokers,
        ];
        let (code, stdout, stderr) = replay(&args);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("600"), "{stdout}");
        let records = read_topic(&t.brokers, &target);
        assert_replayed_exactly(&format!("replay from {format}"), &records, &produced);
        // The same job again: everything is there already, nothing is produced.
        let (code, stdout, stderr) = replay(&args);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(read_topic(&t.brokers, &target).len(), 600, "{stdout}");
    }
    // Without transactions (Event Hubs Standard), by key into a topic of another size: every
    // record once when nothing fails, each key's records in archived order in one partition.
    let out = tempfile::tempdir().unwrap();
    let output = out.path().to_str().unwrap();
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &unique("g"), output, &[]);
    assert!(ok, "{stderr}");
    let target = unique("rekeyed");
    t.create_topic(&target, 5).await;
    let (code, _, stderr) = replay(&[
        "--from",
        output,
        "--to-topic",
        &target,
        "--brokers",
        &t.brokers,
        "--no-transactions",
        "--partitioning",
        "key",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let records = read_topic(&t.brokers, &target);
    assert_eq!(records.len(), 600);
    let mut by_key: BTreeMap<String, (i64, Vec<(i32, i64)>)> = BTreeMap::new();
    for r in records.iter().filter(|r| !r["key"].is_null()) {
        let (_, partition, offset) = source_of(r);
        let seen = by_key
            .entry(r["key"].to_string())
            .or_insert((r["partition"].as_i64().unwrap(), Vec::new()));
        seen.1.push((partition, offset));
        assert_eq!(seen.0, r["partition"], "one key, one target partition");
    }
    for (key, (_, sources)) in &by_key {
        let mut sorted = sources.clone();
        sorted.sort();
        assert_eq!(sources, &sorted, "key {key}: archived order");
    }
    let partitions: std::collections::BTreeSet<i64> = by_key.values().map(|v| v.0).collect();
    assert!(
        partitions.len() > 1,
        "keys spread over the target's partitions"
    );
}

/// A replay killed with SIGKILL at random moments, five times, then run to the end: every
/// archived event is in the target exactly once for a read_committed consumer.
#[tokio::test(flavor = "multi_thread")]
async fn a_replay_killed_five_times_leaves_every_event_once() {
    const PARTITIONS: i32 = 4;
    const EVENTS: usize = 40_000;
    let t = Kafka::shared();
    let topic = unique("clicks");
    t.create_topic(&topic, PARTITIONS).await;
    let produced = produce_with(&t.brokers, &topic, 0, EVENTS, make).await;
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, EVENTS as i64);
    let out = tempfile::tempdir().unwrap();
    let output = out.path().to_str().unwrap();
    let (ok, _, stderr) = run_once(
        &t.brokers,
        &topic,
        &unique("g"),
        output,
        &["--window-size", "256KiB"],
    );
    assert!(ok, "{stderr}");
    let target = unique("restored");
    t.create_topic(&target, PARTITIONS).await;
    // Small transactions, so that each run commits some before it is killed.
    let args = [
        "replay",
        "--from",
        output,
        "--to-topic",
        &target,
        "--brokers",
        &t.brokers,
        "--transaction-events",
        "2000",
    ];
    // Each run is killed a random moment after the target grew (so it is killed in the
    // middle of producing, with transactions committed before and open at that moment).
    let offsets =
        |t: &Kafka| -> i64 { t.watermarks(&target, PARTITIONS).iter().map(|w| w.1).sum() };
    let mut killed = 0;
    for _ in 0..5 {
        let before = offsets(t);
        let mut cmd = hubcap();
        cmd.args(args);
        let mut instance = Instance::spawn("replay", cmd);
        while offsets(t) == before && instance.exited().is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(rand::random_range(0..400)));
        if instance.exited().is_none() {
            instance.kill();
            killed += 1;
        }
    }
    let (code, stdout, stderr) = replay(&args[1..]);
    assert_eq!(code, 0, "{stderr}");
    let records = read_topic(&t.brokers, &target);
    let label = format!("replay killed {killed} times");
    assert_replayed_exactly(&label, &records, &produced);
    let (code, report, stderr) = replay(&[&args[1..], &["--verify"]].concat());
    assert_eq!(code, 0, "{report}\n{stderr}");
    println!("{report}");
    println!("{label}: the last run's summary:\n{stdout}");
    assert!(killed >= 3, "the replays ended before they could be killed");
    // The last run carried on from the killed ones' committed progress.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("total")
                && l.split_whitespace().nth(3).is_none_or(|s| s != "0")),
        "{stdout}"
    );
}

/// Real Capture files (Azure's own output, ../shared/capture-samples) in Capture's layout:
/// every event replays, its SequenceNumber as the source offset, its properties as headers.
#[tokio::test(flavor = "multi_thread")]
async fn event_hubs_capture_files_replay_into_kafka() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/capture-samples");
    let dir = tempfile::tempdir().unwrap();
    // {Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}.avro
    for (sample, at) in [
        (
            "courselabs-azure__labs-eventhubs-consumers__13.avro",
            "0/2022/11/01/17/36/07",
        ),
        ("azure-usql__EHC.avro", "1/2018/12/07/10/22/49"),
        (
            "metered-billing-accelerator__p9--2022-12-09--16-50-12.avro",
            "9/2022/12/09/16/50/12",
        ),
        (
            "metered-billing-accelerator__p9--2022-12-09--17-10-12.avro",
            "9/2022/12/09/17/10/12",
        ),
    ] {
        let to = dir.path().join(format!("myns/telemetry/{at}.avro"));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(samples.join(sample), to).unwrap();
    }
    let t = Kafka::shared();
    let target = unique("telemetry");
    t.create_topic(&target, 10).await;
    let from = dir.path().to_str().unwrap();
    let (code, stdout, stderr) = replay(&[
        "--from",
        from,
        "--to-topic",
        &target,
        "--brokers",
        &t.brokers,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let records = read_topic(&t.brokers, &target);
    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for r in &records {
        let (topic, partition, offset) = source_of(r);
        assert_eq!(topic, "telemetry");
        assert_eq!(r["partition"], partition);
        offsets.entry(partition).or_default().push(offset);
    }
    let range = |p: i32| {
        let o = &offsets[&p];
        (o.len(), o[0], o[o.len() - 1])
    };
    assert_eq!(range(0), (2000, 1000, 2999));
    assert_eq!(range(1), (677, 4141, 4817));
    assert_eq!(range(9), (21, 1, 23));
    // EHC.avro's application properties: GUID (string) and RandomInt (long) become headers.
    let ehc = records.iter().find(|r| r["partition"] == 1).unwrap();
    let names: Vec<&str> = ehc["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"GUID") && names.contains(&"RandomInt"),
        "{names:?}"
    );
    println!(
        "Capture samples replayed: {} events\n{stdout}",
        records.len()
    );
}

/// `--since` and `--until` select exactly the events enqueued in the range.
#[tokio::test(flavor = "multi_thread")]
async fn a_time_range_replays_exactly_its_events() {
    const PARTITIONS: i32 = 2;
    let t = Kafka::shared();
    let topic = unique("ranged");
    t.create_topic(&topic, PARTITIONS).await;
    let produced = produce_with(&t.brokers, &topic, 0, 400, make).await;
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, 400);
    let out = tempfile::tempdir().unwrap();
    let output = out.path().to_str().unwrap();
    let (ok, _, stderr) = run_once(
        &t.brokers,
        &topic,
        &unique("g"),
        output,
        &["--window-size", "8KiB"],
    );
    assert!(ok, "{stderr}");
    // Records 100..300 by time: [T0 + 100*250 ms, T0 + 300*250 ms).
    let at = |i: i64| {
        chrono::DateTime::from_timestamp_millis(1_790_000_000_000 + i * 250)
            .unwrap()
            .to_rfc3339()
    };
    let (since, until) = (at(100), at(300));
    let target = unique("ranged-out");
    t.create_topic(&target, PARTITIONS).await;
    let args = [
        "--from",
        output,
        "--to-topic",
        &target,
        "--brokers",
        &t.brokers,
        "--since",
        &since,
        "--until",
        &until,
    ];
    let (code, dry, stderr) = replay(&[&args[..], &["--dry-run"]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        read_topic(&t.brokers, &target).is_empty(),
        "a dry run produces nothing"
    );
    let (code, _, stderr) = replay(&args);
    assert_eq!(code, 0, "{stderr}");
    let want: Vec<Produced> = produced
        .iter()
        .filter(|p| {
            (1_790_000_000_000 + 100 * 250..1_790_000_000_000 + 300 * 250).contains(&p.timestamp)
        })
        .cloned()
        .collect();
    assert_eq!(want.len(), 200);
    assert!(dry.contains("200"), "the dry run counts them: {dry}");
    let records = read_topic(&t.brokers, &target);
    assert_replayed_exactly("time range", &records, &want);
    // `--verify` agrees for the range, and finds the rest missing for the whole archive.
    let (code, report, stderr) = replay(&[&args[..], &["--verify"]].concat());
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert!(report.contains("every archived event once"), "{report}");
    let whole = [
        "--from",
        output,
        "--to-topic",
        &target,
        "--brokers",
        &t.brokers,
        "--verify",
    ];
    let (code, report, _) = replay(&whole);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("FAILED") && report.contains("DIFFERS"),
        "{report}"
    );
    println!("verify of the whole archive against the range:\n{report}");
}
