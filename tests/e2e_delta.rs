//! `--table delta` against Apache Kafka, the table read by delta-rs (Python `deltalake`),
//! DuckDB's `delta_scan` and Spark with delta-spark, not by hubcap: every offset once,
//! partition pruning on `partition` and `date`, a second run that adds only what is new, a run
//! killed between a file's upload and its commit (its file is added once by the next run), and
//! three instances of one group killed with SIGKILL at random moments.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

const PARTITIONS: i32 = 3;

fn read_table(table: &Path, partition: &str) -> Value {
    read_table_with(table, partition, &[])
}

fn read_table_with(table: &Path, partition: &str, apps: &[String]) -> Value {
    let mut args = vec![table.to_str().unwrap(), partition];
    args.extend(apps.iter().map(String::as_str));
    let out = run_python(&script("read_delta.py"), &args);
    serde_json::from_slice(&out).expect("read_delta.py prints JSON")
}

/// The (partition, offset) of every row; panics on a row twice.
fn offsets(table: &Value) -> BTreeSet<(i32, i64)> {
    let mut seen = BTreeSet::new();
    for r in table["rows"].as_array().unwrap() {
        let partition: i32 = r["partition"].as_str().unwrap().parse().unwrap();
        let offset = r["SequenceNumber"].as_i64().unwrap();
        assert_eq!(r["Offset"].as_str().unwrap(), offset.to_string());
        assert!(
            seen.insert((partition, offset)),
            "{partition}/{offset} twice"
        );
    }
    seen
}

/// The Parquet files under `dir`, relative to it.
fn parquet_files(dir: &Path) -> BTreeSet<String> {
    list_files(dir)
        .into_iter()
        .map(|(name, _)| name)
        .filter(|n| n.ends_with(".parquet") && !n.contains("_delta_log"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delta_table_holds_every_offset_once_across_runs() {
    let t = Kafka::shared();
    let flags = ["--table", "delta", "--window-size", "16KiB"];
    let a = OnceArchive::new(t, "clicks", PARTITIONS, 600, &flags).await;
    let (topic, group, out, output) = (a.topic.clone(), a.group.clone(), &a.out, a.output());
    let mut produced = a.produced.clone();
    let table_dir = out.path().join(&topic);
    let table = read_table(&table_dir, "1");
    assert_eq!(offsets(&table), produced_offsets(&produced));
    assert_eq!(
        table["partition_columns"],
        serde_json::json!(["partition", "date"])
    );
    let files: BTreeSet<String> = table["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        files,
        parquet_files(&table_dir),
        "the table holds every file written, once"
    );
    assert!(
        files.len() > PARTITIONS as usize,
        "several files per partition: {files:?}"
    );
    let in_one: Vec<i64> = produced
        .iter()
        .filter(|p| p.partition == 1)
        .map(|p| p.offset)
        .collect();
    assert_eq!(
        table["pruned"]["sequence_numbers"],
        serde_json::json!(in_one)
    );
    let pruned = table["pruned"]["files"].as_u64().unwrap() as usize;
    assert!(
        pruned > 0 && pruned < files.len(),
        "{pruned} of {} files",
        files.len()
    );
    let first_version = table["version"].as_i64().unwrap();
    assert!(
        first_version >= 1 && first_version <= files.len() as i64,
        "a commit adds one file or several waiting ones: version {first_version}, {} files",
        files.len()
    );

    produced.extend(produce(&t.brokers, &topic, 600, 300).await);
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, 900);
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, output, &flags);
    assert!(ok, "second run failed:\n{stderr}");
    let apps: Vec<String> = (0..PARTITIONS)
        .map(|p| format!("hubcap/{group}/{topic}/{p}"))
        .collect();
    let table = read_table_with(&table_dir, "0", &apps);
    assert_eq!(offsets(&table), produced_offsets(&produced));
    assert!(table["version"].as_i64().unwrap() > first_version);
    assert_txn_is_checkpoint(&table, &apps, out.path(), &group, &topic);
    let (ok, report) = audit_cli(out.path(), &group);
    assert!(ok, "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_uploaded_but_not_committed_is_committed_once_by_the_next_run() {
    let t = Kafka::shared();
    let flags = ["--table", "delta", "--window-size", "16KiB"];
    let a = OnceArchive::new(t, "orders", 1, 200, &flags).await;
    let (topic, group, out, output, produced) = (
        a.topic.clone(),
        a.group.clone(),
        &a.out,
        a.output(),
        a.produced.clone(),
    );
    let table_dir = out.path().join(&topic);

    // Undo the last commit, as if the process died after the file and its manifest line were
    // written but before the table commit and the checkpoint: the checkpoint goes back to the
    // intent of that file, the log loses its last entry.
    let log = table_dir.join("_delta_log");
    let mut entries: Vec<_> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    entries.sort();
    let last = entries.last().unwrap().clone();
    let add: Value = std::fs::read_to_string(&last)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|a| a.get("add").is_some())
        .unwrap();
    let added = add["add"]["path"].as_str().unwrap().to_string();
    std::fs::remove_file(&last).unwrap();
    let before = read_table(&table_dir, "0");
    assert_eq!(
        offsets(&before).len() + file_records(&table_dir.join(&added)),
        produced.len(),
        "one file left the table"
    );
    rewind_checkpoint_to(out.path(), &group, &topic, &format!("{topic}/{added}"));

    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, output, &flags);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("checkpoint moves past it"),
        "rolled forward:\n{stderr}"
    );
    let after = read_table(&table_dir, "0");
    assert_eq!(offsets(&after), produced_offsets(&produced));
    assert_eq!(
        after["files"].as_array().unwrap().len(),
        parquet_files(&table_dir).len(),
        "every file in the table once"
    );
    // And once more: nothing new, nothing added.
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, output, &flags);
    assert!(ok, "{stderr}");
    assert_eq!(read_table(&table_dir, "0")["version"], after["version"]);
}

