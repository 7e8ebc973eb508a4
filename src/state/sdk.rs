//! Azure SDK checkpoint interop (`--azure-sdk-checkpoints`): a mirror of hubcap's checkpoints in
//! the form the Azure SDKs' `BlobCheckpointStore` reads, so an `EventProcessorClient` can take a
//! partition over where hubcap stopped, and hubcap can start where such a processor stopped.
//!
//! One zero-length blob per partition, named
//! `{fully-qualified-namespace}/{event-hub}/{consumer-group}/checkpoint/{partition-id}` with the
//! namespace, hub and group lowercased as the .NET, Python and JS stores do (`$Default` becomes
//! `$default`); the partition id is not. The state is in the blob's metadata, describing the
//! *last processed* event:
//! - `sequencenumber`: the last archived Kafka offset. Through the Event Hubs Kafka endpoint a
//!   Kafka offset is the event's sequence number.
//! - no `offset`. It is the Event Hubs *byte* offset, which Kafka does not show, and the SDKs
//!   prefer it over `sequencenumber`: a Kafka offset written there would be read as a byte offset
//!   and silently restart a processor near the start of the partition. Without it, .NET and Rust
//!   (and, as far as we know, Java and Go) position by sequence number, exclusively: at the next
//!   event. Python and JS position by `offset` only; their stores fail loudly on a blob without
//!   one, which beats silently re-reading, and `""` would not help them (Python reads it back as
//!   `"None"`). Every write replaces the blob, so an `offset` a processor wrote earlier does not
//!   outlive it.
//!
//! hubcap's own checkpoint stays the source of truth; this is a mirror, written after it and
//! never ahead of it, so a mirror that lags (a failed write only warns) makes a taking-over
//! processor re-read events, never skip them.

use std::fmt;
use std::time::Duration;

use object_store::path::Path;
use object_store::{Attribute, Attributes, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tracing::{debug, info, warn};

use crate::layout::sdk_checkpoint_blob;
use crate::observe::metrics::Operation;
use crate::store::retry::{retry, RetryPolicy};
use crate::store::{Location, StoreError};

/// Metadata keys, lowercase as the SDKs write them (storage metadata names are case-insensitive;
/// old Java builds wrote `SequenceNumber` and `Offset`).
pub const SEQUENCE_NUMBER: &str = "sequencenumber";
pub const OFFSET: &str = "offset";

/// `--azure-sdk-checkpoints` and the names its blobs take (validated: each one segment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkConfig {
    /// The container (and prefix) an Azure SDK processor's `BlobCheckpointStore` uses.
    pub url: String,
    /// The fully qualified Event Hubs namespace.
    pub namespace: String,
    /// The Event Hubs consumer group.
    pub consumer_group: String,
}

/// How long a mirror write (or the read that decides it) is retried before hubcap only warns:
/// a store outage should not hold a partition's archiving for the whole `--retry-for`.
const MIRROR_RETRY_FOR: Duration = Duration::from_secs(30);

/// How long bringing the mirror up to date at assignment may take: assignments wait for it, and
/// wait at most `--shutdown-timeout` (30 s by default) for every partition's claim.
const FOLLOW_FOR: Duration = Duration::from_secs(10);

/// The metadata written for a partition whose next offset to archive is `next_offset`: the last
/// archived event's sequence number, no offset (see the module documentation).
pub fn metadata(next_offset: i64) -> [(&'static str, String); 1] {
    [(SEQUENCE_NUMBER, (next_offset - 1).to_string())]
}

/// What an SDK checkpoint says: the last event a processor handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkPosition {
    pub sequence_number: i64,
    /// The Event Hubs byte offset, as written (may be `""`); hubcap cannot map it to Kafka.
    pub offset: Option<String>,
}

impl SdkPosition {
    /// The first Kafka offset after the checkpointed event.
    pub fn next_offset(&self) -> i64 {
        self.sequence_number + 1
    }
}

