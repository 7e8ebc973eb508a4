//! The source side of `hubcap replay`: an archive's record files, found and read back as the
//! Kafka records they hold.
//!
//! Archives it reads:
//! - hubcap's own, Avro or Parquet, named by any `--path-format`;
//! - Delta tables and Iceberg path tables (`--table`), found as `inspect` and `audit` find them
//!   (a folder with `_delta_log/`, a folder with `metadata/vN.metadata.json`; the root itself
//!   may be one): only the files the Delta log holds or the Iceberg table's current snapshot
//!   lists, not whatever else lies in their folders (a table kept by a REST catalog has no
//!   metadata there: its folder reads as a plain archive, every file in it);
//! - files Azure Event Hubs Capture itself wrote, in its native layout
//!   `{Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}.avro`
//!   or a custom one given as a template without `{Offset}`.
//!
//! Folders whose names start with `_` or `.` are skipped (`_checkpoints/`, `_manifests/`,
//! `_delta_log/`, `_watermarks/`, `_quarantine/`), as query engines skip them, and so are an
//! Iceberg table's `metadata/` (its manifests are Avro, but not records).
//!
//! Records map back to Kafka as `record.rs` mapped them out:
//!
//! | Kafka     | from the Capture record                                                           |
//! |-----------|-----------------------------------------------------------------------------------|
//! | offset    | `SequenceNumber`                                                                  |
//! | timestamp | Parquet's `EnqueuedTime` column (microseconds, or milliseconds in older files); else `SystemProperties["x-opt-enqueued-time"]` (long, epoch ms); else `EnqueuedTimeUtc` read as `M/d/yyyy h:mm:ss tt` UTC (whole seconds: older Capture files have nothing finer); else none |
//! | key       | `SystemProperties["x-opt-partition-key"]`: a string as its UTF-8 bytes, bytes as they are; absent: no key |
//! | value     | `Body`; `null` is a tombstone                                                     |
//! | headers   | `Properties`, every entry in file order (a repeated name once per occurrence)     |
//!
//! A header's value is its `bytes` as they are (what hubcap writes, and how Event Hubs shows
//! headers sent over Kafka), a `string` as its UTF-8 bytes, a `long` as 8 bytes big-endian and a
//! `double` as 8 bytes of IEEE-754 big-endian: what Java's `LongSerializer` and
//! `DoubleSerializer` write, so a Kafka consumer reads the numbers of a Capture file's
//! application properties (`RandomInt`) back with Kafka's own deserializers. The `null` branch
//! is a header without a value.

mod chunks;
mod events;
mod ranged;
mod tables;

pub use chunks::{stream, Chunk, Chunks, ReadLimits};

use std::collections::BTreeMap;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use super::avro::AvroError;
use crate::layout::{PathError, PathTemplate, DEFAULT_TEMPLATE};
use crate::record::Event;
use crate::state::table::{TableError, TABLE_TEMPLATE};
use crate::store::Location;
use crate::units::ByteSize;

use tables::Tables;

/// The two file formats an archive holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Avro,
    Parquet,
}

impl SourceFormat {
    fn extension(self) -> &'static str {
        match self {
            SourceFormat::Avro => "avro",
            SourceFormat::Parquet => "parquet",
        }
    }
}

/// One record file of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The object's name relative to the root, as the store lists it.
    pub name: String,
    pub topic: String,
    pub partition: i32,
    pub size: u64,
    pub format: SourceFormat,
    /// The offset of its first record, from its name; `None` for Event Hubs Capture's own
    /// names, which carry none.
    pub first_offset: Option<i64>,
}

/// What to replay. Empty lists take every topic or partition; ranges are open where `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub topics: Vec<String>,
    pub partitions: Vec<i32>,
    /// Records at or after this time (epoch ms).
    pub since_ms: Option<i64>,
    /// Records before this time (epoch ms), not at it.
    pub until_ms: Option<i64>,
    /// Records at or after this offset.
    pub from_offset: Option<i64>,
    /// Records at or before this offset.
    pub to_offset: Option<i64>,
}

