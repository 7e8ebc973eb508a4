//! The checkpoint store: one small, versioned JSON document per (group, topic, partition), written
//! with compare-and-swap.
//!
//! Publishing a file takes two checkpoint writes around the upload's completion:
//! 1. *intent*: `pending` names the file and its offset range (`next_offset` unchanged);
//! 2. the upload completes (the object appears atomically);
//! 3. *commit*: `next_offset` moves past the file and `pending` is cleared.
//!
//! A crash between 1 and 3 leaves an intent. The next owner checks whether the named object
//! exists: if it does, the file is complete (uploads are atomic) and the checkpoint rolls forward;
//! if not, the first window of the replay is written again to the same name with the same
//! records, so even a late upload by a paused former owner lands identical bytes. Every write is
//! conditional on the version read, so a former owner's writes fail once the partition moved.

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStoreExt, UpdateVersion};
use serde::{Deserialize, Serialize};

use crate::observe::clock::Clock;
use crate::store::{get_versioned, put_cas, CasError, Location};

/// A checkpoint document as stored, tagged with its format version.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "version")]
enum Persisted {
    #[serde(rename = "1")]
    V1(Checkpoint),
}

/// Where a partition stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    /// The next offset to archive: every offset below it is in exactly one durable file.
    pub next_offset: i64,
    /// A file being published: its intent was written, its commit not yet.
    pub pending: Option<PendingFile>,
    /// The instance that wrote this checkpoint last.
    pub owner: String,
    /// Kafka's id of the topic these offsets belong to (KIP-516, base64), when the brokers give
    /// one: a topic deleted and re-created under the same name gets a new id and starts its
    /// offsets over, and hubcap refuses to continue onto it. Absent in older checkpoints (taken
    /// on at the next claim) and with brokers that give no id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    /// The Kafka timestamp (epoch ms) of the last archived record, for the completeness
    /// watermark (`state::watermark`). Absent in older checkpoints and until a file is archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_time_ms: Option<i64>,
    /// When it was written (RFC 3339, UTC).
    pub updated_at: String,
}

/// A file whose upload was about to complete when the checkpoint was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFile {
    /// Object name relative to the output location.
    pub path: String,
    pub first_offset: i64,
    pub last_offset: i64,
    pub events: u64,
    pub size: u64,
    /// Kafka timestamps (epoch ms) of the first and last records.
    pub first_time_ms: Option<i64>,
    pub last_time_ms: Option<i64>,
    /// The manifest object (under `_manifests/`) that lists the file.
    pub manifest: String,
    /// The file's CRC32C (see `store::upload::crc32c_text`); absent in older checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<String>,
    /// The Avro block or Parquet row group size it was written with, so that a replay writes
    /// the same blocks; absent in older checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_bytes: Option<u64>,
    /// The topic's id when the file was written (see [`Checkpoint::topic_id`]), for its
    /// manifest line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
}

/// A checkpoint with the version it was read or written at.
#[derive(Debug, Clone)]
pub struct Versioned {
    pub checkpoint: Checkpoint,
    pub version: UpdateVersion,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {path} was written by another instance: {topic}/{partition} now belongs to it, so this instance stops the partition")]
    Fenced {
        path: String,
        topic: String,
        partition: i32,
    },
    #[error("checkpoint {path} is not valid JSON of a known format ({reason}); fix or remove it by hand, hubcap will not guess where {topic}/{partition} stands")]
    Corrupt {
        path: String,
        topic: String,
        partition: i32,
        reason: String,
    },
    #[error("checkpoint {path} has format version {found}, newer than this hubcap understands (1); upgrade hubcap")]
    NewerVersion { path: String, found: String },
    #[error("checkpoint {path} is for {found_topic}/{found_partition} in group {found_group:?}, not {topic}/{partition}; was it copied or renamed?")]
    Mismatch {
        path: String,
        topic: String,
        partition: i32,
        found_group: String,
        found_topic: String,
        found_partition: i32,
    },
    #[error("checkpoint {path}: {source}")]
    Store { path: String, source: CasError },
}