/// Reads checkpoint metadata; keys case-insensitive. hubcap positions by `sequencenumber` only,
/// so a checkpoint without a usable one is an error (the reason is returned).
pub fn parse_metadata<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<SdkPosition, String> {
    let (mut sequence, mut offset) = (None, None);
    for (k, v) in pairs {
        if k.eq_ignore_ascii_case(SEQUENCE_NUMBER) {
            sequence = Some(v.trim());
        } else if k.eq_ignore_ascii_case(OFFSET) {
            offset = Some(v.to_string());
        }
    }
    let text = match sequence {
        Some(s) if !s.is_empty() => s,
        _ => return Err("no sequencenumber".into()),
    };
    let sequence_number = text
        .parse::<i64>()
        .ok()
        .filter(|&n| (-1..i64::MAX).contains(&n))
        .ok_or_else(|| format!("sequencenumber {text:?} is not a sequence number"))?;
    Ok(SdkPosition {
        sequence_number,
        offset,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SdkCheckpointError {
    #[error("Azure SDK checkpoint {blob}: {}", crate::store::retry::describe(.source))]
    Store {
        blob: String,
        source: object_store::Error,
    },
    #[error("--azure-sdk-checkpoints {url}: {}; give the existing container an Azure SDK processor's BlobCheckpointStore uses", crate::store::retry::describe(.source))]
    Container {
        url: String,
        source: object_store::Error,
    },
    #[error("Azure SDK checkpoint {blob} cannot be used ({reason}); an Azure SDK processor writes sequencenumber=<last processed sequence number>: fix or remove the blob, hubcap will not guess where {topic}/{partition} starts")]
    Unusable {
        blob: String,
        topic: String,
        partition: i32,
        reason: String,
    },
}

impl SdkCheckpointError {
    pub fn is_transient(&self) -> bool {
        use crate::store::retry::Transient;
        match self {
            SdkCheckpointError::Store { source, .. }
            | SdkCheckpointError::Container { source, .. } => source.is_transient(),
            SdkCheckpointError::Unusable { .. } => false,
        }
    }
}

/// The Azure SDK checkpoints of one consumer group in one container.
#[derive(Clone)]
pub struct SdkCheckpoints {
    location: Location,
    namespace: String,
    group: String,
    /// The bounded policy of mirror writes.
    mirror_retry: RetryPolicy,
}

impl fmt::Debug for SdkCheckpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkCheckpoints")
            .field("location", &self.location.display)
            .field("namespace", &self.namespace)
            .field("group", &self.group)
            .finish()
    }
}

impl SdkCheckpoints {
    pub fn new(location: Location, namespace: &str, group: &str) -> Self {
        let mirror_retry = RetryPolicy {
            give_up_after: location.retry.give_up_after.min(MIRROR_RETRY_FOR),
            attempt_timeout: location.retry.attempt_timeout.min(MIRROR_RETRY_FOR),
            ..location.retry
        };
        SdkCheckpoints {
            location,
            namespace: namespace.to_string(),
            group: group.to_string(),
            mirror_retry,
        }
    }

    /// The mirror `config` asks for, if any.
    pub fn from_config(
        config: Option<&SdkConfig>,
        retry: RetryPolicy,
    ) -> Result<Option<Self>, StoreError> {
        let Some(config) = config else {
            return Ok(None);
        };
        let location = Location::open(&config.url, "--azure-sdk-checkpoints")?.with_retry(retry);
        let sdk = SdkCheckpoints::new(location, &config.namespace, &config.consumer_group);
        info!(
            "Azure SDK checkpoints: mirrored to {}/{}/{{topic}}/{}/checkpoint/{{partition}}",
            sdk.location.display.trim_end_matches('/'),
            config.namespace.to_lowercase(),
            config.consumer_group.to_lowercase()
        );
        Ok(Some(sdk))
    }

    /// The blob name of a partition, relative to the container (or the URL's prefix).
    pub fn blob(&self, topic: &str, partition: i32) -> String {
        sdk_checkpoint_blob(&self.namespace, topic, &self.group, partition)
    }

    /// The object path: parsed, not built part by part, so that no character is escaped and the
    /// name is exactly the one the SDKs compute.
    fn path(&self, blob: &str) -> Result<Path, SdkCheckpointError> {
        let full = match self.location.prefix.as_ref() {
            "" => blob.to_string(),
            prefix => format!("{prefix}/{blob}"),
        };
        Path::parse(&full).map_err(|e| SdkCheckpointError::Store {
            blob: blob.into(),
            source: e.into(),
        })
    }

    /// A partition's SDK checkpoint, if its blob exists.
    pub async fn load(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<SdkPosition>, SdkCheckpointError> {
        self.load_with(topic, partition, &self.location.retry).await
    }

    async fn load_with(
        &self,
        topic: &str,
        partition: i32,
        policy: &RetryPolicy,
    ) -> Result<Option<SdkPosition>, SdkCheckpointError> {
        let blob = self.blob(topic, partition);
        let path = self.path(&blob)?;
        let store = &self.location.store;
        // `head` returns no metadata; a zero-length `get` does.
        let got = retry(policy, Operation::Read, &format!("reading {blob}"), || {
            store.get(&path)
        })
        .await;
        let attributes = match got {
            Ok(got) => got.attributes,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => return Err(SdkCheckpointError::Store { blob, source }),
        };
        let pairs = attributes.iter().filter_map(|(k, v)| match k {
            Attribute::Metadata(k) => Some((k.as_ref(), v.as_ref())),
            _ => None,
        });
        parse_metadata(pairs)
            .map(Some)
            .map_err(|reason| SdkCheckpointError::Unusable {
                blob,
                topic: topic.into(),
                partition,
                reason,
            })
    }

    /// Writes a partition's checkpoint: unconditionally, as the SDKs do.
    pub async fn save(
        &self,
        topic: &str,
        partition: i32,
        next_offset: i64,
    ) -> Result<(), SdkCheckpointError> {
        self.save_with(topic, partition, next_offset, &self.location.retry)
            .await
    }

    async fn save_with(
        &self,
        topic: &str,
        partition: i32,
        next_offset: i64,
        policy: &RetryPolicy,
    ) -> Result<(), SdkCheckpointError> {
        let blob = self.blob(topic, partition);
        let path = self.path(&blob)?;
        let mut attributes = Attributes::new();
        for (k, v) in metadata(next_offset) {
            attributes.insert(Attribute::Metadata(k.into()), v.into());
        }
        let store = &self.location.store;
        retry(policy, Operation::Write, &format!("writing {blob}"), || {
            let opts = PutOptions {
                mode: PutMode::Overwrite,
                attributes: attributes.clone(),
                ..Default::default()
            };
            store.put_opts(&path, PutPayload::new(), opts)
        })
        .await
        .map(|_| ())
        .map_err(|source| SdkCheckpointError::Store { blob, source })
    }

    /// Where a partition without a hubcap checkpoint starts: after the event an SDK processor
    /// checkpointed last, if there is such a checkpoint.
    pub async fn start_offset(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>, SdkCheckpointError> {
        let Some(found) = self.load(topic, partition).await? else {
            return Ok(None);
        };
        let start = found.next_offset();
        info!(%topic, partition, blob = %self.blob(topic, partition), sequence_number = found.sequence_number, start,
            "no hubcap checkpoint: the partition starts after the Azure SDK checkpoint, where an Event Hubs processor stopped");
        Ok(Some(start))
    }

    /// After hubcap's checkpoint moved to `next_offset`: the mirror follows. A failure only warns
    /// (see the module documentation); the next checkpoint writes it again.
    pub async fn mirror(&self, topic: &str, partition: i32, next_offset: i64) {
        if next_offset <= 0 {
            return; // nothing archived: no event to name
        }
        if let Err(e) = self
            .save_with(topic, partition, next_offset, &self.mirror_retry)
            .await
        {
            warn!(%topic, partition, error = %e, "the Azure SDK checkpoint was not updated; hubcap's own checkpoint is, and the next one tries again");
        }
    }

    /// At assignment, with hubcap's checkpoint at `next_offset`: brings the mirror up to date if
    /// it differs (it may predate the flag, or a processor may have run since hubcap stopped:
    /// hubcap's checkpoint wins either way). Never fails, and gives up after [`FOLLOW_FOR`].
    pub async fn follow(&self, topic: &str, partition: i32, next_offset: i64) {
        if next_offset <= 0 {
            return;
        }
        let update = self.follow_within(topic, partition, next_offset);
        if tokio::time::timeout(FOLLOW_FOR, update).await.is_err() {
            warn!(%topic, partition, "the Azure SDK checkpoint was not brought up to date within {FOLLOW_FOR:?}; the next checkpoint tries again");
        }
    }

    async fn follow_within(&self, topic: &str, partition: i32, next_offset: i64) {
        let blob = self.blob(topic, partition);
        match self.load_with(topic, partition, &self.mirror_retry).await {
            Ok(Some(p)) if p.next_offset() == next_offset => return,
            Ok(Some(p)) if p.next_offset() > next_offset => {
                warn!(%topic, partition, %blob, sdk_sequence_number = p.sequence_number, next_offset,
                    "an Azure SDK processor checkpointed past hubcap's checkpoint; hubcap's wins: it archives from its own, and the SDK checkpoint is set back to match");
            }
            Ok(found) => {
                debug!(%topic, partition, %blob, sdk = ?found, next_offset, "the Azure SDK checkpoint is behind hubcap's; updating it");
            }
            Err(e) => {
                warn!(%topic, partition, error = %e, "reading the Azure SDK checkpoint failed; writing it from hubcap's checkpoint");
            }
        }
        self.mirror(topic, partition, next_offset).await;
    }

    /// At start-up: lists the container once, so that a missing container, an unreachable
    /// store or wrong credentials stop the run at once, as an unreachable Kafka does. (Reading a
    /// blob would take a missing container for a missing blob, and Azure's answer to listing a
    /// missing container reaches hubcap as a generic error, which the retry loop would retry.)
    pub async fn probe(&self) -> Result<(), SdkCheckpointError> {
        use crate::store::retry::Transient;
        let (store, prefix) = (&self.location.store, &self.location.prefix);
        let limit = self.location.retry.attempt_timeout;
        let listed = tokio::time::timeout(limit, store.list_with_delimiter(Some(prefix))).await;
        let source = match listed {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => object_store::Error::timed_out(limit),
        };
        Err(SdkCheckpointError::Container {
            url: self.location.display.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names_the_last_archived_offset_and_no_byte_offset() {
        assert_eq!(metadata(42), [(SEQUENCE_NUMBER, "41".to_string())]);
        let written = metadata(1);
        let read = parse_metadata(written.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
        assert_eq!((read.sequence_number, read.next_offset()), (0, 1));
    }

    #[test]
    fn metadata_parsing_table() {
        let ok = |seq: i64, offset: Option<&str>| {
            Some(SdkPosition {
                sequence_number: seq,
                offset: offset.map(str::to_string),
            })
        };
        // (metadata, what it reads as; `None`: refused)
        type Case = (Vec<(&'static str, &'static str)>, Option<SdkPosition>);
        let cases: Vec<Case> = vec![
            (
                vec![("sequencenumber", "41"), ("offset", "9816")],
                ok(41, Some("9816")),
            ),
            // Old Java wrote capitalised keys.
            (
                vec![("SequenceNumber", "7"), ("Offset", "1024")],
                ok(7, Some("1024")),
            ),
            // Newer .NET may write an empty offset.
            (
                vec![("sequencenumber", "0"), ("offset", "")],
                ok(0, Some("")),
            ),
            (vec![("sequencenumber", " 12 ")], ok(12, None)),
            (
                vec![("ownerid", "x"), ("sequencenumber", "-1")],
                ok(-1, None),
            ),
            (
                vec![
                    ("clientidentifier", "p1"),
                    ("sequencenumber", "5"),
                    ("offset", "no offset"),
                ],
                ok(5, Some("no offset")),
            ),
            (vec![("offset", "100")], None),
            (vec![("sequencenumber", "")], None),
            (vec![("sequencenumber", "abc")], None),
            (vec![("sequencenumber", "-2")], None),
            (vec![("sequencenumber", "9223372036854775807")], None),
            (vec![], None),
        ];
        for (pairs, want) in cases {
            let got = parse_metadata(pairs.iter().copied());
            assert_eq!(got.as_ref().ok(), want.as_ref(), "{pairs:?}: {got:?}");
            if let Err(reason) = got {
                assert!(reason.contains("sequencenumber"), "{reason}");
            }
        }
    }

    fn memory() -> SdkCheckpoints {
        let loc = Location::open("memory://", "--azure-sdk-checkpoints").unwrap();
        SdkCheckpoints::new(loc, "NS.servicebus.windows.net", "$Default")
    }

    #[tokio::test]
    async fn save_then_load_round_trips_through_blob_metadata() {
        let s = memory();
        assert_eq!(s.load("Hub", 3).await.unwrap(), None);
        s.save("Hub", 3, 100).await.unwrap();
        let path = Path::parse("ns.servicebus.windows.net/hub/$default/checkpoint/3").unwrap();
        let got = s.location.store.get(&path).await.unwrap();
        assert_eq!(
            got.attributes
                .get(&Attribute::Metadata(SEQUENCE_NUMBER.into()))
                .map(|v| v.as_ref()),
            Some("99")
        );
        assert_eq!(got.bytes().await.unwrap().len(), 0, "zero-length blob");
        assert_eq!(
            s.load("Hub", 3).await.unwrap(),
            Some(SdkPosition {
                sequence_number: 99,
                offset: None
            })
        );
        assert_eq!(s.start_offset("Hub", 3).await.unwrap(), Some(100));
    }

    #[tokio::test]
    async fn mirror_skips_empty_partitions_and_follow_sets_the_mirror_to_hubcaps_position() {
        let s = memory();
        s.mirror("hub", 0, 0).await;
        assert_eq!(s.load("hub", 0).await.unwrap(), None, "nothing archived");
        // A processor ran past hubcap's checkpoint: hubcap's wins.
        s.save("hub", 0, 500).await.unwrap();
        s.follow("hub", 0, 200).await;
        assert_eq!(s.load("hub", 0).await.unwrap().unwrap().next_offset(), 200);
        s.mirror("hub", 0, 250).await;
        assert_eq!(
            s.load("hub", 0).await.unwrap().unwrap().sequence_number,
            249
        );
    }

    #[tokio::test]
    async fn an_unusable_blob_is_an_error_naming_it() {
        let s = memory();
        let path = s.path(&s.blob("hub", 1)).unwrap();
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::Metadata("offset".into()), "77".into());
        let opts = PutOptions {
            attributes,
            ..Default::default()
        };
        s.location
            .store
            .put_opts(&path, PutPayload::new(), opts)
            .await
            .unwrap();
        let err = s.load("hub", 1).await.unwrap_err();
        assert!(!err.is_transient());
        let text = err.to_string();
        assert!(text.contains("hub/$default/checkpoint/1"), "{text}");
        assert!(text.contains("no sequencenumber"), "{text}");
        s.probe().await.unwrap();
    }
}
