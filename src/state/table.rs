//! Delta Lake tables (`--table delta`), written with `delta_kernel`, and [`Tables`], the tables
//! `--table` keeps (Delta, Iceberg through `state::iceberg::IcebergWriter`, or both). One table per topic; each
//! archived Parquet file, already durable under the table's directory, is added by one commit
//! that also records a set-transaction action for its partition: the app id names the group, topic and partition, the version is the
//! file's last offset. The version makes the commit idempotent: before committing (and again
//! after a lost race on the next log entry), the table's version for the app id is read, and a
//! file at or below it is not added again. Partition columns are strings, one per `key=value`
//! folder of the path template. See docs/delta-kernel.md for the API this uses.

use std::collections::HashMap;
use std::num::NonZero;
use std::sync::Arc;

use delta_kernel::arrow::array::{Int64Array, StructArray};
use delta_kernel::arrow::datatypes::{DataType as ArrowType, Field};
use delta_kernel::committer::FileSystemCommitter;
use delta_kernel::engine::arrow_conversion::TryFromArrow;
use delta_kernel::expressions::Scalar;
use delta_kernel::schema::{DataType, StructField, StructType};
use delta_kernel::transaction::create_table::create_table;
use delta_kernel::transaction::data_layout::DataLayout;
use delta_kernel::transaction::{CommitResult, UpdateTableOperation};
use delta_kernel::{FileMeta, Snapshot, SnapshotRef};
use delta_kernel_default_engine::executor::tokio::TokioMultiThreadExecutor;
use delta_kernel_default_engine::parquet::DataFileMetadata;
use delta_kernel_default_engine::{build_add_file_metadata, DefaultEngine, DefaultEngineBuilder};
use url::Url;

use crate::layout::{NameParts, PathTemplate};
use crate::state::iceberg::IcebergError;
use crate::store::{Location, StoreKind};
use futures::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;

/// Commits between two Delta checkpoints, so that readers replay a short JSON log.
const CHECKPOINT_EVERY: u64 = 100;
/// Lost races on the next log entry before a commit gives up.
const ATTEMPTS: u32 = 50;

type Engine = DefaultEngine<TokioMultiThreadExecutor>;

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    // delta_kernel's errors carry a backtrace when RUST_BACKTRACE is set: the message says the
    // error alone, in one line, and the backtrace is logged at debug.
    #[error("Delta table {url}: {}", kernel_text(.source))]
    Kernel {
        url: String,
        source: delta_kernel::KernelError,
    },
    #[error("Delta table {url}: {reason}")]
    Commit { url: String, reason: String },
    /// The table's log (an entry or a checkpoint) cannot be read or used: no retry changes it.
    #[error("Delta table {url}: its log cannot be used ({reason}); fix or remove the broken _delta_log entry by hand, hubcap will not guess the table's state")]
    Unreadable { url: String, reason: String },
    #[error("Delta table {url}: {reason}")]
    Invalid { url: String, reason: String },
    /// `--table iceberg`: the Iceberg table's error.
    #[error(transparent)]
    Iceberg(#[from] IcebergError),
}

impl TableError {
    /// Whether a retry may help: the store failing or a lost race, not a log or a table hubcap
    /// cannot use.
    pub fn is_transient(&self) -> bool {
        match self {
            TableError::Kernel { source, .. } => kernel_transient(source),
            TableError::Commit { .. } => true,
            TableError::Unreadable { .. } | TableError::Invalid { .. } => false,
            TableError::Iceberg(e) => e.is_transient(),
        }
    }

    /// Whether an Iceberg REST catalog refused hubcap's credentials (see
    /// [`IcebergError::is_refused`]).
    pub fn is_refused(&self) -> bool {
        matches!(self, TableError::Iceberg(e) if e.is_refused())
    }
}

