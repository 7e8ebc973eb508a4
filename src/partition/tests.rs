use std::time::Duration;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use super::*;
use crate::budget::{Charge, MemoryBudget, Use};
use crate::layout::DEFAULT_TEMPLATE;
use crate::record::{Batch, BatchPool, Event};

fn shared(max_bytes: u64, max_age: Duration, empty_files: bool) -> Arc<Shared> {
    let output = Location::open("memory://", "--output").unwrap();
    shared_on(output, max_bytes, max_age, empty_files)
}

fn shared_on(
    output: Location,
    max_bytes: u64,
    max_age: Duration,
    empty_files: bool,
) -> Arc<Shared> {
    // Paused-time tests start at this wall time, whatever the day.
    let clock = Clock::following(
        DateTime::parse_from_rfc3339("2026-03-04T05:06:07Z")
            .unwrap()
            .with_timezone(&Utc),
    );
    Arc::new(Shared {
        checkpoints: CheckpointStore::new(output.child("_checkpoints"), "g")
            .with_clock(clock.clone()),
        sdk: None,
        tables: None,
        manifests: Manifests::new(&output, "g"),
        output,
        files: FileSettings {
            namespace: "ns".into(),
            template: PathTemplate::parse(DEFAULT_TEMPLATE, "avro").unwrap(),
            policy: RollPolicy { max_bytes, max_age },
            format: Format::Avro {
                codec: crate::encode::avro::Codec::Null,
                block_target: 512,
            },
            empty_files,
            part_size: 1 << 20,
            min_part_size: 64 << 10,
        },
        budget: MemoryBudget::new(256 << 20),
        batches: BatchPool::default(),
        owner: "me".into(),
        clock,
        commits: CommitQueue::default(),
        rewinds: RewindQueue::default(),
        workers: Default::default(),
        metrics: Default::default(),
    })
}

/// Records as the consumer hands them to a worker, counted against a budget of their own.
fn events(evs: impl IntoIterator<Item = Event>) -> Input {
    let evs: Vec<Event> = evs.into_iter().collect();
    let batch = Batch::of(&evs);
    let mut charge = Charge::new(&MemoryBudget::new(256 << 20), Use::Queued);
    charge.set(batch.footprint());
    Input::Records(batch, charge)
}

fn ev(offset: i64, body_len: usize) -> Event {
    Event {
        offset,
        timestamp_ms: Some(1_700_000_000_000 + offset * 1000),
        key: Some(format!("k{offset}").into_bytes()),
        headers: vec![],
        value: Some(vec![b'x'; body_len]),
    }
}

type Running = tokio::task::JoinHandle<(PartitionReport, Result<(), WorkerError>)>;

fn start(
    shared: &Arc<Shared>,
    resume: Resume,
    end: Option<(i64, i64)>,
) -> (mpsc::Sender<Input>, Running) {
    let (tx, rx) = mpsc::channel(4);
    let worker = PartitionWorker::new(shared.clone(), "t", 0, resume, rx, end);
    (tx, tokio::spawn(worker.run()))
}

