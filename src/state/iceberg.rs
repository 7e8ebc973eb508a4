//! Apache Iceberg tables (format version 2) over the Parquet files hubcap archives, written
//! without a catalog: a "Hadoop" table whose versions are `metadata/vN.metadata.json`, each
//! created put-if-absent, and `metadata/version-hint.text` naming the latest for readers
//! (pyiceberg's `StaticTable`, DuckDB's `iceberg_scan`). No Iceberg crate is used (they are on
//! another arrow major): hubcap writes the metadata JSON, the manifests and the manifest lists
//! (Avro) itself.
//!
//! - **Schema**: hubcap's Parquet columns with Iceberg field ids ([`schema`]), plus one optional
//!   string column per `key=value` folder of the path template, identity-partitioned. The data
//!   files do not hold those columns: readers take them from each file's partition values, as
//!   the spec says for identity partitions missing from a file.
//! - **Field ids**: hubcap's Parquet files carry none, so the table's
//!   `schema.name-mapping.default` maps columns to ids by name.
//! - **Exactly once**: a commit's snapshot summary records, per Kafka partition, the last offset
//!   committed (`hubcap.offsets.<topic>.<partition>`), carried forward by every later commit, as
//!   Kafka Connect's Iceberg sink does. Recovery reads them from the current snapshot
//!   ([`TableState::offsets`]), like a Delta table's set-transaction versions.
//! - **Races**: two writers that commit on the same version race for `v{N+1}.metadata.json`; the
//!   loser gets [`IcebergError::Conflict`] and must read the table again (its offsets may now
//!   cover its files) before retrying.
//! - **Small metadata**: commits merge manifests, keep a bounded number of snapshots and
//!   previous versions, and delete what only the dropped ones referenced ([`properties`]).

pub mod catalog;
mod decode;
pub mod manifest;
pub mod metadata;
pub mod schema;
pub mod stats;

use std::collections::BTreeMap;

use bytes::Bytes;
use object_store::ObjectStoreExt;
use serde_json::json;

use crate::store::retry::Transient;
use crate::store::{put_cas, CasError, Location, StoreKind};
use manifest::{FieldSummary, ManifestEntry, ManifestFile, Metrics, ADDED, DELETED};
use metadata::{
    metadata_name, new_snapshot_id, new_uuid, MetadataLogEntry, PartitionField, PartitionSpec,
    Snapshot, SnapshotLogEntry, SnapshotRef, TableMetadata, FORMAT_VERSION,
};

/// The snapshot summary key prefix of committed offsets; the key ends `<topic>.<partition>`.
pub const OFFSETS_PREFIX: &str = "hubcap.offsets.";
/// The layout of hubcap's summary keys, recorded in each snapshot it writes.
const SUMMARY_VERSION: &str = "1";
/// First id of partition fields (Iceberg's convention; ids below are columns').
const FIRST_PARTITION_FIELD_ID: i32 = 1000;
const VERSION_HINT: &str = "metadata/version-hint.text";

#[derive(Debug, thiserror::Error)]
pub enum IcebergError {
    #[error("Iceberg table {table}: {path}: {}", crate::store::retry::describe(.source))]
    Store {
        table: String,
        path: String,
        source: object_store::Error,
    },
    /// Another writer committed this version first: read the table again, then retry.
    #[error("Iceberg table {table}: another writer committed version {version} first")]
    Conflict { table: String, version: u64 },
    #[error("Iceberg table {table}: {path} cannot be used ({reason})")]
    Unreadable {
        table: String,
        path: String,
        reason: String,
    },
    #[error("Iceberg table {table}: {reason}")]
    Invalid { table: String, reason: String },
    /// A commit failed for a reason a retry may fix (the store, or races lost too often).
    #[error("Iceberg table {table}: {reason}")]
    Commit { table: String, reason: String },
    /// The REST catalog failed, or answered what hubcap cannot use.
    #[error("Iceberg REST catalog {catalog}: {reason}")]
    Catalog {
        catalog: String,
        reason: String,
        transient: bool,
    },
    /// The REST catalog refused hubcap's token or credentials (401, 403).
    #[error("Iceberg REST catalog {catalog} refused hubcap: {reason}")]
    Refused { catalog: String, reason: String },
}

impl IcebergError {
    /// Whether a retry may help: the store failing, or a lost race (after reading the table
    /// again); not metadata or files hubcap cannot use.
    pub fn is_transient(&self) -> bool {
        match self {
            IcebergError::Store { source, .. } => source.is_transient(),
            IcebergError::Conflict { .. } | IcebergError::Commit { .. } => true,
            IcebergError::Catalog { transient, .. } => *transient,
            IcebergError::Unreadable { .. }
            | IcebergError::Invalid { .. }
            | IcebergError::Refused { .. } => false,
        }
    }

