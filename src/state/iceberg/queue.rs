//! The commit queue of one Iceberg table in a run (`--table iceberg`), as
//! `state::table::DeltaTable` has one for Delta: one commit at a time from this instance, every
//! file that waits meanwhile (other partitions') in it. Files whose offsets the table's current
//! snapshot already covers for their partition (its `hubcap.offsets.*` summary) are skipped,
//! before each commit and again after a lost race on `v{N+1}.metadata.json` (the table is read
//! again then), so no file is added twice, whoever committed it.

use std::time::Duration;

use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

use super::*;

/// Commit attempts (lost races and store failures) before the files' publishes fail.
const ATTEMPTS: u32 = 50;

/// What [`IcebergWriter::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Committed as this metadata version.
    Committed(u64),
    /// The table's current snapshot covers the file's offsets already: nothing was added.
    AlreadyThere,
}

/// A file to add, and the last offset of its partition it holds.
#[derive(Debug, Clone)]
pub struct Addition {
    pub file: DataFile,
    pub committed: Committed,
}

/// Why a commit did not take a file (cloned to every waiter).
#[derive(Debug, Clone)]
enum Failed {
    /// The store failed or the race was lost too often: a retry may help.
    Retry(String),
    /// The table's metadata cannot be read or used.
    Unusable(String),
    /// The catalog refused hubcap's credentials: (the catalog, why).
    Refused(String, String),
}

impl From<IcebergError> for Failed {
    /// A failure no retry fixes.
    fn from(e: IcebergError) -> Failed {
        match e {
            IcebergError::Refused { catalog, reason } => Failed::Refused(catalog, reason),
            e => Failed::Unusable(e.to_string()),
        }
    }
}

struct Waiting {
    addition: Addition,
    done: tokio::sync::oneshot::Sender<Result<Appended, Failed>>,
}

/// One Iceberg table a run adds files to.
pub struct IcebergWriter {
    table: IcebergTable,
    /// Files waiting for the next commit.
    waiting: std::sync::Mutex<Vec<Waiting>>,
    /// One commit at a time from this instance, on the table as its last commit (or read) left
    /// it; `None` after a lost race or a failure: the next attempt reads the table first.
    committing: tokio::sync::Mutex<Option<TableState>>,
}

impl std::fmt::Debug for IcebergWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IcebergWriter")
            .field("table", &self.table.location.display)
            .finish()
    }
}

impl IcebergWriter {
    /// Opens the table at `location`, creating it (partitioned by `partition_columns`) when it
    /// has no metadata yet. A table partitioned otherwise is refused: its files would be
    /// described by another spec than their folders say.
    pub async fn open_or_create(
        location: Location,
        partition_columns: &[String],
    ) -> Result<IcebergWriter, IcebergError> {
        IcebergWriter::open(IcebergTable::new(location)?, partition_columns).await
    }

    /// [`IcebergWriter::open_or_create`] for a table in a catalog or at a path.
    pub async fn open(
        table: IcebergTable,
        partition_columns: &[String],
    ) -> Result<IcebergWriter, IcebergError> {
        let state = match table.load().await? {
            Some(state) => state,
            None => table.create(partition_columns).await?,
        };
        let columns: Vec<String> = state
            .metadata
            .default_spec()
            .map(|s| s.fields.iter().map(|f| f.name.clone()).collect())
            .unwrap_or_default();
        if columns != partition_columns {
            return Err(IcebergError::Invalid {
                table: table.name(),
                reason: format!(
                    "it is partitioned by {columns:?}, the path template's folders are {partition_columns:?}"
                ),
            });
        }
        Ok(IcebergWriter {
            table,
            waiting: std::sync::Mutex::new(Vec::new()),
            committing: tokio::sync::Mutex::new(Some(state)),
        })
    }

    pub fn table(&self) -> &IcebergTable {
        &self.table
    }

    /// The durable Parquet file `path` (relative to the table), described from its footer,
    /// which is read from the store (the file's metrics: counts and bounds).
    pub async fn describe(
        &self,
        path: &str,
        size: u64,
        partition_values: Vec<(String, String)>,
    ) -> Result<DataFile, IcebergError> {
        let footer = self.table.footer(path, size).await?;
        DataFile::from_footer(path, size, partition_values, &footer)
            .map_err(|reason| self.table.unreadable(path, reason))
    }

    /// Adds `addition` in a commit, unless the table's snapshot covers its offsets already.
    /// Files that wait meanwhile go in the same commit. A lost race is retried on the table
    /// read again; so is a store error, since the version may have been written anyway.
    pub async fn add(&self, addition: Addition) -> Result<Appended, IcebergError> {
        let (done, mut result) = tokio::sync::oneshot::channel();
        self.waiting_files().push(Waiting { addition, done });
        let mut latest = self.committing.lock().await;
        // The commit before, if any, may have taken this file.
        if let Ok(outcome) = result.try_recv() {
            return outcome.map_err(|f| self.failed(f));
        }
        let batch = std::mem::take(&mut *self.waiting_files());
        self.commit_all(&mut latest, batch).await;
        drop(latest);
        match result.await {
            Ok(outcome) => outcome.map_err(|f| self.failed(f)),
            Err(_) => Err(self.failed(Failed::Retry("the commit was dropped".into()))),
        }
    }

