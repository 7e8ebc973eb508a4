//! `hubcap replay`'s command line and its run: list the archive's files for the selection, and
//! produce each partition's events in archived order, one transaction per batch with the
//! partition's progress, skipping what earlier runs of the same job committed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate};
use rdkafka::ClientConfig;

use super::progress::{self, Progress};
use super::source::{self, Selection, SourceFile};
use super::target::{Outgoing, Target};
use super::verify::{self, Compared};
use super::ReplayError;
use crate::kafka::eventhubs::{self, Secret};
use crate::kafka::{parse_settings, KafkaArg};
use crate::record::Event;
use crate::store::Location;

/// Events per transaction at most: a commit waits for every event of its transaction to be
/// acknowledged, a stall of the pipeline, so commits are rare (20,000 events per transaction
/// replayed at 0.24 of a bare producer's speed, 200,000 at 0.41-0.47); a killed replay redoes at
/// most this much.
const BATCH_EVENTS: usize = 200_000;
/// How often a replay says how far it got (a line between files).
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// Record bytes (keys, values, headers) per transaction at most.
const BATCH_BYTES: usize = 128 << 20;

/// `hubcap replay`: produce an archive's events into a Kafka topic, exactly once.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The archive: a local directory or URL (file://, az://, abfss://, s3://, gs://), written by
    /// hubcap (Avro, Parquet, a Delta or Iceberg table) or by Event Hubs Capture.
    #[arg(long, env = "HUBCAP_REPLAY_FROM", value_name = "URL")]
    pub from: String,
    /// How the archive's files are named, when not by hubcap's default or Capture's own layout
    /// (the --path-format the archive was written with, or a Capture archive name format).
    #[arg(long, value_name = "TEMPLATE")]
    pub path_format: Option<String>,
    /// An archived topic to replay (repeatable); default: every topic in the archive.
    #[arg(long = "topic", value_name = "NAME")]
    pub topics: Vec<String>,
    /// An archived partition to replay (repeatable); default: every partition.
    #[arg(long = "partition", value_name = "N")]
    pub partitions: Vec<i32>,
    /// Only events enqueued at or after this time: RFC 3339 (2026-12-07T13:00:00Z) or a day
    /// (2026-12-07, midnight UTC).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events enqueued before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only events at this offset or after.
    #[arg(long, value_name = "OFFSET")]
    pub from_offset: Option<i64>,
    /// Only events at this offset or before.
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    /// The topic to produce into, which must exist; {EventHub} stands for the archived topic
    /// (e.g. restored-{EventHub}).
    #[arg(long, value_name = "TOPIC")]
    pub to_topic: String,
    /// Kafka bootstrap servers of the target (or --eventhubs-connection-string).
    #[arg(long, env = "HUBCAP_BROKERS")]
    pub brokers: Option<String>,
    /// An Event Hubs namespace's connection string: sets the brokers and SASL; a secret.
    #[arg(
        long,
        env = "HUBCAP_EVENTHUBS_CONNECTION_STRING",
        hide_env_values = true,
        value_parser = eventhubs::secret
    )]
    pub eventhubs_connection_string: Option<Secret>,
    /// same: each event to its archived partition number (the target needs at least as many
    /// partitions); key: Kafka's default partitioner on the key (murmur2, as Java clients), so
    /// each key's events stay in order; events without a key are spread.
    #[arg(long, value_enum, default_value = "same")]
    pub partitioning: Partitioning,
    /// archived: each event keeps its archived timestamp; now: the producer stamps it.
    #[arg(long, value_enum, default_value = "archived")]
    pub timestamp: TimestampMode,
    /// Do not add the hubcap.source header (TOPIC/PARTITION/OFFSET of the archived event).
    #[arg(long)]
    pub no_source_header: bool,
    /// The replay's name: its transactional id is hubcap-replay-JOB and its progress is kept
    /// under it, so the same job run again carries on where it stopped. Default: derived from
    /// the archive, the selection and the target.
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// The compacted topic the progress is kept in (created when missing).
    #[arg(long, value_name = "TOPIC", default_value = "hubcap-replay-progress")]
    pub progress_topic: String,
    /// Events per transaction at most (and 128 MiB): a commit waits for all of them to be
    /// acknowledged, so larger is faster; a replay killed redoes at most one transaction.
    #[arg(long, value_name = "N", default_value_t = BATCH_EVENTS)]
    pub transaction_events: usize,
    /// For targets without transactions (Event Hubs Standard): at least once, each batch's
    /// progress written after its events are acknowledged; the hubcap.source header tells
    /// duplicates apart.
    #[arg(long)]
    pub no_transactions: bool,
    /// Print what would be produced (files, events, bytes per partition) and produce nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Produce nothing: compare the target topic (read_committed, to its end) with the
    /// archive's selection, by the hubcap.source header: per archived partition the events,
    /// duplicates, missing ones and a content hash of each side. Exits 1 unless they agree.
    #[arg(long, conflicts_with = "dry_run")]
    pub verify: bool,
    /// A librdkafka setting for the target, key=value (security, SASL, TLS); repeatable.
    #[arg(
        short = 'X',
        value_name = "KEY=VALUE",
        env = "HUBCAP_KAFKA_CONFIG",
        value_delimiter = '\n',
        hide_env_values = true,
        value_parser = crate::kafka::kafka_arg
    )]
    pub kafka: Vec<KafkaArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Partitioning {
    Same,
    Key,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TimestampMode {
    Archived,
    Now,
}

/// What a replay did (or, with `--dry-run`, would do) for one archived partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PartitionReplay {
    pub topic: String,
    pub partition: i32,
    pub target: String,
    pub files: u64,
    pub events: u64,
    /// Events an earlier run of the job produced already.
    pub skipped: u64,
    /// Keys, values and headers, in bytes.
    pub bytes: u64,
    /// The first archived offset not replayed, after this run.
    pub next_offset: Option<i64>,
}

