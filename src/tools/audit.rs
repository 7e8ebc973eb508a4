//! `hubcap audit`: checks the promise that every offset below each partition's checkpoint is in
//! exactly one file.
//!
//! What it reads, all of it read-only:
//! - the checkpoints (`{checkpoints}/{group}/{topic}/{partition}.json`), which say how far each
//!   partition is archived and whether a file is being published;
//! - the manifests (`{output}/_manifests/{group}/{topic}/{partition}/…/HH.jsonl`), whose lines give
//!   each published file's offset range; a listed file must exist, with the size listed;
//! - a listing of the output, for files no manifest lists (archives older than manifests): their
//!   names are mapped to topic, partition and first offset with `--path-format`, and the files
//!   are read for their actual `SequenceNumber`s, which must increase;
//! - with `--brokers`, each partition's low and high watermarks, and what Kafka holds in each gap
//!   (below).
//!
//! Per (group, topic, partition), the files whose first offset is below the checkpoint must cover
//! the offsets from the first file up to the checkpoint exactly once. Reported, and failures:
//! - an **overlap**: an offset in two files (both named);
//! - a **gap**: offsets no file holds, between two files or between the last file and the
//!   checkpoint (and with `--brokers`, between the low watermark and the first file). On a plain
//!   topic every offset holds a record, so a gap is a lost file. On compacted or transactional
//!   topics, offsets without records (compaction, transaction markers, aborted records) make
//!   gaps that lose nothing. With `--brokers`, each gap whose offsets Kafka still holds is read
//!   with a read_committed consumer from its first offset: when the first record delivered is
//!   past the gap, or the partition ends first, Kafka holds no committed record there and the gap
//!   is **explained**: reported, not a failure. A record inside the gap is a loss (its offset is
//!   reported). A gap Kafka cannot answer for (below the low watermark, Kafka did not answer in
//!   time, a transaction still open in it, a re-created topic) stays a gap, with why. Gaps that
//!   are not explained are failures unless `--allow-gaps`, which reports them as warnings;
//! - a file that reaches past the checkpoint, a file a manifest lists that is missing or has
//!   another size, an unreadable file below the checkpoint, an unreadable checkpoint or manifest;
//! - with `--brokers`: a checkpoint below the low watermark (retention deleted offsets before they
//!   were archived) or above the high watermark (the topic was re-created).
//!
//! Reported, not failures, because the next run settles them: **orphans** (files whose first
//! offset is at or past the checkpoint, left by a run that stopped before committing them; the
//! next run archives those offsets again, mostly under the same names), a pending intent, and
//! with `--brokers` the offsets not archived yet. Files of a partition that has no checkpoint are
//! orphans too: nothing was promised for it.
//!
//! Reported, not a failure, because nothing hubcap promised was lost: with `--brokers`, offsets
//! **removed before archiving**, from 0 up to where the archive starts, when Kafka no longer
//! holds them and the archive starts at or below the low watermark (its first file starts
//! there, or with no file the checkpoint is the low watermark, or an explained gap runs from the
//! low watermark to the first file or checkpoint). hubcap starts a partition at the log start,
//! so retention had deleted them before hubcap first read it. (A first file deleted from the
//! archive after Kafka deleted its records too looks the same; nothing left can tell them apart.)
//!
//! Delta and Iceberg tables (`--table`) under the output are checked against the manifests and the
//! checkpoints (see `table.rs`): every file the log adds was archived, with the size and record
//! count its manifest line gives, no path is added twice, every file archived below a
//! checkpoint is in the table, and each partition's set-transaction version is its last archived
//! offset.
//!
//! Files a manifest lists are only checked for existence and size, not read: the manifest line
//! was written from the file's own intent. A file listed by one group's manifest belongs to that
//! group; an unlisted file belongs to every audited group with a checkpoint for its partition.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};
use rdkafka::error::KafkaError;
use serde::Serialize;

use crate::layout::{PathError, PathTemplate, CHECKPOINTS_DIR, MANIFESTS_DIR};
use crate::state::checkpoint::{CheckpointError, CheckpointStore};
use crate::state::manifest::{ManifestEntry, ManifestError, Manifests};
use crate::store::{percent_decode, Location, StoreError};

mod args;
pub use args::AuditArgs;
mod decode;
mod files;
mod kafka;
mod report;
mod strays;
mod table;
mod text;

