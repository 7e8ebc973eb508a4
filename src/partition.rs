//! The partition worker: one task per assigned partition. It appends records to the open window's
//! file, rolls the file by size and time, and publishes each file durably before moving the
//! partition's checkpoint past it.

pub mod window;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use object_store::UpdateVersion;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tracing::{debug, error, info, warn};

use crate::budget::{Charge, MemoryBudget, Use};
use crate::encode::format::Format;
use crate::encode::{EncodeError, FileEncoder};
use crate::layout::{name_time, NameParts, PathTemplate};
use crate::observe::metrics::{Metrics, Operation, PartitionStats};
use crate::partition::window::{RollPolicy, RollReason};
use crate::record::{Batch, BatchPool, Record};
use crate::state::checkpoint::{
    now_rfc3339, Checkpoint, CheckpointError, CheckpointStore, PendingFile,
};
use crate::state::manifest::{
    time_text, ManifestEntry, ManifestError, Manifests, VERSION as MANIFEST_VERSION,
};
use crate::state::sdk::{SdkCheckpointError, SdkCheckpoints};
use crate::store::retry::Transient;
use crate::store::upload::Upload;
use crate::store::Location;

/// Upload parts of one file in flight at once, at most.
const PARTS_IN_FLIGHT: usize = 2;

/// What a run's workers share.
#[derive(Debug)]
pub struct Shared {
    pub output: Location,
    pub checkpoints: CheckpointStore,
    /// `--azure-sdk-checkpoints`: the mirror for Azure SDK processors.
    pub sdk: Option<SdkCheckpoints>,
    pub manifests: Manifests,
    pub namespace: String,
    pub template: PathTemplate,
    pub policy: RollPolicy,
    pub format: Format,
    pub empty_files: bool,
    /// Upload part size, at most; also the largest object written with a single put.
    pub part_size: usize,
    /// Upload part size, at least (the store's minimum, for the largest file a window holds).
    pub min_part_size: usize,
    /// `--memory-limit`: open files are sized from their share of it.
    pub budget: Arc<MemoryBudget>,
    /// Record batches for reuse: the consumer fills them, the workers give them back.
    pub batches: BatchPool,
    /// This instance's id, written into the checkpoints it owns.
    pub owner: String,
    pub commits: CommitQueue,
    pub rewinds: RewindQueue,
    /// Partition workers running: open files share the memory budget among them.
    pub workers: std::sync::atomic::AtomicUsize,
    /// Per-partition numbers for `/metrics`, `/readyz` and the progress view.
    pub metrics: Arc<Metrics>,
}

/// Requests from workers to the consumer thread, at most one per partition (a newer request
/// replaces an older one), so the queue never grows past the assignment.
#[derive(Debug, Clone)]
pub struct PartitionQueue<T>(Arc<Mutex<HashMap<(String, i32), T>>>);

impl<T> Default for PartitionQueue<T> {
    fn default() -> Self {
        PartitionQueue(Arc::default())
    }
}

/// Offsets to commit to Kafka (for lag tools) after their checkpoint was written.
pub type CommitQueue = PartitionQueue<i64>;

/// Partitions whose worker starts over from its checkpoint after a failure: the consumer moves
/// each back to the offset given (`None`: the partition's beginning), then sends
/// [`Input::Rewound`].
pub type RewindQueue = PartitionQueue<Option<i64>>;

impl<T> PartitionQueue<T> {
    pub fn offer(&self, topic: &str, partition: i32, value: T) {
        if let Ok(mut q) = self.0.lock() {
            q.insert((topic.to_string(), partition), value);
        }
    }

    pub fn drain(&self) -> Vec<((String, i32), T)> {
        self.0
            .lock()
            .map(|mut q| q.drain().collect())
            .unwrap_or_default()
    }
}

