//! `hubcap inspect`: reads Capture files back and prints them as JSON lines, one per record, or
//! one summary per file with `--stats`.
//!
//! The target is a local file or directory, or a URL that names an object or a prefix. A
//! directory or prefix that is a Delta table (`--table delta`) is read as its readers read it:
//! the files its log adds, no others. Avro
//! (real Event Hubs Capture files and hubcap's) and hubcap's Parquet print the same line for the
//! same event:
//!
//! ```text
//! {"file":"ns/hub/0/…-00000000000000000005.avro","SequenceNumber":5,"Offset":"5",
//!  "EnqueuedTimeUtc":"11/1/2022 5:36:07 PM","SystemProperties":{"x-opt-enqueued-time":1667324167168},
//!  "Properties":{"empty":null,"h":{"bytes":"0102"}},"Body":"{\"event\":\"track\"}"}
//! ```
//!
//! Map values: `long` and `double` are numbers, `string` a string, `bytes` `{"bytes": "<hex>"}`,
//! the `null` branch `null`. The body is a string when it is UTF-8, `{"bytes": "<hex>"}` when it
//! is not, `null` for a tombstone. Map entries print sorted by key: apache-avro decodes maps into
//! a `HashMap`, so the file's order is not available for Avro, and sorting both formats keeps the
//! output identical and stable. That `HashMap` also keeps only the last of repeated keys (Kafka
//! allows repeated header names): Avro prints such a header once, Parquet every time.
//!
//! Objects are fetched and decoded one at a time, so memory stays at about one object.

mod decode;
mod watermarks;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use apache_avro::types::Value as AvroValue;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, MapArray, RecordBatch};
use arrow_schema::DataType;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value as Json;

use crate::state::iceberg::catalog::{CatalogArgs, CatalogConfig, RestCatalog};
use crate::state::iceberg::IcebergTable;
use crate::state::table::{read_table, TableError};
use crate::store::{Location, StoreError};

use decode::*;

const AVRO_MAGIC: &[u8] = b"Obj\x01";
const PARQUET_MAGIC: &[u8] = b"PAR1";

/// `hubcap inspect`: print the records of Capture files as JSON lines.
#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    /// A file, a directory, a Delta table, or a URL prefix (file://, az://, s3://, gs://,
    /// memory://).
    pub target: String,
    /// Print at most this many records. With --stats, summarize only the first this many records.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Print a summary per file (count, offset range, time range, bytes) instead of records.
    #[arg(long)]
    pub stats: bool,
    /// Print the archive's completeness watermarks instead (TARGET is --output): per consumer
    /// group and topic, up to which time every partition's events are archived, as JSON lines.
    #[arg(long, conflicts_with_all = ["stats", "limit"])]
    pub watermarks: bool,
    /// With --iceberg-catalog, TARGET is a table of the catalog's --iceberg-namespace: the
    /// files of its current snapshot are read, wherever the catalog says the table is.
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

impl InspectError {
    /// Whether the command line is at fault: exit 2, as for `run`.
    pub fn is_usage(&self) -> bool {
        matches!(self, InspectError::CatalogFlags(_))
    }
}

