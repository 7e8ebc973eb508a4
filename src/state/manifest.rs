//! Manifests: one JSON line per published file, with the fields of Capture's
//! `CaptureFileCreated` event, so downstream jobs find new files without listing the archive.
//!
//! Lines go to `_manifests/{group}/{topic}/{partition}/{YYYY}/{MM}/{DD}/{HH}.jsonl` in the output
//! store, by the hour the file was published: a job that runs every hour reads one small object
//! per partition. A manifest object is re-written with compare-and-swap on each append; an entry
//! for a path already listed replaces the old line, so a replay after a crash never lists a file
//! twice. The hour a file's entry goes to is fixed in the checkpoint's intent, so a replay in a
//! later hour still updates the same object.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::store::{get_versioned, put_cas, CasError, Location};

/// One published file. Field names follow Capture's `CaptureFileCreated` event data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestEntry {
    /// Format version of this line.
    pub version: String,
    /// The object's full URL (or local path).
    pub file_url: String,
    /// The object's name relative to the output location.
    pub path: String,
    pub topic: String,
    pub partition_id: i32,
    pub size_in_bytes: u64,
    pub event_count: u64,
    pub first_sequence_number: i64,
    pub last_sequence_number: i64,
    /// RFC 3339 (UTC, milliseconds); absent when those records carry no timestamp.
    pub first_enqueue_time: Option<String>,
    pub last_enqueue_time: Option<String>,
    /// `avro` or `parquet`.
    pub format: String,
    /// Avro codec or Parquet compression.
    pub codec: String,
    pub created_at: String,
    /// The file's CRC32C (Castagnoli), base64 of its four big-endian bytes, as S3
    /// (`ChecksumCRC32C`) and GCS (`crc32c`) report an object's: `hubcap audit --verify`
    /// recomputes it. Absent in lines written before hubcap recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_crc32c: Option<String>,
    /// The Avro block (uncompressed bytes at which a block closes) or Parquet row group size the
    /// file was written with: writing the same records with it gives the same bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_bytes: Option<u64>,
    /// Kafka's id of the topic the offsets belong to (KIP-516, base64), when the brokers gave
    /// one: files of a topic deleted and re-created under the same name differ in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
}

impl ManifestEntry {
    /// Whether `other` lists the same file with the same contents (only `created_at` may differ),
    /// so a retried or replayed publish leaves the line as it is.
    pub fn same_file(&self, other: &ManifestEntry) -> bool {
        ManifestEntry {
            created_at: other.created_at.clone(),
            ..self.clone()
        } == *other
    }
}

pub const VERSION: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "manifest {path} kept changing under this instance ({attempts} attempts to add a line)"
    )]
    Contended { path: String, attempts: u32 },
    #[error("manifest {path} has a line that is not a manifest entry ({reason}); fix or remove the line")]
    Corrupt { path: String, reason: String },
    #[error("manifest {path}: {source}")]
    Store { path: String, source: CasError },
    /// Cannot happen to a name a checked template rendered; refused rather than listed, as a
    /// line pointing outside the output would send the manifest's readers there.
    #[error("refusing a manifest line for {url}: it is not a file inside the output {output}")]
    Outside { url: String, output: String },
}

/// The manifests of one consumer group in an output location.
#[derive(Debug, Clone)]
pub struct Manifests {
    location: Location,
    group: String,
    /// The output's URL as lines give it (`fileUrl` is this, `/`, then the file's path).
    output: String,
}

impl Manifests {
    pub fn new(output: &Location, group: &str) -> Self {
        Manifests {
            location: output.child(crate::layout::MANIFESTS_DIR),
            group: group.to_string(),
            output: output.display.trim_end_matches('/').to_string(),
        }
    }

    /// Whether a line's file is inside the output: its path has no `.`, `..` or empty segment
    /// and its URL is the output's followed by that path.
    fn check_inside(&self, entry: &ManifestEntry) -> Result<(), ManifestError> {
        let rest = entry
            .file_url
            .strip_prefix(self.output.as_str())
            .map(|r| r.trim_start_matches('/'));
        if crate::layout::is_contained(&entry.path) && rest == Some(entry.path.as_str()) {
            return Ok(());
        }
        Err(ManifestError::Outside {
            url: entry.file_url.clone(),
            output: self.output.clone(),
        })
    }