/// What the consumer hands a worker.
#[derive(Debug)]
pub enum Input {
    /// Records, with their count against the memory budget.
    Records(Batch, Charge),
    /// The consumer reached the partition's end (as far as the broker knew then).
    Eof,
    /// The consumer moved back to the offset a worker asked for in the [`RewindQueue`]; what
    /// follows starts there.
    Rewound,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Sdk(#[from] SdkCheckpointError),
    #[error("upload of {path} failed: {}", crate::store::retry::describe(.source))]
    Upload {
        path: String,
        source: object_store::Error,
    },
    #[error("checking for {path} failed: {}", crate::store::retry::describe(.source))]
    Head {
        path: String,
        source: object_store::Error,
    },
    #[error("encoding {path} failed: {source}")]
    Encode { path: String, source: EncodeError },
}

impl WorkerError {
    pub fn is_fenced(&self) -> bool {
        match self {
            WorkerError::Checkpoint(e) => e.is_fenced(),
            _ => false,
        }
    }

    /// Whether starting the partition over from its checkpoint may succeed: a store error that
    /// outlived its own retries (or a part upload, which cannot be retried alone).
    pub fn is_transient(&self) -> bool {
        match self {
            WorkerError::Checkpoint(CheckpointError::Store { source, .. })
            | WorkerError::Manifest(ManifestError::Store { source, .. }) => source.is_transient(),
            WorkerError::Manifest(ManifestError::Contended { .. }) => true,
            WorkerError::Sdk(e) => e.is_transient(),
            // A multipart upload the store expired or lost fails as `NotFound`: start it over.
            WorkerError::Upload {
                source: object_store::Error::NotFound { .. },
                ..
            } => true,
            WorkerError::Upload { source, .. } | WorkerError::Head { source, .. } => {
                source.is_transient()
            }
            _ => false,
        }
    }
}

/// What one partition did during the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PartitionReport {
    pub topic: String,
    pub partition: i32,
    pub files: u64,
    pub empty_files: u64,
    pub events: u64,
    pub bytes: u64,
    /// The checkpoint's next offset when the worker stopped.
    pub next_offset: Option<i64>,
}

/// Where a newly assigned partition starts.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub checkpoint: Option<Checkpoint>,
    pub version: Option<UpdateVersion>,
    /// A file whose intent was written but whose object does not exist: the first window of the
    /// replay is written again under this name with exactly these offsets.
    pub replay: Option<PendingFile>,
}

impl Resume {
    pub fn next_offset(&self) -> Option<i64> {
        self.checkpoint.as_ref().map(|c| c.next_offset)
    }
}

/// Reads a partition's checkpoint, settles an unfinished publish, and claims the partition by
/// re-writing the checkpoint under this owner (which fences the former owner's later writes).
///
/// A broker may hand a partition over before its former owner let go of it; when that owner
/// writes the checkpoint between our read and our claim, the claim is refused and is tried
/// again on what it wrote.
pub async fn resume(shared: &Shared, topic: &str, partition: i32) -> Result<Resume, WorkerError> {
    const CLAIMS: u32 = 10;
    let mut attempt = 1;
    loop {
        match claim(shared, topic, partition).await {
            Err(e) if e.is_fenced() && attempt < CLAIMS => {
                debug!(%topic, partition, attempt, "the former owner wrote the checkpoint meanwhile; claiming again");
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(attempt))).await;
            }
            other => return other,
        }
    }
}

