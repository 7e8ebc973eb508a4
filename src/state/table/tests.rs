use std::collections::BTreeSet;

use crate::encode::format::Format;
use crate::encode::parquet::{schema, ParquetCompression};
use crate::record::Event;
use object_store::ObjectStoreExt;

use super::*;

/// A Parquet file of `offsets` as hubcap writes it, put under the table at `path`.
async fn parquet_file(location: &Location, path: &str, offsets: std::ops::Range<i64>) -> TableFile {
    let format = Format::Parquet {
        compression: ParquetCompression::Zstd,
        row_group_bytes: 1 << 20,
    };
    let mut file = format.create("t", 0, offsets.start);
    let mut bytes = Vec::new();
    let records = offsets.end - offsets.start;
    for offset in offsets {
        let e = Event {
            offset,
            timestamp_ms: Some(1_772_600_000_000 + offset),
            key: Some(b"k".to_vec()),
            headers: vec![],
            value: Some(format!("body {offset}").into_bytes()),
        };
        file.prepare(&e.record());
        file.push_prepared(&e.record()).unwrap();
        bytes.extend(file.take_output());
    }
    bytes.extend(file.finish().unwrap().0);
    let size = bytes.len() as u64;
    location
        .store
        .put(&location.path(path), bytes.into())
        .await
        .unwrap();
    let partition = path
        .split('/')
        .find_map(|s| s.strip_prefix("partition="))
        .unwrap();
    TableFile {
        path: path.into(),
        size,
        records: records as u64,
        modified_ms: 1_772_600_000_000,
        partition_values: vec![
            ("partition".into(), partition.into()),
            ("date".into(), "2026-03-04".into()),
        ],
    }
}

