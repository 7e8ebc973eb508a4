//! `--brokers`: each partition's watermarks, to compare the archive with what Kafka holds, and
//! what Kafka holds at each gap, to tell offsets without records from lost files.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};

use crate::kafka::topic_id::topic_ids;
use crate::kafka::{KafkaArg, MetadataError};

use super::{AuditError, GapCheck, GapChecks, GapQueries, OffsetRange, Watermarks};

/// How long to wait for Kafka metadata and for each partition's watermarks.
pub(super) const KAFKA_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait for Kafka to show what it holds at one gap; past it the gap stays a gap.
pub(super) const GAP_TIMEOUT: Duration = Duration::from_secs(10);
/// Partitions whose gaps are read at once, each with a consumer of its own on a blocking thread.
const GAP_CONCURRENCY: usize = 4;
/// The gap reader must have a group to be assigned partitions; it never joins it, subscribes
/// or commits, so any name does.
const GAP_READER_GROUP: &str = "hubcap-audit-gaps";
/// Gap reader settings the user's `-X` may change. Only one record is looked for per gap, so
/// the consumer queues one record ahead, not the default 100000; the queue then fills at once,
/// and the fetcher's default wait of a second before it looks again would cost a second per
/// gap. The end of a partition is found after one empty fetch: keep that wait short too.
const GAP_READER_DEFAULTS: &[(&str, &str)] = &[
    ("queued.min.messages", "1"),
    ("fetch.queue.backoff.ms", "10"),
    ("fetch.wait.max.ms", "10"),
];

/// The client settings both readers share: the user's `-X` settings, then the brokers.
fn client_config(brokers: &str, settings: &[KafkaArg]) -> Result<ClientConfig, AuditError> {
    let mut config = ClientConfig::new();
    config.set("client.id", "hubcap-audit");
    for (key, value) in crate::kafka::parse_settings(settings.iter().map(|a| &a.0))
        .map_err(AuditError::KafkaSetting)?
    {
        config.set(key, value);
    }
    config.set("bootstrap.servers", brokers);
    Ok(config)
}

fn create_consumer(config: &ClientConfig) -> Result<BaseConsumer, AuditError> {
    config
        .create()
        .map_err(|e| AuditError::KafkaSetting(crate::kafka::client_error(&e)))
}

/// Each partition's (low, high) watermarks of `topics`, and each topic's id (`None` when the
/// brokers give none). The client calls block, so they run on a blocking thread.
pub(super) async fn fetch_watermarks(
    brokers: &str,
    settings: &[KafkaArg],
    topics: BTreeSet<String>,
) -> Result<(Watermarks, HashMap<String, Option<String>>), AuditError> {
    let consumer = create_consumer(&client_config(brokers, settings)?)?;
    let brokers = brokers.to_string();
    let topics: Vec<String> = topics.into_iter().collect();
    let found = tokio::task::spawn_blocking(move || {
        let found = crate::kafka::topic_partitions(&consumer, &topics, true, KAFKA_TIMEOUT);
        // An id Kafka cannot give leaves the offset checks alone, as in `run`.
        let ids = topic_ids(consumer.client(), &topics, KAFKA_TIMEOUT).unwrap_or_default();
        found.map(|(_, marks)| (marks, ids))
    })
    .await?;
    match found {
        Ok((marks, ids)) => Ok((marks.into_iter().collect(), ids)),
        Err(MetadataError::Unreachable(source)) => Err(AuditError::Kafka {
            brokers,
            timeout: KAFKA_TIMEOUT,
            source,
        }),
        Err(MetadataError::UnknownTopic(topic)) => Err(AuditError::UnknownTopic { topic, brokers }),
    }
}

// ---- gaps ----

/// Why one gap could not be checked: the gap stays a gap, with this as its reason.
#[derive(Debug, thiserror::Error)]
pub(super) enum GapReadError {
    #[error("cannot read the partition's last stable offset: {0}")]
    StableOffset(KafkaError),
    #[error("cannot assign the partition at offset {offset}: {source}")]
    Assign { offset: i64, source: KafkaError },
    #[error("Kafka no longer holds offset {offset}: its log start moved past it during the audit")]
    Gone { offset: i64 },
    #[error("Kafka's committed records end at offset {stable}, inside the gap: a transaction is still open")]
    OpenTransaction { stable: i64 },
    #[error("no record and no end of partition from Kafka within {waited:?}{}",
        .last.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default())]
    Timeout {
        waited: Duration,
        last: Option<KafkaError>,
    },
    #[error("skipped: an earlier gap of this partition could not be checked")]
    Skipped,
}

impl GapReadError {
    /// Kafka did not answer as it should: the partition's later gaps would only wait as long.
    fn stops_partition(&self) -> bool {
        matches!(
            self,
            GapReadError::StableOffset(_)
                | GapReadError::Assign { .. }
                | GapReadError::Timeout { .. }
        )
    }
}

/// Reads each gap of `queries` from Kafka with `isolation.level=read_committed`: from its first
/// offset, the first record delivered or the end of the partition tells whether Kafka holds a
/// committed record in it. One consumer per partition, its gaps in order, on blocking threads.
pub(super) async fn check_gaps(
    brokers: &str,
    settings: &[KafkaArg],
    queries: GapQueries,
) -> Result<GapChecks, AuditError> {
    let config = gap_reader_config(brokers, settings)?;
    let mut checks = futures::stream::iter(queries)
        .map(|((topic, partition), gaps)| {
            let config = config.clone();
            tokio::task::spawn_blocking(move || {
                let found = check_partition(&config, &topic, partition, &gaps)?;
                Ok::<_, AuditError>((topic, partition, found))
            })
        })
        .buffer_unordered(GAP_CONCURRENCY);
    let mut all = GapChecks::new();
    while let Some(checked) = checks.next().await {
        let (topic, partition, found) = checked??;
        for (gap, check) in found {
            all.insert((topic.clone(), partition, gap), check);
        }
    }
    Ok(all)
}