async fn claim(shared: &Shared, topic: &str, partition: i32) -> Result<Resume, WorkerError> {
    let Some(found) = shared.checkpoints.load(topic, partition).await? else {
        return take_over_from_sdk(shared, topic, partition).await;
    };
    let mut c = found.checkpoint;
    let mut replay = None;
    if let Some(p) = c.pending.clone() {
        let path = shared.output.path(&p.path);
        match shared.output.head(&path).await {
            Ok(_) => {
                info!(%topic, partition, file = %p.path, "the last file before a stop is complete; checkpoint moves past it");
                shared
                    .manifests
                    .upsert(&p.manifest, &manifest_entry(shared, topic, partition, &p))
                    .await?;
                c.next_offset = p.last_offset + 1;
                c.pending = None;
            }
            Err(object_store::Error::NotFound { .. }) => {
                info!(%topic, partition, file = %p.path, "the last file before a stop never appeared; it is written again");
                replay = Some(p);
            }
            Err(source) => {
                return Err(WorkerError::Head {
                    path: p.path,
                    source,
                })
            }
        }
    }
    c.owner.clone_from(&shared.owner);
    c.updated_at = now_rfc3339();
    let version = shared.checkpoints.save(&c, Some(found.version)).await?;
    if let Some(sdk) = &shared.sdk {
        sdk.follow(topic, partition, c.next_offset).await;
    }
    Ok(Resume {
        checkpoint: Some(c),
        version: Some(version),
        replay,
    })
}

/// A partition without a hubcap checkpoint: with `--azure-sdk-checkpoints`, it starts after the
/// event an Azure SDK processor checkpointed last. hubcap's checkpoint is created there at once
/// (as a claim), so from then on only hubcap's own checkpoint counts.
async fn take_over_from_sdk(
    shared: &Shared,
    topic: &str,
    partition: i32,
) -> Result<Resume, WorkerError> {
    let Some(sdk) = &shared.sdk else {
        return Ok(Resume::default());
    };
    let Some(next_offset) = sdk.start_offset(topic, partition).await? else {
        return Ok(Resume::default());
    };
    let c = shared
        .checkpoints
        .document(topic, partition, next_offset, &shared.owner);
    let version = shared.checkpoints.save(&c, None).await?;
    Ok(Resume {
        checkpoint: Some(c),
        version: Some(version),
        replay: None,
    })
}

/// The manifest line of a published file, from its intent.
fn manifest_entry(shared: &Shared, topic: &str, partition: i32, p: &PendingFile) -> ManifestEntry {
    ManifestEntry {
        version: MANIFEST_VERSION.into(),
        file_url: format!("{}/{}", shared.output.display.trim_end_matches('/'), p.path),
        path: p.path.clone(),
        topic: topic.into(),
        partition_id: partition,
        size_in_bytes: p.size,
        event_count: p.events,
        first_sequence_number: p.first_offset,
        last_sequence_number: p.last_offset,
        first_enqueue_time: time_text(p.first_time_ms),
        last_enqueue_time: time_text(p.last_time_ms),
        format: shared.format.name().into(),
        codec: shared.format.codec_name().into(),
        created_at: now_rfc3339(),
    }
}

struct OpenFile {
    name: String,
    file: Box<dyn FileEncoder>,
    upload: Upload,
    first_offset: i64,
    last_offset: i64,
    first_time_ms: Option<i64>,
    last_time_ms: Option<i64>,
}

pub struct PartitionWorker {
    shared: Arc<Shared>,
    topic: String,
    partition: i32,
    input: mpsc::Receiver<Input>,
    /// `--once`: archive offsets below this, then stop.
    end: Option<i64>,
    /// The first offset the partition holds, for a partition without a checkpoint.
    low: i64,
    checkpoint: Option<Checkpoint>,
    version: Option<UpdateVersion>,
    replay: Option<PendingFile>,
    next: Option<i64>,
    open: Option<OpenFile>,
    opened: Instant,
    opened_wall: DateTime<Utc>,
    /// Wall time at `Instant` zero of this worker: wall-clock readings follow tokio's clock, so
    /// paused-time tests see windows open at distinct times.
    origin: (Instant, DateTime<Utc>),
    report: PartitionReport,
    stats: Arc<PartitionStats>,
    /// The open file's memory, against the budget.
    held: Charge,
}

enum Flow {
    Continue,
    Done,
}