impl Selection {
    fn wants(&self, topic: &str, partition: i32) -> bool {
        (self.topics.is_empty() || self.topics.iter().any(|t| t == topic))
            && (self.partitions.is_empty() || self.partitions.contains(&partition))
    }

    /// Whether an event is in the offset and time ranges. An event without a timestamp has no
    /// time to be in a range: with `since_ms` or `until_ms` it is left out.
    pub fn keeps(&self, e: &Event) -> bool {
        let offset = self.from_offset.is_none_or(|from| e.offset >= from)
            && self.to_offset.is_none_or(|to| e.offset <= to);
        let timed = self.since_ms.is_some() || self.until_ms.is_some();
        let time = match e.timestamp_ms {
            None => !timed,
            Some(t) => {
                self.since_ms.is_none_or(|since| t >= since)
                    && self.until_ms.is_none_or(|until| t < until)
            }
        };
        offset && time
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("--path-format {template:?}: {source}")]
    Template { template: String, source: PathError },
    #[error("cannot list {root}: {source}; check the URL and the store's credentials")]
    List {
        root: String,
        source: object_store::Error,
    },
    #[error("no .avro or .parquet files under {root} (folders starting with _ or . are skipped); pass the archive's root: hubcap's --output, or the container or folder Event Hubs Capture writes to")]
    Empty { root: String },
    #[error("none of the {files} .avro and .parquet files under {root} (such as {example}) fits a layout tried: {tried}; pass --path-format with the template the archive was written with, names relative to {root}")]
    NoneFit {
        root: String,
        files: usize,
        example: String,
        tried: String,
    },
    #[error("{topic}/{partition} has files named with their first offset ({numbered}) and files named without one, as Event Hubs Capture names them ({unnumbered}): names cannot put them in one order; replay one layout at a time, naming it with --path-format")]
    MixedLayouts {
        topic: String,
        partition: i32,
        numbered: String,
        unnumbered: String,
    },
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("the table {table} holds {file}, which is not in the store: its readers fail on it too; restore the file, or see `hubcap audit`")]
    TableFileMissing { table: String, file: String },
    #[error("{file} is not an object's name (it has an empty, . or .. segment); read the files `list` gives")]
    Name { file: String },
    #[error("cannot read {file}: {source}; check the store's credentials, or whether the file was deleted since it was listed")]
    Read {
        file: String,
        source: object_store::Error,
    },
    #[error("{file} is not a readable Avro file: {source}; {DAMAGED}")]
    Avro { file: String, source: AvroError },
    #[error("{file} is not a readable Parquet file: {source}; {DAMAGED}")]
    Parquet {
        file: String,
        source: parquet::errors::ParquetError,
    },
    #[error("{file}: cannot decode Parquet rows: {source}; {DAMAGED}")]
    Arrow {
        file: String,
        source: arrow_schema::ArrowError,
    },
    #[error("{file}: field {field} is missing or is not what the Capture schema has (found {found}): replay reads Event Hubs Capture's and hubcap's files; {DAMAGED}")]
    Schema {
        file: String,
        field: &'static str,
        found: String,
    },
    #[error("{file}: the record at offset {offset}: {field} is {problem}; {DAMAGED}")]
    Value {
        file: String,
        offset: i64,
        field: String,
        problem: String,
    },
    #[error("{file}: the decoder stopped: {reason}")]
    Decoder { file: String, reason: String },
    #[error("{file}: its row group {row_group} is {}, more than replay holds at once with --memory-limit {}; give --memory-limit {} or more", ByteSize(*size), ByteSize(*memory_limit), ByteSize(*needed))]
    TooLarge {
        file: String,
        row_group: usize,
        size: u64,
        memory_limit: u64,
        /// The smallest `--memory-limit` that reads it.
        needed: u64,
    },
}

/// How to get past a file replay cannot read.
const DAMAGED: &str = "restore it, or move it into a folder whose name starts with _ (which replay skips) to replay the rest";