    /// Whether the catalog refused hubcap's credentials: no retry of hubcap's fixes it, yet it
    /// is the catalog's side (a token rotated outside hubcap), so runs exit as for the store.
    pub fn is_refused(&self) -> bool {
        matches!(self, IcebergError::Refused { .. })
    }
}

/// A Parquet data file to add, already durable under the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// Its name relative to the table (`partition=3/date=2026-12-03/000…123.parquet`).
    pub path: String,
    pub size: u64,
    pub records: u64,
    /// Its `key=value` folders, one per partition column.
    pub partition_values: Vec<(String, String)>,
    pub metrics: Metrics,
}

impl DataFile {
    /// A file hubcap's encoder wrote, described from its Parquet footer.
    pub fn from_footer(
        path: &str,
        size: u64,
        partition_values: Vec<(String, String)>,
        footer: &parquet::file::metadata::ParquetMetaData,
    ) -> Result<DataFile, String> {
        let columns = schema::iceberg_schema(&crate::encode::parquet::schema(), &[])?;
        let records = footer.file_metadata().num_rows();
        Ok(DataFile {
            path: path.to_string(),
            size,
            records: u64::try_from(records).unwrap_or_default(),
            partition_values,
            metrics: stats::metrics(footer, &columns.leaves),
        })
    }
}

/// The last offset committed for a Kafka partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Committed {
    pub topic: String,
    pub partition: i32,
    pub last_offset: i64,
}

/// A version of a table, as read or as a commit left it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableState {
    /// `N` of `metadata/vN.metadata.json`.
    pub version: u64,
    pub metadata: TableMetadata,
}

impl TableState {
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.metadata.current_snapshot()
    }

    /// The last offset committed per (topic, partition), from the current snapshot's summary.
    pub fn offsets(&self) -> BTreeMap<(String, i32), i64> {
        self.snapshot()
            .map(|s| summary_offsets(&s.summary))
            .unwrap_or_default()
    }
}

fn summary_offsets(summary: &BTreeMap<String, String>) -> BTreeMap<(String, i32), i64> {
    summary
        .iter()
        .filter_map(|(k, v)| {
            // Topics may hold dots; the partition is after the last one.
            let (topic, partition) = k.strip_prefix(OFFSETS_PREFIX)?.rsplit_once('.')?;
            Some((
                (topic.to_string(), partition.parse().ok()?),
                v.parse().ok()?,
            ))
        })
        .collect()
}

/// The absolute URI readers open a location's files by.
pub fn table_uri(location: &Location) -> Result<String, String> {
    match location.kind {
        StoreKind::Local => url::Url::from_file_path(&location.display)
            .map(|u| u.to_string().trim_end_matches('/').to_string())
            .map_err(|()| format!("{} is not an absolute path", location.display)),
        StoreKind::Memory => Ok(format!("memory:///{}", location.prefix.as_ref())),
        StoreKind::Azure => abfss_uri(&location.display, azure_account_from_env()),
        StoreKind::S3 | StoreKind::Gcs => Ok(location.display.trim_end_matches('/').to_string()),
    }
}

/// The storage account object_store takes from the environment when the URL names none.
fn azure_account_from_env() -> Option<String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let emulator = var("AZURE_STORAGE_USE_EMULATOR").is_some_and(|v| v == "true");
    var("AZURE_STORAGE_ACCOUNT_NAME")
        .or_else(|| var("AZURE_STORAGE_ACCOUNT"))
        .or_else(|| emulator.then(|| "devstoreaccount1".to_string()))
}

/// An Azure location (`az://`, `azure://`, `adl://`, `abfs[s]://`, or an `https://` account
/// URL) as readers of Iceberg open Azure files: `abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH`
/// (Java's ADLSFileIO, pyiceberg, Spark on Databricks, Synapse and Fabric), with `account` for a
/// URL that names none.
pub fn abfss_uri(display: &str, account: Option<String>) -> Result<String, String> {
    let url = url::Url::parse(display).map_err(|e| format!("{display}: {e}"))?;
    let host = url.host_str().unwrap_or_default();
    let path = url.path().trim_end_matches('/');
    let no_account = || {
        format!("{display} names no storage account: set AZURE_STORAGE_ACCOUNT_NAME, or give --output as abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH, so that readers can open the table's files")
    };
    let (container, account, path) = match url.scheme() {
        "https" | "http" => {
            let account = host.split('.').next().unwrap_or_default().to_string();
            let mut parts = path.trim_start_matches('/').splitn(2, '/');
            let container = parts.next().unwrap_or_default().to_string();
            let rest = parts.next().map(|p| format!("/{p}")).unwrap_or_default();
            (container, account, rest)
        }
        _ => match url.username() {
            "" => (
                host.to_string(),
                account.ok_or_else(no_account)?,
                path.to_string(),
            ),
            container => {
                let account = host.split('.').next().unwrap_or_default().to_string();
                (container.to_string(), account, path.to_string())
            }
        },
    };
    if container.is_empty() || account.is_empty() {
        return Err(no_account());
    }
    Ok(format!(
        "abfss://{container}@{account}.dfs.core.windows.net{path}"
    ))
}