impl PartitionWorker {
    pub fn new(
        shared: Arc<Shared>,
        topic: &str,
        partition: i32,
        resume: Resume,
        input: mpsc::Receiver<Input>,
        end: Option<(i64, i64)>,
    ) -> Self {
        let next = resume.next_offset();
        let origin = (Instant::now(), Utc::now());
        shared
            .workers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stats = shared.metrics.partition(topic, partition);
        let low = end.map_or(0, |(low, _)| low);
        stats.assigned(next.unwrap_or(low), next, end.map(|(_, high)| high));
        let held = Charge::new(&shared.budget, Use::File);
        PartitionWorker {
            shared,
            topic: topic.to_string(),
            partition,
            input,
            end: end.map(|(_, high)| high),
            low,
            checkpoint: resume.checkpoint,
            version: resume.version,
            replay: resume.replay,
            next,
            open: None,
            opened: origin.0,
            opened_wall: origin.1,
            origin,
            report: PartitionReport {
                topic: topic.to_string(),
                partition,
                next_offset: next,
                ..Default::default()
            },
            stats,
            held,
        }
    }

    /// Runs until the input closes (revoked or stopping), `--once` reaches its end, or an error.
    /// An open window is flushed first in every case but an error.
    ///
    /// A transient store error that outlived the store's retries aborts the open file and starts
    /// the partition over from its checkpoint (as a restarted process would), after a backoff;
    /// the run fails once errors persisted without progress for the retry policy's
    /// `give_up_after`.
    pub async fn run(mut self) -> (PartitionReport, Result<(), WorkerError>) {
        let policy = self.shared.output.retry;
        let mut streak: Option<(Instant, u32)> = None;
        let result = loop {
            let files_before = self.report.files;
            let result = self.run_inner().await;
            if let Some(f) = self.open.take() {
                f.upload.abort().await;
            }
            self.stats.window_closed();
            let e = match result {
                Ok(()) => break Ok(()),
                Err(e) if !e.is_transient() => break Err(e),
                Err(e) => e,
            };
            if self.report.files > files_before {
                streak = None;
            }
            let (since, attempts) = streak.get_or_insert((Instant::now(), 0));
            *attempts += 1;
            if since.elapsed() >= policy.give_up_after {
                error!(topic = %self.topic, partition = self.partition, attempts = *attempts, error = %e,
                    "archiving the partition failed; giving up after {:?} of retries", policy.give_up_after);
                break Err(e);
            }
            let delay = policy.delay(*attempts);
            crate::observe::metrics::count_retry(Operation::PartitionRestart);
            warn!(topic = %self.topic, partition = self.partition, attempt = *attempts, retry_in = ?delay, error = %e,
                "archiving the partition failed; it starts again from its checkpoint");
            match self.restart(delay).await {
                Ok(true) => {}
                Ok(false) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.report.next_offset = self
            .checkpoint
            .as_ref()
            .map(|c| c.next_offset)
            .or(self.next);
        (std::mem::take(&mut self.report), result)
    }

    async fn run_inner(&mut self) -> Result<(), WorkerError> {
        if self.at_end() {
            return Ok(());
        }
        loop {
            let deadline = self.shared.policy.deadline(self.opened);
            tokio::select! {
                input = self.input.recv() => match input {
                    Some(Input::Records(batch, charge)) => {
                        let flow = self.accept_all(&batch).await;
                        self.shared.batches.give_back(batch);
                        drop(charge);
                        if let Flow::Done = flow? {
                            return self.close(RollReason::End).await;
                        }
                        self.observe_window();
                    }
                    Some(Input::Eof) if self.end.is_some() => {
                        self.close(RollReason::End).await?;
                        return self.skip_to_end().await;
                    }
                    Some(Input::Eof | Input::Rewound) => {}
                    None => return self.close(RollReason::Stop).await,
                },
                () = sleep_until(deadline) => {
                    self.close(RollReason::Time).await?;
                    self.observe_window();
                }
            }
        }
    }

    /// After a failure: waits `delay`, reloads the checkpoint (settling the file in flight, as
    /// on assignment) and has the consumer move back to it. Input sent meanwhile is dropped: it
    /// is read again after the rewind. `Ok(false)` when the input closed (revoked or stopping).
    async fn restart(&mut self, delay: std::time::Duration) -> Result<bool, WorkerError> {
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                input = self.input.recv() => if input.is_none() { return Ok(false) },
                () = sleep_until(until) => break,
            }
        }
        let r = resume(&self.shared, &self.topic, self.partition).await?;
        self.next = r.next_offset();
        self.checkpoint = r.checkpoint;
        self.version = r.version;
        self.replay = r.replay;
        self.opened = Instant::now();
        self.opened_wall = self.wall(self.opened);
        self.shared
            .rewinds
            .offer(&self.topic, self.partition, self.next);
        loop {
            match self.input.recv().await {
                None => return Ok(false),
                Some(Input::Rewound) => return Ok(true),
                Some(_) => {}
            }
        }
    }

