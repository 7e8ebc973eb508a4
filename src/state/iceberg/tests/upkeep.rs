//! Metadata that stays small: manifest merging, snapshot retention, a bounded metadata log,
//! and deleting what no kept snapshot or version references, never anything else.

use std::collections::BTreeSet;

use futures::TryStreamExt;

use super::*;
use crate::state::iceberg::manifest::EXISTING;
use crate::state::iceberg::properties::{
    Merge, Upkeep, MAX_SNAPSHOTS, MERGE_ENABLED, MIN_COUNT_TO_MERGE, PREVIOUS_VERSIONS_MAX,
    TARGET_SIZE_BYTES,
};

/// The names of the table's files under `metadata/`.
async fn metadata_files(table: &IcebergTable) -> BTreeSet<String> {
    let folder = table.location.path("metadata");
    let listed: Vec<_> = table
        .location
        .store
        .list(Some(&folder))
        .try_collect()
        .await
        .unwrap();
    listed
        .iter()
        .map(|o| o.location.filename().unwrap().to_string())
        .collect()
}

/// Commits `count` one-file appends on `state`, the file of commit `k` (from 0) holding offset
/// `first + k` of partition `(first + k) % 4`; returns the last state and each commit's
/// snapshot id.
async fn commit_files(
    table: &IcebergTable,
    mut state: TableState,
    first: i64,
    count: i64,
) -> (TableState, Vec<i64>) {
    let mut ids = Vec::new();
    for offset in first..first + count {
        let p = (offset % 4) as i32;
        state = table
            .append(&state, &[file(p, offset, 1)], &[committed(p, offset)])
            .await
            .unwrap();
        ids.push(state.metadata.current_snapshot_id.unwrap());
    }
    (state, ids)
}

/// A table with small bounds, so that a few commits merge, expire and delete.
async fn small_table(name: &str) -> (IcebergTable, TableState) {
    let table = memory_table(name);
    let v1 = table.create(&columns()).await.unwrap();
    let bounds = [
        (MIN_COUNT_TO_MERGE, "4"),
        (MAX_SNAPSHOTS, "3"),
        (PREVIOUS_VERSIONS_MAX, "2"),
    ];
    let state = table.set_properties(&v1, &bounds).await.unwrap();
    (table, state)
}

#[test]
fn upkeep_reads_the_properties_with_java_defaults_and_names_a_bad_value() {
    let defaults = Upkeep::of(&BTreeMap::new()).unwrap();
    assert_eq!(
        defaults,
        Upkeep {
            merge: Some(Merge {
                min_count: 100,
                target_size: 8 << 20
            }),
            max_snapshots: 100,
            previous_versions_max: 100,
            delete_old_metadata: false,
        }
    );
    let set = |pairs: &[(&str, &str)]| {
        let props = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Upkeep::of(&props)
    };
    let off = set(&[(MERGE_ENABLED, "FALSE"), (MAX_SNAPSHOTS, "0")]).unwrap();
    assert_eq!((off.merge, off.max_snapshots), (None, 1));
    let err = set(&[(TARGET_SIZE_BYTES, "8MiB")]).unwrap_err();
    assert!(
        err.contains(TARGET_SIZE_BYTES) && err.contains("8388608"),
        "{err}"
    );
}