impl CheckpointError {
    /// Whether this error means the partition moved to another owner (stop it, not the process).
    pub fn is_fenced(&self) -> bool {
        matches!(self, CheckpointError::Fenced { .. })
    }
}

/// Checkpoints of one consumer group.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    location: Location,
    group: String,
    clock: Clock,
}

impl CheckpointStore {
    pub fn new(location: Location, group: &str) -> Self {
        CheckpointStore {
            location,
            group: group.to_string(),
            clock: Clock::system(),
        }
    }

    /// Stamps new documents with `clock`'s wall time.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// `{prefix}/{group}/{topic}/{partition}.json`
    pub fn path(&self, topic: &str, partition: i32) -> Path {
        self.location
            .prefix
            .clone()
            .join(self.group.as_str())
            .join(topic)
            .join(format!("{partition}.json"))
    }

    pub async fn load(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<Versioned>, CheckpointError> {
        let path = self.path(topic, partition);
        let found = get_versioned(&self.location, &path)
            .await
            .map_err(|source| CheckpointError::Store {
                path: path.to_string(),
                source,
            })?;
        let Some((data, version)) = found else {
            return Ok(None);
        };
        let checkpoint = self.decode(&path, topic, partition, &data)?;
        Ok(Some(Versioned {
            checkpoint,
            version,
        }))
    }

    fn decode(
        &self,
        path: &Path,
        topic: &str,
        partition: i32,
        data: &[u8],
    ) -> Result<Checkpoint, CheckpointError> {
        let corrupt = |reason: String| CheckpointError::Corrupt {
            path: path.to_string(),
            topic: topic.into(),
            partition,
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_slice(data).map_err(|e| corrupt(e.to_string()))?;
        let version = value
            .get("version")
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
        match version.as_deref() {
            Some("1") => {}
            Some(found) if found.parse::<u64>().is_ok_and(|n| n > 1) => {
                return Err(CheckpointError::NewerVersion {
                    path: path.to_string(),
                    found: found.into(),
                })
            }
            _ => return Err(corrupt("no known \"version\" field".into())),
        }
        let Persisted::V1(c) = serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
        if c.topic != topic || c.partition != partition || c.group != self.group {
            return Err(CheckpointError::Mismatch {
                path: path.to_string(),
                topic: topic.into(),
                partition,
                found_group: c.group,
                found_topic: c.topic,
                found_partition: c.partition,
            });
        }
        Ok(c)
    }

    /// Writes `checkpoint` if the stored one is still at `expected` (`None`: if none exists).
    pub async fn save(
        &self,
        checkpoint: &Checkpoint,
        expected: Option<UpdateVersion>,
    ) -> Result<UpdateVersion, CheckpointError> {
        let path = self.path(&checkpoint.topic, checkpoint.partition);
        let body = serde_json::to_vec_pretty(&Persisted::V1(checkpoint.clone())).map_err(|e| {
            CheckpointError::Store {
                path: path.to_string(),
                source: CasError::Io(e.into()),
            }
        })?;
        match put_cas(&self.location, &path, Bytes::from(body), expected).await {
            Ok(v) => Ok(v),
            Err(CasError::Conflict) => Err(CheckpointError::Fenced {
                path: path.to_string(),
                topic: checkpoint.topic.clone(),
                partition: checkpoint.partition,
            }),
            Err(source) => Err(CheckpointError::Store {
                path: path.to_string(),
                source,
            }),
        }
    }

    /// The other consumer groups whose checkpoints for `topic`/`partition` are kept beside this
    /// group's: who else may be archiving the partition into the same output.
    pub async fn other_groups(&self, topic: &str, partition: i32) -> Vec<String> {
        let store = &self.location.store;
        let Ok(listed) = store.list_with_delimiter(Some(&self.location.prefix)).await else {
            return Vec::new();
        };
        let mut groups = Vec::new();
        for dir in listed.common_prefixes {
            let Some(group) = dir.filename().map(str::to_string) else {
                continue;
            };
            if group == self.group {
                continue;
            }
            let path = dir.clone().join(topic).join(format!("{partition}.json"));
            if store.head(&path).await.is_ok() {
                groups.push(group);
            }
        }
        groups
    }

    /// A fresh checkpoint document for this group.
    pub fn document(
        &self,
        topic: &str,
        partition: i32,
        next_offset: i64,
        owner: &str,
    ) -> Checkpoint {
        Checkpoint {
            group: self.group.clone(),
            topic: topic.into(),
            partition,
            next_offset,
            pending: None,
            owner: owner.into(),
            topic_id: None,
            last_time_ms: None,
            updated_at: self.clock.rfc3339(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> CheckpointStore {
        CheckpointStore::new(Location::open("memory://", "--checkpoints").unwrap(), "g")
    }

    #[tokio::test]
    async fn create_update_and_fence() {
        let s = store();
        assert!(s.load("t", 0).await.unwrap().is_none());
        let mut c = s.document("t", 0, 10, "a");
        let v1 = s.save(&c, None).await.unwrap();
        let loaded = s.load("t", 0).await.unwrap().unwrap();
        assert_eq!(loaded.checkpoint, c);
        c.next_offset = 20;
        let _v2 = s.save(&c, Some(v1.clone())).await.unwrap();
        // A former owner still holding v1 is fenced.
        let err = s.save(&c, Some(v1)).await.unwrap_err();
        assert!(err.is_fenced(), "{err}");
        // So is a second creator.
        assert!(s.save(&c, None).await.unwrap_err().is_fenced());
    }

    #[tokio::test]
    async fn bad_documents_are_refused_with_reasons() {
        let s = store();
        let put = |body: &'static str| {
            let s = s.clone();
            async move {
                s.location()
                    .store
                    .put(&s.path("t", 1), body.into())
                    .await
                    .unwrap();
                s.load("t", 1).await.unwrap_err()
            }
        };
        assert!(matches!(
            put("{not json").await,
            CheckpointError::Corrupt { .. }
        ));
        assert!(matches!(
            put(r#"{"next_offset":3}"#).await,
            CheckpointError::Corrupt { .. }
        ));
        let newer = put(r#"{"version":"7","next_offset":3}"#).await;
        assert!(
            matches!(newer, CheckpointError::NewerVersion { .. }),
            "{newer}"
        );
        let other = put(
            r#"{"version":"1","group":"g","topic":"other","partition":1,"next_offset":3,"pending":null,"owner":"x","updated_at":""}"#,
        )
        .await;
        assert!(matches!(other, CheckpointError::Mismatch { .. }), "{other}");
    }

    #[test]
    fn document_format_is_stable() {
        let c = Checkpoint {
            group: "g".into(),
            topic: "t".into(),
            partition: 2,
            next_offset: 5,
            pending: Some(PendingFile {
                path: "a/b.avro".into(),
                first_offset: 5,
                last_offset: 9,
                events: 5,
                size: 600,
                first_time_ms: Some(1),
                last_time_ms: None,
                manifest: "g/t/2/2026/01/01/00.jsonl".into(),
                crc32c: None,
                block_bytes: None,
                topic_id: None,
            }),
            owner: "o".into(),
            topic_id: Some("MTIzNDU2Nzg5MGFiY2RlZg".into()),
            last_time_ms: Some(1_767_225_600_000),
            updated_at: "2026-01-01T00:00:00.000Z".into(),
        };
        let json = serde_json::to_value(Persisted::V1(c)).unwrap();
        assert_eq!(json["version"], "1");
        assert_eq!(json["next_offset"], 5);
        assert_eq!(json["pending"]["last_offset"], 9);
        assert_eq!(json["topic_id"], "MTIzNDU2Nzg5MGFiY2RlZg");
        assert_eq!(json["last_time_ms"], 1_767_225_600_000_i64);
        assert!(
            json["pending"].get("topic_id").is_none(),
            "absent ids are left out"
        );
    }
}
