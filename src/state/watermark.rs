//! Completeness watermarks: for each topic, one small JSON document under `_watermarks/` saying
//! up to which time every partition's events are in durable files, so that a scheduled job can
//! wait for "the hour 13:00–14:00" before it reads it.
//!
//! A partition is complete up to:
//! - the time of the check, when its checkpoint is at its end offset (an idle partition, or one
//!   that caught up): every offset below the end is in a durable file, and whatever arrives
//!   after the check is stamped later. The time is taken before the end offsets are asked for.
//! - the timestamp of its last archived record, when records wait below the end offset: every
//!   record before that one is archived, and the ones after it are not older (Kafka's
//!   `LogAppendTime`, Event Hubs' enqueued time; producers' `CreateTime` may arrive late).
//! - nothing, when it has records but no checkpoint yet.
//!
//! The topic's watermark is the least of its partitions'. It is computed from the checkpoints
//! in the store and the brokers' end offsets only, never from what a process holds in memory,
//! so a crash cannot move it past what is durable; and it only moves forward: each write is a
//! compare-and-swap that keeps the later of the stored and the computed time, so any number of
//! instances may compute it. Records produced later with older timestamps (`CreateTime` set by
//! a producer) may land before it: it is a promise about the past as the brokers stamp it.

use bytes::Bytes;
use chrono::DateTime;
use object_store::path::Path;
use object_store::UpdateVersion;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::state::checkpoint::{CheckpointError, CheckpointStore};
use crate::state::manifest::time_text;
use crate::store::{get_versioned, put_cas, CasError, Location};

/// Where watermarks go, under `--output`: `_watermarks/{group}/{topic}.json`.
pub const DIR: &str = "_watermarks";

/// Compare-and-swap attempts before a write gives up for this round (others wrote meanwhile).
const ATTEMPTS: usize = 5;
/// How far ahead of a check's time a stored watermark may be (another instance's clock) before
/// it is taken for a mistake and computed again.
const FUTURE: i64 = 5 * 60 * 1000;

/// A watermark document as stored, tagged with its format version.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "version")]
enum Persisted {
    #[serde(rename = "1")]
    V1(Watermark),
}

/// Up to when a topic is archived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    pub group: String,
    pub topic: String,
    /// Every event of the topic with a timestamp before this time (RFC 3339, UTC) is in a
    /// durable file. `null` while a partition with records has no checkpoint.
    pub complete_until: Option<String>,
    /// The same, in milliseconds since the epoch.
    pub complete_until_ms: Option<i64>,
    /// Each partition's part, as of `updated_at` (a part may be earlier than
    /// `complete_until`, which never moves back).
    pub partitions: Vec<PartitionMark>,
    /// When the check that wrote this document started (RFC 3339, UTC).
    pub updated_at: String,
    /// The instance that wrote it.
    pub writer: String,
}

/// One partition's part of a [`Watermark`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMark {
    pub partition: i32,
    /// Every event of the partition before this time (ms since the epoch) is archived.
    pub complete_until_ms: Option<i64>,
    /// Why: `caught-up` (the checkpoint is at the end offset; complete up to the check),
    /// `behind` (records wait; complete up to the last archived one), `not-started`, or
    /// `past-the-end` (the checkpoint is past the end offset: a re-created or truncated topic;
    /// complete up to the last archived record).
    pub basis: Basis,
    /// The checkpoint's next offset, if there is a checkpoint.
    pub next_offset: Option<i64>,
    /// The partition's end offset (high watermark) at the check.
    pub end_offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    CaughtUp,
    Behind,
    NotStarted,
    PastTheEnd,
}

/// What the watermark of one partition is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionState {
    pub partition: i32,
    /// The partition's first and end offsets at the check.
    pub low: i64,
    pub high: i64,
    /// From its checkpoint: the next offset to archive and the last archived record's time.
    pub next_offset: Option<i64>,
    pub last_time_ms: Option<i64>,
}

/// One partition's part, from its state at the check that started at `checked_ms`.
pub fn mark(s: &PartitionState, checked_ms: i64) -> PartitionMark {
    let (basis, until) = match s.next_offset {
        // Past the end: the topic was re-created or truncated under the checkpoint (the run
        // refuses to go on); its time stays that of its last archived record.
        Some(next) if next > s.high => (Basis::PastTheEnd, s.last_time_ms),
        Some(next) if next == s.high => (Basis::CaughtUp, Some(checked_ms)),
        None if s.low >= s.high => (Basis::CaughtUp, Some(checked_ms)),
        Some(_) => (Basis::Behind, s.last_time_ms),
        None => (Basis::NotStarted, None),
    };
    PartitionMark {
        partition: s.partition,
        complete_until_ms: until,
        basis,
        next_offset: s.next_offset,
        end_offset: s.high,
    }
}

/// The least of the partitions' times; `None` if any partition has none (or there is none).
pub fn least(marks: &[PartitionMark]) -> Option<i64> {
    let mut times = marks.iter().map(|m| m.complete_until_ms);
    let first = times.next()??;
    times.try_fold(first, |least, t| Some(least.min(t?)))
}

