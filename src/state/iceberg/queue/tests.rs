use std::sync::Arc;

use super::*;
use crate::encode::format::Format;
use crate::encode::parquet::ParquetCompression;
use crate::record::Event;

/// A table's location in a new in-memory store: clones share the store, as two instances
/// share a bucket.
fn location(name: &str) -> Location {
    Location::open(&format!("memory:///{name}"), "--output")
        .unwrap()
        .child("clicks")
}

fn columns() -> Vec<String> {
    vec!["partition".into()]
}

/// Partition `p`'s file of offsets `first..first + 10`, described by hand.
fn addition(p: i32, first: i64) -> Addition {
    Addition {
        file: DataFile {
            path: format!("partition={p}/{first:020}.parquet"),
            size: 100,
            records: 10,
            partition_values: vec![("partition".into(), p.to_string())],
            metrics: Default::default(),
        },
        committed: Committed {
            topic: "clicks".into(),
            partition: p,
            last_offset: first + 9,
        },
    }
}

async fn paths(w: &IcebergWriter) -> Vec<String> {
    let state = w.table().load().await.unwrap().unwrap();
    let mut paths: Vec<String> = w
        .table()
        .files(&state)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.file_path.rsplit_once("clicks/").unwrap().1.to_string())
        .collect();
    paths.sort();
    paths
}

#[tokio::test]
async fn a_file_the_summary_covers_is_not_added_again() {
    let at = location("covered");
    let w = IcebergWriter::open_or_create(at.clone(), &columns())
        .await
        .unwrap();
    assert_eq!(w.add(addition(0, 0)).await.unwrap(), Appended::Committed(2));
    assert_eq!(w.add(addition(0, 0)).await.unwrap(), Appended::AlreadyThere);
    assert_eq!(
        w.add(addition(0, 10)).await.unwrap(),
        Appended::Committed(3)
    );
    // An older file of the partition (a replay of a zombie's publish) is covered too.
    assert_eq!(w.add(addition(0, 0)).await.unwrap(), Appended::AlreadyThere);
    assert_eq!(
        paths(&w).await,
        [
            "partition=0/00000000000000000000.parquet",
            "partition=0/00000000000000000010.parquet"
        ]
    );
    // Reopened (a restart): the table is as it was, its partitioning checked.
    let again = IcebergWriter::open_or_create(at.clone(), &columns())
        .await
        .unwrap();
    assert_eq!(
        again.add(addition(0, 10)).await.unwrap(),
        Appended::AlreadyThere
    );
    let other = IcebergWriter::open_or_create(at.clone(), &["day".to_string()]).await;
    assert!(
        matches!(other, Err(IcebergError::Invalid { .. })),
        "{other:?}"
    );
}

/// Two instances on one table: each commits on the version it last saw, loses the race to the
/// other, reads the table again and commits on the new version; a file the other committed
/// meanwhile (the same file, a partition handed over) is skipped, not added twice.
#[tokio::test]
async fn a_lost_race_is_retried_on_the_new_version_without_adding_twice() {
    let at = location("race");
    let a = IcebergWriter::open_or_create(at.clone(), &columns())
        .await
        .unwrap();
    let b = IcebergWriter::open_or_create(at.clone(), &columns())
        .await
        .unwrap();
    assert_eq!(a.add(addition(0, 0)).await.unwrap(), Appended::Committed(2));
    // `b` still knows version 1: its commit loses the race for v2 and lands as v3.
    assert_eq!(b.add(addition(1, 0)).await.unwrap(), Appended::Committed(3));
    // `a` knows v2: the file `b` committed is there already, once.
    assert_eq!(a.add(addition(1, 0)).await.unwrap(), Appended::AlreadyThere);
    assert_eq!(a.add(addition(2, 0)).await.unwrap(), Appended::Committed(4));
    assert_eq!(
        paths(&a).await,
        [
            "partition=0/00000000000000000000.parquet",
            "partition=1/00000000000000000000.parquet",
            "partition=2/00000000000000000000.parquet"
        ]
    );
    let offsets = a.table().load().await.unwrap().unwrap().offsets();
    assert_eq!(offsets.values().copied().collect::<Vec<_>>(), [9, 9, 9]);
}

/// Many partitions at once, from two instances: every file once, in fewer commits than files
/// (those waiting for a commit go into the next one together).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_files_are_batched_and_each_added_once() {
    let at = location("batch");
    let writers = [
        Arc::new(
            IcebergWriter::open_or_create(at.clone(), &columns())
                .await
                .unwrap(),
        ),
        Arc::new(
            IcebergWriter::open_or_create(at.clone(), &columns())
                .await
                .unwrap(),
        ),
    ];
    let mut tasks = Vec::new();
    for p in 0..16 {
        let writers = writers.clone();
        // Each partition's files in order, as a partition worker publishes them (the next
        // after the one before is in), from either instance (the partition handed over).
        tasks.push(tokio::spawn(async move {
            for first in [0, 10, 20] {
                let w = &writers[(p as usize + first as usize / 10) % 2];
                assert_ne!(
                    w.add(addition(p, first)).await.unwrap(),
                    Appended::AlreadyThere
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let files = paths(&writers[0]).await;
    let unique: std::collections::BTreeSet<&String> = files.iter().collect();
    assert_eq!((files.len(), unique.len()), (48, 48));
    let state = writers[0].table().load().await.unwrap().unwrap();
    assert!(state.version <= 49, "version {}", state.version);
    assert!(state.offsets().values().all(|o| *o == 29));
}

/// `describe` reads a file's footer back from the store: two ranged reads of its tail.
#[tokio::test]
async fn describe_reads_the_footer_from_the_store() {
    let location = location("footer");
    let w = IcebergWriter::open_or_create(location.clone(), &columns())
        .await
        .unwrap();
    let format = Format::Parquet {
        compression: ParquetCompression::Zstd,
        row_group_bytes: 4 << 10,
    };
    let mut file = format.create("clicks", 0, 100);
    let mut bytes = Vec::new();
    for offset in 100..150 {
        let e = Event {
            offset,
            timestamp_ms: Some(1_772_600_000_000 + offset),
            key: None,
            headers: vec![],
            value: Some(vec![b'x'; 16]),
        };
        file.prepare(&e.record());
        file.push_prepared(&e.record()).unwrap();
        bytes.extend(file.take_output());
    }
    bytes.extend(file.finish().unwrap().0);
    let name = "partition=0/00000000000000000100.parquet";
    let size = bytes.len() as u64;
    location
        .put(&location.path(name), bytes.into())
        .await
        .unwrap();
    let values = vec![("partition".to_string(), "0".to_string())];
    let f = w.describe(name, size, values).await.unwrap();
    assert_eq!((f.records, f.size), (50, size));
    assert_eq!(f.metrics.lower_bounds[&1], 100i64.to_le_bytes());
    assert_eq!(f.metrics.upper_bounds[&1], 149i64.to_le_bytes());
    let short = w.describe(name, size - 1, vec![]).await;
    assert!(
        matches!(short, Err(IcebergError::Unreadable { .. })),
        "{short:?}"
    );
}