/// A delta_kernel error in one line, without the backtrace it may carry (logged at debug).
pub fn kernel_text(e: &delta_kernel::KernelError) -> String {
    let text = e.without_backtrace().to_string();
    text.lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

/// Whether a retry may fix a delta_kernel error: the store or the network failing (or a
/// blocking task lost). Anything else is about what the log holds (malformed JSON, a missing
/// or unusable version or checkpoint, an unsupported protocol), which a retry reads again the
/// same.
pub fn kernel_transient(e: &delta_kernel::KernelError) -> bool {
    use crate::store::retry::Transient;
    use delta_kernel::KernelError as K;
    // A store error may come wrapped (a Parquet checkpoint's read fails as a Parquet error):
    // what the store said decides.
    let mut source = std::error::Error::source(e.without_backtrace());
    while let Some(s) = source {
        if let Some(store) = s.downcast_ref::<object_store::Error>() {
            return store.is_transient();
        }
        source = s.source();
    }
    match e.without_backtrace() {
        K::ObjectStore(source) => source.is_transient(),
        K::IOError(io) => !matches!(
            io.kind(),
            std::io::ErrorKind::PermissionDenied
                | std::io::ErrorKind::ReadOnlyFilesystem
                | std::io::ErrorKind::StorageFull
                | std::io::ErrorKind::InvalidData
        ),
        K::Reqwest(_) | K::JoinFailure(_) | K::FileAlreadyExists(_) => true,
        _ => false,
    }
}

/// Which table formats describe the archived files (`--table delta,iceberg`: both, over one
/// copy of the files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formats {
    pub delta: bool,
    pub iceberg: bool,
}

impl Formats {
    pub const DELTA: Formats = Formats {
        delta: true,
        iceberg: false,
    };
    pub const ICEBERG: Formats = Formats {
        delta: false,
        iceberg: true,
    };
}

/// `--table`: which formats, where each topic's table is and which folders are its partition
/// columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    /// Delta, Iceberg or both (Delta unless set otherwise).
    pub formats: Formats,
    /// The table's folder under the output, `{EventHub}` (and `{Namespace}`) standing for the
    /// topic (and namespace).
    pub path: String,
    /// The `key=` folders of the data files' names under the table, in order.
    pub partition_columns: Vec<String>,
    /// `--iceberg-catalog`: the REST catalog that keeps the Iceberg tables (none: path tables).
    pub catalog: Option<crate::state::iceberg::catalog::CatalogConfig>,
}

/// The path template a table gets when none is given: Hive folders for the partition and the
/// day, which engines prune on.
pub const TABLE_TEMPLATE: &str =
    "{EventHub}/partition={PartitionId}/date={Year}-{Month}-{Day}/{Offset}";

impl TableConfig {
    /// The table at `path` (a template of `{EventHub}` and `{Namespace}`) for data files named
    /// by `template`, which must put them inside it, in `key=value` folders.
    pub fn new(path: &str, template: &PathTemplate) -> Result<TableConfig, String> {
        crate::layout::check_segments(path).map_err(|e| format!("--table-path: {e}"))?;
        let sample = NameParts {
            namespace: "NAMESPACE",
            topic: "EVENTHUB",
            partition: 7,
            first_offset: 0,
            time: chrono::DateTime::UNIX_EPOCH,
        };
        let config = TableConfig {
            formats: Formats::DELTA,
            path: path.trim_matches('/').to_string(),
            partition_columns: Vec::new(),
            catalog: None,
        };
        let table = config.path_for("EVENTHUB", "NAMESPACE");
        let name = template.render(&sample);
        let fix = format!(
            "--path-format must name files inside --table-path {path:?}, in key=value folders, e.g. '{TABLE_TEMPLATE}'"
        );
        if table.is_empty() || !table.contains("EVENTHUB") {
            return Err(format!(
                "--table-path {path:?} must contain {{EventHub}}: one table per topic"
            ));
        }
        let Some(inside) = name.strip_prefix(&format!("{table}/")) else {
            return Err(fix);
        };
        let partition_columns: Vec<String> =
            folders(inside).map(|(key, _)| key.to_string()).collect();
        if partition_columns.is_empty() || folders(inside).count() != inside.split('/').count() - 1
        {
            return Err(fix);
        }
        Ok(TableConfig {
            partition_columns,
            ..config
        })
    }

