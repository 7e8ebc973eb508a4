use super::*;
use crate::state::checkpoint::PendingFile;
use object_store::ObjectStoreExt;

const CHECK: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn state(
    partition: i32,
    low: i64,
    high: i64,
    next: Option<i64>,
    last: Option<i64>,
) -> PartitionState {
    PartitionState {
        partition,
        low,
        high,
        next_offset: next,
        last_time_ms: last,
    }
}

#[test]
fn a_partition_at_its_end_is_complete_up_to_the_check() {
    let m = mark(&state(0, 0, 10, Some(10), Some(5)), CHECK);
    assert_eq!(
        (m.basis, m.complete_until_ms),
        (Basis::CaughtUp, Some(CHECK))
    );
    // Never written to, or emptied by retention: nothing to wait for.
    let m = mark(&state(1, 7, 7, None, None), CHECK);
    assert_eq!(
        (m.basis, m.complete_until_ms),
        (Basis::CaughtUp, Some(CHECK))
    );
}

#[test]
fn a_partition_behind_is_complete_up_to_its_last_archived_record() {
    let m = mark(&state(0, 0, 10, Some(4), Some(CHECK - 60_000)), CHECK);
    assert_eq!(
        (m.basis, m.complete_until_ms),
        (Basis::Behind, Some(CHECK - 60_000))
    );
    // A claim without an archived file yet: no time.
    let m = mark(&state(0, 0, 10, Some(0), None), CHECK);
    assert_eq!((m.basis, m.complete_until_ms), (Basis::Behind, None));
    let m = mark(&state(0, 0, 10, None, None), CHECK);
    assert_eq!((m.basis, m.complete_until_ms), (Basis::NotStarted, None));
    // The topic was re-created: its end is below the checkpoint. Not "caught up".
    let m = mark(&state(0, 0, 3, Some(10), Some(CHECK - 9)), CHECK);
    assert_eq!(
        (m.basis, m.complete_until_ms),
        (Basis::PastTheEnd, Some(CHECK - 9))
    );
}

#[test]
fn the_topic_waits_for_its_slowest_partition() {
    let marks = [
        mark(&state(0, 0, 10, Some(10), None), CHECK),
        mark(&state(1, 0, 10, Some(3), Some(CHECK - 5)), CHECK),
        mark(&state(2, 0, 0, None, None), CHECK),
    ];
    assert_eq!(least(&marks), Some(CHECK - 5));
    let marks = [marks[0].clone(), mark(&state(3, 0, 1, None, None), CHECK)];
    assert_eq!(least(&marks), None);
    assert_eq!(least(&[]), None);
}

fn stores() -> (CheckpointStore, Watermarks) {
    let root = Location::open("memory://", "--output").unwrap();
    let checkpoints = CheckpointStore::new(root.child("_checkpoints"), "g");
    (checkpoints, Watermarks::new(&root, "g"))
}

async fn checkpoint(
    s: &CheckpointStore,
    partition: i32,
    next: i64,
    last: Option<i64>,
    pending: bool,
) {
    let mut c = s.document("t", partition, next, "a");
    c.last_time_ms = last;
    c.pending = pending.then(|| PendingFile {
        path: "f.avro".into(),
        first_offset: next,
        last_offset: next + 9,
        events: 10,
        size: 100,
        first_time_ms: Some(CHECK),
        last_time_ms: Some(CHECK + 9),
        manifest: "m.jsonl".into(),
        crc32c: None,
        block_bytes: None,
        topic_id: None,
    });
    let version = s.load("t", partition).await.unwrap().map(|v| v.version);
    s.save(&c, version).await.unwrap();
}

