//! Spark reads the archive as Synapse and Databricks users do: `examples/query_spark.py`,
//! unchanged, over an Avro archive in Capture's layout (spark-avro, a Capture-style glob) and a
//! Parquet archive in the data-lake layout (Hive partition discovery), in one JVM.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Timelike;
use common::*;
use serde_json::{json, Value};

const PARTITIONS: i32 = 4;
const RECORDS: usize = 1600;
const USER: &str = "user-5";
const LAKE_TEMPLATE: &str =
    "{EventHub}/partition={PartitionId}/date={Year}-{Month}-{Day}/hour={Hour}/{Offset}";

/// The `event-type` header of record `i`: three values, and none on every 7th record.
fn event_type(i: usize) -> Option<&'static str> {
    (!i.is_multiple_of(7)).then(|| ["track", "identify", "page"][i % 3])
}

/// The common test records, with a varied `event-type` header to count by, 5 s apart so that
/// they span three `hour=` folders.
fn make(i: usize) -> (Option<Vec<u8>>, Option<Vec<u8>>, Headers, i64) {
    let (key, value, mut headers) = record(i);
    headers.retain(|(name, _)| name != "event-type");
    if let Some(t) = event_type(i) {
        headers.insert(0, ("event-type".into(), Some(t.as_bytes().to_vec())));
    }
    (key, value, headers, 1_790_000_000_000 + i as i64 * 5000)
}

