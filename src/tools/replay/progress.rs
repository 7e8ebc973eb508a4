//! How far a replay got, kept in Kafka beside what it produced: one record per source partition
//! in a compacted progress topic, written in the same transaction as the events it covers. A
//! read_committed reader therefore sees a progress record exactly when it sees those events,
//! and a replay that starts again (after `init_transactions` has fenced and ended the killed
//! one's transaction) reads where the last committed transaction left each partition.
//!
//! Key: `JOB/TOPIC/PARTITION` (topic names hold no `/`). Value: JSON with `next_offset`, the
//! first source offset not replayed yet, and what the record is about.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use super::ReplayError;

/// How long reading the progress topic to its end may take.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A consumer context that does not log a partition's end as an error: the readers of a
/// replay (the progress, `--verify`) read to the end and ask to be told.
pub struct EndsExpected;

impl ClientContext for EndsExpected {
    fn error(&self, error: KafkaError, reason: &str) {
        let end = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        );
        if !end {
            tracing::warn!(error = %crate::kafka::client_error(&error), reason, "Kafka client error");
        }
    }
}

impl ConsumerContext for EndsExpected {}

/// One progress record's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub version: u32,
    pub job: String,
    pub source_topic: String,
    pub source_partition: i32,
    /// The first source offset not replayed yet.
    pub next_offset: i64,
    pub target_topic: String,
}

/// The committed progress of one job, by source (topic, partition).
#[derive(Debug, Default)]
pub struct Progress {
    pub next: HashMap<(String, i32), i64>,
}

pub fn key(job: &str, topic: &str, partition: i32) -> String {
    format!("{job}/{topic}/{partition}")
}

/// Creates the progress topic unless it exists: one partition (the records of a job are read
/// in order), compacted (only the latest record per key matters).
pub async fn ensure_topic(config: &ClientConfig, topic: &str) -> Result<(), ReplayError> {
    let admin: AdminClient<DefaultClientContext> = config.create().map_err(ReplayError::kafka)?;
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1)).set("cleanup.policy", "compact");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics([&new], &options)
        .await
        .map_err(ReplayError::kafka)?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(ReplayError::Kafka(format!(
                    "cannot create the progress topic {name}: {code}; create it (one partition, cleanup.policy=compact) or give --progress-topic"
                )))
            }
        }
    }
    Ok(())
}

/// Reads `job`'s committed progress from `topic`, to the end. Blocks: call it on a blocking
/// thread.
pub fn read(config: &ClientConfig, topic: &str, job: &str) -> Result<Progress, ReplayError> {
    let mut config = config.clone();
    config
        .set(
            "group.id",
            format!("hubcap-replay-progress-{}", rand::random::<u32>()),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        // The end is an empty fetch: the broker would hold it for 500 ms.
        .set("fetch.wait.max.ms", "10")
        .set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer<EndsExpected> = config
        .create_with_context(EndsExpected)
        .map_err(ReplayError::kafka)?;
    let mut assignment = TopicPartitionList::new();
    assignment
        // Offset 0, not Beginning: a logical offset is looked up on a 500 ms timer when the
        // leader is not known yet; a compacted topic keeps offset 0 (auto.offset.reset
        // covers a topic whose start was deleted).
        .add_partition_offset(topic, 0, Offset::Offset(0))
        .map_err(ReplayError::kafka)?;
    consumer.assign(&assignment).map_err(ReplayError::kafka)?;
    let prefix = format!("{job}/");
    let mut progress = Progress::default();
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        if Instant::now() > deadline {
            return Err(ReplayError::Kafka(format!(
                "reading the progress topic {topic} did not reach its end in {READ_TIMEOUT:?}"
            )));
        }
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = match message {
            Ok(m) => m,
            Err(KafkaError::PartitionEOF(_)) => return Ok(progress),
            Err(e) => return Err(ReplayError::kafka(e)),
        };
        let Some(key) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
            continue;
        };
        if !key.starts_with(&prefix) {
            continue;
        }
        let entry: Option<Entry> = message
            .payload()
            .and_then(|v| serde_json::from_slice(v).ok());
        match entry {
            Some(e) => {
                progress
                    .next
                    .insert((e.source_topic, e.source_partition), e.next_offset);
            }
            None => {
                return Err(ReplayError::Kafka(format!(
                    "the progress topic {topic} holds a record for job {job} that is not hubcap's (key {key}); give --job another name or --progress-topic another topic"
                )))
            }
        }
    }
}