use crate::state::iceberg::catalog::CatalogConfig;
use decode::{avro_offsets, parquet_offsets};
use files::{decode, fetch, list_files, read_file, verify, Stored};
pub(crate) use kafka::range_reader_config;
use kafka::{check_gaps, fetch_watermarks};
pub use report::*;
use table::audit_tables;
pub(crate) use table::Archived;

/// Files fetched and decoded at once; each is held in memory while it is decoded.
const READ_CONCURRENCY: usize = 4;
/// Checkpoints and manifest objects fetched at once (each is a few hundred bytes).
const SMALL_READ_CONCURRENCY: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Open(#[from] StoreError),
    #[error("--path-format: {0}")]
    Template(#[from] PathError),
    #[error("{flag} {target}: no such directory")]
    NotFound { flag: &'static str, target: String },
    #[error("cannot list {target}: {source}; check the URL and the store's credentials")]
    List {
        target: String,
        source: object_store::Error,
    },
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: object_store::Error,
    },
    #[error(transparent)]
    Checkpoint(CheckpointError),
    #[error(transparent)]
    Manifest(ManifestError),
    #[error("no checkpoints{scope} under {checkpoints}; hubcap keeps them at <checkpoints>/<group>/<topic>/<partition>.json: pass --checkpoints if they are not under --output, or check --group and --topic")]
    NoCheckpoints { checkpoints: String, scope: String },
    #[error("-X {0}")]
    KafkaSetting(String),
    #[error("{0}")]
    Catalog(String),
    #[error("cannot read the watermarks from {brokers} (waited {timeout:?}): {source}; check --brokers and the -X security settings")]
    Kafka {
        brokers: String,
        timeout: Duration,
        source: KafkaError,
    },
    #[error("topic {topic} does not exist on {brokers}")]
    UnknownTopic { topic: String, brokers: String },
    #[error("reading Kafka stopped unexpectedly: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

impl AuditError {
    /// Whether the command line is at fault (a template or `-X` setting that cannot be used):
    /// exit 2, as for `run`.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            AuditError::Template(_) | AuditError::KafkaSetting(_) | AuditError::Catalog(_)
        )
    }
}

/// Audits the archive `args` names, writes the report to `out` (text, or JSON with `--json`) and
/// returns it; a report that is not [`clean`](AuditReport::clean) is still `Ok`: the caller
/// decides the exit code. Errors are what stops the audit itself (a store or broker that cannot
/// be read, no checkpoints at all).
pub async fn audit(
    args: &AuditArgs,
    out: &mut (dyn Write + Send),
) -> Result<AuditReport, AuditError> {
    let output = open_existing(&args.output, "--output")?;
    let checkpoints = match &args.checkpoints {
        Some(spec) => open_existing(spec, "--checkpoints")?,
        None => output.child(CHECKPOINTS_DIR),
    };
    let opts = Options::new(args)?;
    let mut report = audit_locations(&output, &checkpoints, &opts).await?;
    if let Some(brokers) = &args.brokers {
        let mut topics: BTreeSet<String> =
            report.partitions.iter().map(|p| p.topic.clone()).collect();
        topics.extend(args.topics.iter().cloned());
        let (marks, ids) = fetch_watermarks(brokers, &args.kafka, topics).await?;
        report.compare_watermarks(&marks);
        report.compare_topic_ids(&ids);
        let queries = report.gaps_to_check();
        let checks = if queries.is_empty() {
            GapChecks::new()
        } else {
            check_gaps(brokers, &args.kafka, queries).await?
        };
        report.apply_gap_checks(&checks);
    }
    write_report(&report, args.json, out)?;
    Ok(report)
}

/// The audit without Kafka, and the manifest lines of the audited partitions by file name:
/// what `hubcap repair` works from.
pub(crate) async fn audit_archive(
    args: &AuditArgs,
) -> Result<(AuditReport, Archived, Location), AuditError> {
    let output = open_existing(&args.output, "--output")?;
    let checkpoints = match &args.checkpoints {
        Some(spec) => open_existing(spec, "--checkpoints")?,
        None => output.child(CHECKPOINTS_DIR),
    };
    let opts = Options::new(args)?;
    let (report, archived) = audit_locations_with_lines(&output, &checkpoints, &opts).await?;
    Ok((report, archived, output))
}

