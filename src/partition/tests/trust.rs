//! Operator mistakes a worker must not paper over: a re-created topic, offsets below the
//! checkpoint, a file name another writer holds.

use super::*;

/// A checkpoint records the topic's id; a claim under another id (the topic was deleted and
/// re-created, its offsets started over) is refused, one without an id takes the topic's.
#[tokio::test]
async fn a_recreated_topic_is_refused_and_an_old_checkpoint_takes_the_id() {
    let s = shared(1 << 30, Duration::from_secs(3600), false);
    s.checkpoints
        .save(&s.checkpoints.document("t", 0, 10, "old-owner"), None)
        .await
        .unwrap();
    let r = resume(&s, "t", 0, Some("idA")).await.unwrap();
    assert_eq!(r.topic_id.as_deref(), Some("idA"));
    assert_eq!(
        checkpoint(&s).await.unwrap().topic_id.as_deref(),
        Some("idA")
    );
    // Kafka gives no id (an older broker): the recorded one stays.
    resume(&s, "t", 0, None).await.unwrap();
    assert_eq!(
        checkpoint(&s).await.unwrap().topic_id.as_deref(),
        Some("idA")
    );
    let err = resume(&s, "t", 0, Some("idB")).await.unwrap_err();
    assert!(matches!(err, WorkerError::TopicRecreated { .. }), "{err}");
    assert_eq!(err.kind(), FailureKind::Data);
    assert!(!err.is_transient());
    assert_eq!(
        checkpoint(&s).await.unwrap().topic_id.as_deref(),
        Some("idA")
    );

    // Files written from now on carry the id in their manifest lines.
    let s = shared(1 << 30, Duration::from_secs(3600), false);
    let (tx, run) = start(&s, resume(&s, "t", 0, Some("idC")).await.unwrap(), None);
    tx.send(events((0..5).map(|o| ev(o, 10)))).await.unwrap();
    drop(tx);
    run.await.unwrap().1.unwrap();
    let lines = manifest_entries(&s).await;
    assert_eq!(lines[0].topic_id.as_deref(), Some("idC"));
    assert_eq!(
        checkpoint(&s).await.unwrap().topic_id.as_deref(),
        Some("idC")
    );
}

/// Records below the checkpoint mean Kafka moved the position back (a re-created or truncated
/// topic): the worker stops instead of skipping them as already archived.
#[tokio::test]
async fn offsets_below_the_checkpoint_stop_the_partition() {
    let s = shared(1 << 30, Duration::from_secs(3600), false);
    s.checkpoints
        .save(&s.checkpoints.document("t", 0, 100, "old-owner"), None)
        .await
        .unwrap();
    let (tx, run) = start(&s, resume(&s, "t", 0, None).await.unwrap(), None);
    tx.send(events((0..5).map(|o| ev(o, 10)))).await.unwrap();
    let (_, result) = run.await.unwrap();
    drop(tx);
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            WorkerError::OffsetsWentBack {
                offset: 0,
                next_offset: 100,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.kind(), FailureKind::Data);
    assert!(files(&s).await.is_empty());
    assert_eq!(checkpoint(&s).await.unwrap().next_offset, 100);
}

/// A file another writer put at a window's name is never replaced: the partition stops, naming
/// the other group, and the other file keeps its bytes.
#[tokio::test]
async fn a_name_another_group_wrote_is_not_overwritten() {
    let s = shared(1 << 30, Duration::from_secs(3600), false);
    // What a first run names its file (the clock is fixed), and another group's checkpoint.
    let (tx, run) = start(&s, Resume::default(), None);
    tx.send(events((0..5).map(|o| ev(o, 10)))).await.unwrap();
    drop(tx);
    run.await.unwrap().1.unwrap();
    let (name, _, _) = files(&s).await.remove(0);
    let path = s.output.path(&name);
    let ours = s
        .output
        .store
        .get(&path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let theirs = vec![9u8; 77];

    // This group's manifest lists the name: its own file of an earlier archive of these
    // offsets (its checkpoint removed since) is replaced.
    s.output
        .store
        .put(&path, theirs.clone().into())
        .await
        .unwrap();
    forget_checkpoint(&s).await;
    let (tx, run) = start(&s, resume(&s, "t", 0, None).await.unwrap(), None);
    tx.send(events((0..5).map(|o| ev(o, 10)))).await.unwrap();
    drop(tx);
    run.await.unwrap().1.unwrap();
    let got = s
        .output
        .store
        .get(&path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got, ours, "this group's own file is written again");

    // Without a manifest line of this group, the name is someone else's.
    let listed: Vec<_> = s.output.store.list(None).try_collect().await.unwrap();
    for m in listed
        .iter()
        .filter(|m| m.location.as_ref().contains("_manifests"))
    {
        s.output.store.delete(&m.location).await.unwrap();
    }
    s.output
        .store
        .put(&path, theirs.clone().into())
        .await
        .unwrap();
    let other = CheckpointStore::new(s.checkpoints.location().clone(), "other-group");
    other
        .save(&other.document("t", 0, 5, "them"), None)
        .await
        .unwrap();
    forget_checkpoint(&s).await;

    let (tx, run) = start(&s, resume(&s, "t", 0, None).await.unwrap(), None);
    tx.send(events((0..5).map(|o| ev(o, 10)))).await.unwrap();
    drop(tx);
    let err = run.await.unwrap().1.unwrap_err();
    assert!(matches!(err, WorkerError::Occupied { .. }), "{err}");
    assert!(err.to_string().contains("other-group"), "{err}");
    assert_eq!(err.kind(), FailureKind::Data);
    let got = s
        .output
        .store
        .get(&path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&got[..], &theirs[..], "left as it was");

    // The same at a claim: the intent's file is there with other bytes.
    forget_checkpoint(&s).await;
    crashed_after_intent(&s, &name).await;
    let err = resume(&s, "t", 0, None).await.unwrap_err();
    assert!(matches!(err, WorkerError::Occupied { .. }), "{err}");
}

/// Removes the partition's checkpoint, as an operator who starts the partition over does.
async fn forget_checkpoint(s: &Shared) {
    let path = s.checkpoints.path("t", 0);
    s.checkpoints.location().store.delete(&path).await.unwrap();
}