    /// The manifest object (relative to `_manifests/`) for a file of `topic`/`partition`
    /// published at `at`.
    pub fn object_for(&self, topic: &str, partition: i32, at: DateTime<Utc>) -> String {
        format!(
            "{}/{topic}/{partition}/{}.jsonl",
            self.group,
            at.format("%Y/%m/%d/%H")
        )
    }

    /// Adds `entry` to the manifest object `object`, replacing a line for the same path.
    ///
    /// The write is a compare-and-swap; on a conflict (a former owner of the partition, or an
    /// earlier attempt of ours whose answer was lost) the object is read again and merged, so
    /// every file keeps exactly one line. The checkpoint, not the manifest, fences owners.
    pub async fn upsert(&self, object: &str, entry: &ManifestEntry) -> Result<(), ManifestError> {
        const ATTEMPTS: u32 = 10;
        self.check_inside(entry)?;
        for _ in 0..ATTEMPTS {
            if self.try_upsert(object, entry).await? {
                return Ok(());
            }
        }
        Err(ManifestError::Contended {
            path: self.location.path(object).to_string(),
            attempts: ATTEMPTS,
        })
    }

    /// One read-merge-write; `false` on a conflict.
    async fn try_upsert(&self, object: &str, entry: &ManifestEntry) -> Result<bool, ManifestError> {
        let path = self.location.path(object);
        let name = path.to_string();
        let store_err = |source| ManifestError::Store {
            path: name.clone(),
            source,
        };
        let current = get_versioned(&self.location, &path)
            .await
            .map_err(store_err)?;
        let (mut entries, version) = match current {
            Some((data, v)) => (parse(&name, &data)?, Some(v)),
            None => (Vec::new(), None),
        };
        match entries.iter_mut().find(|e| e.path == entry.path) {
            Some(old) if old.same_file(entry) => return Ok(true),
            Some(old) => *old = entry.clone(),
            None => entries.push(entry.clone()),
        }
        let mut body = Vec::new();
        for e in &entries {
            // Serializing a struct of strings and numbers cannot fail.
            serde_json::to_writer(&mut body, e).map_err(|e| store_err(CasError::Io(e.into())))?;
            body.push(b'\n');
        }
        match put_cas(&self.location, &path, Bytes::from(body), version).await {
            Ok(_) => Ok(true),
            Err(CasError::Conflict) => Ok(false),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Whether this group's manifests of `topic`/`partition` list a file at `path`: a file this
    /// group wrote. Reads the partition's manifests newest first; for the rare name collision.
    pub async fn lists(
        &self,
        topic: &str,
        partition: i32,
        path: &str,
    ) -> Result<bool, ManifestError> {
        use futures::TryStreamExt;
        let prefix = self
            .location
            .path(&format!("{}/{topic}/{partition}", self.group));
        let listed: Vec<ObjectMeta> = self
            .location
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|source| ManifestError::Store {
                path: prefix.to_string(),
                source: source.into(),
            })?;
        let mut objects: Vec<String> = listed.into_iter().map(|m| m.location.to_string()).collect();
        objects.sort_unstable_by(|a, b| b.cmp(a));
        let base = self.location.prefix.to_string();
        for object in objects {
            let relative = object
                .strip_prefix(&base)
                .map_or(object.as_str(), |r| r.trim_start_matches('/'));
            if self.read(relative).await?.iter().any(|e| e.path == path) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Reads a manifest object.
    pub async fn read(&self, object: &str) -> Result<Vec<ManifestEntry>, ManifestError> {
        let path = self.location.path(object);
        let name = path.to_string();
        match get_versioned(&self.location, &path).await {
            Ok(Some((data, _))) => parse(&name, &data),
            Ok(None) => Ok(Vec::new()),
            Err(source) => Err(ManifestError::Store { path: name, source }),
        }
    }
}

fn parse(path: &str, data: &[u8]) -> Result<Vec<ManifestEntry>, ManifestError> {
    // Numbered in the file, blank lines counted: serde_json numbers within the one line it is
    // given, which named line 1 for every line.
    data.split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| {
            let n = i + 1;
            let corrupt = |reason: String| ManifestError::Corrupt {
                path: path.into(),
                reason: format!("line {n}: {reason}"),
            };
            let entry: ManifestEntry = serde_json::from_slice(line).map_err(|e| {
                let text = e.to_string();
                let what = text.split(" at line ").next().unwrap_or_default();
                corrupt(format!("{what} at column {}", e.column()))
            })?;
            if entry.version != VERSION {
                let found = &entry.version;
                return Err(corrupt(format!(
                    "version {found:?}, this hubcap writes {VERSION}"
                )));
            }
            Ok(entry)
        })
        .collect()
}

/// RFC 3339 with milliseconds, for enqueue times in manifests.
pub fn time_text(ms: Option<i64>) -> Option<String> {
    ms.and_then(DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, events: u64) -> ManifestEntry {
        ManifestEntry {
            version: VERSION.into(),
            file_url: format!("memory:///{path}"),
            path: path.into(),
            topic: "t".into(),
            partition_id: 0,
            size_in_bytes: 100,
            event_count: events,
            first_sequence_number: 0,
            last_sequence_number: events as i64 - 1,
            first_enqueue_time: time_text(Some(0)),
            last_enqueue_time: None,
            format: "avro".into(),
            codec: "null".into(),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            content_crc32c: None,
            block_bytes: None,
            topic_id: None,
        }
    }

    #[tokio::test]
    async fn upsert_appends_and_replaces_by_path() {
        for spec in ["memory://", "LOCAL"] {
            let dir = tempfile::tempdir().unwrap();
            let spec = if spec == "LOCAL" {
                dir.path().to_str().unwrap().to_string()
            } else {
                spec.into()
            };
            let m = Manifests::new(&Location::open(&spec, "--output").unwrap(), "g");
            let entry = |path: &str, events| ManifestEntry {
                file_url: format!("{}/{path}", m.output),
                ..entry(path, events)
            };
            let at = DateTime::parse_from_rfc3339("2026-11-21T14:05:00Z")
                .unwrap()
                .with_timezone(&Utc);
            let object = m.object_for("t", 0, at);
            assert_eq!(object, "g/t/0/2026/11/21/14.jsonl");
            m.upsert(&object, &entry("a.avro", 3)).await.unwrap();
            m.upsert(&object, &entry("b.avro", 4)).await.unwrap();
            m.upsert(&object, &entry("a.avro", 5)).await.unwrap(); // a replay re-wrote a.avro
            m.upsert(&object, &entry("b.avro", 4)).await.unwrap(); // unchanged: no write
            let got = m.read(&object).await.unwrap();
            assert_eq!(got, vec![entry("a.avro", 5), entry("b.avro", 4)], "{spec}");
        }
    }

    #[tokio::test]
    async fn lines_outside_the_output_are_refused() {
        let m = Manifests::new(&Location::open("memory://", "--output").unwrap(), "g");
        let inside = |path: &str| ManifestEntry {
            file_url: format!("{}/{path}", m.output),
            ..entry(path, 1)
        };
        m.upsert("o.jsonl", &inside("ns/t/0/a.avro")).await.unwrap();
        for path in [
            "../../etc/a.avro",
            "ns/./t/a.avro",
            "/abs.avro",
            "ns//a.avro",
            "..\\a.avro",
        ] {
            let err = m.upsert("o.jsonl", &inside(path)).await.unwrap_err();
            assert!(
                matches!(err, ManifestError::Outside { .. }),
                "{path}: {err}"
            );
        }
        let elsewhere = ManifestEntry {
            file_url: "file:///elsewhere/a.avro".into(),
            ..inside("a.avro")
        };
        assert!(m.upsert("o.jsonl", &elsewhere).await.is_err());
        assert_eq!(m.read("o.jsonl").await.unwrap().len(), 1);
    }

    #[test]
    fn lines_use_capture_field_names() {
        let json = serde_json::to_value(entry("a.avro", 3)).unwrap();
        for key in [
            "fileUrl",
            "partitionId",
            "sizeInBytes",
            "eventCount",
            "firstSequenceNumber",
            "lastSequenceNumber",
            "firstEnqueueTime",
            "lastEnqueueTime",
        ] {
            assert!(json.get(key).is_some(), "{key} missing in {json}");
        }
        assert!(matches!(
            parse("m", b"{\"version\":\"9\"}"),
            Err(ManifestError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_bad_line_is_named_by_its_number_in_the_file() {
        let good = serde_json::to_string(&entry("a.avro", 3)).unwrap();
        let data = format!("{good}\n\n{{\"path\": oops}}\n");
        let Err(ManifestError::Corrupt { reason, .. }) = parse("m", data.as_bytes()) else {
            panic!("a bad line is corrupt");
        };
        assert!(reason.starts_with("line 3: "), "{reason}");
        assert!(!reason.contains("line 1"), "{reason}");
    }
}