/// The archive's record files under `root`, for the selection's topics and partitions, each
/// partition's files in offset order (Capture's own files, which have no offset in their
/// names, in the time order of their names). Where names carry offsets, files that cannot hold
/// an offset in the selection's range are left out: a file ends before the next one of its
/// partition begins, as long as files do not overlap (which `hubcap audit` checks).
///
/// `template` is the archive's `--path-format`; a template without `{Offset}` is tried as
/// hubcap reads it (with `-{Offset}` appended) and as Capture writes it (as given). Without
/// one, hubcap's default template, the tables' default (`.parquet`) and Capture's native layout
/// are tried. A file whose name fits no layout is skipped (logged at debug); when none fits,
/// the error names the layouts tried. A table given as the root itself is read as if its
/// folder were the topic's (the default `--table-path {EventHub}`).
///
/// Must run on a multi-thread runtime when the archive holds a Delta table (delta_kernel
/// blocks).
pub async fn list(
    root: &Location,
    template: Option<&str>,
    selection: &Selection,
) -> Result<Vec<SourceFile>, SourceError> {
    let layouts = Layout::all(template)?;
    let candidates = candidates(root).await?;
    let partitions = by_partition(root, &layouts, &candidates, selection)?;
    let mut files = Vec::new();
    for ((topic, partition), named) in partitions {
        files.extend(in_order(&topic, partition, named, selection)?);
    }
    Ok(files)
}

/// The record files under the root: those outside the tables and folders readers skip, and
/// those the tables hold.
async fn candidates(root: &Location) -> Result<Vec<Candidate>, SourceError> {
    let listed = list_objects(root).await?;
    let tables = Tables::find(&listed);
    let mut candidates: Vec<Candidate> = listed
        .iter()
        .filter(|object| !tables.holds(&object.parts) && is_record_file(&object.parts))
        .map(|object| Candidate::new(object.meta.clone(), root, None))
        .collect();
    candidates.extend(tables.files(root, &listed).await?);
    if candidates.is_empty() {
        return Err(SourceError::Empty {
            root: root.display.clone(),
        });
    }
    Ok(candidates)
}

/// The candidates each layout names, by topic and partition, those the selection wants.
fn by_partition(
    root: &Location,
    layouts: &[Layout],
    candidates: &[Candidate],
    selection: &Selection,
) -> Result<BTreeMap<(String, i32), Vec<Named>>, SourceError> {
    let mut partitions: BTreeMap<(String, i32), Vec<Named>> = BTreeMap::new();
    let mut fitted = 0;
    for candidate in candidates {
        let Some(named) = layouts.iter().find_map(|l| l.name(candidate)) else {
            tracing::debug!(file = %candidate.name, "skipped: its name fits no layout");
            continue;
        };
        fitted += 1;
        if selection.wants(&named.file.topic, named.file.partition) {
            let key = (named.file.topic.clone(), named.file.partition);
            partitions.entry(key).or_default().push(named);
        }
    }
    if fitted == 0 {
        let tried: Vec<String> = layouts.iter().map(Layout::shown).collect();
        return Err(SourceError::NoneFit {
            root: root.display.clone(),
            files: candidates.len(),
            example: candidates
                .first()
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            tried: tried.join(", "),
        });
    }
    if fitted < candidates.len() {
        let skipped = candidates.len() - fitted;
        tracing::info!(skipped, root = %root.display, "files whose names fit no layout are skipped");
    }
    Ok(partitions)
}

/// The file's events, in file order, as Kafka had them, with the selection's offset and time
/// ranges applied. The whole file is read into memory: files are bounded by the archive's
/// window size (Capture's at most 500 MB), and Parquet's footer is at the end. Decoding runs
/// off the async threads.
pub async fn read(
    root: &Location,
    file: &SourceFile,
    selection: &Selection,
) -> Result<Vec<Event>, SourceError> {
    let shown = format!("{}/{}", root.display.trim_end_matches('/'), file.name);
    let path = object_path(root, &file.name).ok_or_else(|| SourceError::Name {
        file: shown.clone(),
    })?;
    let read_err = |source| SourceError::Read {
        file: shown.clone(),
        source,
    };
    let data = root
        .store
        .get(&path)
        .await
        .map_err(read_err)?
        .bytes()
        .await
        .map_err(read_err)?;
    let (format, selection) = (file.format, selection.clone());
    let name = shown.clone();
    tokio::task::spawn_blocking(move || {
        let keep = |e: &Event| selection.keeps(e);
        match format {
            SourceFormat::Avro => events::avro(&name, &data, &keep),
            SourceFormat::Parquet => events::parquet(&name, data, &keep),
        }
    })
    .await
    .map_err(|e| SourceError::Decoder {
        file: shown,
        reason: e.to_string(),
    })?
}