/// What a replay did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReplaySummary {
    pub job: String,
    pub dry_run: bool,
    pub partitions: Vec<PartitionReplay>,
    /// With `--verify`: each archived partition compared with the target.
    pub verified: Option<Vec<Compared>>,
}

impl ReplaySummary {
    pub fn events(&self) -> u64 {
        self.partitions.iter().map(|p| p.events).sum()
    }

    /// Whether a `--verify` found the target as the archive (true without one).
    pub fn clean(&self) -> bool {
        self.verified
            .as_ref()
            .is_none_or(|v| v.iter().all(Compared::clean))
    }

    /// One line per partition, then the totals.
    pub fn table(&self) -> String {
        if let Some(verified) = &self.verified {
            return verify_table(verified);
        }
        let mut s = String::new();
        let verb = if self.dry_run {
            "would produce"
        } else {
            "produced"
        };
        let _ = writeln!(s, "replay job {} ({verb})", self.job);
        let _ = writeln!(
            s,
            "{:<24} {:>9} {:<24} {:>6} {:>10} {:>10} {:>12}",
            "topic", "partition", "into", "files", "events", "skipped", "bytes"
        );
        for p in &self.partitions {
            let _ = writeln!(
                s,
                "{:<24} {:>9} {:<24} {:>6} {:>10} {:>10} {:>12}",
                p.topic, p.partition, p.target, p.files, p.events, p.skipped, p.bytes
            );
        }
        let sum = |f: fn(&PartitionReplay) -> u64| -> u64 { self.partitions.iter().map(f).sum() };
        let _ = writeln!(
            s,
            "{:<24} {:>9} {:<24} {:>6} {:>10} {:>10} {:>12}",
            "total",
            "",
            "",
            sum(|p| p.files),
            sum(|p| p.events),
            sum(|p| p.skipped),
            sum(|p| p.bytes)
        );
        s
    }
}

/// `--verify`'s report: one line per archived partition, then the verdict.
fn verify_table(verified: &[Compared]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<24} {:>9} {:>10} {:>10} {:>10} {:>8} {:>8}",
        "topic", "partition", "archived", "replayed", "duplicate", "missing", "content"
    );
    for c in verified {
        let _ = writeln!(
            s,
            "{:<24} {:>9} {:>10} {:>10} {:>10} {:>8} {:>8}",
            c.topic,
            c.partition,
            c.archived,
            c.replayed,
            c.duplicates,
            c.missing,
            if c.same_content { "same" } else { "DIFFERS" }
        );
    }
    let clean = verified.iter().all(Compared::clean);
    let _ = writeln!(
        s,
        "verify: {}",
        if clean {
            "the target holds every archived event once, as archived"
        } else {
            "FAILED: the target differs from the archive (see above)"
        }
    );
    s
}