fn count_files(dir: &Path, extension: &str) -> usize {
    walkdir(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .count()
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walkdir(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// What the folders of a data-lake archive hold, from its file names and the produced records,
/// as query_spark.py's `parquet folder` lines: partition, date, hour, events.
fn lake_folders(root: &Path, produced: &[Produced]) -> Vec<Value> {
    let mut files: BTreeMap<i32, Vec<(i64, String, i64)>> = BTreeMap::new();
    for path in walkdir(root) {
        if path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let field = |n: usize, key: &str| {
            let name = path.iter().rev().nth(n).unwrap().to_str().unwrap();
            let value = name
                .strip_prefix(key)
                .unwrap_or_else(|| panic!("{path:?}: {key}"));
            value.to_string()
        };
        let first: i64 = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        let partition: i32 = field(3, "partition=").parse().unwrap();
        let (date, hour) = (field(2, "date="), field(1, "hour=").parse().unwrap());
        let record = produced
            .iter()
            .find(|r| (r.partition, r.offset) == (partition, first))
            .unwrap();
        let at = chrono::DateTime::from_timestamp_millis(record.timestamp).unwrap();
        assert_eq!(
            (date.as_str(), hour),
            (at.format("%Y-%m-%d").to_string().as_str(), at.hour() as i64),
            "{path:?} is in its first record's folder"
        );
        files
            .entry(partition)
            .or_default()
            .push((first, date, hour));
    }
    let mut folders: BTreeMap<(i32, String, i64), i64> = BTreeMap::new();
    for (partition, mut list) in files {
        list.sort();
        let end = produced.iter().filter(|r| r.partition == partition).count() as i64;
        let next_firsts: Vec<i64> = list.iter().skip(1).map(|f| f.0).chain([end]).collect();
        for ((first, date, hour), next) in list.into_iter().zip(next_firsts) {
            *folders.entry((partition, date, hour)).or_default() += next - first;
        }
    }
    folders
        .into_iter()
        .map(
            |((p, date, hour), n)| json!({"partition": p, "date": date, "hour": hour, "events": n}),
        )
        .collect()
}

/// The JSON objects of the lines `{label} {what} {...}`.
fn json_lines(text: &str, label: &str, what: &str) -> Vec<Value> {
    let prefix = format!("{label} {what} ");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Checks one archive's report against what was produced; returns how many events of [`USER`]
/// it listed.
fn check_report(text: &str, label: &str, produced: &[Produced]) -> usize {
    // Per partition: every produced offset exactly once (the produced offsets are 0..n).
    let mut want = Vec::new();
    for p in 0..PARTITIONS {
        let mut offsets: Vec<i64> = produced
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset)
            .collect();
        offsets.sort();
        let n = offsets.len() as i64;
        assert!(n > 0, "partition {p} got records");
        assert_eq!(offsets, (0..n).collect::<Vec<_>>(), "produced offsets");
        want.push(json!({
            "partition": p, "events": n, "offsets": n, "first": 0, "last": n - 1,
            "duplicates": 0, "gaps": 0,
        }));
    }
    let got = json_lines(text, label, "partition");
    let sum = |field: &str| got.iter().map(|p| p[field].as_i64().unwrap()).sum::<i64>();
    let (duplicates, missing) = (sum("duplicates"), produced.len() as i64 - sum("offsets"));
    println!(
        "{label}: {} events, duplicates={duplicates}, missing={missing}",
        sum("events")
    );
    assert_eq!(got, want, "{label}: offsets");
    assert!(
        text.contains(&format!("{label} total {}\n", produced.len())),
        "{label}: total\n{text}"
    );

    // One user's events, in enqueue-time order (every record has its own timestamp).
    let mut mine: Vec<&Produced> = produced
        .iter()
        .filter(|r| r.key.as_deref() == Some(USER.as_bytes()))
        .collect();
    mine.sort_by_key(|r| r.timestamp);
    assert!(mine.len() > 10);
    assert!(
        text.contains(&format!("{label} {} events of {USER}\n", mine.len())),
        "{label}: {USER}\n{text}"
    );
    let got: Vec<(i32, i64, String)> = text
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{label} event ")))
        .map(|l| {
            let mut f = l.splitn(5, ' ');
            let p = f.next().unwrap().parse().unwrap();
            let seq = f.next().unwrap().parse().unwrap();
            let _time = (f.next().unwrap(), f.next().unwrap());
            (p, seq, f.next().unwrap_or("").to_string())
        })
        .collect();
    let expected: Vec<(i32, i64, String)> = mine
        .iter()
        .map(|r| {
            let body = r.value.as_deref().map(String::from_utf8_lossy);
            // A tombstone's Body is null, which Python prints as None.
            (
                r.partition,
                r.offset,
                body.map_or("None".into(), |b| b.into()),
            )
        })
        .collect();
    assert_eq!(got, expected, "{label}: {USER}'s events in order");

    // Events per `event-type` header value.
    let mut per_type: BTreeMap<String, usize> = BTreeMap::new();
    for r in produced {
        let value = r
            .headers
            .iter()
            .find(|(name, _)| name == "event-type")
            .and_then(|(_, v)| v.as_deref())
            .map_or("null".into(), |v| String::from_utf8_lossy(v).into_owned());
        *per_type.entry(value).or_default() += 1;
    }
    assert_eq!(per_type.len(), 4, "three types and records without one");
    let got = &json_lines(text, label, "header event-type")[..];
    assert_eq!(got, [json!(per_type)], "{label}: events per event-type");
    mine.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn spark_reads_avro_and_parquet_archives() {
    let started = Instant::now();
    let t = Kafka::shared();
    let topic = unique("spark");
    t.create_topic(&topic, PARTITIONS).await;
    let produced = produce_with(&t.brokers, &topic, 0, RECORDS, make).await;
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, RECORDS as i64);

    // Several files per partition in each format.
    let avro = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run_once(
        &t.brokers,
        &topic,
        &unique("g"),
        avro.path().to_str().unwrap(),
        &["--window-size", "8KiB"],
    );
    assert!(ok, "avro run: {stderr}");
    let parquet = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run_once(
        &t.brokers,
        &topic,
        &unique("g"),
        parquet.path().to_str().unwrap(),
        &[
            "--format",
            "parquet",
            "--path-format",
            LAKE_TEMPLATE,
            "--window-size",
            "16KiB",
        ],
    );
    assert!(ok, "parquet run: {stderr}");
    let avro_files = count_files(avro.path(), "avro");
    let parquet_files = count_files(parquet.path(), "parquet");
    assert!(
        avro_files >= 2 * PARTITIONS as usize,
        "{avro_files} Avro files"
    );
    assert!(
        parquet_files >= 2 * PARTITIONS as usize,
        "{parquet_files} Parquet files"
    );
    let archived = started.elapsed();

    // The example, unchanged, over both archives in one JVM, bound to loopback, with its
    // scratch files in a directory of the test's own.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/query_spark.py");
    let jar = tools().join("spark-jars/spark-avro_2.13-4.1.1.jar");
    assert!(
        jar.exists(),
        "{} is missing: run scripts/setup-test-env",
        jar.display()
    );
    let scratch = tempfile::tempdir().unwrap();
    let (ok, text, stderr) = run_with_timeout(
        Command::new(python())
            .arg(&example)
            .args(["--topic", &topic, "--user", USER, "--header", "event-type"])
            .arg("--avro")
            .arg(avro.path())
            .arg("--parquet")
            .arg(parquet.path())
            .env("SPARK_AVRO_JAR", &jar)
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .env("SPARK_LOCAL_DIRS", scratch.path())
            .env("TMPDIR", scratch.path())
            .current_dir(scratch.path()),
        Duration::from_secs(300),
    );
    assert!(ok, "query_spark.py failed:\n{stderr}\n{text}");
    let spark = started.elapsed() - archived;

    let user_avro = check_report(&text, "avro", &produced);
    let user_parquet = check_report(&text, "parquet", &produced);

    // Hive discovery: the data-lake folders became columns. A file lies in the folder of its
    // first record's time and holds the offsets up to the next file's first.
    let want = lake_folders(parquet.path(), &produced);
    assert!(want.len() > PARTITIONS as usize, "several hour folders");
    assert_eq!(json_lines(&text, "parquet", "folder"), want, "{text}");

    println!(
        "spark: {RECORDS} records, avro {avro_files} files, parquet {parquet_files} files, \
         duplicates=0, missing=0, {USER} {user_avro}/{user_parquet} events in order; \
         broker and archiving {:.1}s, spark {:.1}s",
        archived.as_secs_f64(),
        spark.as_secs_f64()
    );
}
