//! An Iceberg table hubcap's `state::iceberg` writes over Parquet files hubcap's encoder wrote,
//! read by pyiceberg (`StaticTable`) and DuckDB's `iceberg_scan`, not by hubcap: every offset
//! exactly once across two commits, the partition columns filled from the partition values,
//! a partition filter that plans only that partition's files, timestamps in microseconds, and
//! the committed offsets in the current snapshot's summary; and a table whose manifests were
//! merged and whose old snapshots and versions were expired and deleted, every offset once
//! still. No Kafka needed.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::*;
use hubcap::encode::format::Format;
use hubcap::encode::parquet::ParquetCompression;
use hubcap::record::Event;
use hubcap::state::iceberg::properties::{
    MAX_SNAPSHOTS, MIN_COUNT_TO_MERGE, PREVIOUS_VERSIONS_MAX,
};
use hubcap::state::iceberg::{Committed, DataFile, IcebergTable};
use hubcap::store::Location;
use serde_json::Value;

const BASE_MS: i64 = 1_772_600_000_000;

/// A Parquet file of `offsets` of `partition`, written by hubcap's encoder under the table as
/// the data-lake template names it, described from its footer.
fn parquet_file(
    table_dir: &std::path::Path,
    partition: i32,
    offsets: std::ops::Range<i64>,
) -> DataFile {
    let format = Format::Parquet {
        compression: ParquetCompression::Zstd,
        row_group_bytes: 2 << 10,
    };
    let mut file = format.create("clicks", partition, offsets.start);
    let mut bytes = Vec::new();
    for offset in offsets.clone() {
        let e = Event {
            offset,
            // The first record of each file has no timestamp: a null EnqueuedTime.
            timestamp_ms: (offset != offsets.start).then_some(BASE_MS + offset),
            key: Some(format!("device-{}", offset % 3).into_bytes()),
            headers: vec![],
            value: Some(format!("body {partition}/{offset}").into_bytes()),
        };
        file.prepare(&e.record());
        file.push_prepared(&e.record()).unwrap();
        bytes.extend(file.take_output());
    }
    bytes.extend(file.finish().unwrap().0);
    let path = format!(
        "partition={partition}/date=2026-03-04/{:020}.parquet",
        offsets.start
    );
    let full = table_dir.join(&path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(&full, &bytes).unwrap();
    let footer = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&Bytes::from(bytes.clone()))
        .unwrap();
    let values = vec![
        ("partition".to_string(), partition.to_string()),
        ("date".to_string(), "2026-03-04".to_string()),
    ];
    DataFile::from_footer(&path, bytes.len() as u64, values, &footer).unwrap()
}