/// The arguments, checked.
struct Plan {
    selection: Selection,
    job: String,
    settings: Vec<(String, String)>,
    brokers: String,
}

impl ReplayArgs {
    fn plan(&self) -> Result<Plan, ReplayError> {
        let usage = |m: String| ReplayError::Usage(m);
        if self.to_topic.trim().is_empty() {
            return Err(usage("--to-topic is empty; name the topic to produce into, e.g. --to-topic restored-{EventHub}".into()));
        }
        let selection = Selection {
            topics: self.topics.clone(),
            partitions: self.partitions.clone(),
            since_ms: self
                .since
                .as_deref()
                .map(|t| parse_time("--since", t))
                .transpose()?,
            until_ms: self
                .until
                .as_deref()
                .map(|t| parse_time("--until", t))
                .transpose()?,
            from_offset: self.from_offset,
            to_offset: self.to_offset,
        };
        if let (Some(a), Some(b)) = (selection.since_ms, selection.until_ms) {
            if a >= b {
                return Err(usage("--since must be before --until".into()));
            }
        }
        if self.transaction_events == 0 {
            return Err(usage("--transaction-events must be at least 1".into()));
        }
        if let (Some(a), Some(b)) = (self.from_offset, self.to_offset) {
            if a > b {
                return Err(usage("--from-offset must not be above --to-offset".into()));
            }
        }
        let job = match &self.job {
            Some(job) => job.clone(),
            None => self.default_job(),
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        };
        if !valid(&job) {
            return Err(usage(
                "--job must be letters, digits, '.', '_' and '-' (it names a transactional id)"
                    .into(),
            ));
        }
        let mut settings = Vec::new();
        let mut brokers = self.brokers.clone().unwrap_or_default();
        if let Some(secret) = &self.eventhubs_connection_string {
            let conn = eventhubs::parse(&secret.0)
                .map_err(|e| usage(format!("--eventhubs-connection-string: {e}")))?;
            if brokers.trim().is_empty() {
                brokers = conn.bootstrap_servers();
            }
            settings = eventhubs::Connection::kafka_settings(secret);
        }
        settings.extend(
            parse_settings(self.kafka.iter().map(|a| &a.0))
                .map_err(|e| usage(format!("-X {e}")))?,
        );
        if brokers.trim().is_empty() && !self.dry_run {
            return Err(usage("--brokers is empty; give the target's HOST:PORT, or --eventhubs-connection-string (--dry-run needs neither)".into()));
        }
        Ok(Plan {
            selection,
            job,
            settings,
            brokers,
        })
    }

    /// A name that is the same for the same replay: the target and a checksum of what is
    /// replayed where.
    fn default_job(&self) -> String {
        let described = format!(
            "{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{:?}",
            crate::store::redact_url(&self.from),
            self.topics,
            self.partitions,
            self.since,
            self.until,
            self.from_offset,
            self.to_offset,
            self.to_topic,
            self.partitioning
        );
        let sum = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, described.as_bytes());
        let target: String = self
            .to_topic
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
            .collect();
        format!("{target}-{sum:08x}")
    }
}

/// `--since`/`--until`: RFC 3339, or a day (midnight UTC); epoch milliseconds.
fn parse_time(flag: &str, text: &str) -> Result<i64, ReplayError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
            .timestamp_millis());
    }
    Err(ReplayError::Usage(format!(
        "{flag} is not a time; give RFC 3339 (2026-12-07T13:00:00Z) or a day (2026-12-07)"
    )))
}