    /// The table of `topic`, relative to the output; the topic's folder is
    /// [`crate::layout::topic_folder`]'s, as in the data files' names.
    pub fn path_for(&self, topic: &str, namespace: &str) -> String {
        self.path
            .replace("{EventHub}", &crate::layout::topic_folder(topic))
            .replace("{Namespace}", namespace)
    }

    /// A data file's partition values, from its name relative to the table.
    pub fn partition_values(&self, inside: &str) -> Vec<(String, String)> {
        folders(inside)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// The `key=value` folders of a name (its last segment is the file).
fn folders(name: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut segments: Vec<&str> = name.split('/').collect();
    segments.pop();
    segments.into_iter().filter_map(|s| s.split_once('='))
}

/// A data file to add: where it is under the table, its size and records, and its partition
/// values (one per partition column, in the table's order).
#[derive(Debug, Clone)]
pub struct TableFile {
    pub path: String,
    pub size: u64,
    pub records: u64,
    pub modified_ms: i64,
    pub partition_values: Vec<(String, String)>,
}

/// What [`DeltaTable::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Committed as this table version.
    Committed(u64),
    /// The table already holds the app id at this version or later: nothing was added.
    AlreadyThere,
}

/// The store the engine reads and writes a location's table through, and the table's URL.
/// delta_kernel takes a `file` URL for a path on this machine (and then lists the directory
/// unordered) and any other URL's path as the name in the store, which must list in order. So a
/// local directory gets a store of the whole file system; memory, S3, Azure and GCS locations
/// their own store, under their own URL.
fn engine_store(location: &Location) -> Result<(Arc<dyn ObjectStore>, Url), String> {
    match location.kind {
        StoreKind::Local => {
            // The kernel opens a local table by its directory, which must exist.
            std::fs::create_dir_all(&location.display).map_err(|e| e.to_string())?;
            let url = Url::from_directory_path(&location.display)
                .map_err(|()| format!("{} is not an absolute path", location.display))?;
            Ok((Arc::new(LocalFileSystem::new()), url))
        }
        StoreKind::Memory => {
            let url = Url::parse(&format!("memory:///{}/", location.prefix.as_ref()))
                .map_err(|e| e.to_string())?;
            Ok((location.store.clone(), url))
        }
        StoreKind::S3 | StoreKind::Azure | StoreKind::Gcs => {
            // The store is rooted at the bucket or container: the path is the prefix alone.
            let mut url = Url::parse(&location.display).map_err(|e| e.to_string())?;
            url.set_path(&format!("/{}/", location.prefix.as_ref()));
            Ok((location.store.clone(), url))
        }
    }
}

/// The engine that reads and writes a table through `store`, on the current (multi-thread)
/// runtime. Its JSON and Parquet reads are bounded: the default engine reads up to 1,000 log
/// files at once, with a decoder sized for 1,000 rows each, which took 228 MB of heap at a
/// Delta checkpoint; hubcap's commits are a few actions each.
fn engine(store: Arc<dyn ObjectStore>) -> Arc<Engine> {
    const FILES_AT_ONCE: NonZero<usize> = NonZero::new(8).expect("not zero");
    const ROWS_PER_BATCH: NonZero<usize> = NonZero::new(512).expect("not zero");
    Arc::new(
        DefaultEngineBuilder::new(store)
            .with_task_executor(Arc::new(TokioMultiThreadExecutor::new(
                tokio::runtime::Handle::current(),
            )))
            .with_buffer_size(FILES_AT_ONCE)
            .with_batch_size(ROWS_PER_BATCH)
            .build(),
    )
}

/// The set-transaction app id of one partition of a group.
pub fn app_id(group: &str, topic: &str, partition: i32) -> String {
    format!("hubcap/{group}/{topic}/{partition}")
}

/// One Delta table at a location.
pub struct DeltaTable {
    engine: Arc<Engine>,
    url: Url,
    display: String,
    /// Files waiting for the next commit.
    waiting: std::sync::Mutex<Vec<Waiting>>,
    /// One commit at a time from this instance, of every file waiting (its partitions would
    /// otherwise race each other for every log entry; other instances' commits still race, and
    /// are retried), each on the table as the last one left it. Only after a lost race is the
    /// table read again, and then only the newer log entries.
    committing: tokio::sync::Mutex<Option<SnapshotRef>>,
}

/// A file to add, with the set-transaction version it brings its partition's app id to.
#[derive(Clone)]
struct Addition {
    app: String,
    version: i64,
    file: TableFile,
    url: Url,
}

/// A file waiting for a commit, and who waits for it.
/// Why a commit did not take a file.
#[derive(Debug, Clone)]
enum Failed {
    /// The store failed or the race for the next entry was lost too often: a retry may help.
    Retry(String),
    /// The log cannot be read or used.
    Unreadable(String),
}

struct Waiting {
    addition: Addition,
    done: tokio::sync::oneshot::Sender<Result<Added, Failed>>,
}

impl std::fmt::Debug for DeltaTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaTable")
            .field("url", &self.display)
            .finish()
    }
}

