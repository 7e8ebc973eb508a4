//! `--table iceberg` (and `--table delta,iceberg`) against Apache Kafka, the table read by
//! pyiceberg (`StaticTable.from_metadata`) and DuckDB's `iceberg_scan`, not by hubcap: every
//! offset once across runs, a partition filter that plans only that partition's files, each
//! partition's committed offset in the snapshot summary at its checkpoint; a crash between a
//! file's upload and its commit (the file is added once by the next run); and three instances
//! of one group killed with SIGKILL at random moments, with an Iceberg table alone and with a
//! Delta and an Iceberg table over the same files (delta-rs and DuckDB read the Delta one).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// The table's current metadata file, as its version hint names it.
fn current_metadata(table: &Path) -> PathBuf {
    let hint = std::fs::read_to_string(table.join("metadata/version-hint.text")).unwrap();
    table.join(format!("metadata/v{}.metadata.json", hint.trim()))
}

/// The table read by tests/py/read_iceberg.py, at `metadata` (default: the current version).
fn read_iceberg(table: &Path, metadata: Option<&Path>, partition: &str) -> Value {
    let metadata = metadata.map_or_else(|| current_metadata(table), Path::to_path_buf);
    let out = run_python(
        &script("read_iceberg.py"),
        &[
            metadata.to_str().unwrap(),
            table.to_str().unwrap(),
            partition,
        ],
    );
    serde_json::from_slice(&out).expect("read_iceberg.py prints JSON")
}

/// The data files pyiceberg plans (URIs), relative to the table.
fn table_files(read: &Value, table: &Path) -> BTreeSet<String> {
    let prefix = format!("file://{}/", table.display());
    read["pyiceberg"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let f = f.as_str().unwrap();
            f.strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{f} is not under {prefix}"))
                .to_string()
        })
        .collect()
}

/// Every reader of `read` returns each of `want` exactly once: (reader, rows, duplicates,
/// missing) printed and checked.
fn assert_every_offset_once(label: &str, read: &Value, want: &BTreeSet<(i32, i64)>) {
    for (reader, (count, seen)) in [
        ("pyiceberg", rows(&read["pyiceberg"]["rows"], 2)),
        ("DuckDB iceberg_scan", rows(&read["duckdb"]["rows"], 1)),
    ] {
        let duplicates = count - seen.len();
        let missing = want.difference(&seen).count();
        let extra = seen.difference(want).count();
        println!("{label}, {reader}: {count} events, {duplicates} duplicates, {missing} missing");
        assert_eq!((duplicates, missing, extra), (0, 0, 0), "{label}: {reader}");
    }
}