/// Runs the replay `args` describe.
pub async fn replay(args: &ReplayArgs) -> Result<ReplaySummary, ReplayError> {
    let plan = args.plan()?;
    let root = open_archive(&args.from)?;
    let files = source::list(&root, args.path_format.as_deref(), &plan.selection).await?;
    let mut by_partition: BTreeMap<(String, i32), Vec<SourceFile>> = BTreeMap::new();
    for f in files {
        by_partition
            .entry((f.topic.clone(), f.partition))
            .or_default()
            .push(f);
    }
    let mut summary = ReplaySummary {
        job: plan.job.clone(),
        dry_run: args.dry_run,
        partitions: Vec::new(),
        verified: None,
    };
    if args.dry_run {
        for ((topic, partition), files) in &by_partition {
            let mut p = partition_replay(args, topic, *partition, files);
            for f in files {
                let events = source::read(&root, f, &plan.selection).await?;
                p.events += events.len() as u64;
                p.bytes += events.iter().map(event_bytes).sum::<u64>();
                p.next_offset = events.last().map(|e| e.offset + 1).or(p.next_offset);
            }
            summary.partitions.push(p);
        }
        return Ok(summary);
    }

    let mut config = ClientConfig::new();
    config.set("client.id", "hubcap-replay");
    for (k, v) in &plan.settings {
        config.set(k, v);
    }
    config.set("bootstrap.servers", &plan.brokers);
    if args.verify {
        summary.verified = Some(verify(args, &plan, &root, &config, &by_partition).await?);
        return Ok(summary);
    }
    progress::ensure_topic(&config, &args.progress_topic).await?;
    let (target, done) = tokio::task::block_in_place(|| -> Result<_, ReplayError> {
        // Fences an earlier run of the job and ends its transaction first, so that the
        // progress read next is final.
        let target = Target::open(
            &config,
            &plan.job,
            &args.progress_topic,
            !args.no_transactions,
        )?;
        let done = progress::read(&config, &args.progress_topic, &plan.job)?;
        Ok((target, done))
    })?;
    check_partitions(args, &target, &by_partition)?;
    summary.partitions = produce_all(args, &plan, &root, &target, &done, &by_partition).await?;
    Ok(summary)
}

/// The archive at `spec`, which must exist (a local directory is not created).
fn open_archive(spec: &str) -> Result<Location, ReplayError> {
    let local = !spec.contains("://") || spec.starts_with("file://");
    let path = spec.strip_prefix("file://").unwrap_or(spec);
    if local && !std::path::Path::new(path).is_dir() {
        return Err(ReplayError::Usage(format!(
            "--from {path}: no such directory; give the archive's directory or URL"
        )));
    }
    Ok(Location::open(spec, "--from")?)
}

/// `--verify`: the archive's selection against the target topics' records.
async fn verify(
    args: &ReplayArgs,
    plan: &Plan,
    root: &Location,
    config: &ClientConfig,
    by_partition: &BTreeMap<(String, i32), Vec<SourceFile>>,
) -> Result<Vec<Compared>, ReplayError> {
    let timestamps = args.timestamp == TimestampMode::Archived;
    let targets: std::collections::BTreeSet<String> = by_partition
        .keys()
        .map(|(topic, _)| args.to_topic.replace("{EventHub}", topic))
        .collect();
    let mut found = verify::Found::new();
    for target in &targets {
        let (read, unsourced) =
            tokio::task::block_in_place(|| verify::read_target(config, target, timestamps))?;
        if unsourced > 0 {
            tracing::warn!(topic = %target, records = unsourced, "records without a hubcap.source header are not compared (replayed with --no-source-header, or not by hubcap)");
        }
        for (key, offsets) in read {
            found.entry(key).or_default().extend(offsets);
        }
    }
    let mut compared = Vec::new();
    for ((topic, partition), files) in by_partition {
        let mut archived = Vec::new();
        for f in files {
            for e in source::read(root, f, &plan.selection).await? {
                let d = if timestamps {
                    verify::event_digest(&e)
                } else {
                    verify::event_digest(&Event {
                        timestamp_ms: None,
                        ..e.clone()
                    })
                };
                archived.push((e.offset, d));
            }
        }
        archived.sort_by_key(|(o, _)| *o);
        archived.dedup_by_key(|(o, _)| *o);
        let key = (topic.clone(), *partition);
        compared.push(verify::compare(
            topic,
            *partition,
            &archived,
            found.get(&key),
        ));
    }
    Ok(compared)
}

fn partition_replay(
    args: &ReplayArgs,
    topic: &str,
    partition: i32,
    files: &[SourceFile],
) -> PartitionReplay {
    PartitionReplay {
        topic: topic.to_string(),
        partition,
        target: args.to_topic.replace("{EventHub}", topic),
        files: files.len() as u64,
        ..Default::default()
    }
}