    fn waiting_files(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn failed(&self, failed: Failed) -> IcebergError {
        let table = self.table.location.display.clone();
        match failed {
            Failed::Retry(reason) => IcebergError::Commit { table, reason },
            Failed::Unusable(reason) => IcebergError::Invalid { table, reason },
            Failed::Refused(catalog, reason) => IcebergError::Refused { catalog, reason },
        }
    }

    /// Commits every file of `batch` the table does not cover yet, in one commit, and tells
    /// each waiter what became of its file.
    async fn commit_all(&self, latest: &mut Option<TableState>, mut batch: Vec<Waiting>) {
        let mut failed = None;
        for attempt in 0..ATTEMPTS {
            let base = match latest.take() {
                Some(state) => state,
                None => match self.table.load().await {
                    Ok(Some(state)) => state,
                    Ok(None) => {
                        failed = Some(Failed::Unusable("its metadata is gone".into()));
                        break;
                    }
                    Err(e) if e.is_transient() => {
                        if attempt % 10 == 0 {
                            tracing::warn!(table = %self.table.name(), error = %e, attempt = attempt + 1, "cannot read the Iceberg table; trying again");
                        }
                        failed = Some(Failed::Retry(e.to_string()));
                        backoff(attempt).await;
                        continue;
                    }
                    Err(e) => {
                        failed = Some(Failed::from(e));
                        break;
                    }
                },
            };
            let offsets = base.offsets();
            let (held, new): (Vec<Waiting>, Vec<Waiting>) = batch
                .into_iter()
                .partition(|w| covered(&offsets, &w.addition.committed));
            for w in held {
                let _ = w.done.send(Ok(Appended::AlreadyThere));
            }
            if new.is_empty() {
                *latest = Some(base);
                return;
            }
            let files: Vec<DataFile> = new.iter().map(|w| w.addition.file.clone()).collect();
            let committed: Vec<Committed> =
                new.iter().map(|w| w.addition.committed.clone()).collect();
            match self.table.append(&base, &files, &committed).await {
                Ok(after) => {
                    let version = after.version;
                    *latest = Some(after);
                    for w in new {
                        let _ = w.done.send(Ok(Appended::Committed(version)));
                    }
                    return;
                }
                // Another writer committed on `base` first: read the table again, whose
                // offsets may now cover some of these files.
                Err(IcebergError::Conflict { version, .. }) => {
                    tracing::debug!(table = %self.table.location.display, version, "lost the race for the next Iceberg version; reading the table again");
                    batch = new;
                }
                Err(e) if e.is_transient() => {
                    // Said once, then every tenth attempt: an outage is seen, not a flood.
                    if attempt % 10 == 0 {
                        tracing::warn!(table = %self.table.name(), error = %e, attempt = attempt + 1, "Iceberg commit failed; trying again");
                    } else {
                        tracing::debug!(table = %self.table.name(), error = %e, "Iceberg commit failed; trying again");
                    }
                    failed = Some(Failed::Retry(e.to_string()));
                    batch = new;
                    backoff(attempt).await;
                }
                Err(e) => {
                    failed = Some(Failed::from(e));
                    batch = new;
                    break;
                }
            }
        }
        let failed = failed.unwrap_or_else(|| {
            Failed::Retry(format!(
                "{ATTEMPTS} commits lost the race for the next metadata version"
            ))
        });
        for w in batch {
            let _ = w.done.send(Err(failed.clone()));
        }
    }
}

/// Whether the table's offsets hold `c`'s partition at its last offset or later.
fn covered(offsets: &BTreeMap<(String, i32), i64>, c: &Committed) -> bool {
    offsets
        .get(&(c.topic.clone(), c.partition))
        .is_some_and(|at| *at >= c.last_offset)
}

/// A short pause before retrying after a store failure, longer each time (at most 2 s).
async fn backoff(attempt: u32) {
    let ms = 50u64.saturating_mul(u64::from(attempt) + 1).min(2_000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

impl IcebergTable {
    /// The Parquet footer of the table's file `relative`, of `size` bytes: two ranged reads of
    /// its tail, not the whole file.
    pub(crate) async fn footer(
        &self,
        relative: &str,
        size: u64,
    ) -> Result<ParquetMetaData, IcebergError> {
        let path = self.location.path(relative);
        let store = &self.location.store;
        if size < 12 {
            return Err(self.unreadable(relative, format!("{size} bytes: not a Parquet file")));
        }
        let tail = store
            .get_range(&path, size - 8..size)
            .await
            .map_err(self.store_err(relative))?;
        let length = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
        if &tail[4..8] != b"PAR1" || length + 8 > size {
            return Err(self.unreadable(relative, "no Parquet footer at its end"));
        }
        let metadata = store
            .get_range(&path, size - 8 - length..size - 8)
            .await
            .map_err(self.store_err(relative))?;
        ParquetMetaDataReader::decode_metadata(&metadata)
            .map_err(|e| self.unreadable(relative, format!("its Parquet footer: {e}")))
    }
}

#[cfg(test)]
mod tests;