/// With Java's defaults (merge at 100 manifests, keep 100 snapshots and 100 previous versions),
/// 250 commits leave a short manifest list whose files are each commit's file exactly once,
/// with the snapshot and sequence number of the commit that added it; 100 snapshots; and on
/// the store exactly the files the kept snapshots and versions reference.
#[tokio::test]
async fn merging_and_retention_keep_every_file_once_with_its_sequence_number() {
    let table = memory_table("merge");
    let v1 = table.create(&columns()).await.unwrap();
    let (last, ids) = commit_files(&table, v1, 0, 250).await;
    assert_eq!(last.version, 251);

    let m = &last.metadata;
    let snap = last.snapshot().unwrap();
    let manifests = table.manifests(&snap.manifest_list).await.unwrap();
    assert!(manifests.len() < 100, "{} manifests", manifests.len());
    let files = table.files(&last).await.unwrap();
    let mut by_offset: Vec<(i64, &ManifestEntry)> = files
        .iter()
        .map(|e| {
            let name = e.file_path.rsplit('/').next().unwrap();
            (name.trim_end_matches(".parquet").parse().unwrap(), e)
        })
        .collect();
    by_offset.sort_by_key(|(offset, _)| *offset);
    let offsets: Vec<i64> = by_offset.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, (0..250).collect::<Vec<_>>(), "each file once");
    for (offset, e) in &by_offset {
        let k = offset + 1;
        assert_eq!(
            (e.sequence_number, e.file_sequence_number),
            (Some(k), Some(k)),
            "{offset}"
        );
        assert_eq!(e.snapshot_id, Some(ids[*offset as usize]), "{offset}");
        assert_eq!(e.partition[0], Some((offset % 4).to_string()));
    }
    // The manifest list's counts add up to the files, and its sequence bounds hold them.
    let total: i32 = manifests
        .iter()
        .map(|m| m.added_files_count + m.existing_files_count)
        .sum();
    assert_eq!(total, 250);
    let rows: i64 = manifests
        .iter()
        .map(|m| m.added_rows_count + m.existing_rows_count)
        .sum();
    assert_eq!(rows, 250);
    let merged = manifests
        .iter()
        .find(|m| m.manifest_path.ends_with("-m1.avro"))
        .expect("a merged manifest");
    assert!(merged.existing_files_count > 100, "{merged:?}");
    assert_eq!(merged.min_sequence_number, 1);
    assert_eq!(merged.partitions[0].lower_bound.as_deref(), Some(&b"0"[..]));
    assert_eq!(merged.partitions[0].upper_bound.as_deref(), Some(&b"3"[..]));
    assert_eq!(snap.summary["total-data-files"], "250");
    assert_eq!(snap.summary["total-records"], "250");

    // At most 100 snapshots and 100 previous versions, oldest first out.
    assert_eq!(m.snapshots.len(), 100);
    assert_eq!(m.snapshots[0].snapshot_id, ids[150]);
    let logged: Vec<i64> = m.snapshot_log.iter().map(|e| e.snapshot_id).collect();
    assert_eq!(logged, ids[150..]);
    assert_eq!(m.metadata_log.len(), 100);
    assert!(m.metadata_log[0]
        .metadata_file
        .ends_with("/v151.metadata.json"));

    // On the store: the kept versions, the hint, and the manifest lists and manifests the
    // kept snapshots reference; nothing of the expired ones.
    let mut referenced: BTreeSet<String> = (151..=251)
        .map(metadata::metadata_name)
        .chain(["version-hint.text".to_string()])
        .collect();
    for s in &m.snapshots {
        let name = |uri: &str| uri.rsplit('/').next().unwrap().to_string();
        referenced.insert(name(&s.manifest_list));
        for manifest in table.manifests(&s.manifest_list).await.unwrap() {
            referenced.insert(name(&manifest.manifest_path));
        }
    }
    assert_eq!(metadata_files(&table).await, referenced);
}

/// A merged manifest writes out what earlier commits' entries inherited: they are EXISTING
/// with their own snapshot id and sequence numbers; the commit's new file is ADDED and
/// inherits them.
#[tokio::test]
async fn merged_entries_carry_their_snapshot_and_sequence_numbers() {
    let (table, state) = small_table("carried").await;
    // Version 2 set the properties; commits 1..=4 are sequence numbers 1..=4.
    let (last, ids) = commit_files(&table, state, 0, 4).await;
    let snap = last.snapshot().unwrap();
    let manifests = table.manifests(&snap.manifest_list).await.unwrap();
    assert_eq!(manifests.len(), 1, "four manifests merged into one");
    let merged = &manifests[0];
    assert!(merged
        .manifest_path
        .ends_with(&format!("{}-m1.avro", ids[3])));
    assert_eq!(
        (merged.added_files_count, merged.existing_files_count),
        (1, 3)
    );
    assert_eq!((merged.sequence_number, merged.min_sequence_number), (4, 1));
    let raw = table.get_uri(&merged.manifest_path).await.unwrap();
    let entries = decode::read_manifest(&raw, &columns()).unwrap();
    // (status, snapshot id, sequence number, file sequence number) as written.
    let got: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e.status,
                e.snapshot_id,
                e.sequence_number,
                e.file_sequence_number,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (EXISTING, Some(ids[0]), Some(1), Some(1)),
            (EXISTING, Some(ids[1]), Some(2), Some(2)),
            (EXISTING, Some(ids[2]), Some(3), Some(3)),
            (ADDED, Some(ids[3]), None, None),
        ]
    );
}