/// With `--partitioning same`, every archived partition must exist in its target.
fn check_partitions(
    args: &ReplayArgs,
    target: &Target,
    by_partition: &BTreeMap<(String, i32), Vec<SourceFile>>,
) -> Result<(), ReplayError> {
    let mut highest: BTreeMap<String, i32> = BTreeMap::new();
    for (topic, partition) in by_partition.keys() {
        let t = args.to_topic.replace("{EventHub}", topic);
        let h = highest.entry(t).or_insert(*partition);
        *h = (*h).max(*partition);
    }
    for (topic, partition) in highest {
        let count = tokio::task::block_in_place(|| target.partitions(&topic))?;
        if args.partitioning == Partitioning::Same && partition >= count {
            return Err(ReplayError::Usage(format!(
                "the target topic {topic} has {count} partitions, the archive has partition {partition}: with --partitioning same each event keeps its partition number, so give the topic at least {} partitions, or replay with --partitioning key",
                partition + 1
            )));
        }
    }
    Ok(())
}

/// The events of the open transaction, by archived partition: what its commit makes final.
#[derive(Default)]
struct Txn {
    /// (target topic, next offset, events, bytes) per archived (topic, partition).
    advanced: BTreeMap<(String, i32), (String, i64, u64, u64)>,
    events: usize,
    bytes: usize,
}

/// Produces every partition's files in order. A transaction spans partitions and files until
/// it holds `--transaction-events` events or [`BATCH_BYTES`], so that a commit's wait for every
/// acknowledgement is rare; the next file is read while one is produced.
async fn produce_all(
    args: &ReplayArgs,
    plan: &Plan,
    root: &Location,
    target: &Target,
    done: &Progress,
    by_partition: &BTreeMap<(String, i32), Vec<SourceFile>>,
) -> Result<Vec<PartitionReplay>, ReplayError> {
    let mut report: BTreeMap<(String, i32), PartitionReplay> = BTreeMap::new();
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for ((topic, partition), files) in by_partition {
        let mut p = partition_replay(args, topic, *partition, files);
        let key = (topic.clone(), *partition);
        p.next_offset = done.next.get(&key).copied();
        if let Some(n) = p.next_offset {
            next.insert(key.clone(), n);
        }
        report.insert(key, p);
    }
    let files: Vec<&SourceFile> = by_partition.values().flatten().collect();
    let read = |f: &SourceFile| {
        let (root, f, selection) = (root.clone(), f.clone(), plan.selection.clone());
        tokio::spawn(async move { source::read(&root, &f, &selection).await })
    };
    let mut pending = files.first().map(|f| read(f));
    let mut txn = Txn::default();
    let started = std::time::Instant::now();
    let mut said = started;
    let mut sent = 0u64;
    for (i, f) in files.iter().enumerate() {
        if said.elapsed() >= PROGRESS_EVERY {
            said = std::time::Instant::now();
            let rate = sent as f64 / started.elapsed().as_secs_f64().max(1e-3);
            tracing::info!(
                files = i,
                of = files.len(),
                events = sent,
                events_per_s = rate as u64,
                "replaying"
            );
        }
        let Some(reading) = pending.take() else { break };
        pending = files.get(i + 1).map(|f| read(f));
        let mut events = reading
            .await
            .map_err(|e| ReplayError::Kafka(format!("reading {} stopped: {e}", f.name)))??;
        let key = (f.topic.clone(), f.partition);
        // What an earlier run committed, and offsets already produced from an earlier file.
        let from = next.get(&key).copied();
        let before = events.len();
        events.retain(|e| from.is_none_or(|n| e.offset >= n));
        let p = report
            .get_mut(&key)
            .expect("every file's partition is reported");
        p.skipped += (before - events.len()) as u64;
        sent += events.len() as u64;
        let target_topic = p.target.clone();
        // One blocking section per file: librdkafka's calls block (on a full queue, a commit).
        tokio::task::block_in_place(|| -> Result<(), ReplayError> {
            for e in &events {
                if txn.events == 0 {
                    target.begin()?;
                }
                target.send(&Outgoing {
                    topic: &target_topic,
                    partition: (args.partitioning == Partitioning::Same).then_some(f.partition),
                    event: e,
                    timestamp_ms: match args.timestamp {
                        TimestampMode::Archived => e.timestamp_ms,
                        TimestampMode::Now => None,
                    },
                    source: (!args.no_source_header)
                        .then(|| format!("{}/{}/{}", f.topic, f.partition, e.offset)),
                })?;
                let size = event_bytes(e);
                let entry = txn
                    .advanced
                    .entry(key.clone())
                    .or_insert_with(|| (target_topic.clone(), 0, 0, 0));
                entry.1 = e.offset + 1;
                entry.2 += 1;
                entry.3 += size;
                txn.events += 1;
                txn.bytes += size as usize;
                next.insert(key.clone(), e.offset + 1);
                if txn.events >= args.transaction_events || txn.bytes >= BATCH_BYTES {
                    commit(target, &mut txn, &mut report)?;
                }
            }
            Ok(())
        })?;
    }
    if txn.events > 0 {
        tokio::task::block_in_place(|| commit(target, &mut txn, &mut report))?;
    }
    for p in report.values() {
        tracing::info!(topic = %p.topic, partition = p.partition, events = p.events, skipped = p.skipped, target = %p.target, "replayed the partition");
    }
    Ok(report.into_values().collect())
}