/// An event's key, value and header bytes.
pub fn event_bytes(e: &Event) -> u64 {
    let headers: usize = e
        .headers
        .iter()
        .map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len))
        .sum();
    (e.key.as_ref().map_or(0, Vec::len) + e.value.as_ref().map_or(0, Vec::len) + headers) as u64
}

/// The object a name relative to the root names. Names are the store's own (already encoded)
/// text, so they are parsed, not joined, which would encode them again.
fn object_path(root: &Location, name: &str) -> Option<Path> {
    let full = match root.prefix.as_ref() {
        "" => name.to_string(),
        prefix => format!("{prefix}/{name}"),
    };
    Path::parse(full).ok()
}

/// A listed object and its path's segments below the root.
struct Listed {
    meta: ObjectMeta,
    parts: Vec<String>,
}

async fn list_objects(root: &Location) -> Result<Vec<Listed>, SourceError> {
    let prefix = (!root.prefix.is_root()).then_some(&root.prefix);
    let metas: Vec<ObjectMeta> = root
        .store
        .list(prefix)
        .try_collect()
        .await
        .map_err(|source| SourceError::List {
            root: root.display.clone(),
            source,
        })?;
    Ok(metas
        .into_iter()
        .filter_map(|meta| {
            let parts = meta
                .location
                .prefix_match(&root.prefix)?
                .map(|p| p.as_ref().to_string())
                .collect();
            Some(Listed { meta, parts })
        })
        .collect())
}

/// Whether an object outside the tables is a record file: `.avro` or `.parquet`, and in no
/// folder readers skip.
fn is_record_file(parts: &[String]) -> bool {
    let Some((file, folders)) = parts.split_last() else {
        return false;
    };
    let hidden = folders.iter().any(|f| f.starts_with(['_', '.']));
    !hidden && (file.ends_with(".avro") || file.ends_with(".parquet"))
}

/// A record file, before its name is read.
struct Candidate {
    meta: ObjectMeta,
    /// Relative to the root.
    name: String,
    /// The name layouts are matched against: `name`, or for a table that is the root itself,
    /// the root's folder and `name`.
    matched: String,
}

impl Candidate {
    fn new(meta: ObjectMeta, root: &Location, folder: Option<&str>) -> Candidate {
        let name = meta
            .location
            .prefix_match(&root.prefix)
            .map(|parts| parts.map(|p| p.as_ref().to_string()).collect::<Vec<_>>())
            .unwrap_or_default()
            .join("/");
        let matched = match folder {
            Some(folder) => format!("{folder}/{name}"),
            None => name.clone(),
        };
        Candidate {
            meta,
            name,
            matched,
        }
    }
}

/// One way an archive's files may be named.
struct Layout {
    template: PathTemplate,
    /// The template as given.
    text: String,
    format: SourceFormat,
    /// hubcap's names carry their first offset; Capture's own do not.
    capture: bool,
}

impl Layout {
    fn all(template: Option<&str>) -> Result<Vec<Layout>, SourceError> {
        use SourceFormat::{Avro, Parquet};
        match template {
            Some(t) => {
                let mut layouts = vec![Self::hubcap(t, Avro)?, Self::hubcap(t, Parquet)?];
                if !t.contains("{Offset}") {
                    layouts.push(Self::capture(t)?);
                }
                Ok(layouts)
            }
            None => Ok(vec![
                Self::hubcap(DEFAULT_TEMPLATE, Avro)?,
                Self::hubcap(DEFAULT_TEMPLATE, Parquet)?,
                Self::hubcap(TABLE_TEMPLATE, Parquet)?,
                Self::capture(DEFAULT_TEMPLATE)?,
            ]),
        }
    }