impl DeltaTable {
    /// Opens the table at `location`, creating it (with the columns of `schema` and the string
    /// `partition_columns`) when the location has none. Must run on a multi-thread runtime.
    pub async fn open_or_create(
        location: &Location,
        schema: &delta_kernel::arrow::datatypes::Schema,
        partition_columns: &[&str],
    ) -> Result<DeltaTable, TableError> {
        let display = location.display.clone();
        let (store, url) = engine_store(location).map_err(|reason| TableError::Invalid {
            url: display.clone(),
            reason,
        })?;
        let table = DeltaTable {
            engine: engine(store),
            url,
            display,
            waiting: std::sync::Mutex::new(Vec::new()),
            committing: tokio::sync::Mutex::new(None),
        };
        let mut columns: Vec<StructField> = StructType::try_from_arrow(schema)
            .map_err(|e| table.invalid(e.to_string()))?
            .fields()
            .cloned()
            .collect();
        let names: Vec<String> = partition_columns.iter().map(|c| c.to_string()).collect();
        columns.extend(
            names
                .iter()
                .map(|c| StructField::nullable(c.as_str(), DataType::STRING)),
        );
        let delta_schema =
            Arc::new(StructType::try_new(columns).map_err(|e| table.invalid(e.to_string()))?);
        let (engine, url) = (table.engine.clone(), table.url.clone());
        let log = location.path("_delta_log");
        let exists = location.store.list(Some(&log)).next().await.is_some();
        let created = blocking(move || {
            if exists {
                return Ok(false);
            }
            let info = engine_info();
            let result = create_table(url.as_str(), delta_schema, info, true)
                .with_data_layout(DataLayout::partitioned(names))
                .build(engine.as_ref(), Box::new(FileSystemCommitter::new()))
                .and_then(|txn| txn.commit(engine.as_ref()));
            match result {
                Ok(CommitResult::Committed(_)) => Ok(true),
                // Another instance created it first: its table is the one.
                Ok(_) | Err(delta_kernel::KernelError::TableAlreadyExistsAtPath(_)) => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(|e| table.kernel(e))?;
        if created {
            tracing::info!(table = %table.display, "created the Delta table");
        }
        Ok(table)
    }

    fn kernel(&self, source: delta_kernel::KernelError) -> TableError {
        tracing::debug!(table = %self.display, error = %source, "delta_kernel error in full");
        TableError::Kernel {
            url: self.display.clone(),
            source,
        }
    }

    fn invalid(&self, reason: String) -> TableError {
        TableError::Invalid {
            url: self.display.clone(),
            reason,
        }
    }

    /// The latest version the table holds for `app_id`: the last offset committed for it.
    /// (Commits read it themselves, on the snapshot they commit on; the tests ask for it.)
    #[cfg(test)]
    pub(crate) async fn committed(&self, app_id: &str) -> Result<Option<i64>, TableError> {
        let (engine, url, app) = (self.engine.clone(), self.url.clone(), app_id.to_string());
        blocking(move || {
            Snapshot::builder_for(url.as_str())
                .build(engine.as_ref())?
                .get_app_id_version(&app, engine.as_ref())
        })
        .await
        .map_err(|e| self.kernel(e))
    }

    /// Adds `file` in a commit that sets `app_id` to `version`, unless the table already holds
    /// `app_id` at `version` or later. Files that wait meanwhile (other partitions') go in the
    /// same commit. A lost race for the next log entry is retried on the new snapshot; so is an
    /// error, since the entry may have been written anyway.
    pub async fn add(
        &self,
        app_id: &str,
        version: i64,
        file: &TableFile,
    ) -> Result<Added, TableError> {
        let url = self
            .url
            .join(&file.path)
            .map_err(|e| self.invalid(format!("{}: {e}", file.path)))?;
        let (done, mut result) = tokio::sync::oneshot::channel();
        let addition = Addition {
            app: app_id.to_string(),
            version,
            file: file.clone(),
            url,
        };
        self.waiting_files().push(Waiting { addition, done });
        let mut latest = self.committing.lock().await;
        // The commit before, if any, may have taken this file.
        if let Ok(outcome) = result.try_recv() {
            return outcome.map_err(|reason| self.commit_error(reason));
        }
        let batch = std::mem::take(&mut *self.waiting_files());
        self.commit_all(&mut latest, batch).await;
        drop(latest);
        match result.await {
            Ok(outcome) => outcome.map_err(|reason| self.commit_error(reason)),
            Err(_) => Err(self.commit_error(Failed::Retry("the commit was dropped".into()))),
        }
    }

    fn waiting_files(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn commit_error(&self, failed: Failed) -> TableError {
        let url = self.display.clone();
        match failed {
            Failed::Retry(reason) => TableError::Commit { url, reason },
            Failed::Unreadable(reason) => TableError::Unreadable { url, reason },
        }
    }

    /// Commits every file of `batch` the table does not hold yet, in one commit, and tells each
    /// waiter what became of its file.
    async fn commit_all(&self, latest: &mut Option<SnapshotRef>, mut batch: Vec<Waiting>) {
        let mut last_error = None;
        for attempt in 0..ATTEMPTS {
            if batch.is_empty() {
                return;
            }
            let current = attempt == 0 && latest.is_some();
            let (engine, url, known) = (self.engine.clone(), self.url.clone(), latest.take());
            let additions: Vec<Addition> = batch.iter().map(|w| w.addition.clone()).collect();
            let attempt = blocking(move || {
                let snapshot = match known {
                    // What this instance's last commit left: a commit on it fails if another
                    // writer committed since, and is then tried on the table as it is.
                    Some(known) if current => known,
                    Some(known) => with_checksum(
                        &engine,
                        Snapshot::builder_from(known).build(engine.as_ref())?,
                    ),
                    None => with_checksum(
                        &engine,
                        Snapshot::builder_for(url.as_str()).build(engine.as_ref())?,
                    ),
                };
                let mut held = Vec::new();
                for a in &additions {
                    let at = snapshot.get_app_id_version(&a.app, engine.as_ref())?;
                    held.push(at.is_some_and(|v| v >= a.version));
                }
                let new: Vec<Addition> = additions
                    .into_iter()
                    .zip(&held)
                    .filter_map(|(a, held)| (!held).then_some(a))
                    .collect();
                if new.is_empty() {
                    return Ok((held, None, snapshot));
                }
                let (committed, snapshot) = commit(&engine, snapshot, &new)?;
                Ok((held, committed, snapshot))
            })
            .await;
            match attempt {
                Ok((held, committed, snapshot)) => {
                    *latest = Some(snapshot);
                    let mut rest = Vec::new();
                    for (w, held) in batch.into_iter().zip(held) {
                        let outcome = match (held, committed) {
                            (true, _) => Added::AlreadyThere,
                            (false, Some(version)) => Added::Committed(version),
                            // Lost the race for the next log entry: try again.
                            (false, None) => {
                                rest.push(w);
                                continue;
                            }
                        };
                        let _ = w.done.send(Ok(outcome));
                    }
                    batch = rest;
                }
                // A log that cannot be read fails every attempt the same way: say so at once.
                Err(e) if !kernel_transient(&e) => {
                    tracing::debug!(table = %self.display, error = %e, "Delta commit failed");
                    last_error = Some(Failed::Unreadable(kernel_text(&e)));
                    break;
                }
                Err(e) => {
                    tracing::debug!(table = %self.display, error = %e, "Delta commit failed; trying again");
                    last_error = Some(Failed::Retry(kernel_text(&e)));
                }
            }
        }
        let failed = last_error.unwrap_or_else(|| {
            Failed::Retry(format!(
                "{ATTEMPTS} commits lost the race for the next log entry"
            ))
        });
        for w in batch {
            let _ = w.done.send(Err(failed.clone()));
        }
    }
}

/// One commit on `snapshot` adding `additions`: the version it became, or `None` when another
/// writer took the next version first; with the table as it is known afterwards.
fn commit(
    engine: &Arc<Engine>,
    snapshot: SnapshotRef,
    additions: &[Addition],
) -> delta_kernel::KernelResult<(Option<u64>, SnapshotRef)> {
    let mut versions: HashMap<&str, i64> = HashMap::new();
    for a in additions {
        let v = versions.entry(a.app.as_str()).or_insert(a.version);
        *v = (*v).max(a.version);
    }
    let mut builder = snapshot
        .clone()
        .update_table(UpdateTableOperation::StreamingUpdate, engine_info(), true)
        .with_blind_append();
    for (app, version) in versions {
        builder = builder.with_transaction_id(app, version);
    }
    let mut txn = builder.build(engine.as_ref(), Box::new(FileSystemCommitter::new()))?;
    let state = txn.write_state()?;
    for Addition { file, url, .. } in additions {
        let values: HashMap<String, Scalar> = file
            .partition_values
            .iter()
            .map(|(k, v)| (k.clone(), Scalar::from(v.as_str())))
            .collect();
        let context = state
            .write_context_builder()
            .with_partition_values(values)
            .build()?;
        let records = i64::try_from(file.records).unwrap_or(i64::MAX);
        let stats = StructArray::from(vec![(
            Arc::new(Field::new("numRecords", ArrowType::Int64, true)),
            Arc::new(Int64Array::from(vec![records])) as _,
        )]);
        let meta = DataFileMetadata::new(
            FileMeta::new(url.clone(), file.modified_ms, file.size),
            stats,
        );
        txn.add_files(build_add_file_metadata(meta, &context)?);
    }
    match txn.commit(engine.as_ref())? {
        CommitResult::Committed(c) => {
            let version = c.commit_version();
            let mut after = c.post_commit_snapshot().cloned().unwrap_or(snapshot);
            if c.post_commit_stats().commits_since_checkpoint >= CHECKPOINT_EVERY {
                // Readers do without one; the next commit tries again.
                match after.checkpoint(engine.as_ref(), None) {
                    Ok((_, checkpointed)) => after = checkpointed,
                    Err(e) => tracing::warn!(error = %e, "writing a Delta checkpoint failed"),
                }
            }
            Ok((Some(version), after))
        }
        CommitResult::Conflicted(_) | CommitResult::Retryable(_) => Ok((None, snapshot)),
    }
}

/// `snapshot` with its version checksum (`N.crc`), written when the table has none at that
/// version. The checksum holds every app id's version: with it, looking one up takes no log
/// replay, and each commit's snapshot carries it forward in memory. Without it (it could not be
/// written), lookups replay the log: slower, still right.
fn with_checksum(engine: &Arc<Engine>, snapshot: SnapshotRef) -> SnapshotRef {
    match snapshot.write_checksum(engine.as_ref()) {
        Ok((_, with)) => with,
        Err(e) => {
            tracing::debug!(error = %e, "writing a Delta version checksum failed");
            snapshot
        }
    }
}

fn engine_info() -> String {
    format!("hubcap/{}", env!("CARGO_PKG_VERSION"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> delta_kernel::KernelResult<T> + Send + 'static,
) -> delta_kernel::KernelResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| delta_kernel::KernelError::generic(e.to_string()))?
}

mod contents;
mod tables;

pub use contents::{read_table, LoggedFile, TableContents};
pub use tables::Tables;

#[cfg(test)]
mod tests;
