//! Parquet end to end on the real broker, read back with pyarrow and DuckDB (hive partitioning).

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

const LAKE_TEMPLATE: &str =
    "{EventHub}/partition={PartitionId}/date={Year}-{Month}-{Day}/hour={Hour}/{Offset}";

fn read_parquet(root: &std::path::Path, partition: i32) -> Value {
    let out = run_python(
        &script("read_parquet.py"),
        &[root.to_str().unwrap(), &partition.to_string()],
    );
    serde_json::from_slice(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn parquet_reads_back_in_pyarrow_and_duckdb_with_partition_pruning() {
    let t = Kafka::shared();
    let topic = unique("lake");
    let group = unique("g");
    t.create_topic(&topic, 4).await;
    let produced = produce(&t.brokers, &topic, 0, 1500).await;
    wait_for_high_watermarks(&t.brokers, &topic, 4, 1500);
    let out = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run_once(
        &t.brokers,
        &topic,
        &group,
        out.path().to_str().unwrap(),
        &[
            "--format",
            "parquet",
            "--path-format",
            LAKE_TEMPLATE,
            "--window-size",
            "16KiB",
            "--row-group-size",
            "4KiB",
        ],
    );
    assert!(ok, "{stderr}");

    let doc = read_parquet(out.path(), 1);
    let files = doc["files"].as_array().unwrap();
    let records = doc["records"].as_array().unwrap();
    let expected: BTreeMap<(i32, i64), &Produced> = produced
        .iter()
        .map(|r| ((r.partition, r.offset), r))
        .collect();
    let mut seen = BTreeMap::new();
    for r in records {
        let key = (
            r["partition"].as_i64().unwrap() as i32,
            r["seq"].as_i64().unwrap(),
        );
        *seen.entry(key).or_insert(0) += 1;
        let want = expected
            .get(&key)
            .unwrap_or_else(|| panic!("{key:?} never produced"));
        check_record(r, want);
        assert_eq!(r["time_ms"], want.timestamp, "EnqueuedTime column");
        let date = chrono::DateTime::from_timestamp_millis(want.timestamp)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string();
        assert_eq!(r["date"], date, "hive date column");
    }
    let duplicates: usize = seen.values().filter(|&&n| n > 1).count();
    let missing = expected.keys().filter(|k| !seen.contains_key(k)).count();
    println!(
        "parquet: {} files, {} rows, {duplicates} duplicates, {missing} missing",
        files.len(),
        records.len()
    );
    assert_eq!((records.len(), duplicates, missing), (1500, 0, 0));
    assert!(
        files.iter().any(|f| f["row_groups"].as_u64().unwrap() > 1),
        "4KiB row groups: several per file"
    );
    for f in files {
        assert!(
            f["size"].as_u64().unwrap() <= 16 * 1024,
            "{} exceeds the size window",
            f["name"]
        );
    }

    let duck = &doc["duckdb"];
    assert_eq!(duck["total"], 1500);
    for p in 0..4 {
        let n = produced.iter().filter(|r| r.partition == p).count();
        assert_eq!(duck["per_partition"][p.to_string()], n, "partition {p}");
    }
    let n1 = produced.iter().filter(|r| r.partition == 1).count() as i64;
    assert_eq!(
        duck["partition_offsets"],
        serde_json::json!((0..n1).collect::<Vec<_>>())
    );
    let files_p1 = files
        .iter()
        .filter(|f| f["name"].as_str().unwrap().contains("/partition=1/"))
        .count();
    let read = duck["files_read_filtered"]
        .as_u64()
        .unwrap_or_else(|| panic!("no file count in plan:\n{}", duck["plan"].as_str().unwrap()));
    println!(
        "duckdb pruning: a query on partition=1 read {read} of {} files",
        files.len()
    );
    assert_eq!(
        read as usize, files_p1,
        "DuckDB reads only partition 1's files"
    );
    assert!(files_p1 < files.len());

    // The README's query example, unchanged: one user's events in order, in DuckDB and pyarrow,
    // on the day the test records carry (their timestamps span a few minutes).
    let day = chrono::DateTime::from_timestamp_millis(produced[0].timestamp)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/query_parquet.py");
    let root = out.path().to_str().unwrap();
    let text = String::from_utf8(run_python(&example, &[root, &topic, "user-5", &day])).unwrap();
    let mut want: Vec<(i64, i32, i64)> = produced
        .iter()
        .filter(|r| r.key.as_deref() == Some(b"user-5".as_slice()))
        .map(|r| (r.timestamp, r.partition, r.offset))
        .collect();
    want.sort();
    assert!(!want.is_empty());
    for engine in ["duckdb", "pyarrow"] {
        assert!(
            text.contains(&format!("{engine}: {} events of user-5", want.len())),
            "{text}"
        );
        let got: Vec<(i32, i64)> = text
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{engine} ")))
            .map(|l| {
                let mut f = l.split(' ');
                (
                    f.next().unwrap().parse().unwrap(),
                    f.next().unwrap().parse().unwrap(),
                )
            })
            .collect();
        let expected: Vec<(i32, i64)> = want.iter().map(|w| (w.1, w.2)).collect();
        assert_eq!(got, expected, "{engine}: user-5's events in order");
    }
    assert!(text.contains("count partition=1 date="), "{text}");
}