    fn hubcap(template: &str, format: SourceFormat) -> Result<Layout, SourceError> {
        let parsed = PathTemplate::parse(template, format.extension());
        Ok(Layout {
            template: parsed.map_err(template_err(template))?,
            text: template.to_string(),
            format,
            capture: false,
        })
    }

    fn capture(template: &str) -> Result<Layout, SourceError> {
        Ok(Layout {
            template: PathTemplate::parse_capture(template).map_err(template_err(template))?,
            text: template.to_string(),
            format: SourceFormat::Avro,
            capture: true,
        })
    }

    fn shown(&self) -> String {
        let offset = match self.capture || self.text.contains("{Offset}") {
            true => "",
            false => "-{Offset}",
        };
        let whose = match self.capture {
            true => " (Event Hubs Capture's own names)",
            false => "",
        };
        let extension = self.format.extension();
        format!("{:?}{offset}.{extension}{whose}", self.text)
    }

    /// The file a candidate is, when its name fits this layout.
    fn name(&self, c: &Candidate) -> Option<Named> {
        let (topic, partition, position) = if self.capture {
            let n = self.template.parse_capture_name(&c.matched)?;
            (n.topic, n.partition, Position::Time(n.time))
        } else {
            let n = self.template.parse_name(&c.matched)?;
            (n.topic, n.partition, Position::Offset(n.first_offset))
        };
        Some(Named {
            file: SourceFile {
                name: c.name.clone(),
                topic,
                partition,
                size: c.meta.size,
                format: self.format,
                first_offset: match position {
                    Position::Offset(o) => Some(o),
                    Position::Time(_) => None,
                },
            },
            position,
        })
    }
}

fn template_err(template: &str) -> impl FnOnce(PathError) -> SourceError + '_ {
    move |source| SourceError::Template {
        template: template.to_string(),
        source,
    }
}

/// Where a file stands in its partition: by its first offset, or for Capture's own names, by
/// the time its name says its window opened.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Position {
    Offset(i64),
    Time(String),
}

struct Named {
    file: SourceFile,
    position: Position,
}

/// One partition's files in order, without those that cannot hold the selection's offsets.
fn in_order(
    topic: &str,
    partition: i32,
    mut named: Vec<Named>,
    selection: &Selection,
) -> Result<Vec<SourceFile>, SourceError> {
    let numbered = named.iter().find(|n| n.file.first_offset.is_some());
    let unnumbered = named.iter().find(|n| n.file.first_offset.is_none());
    if let (Some(numbered), Some(unnumbered)) = (numbered, unnumbered) {
        return Err(SourceError::MixedLayouts {
            topic: topic.to_string(),
            partition,
            numbered: numbered.file.name.clone(),
            unnumbered: unnumbered.file.name.clone(),
        });
    }
    named.sort_by(|a, b| (&a.position, &a.file.name).cmp(&(&b.position, &b.file.name)));
    let firsts: Vec<Option<i64>> = named.iter().map(|n| n.file.first_offset).collect();
    Ok(named
        .into_iter()
        .enumerate()
        .filter(|(i, _)| may_hold(firsts[*i], firsts.get(i + 1).copied().flatten(), selection))
        .map(|(_, n)| n.file)
        .collect())
}

/// Whether a file whose first offset is `first`, followed in its partition by one whose first
/// offset is `next`, may hold an offset of the selection's range. Without offsets, it may.
fn may_hold(first: Option<i64>, next: Option<i64>, selection: &Selection) -> bool {
    let starts_by_the_end = match (first, selection.to_offset) {
        (Some(first), Some(to)) => first <= to,
        _ => true,
    };
    let ends_after_the_start = match (next, selection.from_offset) {
        (Some(next), Some(from)) => next > from,
        _ => true,
    };
    starts_by_the_end && ends_after_the_start
}