/// What an inspect run read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct InspectTotals {
    /// Files opened (with `--limit`, files past the limit are not opened).
    pub files: u64,
    /// Records printed (or summarized, with `--stats`).
    pub records: u64,
    /// Size of the files opened.
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Open(#[from] StoreError),
    #[error("{target}: no such file or directory; pass a Capture file, a directory or a URL")]
    NotFound { target: String },
    #[error("{target}: cannot read the local path: {source}")]
    Local {
        target: String,
        source: std::io::Error,
    },
    #[error("cannot list {target}: {source}; check the URL and the store's credentials")]
    List {
        target: String,
        source: object_store::Error,
    },
    #[error("no .avro or .parquet files under {target} (_checkpoints/ and _manifests/ are skipped); pass a file or a prefix that holds Capture files")]
    NoFiles { target: String },
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: object_store::Error,
    },
    #[error("{file} is neither Avro nor Parquet (no .avro or .parquet extension, no Obj\\x01 or PAR1 magic bytes); pass a Capture .avro or a hubcap .parquet file")]
    UnknownFormat { file: String },
    #[error("{file}: not a readable Avro file: {source}")]
    Avro {
        file: String,
        source: apache_avro::Error,
    },
    #[error("{file}: not a readable Parquet file: {source}")]
    Parquet {
        file: String,
        source: parquet::errors::ParquetError,
    },
    #[error("{file}: cannot decode Parquet rows: {source}")]
    Arrow {
        file: String,
        source: arrow_schema::ArrowError,
    },
    #[error("{file}: field {field} is missing or is not what the Capture schema has (found {found}); inspect reads Event Hubs Capture Avro and hubcap Parquet files")]
    Schema {
        file: String,
        field: &'static str,
        found: String,
    },
    #[error("no completeness watermarks under {target}/_watermarks/; pass the --output of a run (a run writes them every --watermark-interval)")]
    NoWatermarks { target: String },
    #[error("{0}")]
    Watermark(String),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("{0}")]
    Catalog(String),
    /// `--iceberg-catalog` and its companions cannot be used.
    #[error("{0}")]
    CatalogFlags(String),
    #[error("the Delta table {table} adds {file}, which is not in the store")]
    TableFileMissing { table: String, file: String },
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Reads `args.target` and writes JSON lines to `out`: one per record, or with `args.stats` one
/// per file and a total. A closed output (`hubcap inspect … | head`) ends the run quietly, with
/// what was read so far.
///
/// Decoding and writing to `out` run on the calling task between object fetches: this is a
/// one-shot command, not a worker sharing the runtime with others.
pub async fn inspect(
    args: &InspectArgs,
    out: &mut (dyn Write + Send),
) -> Result<InspectTotals, InspectError> {
    let target = match args.catalog.config().map_err(InspectError::CatalogFlags)? {
        Some(config) => Target::in_catalog(config, &args.target).await?,
        None => Target::open(&args.target)?,
    };
    if args.watermarks {
        let now = chrono::Utc::now().timestamp_millis();
        return watermarks::print(&target, now, out).await;
    }
    inspect_target(&target, args, out).await
}

/// A resolved target: a store and a path that names either one object or a prefix.
struct Target {
    store: Arc<dyn ObjectStore>,
    path: Path,
    /// The target for messages, without credentials.
    display: String,
    /// The prefix as a location, which may hold a Delta table; `None` for a local file.
    location: Option<Location>,
    /// With `--iceberg-catalog`: the catalog's table at `location`.
    iceberg: Option<IcebergTable>,
}

impl Target {
    /// The catalog's table `name`, at the location its metadata names.
    async fn in_catalog(config: CatalogConfig, name: &str) -> Result<Target, InspectError> {
        let qualified = config.qualified(name);
        let catalog = Arc::new(
            RestCatalog::connect(config)
                .await
                .map_err(TableError::from)?,
        );
        let loaded = catalog
            .load_table(name)
            .await
            .map_err(TableError::from)?
            .ok_or_else(|| {
                InspectError::Catalog(format!("the catalog has no table {qualified}"))
            })?;
        // A `file:` location is a local directory (`file:/x` and `file:///x` alike).
        let location = loaded.metadata.location;
        let spec = match location.strip_prefix("file:") {
            Some(path) => format!("/{}", path.trim_start_matches('/')),
            None => location,
        };
        let mut target = Target::open(&spec)?;
        let at = target.location.clone().ok_or_else(|| {
            InspectError::Catalog(format!("{qualified} is at {spec}, which is not a folder"))
        })?;
        let table = IcebergTable::in_catalog(at, catalog, name).map_err(TableError::from)?;
        target.iceberg = Some(table);
        Ok(target)
    }

    fn open(spec: &str) -> Result<Target, InspectError> {
        if let Some(local) = local_path(spec) {
            return Self::local(spec, local);
        }
        let loc = Location::open(spec, "inspect")?;
        Ok(Target {
            store: loc.store.clone(),
            path: loc.prefix.clone(),
            display: loc.display.clone(),
            location: Some(loc),
            iceberg: None,
        })
    }