/// The gap reader's: a range reader tuned for reading a few records (unless the user's
/// settings say otherwise).
fn gap_reader_config(brokers: &str, settings: &[KafkaArg]) -> Result<ClientConfig, AuditError> {
    let mut config = range_reader_config(brokers, settings, GAP_READER_GROUP)?;
    for (key, value) in GAP_READER_DEFAULTS {
        if config.get(key).is_none() {
            config.set(*key, *value);
        }
    }
    Ok(config)
}

/// A consumer that reads assigned offset ranges and nothing else: the user's settings, then
/// what a range reader relies on, so that these win: committed records only, nothing
/// committed (`group` is only a name: it is never joined), an end-of-partition event, and an
/// error (not a jump to another offset) when Kafka no longer holds the one asked for.
pub(crate) fn range_reader_config(
    brokers: &str,
    settings: &[KafkaArg],
    group: &str,
) -> Result<ClientConfig, AuditError> {
    let mut config = client_config(brokers, settings)?;
    config
        .set("group.id", group)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "error");
    Ok(config)
}

/// Checks the gaps of one partition, in order. After Kafka fails to answer for one, the rest
/// are skipped: each would wait as long.
fn check_partition(
    config: &ClientConfig,
    topic: &str,
    partition: i32,
    gaps: &[OffsetRange],
) -> Result<Vec<(OffsetRange, GapCheck)>, AuditError> {
    let consumer = config
        .create_with_context(GapReaderContext)
        .map_err(|e| AuditError::KafkaSetting(crate::kafka::client_error(&e)))?;
    let reader = GapReader {
        consumer,
        topic,
        partition,
    };
    let stable = reader.stable_offset();
    let mut stopped = false;
    let mut found = Vec::with_capacity(gaps.len());
    for &gap in gaps {
        let read = match (&stable, stopped) {
            (_, true) => Err(GapReadError::Skipped),
            (Err(e), false) => Err(GapReadError::StableOffset(e.clone())),
            (Ok(stable), false) => reader.check(gap, *stable),
        };
        stopped |= read.as_ref().is_err_and(GapReadError::stops_partition);
        let check = read.unwrap_or_else(|e| GapCheck::NotChecked {
            reason: e.to_string(),
        });
        found.push((gap, check));
    }
    Ok(found)
}

/// The gap reader's client: the ends of partition it asks for are not errors.
struct GapReaderContext;

impl ClientContext for GapReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        // Each end of partition also arrives as a poll result, where it is handled; one the
        // consumer finds after the last poll (or while closing) would otherwise log an error.
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) {
            return tracing::debug!(reason, "end of partition");
        }
        tracing::warn!(%error, reason, "kafka client error while checking gaps");
    }
}

impl ConsumerContext for GapReaderContext {}

/// A read_committed consumer of one partition.
struct GapReader<'a> {
    consumer: BaseConsumer<GapReaderContext>,
    topic: &'a str,
    partition: i32,
}

/// What the first poll after an assignment delivered.
enum Polled {
    Record(i64),
    End,
}

impl GapReader<'_> {
    /// The last stable offset: a read_committed consumer's watermarks end there, and so does
    /// what it reads. It only grows, so any end of partition seen later is at or past it.
    fn stable_offset(&self) -> Result<i64, KafkaError> {
        let (_, stable) =
            self.consumer
                .fetch_watermarks(self.topic, self.partition, KAFKA_TIMEOUT)?;
        Ok(stable)
    }

    /// What Kafka holds in `gap`, read from its first offset. Aborted records and transaction
    /// markers are never delivered, compacted offsets hold nothing: the first record delivered
    /// is the first committed one at or after `gap.first`.
    fn check(&self, gap: OffsetRange, stable: i64) -> Result<GapCheck, GapReadError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(self.topic, self.partition, Offset::Offset(gap.first))
            .and_then(|()| self.consumer.assign(&tpl))
            .map_err(|source| GapReadError::Assign {
                offset: gap.first,
                source,
            })?;
        Ok(match self.first_from(gap.first)? {
            Polled::Record(offset) if offset <= gap.last => GapCheck::RecordAt { offset },
            Polled::Record(_) => GapCheck::NoRecords,
            Polled::End if stable > gap.last => GapCheck::NoRecords,
            Polled::End => return Err(GapReadError::OpenTransaction { stable }),
        })
    }

    /// Polls until the first record at or after `first`, or the end of the partition.
    fn first_from(&self, first: i64) -> Result<Polled, GapReadError> {
        let deadline = Instant::now() + GAP_TIMEOUT;
        let mut last = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(GapReadError::Timeout {
                    waited: GAP_TIMEOUT,
                    last,
                });
            }
            match self.consumer.poll(left) {
                // Below `first`: left from the previous gap's assignment.
                Some(Ok(m)) if m.offset() < first => {}
                Some(Ok(m)) => return Ok(Polled::Record(m.offset())),
                Some(Err(KafkaError::PartitionEOF(_))) => return Ok(Polled::End),
                Some(Err(KafkaError::MessageConsumption(
                    RDKafkaErrorCode::OffsetOutOfRange | RDKafkaErrorCode::AutoOffsetReset,
                ))) => return Err(GapReadError::Gone { offset: first }),
                // Connection trouble and the like: librdkafka retries; say it if time runs out.
                Some(Err(e)) => last = Some(e),
                None => {}
            }
        }
    }
}