#[tokio::test]
async fn it_is_stored_and_only_moves_forward() {
    let (c, w) = stores();
    checkpoint(&c, 0, 10, Some(CHECK - 100), false).await;
    checkpoint(&c, 1, 4, Some(CHECK - 200), false).await;
    let ends = [(0, 0, 10), (1, 0, 10)];
    let got = w.advance(&c, "t", &ends, CHECK, "me").await.unwrap();
    assert_eq!(got.complete_until_ms, Some(CHECK - 200));
    assert_eq!(
        got.complete_until.as_deref(),
        Some("2025-12-31T23:59:59.800Z")
    );
    let (stored, _) = w.load("t").await.unwrap().unwrap();
    assert_eq!(stored, got);
    let raw = c
        .location()
        .store
        .get(&w.path("t"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(json["version"], "1");
    assert_eq!(json["partitions"][1]["basis"], "behind");
    assert_eq!(w.path("t").as_ref(), "_watermarks/g/t.json");

    // Partition 1 catches up: complete up to the check.
    checkpoint(&c, 1, 10, Some(CHECK - 50), false).await;
    let later = w
        .advance(&c, "t", &ends, CHECK + 1_000, "me")
        .await
        .unwrap();
    assert_eq!(later.complete_until_ms, Some(CHECK + 1_000));

    // New records arrive: partition 0's part falls back to its last archived record, the
    // topic's time stays where it was.
    let ends = [(0, 0, 12), (1, 0, 10)];
    let after = w
        .advance(&c, "t", &ends, CHECK + 2_000, "other")
        .await
        .unwrap();
    assert_eq!(after.complete_until_ms, Some(CHECK + 1_000));
    assert_eq!(after.partitions[0].complete_until_ms, Some(CHECK - 100));
    assert_eq!(w.load("t").await.unwrap().unwrap().0, after);
    // Both behind, twice: the second check changes nothing and writes nothing.
    let ends = [(0, 0, 12), (1, 0, 11)];
    let behind = w
        .advance(&c, "t", &ends, CHECK + 3_000, "other")
        .await
        .unwrap();
    assert_eq!(behind.complete_until_ms, Some(CHECK + 1_000));
    assert_eq!(behind.partitions[1].basis, Basis::Behind);
    let again = w
        .advance(&c, "t", &ends, CHECK + 4_000, "third")
        .await
        .unwrap();
    assert_eq!(again, behind);
    assert_eq!(w.load("t").await.unwrap().unwrap().0.writer, "other");
}

#[tokio::test]
async fn a_file_being_published_does_not_count() {
    let (c, w) = stores();
    // The intent names offsets 10..=19, the upload may be complete; the checkpoint is not
    // past it, so the partition is behind and its time that of the file before.
    checkpoint(&c, 0, 10, Some(CHECK - 1_000), true).await;
    let got = w
        .advance(&c, "t", &[(0, 0, 20)], CHECK, "me")
        .await
        .unwrap();
    assert_eq!(got.complete_until_ms, Some(CHECK - 1_000));
    assert_eq!(got.partitions[0].basis, Basis::Behind);
}

#[tokio::test]
async fn a_damaged_or_foreign_document_is_refused_with_its_fix() {
    let (c, w) = stores();
    let store = c.location().store.clone();
    store.put(&w.path("t"), "{oops".into()).await.unwrap();
    let err = w
        .advance(&c, "t", &[(0, 0, 0)], CHECK, "me")
        .await
        .unwrap_err();
    assert!(matches!(err, WatermarkError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("remove it"), "{err}");
    store.delete(&w.path("t")).await.unwrap();
    w.advance(&c, "t", &[(0, 0, 0)], CHECK, "me").await.unwrap();
    let (doc, _) = w.load("t").await.unwrap().unwrap();
    let renamed = serde_json::to_vec(&Persisted::V1(Watermark {
        topic: "u".into(),
        ..doc
    }))
    .unwrap();
    store.put(&w.path("t"), renamed.into()).await.unwrap();
    let err = w.load("t").await.unwrap_err();
    assert!(matches!(err, WatermarkError::Mismatch { .. }), "{err}");
}

#[tokio::test]
async fn a_watermark_edited_into_the_future_is_computed_again() {
    let (c, w) = stores();
    checkpoint(&c, 0, 10, Some(CHECK - 100), false).await;
    w.advance(&c, "t", &[(0, 0, 10)], CHECK, "me")
        .await
        .unwrap();
    let (mut doc, _) = w.load("t").await.unwrap().unwrap();
    doc.complete_until_ms = Some(CHECK + 86_400_000);
    let edited = serde_json::to_vec(&Persisted::V1(doc)).unwrap();
    c.location()
        .store
        .put(&w.path("t"), edited.into())
        .await
        .unwrap();
    let got = w
        .advance(&c, "t", &[(0, 0, 12)], CHECK + 1_000, "me")
        .await
        .unwrap();
    assert_eq!(got.complete_until_ms, Some(CHECK - 100));
    // A clock a minute ahead is not a mistake.
    let (mut doc, _) = w.load("t").await.unwrap().unwrap();
    doc.complete_until_ms = Some(CHECK + 61_000);
    let ahead = serde_json::to_vec(&Persisted::V1(doc)).unwrap();
    c.location()
        .store
        .put(&w.path("t"), ahead.into())
        .await
        .unwrap();
    let got = w
        .advance(&c, "t", &[(0, 0, 12)], CHECK + 2_000, "me")
        .await
        .unwrap();
    assert_eq!(got.complete_until_ms, Some(CHECK + 61_000));
}
