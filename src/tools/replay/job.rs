//! `hubcap replay`'s command line and its run: list the archive's files for the selection, and
//! produce each partition's events in archived order, one transaction per batch with the
//! partition's progress, skipping what earlier runs of the same job committed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate};
use rdkafka::ClientConfig;

use super::meter::Meter;
use super::produce::{self, Produce};
use super::progress;
use super::source::{self, ReadLimits, Selection, SourceFile};
use super::target::Target;
use super::verify::{self, Compared};
use super::ReplayError;
use crate::kafka::eventhubs::{self, Secret};
use crate::kafka::{parse_settings, KafkaArg};
use crate::observe::progress::View;
use crate::record::Event;
use crate::store::Location;
use crate::units::ByteSize;

/// Events per transaction at most: a commit waits for every event of its transaction to be
/// acknowledged, a stall of the pipeline, so commits are rare (with 600,000 events, 200,000 per
/// transaction replayed at 0.62-0.78 of a bare producer's speed, 1,000,000 at 0.76-0.87); a killed
/// replay redoes at most this much.
const BATCH_EVENTS: usize = 1_000_000;

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
    /// Events per transaction at most (and 1 GiB, and 20 s): a commit waits for all of them to
    /// be acknowledged, so larger is faster; a replay killed redoes at most one transaction.
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
    /// Memory budget of the replay (e.g. 256MiB, 1GiB): the producer's queue and the chunks
    /// of files read ahead are sized from it (Avro files stream; a Parquet file is read whole
    /// and must fit in a quarter). At least 32MiB.
    #[arg(long, env = "HUBCAP_MEMORY_LIMIT", default_value = "256MiB")]
    pub memory_limit: ByteSize,
    /// No live progress bar: on a terminal, the replay then reports its progress in log lines
    /// every 10 s, as it always does off a terminal.
    #[arg(long, short = 'q', env = "HUBCAP_QUIET")]
    pub quiet: bool,
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
    /// How long it took, listing the archive included.
    pub seconds: f64,
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
        let events = sum(|p| p.events);
        let _ = writeln!(
            s,
            "{} {} files, {events} events, {:.1} MB in {} partitions in {:.1} s ({:.0} events/s); {} events skipped as already replayed",
            if self.dry_run { "would replay" } else { "replayed" },
            sum(|p| p.files),
            sum(|p| p.bytes) as f64 / 1e6,
            self.partitions.len(),
            self.seconds,
            events as f64 / self.seconds.max(1e-3),
            sum(|p| p.skipped),
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
        if self.memory_limit.0 < crate::budget::MIN_LIMIT
            || usize::try_from(self.memory_limit.0).is_err()
        {
            return Err(usage(format!(
                "--memory-limit {} is less than replay needs: at least {}",
                self.memory_limit,
                ByteSize(crate::budget::MIN_LIMIT)
            )));
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

/// Runs the replay `args` describe, its progress in log lines.
pub async fn replay(args: &ReplayArgs) -> Result<ReplaySummary, ReplayError> {
    replay_shown(args, View::Log).await
}

/// Runs the replay `args` describe, its progress shown as `view` says.
pub async fn replay_shown(args: &ReplayArgs, view: View) -> Result<ReplaySummary, ReplayError> {
    let started = std::time::Instant::now();
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
        ..Default::default()
    };
    let (queue_kbytes, limits) = produce::shares(args.memory_limit.0);
    if args.dry_run {
        summary.partitions = dry_run(args, &plan, &root, limits, &by_partition).await?;
        summary.seconds = started.elapsed().as_secs_f64();
        return Ok(summary);
    }

    let mut config = ClientConfig::new();
    config.set("client.id", "hubcap-replay");
    for (k, v) in &plan.settings {
        config.set(k, v);
    }
    config.set("bootstrap.servers", &plan.brokers);
    if args.verify {
        let verified = verify(args, &plan, &root, &config, limits, &by_partition).await?;
        summary.verified = Some(verified);
        return Ok(summary);
    }
    // Reading starts now, so that its first chunks are ready when Kafka is.
    let files: Vec<SourceFile> = by_partition.values().flatten().cloned().collect();
    let chunks = source::stream(root.clone(), files, plan.selection.clone(), limits);
    // Fences an earlier run of the job and ends its transaction first, so that the progress
    // read next is final.
    let (target, progress_exists) = tokio::task::block_in_place(|| -> Result<_, ReplayError> {
        let target = Target::open(
            &config,
            &plan.job,
            &args.progress_topic,
            !args.no_transactions,
            queue_kbytes,
        )?;
        let exists = target.partition_count(&args.progress_topic)?.is_some();
        Ok((target, exists))
    })?;
    if !progress_exists {
        progress::ensure_topic(&config, &args.progress_topic).await?;
    }
    let done =
        tokio::task::block_in_place(|| progress::read(&config, &args.progress_topic, &plan.job))?;
    check_partitions(args, &target, &by_partition)?;
    let all = by_partition.values().flatten();
    let mut meter = Meter::start(view, all.clone().count(), all.map(|f| f.size).sum());
    let p = Produce {
        args,
        target: &target,
    };
    summary.partitions = produce::produce_all(&p, &done, &by_partition, chunks, &mut meter).await?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// `--dry-run`: each partition's events read, counted and not produced.
async fn dry_run(
    args: &ReplayArgs,
    plan: &Plan,
    root: &Location,
    limits: ReadLimits,
    by_partition: &BTreeMap<(String, i32), Vec<SourceFile>>,
) -> Result<Vec<PartitionReplay>, ReplayError> {
    let mut partitions = Vec::new();
    for ((topic, partition), files) in by_partition {
        let mut p = partition_replay(args, topic, *partition, files);
        let mut chunks =
            source::stream(root.clone(), files.clone(), plan.selection.clone(), limits);
        while let Some(chunk) = chunks.recv().await {
            let events = chunk?.events;
            p.events += events.len() as u64;
            p.bytes += events.iter().map(source::event_bytes).sum::<u64>();
            p.next_offset = events.last().map(|e| e.offset + 1).or(p.next_offset);
            chunks.spent(events);
        }
        partitions.push(p);
    }
    Ok(partitions)
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
    limits: ReadLimits,
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
        let mut chunks =
            source::stream(root.clone(), files.clone(), plan.selection.clone(), limits);
        while let Some(chunk) = chunks.recv().await {
            let events = chunk?.events;
            for e in &events {
                let d = if timestamps {
                    verify::event_digest(e)
                } else {
                    verify::event_digest(&Event {
                        timestamp_ms: None,
                        ..e.clone()
                    })
                };
                archived.push((e.offset, d));
            }
            chunks.spent(events);
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

pub(super) fn partition_replay(
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
    fn the_summary_ends_with_the_totals_rate_and_skipped() {
        let part = |partition, events, skipped| PartitionReplay {
            topic: "clicks".into(),
            partition,
            target: "copy".into(),
            files: 2,
            events,
            skipped,
            bytes: events * 1000,
            next_offset: None,
        };
        let summary = ReplaySummary {
            job: "j".into(),
            partitions: vec![part(0, 3000, 10), part(1, 1000, 0)],
            seconds: 2.0,
            ..Default::default()
        };
        let table = summary.table();
        let last = table.lines().last().unwrap();
        assert_eq!(
            last,
            "replayed 4 files, 4000 events, 4.0 MB in 2 partitions in 2.0 s (2000 events/s); 10 events skipped as already replayed"
        );
    }

    #[test]
    fn a_memory_limit_is_shared_out_and_has_a_floor() {
        let (queue_kib, limits) = produce::shares(256 << 20);
        assert_eq!(queue_kib, 64 << 10, "a quarter for the producer's queue");
        assert_eq!(limits.chunk, 16 << 20, "a sixteenth per chunk");
        assert_eq!(
            limits.row_group,
            32 << 20,
            "an eighth for a Parquet row group"
        );
        let err = args(&["--memory-limit", "16MiB"]).plan().err().unwrap();
        assert!(err.to_string().contains("--memory-limit"), "{err}");
        assert!(args(&["--memory-limit", "32MiB"]).plan().is_ok());
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