/// Every data file under the output (not checkpoints): (name, size, offsets in it).
async fn files(shared: &Shared) -> Vec<(String, u64, Vec<i64>)> {
    let metas: Vec<_> = shared.output.store.list(None).try_collect().await.unwrap();
    let mut out = Vec::new();
    for m in metas {
        let name = m.location.to_string();
        if name.starts_with("_checkpoints") || name.starts_with("_manifests") {
            continue;
        }
        let bytes = shared
            .output
            .store
            .get(&m.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let offsets: Vec<i64> = apache_avro::Reader::new(&bytes[..])
            .unwrap()
            .map(|r| match r.unwrap() {
                apache_avro::types::Value::Record(fields) => match &fields[0].1 {
                    apache_avro::types::Value::Long(n) => *n,
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect();
        out.push((name, m.size, offsets));
    }
    out.sort_by_key(|(_, _, o)| o.first().copied().unwrap_or(-1));
    out
}

/// Every manifest entry of the run.
async fn manifest_entries(shared: &Shared) -> Vec<crate::state::manifest::ManifestEntry> {
    let prefix = object_store::path::Path::from("_manifests/g");
    let metas: Vec<_> = shared
        .output
        .store
        .list(Some(&prefix))
        .try_collect()
        .await
        .unwrap();
    let mut out = Vec::new();
    for m in metas {
        let object = m
            .location
            .to_string()
            .trim_start_matches("_manifests/")
            .to_string();
        out.extend(shared.manifests.read(&object).await.unwrap());
    }
    out.sort_by_key(|e| e.first_sequence_number);
    out
}

async fn checkpoint(shared: &Shared) -> Option<Checkpoint> {
    shared
        .checkpoints
        .load("t", 0)
        .await
        .unwrap()
        .map(|v| v.checkpoint)
}

#[tokio::test]
async fn size_windows_keep_every_offset_exactly_once() {
    let s = shared(2048, Duration::from_secs(3600), false);
    let (tx, run) = start(&s, Resume::default(), None);
    for chunk in (0..100).collect::<Vec<_>>().chunks(7) {
        tx.send(events(chunk.iter().map(|&o| ev(o, 90))))
            .await
            .unwrap();
    }
    drop(tx);
    let (report, result) = run.await.unwrap();
    result.unwrap();
    let files = files(&s).await;
    assert!(files.len() > 3, "{files:?}");
    for (name, size, _) in &files {
        assert!(*size <= 2048, "{name} is {size} bytes");
    }
    let all: Vec<i64> = files.iter().flat_map(|(_, _, o)| o.clone()).collect();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    assert_eq!(report.events, 100);
    assert_eq!(report.files, files.len() as u64);
    let c = checkpoint(&s).await.unwrap();
    assert_eq!((c.next_offset, c.pending), (100, None));
    // Names carry the first offset of their file.
    for (name, _, offsets) in &files {
        assert!(
            name.ends_with(&format!("-{:020}.avro", offsets[0])),
            "{name}"
        );
    }
    assert_eq!(s.commits.drain(), vec![(("t".to_string(), 0), 100)]);
    // One manifest line per file, agreeing with it.
    let entries = manifest_entries(&s).await;
    assert_eq!(entries.len(), files.len());
    for (e, (name, size, offsets)) in entries.iter().zip(&files) {
        assert_eq!(&e.path, name);
        assert_eq!(e.size_in_bytes, *size);
        assert_eq!(e.event_count, offsets.len() as u64);
        assert_eq!(
            (e.first_sequence_number, e.last_sequence_number),
            (offsets[0], *offsets.last().unwrap())
        );
        assert_eq!(
            e.first_enqueue_time.as_deref(),
            crate::state::manifest::time_text(Some(1_700_000_000_000 + offsets[0] * 1000))
                .as_deref()
        );
        assert_eq!(
            (
                e.format.as_str(),
                e.codec.as_str(),
                e.topic.as_str(),
                e.partition_id
            ),
            ("avro", "null", "t", 0)
        );
    }
}

#[tokio::test]
async fn oversized_record_gets_a_file_of_its_own() {
    let s = shared(1024, Duration::from_secs(3600), false);
    let (tx, run) = start(&s, Resume::default(), None);
    tx.send(events(vec![ev(0, 10), ev(1, 5000), ev(2, 10)]))
        .await
        .unwrap();
    drop(tx);
    run.await.unwrap().1.unwrap();
    let offsets: Vec<Vec<i64>> = files(&s).await.into_iter().map(|f| f.2).collect();
    assert_eq!(offsets, vec![vec![0], vec![1], vec![2]]);
}

#[tokio::test(start_paused = true)]
async fn time_window_closes_without_more_traffic() {
    let s = shared(1 << 30, Duration::from_secs(60), false);
    let (tx, run) = start(&s, Resume::default(), None);
    tx.send(events(vec![ev(0, 10), ev(1, 10), ev(2, 10)]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        files(&s).await.is_empty(),
        "closed before the window passed"
    );
    tokio::time::sleep(Duration::from_secs(31)).await;
    let f = files(&s).await;
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].2, vec![0, 1, 2]);
    assert_eq!(checkpoint(&s).await.unwrap().next_offset, 3);
    drop(tx);
    run.await.unwrap().1.unwrap();
    assert_eq!(
        files(&s).await.len(),
        1,
        "no second file for an idle window"
    );
}

#[tokio::test(start_paused = true)]
async fn names_and_checkpoints_take_the_injected_clocks_time() {
    let s = shared(1 << 30, Duration::from_secs(60), false);
    let (tx, run) = start(&s, Resume::default(), None);
    // Two idle windows pass (at +60 s and +120 s); the third opens at 05:08:07.
    tokio::time::sleep(Duration::from_secs(130)).await;
    let untimed = Event {
        timestamp_ms: None,
        ..ev(0, 10)
    };
    tx.send(events(vec![untimed])).await.unwrap();
    tokio::time::sleep(Duration::from_secs(51)).await;
    let f = files(&s).await;
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        f[0].0, "ns/t/0/2026/03/04/05/08/07-00000000000000000000.avro",
        "named by the window's opening"
    );
    let c = checkpoint(&s).await.unwrap();
    assert_eq!(
        c.updated_at, "2026-03-04T05:09:07.000Z",
        "stamped when it closed"
    );
    drop(tx);
    run.await.unwrap().1.unwrap();
}

#[tokio::test(start_paused = true)]
async fn idle_windows_write_empty_capture_files_only_when_asked() {
    for empty_files in [true, false] {
        let s = shared(1 << 30, Duration::from_secs(60), empty_files);
        let (tx, run) = start(&s, Resume::default(), None);
        tokio::time::sleep(Duration::from_secs(60 * 3 + 1)).await;
        drop(tx);
        let (report, result) = run.await.unwrap();
        result.unwrap();
        let f = files(&s).await;
        if empty_files {
            assert_eq!(f.len(), 3, "{f:?}");
            assert!(f
                .iter()
                .all(|(_, size, offsets)| *size == 508 && offsets.is_empty()));
            assert_eq!(report.empty_files, 3);
        } else {
            assert!(f.is_empty());
        }
        assert!(
            checkpoint(&s).await.is_none(),
            "empty files cover no offsets"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn at_eof_with_nothing_open_the_checkpoint_skips_the_trailing_markers() {
    let s = shared(1 << 30, Duration::from_secs(60), false);
    let (tx, run) = start(&s, Resume::default(), None);
    tx.send(events((0..5).map(|o| ev(o, 10)))).await.unwrap();
    // A file is open: EOF at 6 (a commit marker at 5) changes nothing yet.
    tx.send(Input::Eof(Some(6))).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(checkpoint(&s).await.is_none());
    // The window closes by time: the checkpoint moves past the file and the marker.
    tokio::time::sleep(Duration::from_secs(61)).await;
    let c = checkpoint(&s).await.unwrap();
    assert_eq!(
        (c.next_offset, c.last_time_ms),
        (6, Some(1_700_000_004_000))
    );
    tx.send(Input::Eof(None)).await.unwrap();
    // Records after the marker go on from there.
    tx.send(events((6..8).map(|o| ev(o, 10)))).await.unwrap();
    drop(tx);
    let (report, result) = run.await.unwrap();
    result.unwrap();
    assert_eq!((report.events, report.next_offset), (7, Some(8)));
}

#[tokio::test]
async fn once_stops_at_the_end_offset_and_at_eof() {
    let s = shared(1 << 30, Duration::from_secs(3600), false);
    let (tx, run) = start(&s, Resume::default(), Some((0, 5)));
    tx.send(events((0..8).map(|o| ev(o, 10)))).await.unwrap();
    let (report, result) = run.await.unwrap();
    result.unwrap();
    assert_eq!((report.events, report.next_offset), (5, Some(5)));
    drop(tx);

    // A partition ending in a gap (a transaction marker at offset 9): EOF finishes it.
    let s = shared(1 << 30, Duration::from_secs(3600), false);
    let (tx, run) = start(&s, Resume::default(), Some((0, 10)));
    tx.send(events((0..9).map(|o| ev(o, 10)))).await.unwrap();
    tx.send(Input::Eof(None)).await.unwrap();
    let (report, result) = run.await.unwrap();
    result.unwrap();
    assert_eq!((report.events, report.next_offset), (9, Some(10)));
    assert_eq!(
        checkpoint(&s).await.unwrap().next_offset,
        10,
        "the gap is skipped"
    );

    // Only transaction markers, no checkpoint yet: EOF creates the checkpoint at the end.
    let s2 = shared(1 << 30, Duration::from_secs(3600), false);
    let (tx2, run) = start(&s2, Resume::default(), Some((0, 3)));
    tx2.send(Input::Eof(None)).await.unwrap();
    run.await.unwrap().1.unwrap();
    assert_eq!(checkpoint(&s2).await.unwrap().next_offset, 3);
    assert!(files(&s2).await.is_empty());

    // Already at the end: finishes at once, writes nothing.
    let (_tx, run) = start(&s, resume(&s, "t", 0, None).await.unwrap(), Some((0, 10)));
    let (report, result) = run.await.unwrap();
    result.unwrap();
    assert_eq!(report.files, 0);
}

#[tokio::test]
async fn redelivered_records_are_not_archived_twice() {
    let s = shared(1 << 30, Duration::from_secs(3600), false);
    let (tx, run) = start(&s, Resume::default(), None);
    tx.send(events(vec![
        ev(0, 1),
        ev(1, 1),
        ev(0, 1),
        ev(1, 1),
        ev(2, 1),
    ]))
    .await
    .unwrap();
    drop(tx);
    run.await.unwrap().1.unwrap();
    assert_eq!(files(&s).await[0].2, vec![0, 1, 2]);
}

/// Writes a checkpoint whose intent names a file, as a crash between intent and commit leaves it.
async fn crashed_after_intent(s: &Shared, path: &str) {
    crashed_after_intent_with(s, path, None).await;
}

/// [`crashed_after_intent`], the intent recording the file's block size.
async fn crashed_after_intent_with(s: &Shared, path: &str, block_bytes: Option<u64>) {
    let mut c = s.checkpoints.document("t", 0, 10, "old-owner");
    c.pending = Some(PendingFile {
        path: path.into(),
        first_offset: 10,
        last_offset: 14,
        events: 5,
        size: 1,
        first_time_ms: None,
        last_time_ms: None,
        manifest: "g/t/0/2026/11/21/14.jsonl".into(),
        crc32c: None,
        block_bytes,
        topic_id: None,
    });
    s.checkpoints.save(&c, None).await.unwrap();
}

/// A replay writes its records in the blocks its intent recorded, whatever share of the memory
/// budget the file gets now: the same bytes as the file it replaces.
#[tokio::test]
async fn a_replay_writes_the_blocks_its_intent_recorded() {
    let mut blocks = Vec::new();
    for recorded in [Some(120), Some(1 << 20), None] {
        let s = shared(1 << 30, Duration::from_secs(3600), false);
        crashed_after_intent_with(&s, "x/10.avro", recorded).await;
        let (tx, run) = start(&s, resume(&s, "t", 0, None).await.unwrap(), None);
        tx.send(events((10..20).map(|o| ev(o, 50)))).await.unwrap();
        drop(tx);
        run.await.unwrap().1.unwrap();
        let path = s.output.path("x/10.avro");
        let bytes = s
            .output
            .store
            .get(&path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let sync = crate::encode::avro::sync_marker("t", 0, 10);
        // The header ends with the sync marker, and so does each block.
        let markers = bytes.windows(16).filter(|w| *w == sync).count();
        blocks.push(markers - 1);
        let listed = s.manifests.read("g/t/0/2026/11/21/14.jsonl").await.unwrap();
        let expected = recorded.or(Some(listed[0].block_bytes.unwrap()));
        assert_eq!(
            listed[0].block_bytes, expected,
            "the line records the size used"
        );
    }
    // Five records of over 120 bytes: a block each at 120 bytes, one block at 1 MiB; without a
    // recorded size, the budget's share decides (and the line records it).
    assert_eq!(blocks[..2], [5, 1], "{blocks:?}");
}

#[tokio::test]
async fn resume_rolls_forward_when_the_pending_file_exists() {
    let s = shared(1 << 30, Duration::from_secs(3600), false);
    crashed_after_intent(&s, "x/10.avro").await;
    s.output
        .store
        .put(&s.output.path("x/10.avro"), vec![1u8].into())
        .await
        .unwrap();
    let r = resume(&s, "t", 0, None).await.unwrap();
    assert_eq!(r.next_offset(), Some(15));
    assert!(r.replay.is_none());
    let c = checkpoint(&s).await.unwrap();
    assert_eq!(
        (c.next_offset, c.pending, c.owner.as_str()),
        (15, None, "me")
    );
}

#[tokio::test]
async fn resume_rewrites_a_missing_pending_file_with_the_same_name_and_offsets() {
    let s = shared(100, Duration::from_secs(3600), false); // a tiny size window is ignored for the replay
    crashed_after_intent(&s, "x/10.avro").await;
    let r = resume(&s, "t", 0, None).await.unwrap();
    assert_eq!(r.next_offset(), Some(10));
    let (tx, run) = start(&s, r, None);
    tx.send(events((10..20).map(|o| ev(o, 50)))).await.unwrap();
    drop(tx);
    run.await.unwrap().1.unwrap();
    let f = files(&s).await;
    assert_eq!(f[0].0, "x/10.avro");
    let listed = s.manifests.read("g/t/0/2026/11/21/14.jsonl").await.unwrap();
    assert_eq!(
        listed.len(),
        1,
        "the replayed file is listed in the manifest its intent named"
    );
    assert_eq!(
        (listed[0].path.as_str(), listed[0].event_count),
        ("x/10.avro", 5)
    );
    assert_eq!(f[0].2, vec![10, 11, 12, 13, 14]);
    let rest: Vec<i64> = f[1..].iter().flat_map(|x| x.2.clone()).collect();
    assert_eq!(rest, (15..20).collect::<Vec<_>>());
    assert_eq!(checkpoint(&s).await.unwrap().next_offset, 20);
}

#[tokio::test]
async fn a_former_owner_is_fenced_and_publishes_nothing() {
    let s = shared(1 << 30, Duration::from_secs(3600), false);
    s.checkpoints
        .save(&s.checkpoints.document("t", 0, 0, "me"), None)
        .await
        .unwrap();
    let (tx, run) = start(&s, resume(&s, "t", 0, None).await.unwrap(), None);
    tx.send(events(vec![ev(0, 10), ev(1, 10)])).await.unwrap();
    // Another instance takes the partition over while the window is open.
    let newer = resume(&s, "t", 0, None).await.unwrap();
    assert!(newer.version.is_some());
    drop(tx);
    let (_, result) = run.await.unwrap();
    let err = result.unwrap_err();
    assert!(err.is_fenced(), "{err}");
    assert!(
        files(&s).await.is_empty(),
        "the fenced owner's file must not appear"
    );
    assert_eq!(checkpoint(&s).await.unwrap().next_offset, 0);
}

/// A store failing a third of the requests: the worker starts over from its checkpoint each
/// time (the test plays the consumer, honouring rewinds) and the result is still every offset
/// in exactly one file.
#[tokio::test]
async fn store_faults_restart_the_partition_from_its_checkpoint_and_lose_nothing() {
    use crate::store::faults::{Faults, FaultyStore};
    use crate::store::retry::RetryPolicy;
    const N: i64 = 400;
    let faulty = FaultyStore::new(
        Arc::new(object_store::memory::InMemory::new()),
        Faults {
            write_error: 0.15,
            checkpoint_error: 0.15,
            lost_answer: 0.15,
            part_error: 0.1,
            read_error: 0.1,
            hang: 0.02,
            max_latency: Duration::from_millis(2),
        },
    );
    let counts = faulty.counts();
    let output = Location {
        store: Arc::new(faulty),
        prefix: Default::default(),
        display: "memory://".into(),
        kind: crate::store::StoreKind::Memory,
        retry: RetryPolicy {
            give_up_after: Duration::from_secs(60),
            attempt_timeout: Duration::from_millis(300),
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        },
    };
    let mut shared =
        Arc::try_unwrap(shared_on(output, 3000, Duration::from_secs(3600), false)).unwrap();
    shared.files.part_size = 1000; // bigger files go out as multipart uploads
    shared.files.min_part_size = 1000;
    let s = Arc::new(shared);
    let r = resume(&s, "t", 0, None).await.unwrap();
    let (tx, run) = start(&s, r, Some((0, N)));
    let mut rewinds = 0;
    let mut pos = 0;
    while !tx.is_closed() {
        if let Some((_, next)) = s.rewinds.drain().pop() {
            pos = next.unwrap_or(0);
            rewinds += 1;
            let _ = tx.send(Input::Rewound).await;
        } else if pos < N {
            let upto = (pos + 7).min(N);
            let _ = tx.send(events((pos..upto).map(|o| ev(o, 40)))).await;
            pos = upto;
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let (report, result) = run.await.unwrap();
    result.unwrap();
    counts.set_enabled(false);
    assert!(counts.total() > 10, "{counts}");
    assert!(rewinds > 0);
    let mut all: Vec<i64> = files(&s).await.into_iter().flat_map(|f| f.2).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..N).collect::<Vec<_>>(),
        "{counts}; {rewinds} restarts"
    );
    assert_eq!(checkpoint(&s).await.unwrap().next_offset, N);
    assert_eq!(report.next_offset, Some(N));
    println!("{counts}; {rewinds} restarts from the checkpoint");
}

/// A store where the former owner writes the checkpoint right after we read it (a broker
/// handing the partition over before the former owner let go).
#[derive(Debug)]
struct Interloper {
    inner: Arc<dyn object_store::ObjectStore>,
    /// The former owner's next checkpoint, written after the first read of a checkpoint.
    write_after_read: Mutex<Option<(object_store::path::Path, Vec<u8>)>>,
}

impl std::fmt::Display for Interloper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Interloper")
    }
}

#[async_trait::async_trait]
impl object_store::ObjectStore for Interloper {
    async fn put_opts(
        &self,
        location: &object_store::path::Path,
        payload: object_store::PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &object_store::path::Path,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &object_store::path::Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        // The memory store's answer holds the bytes as they were: the write below is unseen.
        let got = self.inner.get_opts(location, options).await?;
        let pending = self.write_after_read.lock().unwrap().take();
        if let Some((path, doc)) = pending {
            self.inner.put(&path, doc.into()).await?;
        }
        Ok(got)
    }
    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<
            'static,
            object_store::Result<object_store::path::Path>,
        >,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &object_store::path::Path,
        to: &object_store::path::Path,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[tokio::test]
async fn a_claim_raced_by_the_former_owner_is_made_again_on_what_it_wrote() {
    let store = Arc::new(Interloper {
        inner: Arc::new(object_store::memory::InMemory::new()),
        write_after_read: Mutex::new(None),
    });
    let output = Location {
        store: store.clone(),
        prefix: Default::default(),
        display: "memory://".into(),
        kind: crate::store::StoreKind::Memory,
        retry: Default::default(),
    };
    let s = shared_on(output, 1 << 20, Duration::from_secs(3600), false);
    let old = s.checkpoints.document("t", 0, 10, "old-owner");
    s.checkpoints.save(&old, None).await.unwrap();
    // Right after our read, the former owner commits a file and moves the checkpoint to 20.
    let body = serde_json::to_vec(&serde_json::json!({
        "version": "1", "group": old.group, "topic": old.topic, "partition": 0,
        "next_offset": 20, "pending": null, "owner": "old-owner", "updated_at": "later"
    }))
    .unwrap();
    *store.write_after_read.lock().unwrap() = Some((s.checkpoints.path("t", 0), body));

    let r = resume(&s, "t", 0, None).await.unwrap();
    assert_eq!(
        r.next_offset(),
        Some(20),
        "resumed from what the former owner wrote last"
    );
    let c = checkpoint(&s).await.unwrap();
    assert_eq!((c.next_offset, c.owner.as_str()), (20, "me"));
}

/// `--azure-sdk-checkpoints` on memory stores: a partition without a checkpoint starts after the
/// SDK checkpoint, and every checkpoint the worker commits is mirrored.
#[tokio::test]
async fn sdk_checkpoints_are_taken_over_and_then_mirrored() {
    let sdk_store = Location::open("memory://", "--azure-sdk-checkpoints").unwrap();
    let sdk = crate::state::sdk::SdkCheckpoints::new(sdk_store, "ns.example", "G");
    let s = shared(1 << 10, Duration::from_secs(3600), false);
    let mut inner = Arc::try_unwrap(s).expect("not shared yet");
    inner.sdk = Some(sdk.clone());
    let s = Arc::new(inner);

    // A processor stopped after the event at offset 9.
    sdk.save("t", 0, 10).await.unwrap();
    let r = resume(&s, "t", 0, None).await.unwrap();
    assert_eq!(r.next_offset(), Some(10));
    assert_eq!(checkpoint(&s).await.unwrap().next_offset, 10, "claimed");

    let (tx, run) = start(&s, r, Some((0, 30)));
    tx.send(events((10..30).map(|o| ev(o, 100)))).await.unwrap();
    let (report, result) = run.await.unwrap();
    result.unwrap();
    assert!(report.files > 1, "several files, each mirrored");
    let offsets: Vec<i64> = files(&s).await.into_iter().flat_map(|f| f.2).collect();
    assert_eq!(offsets, (10..30).collect::<Vec<_>>());
    let mirrored = sdk.load("t", 0).await.unwrap().unwrap();
    assert_eq!(mirrored.sequence_number, 29);

    // hubcap's checkpoint wins over an SDK checkpoint written later.
    sdk.save("t", 0, 50).await.unwrap();
    assert_eq!(
        resume(&s, "t", 0, None).await.unwrap().next_offset(),
        Some(30)
    );
    assert_eq!(sdk.load("t", 0).await.unwrap().unwrap().next_offset(), 30);
}

/// A mirror that cannot be written (here: a local directory, which keeps no blob metadata) only
/// warns: the partition is archived and checkpointed all the same.
#[tokio::test]
async fn a_failing_sdk_mirror_does_not_stop_the_partition() {
    let dir = tempfile::tempdir().unwrap();
    let local = Location::open(dir.path().to_str().unwrap(), "--azure-sdk-checkpoints").unwrap();
    let sdk = crate::state::sdk::SdkCheckpoints::new(local, "ns", "g");
    let mut inner =
        Arc::try_unwrap(shared(1 << 20, Duration::from_secs(3600), false)).expect("not shared yet");
    inner.sdk = Some(sdk.clone());
    let s = Arc::new(inner);
    let (tx, run) = start(&s, Resume::default(), Some((0, 5)));
    tx.send(events((0..5).map(|o| ev(o, 10)))).await.unwrap();
    let (report, result) = run.await.unwrap();
    result.unwrap();
    assert_eq!((report.events, report.next_offset), (5, Some(5)));
    assert_eq!(checkpoint(&s).await.unwrap().next_offset, 5);
    assert_eq!(sdk.load("t", 0).await.unwrap(), None, "nothing mirrored");
}

mod trust;
