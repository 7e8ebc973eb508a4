//! Metrics and health: per-partition counters and gauges kept in atomics, rendered as Prometheus
//! text on `/metrics`, with `/healthz` and `/readyz`, when `--metrics-addr` is given.
//!
//! The registry is [`Metrics`]: one [`PartitionStats`] per partition this process was ever
//! assigned, which the partition worker updates per batch and per file (relaxed atomic stores;
//! no lock, no allocation per record), the source updates from librdkafka's statistics (high
//! watermarks) and the progress view reads. A scrape locks the registry's map only to list it.
//!
//! Revoked partitions: their counters stay (a counter must not go back or vanish while the
//! process lives; a partition assigned again continues them), their gauges (window, lag,
//! checkpoint age) disappear with the assignment, so sums over gauges count only what this
//! process owns now.
//!
//! The HTTP side ([`Server`]) is a small hand-written HTTP/1.1 responder: see `metrics/http.rs`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod http;
pub use http::{BindError, Server};

/// Histogram buckets (seconds) for uploads and checkpoint writes: from a local disk's
/// milliseconds to a slow store's retries.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// The store operations whose retries are counted (`hubcap_retries_total{operation}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Writing a data file (a whole-object put or starting a multipart upload).
    Upload,
    /// A whole-object write other than a data file's (empty files, Azure SDK checkpoints).
    Write,
    /// A compare-and-swap write (checkpoints, manifests).
    ConditionalWrite,
    /// Reading an object (checkpoints, manifests).
    Read,
    /// Checking whether an object exists.
    Head,
    /// A partition starting over from its checkpoint after its store retries ran out.
    PartitionRestart,
}

impl Operation {
    const ALL: [Operation; 6] = [
        Operation::Upload,
        Operation::Write,
        Operation::ConditionalWrite,
        Operation::Read,
        Operation::Head,
        Operation::PartitionRestart,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Operation::Upload => "upload",
            Operation::Write => "write",
            Operation::ConditionalWrite => "conditional_write",
            Operation::Read => "read",
            Operation::Head => "head",
            Operation::PartitionRestart => "partition_restart",
        }
    }
}

/// Retries per [`Operation`]. Process-wide, because the retry loop sits below every store
/// (one run per process; in-process tests that run several share them).
static RETRIES: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];

/// Counts one retry of `op`.
pub fn count_retry(op: Operation) {
    RETRIES[op as usize].fetch_add(1, Relaxed);
}