/// The `add` actions of the table's JSON log: (path, partitionValues, numRecords), by version.
fn log_adds(dir: &std::path::Path) -> Vec<(String, serde_json::Value, i64)> {
    let mut entries: Vec<_> = std::fs::read_dir(dir.join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    let mut adds = Vec::new();
    for entry in entries {
        for line in std::fs::read_to_string(entry).unwrap().lines() {
            let action: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(add) = action.get("add") {
                let stats: serde_json::Value =
                    serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
                adds.push((
                    add["path"].as_str().unwrap().to_string(),
                    add["partitionValues"].clone(),
                    stats["numRecords"].as_i64().unwrap(),
                ));
            }
        }
    }
    adds
}

async fn local_table() -> (tempfile::TempDir, Location, DeltaTable) {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::open(dir.path().join("t").to_str().unwrap(), "--output").unwrap();
    let table = DeltaTable::open_or_create(&location, &schema(), &["partition", "date"])
        .await
        .unwrap();
    (dir, location, table)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_is_added_once_with_its_partition_and_offset() {
    let (dir, location, table) = local_table().await;
    let app = app_id("g", "t", 0);
    assert_eq!(table.committed(&app).await.unwrap(), None);

    let first = parquet_file(&location, "partition=0/date=2026-03-04/a.parquet", 0..10).await;
    assert_eq!(
        table.add(&app, 9, &first).await.unwrap(),
        Added::Committed(1)
    );
    assert_eq!(table.committed(&app).await.unwrap(), Some(9));
    // A retry of the same file (a restart after the commit) adds nothing.
    assert_eq!(
        table.add(&app, 9, &first).await.unwrap(),
        Added::AlreadyThere
    );
    let second = parquet_file(&location, "partition=0/date=2026-03-04/b.parquet", 10..15).await;
    assert_eq!(
        table.add(&app, 14, &second).await.unwrap(),
        Added::Committed(2)
    );
    assert_eq!(
        table.add(&app, 9, &first).await.unwrap(),
        Added::AlreadyThere
    );

    let adds = log_adds(&dir.path().join("t"));
    assert_eq!(adds.len(), 2, "{adds:?}");
    // The version checksum the first commit was made on: it makes app id lookups cheap.
    assert!(dir
        .path()
        .join("t/_delta_log/00000000000000000000.crc")
        .exists());
    assert_eq!(adds[0].0, "partition=0/date=2026-03-04/a.parquet");
    assert_eq!(
        adds[0].1,
        serde_json::json!({"partition": "0", "date": "2026-03-04"})
    );
    assert_eq!((adds[0].2, adds[1].2), (10, 5));

    // Opening it again finds the table; it is not created twice.
    let again = DeltaTable::open_or_create(&location, &schema(), &["partition", "date"])
        .await
        .unwrap();
    assert_eq!(again.committed(&app).await.unwrap(), Some(14));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_committing_at_once_each_get_a_version_of_their_own() {
    let (dir, location, table) = local_table().await;
    let mut tasks = Vec::new();
    for p in 0..6 {
        let path = format!("partition={p}/date=2026-03-04/f.parquet");
        let file = parquet_file(&location, &path, 0..3).await;
        let location = location.clone();
        // An instance of its own each: nothing in this process orders their commits.
        tasks.push(tokio::spawn(async move {
            let table = DeltaTable::open_or_create(&location, &schema(), &["partition", "date"])
                .await
                .unwrap();
            table.add(&app_id("g", "t", p), 2, &file).await
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Added::Committed(v) => versions.push(v),
            Added::AlreadyThere => panic!("each partition is new"),
        }
    }
    versions.sort_unstable();
    assert_eq!(
        versions,
        (1..=6).collect::<Vec<u64>>(),
        "lost races were retried"
    );
    assert_eq!(log_adds(&dir.path().join("t")).len(), 6);
    for p in 0..6 {
        assert_eq!(
            table.committed(&app_id("g", "t", p)).await.unwrap(),
            Some(2)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_of_one_instance_commit_together() {
    let (dir, location, table) = local_table().await;
    let table = Arc::new(table);
    let mut files = Vec::new();
    for p in 0..6 {
        let path = format!("partition={p}/date=2026-03-04/f.parquet");
        files.push((p, parquet_file(&location, &path, 0..3).await));
    }
    let tasks: Vec<_> = files
        .into_iter()
        .map(|(p, file)| {
            let table = table.clone();
            tokio::spawn(async move { table.add(&app_id("g", "t", p), 2, &file).await })
        })
        .collect();
    let mut versions = BTreeSet::new();
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Added::Committed(v) => versions.insert(v),
            Added::AlreadyThere => panic!("each partition is new"),
        };
    }
    assert_eq!(log_adds(&dir.path().join("t")).len(), 6);
    // Files that wait while a commit is made go in the next one together.
    assert!(versions.len() < 6, "one commit per file: {versions:?}");
    for p in 0..6 {
        assert_eq!(
            table.committed(&app_id("g", "t", p)).await.unwrap(),
            Some(2)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_creating_the_table_at_once_share_one() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::open(dir.path().to_str().unwrap(), "--output").unwrap();
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let location = location.clone();
            tokio::spawn(async move {
                DeltaTable::open_or_create(&location, &schema(), &["partition", "date"]).await
            })
        })
        .collect();
    for open in opens {
        open.await.unwrap().unwrap();
    }
    let zero = dir.path().join("_delta_log/00000000000000000000.json");
    let log = std::fs::read_to_string(zero).unwrap();
    assert!(
        log.contains("\"partitionColumns\":[\"partition\",\"date\"]"),
        "{log}"
    );
    assert!(!dir
        .path()
        .join("_delta_log/00000000000000000001.json")
        .exists());
}

/// What a commit costs, printed (not asserted: a measurement, not a test):
/// `cargo test --release --lib commit_cost -- --ignored --nocapture` (N=300 commits by default,
/// one file each, 16 partitions, a local table).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn commit_cost() {
    let (_dir, _location, table) = local_table().await;
    let n: i64 = std::env::var("N").map_or(300, |v| v.parse().expect("N is a number"));
    let started = std::time::Instant::now();
    let mut last = started;
    for i in 0..n {
        let p = i % 16;
        let file = TableFile {
            path: format!("partition={p}/date=2026-03-04/{i:020}.parquet"),
            size: 1000,
            records: 10,
            modified_ms: 1_772_600_000_000,
            partition_values: vec![
                ("partition".into(), p.to_string()),
                ("date".into(), "2026-03-04".into()),
            ],
        };
        let added = table.add(&app_id("g", "t", p as i32), i, &file).await;
        assert_eq!(added.unwrap(), Added::Committed(i as u64 + 1));
        if (i + 1) % 50 == 0 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let rss = status
                .lines()
                .find(|l| l.starts_with("VmRSS"))
                .unwrap_or("");
            eprintln!(
                "commits {}..={}: {:?} each; {rss}",
                i - 48,
                i + 1,
                last.elapsed() / 50
            );
            last = std::time::Instant::now();
        }
    }
    eprintln!("{n} commits: {:?} each", started.elapsed() / n as u32);
}

#[test]
fn a_log_that_cannot_be_read_is_not_retried_and_a_failing_store_is() {
    use delta_kernel::KernelError as K;
    let failing = || object_store::Error::Generic {
        store: "test",
        source: "503 Service Unavailable".into(),
    };
    let malformed = serde_json::from_str::<serde_json::Value>("{oops").unwrap_err();
    assert!(!kernel_transient(&K::MalformedJson(malformed)));
    assert!(!kernel_transient(&K::InvalidLogSegment("gap".into())));
    assert!(kernel_transient(&K::ObjectStore(failing())));
    // A Parquet checkpoint whose read failed in the store: the store decides.
    let wrapped = delta_kernel::parquet::errors::ParquetError::External(Box::new(failing()));
    assert!(kernel_transient(&K::Parquet(wrapped)));
    let text = kernel_text(&K::generic("one\nstack backtrace:\n   0: x"));
    assert!(
        !text.contains('\n') && !text.contains("backtrace"),
        "{text}"
    );
}

#[test]
fn a_hidden_topic_gets_the_table_folder_its_files_are_in() {
    let template = PathTemplate::parse(TABLE_TEMPLATE, "parquet").unwrap();
    let config = TableConfig::new("{EventHub}", &template).unwrap();
    assert_eq!(config.path_for("_events", "ns"), "@_events");
    assert_eq!(config.path_for("events", "ns"), "events");
    let name = template.render(&crate::layout::NameParts {
        namespace: "ns",
        topic: "_events",
        partition: 0,
        first_offset: 0,
        time: chrono::DateTime::UNIX_EPOCH,
    });
    assert!(name.starts_with("@_events/"), "{name}");
    for bad in ["_lake/{EventHub}", "../{EventHub}", "{EventHub}/.."] {
        let err = TableConfig::new(bad, &template).unwrap_err();
        assert!(err.starts_with("--table-path"), "{bad}: {err}");
    }
}