/// Writes the report as text or as JSON (the report plus `clean` and the failure counts).
pub fn write_report(
    report: &AuditReport,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), AuditError> {
    #[derive(Serialize)]
    struct Json<'a> {
        clean: bool,
        failures: Failures,
        #[serde(flatten)]
        report: &'a AuditReport,
    }
    if json {
        let doc = Json {
            clean: report.clean(),
            failures: report.failures(),
            report,
        };
        serde_json::to_writer_pretty(&mut *out, &doc).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
    } else {
        out.write_all(report.text().as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// A local directory must exist: [`Location::open`] would create it, and an audit of an empty
/// directory it just made would only say "no checkpoints".
fn open_existing(spec: &str, flag: &'static str) -> Result<Location, AuditError> {
    let local = if spec.contains("://") {
        url::Url::parse(spec)
            .ok()
            .filter(|u| u.scheme() == "file")
            .and_then(|u| u.to_file_path().ok())
    } else {
        Some(PathBuf::from(spec))
    };
    if local.is_some_and(|dir| !dir.is_dir()) {
        return Err(AuditError::NotFound {
            flag,
            target: spec.to_string(),
        });
    }
    Ok(Location::open(spec, flag)?)
}

/// The arguments that shape what is audited, validated.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    group: Option<String>,
    topics: Vec<String>,
    avro: PathTemplate,
    parquet: PathTemplate,
    /// The Delta table layout, for Parquet names `--path-format` does not fit.
    table: PathTemplate,
    allow_gaps: bool,
    allow_stray: bool,
    verify: bool,
    /// `--iceberg-catalog`: where the Iceberg tables' metadata is.
    catalog: Option<CatalogConfig>,
}

impl Options {
    fn new(args: &AuditArgs) -> Result<Options, AuditError> {
        Ok(Options {
            group: args.group.clone(),
            topics: args.topics.clone(),
            avro: PathTemplate::parse(&args.path_format, "avro")?,
            parquet: PathTemplate::parse(&args.path_format, "parquet")?,
            table: PathTemplate::parse(crate::state::table::TABLE_TEMPLATE, "parquet")?,
            allow_gaps: args.allow_gaps,
            allow_stray: args.allow_stray,
            verify: args.verify,
            catalog: args.catalog.config().map_err(AuditError::Catalog)?,
        })
    }

    fn wants_topic(&self, topic: &str) -> bool {
        self.topics.is_empty() || self.topics.iter().any(|t| t == topic)
    }

    fn wants(&self, group: &str, topic: &str) -> bool {
        self.group.as_ref().is_none_or(|g| g == group) && self.wants_topic(topic)
    }
}

/// (group, topic, partition); no group for files of a partition no group has a checkpoint for.
type Key = (Option<String>, String, i32);

/// A partition being audited: the report entry and the files found for it.
#[derive(Default)]
struct Entry {
    audit: PartitionAudit,
    spans: Vec<FileSpan>,
    /// Paths already placed, so a file listed twice counts once.
    seen: HashSet<String>,
}

impl Entry {
    fn new(key: &Key) -> Entry {
        Entry {
            audit: PartitionAudit {
                group: key.0.clone(),
                topic: key.1.clone(),
                partition: key.2,
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

/// What reading a file, or its manifest line, found.
enum Observed {
    Span(FileSpan),
    /// A file without records: it covers no offsets.
    Empty,
    Unreadable(String),
    /// Listed in a manifest, not in the store.
    Missing(FileSpan),
}

/// An unlisted file to read, and the partitions it belongs to.
struct ToRead {
    path: Path,
    name: String,
    /// From its name.
    first_offset: i64,
    owners: Vec<Key>,
}

/// The audit of an output and a checkpoint location, already opened.
pub(crate) async fn audit_locations(
    output: &Location,
    checkpoints: &Location,
    opts: &Options,
) -> Result<AuditReport, AuditError> {
    Ok(audit_locations_with_lines(output, checkpoints, opts)
        .await?
        .0)
}

async fn audit_locations_with_lines(
    output: &Location,
    checkpoints: &Location,
    opts: &Options,
) -> Result<(AuditReport, Archived), AuditError> {
    let all_checkpoints = list_checkpoints(checkpoints).await?;
    let mut entries = load_checkpoints(checkpoints, &all_checkpoints, opts).await?;
    if entries.is_empty() {
        return Err(no_checkpoints(checkpoints, opts));
    }
    let stored = list_files(output).await?;
    let (listed, archived) = place_manifest_files(output, opts, &stored, &mut entries).await?;
    let (to_read, mut unmatched) = unlisted(&stored, &listed, &entries, &all_checkpoints, opts);
    read_unlisted(output, to_read, &mut entries).await?;
    unmatched.sort();
    let (duplicates, strays) = strays::classify(output, unmatched, &entries).await?;
    let mut report = AuditReport {
        output: output.display.clone(),
        checkpoints: checkpoints.display.clone(),
        allow_gaps: opts.allow_gaps,
        partitions: Vec::with_capacity(entries.len()),
        allow_stray: opts.allow_stray,
        duplicates,
        strays,
        tables: Vec::new(),
    };
    for (_, entry) in entries {
        report.partitions.push(entry.finish(output, &stored));
    }
    report.sort();
    report.tables = audit_tables(
        output,
        &stored.tables,
        &stored.iceberg,
        &archived,
        &report.partitions,
        opts.catalog.as_ref(),
    )
    .await;
    Ok((report, archived))
}

/// The stored files no manifest lists, with the partitions they belong to, and the files whose
/// names fit no template.
fn unlisted(
    stored: &Stored,
    listed: &HashSet<Path>,
    entries: &BTreeMap<Key, Entry>,
    all_checkpoints: &BTreeSet<(String, String, i32)>,
    opts: &Options,
) -> (Vec<ToRead>, Vec<(Path, String)>) {
    let mut to_read = Vec::new();
    let mut unmatched = Vec::new();
    for (path, name) in stored.names.iter().filter(|(p, _)| !listed.contains(*p)) {
        let template = if name.ends_with(".parquet") {
            &opts.parquet
        } else {
            &opts.avro
        };
        let parsed = template.parse_name(name).or_else(|| {
            // A Delta table's file (`--table delta`), named by the table's layout.
            let tables = !stored.tables.is_empty() || !stored.iceberg.is_empty();
            let table = name.ends_with(".parquet") && tables;
            table.then(|| opts.table.parse_name(name)).flatten()
        });
        let Some(parsed) = parsed else {
            unmatched.push((path.clone(), name.clone()));
            continue;
        };
        if !opts.wants_topic(&parsed.topic) {
            continue;
        }
        let owners = owners(entries, all_checkpoints, &parsed.topic, parsed.partition);
        if !owners.is_empty() {
            to_read.push(ToRead {
                path: path.clone(),
                name: name.clone(),
                first_offset: parsed.first_offset,
                owners,
            });
        }
    }
    (to_read, unmatched)
}

/// Reads the unlisted files, a few at a time, and places what they hold.
async fn read_unlisted(
    output: &Location,
    to_read: Vec<ToRead>,
    entries: &mut BTreeMap<Key, Entry>,
) -> Result<(), AuditError> {
    let mut reads = futures::stream::iter(to_read)
        .map(|file| async move {
            let observed = read_file(output, &file.path, &file.name, file.first_offset).await;
            (file, observed)
        })
        .buffer_unordered(READ_CONCURRENCY);
    while let Some((file, observed)) = reads.next().await {
        let observed = observed?;
        for key in file.owners {
            let entry = entries.entry(key).or_insert_with_key(Entry::new);
            place(entry, &file.name, file.first_offset, &observed);
        }
    }
    Ok(())
}

impl Entry {
    /// The partition's findings, judged against its checkpoint.
    fn finish(mut self, output: &Location, stored: &Stored) -> PartitionAudit {
        let a = &mut self.audit;
        if let Some(p) = &mut a.pending {
            p.exists = stored.names.contains_key(&output.path(&p.path));
        }
        // Files were read concurrently: put what they gave in offset order.
        a.unreadable
            .sort_by(|x, y| (x.first_offset, &x.path).cmp(&(y.first_offset, &y.path)));
        a.missing
            .sort_by(|x, y| (x.first_offset, &x.path).cmp(&(y.first_offset, &y.path)));
        let next = a.checkpoint;
        for bad in &mut a.unreadable {
            bad.below_checkpoint = matches!((bad.first_offset, next), (Some(f), Some(n)) if f < n);
        }
        self.audit.check_files(self.spans);
        self.audit
    }
}

fn no_checkpoints(checkpoints: &Location, opts: &Options) -> AuditError {
    let mut scope = String::new();
    if let Some(g) = &opts.group {
        scope.push_str(&format!(" of group {g:?}"));
    }
    if !opts.topics.is_empty() {
        scope.push_str(&format!(" for topic {}", opts.topics.join(", ")));
    }
    AuditError::NoCheckpoints {
        checkpoints: checkpoints.display.clone(),
        scope,
    }
}

/// The audited partitions an unlisted file of `topic`/`partition` belongs to: every audited
/// group with a checkpoint for it; none if only groups not audited have one; else the
/// group-less entry, whose files are orphans.
fn owners(
    entries: &BTreeMap<Key, Entry>,
    all_checkpoints: &BTreeSet<(String, String, i32)>,
    topic: &str,
    partition: i32,
) -> Vec<Key> {
    let owners: Vec<Key> = entries
        .keys()
        .filter(|(g, t, p)| g.is_some() && t == topic && *p == partition)
        .cloned()
        .collect();
    let foreign = all_checkpoints
        .iter()
        .any(|(_, t, p)| t == topic && *p == partition);
    match (owners.is_empty(), foreign) {
        (false, _) => owners,
        (true, true) => Vec::new(),
        (true, false) => vec![(None, topic.to_string(), partition)],
    }
}

fn place(entry: &mut Entry, name: &str, first: i64, observed: &Observed) {
    if !entry.seen.insert(name.to_string()) {
        return;
    }
    match observed {
        Observed::Span(span) => entry.spans.push(span.clone()),
        Observed::Missing(span) => entry.audit.missing.push(span.clone()),
        Observed::Empty => entry.audit.empty_files += 1,
        Observed::Unreadable(reason) => entry.audit.unreadable.push(BadFile {
            path: name.to_string(),
            first_offset: Some(first),
            reason: reason.clone(),
            below_checkpoint: false,
        }),
    }
}

// ---- checkpoints ----

/// Every checkpoint under `loc`: (group, topic, partition). The lock and temporary files the
/// local compare-and-swap leaves next to them are skipped.
async fn list_checkpoints(loc: &Location) -> Result<BTreeSet<(String, String, i32)>, AuditError> {
    let mut found = BTreeSet::new();
    for meta in list(loc).await? {
        let Some(parts) = relative_parts(&meta.location, &loc.prefix) else {
            continue;
        };
        let [group, topic, file] = parts.as_slice() else {
            continue;
        };
        let partition = file.strip_suffix(".json").and_then(|p| p.parse().ok());
        if let Some(partition) = partition {
            found.insert((group.clone(), topic.clone(), partition));
        }
    }
    Ok(found)
}

/// Loads the audited checkpoints. One that cannot be parsed is a finding of its partition; one
/// that cannot be fetched stops the audit.
async fn load_checkpoints(
    loc: &Location,
    all: &BTreeSet<(String, String, i32)>,
    opts: &Options,
) -> Result<BTreeMap<Key, Entry>, AuditError> {
    let loads = all.iter().filter(|(g, t, _)| opts.wants(g, t)).map(
        |(group, topic, partition)| async move {
            let key: Key = (Some(group.clone()), topic.clone(), *partition);
            let loaded = CheckpointStore::new(loc.clone(), group)
                .load(topic, *partition)
                .await;
            (key, loaded)
        },
    );
    let mut loads = futures::stream::iter(loads).buffer_unordered(SMALL_READ_CONCURRENCY);
    let mut entries = BTreeMap::new();
    while let Some((key, loaded)) = loads.next().await {
        let mut entry = Entry::new(&key);
        match loaded {
            Ok(Some(v)) => {
                let c = v.checkpoint;
                entry.audit.checkpoint = Some(c.next_offset);
                entry.audit.topic_id = c.topic_id;
                entry.audit.pending = c.pending.map(|p| Pending {
                    path: p.path,
                    first_offset: p.first_offset,
                    last_offset: p.last_offset,
                    exists: false,
                });
            }
            // Listed a moment ago and gone now: nothing to hold the partition to.
            Ok(None) => {}
            Err(e @ CheckpointError::Store { .. }) => return Err(AuditError::Checkpoint(e)),
            Err(e) => entry.audit.checkpoint_error = Some(e.to_string()),
        }
        entries.insert(key, entry);
    }
    Ok(entries)
}

// ---- manifests ----

/// Places every file the audited partitions' manifests list (missing, wrong size, or a span),
/// and returns the paths every manifest lists, of any group, so that they are not read, and
/// the audited partitions' manifest lines by file name.
async fn place_manifest_files(
    output: &Location,
    opts: &Options,
    stored: &Stored,
    entries: &mut BTreeMap<Key, Entry>,
) -> Result<(HashSet<Path>, Archived), AuditError> {
    let reads = manifest_objects(output, opts)
        .await?
        .into_iter()
        .map(|(key, object)| async move {
            let group = key.0.as_deref().unwrap_or_default();
            let read = Manifests::new(output, group).read(&object).await;
            (key, object, read)
        });
    let mut reads = futures::stream::iter(reads).buffer_unordered(SMALL_READ_CONCURRENCY);
    let mut listed = HashSet::new();
    let mut archived = Archived::new();
    let mut to_verify = Vec::new();
    while let Some((key, object, read)) = reads.next().await {
        // A group audited without a checkpoint for this partition: its files are orphans.
        if let (Some(group), false) = (&key.0, entries.contains_key(&key)) {
            if opts.wants(group, &key.1) {
                entries.insert(key.clone(), Entry::new(&key));
            }
        }
        let lines = match read {
            Ok(lines) => lines,
            Err(ManifestError::Corrupt { reason, .. }) => {
                if let Some(entry) = entries.get_mut(&key) {
                    entry.audit.manifest_errors.push(BadFile {
                        path: format!("{MANIFESTS_DIR}/{object}"),
                        first_offset: None,
                        reason,
                        below_checkpoint: true,
                    });
                }
                continue;
            }
            Err(e) => return Err(AuditError::Manifest(e)),
        };
        for line in lines {
            let path = output.path(&line.path);
            if let Some(entry) = entries.get_mut(&key) {
                let observed = listed_file(&line, stored.sizes.get(&path).copied());
                let readable = matches!(observed, Observed::Span(_) | Observed::Empty);
                if opts.verify && readable {
                    to_verify.push((key.clone(), path.clone(), line.clone()));
                } else {
                    place(entry, &line.path, line.first_sequence_number, &observed);
                }
                archived.insert(line.path.clone(), (key.clone(), line));
            }
            listed.insert(path);
        }
    }
    let mut checks = futures::stream::iter(to_verify)
        .map(|(key, path, line)| async move {
            let observed = verify(output, &path, &line).await;
            (key, line, observed)
        })
        .buffer_unordered(READ_CONCURRENCY);
    while let Some((key, line, observed)) = checks.next().await {
        if let Some(entry) = entries.get_mut(&key) {
            place(entry, &line.path, line.first_sequence_number, &observed?);
        }
    }
    Ok((listed, archived))
}

/// The manifest objects of the audited topics, of every group: (group, topic, partition) and
/// the object's name under `_manifests/`.
async fn manifest_objects(
    output: &Location,
    opts: &Options,
) -> Result<Vec<(Key, String)>, AuditError> {
    let dir = output.child(MANIFESTS_DIR);
    let mut objects = Vec::new();
    for meta in list(&dir).await? {
        let Some(parts) = relative_parts(&meta.location, &dir.prefix) else {
            continue;
        };
        // {group}/{topic}/{partition}/{YYYY}/{MM}/{DD}/{HH}.jsonl
        let [group, topic, partition, _, _, _, hour] = parts.as_slice() else {
            continue;
        };
        let partition = partition.parse::<i32>();
        if let (true, Ok(partition)) = (hour.ends_with(".jsonl"), partition) {
            if opts.wants_topic(topic) {
                let key: Key = (Some(group.clone()), topic.clone(), partition);
                objects.push((key, parts.join("/")));
            }
        }
    }
    Ok(objects)
}

/// What a manifest line and the store say about a listed file, which is not read: its line was
/// written from the file's own intent.
fn listed_file(line: &ManifestEntry, stored_size: Option<u64>) -> Observed {
    let span = FileSpan {
        path: line.path.clone(),
        first_offset: line.first_sequence_number,
        last_offset: line.last_sequence_number,
        events: line.event_count,
    };
    match stored_size {
        None => Observed::Missing(span),
        Some(size) if size != line.size_in_bytes => Observed::Unreadable(format!(
            "{size} bytes, but its manifest line says {}: the file was replaced or cut short",
            line.size_in_bytes
        )),
        Some(_) if line.event_count == 0 => Observed::Empty,
        Some(_) => Observed::Span(span),
    }
}

// ---- listing ----

async fn list(loc: &Location) -> Result<Vec<ObjectMeta>, AuditError> {
    let prefix = (!loc.prefix.is_root()).then_some(&loc.prefix);
    loc.store
        .list(prefix)
        .try_collect()
        .await
        .map_err(|source| AuditError::List {
            target: loc.display.clone(),
            source,
        })
}

/// The segments of `path` below `prefix`, as they were written (object paths percent-encode
/// characters like `{` or `#`, which a group id may hold).
fn relative_parts(path: &Path, prefix: &Path) -> Option<Vec<String>> {
    Some(
        path.prefix_match(prefix)?
            .map(|part| percent_decode(part.as_ref()))
            .collect(),
    )
}

#[cfg(test)]
mod tests;