    fn at_end(&self) -> bool {
        self.end
            .is_some_and(|end| self.next.unwrap_or(self.low) >= end)
    }

    async fn accept_all(&mut self, batch: &Batch) -> Result<Flow, WorkerError> {
        for r in batch.iter() {
            if let Flow::Done = self.accept(&r).await? {
                return Ok(Flow::Done);
            }
        }
        Ok(Flow::Continue)
    }

    async fn accept(&mut self, r: &Record<'_>) -> Result<Flow, WorkerError> {
        if self.next.is_some_and(|next| r.offset < next) {
            // Re-delivered after a seek or rebalance; already archived or in the open file.
            return Ok(Flow::Continue);
        }
        if self.end.is_some_and(|end| r.offset >= end) {
            return Ok(Flow::Done);
        }
        self.append(r).await?;
        Ok(if self.at_end() {
            Flow::Done
        } else {
            Flow::Continue
        })
    }

    async fn append(&mut self, e: &Record<'_>) -> Result<(), WorkerError> {
        // Prepare the record on the open file; if it would overflow the size window, close the
        // file first (a replayed window keeps exactly the offsets its intent named).
        let mut prepared = false;
        let mut roll = None;
        if let Some(f) = &mut self.open {
            let extra = f.file.prepare(e);
            prepared = true;
            if self.replay.is_none() {
                roll = self
                    .shared
                    .policy
                    .roll_before(f.file.records(), f.file.size_with(extra));
            }
        }
        if let Some(reason) = roll {
            self.close(reason).await?;
            prepared = false;
        }
        if self.open.is_none() {
            self.open = Some(self.start_file(e));
        }
        let Some(f) = self.open.as_mut() else {
            return Ok(()); // unreachable: opened just above
        };
        if !prepared {
            f.file.prepare(e);
        }
        let encode_err = |source| WorkerError::Encode {
            path: f.name.clone(),
            source,
        };
        f.file.push_prepared(e).map_err(encode_err)?;
        f.last_offset = e.offset;
        f.last_time_ms = e.timestamp_ms;
        if f.file.output_len() > 0 {
            let path = f.name.clone();
            f.upload
                .write(f.file.take_output())
                .await
                .map_err(|source| WorkerError::Upload { path, source })?;
        }
        let size = f.file.size_with(0);
        self.next = Some(e.offset + 1);
        let roll = match &self.replay {
            Some(r) if e.offset >= r.last_offset => Some(RollReason::Size),
            Some(_) => None,
            None => self.shared.policy.roll_after(size),
        };
        if let Some(reason) = roll {
            self.close(reason).await?;
        }
        Ok(())
    }

    /// Per batch, not per record: the open window's size and the position, for metrics, and
    /// the open file's memory, for the budget.
    fn observe_window(&mut self) {
        let (records, bytes, held) = self.open.as_ref().map_or((0, 0, 0), |f| {
            (
                f.file.records(),
                f.file.size_with(0),
                f.file.held_bytes() + f.upload.held_bytes(),
            )
        });
        self.stats.window(records, bytes, self.next);
        self.held.set(held);
    }