/// Merging off and bounds far away: the table grows as before (the bench's baseline).
#[tokio::test]
async fn merging_and_retention_turned_off() {
    let table = memory_table("off");
    let v1 = table.create(&columns()).await.unwrap();
    let off = [(MERGE_ENABLED, "false"), (MAX_SNAPSHOTS, "1000000")];
    let state = table.set_properties(&v1, &off).await.unwrap();
    let (last, _) = commit_files(&table, state, 0, 120).await;
    let snap = last.snapshot().unwrap();
    assert_eq!(
        table.manifests(&snap.manifest_list).await.unwrap().len(),
        120
    );
    assert_eq!(last.metadata.snapshots.len(), 120);
}

/// Versions dropped from the log are deleted; `load` finds the latest through a hint that
/// names a deleted version, and without a hint at all.
#[tokio::test]
async fn old_versions_are_deleted_and_load_still_finds_the_latest() {
    let (table, state) = small_table("versions").await;
    let (last, _) = commit_files(&table, state, 0, 10).await;
    assert_eq!(last.version, 12);
    let versions: Vec<String> = metadata_files(&table)
        .await
        .into_iter()
        .filter(|n| n.ends_with(".metadata.json"))
        .collect();
    assert_eq!(
        versions,
        [
            "v10.metadata.json",
            "v11.metadata.json",
            "v12.metadata.json"
        ]
    );
    assert_eq!(last.metadata.snapshots.len(), 3);

    let hint = table.location.path(VERSION_HINT);
    table.location.put(&hint, "3".into()).await.unwrap();
    assert_eq!(table.load().await.unwrap(), Some(last.clone()));
    table.location.store.delete(&hint).await.unwrap();
    assert_eq!(table.load().await.unwrap(), Some(last.clone()));
    // A hint past every version is still wrong.
    table.location.put(&hint, "40".into()).await.unwrap();
    let err = table.load().await.unwrap_err();
    assert!(matches!(err, IcebergError::Unreadable { .. }), "{err}");
}

/// A commit that loses the race for its version deletes nothing of the table's, though it
/// would have expired a snapshot and a version had it won; it deletes only its own manifest and
/// manifest list, which no version refers to.
#[tokio::test]
async fn a_lost_race_deletes_only_what_it_wrote() {
    let (table, state) = small_table("lost").await;
    let (base, _) = commit_files(&table, state, 0, 6).await;
    let (won, _) = commit_files(&table, base.clone(), 6, 1).await;
    // The winner's hint write failed, so the loser gets as far as the version itself.
    let hint = table.location.path(VERSION_HINT);
    let stale = base.version.to_string();
    table.location.put(&hint, stale.into()).await.unwrap();
    let before = metadata_files(&table).await;
    let lost = table
        .append(&base, &[file(3, 7, 1)], &[committed(3, 7)])
        .await
        .unwrap_err();
    assert!(matches!(lost, IcebergError::Conflict { .. }), "{lost}");
    // Its manifest and manifest list, which no version refers to, are gone again; nothing of
    // the table's is.
    assert_eq!(metadata_files(&table).await, before);
    assert_eq!(table.load().await.unwrap(), Some(won));
}

/// A writer whose base is older than the versions kept cannot create the deleted version
/// after it: the hint says the table moved on, so it is a lost race, and nothing is lost.
#[tokio::test]
async fn a_base_older_than_the_kept_versions_is_a_conflict() {
    let (table, state) = small_table("stale").await;
    let (old, _) = commit_files(&table, state, 0, 1).await;
    let (latest, _) = commit_files(&table, old.clone(), 1, 5).await;
    let next = format!("metadata/{}", metadata::metadata_name(old.version + 1));
    assert_eq!(table.get(&next).await.unwrap(), None, "deleted");
    let err = table
        .append(&old, &[file(1, 1, 1)], &[committed(1, 1)])
        .await
        .unwrap_err();
    assert!(matches!(err, IcebergError::Conflict { .. }), "{err}");
    assert_eq!(table.get(&next).await.unwrap(), None);
    assert_eq!(table.load().await.unwrap(), Some(latest));
}
