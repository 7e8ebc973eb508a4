//! The produce loop of a replay: the archive's files read in bounded chunks a chunk ahead
//! ([`source::stream`]), each event produced to its target, and transactions that span
//! partitions and files, committed with the progress of the partitions they advanced.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::job::{PartitionReplay, Partitioning, ReplayArgs, TimestampMode};
use super::meter::Meter;
use super::progress::Progress;
use super::source::{self, Chunks, ReadLimits, SourceFile};
use super::target::{Outgoing, Target};
use super::ReplayError;

/// Record bytes (keys, values, headers) per transaction at most.
const TXN_BYTES: usize = 1 << 30;
/// How long a transaction stays open at most: the coordinator aborts one open longer than
/// `transaction.timeout.ms` (60 s), and a slow target takes long for the other bounds.
const TXN_AGE: Duration = Duration::from_secs(20);

/// The shares of a `--memory-limit`: the producer's queue (in KiB) a quarter (librdkafka holds
/// each queued event with its bookkeeping, and acknowledged ones until they are reported); chunks
/// of events a sixteenth each (one produced, one waiting, one being read, each also held as its
/// file's bytes while decoded: about three eighths); a Parquet row group held an eighth; the
/// rest for the process (threads, the allocator's free pages). Measured: 600,000 events of
/// 1 KiB peak at 235 MiB resident with the default 256 MiB, at 52 MiB with 32 MiB.
pub fn shares(memory_limit: u64) -> (usize, ReadLimits) {
    let limit = usize::try_from(memory_limit).unwrap_or(usize::MAX);
    let limits = ReadLimits {
        chunk: limit / 16,
        row_group: memory_limit / 8,
        memory_limit,
    };
    (limit / 4 / 1024, limits)
}

/// What the loop produces with.
pub struct Produce<'a> {
    /// Where events go and how: partitioning, timestamps, the header, transaction size.
    pub args: &'a ReplayArgs,
    pub target: &'a Target,
}

/// The events of the open transaction, by archived partition: what its commit makes final.
#[derive(Default)]
struct Txn {
    /// (target topic, next offset, events, bytes) per archived (topic, partition).
    advanced: BTreeMap<(String, i32), (String, i64, u64, u64)>,
    events: usize,
    bytes: usize,
    /// When its first event was sent.
    opened: Option<Instant>,
}

impl Txn {
    /// Whether it is time to commit: `--transaction-events`, [`TXN_BYTES`] or [`TXN_AGE`].
    fn full(&self, events: usize) -> bool {
        self.events >= events
            || self.bytes >= TXN_BYTES
            || self.opened.is_some_and(|t| t.elapsed() >= TXN_AGE)
    }
}

/// Produces every partition's files in order, read as `chunks` (a [`source::stream`] of the
/// files of `by_partition` in its order, started before Kafka was set up, so that the first
/// chunks are ready); each partition's report.
pub async fn produce_all(
    p: &Produce<'_>,
    done: &Progress,
    by_partition: &BTreeMap<(String, i32), Vec<SourceFile>>,
    mut chunks: Chunks,
    meter: &mut Meter,
) -> Result<Vec<PartitionReplay>, ReplayError> {
    let args = p.args;
    let mut report: BTreeMap<(String, i32), PartitionReplay> = BTreeMap::new();
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for ((topic, partition), files) in by_partition {
        let mut r = super::job::partition_replay(args, topic, *partition, files);
        let key = (topic.clone(), *partition);
        r.next_offset = done.next.get(&key).copied();
        if let Some(n) = r.next_offset {
            next.insert(key.clone(), n);
        }
        report.insert(key, r);
    }
    let files: Vec<SourceFile> = by_partition.values().flatten().cloned().collect();
    let mut txn = Txn::default();
    let mut header = String::new();
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk?;
        let f = &files[chunk.file];
        let key = (f.topic.clone(), f.partition);
        // What an earlier run committed, and offsets already produced from an earlier file.
        let from = next.get(&key).copied();
        let mut events = chunk.events;
        let before = events.len();
        events.retain(|e| from.is_none_or(|n| e.offset >= n));
        let r = report
            .get_mut(&key)
            .expect("every file's partition is reported");
        r.skipped += (before - events.len()) as u64;
        let target_topic = r.target.clone();
        let partition = (args.partitioning == Partitioning::Same).then_some(f.partition);
        // One blocking section per chunk: librdkafka's calls block (on a full queue, a commit).
        tokio::task::block_in_place(|| -> Result<(), ReplayError> {
            for e in &events {
                if txn.events == 0 {
                    p.target.begin()?;
                    txn.opened = Some(Instant::now());
                }
                if !args.no_source_header {
                    header.clear();
                    let _ = write!(header, "{}/{}/{}", f.topic, f.partition, e.offset);
                }
                p.target.send(&Outgoing {
                    topic: &target_topic,
                    partition,
                    event: e,
                    timestamp_ms: match args.timestamp {
                        TimestampMode::Archived => e.timestamp_ms,
                        TimestampMode::Now => None,
                    },
                    source: (!args.no_source_header).then_some(header.as_str()),
                })?;
                let size = source::event_bytes(e);
                let entry = txn
                    .advanced
                    .entry(key.clone())
                    .or_insert_with(|| (target_topic.clone(), 0, 0, 0));
                entry.1 = e.offset + 1;
                entry.2 += 1;
                entry.3 += size;
                txn.events += 1;
                txn.bytes += size as usize;
                if txn.full(args.transaction_events) {
                    commit(p.target, &mut txn, &mut report)?;
                }
            }
            Ok(())
        })?;
        if let Some(last) = events.last() {
            next.insert(key, last.offset + 1);
        }
        meter.advance(chunk.read, events.len() as u64, chunk.last);
        chunks.spent(events);
    }
    if txn.events > 0 {
        tokio::task::block_in_place(|| commit(p.target, &mut txn, &mut report))?;
    }
    meter.finish();
    for r in report.values() {
        tracing::info!(topic = %r.topic, partition = r.partition, events = r.events, skipped = r.skipped, target = %r.target, "replayed the partition");
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
        if let Some(r) = report.get_mut(&key) {
            r.events += events;
            r.bytes += bytes;
            r.next_offset = Some(next);
        }
    }
    *txn = Txn::default();
    Ok(())
}