/// Each partition's committed offset in the snapshot summary is its checkpoint's last offset.
fn assert_offsets_are_checkpoints(
    read: &Value,
    dir: &Path,
    group: &str,
    topic: &str,
    partitions: i32,
) {
    for p in 0..partitions {
        let next = local_next_offset(dir, group, topic, p);
        let key = format!("hubcap.offsets.{topic}.{p}");
        assert_eq!(
            read["pyiceberg"]["offsets"][&key].as_str(),
            Some((next - 1).to_string().as_str()),
            "{key} is partition {p}'s checkpoint minus one"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_iceberg_table_holds_every_offset_once_across_runs() {
    const PARTITIONS: i32 = 3;
    let t = Kafka::shared();
    let flags = ["--table", "iceberg", "--window-size", "16KiB"];
    let a = OnceArchive::new(t, "iclicks", PARTITIONS, 600, &flags).await;
    let (topic, group, out, output) = (a.topic.clone(), a.group.clone(), &a.out, a.output());
    let mut produced = a.produced.clone();
    let table = out.path().canonicalize().unwrap().join(&topic);
    let read = read_iceberg(&table, None, "1");
    assert_every_offset_once("first run", &read, &produced_offsets(&produced));
    let files = table_files(&read, &table);
    assert_eq!(
        files,
        parquet_files(&table),
        "the table holds every file written, once"
    );
    assert!(files.len() > PARTITIONS as usize, "{files:?}");
    // A filter on the partition column plans that partition's files only.
    let in_one: BTreeSet<String> = files
        .iter()
        .filter(|f| f.starts_with("partition=1/"))
        .cloned()
        .collect();
    let pruned: BTreeSet<String> = read["pyiceberg"]["pruned"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f.as_str()
                .unwrap()
                .rsplit_once(&format!("{topic}/"))
                .unwrap()
                .1
                .to_string()
        })
        .collect();
    assert_eq!(pruned, in_one, "pyiceberg prunes on partition");
    let one: Vec<i64> = produced
        .iter()
        .filter(|p| p.partition == 1)
        .map(|p| p.offset)
        .collect();
    assert_eq!(
        read["pyiceberg"]["pruned"]["sequence_numbers"],
        serde_json::json!(one)
    );
    assert_eq!(read["duckdb"]["in_partition"], one.len());
    assert_eq!(read["duckdb"]["by_dir"], produced.len());
    assert_offsets_are_checkpoints(&read, out.path(), &group, &topic, PARTITIONS);
    let first_metadata = current_metadata(&table);

    produced.extend(produce(&t.brokers, &topic, 600, 300).await);
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, 900);
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, output, &flags);
    assert!(ok, "second run failed:\n{stderr}");
    let read = read_iceberg(&table, None, "0");
    assert_every_offset_once("second run", &read, &produced_offsets(&produced));
    assert_ne!(current_metadata(&table), first_metadata, "a new version");
    assert_eq!(table_files(&read, &table), parquet_files(&table));
    assert_offsets_are_checkpoints(&read, out.path(), &group, &topic, PARTITIONS);
    let (clean, report) = audit_cli_with(out.path(), &group, &["--json"]);
    assert!(clean, "{report}");
    let json: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(json["tables"][0]["format"], "iceberg");
    assert_eq!(json["tables"][0]["events"], 900);
    // `hubcap inspect` reads the files the current snapshot holds (not a file left in the
    // table's folders), and on the whole output takes the table's manifests for no records.
    let stray = table.join("partition=0/orphan.parquet");
    std::fs::copy(table.join(files.iter().next().unwrap()), &stray).unwrap();
    let inspect = |target: &Path| -> Value {
        let (ok, stdout, stderr) = run_with_timeout(
            hubcap().args(["inspect", "--stats", target.to_str().unwrap()]),
            Duration::from_secs(60),
        );
        assert!(ok, "{stderr}");
        assert!(!stdout.contains("metadata/"), "{stdout}");
        serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
    };
    assert_eq!(inspect(&table)["records"], 900);
    std::fs::remove_file(&stray).unwrap();
    assert_eq!(inspect(out.path())["records"], 900);
    println!(
        "Iceberg across runs: 900 events, {} files, table version {}",
        parquet_files(&table).len(),
        json["tables"][0]["version"]
    );
}