/// One Iceberg table at a location (a folder under the output).
#[derive(Debug, Clone)]
pub struct IcebergTable {
    location: Location,
    uri: String,
    /// With `--iceberg-catalog`: the catalog keeping the table's metadata, and the table's
    /// name in its namespace. Without: a path table (`metadata/vN.metadata.json`).
    catalog: Option<(std::sync::Arc<catalog::RestCatalog>, String)>,
}

/// The table property that marks a path table as moved into a REST catalog (its URI and the
/// table's name there): hubcap no longer commits to it without that catalog.
const MOVED_TO: &str = "hubcap.moved-to-catalog";

mod commit;
mod expire;
mod in_catalog;
mod merge;
pub mod properties;
mod queue;

use in_catalog::{changes, file_uri};

pub use queue::{Addition, Appended, IcebergWriter};

impl IcebergTable {
    pub fn new(location: Location) -> Result<IcebergTable, IcebergError> {
        let uri = table_uri(&location).map_err(|reason| IcebergError::Invalid {
            table: location.display.clone(),
            reason,
        })?;
        Ok(IcebergTable {
            location,
            uri,
            catalog: None,
        })
    }

    /// The table `name` of `catalog`'s namespace, whose files are at `location`.
    pub fn in_catalog(
        location: Location,
        catalog: std::sync::Arc<catalog::RestCatalog>,
        name: &str,
    ) -> Result<IcebergTable, IcebergError> {
        Ok(IcebergTable {
            catalog: Some((catalog, name.to_string())),
            ..IcebergTable::new(location)?
        })
    }

    /// The table as a path table, whatever catalog keeps it.
    fn by_path(&self) -> IcebergTable {
        IcebergTable {
            catalog: None,
            ..self.clone()
        }
    }

    /// The table's name for messages: the catalog's `ns.table`, or its location.
    pub fn name(&self) -> String {
        match &self.catalog {
            Some((catalog, name)) => format!(
                "{} in {}",
                catalog.config().qualified(name),
                catalog.config().shown_uri()
            ),
            None => self.location.display.clone(),
        }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    fn store_err(&self, path: &str) -> impl FnOnce(object_store::Error) -> IcebergError + '_ {
        let path = path.to_string();
        move |source| IcebergError::Store {
            table: self.location.display.clone(),
            path,
            source,
        }
    }