    fn start_file(&self, first: &Record<'_>) -> OpenFile {
        self.stats.window_opened(first.timestamp_ms);
        let name = match &self.replay {
            Some(r) => r.path.clone(),
            None => self.name(
                first.offset,
                name_time(first.timestamp_ms, self.opened_wall),
            ),
        };
        // This file's share of the memory budget: an eighth for each upload part (one filling,
        // the others in flight), an eighth for an Avro block, a quarter for a Parquet row group;
        // never below the store's minimum part or the encoder's minimum.
        let files = self
            .shared
            .workers
            .load(std::sync::atomic::Ordering::Relaxed);
        let share = self.shared.budget.share(files);
        let part_size = (share / 8).clamp(
            self.shared.min_part_size,
            self.shared.part_size.max(self.shared.min_part_size),
        );
        let format = self.shared.format.sized_for(share);
        self.shared.budget.check_file(
            files,
            format.block_bytes() + (1 + PARTS_IN_FLIGHT) * part_size,
        );
        OpenFile {
            upload: Upload::new(
                self.shared.output.store.clone(),
                self.shared.output.path(&name),
                part_size,
                PARTS_IN_FLIGHT,
            )
            .with_retry(self.shared.output.retry),
            name,
            file: format.create(&self.topic, self.partition, first.offset),
            first_offset: first.offset,
            last_offset: first.offset,
            first_time_ms: first.timestamp_ms,
            last_time_ms: first.timestamp_ms,
        }
    }