/// Retries of `op` so far.
pub fn retries(op: Operation) -> u64 {
    RETRIES[op as usize].load(Relaxed)
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// "Not known" for offsets and times.
const UNKNOWN: i64 = -1;

/// One partition's numbers. Offsets are "next offset" style (one past the last record).
#[derive(Debug)]
pub struct PartitionStats {
    pub topic: String,
    pub partition: i32,
    /// Workers of this process running for the partition (0: not assigned here now).
    owners: AtomicU32,
    records: AtomicU64,
    bytes: AtomicU64,
    files: AtomicU64,
    window_records: AtomicU64,
    window_bytes: AtomicU64,
    /// When the open window's file was started (ms), or `UNKNOWN` when no file is open.
    window_opened_ms: AtomicI64,
    /// Timestamp of the open file's first record (ms): the oldest record read and not archived.
    window_first_ts_ms: AtomicI64,
    /// Where this assignment started.
    start: AtomicI64,
    /// `--once`: the end offset.
    end: AtomicI64,
    /// The next offset to go into a window (records read so far).
    position: AtomicI64,
    /// The checkpoint's next offset: everything below is archived.
    archived: AtomicI64,
    /// The partition's high watermark as librdkafka last reported it.
    high_watermark: AtomicI64,
    /// When this process last wrote the partition's checkpoint (ms).
    checkpoint_ms: AtomicI64,
    /// When the partition last made progress (a file archived, or assigned) (ms).
    progress_ms: AtomicI64,
}

impl PartitionStats {
    fn new(topic: &str, partition: i32) -> Self {
        let unknown = || AtomicI64::new(UNKNOWN);
        PartitionStats {
            topic: topic.to_string(),
            partition,
            owners: AtomicU32::new(0),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            files: AtomicU64::new(0),
            window_records: AtomicU64::new(0),
            window_bytes: AtomicU64::new(0),
            window_opened_ms: unknown(),
            window_first_ts_ms: unknown(),
            start: unknown(),
            end: unknown(),
            position: unknown(),
            archived: unknown(),
            high_watermark: unknown(),
            checkpoint_ms: unknown(),
            progress_ms: unknown(),
        }
    }

    /// A worker took the partition: it starts at `start` (its checkpoint, or the partition's
    /// first offset), `checkpointed` when it claimed an existing checkpoint, and with `--once`
    /// runs up to `end`.
    pub fn assigned(&self, start: i64, checkpoint: Option<i64>, end: Option<i64>) {
        let now = now_ms();
        self.start.store(start, Relaxed);
        self.position.store(start, Relaxed);
        self.archived.store(checkpoint.unwrap_or(UNKNOWN), Relaxed);
        self.checkpoint_ms
            .store(if checkpoint.is_some() { now } else { UNKNOWN }, Relaxed);
        self.end.store(end.unwrap_or(UNKNOWN), Relaxed);
        self.progress_ms.store(now, Relaxed);
        self.window_closed();
        self.owners.fetch_add(1, Relaxed);
    }

    /// The worker let go of the partition (revoked, stopped, done or failed).
    pub fn released(&self) {
        self.window_closed();
        let _ = self
            .owners
            .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
    }

    pub fn is_assigned(&self) -> bool {
        self.owners.load(Relaxed) > 0
    }

    /// A file was started for the open window; its first record has timestamp `first_ts_ms`.
    pub fn window_opened(&self, first_ts_ms: Option<i64>) {
        self.window_opened_ms.store(now_ms(), Relaxed);
        self.window_first_ts_ms
            .store(first_ts_ms.unwrap_or(UNKNOWN), Relaxed);
    }

    /// The open window after a batch: `records` and `bytes` so far, `position` the next offset.
    pub fn window(&self, records: u64, bytes: u64, position: Option<i64>) {
        self.window_records.store(records, Relaxed);
        self.window_bytes.store(bytes, Relaxed);
        if let Some(p) = position {
            self.position.store(p, Relaxed);
        }
    }

    /// No file is open (published, aborted, or the worker stopped).
    pub fn window_closed(&self) {
        self.window_records.store(0, Relaxed);
        self.window_bytes.store(0, Relaxed);
        self.window_opened_ms.store(UNKNOWN, Relaxed);
        self.window_first_ts_ms.store(UNKNOWN, Relaxed);
    }

    /// The checkpoint was written, with `next_offset`; `archived` when it moved past data (not
    /// an intent).
    pub fn checkpointed(&self, next_offset: i64, archived: bool) {
        let now = now_ms();
        self.checkpoint_ms.store(now, Relaxed);
        if archived {
            self.archived.store(next_offset, Relaxed);
            self.position.fetch_max(next_offset, Relaxed);
            self.progress_ms.store(now, Relaxed);
        }
    }

    /// A file of `records` records and `bytes` bytes is durable and checkpointed.
    pub fn file_archived(&self, records: u64, bytes: u64) {
        self.files.fetch_add(1, Relaxed);
        self.records.fetch_add(records, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
        self.window_closed();
    }

    pub fn set_high_watermark(&self, high: i64) {
        self.high_watermark.store(high, Relaxed);
    }

    /// A consistent-enough copy for rendering and decisions.
    pub fn snapshot(&self) -> PartitionSnapshot {
        let known = |a: &AtomicI64| Some(a.load(Relaxed)).filter(|v| *v != UNKNOWN);
        PartitionSnapshot {
            topic: self.topic.clone(),
            partition: self.partition,
            assigned: self.is_assigned(),
            records: self.records.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            files: self.files.load(Relaxed),
            window_records: self.window_records.load(Relaxed),
            window_bytes: self.window_bytes.load(Relaxed),
            window_opened_ms: known(&self.window_opened_ms),
            window_first_ts_ms: known(&self.window_first_ts_ms),
            start: known(&self.start),
            end: known(&self.end),
            position: known(&self.position),
            archived: known(&self.archived),
            high_watermark: known(&self.high_watermark),
            checkpoint_ms: known(&self.checkpoint_ms),
            progress_ms: known(&self.progress_ms),
        }
    }
}

/// A partition's numbers at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionSnapshot {
    pub topic: String,
    pub partition: i32,
    pub assigned: bool,
    pub records: u64,
    pub bytes: u64,
    pub files: u64,
    pub window_records: u64,
    pub window_bytes: u64,
    pub window_opened_ms: Option<i64>,
    pub window_first_ts_ms: Option<i64>,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub position: Option<i64>,
    pub archived: Option<i64>,
    pub high_watermark: Option<i64>,
    pub checkpoint_ms: Option<i64>,
    pub progress_ms: Option<i64>,
}

impl PartitionSnapshot {
    /// Where archiving starts again after a crash: the checkpoint, else where the worker began.
    fn archived_or_start(&self) -> Option<i64> {
        self.archived.or(self.start)
    }

    /// Records in Kafka not yet archived: high watermark − next offset to archive.
    pub fn lag_records(&self) -> Option<i64> {
        let high = self.high_watermark?;
        Some((high - self.archived_or_start()?).max(0))
    }

    /// Seconds since the oldest record read but not archived was written to Kafka; 0 when every
    /// record read is archived.
    pub fn lag_seconds(&self, now_ms: i64) -> f64 {
        self.window_first_ts_ms.map_or(0.0, |ts| secs(now_ms - ts))
    }

    /// Whether the partition has work it has not archived yet.
    fn behind(&self) -> bool {
        let target = self.high_watermark.max(self.end);
        let archived = self.archived_or_start().unwrap_or(0);
        self.window_records > 0 || target.is_some_and(|t| t > archived)
    }
}

fn secs(ms: i64) -> f64 {
    (ms.max(0) as f64) / 1000.0
}

/// A topic's state as the source sees it.
#[derive(Debug, Default)]
pub struct TopicStats {
    /// The consumer received an assignment (possibly empty): it joined the group.
    joined: AtomicBool,
    /// The brokers look unreachable.
    kafka_down: AtomicBool,
    /// Partitions stopped because another instance took them over (checkpoint fenced).
    fenced: AtomicU64,
    /// The stored completeness watermark (ms since the epoch), 0 until one is known.
    watermark_ms: AtomicI64,
}

impl TopicStats {
    pub fn joined(&self) {
        self.joined.store(true, Relaxed);
    }
    pub fn kafka_down(&self, down: bool) {
        self.kafka_down.store(down, Relaxed);
    }
    pub fn fenced(&self) {
        self.fenced.fetch_add(1, Relaxed);
    }
    /// The topic's completeness watermark is `ms` (see `state::watermark`).
    pub fn watermark(&self, ms: i64) {
        self.watermark_ms.fetch_max(ms, Relaxed);
    }
}

/// A latency histogram with fixed buckets: counts per bucket, sum in microseconds.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| s <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        header(out, name, help, "histogram");
        let mut cumulative = 0;
        for (b, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// The registry of a run.
#[derive(Debug)]
pub struct Metrics {
    partitions: Mutex<BTreeMap<(String, i32), Arc<PartitionStats>>>,
    topics: Mutex<BTreeMap<String, Arc<TopicStats>>>,
    pub upload_duration: Histogram,
    pub checkpoint_duration: Histogram,
    /// A partition with work that archived nothing for this long makes `/readyz` fail.
    stall_after: Duration,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(Duration::from_secs(300 + 120))
    }
}

impl Metrics {
    pub fn new(stall_after: Duration) -> Self {
        Metrics {
            partitions: Mutex::default(),
            topics: Mutex::default(),
            upload_duration: Histogram::default(),
            checkpoint_duration: Histogram::default(),
            stall_after,
        }
    }

    /// A partition's stats, created at its first assignment.
    pub fn partition(&self, topic: &str, partition: i32) -> Arc<PartitionStats> {
        let mut map = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        map.entry((topic.to_string(), partition))
            .or_insert_with(|| Arc::new(PartitionStats::new(topic, partition)))
            .clone()
    }

    /// A partition's stats if it was ever assigned here.
    pub fn existing(&self, topic: &str, partition: i32) -> Option<Arc<PartitionStats>> {
        let map = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(topic.to_string(), partition)).cloned()
    }

    /// A topic's stats; every topic of the run is registered at start.
    pub fn topic(&self, topic: &str) -> Arc<TopicStats> {
        let mut map = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(topic.to_string()).or_default().clone()
    }

    /// Every partition's numbers, ordered by topic and partition.
    pub fn snapshot(&self) -> Vec<PartitionSnapshot> {
        let all: Vec<_> = {
            let map = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
            map.values().cloned().collect()
        };
        all.iter().map(|p| p.snapshot()).collect()
    }

    fn topic_snapshot(&self) -> Vec<TopicSnapshot> {
        let map = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .map(|(name, t)| TopicSnapshot {
                name: name.clone(),
                joined: t.joined.load(Relaxed),
                kafka_down: t.kafka_down.load(Relaxed),
                fenced: t.fenced.load(Relaxed),
                watermark_ms: Some(t.watermark_ms.load(Relaxed)).filter(|ms| *ms > 0),
            })
            .collect()
    }

    /// The Prometheus text exposition (format 0.0.4) at `now_ms`.
    pub fn render(&self, now_ms: i64) -> String {
        let parts = self.snapshot();
        let topics = self.topic_snapshot();
        let mut out = String::with_capacity(4096 + parts.len() * 1024);
        let assigned: Vec<&PartitionSnapshot> = parts.iter().filter(|p| p.assigned).collect();

        type Counter = fn(&PartitionSnapshot) -> u64;
        let counters: [(&str, &str, Counter); 3] = [
            (
                "hubcap_records_archived_total",
                "Records in files that are durable and checkpointed.",
                |p| p.records,
            ),
            (
                "hubcap_bytes_archived_total",
                "Bytes of the files archived (durable and checkpointed).",
                |p| p.bytes,
            ),
            (
                "hubcap_files_archived_total",
                "Files archived (durable and checkpointed).",
                |p| p.files,
            ),
        ];
        for (name, help, get) in counters {
            header(&mut out, name, help, "counter");
            for p in &parts {
                sample(&mut out, name, p, get(p) as f64);
            }
        }

        type Gauge = fn(&PartitionSnapshot, i64) -> Option<f64>;
        let gauges: [(&str, &str, Gauge); 7] = [
            (
                "hubcap_window_age_seconds",
                "Age of the open window's file (0: no file open).",
                |p, now| Some(p.window_opened_ms.map_or(0.0, |t| secs(now - t))),
            ),
            (
                "hubcap_window_records",
                "Records in the open window's file.",
                |p, _| Some(p.window_records as f64),
            ),
            (
                "hubcap_window_bytes",
                "Encoded bytes in the open window's file.",
                |p, _| Some(p.window_bytes as f64),
            ),
            (
                "hubcap_consumer_lag_records",
                "High watermark minus the next offset to archive.",
                |p, _| p.lag_records().map(|n| n as f64),
            ),
            (
                "hubcap_consumer_lag_seconds",
                "Age of the oldest record read and not yet archived (0: none).",
                |p, now| Some(p.lag_seconds(now)),
            ),
            (
                "hubcap_checkpoint_age_seconds",
                "Time since this process last wrote the partition's checkpoint.",
                |p, now| p.checkpoint_ms.map(|t| secs(now - t)),
            ),
            (
                "hubcap_checkpoint_offset",
                "The checkpoint's next offset: every offset below it is archived.",
                |p, _| p.archived.map(|n| n as f64),
            ),
        ];
        for (name, help, get) in gauges {
            header(&mut out, name, help, "gauge");
            for p in &assigned {
                if let Some(v) = get(p, now_ms) {
                    sample(&mut out, name, p, v);
                }
            }
        }

        let name = "hubcap_assigned_partitions";
        header(
            &mut out,
            name,
            "Partitions of the topic this process archives now.",
            "gauge",
        );
        for t in &topics {
            let n = assigned.iter().filter(|p| p.topic == t.name).count();
            let _ = writeln!(out, "{name}{{topic=\"{}\"}} {n}", escape(&t.name));
        }
        let name = "hubcap_fenced_partitions_total";
        header(
            &mut out,
            name,
            "Partitions stopped because another instance took them over.",
            "counter",
        );
        for t in &topics {
            let _ = writeln!(out, "{name}{{topic=\"{}\"}} {}", escape(&t.name), t.fenced);
        }
        let name = "hubcap_kafka_reachable";
        header(
            &mut out,
            name,
            "1 while the topic's brokers answer, 0 while they look unreachable.",
            "gauge",
        );
        for t in &topics {
            let up = u8::from(!t.kafka_down);
            let _ = writeln!(out, "{name}{{topic=\"{}\"}} {up}", escape(&t.name));
        }
        let name = "hubcap_watermark_timestamp_seconds";
        header(
            &mut out,
            name,
            "The topic's completeness watermark: every event before this time (Unix seconds) is archived, in every partition.",
            "gauge",
        );
        for t in &topics {
            if let Some(ms) = t.watermark_ms {
                let _ = writeln!(out, "{name}{{topic=\"{}\"}} {}", escape(&t.name), secs(ms));
            }
        }
        let name = "hubcap_retries_total";
        header(
            &mut out,
            name,
            "Store operations retried after a transient error.",
            "counter",
        );
        for op in Operation::ALL {
            let _ = writeln!(
                out,
                "{name}{{operation=\"{}\"}} {}",
                op.label(),
                retries(op)
            );
        }
        self.upload_duration.render(
            &mut out,
            "hubcap_upload_duration_seconds",
            "Time to publish a file (its last bytes and the object's completion).",
        );
        self.checkpoint_duration.render(
            &mut out,
            "hubcap_checkpoint_duration_seconds",
            "Time to write a checkpoint (compare-and-swap, retries included).",
        );
        out
    }

    /// `/readyz`: `Ok` with a summary, or the reasons the process is not ready.
    pub fn readiness(&self, now_ms: i64) -> Result<String, Vec<String>> {
        readiness(
            &self.topic_snapshot(),
            &self.snapshot(),
            now_ms,
            self.stall_after,
        )
    }
}