    /// A local file or directory. Checked before [`Location::open`], which creates missing
    /// directories (right for `--output`, wrong for a command that only reads); a single file
    /// becomes its directory's store plus the file name.
    fn local(spec: &str, path: PathBuf) -> Result<Target, InspectError> {
        let local_err = |source| InspectError::Local {
            target: spec.to_string(),
            source,
        };
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(InspectError::NotFound {
                    target: spec.to_string(),
                })
            }
            Err(e) => return Err(local_err(e)),
        };
        if meta.is_dir() {
            let loc = Location::open(spec, "inspect")?;
            return Ok(Target {
                store: loc.store.clone(),
                path: loc.prefix.clone(),
                display: spec.to_string(),
                location: Some(loc),
                iceberg: None,
            });
        }
        // Not canonicalized: a symlink is shown by the name it was given.
        let file = std::path::absolute(&path).map_err(local_err)?;
        let name = file.file_name().and_then(|n| n.to_str());
        let (Some(dir), Some(name)) = (file.parent(), name) else {
            return Err(local_err(std::io::Error::other(
                "the file name is not UTF-8, which object paths need; pass its directory",
            )));
        };
        // A file:// URL carries any directory name, UTF-8 or not, through `Location::open`.
        let dir_url = url::Url::from_directory_path(dir).map_err(|()| {
            local_err(std::io::Error::other(
                "cannot express the directory as a URL",
            ))
        })?;
        // Parsed, not `Path::from`, which would percent-encode `#` and the like and so name a
        // different file.
        let name = Path::parse(name).map_err(|e| local_err(std::io::Error::other(e)))?;
        let loc = Location::open(dir_url.as_str(), "inspect")?;
        Ok(Target {
            store: loc.store,
            path: name,
            display: spec.to_string(),
            location: None,
            iceberg: None,
        })
    }
}

/// The local path `spec` names, for a plain path or a file:// URL.
fn local_path(spec: &str) -> Option<PathBuf> {
    if !spec.contains("://") {
        return Some(PathBuf::from(spec));
    }
    let url = url::Url::parse(spec).ok()?;
    // A file:// URL that is not a local path falls through to `Location::open`, which says why.
    (url.scheme() == "file")
        .then(|| url.to_file_path().ok())
        .flatten()
}

async fn inspect_target(
    target: &Target,
    args: &InspectArgs,
    out: &mut (dyn Write + Send),
) -> Result<InspectTotals, InspectError> {
    let objects = find_objects(target).await?;
    let mut run = Run {
        args,
        out: std::io::BufWriter::new(out),
        totals: InspectTotals::default(),
    };
    let result = run.objects(target.store.as_ref(), &objects).await;
    let result = result.and_then(|()| run.out.flush().map_err(InspectError::from));
    match result {
        Ok(()) => Ok(run.totals),
        // The reader went away (`| head`): what it wanted has been written.
        Err(InspectError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Ok(run.totals)
        }
        Err(e) => Err(e),
    }
}

/// The objects to read: the one the target names, or every record file under it, by path.
async fn find_objects(target: &Target) -> Result<Vec<ObjectMeta>, InspectError> {
    let mut named = None;
    if !target.path.is_root() {
        match target.store.head(&target.path).await {
            Ok(meta) if meta.size > 0 => return Ok(vec![meta]),
            // Zero bytes may be a directory marker (ADLS Gen2): see what is under it first.
            Ok(meta) => named = Some(meta),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(source) => {
                return Err(InspectError::Read {
                    file: target.display.clone(),
                    source,
                })
            }
        }
    }
    let prefix = (!target.path.is_root()).then_some(&target.path);
    let listed: Vec<ObjectMeta> =
        target
            .store
            .list(prefix)
            .try_collect()
            .await
            .map_err(|source| InspectError::List {
                target: target.display.clone(),
                source,
            })?;
    let table = listed.iter().any(|meta| {
        let mut parts = meta
            .location
            .prefix_match(&target.path)
            .into_iter()
            .flatten();
        parts.next().is_some_and(|p| p.as_ref() == "_delta_log")
    });
    // Iceberg tables under the target: the folders holding `metadata/vN.metadata.json`.
    let iceberg: Vec<Path> = listed
        .iter()
        .filter(|meta| {
            meta.location
                .filename()
                .is_some_and(|f| f.ends_with(".metadata.json"))
        })
        .filter_map(|meta| {
            let mut parts: Vec<_> = meta.location.parts().collect();
            parts.pop();
            (parts.pop()?.as_ref() == "metadata").then(|| Path::from_iter(parts))
        })
        .collect();
    let mut files: Vec<ObjectMeta> = match (&target.location, &target.iceberg, table) {
        (Some(location), Some(table), _) => iceberg_files(location, table, listed).await?,
        (Some(location), None, true) => table_files(location, listed).await?,
        (Some(location), None, false) if iceberg.contains(&target.path) => {
            let table = IcebergTable::new(location.clone()).map_err(TableError::from)?;
            iceberg_files(location, &table, listed).await?
        }
        // An Iceberg table's manifests are Avro files, but the table's, not records.
        _ => listed
            .into_iter()
            .filter(|meta| is_record_file(&meta.location, &target.path))
            .filter(|meta| {
                !iceberg
                    .iter()
                    .any(|t| meta.location.prefix_matches(&t.clone().join("metadata")))
            })
            .collect(),
    };
    files.sort_by(|a, b| a.location.cmp(&b.location));
    match (files.is_empty(), named) {
        (true, Some(meta)) => Ok(vec![meta]),
        (true, None) => Err(InspectError::NoFiles {
            target: target.display.clone(),
        }),
        (false, _) => Ok(files),
    }
}