    fn wall(&self, at: Instant) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(at - self.origin.0).unwrap_or_default();
        self.origin.1 + elapsed
    }

    fn name(&self, first_offset: i64, time: DateTime<Utc>) -> String {
        self.shared.template.render(&NameParts {
            namespace: &self.shared.namespace,
            topic: &self.topic,
            partition: self.partition,
            first_offset,
            time,
        })
    }

    /// Closes the window: publishes its file (if any), then starts the next window.
    async fn close(&mut self, reason: RollReason) -> Result<(), WorkerError> {
        let opened_wall = self.opened_wall;
        self.opened = Instant::now();
        self.opened_wall = self.wall(self.opened);
        match self.open.take() {
            Some(f) => self.publish(f, reason).await,
            None if reason == RollReason::Time && self.shared.empty_files => {
                self.publish_empty(opened_wall).await
            }
            None => Ok(()),
        }
    }

    async fn publish(&mut self, mut f: OpenFile, reason: RollReason) -> Result<(), WorkerError> {
        let records = f.file.records();
        let (rest, size) = match f.file.finish() {
            Ok(done) => done,
            Err(source) => {
                f.upload.abort().await;
                return Err(WorkerError::Encode {
                    path: f.name,
                    source,
                });
            }
        };
        let upload_err = |path: &str| {
            let path = path.to_string();
            move |source| WorkerError::Upload { path, source }
        };
        f.upload.write(rest).await.map_err(upload_err(&f.name))?;

        // 1. Intent: name the file and its offsets before it can appear.
        // A replay keeps the manifest object of the file it re-writes.
        let manifest = match &self.replay {
            Some(r) => r.manifest.clone(),
            None => self
                .shared
                .manifests
                .object_for(&self.topic, self.partition, Utc::now()),
        };
        let pending = PendingFile {
            path: f.name.clone(),
            first_offset: f.first_offset,
            last_offset: f.last_offset,
            events: records,
            size,
            first_time_ms: f.first_time_ms,
            last_time_ms: f.last_time_ms,
            manifest,
        };
        let next_offset = self
            .checkpoint
            .as_ref()
            .map_or(f.first_offset, |c| c.next_offset);
        if let Err(e) = self
            .save_checkpoint(next_offset, Some(pending.clone()))
            .await
        {
            f.upload.abort().await;
            return Err(e.into());
        }

        // 2. Publish: the object appears, complete, or not at all; then list it.
        let upload_started = std::time::Instant::now();
        f.upload.finish().await.map_err(upload_err(&f.name))?;
        let took = upload_started.elapsed();
        self.shared.metrics.upload_duration.observe(took);
        let entry = manifest_entry(&self.shared, &self.topic, self.partition, &pending);
        self.shared
            .manifests
            .upsert(&pending.manifest, &entry)
            .await?;

        // 3. Commit: only now does the checkpoint move past the file.
        self.save_checkpoint(f.last_offset + 1, None).await?;
        self.replay = None;
        self.shared
            .commits
            .offer(&self.topic, self.partition, f.last_offset + 1);

        self.report.files += 1;
        self.report.events += records;
        self.report.bytes += size;
        self.stats.file_archived(records, size);
        info!(
            topic = %self.topic,
            partition = self.partition,
            file = %f.name,
            events = records,
            bytes = size,
            offsets = %format!("{}..={}", f.first_offset, f.last_offset),
            ?reason,
            "file written"
        );
        Ok(())
    }

    /// `--once` reached the end of the partition (EOF) below its end offset: the offsets left
    /// hold no records (transaction markers, compacted or aborted records), so the checkpoint
    /// moves to the end offset and the next run does not wait for them.
    async fn skip_to_end(&mut self) -> Result<(), WorkerError> {
        let Some(end) = self.end else { return Ok(()) };
        if self.next.unwrap_or(self.low) >= end && self.checkpoint.is_some() {
            return Ok(());
        }
        self.save_checkpoint(end, None).await?;
        debug!(topic = %self.topic, partition = self.partition, end, "no records left below the end offset; checkpoint moved to it");
        self.next = Some(end);
        Ok(())
    }

    /// Writes this partition's checkpoint (creating it the first time) with compare-and-swap on
    /// the version last read or written.
    async fn save_checkpoint(
        &mut self,
        next_offset: i64,
        pending: Option<PendingFile>,
    ) -> Result<(), CheckpointError> {
        let mut c = self.checkpoint.clone().unwrap_or_else(|| {
            self.shared.checkpoints.document(
                &self.topic,
                self.partition,
                next_offset,
                &self.shared.owner,
            )
        });
        // A commit (no file pending) counts as archived and is mirrored to the Azure SDK
        // checkpoint, if any.
        let committed = pending.is_none();
        c.next_offset = next_offset;
        c.pending = pending;
        c.updated_at = now_rfc3339();
        let started = std::time::Instant::now();
        self.version = Some(
            self.shared
                .checkpoints
                .save(&c, self.version.take())
                .await?,
        );
        self.shared
            .metrics
            .checkpoint_duration
            .observe(started.elapsed());
        self.stats.checkpointed(next_offset, committed);
        self.checkpoint = Some(c);
        if let (Some(sdk), true) = (&self.shared.sdk, committed) {
            sdk.mirror(&self.topic, self.partition, next_offset).await;
        }
        Ok(())
    }

    /// An idle window with `--empty-files`: a valid Capture file with no records. It covers no
    /// offsets, so the checkpoint does not change.
    async fn publish_empty(&mut self, opened_wall: DateTime<Utc>) -> Result<(), WorkerError> {
        let first = self.next.unwrap_or(self.low);
        let name = self.name(first, opened_wall);
        let (bytes, size) = self
            .shared
            .format
            .create(&self.topic, self.partition, first)
            .finish()
            .map_err(|source| WorkerError::Encode {
                path: name.clone(),
                source,
            })?;
        let path = self.shared.output.path(&name);
        self.shared
            .output
            .put(&path, bytes.into())
            .await
            .map_err(|source| WorkerError::Upload {
                path: name.clone(),
                source,
            })?;
        self.report.empty_files += 1;
        self.report.bytes += size;
        debug!(topic = %self.topic, partition = self.partition, file = %name, "empty file written");
        Ok(())
    }
}

impl Drop for PartitionWorker {
    fn drop(&mut self) {
        self.shared
            .workers
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        self.stats.released();
    }
}

#[cfg(test)]
mod tests;