/// Commits the open transaction with each partition's progress, and counts its events in.
/// Blocks.
fn commit(
    target: &Target,
    txn: &mut Txn,
    report: &mut BTreeMap<(String, i32), PartitionReplay>,
) -> Result<(), ReplayError> {
    let progress: Vec<(String, String, i32, i64)> = txn
        .advanced
        .iter()
        .map(|((topic, partition), (to, next, _, _))| {
            (to.clone(), topic.clone(), *partition, *next)
        })
        .collect();
    target.commit(&progress)?;
    for (key, (_, next, events, bytes)) in std::mem::take(&mut txn.advanced) {
        if let Some(p) = report.get_mut(&key) {
            p.events += events;
            p.bytes += bytes;
            p.next_offset = Some(next);
        }
    }
    *txn = Txn::default();
    Ok(())
}

/// An event's key, value and header bytes.
fn event_bytes(e: &Event) -> u64 {
    let headers: usize = e
        .headers
        .iter()
        .map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len))
        .sum();
    (e.key.as_ref().map_or(0, Vec::len) + e.value.as_ref().map_or(0, Vec::len) + headers) as u64
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ReplayArgs,
    }

    fn args(words: &[&str]) -> ReplayArgs {
        let mut all = vec![
            "replay",
            "--from",
            "/tmp/archive",
            "--to-topic",
            "t",
            "--brokers",
            "b:1",
        ];
        all.extend_from_slice(words);
        Cli::try_parse_from(all).unwrap().args
    }

    #[test]
    fn times_are_rfc3339_or_a_day() {
        assert_eq!(parse_time("--since", "1970-01-01T00:00:01Z").unwrap(), 1000);
        assert_eq!(parse_time("--since", "1970-01-02").unwrap(), 86_400_000);
        assert_eq!(
            parse_time("--since", "2026-12-07T13:00:00+01:00").unwrap(),
            1_796_644_800_000
        );
        let err = parse_time("--until", "yesterday").unwrap_err().to_string();
        assert!(err.contains("--until") && err.contains("RFC 3339"), "{err}");
    }

    #[test]
    fn a_job_is_named_the_same_for_the_same_replay_and_otherwise_not() {
        let a = args(&["--topic", "clicks"]).plan().unwrap().job;
        assert_eq!(a, args(&["--topic", "clicks"]).plan().unwrap().job);
        assert_ne!(a, args(&["--topic", "views"]).plan().unwrap().job);
        assert!(a.starts_with("t-"), "{a}");
        let named = args(&["--job", "restore-1"]).plan().unwrap().job;
        assert_eq!(named, "restore-1");
    }

    #[test]
    fn unusable_flags_say_what_to_give() {
        for (words, says) in [
            (&["--job", "a/b"][..], "--job"),
            (
                &["--since", "2026-12-08", "--until", "2026-12-07"],
                "--since must be before --until",
            ),
            (&["--from-offset", "9", "--to-offset", "3"], "--from-offset"),
        ] {
            let err = args(words).plan().err().unwrap().to_string();
            assert!(err.contains(says), "{words:?}: {err}");
        }
        let mut blank = args(&[]);
        blank.to_topic = " ".into();
        let err = blank.plan().err().unwrap().to_string();
        assert!(err.contains("--to-topic is empty"), "{err}");
        let mut no_brokers = args(&[]);
        no_brokers.brokers = None;
        assert!(no_brokers
            .plan()
            .err()
            .unwrap()
            .to_string()
            .contains("--brokers"));
        no_brokers.dry_run = true;
        assert!(no_brokers.plan().is_ok(), "a dry run needs no Kafka");
    }
}