fn committed(partition: i32, last_offset: i64) -> Committed {
    Committed {
        topic: "clicks".into(),
        partition,
        last_offset,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyiceberg_and_duckdb_read_every_offset_once() {
    let dir = tempfile::tempdir().unwrap();
    let output = Location::open(dir.path().to_str().unwrap(), "--output").unwrap();
    let table_dir = dir.path().canonicalize().unwrap().join("clicks");
    let table = IcebergTable::new(output.child("clicks")).unwrap();
    let v1 = table
        .create(&["partition".to_string(), "date".to_string()])
        .await
        .unwrap();

    // Two commits: partitions 0 and 1, then more of partition 0 and partition 2.
    let first = [
        parquet_file(&table_dir, 0, 0..40),
        parquet_file(&table_dir, 1, 0..25),
    ];
    let v2 = table
        .append(&v1, &first, &[committed(0, 39), committed(1, 24)])
        .await
        .unwrap();
    let second = [
        parquet_file(&table_dir, 0, 40..70),
        parquet_file(&table_dir, 2, 0..10),
    ];
    let v3 = table
        .append(&v2, &second, &[committed(0, 69), committed(2, 9)])
        .await
        .unwrap();
    assert_eq!(v3.version, 3);
    assert_eq!(table.files(&v3).await.unwrap().len(), 4);

    let metadata = table_dir.join("metadata/v3.metadata.json");
    let out = run_python(
        &script("read_iceberg.py"),
        &[metadata.to_str().unwrap(), table_dir.to_str().unwrap(), "0"],
    );
    let read: Value = serde_json::from_slice(&out).expect("read_iceberg.py prints JSON");
    let py = &read["pyiceberg"];

    // Every (partition, offset) exactly once, with its partition values and its time in µs.
    let mut seen: BTreeMap<(String, i64), Value> = BTreeMap::new();
    for row in py["rows"].as_array().unwrap() {
        let key = (
            row[0].as_str().unwrap().to_string(),
            row[2].as_i64().unwrap(),
        );
        assert_eq!(row[1], "2026-03-04", "{row}");
        assert!(
            seen.insert(key.clone(), row[3].clone()).is_none(),
            "{key:?} twice"
        );
    }
    let expected: Vec<(String, i64)> = [(0, 0..70), (1, 0..25), (2, 0..10)]
        .into_iter()
        .flat_map(|(p, r)| r.map(move |o| (p.to_string(), o)))
        .collect();
    assert_eq!(seen.keys().cloned().collect::<Vec<_>>(), expected);
    assert_eq!(seen[&("0".to_string(), 41)], (BASE_MS + 41) * 1000);
    assert_eq!(seen[&("0".to_string(), 40)], Value::Null);

    // The filter on the partition column plans partition 0's two files only.
    let uri = table.uri();
    let files = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(files(&py["files"]).len(), 4);
    assert_eq!(
        files(&py["pruned"]["files"]),
        [
            format!("{uri}/partition=0/date=2026-03-04/00000000000000000000.parquet"),
            format!("{uri}/partition=0/date=2026-03-04/00000000000000000040.parquet"),
        ]
    );
    let pruned: Vec<i64> = py["pruned"]["sequence_numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(pruned, (0..70).collect::<Vec<_>>());

    // The offsets recovery reads, as another reader sees them in the summary.
    let offsets = serde_json::json!({
        "hubcap.offsets.clicks.0": "69",
        "hubcap.offsets.clicks.1": "24",
        "hubcap.offsets.clicks.2": "9",
    });
    assert_eq!(py["offsets"], offsets);
    let ours: Vec<((String, i32), i64)> = table
        .load()
        .await
        .unwrap()
        .unwrap()
        .offsets()
        .into_iter()
        .collect();
    assert_eq!(
        ours,
        [
            (("clicks".into(), 0), 69),
            (("clicks".into(), 1), 24),
            (("clicks".into(), 2), 9)
        ]
    );

    // DuckDB: the same rows, by the metadata file and by the directory (version-hint.text).
    let duck = &read["duckdb"];
    let total: i64 = expected.iter().map(|(_, o)| o).sum();
    assert_eq!(duck["count"], expected.len());
    assert_eq!(duck["sum"], total);
    assert_eq!(duck["in_partition"], 70);
    assert_eq!(duck["by_dir"], expected.len());
}

/// 30 commits on a table that merges at 4 manifests, keeps 3 snapshots and 2 previous
/// versions: the current snapshot's files are mostly EXISTING entries of merged manifests,
/// written with their own sequence numbers, and the versions and manifests of the expired
/// snapshots are gone. pyiceberg and DuckDB (by the metadata file and through the version
/// hint) read every offset exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merged_and_expired_table_reads_every_offset_once() {
    let dir = tempfile::tempdir().unwrap();
    let output = Location::open(dir.path().to_str().unwrap(), "--output").unwrap();
    let table_dir = dir.path().canonicalize().unwrap().join("clicks");
    let table = IcebergTable::new(output.child("clicks")).unwrap();
    let v1 = table
        .create(&["partition".to_string(), "date".to_string()])
        .await
        .unwrap();
    let bounds = [
        (MIN_COUNT_TO_MERGE, "4"),
        (MAX_SNAPSHOTS, "3"),
        (PREVIOUS_VERSIONS_MAX, "2"),
    ];
    let mut state = table.set_properties(&v1, &bounds).await.unwrap();
    // Commit k (sequence number k + 1) adds the next 5 offsets of partition k % 3.
    let mut added = BTreeMap::new();
    for k in 0..30i64 {
        let (p, first) = ((k % 3) as i32, k / 3 * 5);
        let file = parquet_file(&table_dir, p, first..first + 5);
        state = table
            .append(
                &state,
                std::slice::from_ref(&file),
                &[committed(p, first + 4)],
            )
            .await
            .unwrap();
        let snapshot_id = state.metadata.current_snapshot_id.unwrap();
        added.insert(
            format!("{}/{}", table.uri(), file.path),
            (snapshot_id, k + 1),
        );
    }
    assert_eq!(state.version, 32);
    assert_eq!(state.metadata.snapshots.len(), 3);
    assert!(!table_dir.join("metadata/v1.metadata.json").exists());
    assert_eq!(table.files(&state).await.unwrap().len(), 30);

    let metadata = table_dir.join("metadata/v32.metadata.json");
    let out = run_python(
        &script("read_iceberg.py"),
        &[metadata.to_str().unwrap(), table_dir.to_str().unwrap(), "0"],
    );
    let read: Value = serde_json::from_slice(&out).expect("read_iceberg.py prints JSON");
    let expected: Vec<(String, i64)> = (0..3)
        .flat_map(|p| (0..50).map(move |o| (p.to_string(), o)))
        .collect();
    let py = &read["pyiceberg"];
    let mut rows: Vec<(String, i64)> = py["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[2].as_i64().unwrap()))
        .collect();
    rows.sort();
    assert_eq!(rows, expected, "pyiceberg: every offset once");
    assert_eq!(py["files"].as_array().unwrap().len(), 30);
    assert_eq!(py["pruned"]["files"].as_array().unwrap().len(), 10);
    // Each file with the snapshot and sequence numbers of the commit that added it, whether
    // its entry was merged (EXISTING, 0: written out) or not (ADDED, 1: inherited).
    let mut statuses = Vec::new();
    let entries: BTreeMap<String, (i64, i64)> = py["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let (sequence, file_sequence) = (e[3].as_i64().unwrap(), e[4].as_i64().unwrap());
            assert_eq!(sequence, file_sequence, "{e}");
            statuses.push(e[1].as_i64().unwrap());
            let path = e[0].as_str().unwrap().to_string();
            (path, (e[2].as_i64().unwrap(), sequence))
        })
        .collect();
    let existing = statuses.iter().filter(|s| **s == 0).count();
    assert!(existing >= 25, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s <= 1), "{statuses:?}");
    assert_eq!(entries, added);

    let duck = &read["duckdb"];
    let rows: Vec<(String, i64)> = duck["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_i64().unwrap()))
        .collect();
    assert_eq!(rows, expected, "DuckDB: every offset once");
    assert_eq!(duck["by_dir"], expected.len());
    assert_eq!(duck["in_partition"], 50);
}