/// A crash after a file's upload and manifest line, before its Iceberg commit: the checkpoint
/// still names the file as pending and the table's last version is gone. The next run rolls the
/// file forward and commits it, once; a crash after the commit and before the checkpoint adds
/// nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_uploaded_but_not_committed_is_committed_once_by_the_next_run() {
    let t = Kafka::shared();
    let flags = ["--table", "iceberg", "--window-size", "16KiB"];
    let a = OnceArchive::new(t, "iorders", 1, 200, &flags).await;
    let (topic, group, out, output) = (a.topic.clone(), a.group.clone(), &a.out, a.output());
    let want = produced_offsets(&a.produced);
    let table = out.path().canonicalize().unwrap().join(&topic);
    let last = current_metadata(&table);
    let version: u64 = std::fs::read_to_string(table.join("metadata/version-hint.text"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(version > 2, "several commits: version {version}");
    let before = table.join(format!("metadata/v{}.metadata.json", version - 1));
    let previous = table_files(&read_iceberg(&table, Some(&before), "0"), &table);
    let all = parquet_files(&table);
    let newest: Vec<&String> = all.difference(&previous).collect();
    assert_eq!(
        newest.len(),
        1,
        "the last commit added one file: {newest:?}"
    );
    let file = format!("{topic}/{}", newest[0]);

    // Crashed after the commit, before the checkpoint: rolled forward, nothing added.
    rewind_checkpoint_to(out.path(), &group, &topic, &file);
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, output, &flags);
    assert!(
        ok && stderr.contains("checkpoint moves past it"),
        "{stderr}"
    );
    assert_eq!(current_metadata(&table), last, "no new version");

    // Crashed before the commit: the version is gone, the checkpoint names the file.
    std::fs::remove_file(&last).unwrap();
    std::fs::write(
        table.join("metadata/version-hint.text"),
        (version - 1).to_string(),
    )
    .unwrap();
    rewind_checkpoint_to(out.path(), &group, &topic, &file);
    let read = read_iceberg(&table, None, "0");
    let (count, _) = rows(&read["pyiceberg"]["rows"], 2);
    assert!(count < want.len(), "one file left the table");
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, output, &flags);
    assert!(
        ok && stderr.contains("checkpoint moves past it"),
        "{stderr}"
    );
    let read = read_iceberg(&table, None, "0");
    assert_every_offset_once("crash before the commit", &read, &want);
    assert_eq!(
        table_files(&read, &table),
        all,
        "every file in the table once"
    );
    assert_offsets_are_checkpoints(&read, out.path(), &group, &topic, 1);
    let (clean, report) = audit_cli(out.path(), &group);
    assert!(clean, "{report}");
    // And once more: nothing new, nothing added.
    let now = current_metadata(&table);
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, output, &flags);
    assert!(ok, "{stderr}");
    assert_eq!(current_metadata(&table), now);
}

