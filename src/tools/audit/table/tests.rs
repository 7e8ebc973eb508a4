use std::collections::BTreeMap;

use super::*;
use crate::state::table::LoggedFile;
use crate::tools::audit::Pending;

const ROOT: &str = "t";

/// A manifest line of group `g`, topic `t`, partition 0: `offsets`, `size` bytes.
fn line(name: &str, offsets: std::ops::RangeInclusive<i64>, size: u64) -> (Key, ManifestEntry) {
    let key: Key = (Some("g".into()), "t".into(), 0);
    let entry = ManifestEntry {
        version: "1".into(),
        file_url: format!("/out/{name}"),
        path: name.into(),
        topic: "t".into(),
        partition_id: 0,
        size_in_bytes: size,
        event_count: (offsets.end() - offsets.start() + 1) as u64,
        first_sequence_number: *offsets.start(),
        last_sequence_number: *offsets.end(),
        first_enqueue_time: None,
        last_enqueue_time: None,
        format: "parquet".into(),
        codec: "zstd".into(),
        created_at: "2026-01-01T00:00:00.000Z".into(),
        content_crc32c: None,
        block_bytes: None,
        topic_id: None,
    };
    (key, entry)
}

/// Three files of partition 0: offsets 0..=9, 10..=19, 20..=29, 100 bytes each.
fn archived() -> Archived {
    [(0, 9), (10, 19), (20, 29)]
        .into_iter()
        .map(|(first, last)| {
            let name = format!("{ROOT}/partition=0/{first:020}.parquet");
            let entry = line(&name, first..=last, 100);
            (name, entry)
        })
        .collect()
}

fn partition(checkpoint: Option<i64>) -> PartitionAudit {
    PartitionAudit {
        group: Some("g".into()),
        topic: "t".into(),
        partition: 0,
        checkpoint,
        ..Default::default()
    }
}

/// A table holding `archived`'s files whose first offset is below `upto`, with partition 0's
/// version at `version`.
fn table(upto: i64, version: Option<i64>) -> TableContents {
    let files = archived()
        .into_iter()
        .filter(|(_, (_, l))| l.first_sequence_number < upto)
        .map(|(name, (_, l))| {
            let file = LoggedFile {
                size: l.size_in_bytes,
                records: Some(l.event_count),
                partition_values: BTreeMap::from([("partition".into(), "0".into())]),
            };
            (name[ROOT.len() + 1..].to_string(), file)
        })
        .collect();
    TableContents {
        version: 3,
        files,
        versions: BTreeMap::from([("hubcap/g/t/0".into(), version)]),
        added_twice: BTreeMap::new(),
    }
}

fn judged(contents: TableContents, p: &PartitionAudit) -> TableAudit {
    judge(ROOT, Ok(contents), &archived(), &[p])
}

#[test]
fn a_table_with_every_archived_file_and_the_checkpoints_version_is_clean() {
    let audit = judged(table(30, Some(29)), &partition(Some(30)));
    assert_eq!(audit.failures(), 0, "{audit:?}");
    assert_eq!((audit.files, audit.events, audit.version), (3, 30, Some(3)));
    assert_eq!(
        audit.transactions,
        vec![TableTransaction {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            version: Some(29),
            expected: Some(29),
            checkpoint: Some(30),
            pending: None,
            ok: true,
        }]
    );
}

#[test]
fn a_commit_made_before_the_checkpoint_moved_is_pending_not_a_failure() {
    // Crashed after committing the third file, before the checkpoint moved past it.
    let mut p = partition(Some(20));
    p.pending = Some(Pending {
        path: format!("{ROOT}/partition=0/{:020}.parquet", 20),
        first_offset: 20,
        last_offset: 29,
        exists: true,
    });
    assert_eq!(judged(table(30, Some(29)), &p).failures(), 0);
    // Or before the commit.
    assert_eq!(judged(table(20, Some(19)), &p).failures(), 0);
    // But a version past the pending file is not explained by it.
    assert_eq!(judged(table(30, Some(35)), &p).failures(), 1);
}

