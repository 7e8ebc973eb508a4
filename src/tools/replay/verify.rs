//! `hubcap replay --verify`: compares a replayed topic with its archive. The topic is read to
//! its end as a read_committed consumer; each record names its archived event in the
//! `hubcap.source` header, so records are matched to the archive whatever partition they went
//! to. Per archived partition: the events in the archive's selection, those replayed, those
//! replayed more than once, those missing, and a content hash of each side (key, value,
//! headers in order, timestamp, in offset order), which must be equal.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::progress::EndsExpected;
use super::target::SOURCE_HEADER;
use super::ReplayError;
use crate::record::Event;

/// How long reading the target to its end may go without a record.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One archived partition compared with what the target holds of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Compared {
    pub topic: String,
    pub partition: i32,
    pub archived: u64,
    pub replayed: u64,
    /// Archived events found more than once in the target.
    pub duplicates: u64,
    /// Archived events not in the target.
    pub missing: u64,
    /// Whether the content hashes of the two sides are equal.
    pub same_content: bool,
}

impl Compared {
    pub fn clean(&self) -> bool {
        self.duplicates == 0 && self.missing == 0 && self.same_content
    }
}

/// One record's content, as a checksum: key, value, headers in order, timestamp.
pub fn digest(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&str, Option<&[u8]>)],
    timestamp_ms: Option<i64>,
) -> u32 {
    let mut d = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    let mut field = |b: Option<&[u8]>| match b {
        // Lengths keep fields apart; -1 marks an absent one.
        Some(b) => {
            d.update(&(b.len() as i64).to_le_bytes());
            d.update(b);
        }
        None => d.update(&(-1i64).to_le_bytes()),
    };
    field(key);
    field(value);
    for (k, v) in headers {
        field(Some(k.as_bytes()));
        field(*v);
    }
    field(
        timestamp_ms
            .map(i64::to_le_bytes)
            .as_ref()
            .map(|t| t.as_slice()),
    );
    d.finalize() as u32
}

/// An archived event's digest, as the target should hold it.
pub fn event_digest(e: &Event) -> u32 {
    let headers: Vec<(&str, Option<&[u8]>)> = e
        .headers
        .iter()
        .map(|h| (h.key.as_str(), h.value.as_deref()))
        .collect();
    digest(
        e.key.as_deref(),
        e.value.as_deref(),
        &headers,
        e.timestamp_ms,
    )
}

/// The target's records by archived (topic, partition): offset → the digests found for it.
pub type Found = BTreeMap<(String, i32), BTreeMap<i64, Vec<u32>>>;

/// Reads `topic` to its end (read_committed) and indexes its records by their source header.
/// Blocks: call it on a blocking thread.
pub fn read_target(
    config: &ClientConfig,
    topic: &str,
    timestamps: bool,
) -> Result<(Found, u64), ReplayError> {
    let mut config = config.clone();
    config
        .set(
            "group.id",
            format!("hubcap-replay-verify-{}", rand::random::<u32>()),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true");
    let consumer: BaseConsumer<EndsExpected> = config
        .create_with_context(EndsExpected)
        .map_err(ReplayError::kafka)?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .map_err(ReplayError::kafka)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .first()
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        return Err(ReplayError::Usage(format!(
            "the target topic {topic} does not exist"
        )));
    }
    let mut assignment = TopicPartitionList::new();
    for p in &partitions {
        assignment
            .add_partition_offset(topic, *p, Offset::Beginning)
            .map_err(ReplayError::kafka)?;
    }
    consumer.assign(&assignment).map_err(ReplayError::kafka)?;
    let mut open: std::collections::BTreeSet<i32> = partitions.into_iter().collect();
    let mut found = Found::new();
    let mut unsourced = 0;
    let mut last = Instant::now();
    while !open.is_empty() {
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            if last.elapsed() > IDLE_TIMEOUT {
                return Err(ReplayError::Kafka(format!(
                    "reading {topic} stalled for {IDLE_TIMEOUT:?} before its end"
                )));
            }
            continue;
        };
        last = Instant::now();
        let m = match message {
            Ok(m) => m,
            Err(KafkaError::PartitionEOF(p)) => {
                open.remove(&p);
                continue;
            }
            Err(e) => return Err(ReplayError::kafka(e)),
        };
        let mut headers = Vec::new();
        let mut source = None;
        if let Some(h) = m.headers() {
            for header in h.iter() {
                if header.key == SOURCE_HEADER {
                    source = header.value.and_then(parse_source);
                } else {
                    headers.push((header.key, header.value));
                }
            }
        }
        let Some((src_topic, src_partition, offset)) = source else {
            unsourced += 1;
            continue;
        };
        let timestamp = timestamps.then(|| m.timestamp().to_millis()).flatten();
        let d = digest(m.key(), m.payload(), &headers, timestamp);
        found
            .entry((src_topic, src_partition))
            .or_default()
            .entry(offset)
            .or_default()
            .push(d);
    }
    Ok((found, unsourced))
}

/// `TOPIC/PARTITION/OFFSET`.
fn parse_source(value: &[u8]) -> Option<(String, i32, i64)> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.rsplitn(3, '/');
    let offset = parts.next()?.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    Some((parts.next()?.to_string(), partition, offset))
}

/// Compares one archived partition's events (in offset order) with what the target holds.
pub fn compare(
    topic: &str,
    partition: i32,
    archived: &[(i64, u32)],
    found: Option<&BTreeMap<i64, Vec<u32>>>,
) -> Compared {
    let empty = BTreeMap::new();
    let found = found.unwrap_or(&empty);
    let mut c = Compared {
        topic: topic.to_string(),
        partition,
        archived: archived.len() as u64,
        replayed: found.values().map(|v| v.len() as u64).sum(),
        ..Default::default()
    };
    let mut archive_side = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    let mut target_side = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    for (offset, d) in archived {
        archive_side.update(&d.to_le_bytes());
        match found.get(offset).map(Vec::as_slice) {
            None | Some([]) => c.missing += 1,
            Some([one]) => target_side.update(&one.to_le_bytes()),
            Some(many) => {
                c.duplicates += 1;
                target_side.update(&many[0].to_le_bytes());
            }
        }
    }
    // Records of this partition the archive's selection does not hold count against it.
    let extra = found
        .keys()
        .filter(|o| archived.binary_search_by_key(*o, |(a, _)| *a).is_err())
        .count();
    c.same_content = archive_side.finalize() == target_side.finalize() && extra == 0;
    c
}
