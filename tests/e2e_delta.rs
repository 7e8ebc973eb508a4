//! `--table delta` against Apache Kafka, the table read by delta-rs (Python `deltalake`) and
//! DuckDB's `delta_scan`, not by hubcap: every offset once, partition pruning on `partition`, and a second run that adds only
//! what is new; a run killed between a file's upload and its commit adds the file once on the
//! next run.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

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

fn produced_offsets(produced: &[Produced]) -> BTreeSet<(i32, i64)> {
    produced.iter().map(|p| (p.partition, p.offset)).collect()
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
    let topic = unique("clicks");
    let group = unique("g");
    t.create_topic(&topic, PARTITIONS).await;
    let mut produced = produce(&t.brokers, &topic, 0, 600).await;
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, 600);
    let out = tempfile::tempdir().unwrap();
    let output = out.path().to_str().unwrap();
    let flags = ["--table", "delta", "--window-size", "16KiB"];

    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, output, &flags);
    assert!(ok, "first run failed:\n{stderr}");
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
    for (p, app) in apps.iter().enumerate() {
        let next = local_next_offset(out.path(), &group, &topic, p as i32);
        assert_eq!(
            table["txn"][app].as_i64(),
            Some(next - 1),
            "the table's set-transaction version of partition {p} is its checkpoint's last offset"
        );
    }
    let (ok, report) = audit_cli(out.path(), &group);
    assert!(ok, "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_uploaded_but_not_committed_is_committed_once_by_the_next_run() {
    let t = Kafka::shared();
    let topic = unique("orders");
    let group = unique("g");
    t.create_topic(&topic, 1).await;
    let produced = produce(&t.brokers, &topic, 0, 200).await;
    wait_for_high_watermarks(&t.brokers, &topic, 1, 200);
    let out = tempfile::tempdir().unwrap();
    let output = out.path().to_str().unwrap();
    let flags = ["--table", "delta", "--window-size", "16KiB"];
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, output, &flags);
    assert!(ok, "{stderr}");
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

/// Sets the partition's checkpoint back to the intent of publishing `file` (its name relative
/// to the output), as a crash after the upload and before the commit leaves it.
fn rewind_checkpoint_to(dir: &Path, group: &str, topic: &str, file: &str) {
    let path = checkpoint_file(dir, group, topic, 0);
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut manifests = Vec::new();
    let mut stack = vec![dir.join("_manifests")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                manifests.push(p);
            }
        }
    }
    let (manifest, line) = manifests
        .iter()
        .find_map(|m| {
            let text = std::fs::read_to_string(m).unwrap();
            let line = text
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .find(|l| l["path"] == file)?;
            let name = m.strip_prefix(dir.join("_manifests")).unwrap();
            Some((name.display().to_string(), line))
        })
        .unwrap_or_else(|| panic!("{file} in no manifest"));
    let first = line["firstSequenceNumber"].as_i64().unwrap();
    let last = line["lastSequenceNumber"].as_i64().unwrap();
    c["next_offset"] = first.into();
    c["pending"] = serde_json::json!({
        "path": file,
        "first_offset": first,
        "last_offset": last,
        "events": line["eventCount"],
        "size": line["sizeInBytes"],
        "first_time_ms": null,
        "last_time_ms": null,
        "manifest": manifest,
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
}