#[test]
fn a_lost_commit_is_a_file_missing_from_the_table_and_a_version_behind() {
    let audit = judged(table(20, Some(19)), &partition(Some(30)));
    assert_eq!(
        audit.not_in_table,
        vec![format!("{ROOT}/partition=0/{:020}.parquet", 20)]
    );
    assert!(!audit.transactions[0].ok);
    assert_eq!(audit.failures(), 2);
}

#[test]
fn files_the_log_holds_and_hubcap_did_not_archive_or_not_so_are_failures() {
    let mut contents = table(30, Some(29));
    contents.files.insert(
        "partition=0/part-0001.snappy.parquet".into(),
        LoggedFile {
            size: 5,
            records: Some(1),
            partition_values: BTreeMap::new(),
        },
    );
    let first = format!("partition=0/{:020}.parquet", 0);
    contents.files.get_mut(&first).unwrap().records = Some(11);
    contents.files.get_mut(&first).unwrap().size = 99;
    contents.added_twice.insert(first.clone(), 2);
    let audit = judged(contents, &partition(Some(30)));
    assert_eq!(
        audit.not_archived,
        vec![format!("{ROOT}/partition=0/part-0001.snappy.parquet")]
    );
    assert_eq!(audit.added_twice, vec![format!("{ROOT}/{first}")]);
    assert_eq!(audit.disagree.len(), 1);
    assert_eq!(
        audit.disagree[0].reason,
        "the log says 99 bytes, its manifest line 100; the log says 11 records, its manifest line 10"
    );
    assert_eq!(audit.failures(), 3);
}

#[test]
fn files_at_or_past_the_checkpoint_need_not_be_in_the_table() {
    // The third file is an orphan: archived, never committed, the checkpoint before it.
    let audit = judged(table(20, Some(19)), &partition(Some(20)));
    assert_eq!(audit.failures(), 0, "{audit:?}");
}

#[test]
fn a_table_that_cannot_be_read_fails() {
    let audit = judge(
        ROOT,
        Err("no log".into()),
        &archived(),
        &[&partition(Some(30))],
    );
    assert_eq!((audit.failures(), audit.version), (1, None));
}

#[test]
fn partitions_without_a_checkpoint_promise_nothing() {
    let audit = judged(table(0, None), &partition(None));
    assert_eq!(audit.failures(), 0);
    assert!(audit.transactions.is_empty());
}

/// An Iceberg table whose two snapshots both add the same file: the current snapshot names it
/// in two manifests, readers read its records twice, and the audit fails on it. The same table
/// with each file once, its summary at the checkpoint's last offset, is clean.
#[tokio::test]
async fn an_iceberg_file_added_by_two_commits_fails_the_audit() {
    use crate::state::iceberg::{Committed, DataFile, IcebergTable};
    let output = Location::open("memory:///out", "--output").unwrap();
    let table = IcebergTable::new(output.child(ROOT)).unwrap();
    let mut state = table.create(&["partition".to_string()]).await.unwrap();
    let file = |first: i64| DataFile {
        path: format!("partition=0/{first:020}.parquet"),
        size: 100,
        records: 10,
        partition_values: vec![("partition".into(), "0".into())],
        metrics: Default::default(),
    };
    let at = |last_offset| Committed {
        topic: "t".into(),
        partition: 0,
        last_offset,
    };
    for first in [0, 10, 20] {
        state = table
            .append(&state, &[file(first)], &[at(first + 9)])
            .await
            .unwrap();
    }
    let p = partition(Some(30));
    let read = |p: &PartitionAudit| {
        let p = p.clone();
        let output = output.clone();
        async move {
            let contents = read_iceberg(&output.child(ROOT), ROOT, &[&p], None).await;
            judge(ROOT, contents, &archived(), &[&p])
        }
    };
    let clean = read(&p).await;
    assert_eq!(clean.failures(), 0, "{clean:?}");
    assert_eq!((clean.files, clean.events), (3, 30));
    assert_eq!(clean.transactions[0].version, Some(29));

    table.append(&state, &[file(10)], &[at(19)]).await.unwrap();
    let twice = read(&p).await;
    assert_eq!(
        twice.added_twice,
        vec![format!("{ROOT}/partition=0/{:020}.parquet", 10)]
    );
    assert_eq!(twice.failures(), 1, "{twice:?}");
}