/// The data files of the Delta table at `location`, as its log holds them (what its readers
/// read; files in its folders that the log does not add are left out).
async fn table_files(
    location: &Location,
    listed: Vec<ObjectMeta>,
) -> Result<Vec<ObjectMeta>, InspectError> {
    let contents = read_table(location, &[]).await?;
    let mut by_path: std::collections::HashMap<Path, ObjectMeta> = listed
        .into_iter()
        .map(|meta| (meta.location.clone(), meta))
        .collect();
    tracing::info!(table = %location.display, version = contents.version, files = contents.files.len(), "reading the Delta table's files");
    contents
        .files
        .keys()
        .map(|inside| {
            by_path
                .remove(&location.path(inside))
                .ok_or_else(|| InspectError::TableFileMissing {
                    table: location.display.clone(),
                    file: inside.clone(),
                })
        })
        .collect()
}

/// The data files of the Iceberg table at `location` (by its path, or in a catalog), as its
/// current snapshot holds them.
async fn iceberg_files(
    location: &Location,
    table: &IcebergTable,
    listed: Vec<ObjectMeta>,
) -> Result<Vec<ObjectMeta>, InspectError> {
    let state = table.load().await.map_err(TableError::from)?;
    let entries = match &state {
        Some(state) => table.files(state).await.map_err(TableError::from)?,
        None => Vec::new(),
    };
    let mut by_path: std::collections::HashMap<Path, ObjectMeta> = listed
        .into_iter()
        .map(|meta| (meta.location.clone(), meta))
        .collect();
    let version = state.as_ref().map_or(0, |s| s.version);
    tracing::info!(table = %table.name(), version, files = entries.len(), "reading the Iceberg table's files");
    let prefix = format!("{}/", table.uri());
    entries
        .iter()
        .map(|e| {
            let inside = e.file_path.strip_prefix(&prefix).unwrap_or(&e.file_path);
            by_path
                .remove(&location.path(inside))
                .ok_or_else(|| InspectError::TableFileMissing {
                    table: location.display.clone(),
                    file: inside.to_string(),
                })
        })
        .collect()
}

/// Whether a listed object is a record file: not in a folder starting with `_` or `.` (hubcap's
/// `_checkpoints` and `_manifests`, a Delta table's `_delta_log`), which query engines skip too.
/// Only segments below the prefix count, so a target that points into `_manifests/` on purpose
/// still reads it.
fn is_record_file(location: &Path, prefix: &Path) -> bool {
    let has_extension = location
        .extension()
        .is_some_and(|ext| ext == "avro" || ext == "parquet");
    let skipped = location.prefix_match(prefix).is_some_and(|parts| {
        let mut parts: Vec<_> = parts.collect();
        parts.pop(); // the file itself
        parts
            .iter()
            .any(|part| part.as_ref().starts_with('_') || part.as_ref().starts_with('.'))
    });
    has_extension && !skipped
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum FileFormat {
    Avro,
    Parquet,
}

/// By extension, else by the magic bytes at the start.
fn detect_format(path: &Path, data: &[u8]) -> Option<FileFormat> {
    match path.extension() {
        Some("avro") => Some(FileFormat::Avro),
        Some("parquet") => Some(FileFormat::Parquet),
        _ if data.starts_with(AVRO_MAGIC) => Some(FileFormat::Avro),
        _ if data.starts_with(PARQUET_MAGIC) => Some(FileFormat::Parquet),
        _ => None,
    }
}

/// One record, the same for both formats.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Record {
    sequence_number: i64,
    offset: String,
    enqueued_time_utc: String,
    system_properties: Entries,
    properties: Entries,
    body: Json,
}

