//! The partition worker: one task per assigned partition. It appends records to the open window's
//! file, rolls the file by size and time, and publishes each file durably before moving the
//! partition's checkpoint past it.
//!
//! [`recovery`] takes a partition on, [`worker`] is the loop, [`window`] the roll policy, and
//! [`publish`] makes a closed file durable, then moves the checkpoint past it.

mod publish;
mod recovery;
pub mod window;
mod worker;

pub use recovery::{resume, Resume};

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
use crate::observe::clock::Clock;
use crate::observe::metrics::{Metrics, Operation, PartitionStats};
use crate::partition::window::{RollPolicy, RollReason};
use crate::record::{Batch, BatchPool, Record};
use crate::state::checkpoint::{Checkpoint, CheckpointError, CheckpointStore, PendingFile};
use crate::state::manifest::{
    time_text, ManifestEntry, ManifestError, Manifests, VERSION as MANIFEST_VERSION,
};
use crate::state::sdk::{SdkCheckpointError, SdkCheckpoints};
use crate::state::table::{TableError, Tables};
use crate::store::retry::Transient;
use crate::store::upload::Upload;
use crate::store::Location;

/// Upload parts of one file in flight at once, at most.
const PARTS_IN_FLIGHT: usize = 2;

/// How a partition's files are rolled, encoded, named and uploaded.
#[derive(Debug, Clone)]
pub struct FileSettings {
    pub namespace: String,
    pub template: PathTemplate,
    pub policy: RollPolicy,
    pub format: Format,
    /// Whether a time window without records still gets a file.
    pub empty_files: bool,
    /// Upload part size, at most; also the largest object written with a single put.
    pub part_size: usize,
    /// Upload part size, at least (the store's minimum, for the largest file a window holds).
    pub min_part_size: usize,
}

/// What a run's workers share.
#[derive(Debug)]
pub struct Shared {
    pub output: Location,
    pub checkpoints: CheckpointStore,
    /// `--azure-sdk-checkpoints`: the mirror for Azure SDK processors.
    pub sdk: Option<SdkCheckpoints>,
    pub manifests: Manifests,
    /// `--table delta`: each topic's Delta table, which every published file is added to.
    pub tables: Option<Tables>,
    /// How files are rolled, encoded, named and uploaded.
    pub files: FileSettings,
    /// `--memory-limit`: open files are sized from their share of it.
    pub budget: Arc<MemoryBudget>,
    /// Record batches for reuse: the consumer fills them, the workers give them back.
    pub batches: BatchPool,
    /// This instance's id, written into the checkpoints it owns.
    pub owner: String,
    /// Deadlines and wall time (names, manifests, checkpoints).
    pub clock: Clock,
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
    /// The consumer reached the partition's end (as far as the broker knew then), at this
    /// position when known: past the transaction markers and aborted records at the end.
    Eof(Option<i64>),
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
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("{path} already exists with other contents, so hubcap did not overwrite it; {owner}. Two archivers must not share file names: give each consumer group its own --output (or --namespace)")]
    Occupied { path: String, owner: String },
    #[error("topic {topic} was deleted and re-created since partition {partition} was archived: Kafka's topic id is now {now}, the checkpoint {checkpoint} (next offset {next_offset}) was written for {archived}, and the new topic's offsets start over. hubcap stops rather than mix the two topics or skip records; archive the new topic under another --output (or --namespace and --checkpoints), or, to continue in this output from the new topic's first offset, move the group's checkpoints for the topic away")]
    TopicRecreated {
        topic: String,
        partition: i32,
        checkpoint: String,
        archived: String,
        now: String,
        next_offset: i64,
    },
    #[error("topic {topic} partition {partition} delivered offset {offset}, below the checkpoint's next offset {next_offset}: Kafka moved the position back, so the topic was deleted and re-created or truncated since it was archived. hubcap stops rather than skip those records; archive the new topic under another --output, or move the group's checkpoints for the topic away to start over in this one")]
    OffsetsWentBack {
        topic: String,
        partition: i32,
        offset: i64,
        next_offset: i64,
    },
    #[error("topic {topic} partition {partition}: the checkpoint {checkpoint} says offsets below {next_offset} are archived, but the partition ends at {end}: the topic was deleted and re-created or truncated since, or the checkpoint was edited. hubcap stops rather than wait for offsets that would belong to other records; archive the new topic under another --output, or fix or move away the checkpoint")]
    PastEnd {
        topic: String,
        partition: i32,
        checkpoint: String,
        next_offset: i64,
        end: i64,
    },
}