/// `hubcap audit` reads the table as its readers do: a clean table passes; a commit lost from
/// the log (its file archived, its partition's version behind the checkpoint), a file added by
/// two commits, and a file hubcap never archived each fail the audit, named in the report.
#[tokio::test(flavor = "multi_thread")]
async fn the_audit_checks_the_table_against_manifests_and_checkpoints() {
    let t = Kafka::shared();
    let flags = ["--table", "delta", "--window-size", "16KiB"];
    let a = OnceArchive::new(t, "audited", 2, 300, &flags).await;
    let (topic, group, out) = (a.topic.clone(), a.group.clone(), &a.out);
    let table_dir = out.path().join(&topic);
    let (clean, report) = audit_cli_with(out.path(), &group, &["--json"]);
    assert!(clean, "{report}");
    let json: Value = serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}"));
    let table = &json["tables"][0];
    assert_eq!(table["path"], topic.as_str());
    assert_eq!(table["events"], 300);
    assert_eq!(table["transactions"].as_array().unwrap().len(), 2);

    // The last commit lost: its file is archived below the checkpoint, but not in the table.
    let log = table_dir.join("_delta_log");
    let last = log_entry(&log, log_entries(&table_dir) - 1);
    let text = std::fs::read_to_string(&last).unwrap();
    std::fs::remove_file(&last).unwrap();
    let (clean, report) = audit_cli(out.path(), &group);
    assert!(!clean, "{report}");
    assert!(
        report.contains("not in the table (its readers miss them)")
            && report.contains("the table's version is"),
        "{report}"
    );

    // Put it back, and add its file again in a commit of its own.
    std::fs::write(&last, &text).unwrap();
    let adds: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(r#"{"add""#))
        .collect();
    std::fs::write(log_entry(&log, log_entries(&table_dir)), adds[0]).unwrap();
    let (clean, report) = audit_cli(out.path(), &group);
    assert!(
        !clean && report.contains("added by two commits"),
        "{report}"
    );
    std::fs::remove_file(log_entry(&log, log_entries(&table_dir) - 1)).unwrap();

    // A file hubcap never archived, added to the table by another writer (delta-rs).
    let code = r#"
import sys
from deltalake import write_deltalake, DeltaTable
t = DeltaTable(sys.argv[1])
rows = t.to_pyarrow_table().slice(0, 1)
write_deltalake(sys.argv[1], rows, mode="append")
"#;
    let status = std::process::Command::new(python())
        .args(["-c", code, table_dir.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let (clean, report) = audit_cli(out.path(), &group);
    assert!(
        !clean && report.contains("not archived by hubcap"),
        "{report}"
    );
    assert!(report.contains("1 Delta table finding"), "{report}");

    // `hubcap inspect` on the table reads the files its log adds (delta-rs's one too), not a
    // file left in its folders that the log does not add.
    let orphan = table_dir.join("partition=0/orphan.parquet");
    let first = parquet_files(&table_dir).into_iter().next().unwrap();
    std::fs::copy(table_dir.join(first), &orphan).unwrap();
    let (ok, stdout, stderr) = run_with_timeout(
        hubcap().args(["inspect", "--stats", table_dir.to_str().unwrap()]),
        Duration::from_secs(60),
    );
    assert!(ok, "{stderr}");
    let total: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        (&total["files"], &total["records"]),
        (&7.into(), &301.into()),
        "{stdout}"
    );
    assert!(!stdout.contains("orphan.parquet"), "{stdout}");
}

/// The path of log entry `version`.
fn log_entry(log: &Path, version: usize) -> std::path::PathBuf {
    log.join(format!("{version:020}.json"))
}

/// The records of a Parquet file, as pyarrow reads them.
fn file_records(path: &Path) -> usize {
    let code =
        "import sys, pyarrow.parquet as pq; print(pq.ParquetFile(sys.argv[1]).metadata.num_rows)";
    let out = std::process::Command::new(python())
        .args(["-c", code, path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The crash test with a table: three instances of one group archive a topic into one Delta
/// table while a producer writes, and are killed with SIGKILL at random moments, one at a
/// time, each restarted at once. Then a last run catches up, and delta-rs, DuckDB and Spark
/// (delta-spark) each read every offset exactly once and prune on `partition` and `date`.
#[tokio::test(flavor = "multi_thread")]
async fn three_instances_killed_at_random_leave_every_offset_once_for_every_reader() {
    const PARTITIONS: i32 = 6;
    let t = Kafka::shared();
    let topic = unique("kills");
    let group = unique("g");
    t.create_topic(&topic, PARTITIONS).await;
    let out = tempfile::tempdir().unwrap();
    let output = out.path().to_str().unwrap().to_string();

    // Records five minutes apart from five days ago, so that files fall in several `date=` folders.
    let start_ms = chrono::Utc::now().timestamp_millis() - 5 * 86_400_000;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let (brokers, topic, stop) = (t.brokers.clone(), topic.clone(), stop.clone());
        tokio::spawn(async move {
            let mut all = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Never in the future, which the broker refuses: a long loop's later records
                // all get the last day.
                let stamp = |i: usize| start_ms + (i as i64 * 300_000).min(5 * 86_400_000);
                all.extend(produce_stamped(&brokers, &topic, all.len(), 40, stamp).await);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            all
        })
    };
    let kills: usize = std::env::var("HUBCAP_KILLS")
        .ok()
        .map(|v| v.parse().expect("HUBCAP_KILLS is a number"))
        .unwrap_or(12);
    // Static membership: a restarted instance takes its killed predecessor's partitions back
    // without waiting for its session to expire.
    let members: Vec<String> = (0..3).map(|i| unique(&format!("member{i}"))).collect();
    let start = |i: usize| {
        let mut cmd = hubcap();
        cmd.args(["run", "--brokers", &t.brokers, "--topic", &topic])
            .args(["--group", &group, "--output", &output])
            .args([
                "--table",
                "delta",
                "--window-size",
                "8KiB",
                "--window-time",
                "1s",
            ])
            .args([
                "-X",
                "session.timeout.ms=6000",
                "-X",
                "heartbeat.interval.ms=1000",
            ])
            .args(["-X", &format!("group.instance.id={}", members[i])]);
        Instance::spawn(&format!("instance {i}"), cmd)
    };
    let mut instances: Vec<Instance> = (0..3).map(start).collect();
    for i in &mut instances {
        i.wait_for_line(0, "partitions assigned", Duration::from_secs(60));
    }
    let mut commits_seen = Vec::new();
    for _ in 0..kills {
        std::thread::sleep(Duration::from_millis(rand::random_range(300..2500)));
        let victim = rand::random_range(0..instances.len());
        instances[victim].kill(); // SIGKILL
        instances[victim] = start(victim);
        commits_seen.push(log_entries(&out.path().join(&topic)));
    }
    std::thread::sleep(Duration::from_secs(2));
    for i in &mut instances {
        i.kill();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let produced = producer.await.unwrap();
    let total = produced.len() as i64;
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, total);
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, &output, &["--table", "delta"]);
    assert!(ok, "final run failed:\n{stderr}");
    assert!(
        commits_seen.last() > commits_seen.first(),
        "the killed instances committed files: {commits_seen:?}"
    );

    let table_dir = out.path().join(&topic);
    let want = produced_offsets(&produced);
    let apps: Vec<String> = (0..PARTITIONS)
        .map(|p| format!("hubcap/{group}/{topic}/{p}"))
        .collect();
    // The partition and day to prune on: the day of partition 1's middle record.
    let rows = read_table(&table_dir, "1");
    let day = {
        let mut days: Vec<&str> = rows["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["partition"] == "1")
            .map(|r| r["date"].as_str().unwrap())
            .collect();
        days.sort();
        days[days.len() / 2].to_string()
    };
    let mut args = vec![table_dir.to_str().unwrap(), "1", "--date", &day];
    args.extend(apps.iter().map(String::as_str));
    let delta_rs: Value =
        serde_json::from_slice(&run_python(&script("read_delta.py"), &args)).unwrap();
    let spark = read_with_spark(&table_dir, "1", &day);

    let files: BTreeSet<String> = strings(&delta_rs["files"]);
    assert_eq!(
        files,
        parquet_files(&table_dir),
        "the table holds every file written, once"
    );
    let in_day: BTreeSet<String> = files
        .iter()
        .filter(|f| f.starts_with(&format!("partition=1/date={day}/")))
        .cloned()
        .collect();
    let day_numbers: Vec<i64> = {
        let mut n: Vec<i64> = delta_rs["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["partition"] == "1" && r["date"] == day.as_str())
            .map(|r| r["SequenceNumber"].as_i64().unwrap())
            .collect();
        n.sort();
        n
    };
    let days = files
        .iter()
        .filter_map(|f| f.split('/').nth(1))
        .collect::<BTreeSet<_>>();
    assert!(days.len() >= 3, "files in several days: {days:?}");
    assert!(!in_day.is_empty() && in_day.len() < files.len());

    // Every reader: every offset once, and a scan on partition and date reads that folder only.
    let rs_rows = offsets(&delta_rs);
    let mut duck_rows = BTreeSet::new();
    for r in delta_rs["duckdb"]["rows"].as_array().unwrap() {
        let p: i32 = r[0].as_str().unwrap().parse().unwrap();
        assert!(
            duck_rows.insert((p, r[1].as_i64().unwrap())),
            "DuckDB: {r} twice"
        );
    }
    let mut spark_rows = BTreeSet::new();
    for r in spark["rows"].as_array().unwrap() {
        let p: i32 = r[0].as_str().unwrap().parse().unwrap();
        let n = r[1].as_i64().unwrap();
        assert_eq!(r[2].as_str().unwrap(), n.to_string());
        assert!(spark_rows.insert((p, n)), "Spark: {r} twice");
    }
    for (reader, rows, count) in [
        (
            "delta-rs",
            &rs_rows,
            delta_rs["rows"].as_array().unwrap().len(),
        ),
        (
            "DuckDB",
            &duck_rows,
            delta_rs["duckdb"]["rows"].as_array().unwrap().len(),
        ),
        (
            "Spark",
            &spark_rows,
            spark["rows"].as_array().unwrap().len(),
        ),
    ] {
        let duplicates = count - rows.len();
        let missing = want.difference(rows).count();
        let extra = rows.difference(&want).count();
        println!(
            "Delta crash test, {reader}: {count} events, {duplicates} duplicates, {missing} missing"
        );
        assert_eq!((duplicates, missing, extra), (0, 0, 0), "{reader}");
    }
    assert_eq!(
        spark["partition_columns"],
        serde_json::json!(["partition", "date"])
    );
    assert_eq!(
        strings(&delta_rs["pruned_date"]["files"]),
        in_day,
        "delta-rs prunes"
    );
    assert_eq!(
        strings(&spark["pruned_date"]["files"]),
        in_day,
        "Spark prunes"
    );
    assert_eq!(
        delta_rs["duckdb"]["scanning_files"],
        serde_json::json!([in_day.len(), files.len()]),
        "DuckDB prunes"
    );
    let in_one: BTreeSet<String> = files
        .iter()
        .filter(|f| f.starts_with("partition=1/"))
        .cloned()
        .collect();
    assert_eq!(
        strings(&spark["pruned"]["files"]),
        in_one,
        "Spark prunes on partition"
    );
    for reader in [&delta_rs, &spark] {
        assert_eq!(
            reader["pruned_date"]["sequence_numbers"],
            serde_json::json!(day_numbers)
        );
    }

    let version = delta_rs["version"].as_i64().unwrap();
    assert_eq!(spark["version"].as_i64(), Some(version));
    assert_txn_is_checkpoint(&delta_rs, &apps, out.path(), &group, &topic);
    let (clean, report) = audit_cli(out.path(), &group);
    assert!(clean, "hubcap audit after the kill loop:\n{report}");
    println!(
        "Delta crash test: {kills} kills plus 3 at the end, {total} events, {} files, {} commits (table version {version})",
        files.len(),
        version
    );
}

/// Each partition's set-transaction version in the table (`apps[p]`, as read_delta.py read
/// it) is its checkpoint's last offset.
fn assert_txn_is_checkpoint(table: &Value, apps: &[String], dir: &Path, group: &str, topic: &str) {
    for (p, app) in apps.iter().enumerate() {
        let next = local_next_offset(dir, group, topic, p as i32);
        assert_eq!(
            table["txn"][app].as_i64(),
            Some(next - 1),
            "the table's set-transaction version of partition {p} is its checkpoint's last offset"
        );
    }
}

/// The table's log entries (`_delta_log/*.json`) so far.
fn log_entries(table: &Path) -> usize {
    std::fs::read_dir(table.join("_delta_log"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
            })
            .count()
        })
        .unwrap_or(0)
}

fn strings(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

/// Reads the table with Spark and delta-spark (tests/py/read_delta_spark.py).
fn read_with_spark(table: &Path, partition: &str, day: &str) -> Value {
    let jars = ["delta-spark_4.1_2.13-4.4.0.jar", "delta-storage-4.4.0.jar"]
        .map(|j| tools().join("spark-jars").join(j).display().to_string())
        .join(",");
    let scratch = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(python())
        .arg(script("read_delta_spark.py"))
        .args([table.to_str().unwrap(), partition, day])
        .env("SPARK_JARS", jars)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .env("SPARK_LOCAL_DIRS", scratch.path())
        .env("TMPDIR", scratch.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "read_delta_spark.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("read_delta_spark.py prints JSON")
}