/// Map entries, serialized as a JSON object in this order (duplicate keys kept).
#[derive(Debug, Clone, Default, PartialEq)]
struct Entries(Vec<(String, Json)>);

impl Serialize for Entries {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Entries {
    fn sorted(mut entries: Vec<(String, Json)>) -> Entries {
        // Stable, so duplicate keys (possible in Parquet) keep their order.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Entries(entries)
    }
}

#[derive(serde::Serialize)]
struct RecordLine<'a> {
    file: &'a str,
    #[serde(flatten)]
    record: &'a Record,
}

#[derive(serde::Serialize)]
struct StatsLine<'a> {
    file: &'a str,
    format: FileFormat,
    bytes: u64,
    records: u64,
    first_sequence_number: Option<i64>,
    last_sequence_number: Option<i64>,
    first_enqueued_time_utc: Option<&'a str>,
    last_enqueued_time_utc: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct TotalLine {
    total: bool,
    #[serde(flatten)]
    totals: InspectTotals,
}

/// The records with the lowest and highest `SequenceNumber` seen in a file.
#[derive(Default)]
struct Range {
    first: Option<(i64, String)>,
    last: Option<(i64, String)>,
}

impl Range {
    fn add(&mut self, r: &Record) {
        if self.first.as_ref().is_none_or(|f| r.sequence_number < f.0) {
            self.first = Some((r.sequence_number, r.enqueued_time_utc.clone()));
        }
        if self.last.as_ref().is_none_or(|l| r.sequence_number > l.0) {
            self.last = Some((r.sequence_number, r.enqueued_time_utc.clone()));
        }
    }
}

struct Run<'a, 'w> {
    args: &'a InspectArgs,
    out: std::io::BufWriter<&'w mut (dyn Write + Send)>,
    totals: InspectTotals,
}

impl Run<'_, '_> {
    async fn objects(
        &mut self,
        store: &dyn ObjectStore,
        objects: &[ObjectMeta],
    ) -> Result<(), InspectError> {
        for meta in objects {
            if self.remaining() == Some(0) {
                break;
            }
            let file = meta.location.as_ref();
            let read_err = |source| InspectError::Read {
                file: file.to_string(),
                source,
            };
            let data = store
                .get(&meta.location)
                .await
                .map_err(read_err)?
                .bytes()
                .await
                .map_err(read_err)?;
            let format = detect_format(&meta.location, &data).ok_or_else(|| {
                InspectError::UnknownFormat {
                    file: file.to_string(),
                }
            })?;
            self.file(file, format, data)?;
        }
        if self.args.stats {
            let totals = self.totals;
            self.line(&TotalLine {
                total: true,
                totals,
            })?;
        }
        Ok(())
    }

    fn remaining(&self) -> Option<u64> {
        self.args
            .limit
            .map(|limit| limit.saturating_sub(self.totals.records))
    }

    /// Decodes one object and prints its records or its summary.
    fn file(&mut self, file: &str, format: FileFormat, data: Bytes) -> Result<(), InspectError> {
        let size = data.len() as u64;
        self.totals.files += 1;
        self.totals.bytes += size;
        let take = self
            .remaining()
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let records: Box<dyn Iterator<Item = Result<Record, InspectError>>> = match format {
            FileFormat::Avro => Box::new(avro_records(file, &data)?),
            FileFormat::Parquet => Box::new(parquet_records(file, data)?),
        };
        let mut count = 0;
        let mut range = Range::default();
        for record in records.take(take) {
            let record = record?;
            count += 1;
            self.totals.records += 1;
            if self.args.stats {
                range.add(&record);
            } else {
                self.line(&RecordLine {
                    file,
                    record: &record,
                })?;
            }
        }
        if self.args.stats {
            self.line(&StatsLine {
                file,
                format,
                bytes: size,
                records: count,
                first_sequence_number: range.first.as_ref().map(|f| f.0),
                last_sequence_number: range.last.as_ref().map(|l| l.0),
                first_enqueued_time_utc: range.first.as_ref().map(|f| f.1.as_str()),
                last_enqueued_time_utc: range.last.as_ref().map(|l| l.1.as_str()),
            })?;
        }
        Ok(())
    }

    fn line(&mut self, value: &impl Serialize) -> Result<(), InspectError> {
        // Serializing these types cannot fail except by the writer failing.
        serde_json::to_writer(&mut self.out, value).map_err(std::io::Error::from)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