#[derive(Debug, Clone, Default)]
struct TopicSnapshot {
    name: String,
    joined: bool,
    kafka_down: bool,
    fenced: u64,
    watermark_ms: Option<i64>,
}

/// Ready: every topic's consumer joined the group (an assignment arrived, even an empty one),
/// its brokers answer, and no assigned partition with work (records behind or an open window)
/// went `stall_after` without archiving a file.
fn readiness(
    topics: &[TopicSnapshot],
    parts: &[PartitionSnapshot],
    now_ms: i64,
    stall_after: Duration,
) -> Result<String, Vec<String>> {
    let mut reasons = Vec::new();
    for t in topics {
        if !t.joined {
            reasons.push(format!(
                "topic {}: not in the consumer group yet (no assignment)",
                t.name
            ));
        }
        if t.kafka_down {
            reasons.push(format!("topic {}: kafka unreachable", t.name));
        }
    }
    let stall_ms = i64::try_from(stall_after.as_millis()).unwrap_or(i64::MAX);
    let assigned: Vec<_> = parts.iter().filter(|p| p.assigned).collect();
    for p in &assigned {
        let idle = now_ms - p.progress_ms.unwrap_or(now_ms);
        if p.behind() && idle > stall_ms {
            reasons.push(format!(
                "topic {} partition {}: no file archived for {}s with records behind (lag {})",
                p.topic,
                p.partition,
                idle / 1000,
                p.lag_records().map_or("unknown".into(), |n| n.to_string())
            ));
        }
    }
    if reasons.is_empty() {
        Ok(format!(
            "ready: {} partitions assigned, none stuck",
            assigned.len()
        ))
    } else {
        Err(reasons)
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, p: &PartitionSnapshot, v: f64) {
    let _ = writeln!(
        out,
        "{name}{{topic=\"{}\",partition=\"{}\"}} {v}",
        escape(&p.topic),
        p.partition
    );
}

/// A label value as the text format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests;