impl WorkerError {
    pub fn is_fenced(&self) -> bool {
        match self {
            WorkerError::Checkpoint(e) => e.is_fenced(),
            _ => false,
        }
    }

    /// What the failure is about: the data or state (a record that cannot be encoded, a
    /// checkpoint, manifest or table log hubcap cannot use), the store refusing hubcap
    /// (credentials, rights, a read-only or full disk), or the store failing.
    pub fn kind(&self) -> FailureKind {
        match self {
            WorkerError::Encode { .. }
            | WorkerError::Checkpoint(
                CheckpointError::Corrupt { .. }
                | CheckpointError::NewerVersion { .. }
                | CheckpointError::Mismatch { .. },
            )
            | WorkerError::Manifest(ManifestError::Corrupt { .. })
            | WorkerError::TopicRecreated { .. }
            | WorkerError::Occupied { .. }
            | WorkerError::OffsetsWentBack { .. }
            | WorkerError::PastEnd { .. } => FailureKind::Data,
            // A catalog refusing hubcap's token: its side, like a store failing (exit 5).
            WorkerError::Table(e) if e.is_refused() => FailureKind::Store,
            WorkerError::Table(e) if !e.is_transient() => FailureKind::Data,
            _ if self.store_error().is_some_and(crate::store::retry::refused) => {
                FailureKind::Refused
            }
            // A put answered "not found": the container or bucket does not exist.
            WorkerError::Checkpoint(CheckpointError::Store { .. })
            | WorkerError::Manifest(ManifestError::Store { .. })
                if self
                    .store_error()
                    .is_some_and(|e| matches!(e, object_store::Error::NotFound { .. })) =>
            {
                FailureKind::Refused
            }
            _ => FailureKind::Store,
        }
    }

    /// The store's error behind this one, if a store call failed.
    fn store_error(&self) -> Option<&object_store::Error> {
        use crate::store::CasError;
        match self {
            WorkerError::Checkpoint(CheckpointError::Store { source, .. })
            | WorkerError::Manifest(ManifestError::Store { source, .. }) => match source {
                CasError::Store(e) => Some(e),
                _ => None,
            },
            WorkerError::Sdk(
                SdkCheckpointError::Store { source, .. }
                | SdkCheckpointError::Container { source, .. },
            )
            | WorkerError::Upload { source, .. }
            | WorkerError::Head { source, .. } => Some(source),
            _ => None,
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
            // The table is read again on a restart; a file it holds is not added twice.
            WorkerError::Table(e) => e.is_transient(),
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

/// What a failure is about, for the exit code and for who looks first: Kafka (unreachable,
/// refused, a fatal consumer error), the store (uploads, checkpoints, manifests failing past
/// `--retry-for`), the store refusing hubcap (credentials, rights, a missing container, a
/// read-only or full disk: no retry fixes it), the data or state hubcap was given (a record it
/// cannot encode, a checkpoint or table log it cannot use), or hubcap itself (a worker that
/// panicked or did not flush in time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    Kafka,
    Store,
    Refused,
    Data,
    Internal,
}

/// A failure that makes a run fail, with its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// How a partition's worker ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ended {
    /// It archived what it was given and stopped: at the end (`--once`), on a stop or when its
    /// partition was revoked.
    #[default]
    Archived,
    /// Another instance claimed the partition; it archives it from there.
    Fenced,
    /// It failed; the run fails with it.
    Failed(FailureKind),
}

/// What one partition did during the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PartitionReport {
    pub topic: String,
    pub partition: i32,
    pub ended: Ended,
    pub files: u64,
    pub empty_files: u64,
    pub events: u64,
    pub bytes: u64,
    /// The checkpoint's next offset when the worker stopped.
    pub next_offset: Option<i64>,
}

struct OpenFile {
    name: String,
    file: Box<dyn FileEncoder>,
    upload: Upload,
    first_offset: i64,
    last_offset: i64,
    first_time_ms: Option<i64>,
    last_time_ms: Option<i64>,
    /// The Avro block or Parquet row group size it is written with.
    block_bytes: usize,
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
    /// Kafka's id of the topic, recorded in new checkpoints and manifest lines.
    topic_id: Option<String>,
    next: Option<i64>,
    open: Option<OpenFile>,
    opened: Instant,
    opened_wall: DateTime<Utc>,
    report: PartitionReport,
    stats: Arc<PartitionStats>,
    /// The open file's memory, against the budget.
    held: Charge,
}

enum Flow {
    Continue,
    Done,
}

impl PartitionWorker {}

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
