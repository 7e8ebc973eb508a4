//! `hubcap inspect`: reads Capture files back and prints them as JSON lines, one per record, or
//! one summary per file with `--stats`.
//!
//! The target is a local file or directory, or a URL that names an object or a prefix. Avro
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

use crate::store::{Location, StoreError};

const AVRO_MAGIC: &[u8] = b"Obj\x01";
const PARQUET_MAGIC: &[u8] = b"PAR1";

/// `hubcap inspect`: print the records of Capture files as JSON lines.
#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    /// A file, a directory, or a URL prefix (file://, az://, s3://, gs://, memory://).
    pub target: String,
    /// Print at most this many records. With --stats, summarize only the first this many records.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Print a summary per file (count, offset range, time range, bytes) instead of records.
    #[arg(long)]
    pub stats: bool,
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
    let target = Target::open(&args.target)?;
    inspect_target(&target, args, out).await
}

/// A resolved target: a store and a path that names either one object or a prefix.
struct Target {
    store: Arc<dyn ObjectStore>,
    path: Path,
    /// The target for messages, without credentials.
    display: String,
}

impl Target {
    fn open(spec: &str) -> Result<Target, InspectError> {
        if let Some(local) = local_path(spec) {
            return Self::local(spec, local);
        }
        let loc = Location::open(spec, "inspect")?;
        Ok(Target {
            store: loc.store,
            path: loc.prefix,
            display: loc.display,
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
                store: loc.store,
                path: loc.prefix,
                display: spec.to_string(),
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
    let mut files: Vec<ObjectMeta> = listed
        .into_iter()
        .filter(|meta| is_record_file(&meta.location, &target.path))
        .collect();
    files.sort_by(|a, b| a.location.cmp(&b.location));
    match (files.is_empty(), named) {
        (true, Some(meta)) => Ok(vec![meta]),
        (true, None) => Err(InspectError::NoFiles {
            target: target.display.clone(),
        }),
        (false, _) => Ok(files),
    }
}

/// Whether a listed object is a record file. Only segments below the prefix count, so a target
/// that points into `_manifests/` on purpose still reads it.
fn is_record_file(location: &Path, prefix: &Path) -> bool {
    let has_extension = location
        .extension()
        .is_some_and(|ext| ext == "avro" || ext == "parquet");
    let skipped = location.prefix_match(prefix).is_some_and(|mut parts| {
        parts.any(|part| crate::layout::STATE_DIRS.contains(&part.as_ref()))
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

// ---- Avro ----

fn avro_records<'d>(
    file: &'d str,
    data: &'d [u8],
) -> Result<impl Iterator<Item = Result<Record, InspectError>> + 'd, InspectError> {
    let avro_err = |source| InspectError::Avro {
        file: file.to_string(),
        source,
    };
    let reader = apache_avro::Reader::new(data).map_err(avro_err)?;
    Ok(reader.map(move |value| avro_record(file, value.map_err(avro_err)?)))
}

fn avro_record(file: &str, value: AvroValue) -> Result<Record, InspectError> {
    let AvroValue::Record(fields) = value else {
        return Err(schema_err(file, "EventData", avro_kind(&value)));
    };
    let mut seq = None;
    let mut offset = None;
    let mut enqueued = None;
    let mut system = None;
    let mut properties = None;
    let mut body = None;
    for (name, value) in fields {
        let value = unwrap_union(value);
        match name.as_str() {
            "SequenceNumber" => seq = Some(value),
            "Offset" => offset = Some(value),
            "EnqueuedTimeUtc" => enqueued = Some(value),
            "SystemProperties" => system = Some(value),
            "Properties" => properties = Some(value),
            "Body" => body = Some(value),
            _ => {}
        }
    }
    Ok(Record {
        sequence_number: match seq {
            Some(AvroValue::Long(n)) => n,
            Some(AvroValue::Int(n)) => i64::from(n),
            other => return Err(schema_err(file, "SequenceNumber", avro_found(&other))),
        },
        offset: avro_string(file, "Offset", offset)?,
        enqueued_time_utc: avro_string(file, "EnqueuedTimeUtc", enqueued)?,
        system_properties: avro_map(file, "SystemProperties", system)?,
        properties: avro_map(file, "Properties", properties)?,
        body: match body {
            Some(AvroValue::Null) => Json::Null,
            Some(AvroValue::Bytes(b)) => body_json(&b),
            Some(AvroValue::String(s)) => Json::String(s),
            other => return Err(schema_err(file, "Body", avro_found(&other))),
        },
    })
}

fn avro_string(
    file: &str,
    field: &'static str,
    value: Option<AvroValue>,
) -> Result<String, InspectError> {
    match value {
        Some(AvroValue::String(s)) => Ok(s),
        other => Err(schema_err(file, field, avro_found(&other))),
    }
}

fn avro_map(
    file: &str,
    field: &'static str,
    value: Option<AvroValue>,
) -> Result<Entries, InspectError> {
    let Some(AvroValue::Map(map)) = value else {
        return Err(schema_err(file, field, avro_found(&value)));
    };
    let entries = map
        .into_iter()
        .map(|(k, v)| Ok((k, avro_json(file, v)?)))
        .collect::<Result<Vec<_>, InspectError>>()?;
    Ok(Entries::sorted(entries))
}

fn unwrap_union(value: AvroValue) -> AvroValue {
    match value {
        AvroValue::Union(_, inner) => unwrap_union(*inner),
        other => other,
    }
}

/// A map value as JSON, by the rules in the module docs.
fn avro_json(file: &str, value: AvroValue) -> Result<Json, InspectError> {
    Ok(match unwrap_union(value) {
        AvroValue::Null => Json::Null,
        AvroValue::Boolean(b) => Json::Bool(b),
        AvroValue::Int(n) => Json::from(n),
        AvroValue::Long(n) => Json::from(n),
        AvroValue::Float(x) => float_json(f64::from(x)),
        AvroValue::Double(x) => float_json(x),
        AvroValue::String(s) | AvroValue::Enum(_, s) => Json::String(s),
        AvroValue::Bytes(b) | AvroValue::Fixed(_, b) => bytes_json(&b),
        // Nested and logical types never occur in Capture maps; apache-avro's own mapping will do.
        other => Json::try_from(other).map_err(|source| InspectError::Avro {
            file: file.to_string(),
            source,
        })?,
    })
}

fn avro_found(value: &Option<AvroValue>) -> String {
    value.as_ref().map_or_else(|| "nothing".into(), avro_kind)
}

/// What was found, by type: the value itself may be large.
fn avro_kind(value: &AvroValue) -> String {
    format!("Avro {:?}", apache_avro::schema::SchemaKind::from(value))
}

// ---- Parquet ----

fn parquet_records(
    file: &str,
    data: Bytes,
) -> Result<impl Iterator<Item = Result<Record, InspectError>> + '_, InspectError> {
    let parquet_err = |source| InspectError::Parquet {
        file: file.to_string(),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(data)
        .and_then(|b| b.build())
        .map_err(parquet_err)?;
    // One batch (1024 rows by default) is decoded at a time.
    Ok(reader.flat_map(move |batch| {
        let rows = batch
            .map_err(|source| InspectError::Arrow {
                file: file.to_string(),
                source,
            })
            .and_then(|batch| batch_records(file, &batch));
        match rows {
            Ok(rows) => rows.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => vec![Err(e)],
        }
    }))
}

/// The Capture columns of one batch, found by name.
struct Columns<'b> {
    seq: &'b arrow_array::Int64Array,
    offset: &'b dyn Array,
    enqueued: &'b dyn Array,
    system: &'b MapArray,
    properties: &'b MapArray,
    body: &'b dyn Array,
}

impl<'b> Columns<'b> {
    fn of(file: &str, batch: &'b RecordBatch) -> Result<Columns<'b>, InspectError> {
        let column = |field: &'static str| {
            batch
                .column_by_name(field)
                .ok_or_else(|| schema_err(file, field, "no such column".into()))
        };
        let typed_err = |field: &'static str, array: &dyn Array| {
            schema_err(file, field, format!("Parquet {}", array.data_type()))
        };
        let seq = column("SequenceNumber")?;
        let system = column("SystemProperties")?;
        let properties = column("Properties")?;
        Ok(Columns {
            seq: seq
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| typed_err("SequenceNumber", seq))?,
            offset: column("Offset")?.as_ref(),
            enqueued: column("EnqueuedTimeUtc")?.as_ref(),
            system: system
                .as_map_opt()
                .ok_or_else(|| typed_err("SystemProperties", system))?,
            properties: properties
                .as_map_opt()
                .ok_or_else(|| typed_err("Properties", properties))?,
            body: column("Body")?.as_ref(),
        })
    }
}

fn batch_records(file: &str, batch: &RecordBatch) -> Result<Vec<Record>, InspectError> {
    let c = Columns::of(file, batch)?;
    (0..batch.num_rows())
        .map(|i| {
            let text = |field, array: &dyn Array| match cell_json(file, field, array, i)? {
                Json::String(s) => Ok(s),
                other => Err(schema_err(file, field, format!("{other}"))),
            };
            Ok(Record {
                sequence_number: c.seq.value(i),
                offset: text("Offset", c.offset)?,
                enqueued_time_utc: text("EnqueuedTimeUtc", c.enqueued)?,
                system_properties: map_entries(file, "SystemProperties", c.system, i)?,
                properties: map_entries(file, "Properties", c.properties, i)?,
                body: parquet_body(file, c.body, i)?,
            })
        })
        .collect()
}

fn parquet_body(file: &str, body: &dyn Array, i: usize) -> Result<Json, InspectError> {
    if body.is_null(i) {
        return Ok(Json::Null);
    }
    match binary_at(body, i) {
        Some(b) => Ok(body_json(&b)),
        // A string body (not what hubcap writes) is text already.
        None => cell_json(file, "Body", body, i),
    }
}

fn map_entries(
    file: &str,
    field: &'static str,
    map: &MapArray,
    row: usize,
) -> Result<Entries, InspectError> {
    if map.is_null(row) {
        return Ok(Entries::default());
    }
    // The row's entries: a struct of (key, value) columns.
    let row_entries = map.value(row);
    let (keys, values) = (row_entries.column(0), row_entries.column(1));
    let entries = (0..row_entries.len())
        .map(|j| {
            let key = match cell_json(file, field, keys.as_ref(), j)? {
                Json::String(s) => s,
                other => other.to_string(),
            };
            Ok((key, cell_json(file, field, values.as_ref(), j)?))
        })
        .collect::<Result<Vec<_>, InspectError>>()?;
    Ok(Entries::sorted(entries))
}

/// One cell as JSON. A map value is a struct with one field per Avro union branch and exactly
/// one set (see `parquet.rs`); a null struct is the `null` branch. Should a writer set several,
/// the first in field order wins.
fn cell_json(
    file: &str,
    field: &'static str,
    array: &dyn Array,
    i: usize,
) -> Result<Json, InspectError> {
    if array.is_null(i) {
        return Ok(Json::Null);
    }
    Ok(match array.data_type() {
        DataType::Null => Json::Null,
        DataType::Boolean => Json::Bool(array.as_boolean().value(i)),
        DataType::Int32 => Json::from(array.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => Json::from(array.as_primitive::<Int64Type>().value(i)),
        DataType::Float32 => float_json(f64::from(array.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => float_json(array.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Json::from(array.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Json::from(array.as_string::<i64>().value(i)),
        DataType::Utf8View => Json::from(array.as_string_view().value(i)),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            bytes_json(&binary_at(array, i).unwrap_or_default())
        }
        DataType::Struct(_) => {
            let s = array.as_struct();
            match s.columns().iter().find(|c| !c.is_null(i)) {
                Some(set) => cell_json(file, field, set.as_ref(), i)?,
                None => Json::Null,
            }
        }
        other => return Err(schema_err(file, field, format!("Parquet {other}"))),
    })
}

fn binary_at(array: &dyn Array, i: usize) -> Option<Vec<u8>> {
    match array.data_type() {
        DataType::Binary => Some(array.as_binary::<i32>().value(i).to_vec()),
        DataType::LargeBinary => Some(array.as_binary::<i64>().value(i).to_vec()),
        DataType::BinaryView => Some(array.as_binary_view().value(i).to_vec()),
        _ => None,
    }
}

// ---- JSON values ----

/// `{"bytes": "<lowercase hex>"}`.
fn bytes_json(b: &[u8]) -> Json {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(b.len() * 2);
    for &byte in b {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    serde_json::json!({ "bytes": hex })
}

/// The body as text when it is UTF-8 (Capture bodies are mostly JSON), else as hex.
fn body_json(b: &[u8]) -> Json {
    match std::str::from_utf8(b) {
        Ok(text) => Json::from(text),
        Err(_) => bytes_json(b),
    }
}

/// A finite double as a number; NaN and the infinities, which JSON has no numbers for, as the
/// strings `"NaN"`, `"inf"`, `"-inf"` rather than a `null` that would read as the null branch.
fn float_json(x: f64) -> Json {
    serde_json::Number::from_f64(x).map_or_else(|| Json::String(x.to_string()), Json::Number)
}

fn schema_err(file: &str, field: &'static str, found: String) -> InspectError {
    InspectError::Schema {
        file: file.to_string(),
        field,
        found,
    }
}

#[cfg(test)]
mod tests;
