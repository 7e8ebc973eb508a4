//! Delta Lake tables, written with `delta_kernel` (issue 13, its first step: the table itself; the
//! run does not use it yet). One table per topic; each archived Parquet file, already durable
//! under the table's directory, is added by one commit that also records a set-transaction
//! action for its partition: the app id names the group, topic and partition, the version is the
//! file's last offset. The version makes the commit idempotent: before committing (and again
//! after a lost race on the next log entry), the table's version for the app id is read, and a
//! file at or below it is not added again. Partition columns are strings, one per `key=value`
//! folder of the path template. See docs/delta-kernel.md for the API this uses.

use std::collections::HashMap;
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

use crate::store::Location;

/// Commits between two Delta checkpoints, so that readers replay a short JSON log.
const CHECKPOINT_EVERY: u64 = 100;
/// Lost races on the next log entry before a commit gives up.
const ATTEMPTS: u32 = 50;

type Engine = DefaultEngine<TokioMultiThreadExecutor>;

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("Delta table {url}: {source}")]
    Kernel {
        url: String,
        source: delta_kernel::KernelError,
    },
    #[error("Delta table {url}: {attempts} commits lost the race for the next log entry")]
    Contended { url: String, attempts: u32 },
    #[error("Delta table {url}: {reason}")]
    Invalid { url: String, reason: String },
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

/// The set-transaction app id of one partition of a group.
pub fn app_id(group: &str, topic: &str, partition: i32) -> String {
    format!("hubcap/{group}/{topic}/{partition}")
}

/// One Delta table at a location.
pub struct DeltaTable {
    engine: Arc<Engine>,
    url: Url,
    display: String,
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
        let engine = DefaultEngineBuilder::new(location.store.clone())
            .with_task_executor(Arc::new(TokioMultiThreadExecutor::new(
                tokio::runtime::Handle::current(),
            )))
            .build();
        // The engine takes a URL's path as the object's name in the store it was given, so the
        // table's URL is the location's prefix; the scheme is a placeholder.
        let display = location.display.clone();
        let url = Url::parse(&format!("file:///{}/", location.prefix.as_ref()))
            .and_then(|u| u.join("./"))
            .map_err(|e| TableError::Invalid {
                url: display.clone(),
                reason: e.to_string(),
            })?;
        let table = DeltaTable {
            engine: Arc::new(engine),
            url,
            display,
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
        let created = blocking(move || {
            if Snapshot::builder_for(url.as_str())
                .build(engine.as_ref())
                .is_ok()
            {
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
    pub async fn committed(&self, app_id: &str) -> Result<Option<i64>, TableError> {
        let (engine, url, app) = (self.engine.clone(), self.url.clone(), app_id.to_string());
        blocking(move || {
            Snapshot::builder_for(url.as_str())
                .build(engine.as_ref())?
                .get_app_id_version(&app, engine.as_ref())
        })
        .await
        .map_err(|e| self.kernel(e))
    }

    /// Adds `file` in one commit that sets `app_id` to `version`, unless the table already
    /// holds `app_id` at `version` or later. A lost race for the next log entry is retried on
    /// the new snapshot; so is an error, since the entry may have been written anyway.
    pub async fn add(
        &self,
        app_id: &str,
        version: i64,
        file: &TableFile,
    ) -> Result<Added, TableError> {
        let file_url = self
            .url
            .join(&file.path)
            .map_err(|e| self.invalid(format!("{}: {e}", file.path)))?;
        let mut last_error = None;
        for _ in 0..ATTEMPTS {
            let (engine, url, app, file) = (
                self.engine.clone(),
                self.url.clone(),
                app_id.to_string(),
                file.clone(),
            );
            let file_url = file_url.clone();
            let attempt = blocking(move || {
                let snapshot = Snapshot::builder_for(url.as_str()).build(engine.as_ref())?;
                if snapshot
                    .get_app_id_version(&app, engine.as_ref())?
                    .is_some_and(|v| v >= version)
                {
                    return Ok(Some(Added::AlreadyThere));
                }
                commit(&engine, &snapshot, &app, version, &file, file_url)
            })
            .await;
            match attempt {
                Ok(Some(added)) => return Ok(added),
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(table = %self.display, error = %e, "Delta commit failed; trying again");
                    last_error = Some(e);
                }
            }
        }
        Err(match last_error {
            Some(e) => self.kernel(e),
            None => TableError::Contended {
                url: self.display.clone(),
                attempts: ATTEMPTS,
            },
        })
    }
}

/// One commit on `snapshot`: `Some` when it went through, `None` when another writer took the
/// next version first.
fn commit(
    engine: &Arc<Engine>,
    snapshot: &SnapshotRef,
    app: &str,
    version: i64,
    file: &TableFile,
    file_url: Url,
) -> delta_kernel::KernelResult<Option<Added>> {
    let mut txn = snapshot
        .clone()
        .update_table(UpdateTableOperation::StreamingUpdate, engine_info(), true)
        .with_blind_append()
        .with_transaction_id(app, version)
        .build(engine.as_ref(), Box::new(FileSystemCommitter::new()))?;
    let values: HashMap<String, Scalar> = file
        .partition_values
        .iter()
        .map(|(k, v)| (k.clone(), Scalar::from(v.as_str())))
        .collect();
    let context = txn
        .write_state()?
        .write_context_builder()
        .with_partition_values(values)
        .build()?;
    let records = i64::try_from(file.records).unwrap_or(i64::MAX);
    let stats = StructArray::from(vec![(
        Arc::new(Field::new("numRecords", ArrowType::Int64, true)),
        Arc::new(Int64Array::from(vec![records])) as _,
    )]);
    let size = file.size;
    let meta = DataFileMetadata::new(FileMeta::new(file_url, file.modified_ms, size), stats);
    txn.add_files(build_add_file_metadata(meta, &context)?);
    match txn.commit(engine.as_ref())? {
        CommitResult::Committed(c) => {
            let version = c.commit_version();
            if c.post_commit_stats().commits_since_checkpoint >= CHECKPOINT_EVERY {
                if let Some(snapshot) = c.post_commit_snapshot() {
                    // Readers do without one; the next commit tries again.
                    if let Err(e) = snapshot.checkpoint(engine.as_ref(), None) {
                        tracing::warn!(error = %e, "writing a Delta checkpoint failed");
                    }
                }
            }
            Ok(Some(Added::Committed(version)))
        }
        CommitResult::Conflicted(_) | CommitResult::Retryable(_) => Ok(None),
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

#[cfg(test)]
mod tests;