/// `--table delta,iceberg`, a crash after the Delta commit and before the Iceberg one: the
/// Delta log has the file, the Iceberg table not, the checkpoint names it. The next run adds it
/// to the Iceberg table only; each table then holds every file once.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_the_delta_and_the_iceberg_commit_is_settled_by_the_next_run() {
    let t = Kafka::shared();
    let flags = ["--table", "delta,iceberg", "--window-size", "16KiB"];
    let a = OnceArchive::new(t, "iboth", 1, 200, &flags).await;
    let (topic, group, out, output) = (a.topic.clone(), a.group.clone(), &a.out, a.output());
    let want = produced_offsets(&a.produced);
    let table = out.path().canonicalize().unwrap().join(&topic);
    let delta_version = |table: &Path| -> i64 {
        let read: Value = serde_json::from_slice(&run_python(
            &script("read_delta.py"),
            &[table.to_str().unwrap(), "0"],
        ))
        .unwrap();
        read["version"].as_i64().unwrap()
    };
    let delta_before = delta_version(&table);
    let version: u64 = std::fs::read_to_string(table.join("metadata/version-hint.text"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let before = table.join(format!("metadata/v{}.metadata.json", version - 1));
    let previous = table_files(&read_iceberg(&table, Some(&before), "0"), &table);
    let all = parquet_files(&table);
    let newest: Vec<&String> = all.difference(&previous).collect();
    assert_eq!(newest.len(), 1, "{newest:?}");
    std::fs::remove_file(current_metadata(&table)).unwrap();
    std::fs::write(
        table.join("metadata/version-hint.text"),
        (version - 1).to_string(),
    )
    .unwrap();
    rewind_checkpoint_to(
        out.path(),
        &group,
        &topic,
        &format!("{topic}/{}", newest[0]),
    );

    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, output, &flags);
    assert!(
        ok && stderr.contains("checkpoint moves past it"),
        "{stderr}"
    );
    assert_eq!(
        delta_version(&table),
        delta_before,
        "nothing added to the Delta table"
    );
    let read = read_iceberg(&table, None, "0");
    assert_every_offset_once("crash between the two commits", &read, &want);
    assert_eq!(table_files(&read, &table), all);
    let (clean, report) = audit_cli(out.path(), &group);
    assert!(clean, "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn three_instances_killed_at_random_leave_every_offset_once_in_the_iceberg_table() {
    const PARTITIONS: i32 = 6;
    let k = kill_loop(&["--table", "iceberg"], PARTITIONS).await;
    let table = k.out.path().canonicalize().unwrap().join(&k.topic);
    let read = read_iceberg(&table, None, "1");
    let label = format!("Iceberg crash test ({} kills)", k.kills);
    assert_every_offset_once(&label, &read, &produced_offsets(&k.produced));
    let files = table_files(&read, &table);
    assert_eq!(files, parquet_files(&table), "every file written, once");
    assert_offsets_are_checkpoints(&read, k.out.path(), &k.group, &k.topic, PARTITIONS);
    let (clean, report) = audit_cli(k.out.path(), &k.group);
    assert!(clean, "hubcap audit after the kill loop:\n{report}");
    println!(
        "{label}: {} kills plus 3 at the end, {} events, {} files, table version {}",
        k.kills,
        k.produced.len(),
        files.len(),
        std::fs::read_to_string(table.join("metadata/version-hint.text")).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn three_instances_killed_at_random_leave_every_offset_once_in_both_tables() {
    const PARTITIONS: i32 = 6;
    let k = kill_loop(&["--table", "delta,iceberg"], PARTITIONS).await;
    let table = k.out.path().canonicalize().unwrap().join(&k.topic);
    let want = produced_offsets(&k.produced);
    let label = format!("Delta+Iceberg crash test ({} kills)", k.kills);
    let read = read_iceberg(&table, None, "1");
    assert_every_offset_once(&label, &read, &want);
    let files = table_files(&read, &table);
    assert_eq!(files, parquet_files(&table), "every file written, once");
    assert_offsets_are_checkpoints(&read, k.out.path(), &k.group, &k.topic, PARTITIONS);

    // The Delta table holds the same files, read by delta-rs and DuckDB's delta_scan.
    let delta: Value = serde_json::from_slice(&run_python(
        &script("read_delta.py"),
        &[table.to_str().unwrap(), "1"],
    ))
    .unwrap();
    let delta_files: BTreeSet<String> = delta["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    assert_eq!(delta_files, files, "one copy of the files, in both tables");
    let delta_rs: Vec<Value> = delta["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::json!([r["partition"], r["SequenceNumber"]]))
        .collect();
    for (reader, list) in [
        ("delta-rs", Value::Array(delta_rs)),
        ("DuckDB delta_scan", delta["duckdb"]["rows"].clone()),
    ] {
        let (count, seen) = rows(&list, 1);
        let duplicates = count - seen.len();
        let missing = want.difference(&seen).count();
        let extra = seen.difference(&want).count();
        println!("{label}, {reader}: {count} events, {duplicates} duplicates, {missing} missing");
        assert_eq!((duplicates, missing, extra), (0, 0, 0), "{reader}");
    }
    let (clean, report) = audit_cli_with(k.out.path(), &k.group, &["--json"]);
    assert!(clean, "hubcap audit after the kill loop:\n{report}");
    let json: Value = serde_json::from_str(&report).unwrap();
    let formats: BTreeSet<&str> = json["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["format"].as_str().unwrap())
        .collect();
    assert_eq!(formats, BTreeSet::from(["delta", "iceberg"]));
    println!(
        "{label}: {} kills plus 3 at the end, {} events, {} files, Delta version {}, Iceberg version {}",
        k.kills,
        k.produced.len(),
        files.len(),
        delta["version"],
        std::fs::read_to_string(table.join("metadata/version-hint.text")).unwrap()
    );
}