    fn unreadable(&self, path: &str, reason: impl ToString) -> IcebergError {
        IcebergError::Unreadable {
            table: self.location.display.clone(),
            path: path.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Reads `relative`, `None` when it does not exist.
    async fn get(&self, relative: &str) -> Result<Option<Bytes>, IcebergError> {
        let path = self.location.path(relative);
        match self.location.store.get(&path).await {
            Ok(got) => Ok(Some(got.bytes().await.map_err(self.store_err(relative))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.store_err(relative)(e)),
        }
    }

    /// A file of the table by its absolute URI, as the metadata names it.
    async fn get_uri(&self, uri: &str) -> Result<Bytes, IcebergError> {
        // A table written before Azure locations became abfss:// URIs names its files by the
        // location as given.
        let relative = [&self.uri, &self.location.display]
            .iter()
            .find_map(|root| {
                let root = format!("{}/", file_uri(root));
                file_uri(uri).strip_prefix(&root).map(str::to_string)
            })
            .ok_or_else(|| self.unreadable(uri, "not a file of this table"))?;
        let relative = relative.as_str();
        self.get(relative)
            .await?
            .ok_or_else(|| self.unreadable(uri, "missing"))
    }

    /// Creates the table (version 1, no snapshot) with one identity-partitioned string column
    /// per entry of `partition_columns`; when another writer created it first, its table is the
    /// one, as it is.
    pub async fn create(&self, partition_columns: &[String]) -> Result<TableState, IcebergError> {
        let invalid = |reason: String| IcebergError::Invalid {
            table: self.location.display.clone(),
            reason,
        };
        let schema = schema::iceberg_schema(&crate::encode::parquet::schema(), partition_columns)
            .map_err(invalid)?;
        let fields: Vec<PartitionField> = partition_columns
            .iter()
            .zip(FIRST_PARTITION_FIELD_ID..)
            .map(|(name, field_id)| PartitionField {
                name: name.clone(),
                transform: "identity".into(),
                // `iceberg_schema` added a column for each partition column: the index holds.
                source_id: schema.columns[name],
                field_id,
            })
            .collect();
        let mut properties = BTreeMap::from([
            (
                "schema.name-mapping.default".to_string(),
                schema.name_mapping.to_string(),
            ),
            ("write.format.default".to_string(), "parquet".to_string()),
        ]);
        properties.extend(properties::on_create());
        let metadata = TableMetadata {
            format_version: FORMAT_VERSION,
            table_uuid: new_uuid(),
            location: self.uri.clone(),
            last_sequence_number: 0,
            last_updated_ms: chrono::Utc::now().timestamp_millis(),
            last_column_id: schema.last_column_id,
            current_schema_id: 0,
            schemas: vec![schema.json],
            default_spec_id: 0,
            partition_specs: vec![PartitionSpec { spec_id: 0, fields }],
            last_partition_id: FIRST_PARTITION_FIELD_ID - 1 + partition_columns.len() as i32,
            default_sort_order_id: 0,
            sort_orders: vec![json!({"order-id": 0, "fields": []})],
            properties,
            current_snapshot_id: None,
            snapshots: Vec::new(),
            snapshot_log: Vec::new(),
            metadata_log: Vec::new(),
            refs: BTreeMap::new(),
            other: BTreeMap::new(),
        };
        if let Some((catalog, name)) = &self.catalog {
            return self.create_in_catalog(catalog, name, metadata).await;
        }
        let state = TableState {
            version: 1,
            metadata,
        };
        match self.put_version(&state).await {
            Ok(()) => {
                tracing::info!(table = %self.location.display, "created the Iceberg table");
                Ok(state)
            }
            Err(IcebergError::Conflict { .. }) => self.load().await?.ok_or_else(|| {
                self.unreadable(VERSION_HINT, "version 1 exists but cannot be found")
            }),
            Err(e) => Err(e),
        }
    }

    /// Makes `after` (`base` and one commit's changes) the table's next version. Another
    /// writer having committed on `base` first is [`IcebergError::Conflict`].
    async fn commit(
        &self,
        base: &TableState,
        after: TableMetadata,
    ) -> Result<TableState, IcebergError> {
        if let Some((catalog, name)) = &self.catalog {
            let (requirements, updates) = changes(&base.metadata, &after);
            let loaded = catalog.commit(name, requirements, updates).await?;
            return self.catalog_state(loaded);
        }
        let state = TableState {
            version: base.version + 1,
            metadata: after,
        };
        self.put_version(&state).await?;
        Ok(state)
    }

    /// Writes `state` as its version, put-if-absent, then points the version hint at it.
    async fn put_version(&self, state: &TableState) -> Result<(), IcebergError> {
        let name = format!("metadata/{}", metadata_name(state.version));
        let path = self.location.path(&name);
        let body = Bytes::from(state.metadata.to_json());
        match put_cas(&self.location, &path, body, None).await {
            Ok(_) => {}
            Err(CasError::Conflict) => {
                return Err(IcebergError::Conflict {
                    table: self.location.display.clone(),
                    version: state.version,
                })
            }
            Err(CasError::Store(e)) => return Err(self.store_err(&name)(e)),
            Err(CasError::Io(e)) => return Err(self.unreadable(&name, e)),
        }
        // The version is committed. A hint left behind (this write failing) makes readers see
        // the version before, until the next commit; hubcap itself looks past it (`load`).
        let hint = self.location.path(VERSION_HINT);
        if let Err(e) = self
            .location
            .put(&hint, state.version.to_string().into())
            .await
        {
            tracing::warn!(table = %self.location.display, error = %e, "cannot update the Iceberg version hint");
        }
        Ok(())
    }

    /// The table's latest version, `None` when it has none: the catalog's, or the path
    /// table's (one moved into a catalog is refused).
    pub async fn load(&self) -> Result<Option<TableState>, IcebergError> {
        if let Some((catalog, name)) = &self.catalog {
            return match catalog.load_table(name).await? {
                Some(loaded) => self.catalog_state(loaded).map(Some),
                None => Ok(None),
            };
        }
        let state = self.load_path().await?;
        if let Some(moved) = state
            .as_ref()
            .and_then(|s| s.metadata.properties.get(MOVED_TO))
        {
            return Err(IcebergError::Invalid {
                table: self.location.display.clone(),
                reason: format!(
                    "it moved into the REST catalog {moved}, which keeps its metadata since: give --iceberg-catalog (and --iceberg-warehouse, --iceberg-namespace) as the run that moved it did"
                ),
            });
        }
        Ok(state)
    }

    /// The path table's latest version, `None` when it has none. The version hint is where
    /// to start; versions after it (a hint not yet rewritten) are looked for too, and when its
    /// version was deleted (or there is no hint), the highest listed is.
    async fn load_path(&self) -> Result<Option<TableState>, IcebergError> {
        let hint = match self.get(VERSION_HINT).await? {
            Some(b) => std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| self.unreadable(VERSION_HINT, "not a version number"))?,
            None => 1,
        };
        let mut found = None;
        let mut version = hint;
        let mut listed = false;
        loop {
            let name = format!("metadata/{}", metadata_name(version));
            match self.get(&name).await? {
                Some(body) => found = Some((version, body)),
                None if found.is_some() => break,
                // Versions out of the metadata log are deleted (`expire`): a hint not rewritten
                // since (or none, naming version 1) may name one. The latest is listed.
                None if !listed => {
                    listed = true;
                    match self.latest_listed_version().await? {
                        Some(latest) if latest > version => version = latest,
                        _ => break,
                    }
                    continue;
                }
                None => break,
            }
            version += 1;
        }
        let Some((version, body)) = found else {
            if hint == 1 {
                return Ok(None);
            }
            // Neither the hint's version, nor a later one, nor any listed after it: the hint
            // is wrong (it is written after its version; versions are deleted oldest first).
            return Err(self.unreadable(
                VERSION_HINT,
                format!("it names version {hint}, which does not exist"),
            ));
        };
        let name = format!("metadata/{}", metadata_name(version));
        let metadata: TableMetadata =
            serde_json::from_slice(&body).map_err(|e| self.unreadable(&name, e))?;
        if metadata.format_version != FORMAT_VERSION {
            return Err(self.unreadable(
                &name,
                format!(
                    "format version {}, hubcap writes {FORMAT_VERSION}",
                    metadata.format_version
                ),
            ));
        }
        Ok(Some(TableState { version, metadata }))
    }

    /// The highest `N` of the `metadata/vN.metadata.json` files listed, `None` without any.
    async fn latest_listed_version(&self) -> Result<Option<u64>, IcebergError> {
        let folder = self.location.path("metadata");
        let listed = self
            .location
            .store
            .list_with_delimiter(Some(&folder))
            .await
            .map_err(self.store_err("metadata/"))?;
        Ok(listed
            .objects
            .iter()
            .filter_map(|o| o.location.filename())
            .filter_map(|n| {
                n.strip_prefix('v')?
                    .strip_suffix(".metadata.json")?
                    .parse()
                    .ok()
            })
            .max())
    }

    /// The data files of `state`'s current snapshot (none before the first commit).
    pub async fn files(&self, state: &TableState) -> Result<Vec<ManifestEntry>, IcebergError> {
        let Some(snapshot) = state.snapshot() else {
            return Ok(Vec::new());
        };
        let names: Vec<String> = state
            .metadata
            .default_spec()
            .map(|s| s.fields.iter().map(|f| f.name.clone()).collect())
            .unwrap_or_default();
        let mut files = Vec::new();
        for m in self.manifests(&snapshot.manifest_list).await? {
            files.extend(self.live_entries(&m, &names).await?);
        }
        Ok(files)
    }

    async fn manifests(&self, list: &str) -> Result<Vec<ManifestFile>, IcebergError> {
        let data = self.get_uri(list).await?;
        decode::read_manifest_list(&data).map_err(|e| self.unreadable(list, e))
    }
}

/// The summary of the partition values of `entries` for field `index`: strings, whose
/// single-value serialization is their UTF-8 bytes.
fn field_summary(entries: &[ManifestEntry], index: usize) -> FieldSummary {
    let values: Vec<Option<&String>> = entries
        .iter()
        .map(|e| e.partition[index].as_ref())
        .collect();
    let present = values.iter().flatten();
    FieldSummary {
        contains_null: values.iter().any(Option::is_none),
        lower_bound: present.clone().min().map(|s| s.as_bytes().to_vec()),
        upper_bound: present.max().map(|s| s.as_bytes().to_vec()),
    }
}

#[cfg(test)]
mod tests;