#[derive(Debug, thiserror::Error)]
pub enum WatermarkError {
    #[error("watermark {path} is not valid JSON of a known format ({reason}); remove it and hubcap writes it again at the next check")]
    Corrupt { path: String, reason: String },
    #[error("watermark {path} is for group {found_group:?} and topic {found_topic:?}; was it copied or renamed?")]
    Mismatch {
        path: String,
        found_group: String,
        found_topic: String,
    },
    #[error("watermark {path}: {source}")]
    Store { path: String, source: CasError },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// The watermarks of one consumer group's topics.
#[derive(Debug, Clone)]
pub struct Watermarks {
    location: Location,
    group: String,
}

impl Watermarks {
    /// The watermarks under `output`'s `_watermarks/`.
    pub fn new(output: &Location, group: &str) -> Self {
        Watermarks {
            location: output.child(DIR),
            group: group.to_string(),
        }
    }

    /// `{output}/_watermarks/{group}/{topic}.json`
    pub fn path(&self, topic: &str) -> Path {
        self.location
            .prefix
            .clone()
            .join(self.group.as_str())
            .join(format!("{topic}.json"))
    }

    pub async fn load(
        &self,
        topic: &str,
    ) -> Result<Option<(Watermark, UpdateVersion)>, WatermarkError> {
        let path = self.path(topic);
        let store = |source| WatermarkError::Store {
            path: path.to_string(),
            source,
        };
        let Some((data, version)) = get_versioned(&self.location, &path).await.map_err(store)?
        else {
            return Ok(None);
        };
        let w = decode(&path, &data)?;
        if w.group != self.group || w.topic != topic {
            return Err(WatermarkError::Mismatch {
                path: path.to_string(),
                found_group: w.group,
                found_topic: w.topic,
            });
        }
        Ok(Some((w, version)))
    }

    /// Computes `topic`'s watermark from its checkpoints and `ends` (each partition's first
    /// and end offsets, asked for after `checked_ms`) and stores it when a partition's part
    /// changed, keeping the later of the stored and the computed time: records that arrive
    /// stamped before the stored time (late `CreateTime`s) do not take it back. Returns the
    /// stored document afterwards.
    pub async fn advance(
        &self,
        checkpoints: &CheckpointStore,
        topic: &str,
        ends: &[(i32, i64, i64)],
        checked_ms: i64,
        writer: &str,
    ) -> Result<Watermark, WatermarkError> {
        let mut marks = Vec::with_capacity(ends.len());
        for &(partition, low, high) in ends {
            let c = checkpoints.load(topic, partition).await?;
            let c = c.map(|v| v.checkpoint);
            let state = PartitionState {
                partition,
                low,
                high,
                next_offset: c.as_ref().map(|c| c.next_offset),
                last_time_ms: c.as_ref().and_then(|c| c.last_time_ms),
            };
            marks.push(mark(&state, checked_ms));
        }
        let until = least(&marks);
        let computed = Watermark {
            group: self.group.clone(),
            topic: topic.to_string(),
            complete_until: time_text(until),
            complete_until_ms: until,
            partitions: marks,
            updated_at: time_text(Some(checked_ms)).unwrap_or_default(),
            writer: writer.to_string(),
        };
        let path = self.path(topic);
        for _ in 0..ATTEMPTS {
            let (doc, expected) = match self.load(topic).await? {
                Some((mut stored, version)) => {
                    if stored
                        .complete_until_ms
                        .is_some_and(|t| t > checked_ms + FUTURE)
                    {
                        // No check can have seen that time yet: edited by hand, or written
                        // by a clock far ahead. Computed again rather than kept forever.
                        warn!(%topic, stored = ?stored.complete_until, "the stored watermark is in the future; it is replaced by the computed one");
                        stored.complete_until_ms = None;
                    }
                    let until = stored.complete_until_ms.max(until);
                    if until == stored.complete_until_ms && stored.partitions == computed.partitions
                    {
                        return Ok(stored);
                    }
                    let doc = Watermark {
                        complete_until: time_text(until),
                        complete_until_ms: until,
                        ..computed.clone()
                    };
                    (doc, Some(version))
                }
                None => (computed.clone(), None),
            };
            let body = serde_json::to_vec_pretty(&Persisted::V1(doc.clone()))
                .map_err(|e| store_err(&path, CasError::Io(e.into())))?;
            match put_cas(&self.location, &path, Bytes::from(body), expected).await {
                Ok(_) => return Ok(doc),
                Err(CasError::Conflict) => continue,
                Err(e) => return Err(store_err(&path, e)),
            }
        }
        // Others kept writing: theirs stands for this round.
        Ok(self.load(topic).await?.map_or(computed, |(w, _)| w))
    }
}

fn store_err(path: &Path, source: CasError) -> WatermarkError {
    WatermarkError::Store {
        path: path.to_string(),
        source,
    }
}

/// A stored document, checked for its format version.
pub fn decode(path: &Path, data: &[u8]) -> Result<Watermark, WatermarkError> {
    let corrupt = |reason: String| WatermarkError::Corrupt {
        path: path.to_string(),
        reason,
    };
    let Persisted::V1(w) = serde_json::from_slice(data).map_err(|e| corrupt(e.to_string()))?;
    let out_of_range = |ms: i64| DateTime::from_timestamp_millis(ms).is_none();
    if w.complete_until_ms.is_some_and(out_of_range) {
        return Err(corrupt("complete_until_ms is out of range".into()));
    }
    Ok(w)
}

#[cfg(test)]
mod tests;
