//! The Kafka side of a replay: one producer, transactional by default. Each batch of events is
//! one transaction together with the progress records of the partitions it advanced, so that
//! a read_committed consumer sees the events and the progress, or neither. Without transactions
//! (`--no-transactions`, for Event Hubs Standard) the producer is idempotent and the progress
//! is written after the events are acknowledged: a replay killed in between produces a batch
//! twice when it starts again (at least once), which the source header lets consumers detect.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};

use super::progress::{self, Entry};
use super::ReplayError;
use crate::record::Event;

/// How long transaction calls (init, commit, abort) may take.
const TXN_TIMEOUT: Duration = Duration::from_secs(60);
/// The header that names where an event came from, `TOPIC/PARTITION/OFFSET`.
pub const SOURCE_HEADER: &str = "hubcap.source";

/// Counts failed deliveries, keeping the first error (a transaction's commit fails on them
/// anyway; without transactions, this is how a failure is seen).
#[derive(Default)]
pub struct Deliveries {
    failed: AtomicU64,
    first: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert_with(|| crate::kafka::client_error(e));
        }
    }
}

/// Where and how events go.
pub struct Target {
    producer: ThreadedProducer<Deliveries>,
    transactional: bool,
    progress_topic: String,
    job: String,
}

/// One event to produce, already mapped.
pub struct Outgoing<'a> {
    pub topic: &'a str,
    /// `None`: Kafka's default partitioner on the key (murmur2, as Java's).
    pub partition: Option<i32>,
    pub event: &'a Event,
    /// The record timestamp to send; `None` lets the producer stamp it.
    pub timestamp_ms: Option<i64>,
    /// `TOPIC/PARTITION/OFFSET` of the source, when the header is wanted.
    pub source: Option<&'a str>,
}

impl Target {
    /// A producer with `config` (the user's settings), transactional as `job` when
    /// `transactional`: `init_transactions` fences an earlier producer of the same job and ends
    /// its open transaction before anything is read or sent. `queue_kbytes` bounds what waits
    /// for acknowledgement.
    pub fn open(
        config: &ClientConfig,
        job: &str,
        progress_topic: &str,
        transactional: bool,
        queue_kbytes: usize,
    ) -> Result<Target, ReplayError> {
        // hubcap's defaults, which `-X` may change.
        let mut config = config.clone();
        let defaults = [
            ("linger.ms", "20".to_string()),
            // What waits for acknowledgement (librdkafka's default is 1 GiB): sending waits
            // when it is full, so memory follows this, not the transaction's size.
            (
                "queue.buffering.max.kbytes",
                queue_kbytes.max(1024).to_string(),
            ),
        ];
        for (key, value) in defaults {
            if config.get(key).is_none() {
                config.set(key, value);
            }
        }
        config
            .set("enable.idempotence", "true")
            // Java's default partitioner: a key lands where Java clients would put it.
            .set("partitioner", "murmur2_random");
        if transactional {
            config.set("transactional.id", format!("hubcap-replay-{job}"));
        }
        let producer: ThreadedProducer<Deliveries> = config
            .create_with_context(Deliveries::default())
            .map_err(ReplayError::kafka)?;
        // A broker connection up before init_transactions: otherwise librdkafka asks for the
        // producer id before any broker is up and retries only 500 ms later. A failure here is
        // init_transactions' to report.
        let _ = producer
            .client()
            .fetch_metadata(None, Duration::from_secs(30));
        if transactional {
            producer
                .init_transactions(TXN_TIMEOUT)
                .map_err(ReplayError::kafka)?;
        }
        Ok(Target {
            producer,
            transactional,
            progress_topic: progress_topic.to_string(),
            job: job.to_string(),
        })
    }

    /// The partition count of `topic`, which must exist.
    pub fn partitions(&self, topic: &str) -> Result<i32, ReplayError> {
        self.partition_count(topic)?.ok_or_else(|| ReplayError::Usage(format!(
            "the target topic {topic} does not exist: create it first (with as many partitions as the source for --partitioning same)"
        )))
    }

    /// The partition count of `topic`; `None` when it does not exist.
    pub fn partition_count(&self, topic: &str) -> Result<Option<i32>, ReplayError> {
        let metadata = self
            .producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(30))
            .map_err(ReplayError::kafka)?;
        Ok(match metadata.topics().first() {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                Some(t.partitions().len() as i32)
            }
            _ => None,
        })
    }

    pub fn begin(&self) -> Result<(), ReplayError> {
        if self.transactional {
            self.producer
                .begin_transaction()
                .map_err(ReplayError::kafka)?;
        }
        Ok(())
    }

    /// Queues one event, waiting while the producer's queue is full.
    pub fn send(&self, out: &Outgoing<'_>) -> Result<(), ReplayError> {
        let mut headers = OwnedHeaders::new_with_capacity(out.event.headers.len() + 1);
        for h in &out.event.headers {
            headers = headers.insert(KafkaHeader {
                key: &h.key,
                value: h.value.as_deref(),
            });
        }
        if let Some(source) = &out.source {
            headers = headers.insert(KafkaHeader {
                key: SOURCE_HEADER,
                value: Some(source.as_bytes()),
            });
        }
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(out.topic).headers(headers);
        if let Some(key) = &out.event.key {
            record = record.key(key.as_slice());
        }
        if let Some(value) = &out.event.value {
            record = record.payload(value.as_slice());
        }
        if let Some(p) = out.partition {
            record = record.partition(p);
        }
        if let Some(ts) = out.timestamp_ms {
            record = record.timestamp(ts);
        }
        self.enqueue(record)
    }

    fn enqueue<'a>(&self, mut record: BaseRecord<'a, [u8], [u8]>) -> Result<(), ReplayError> {
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => return Err(ReplayError::kafka(e)),
            }
        }
    }

    /// Ends the batch: the progress records of `advanced` (target topic, source topic,
    /// partition, next offset), then the commit (or, without transactions, a flush, then the
    /// progress).
    pub fn commit(&self, advanced: &[(String, String, i32, i64)]) -> Result<(), ReplayError> {
        let records: Vec<(String, Vec<u8>)> = advanced
            .iter()
            .map(|(target_topic, topic, partition, next)| {
                let entry = Entry {
                    version: 1,
                    job: self.job.clone(),
                    source_topic: topic.clone(),
                    source_partition: *partition,
                    next_offset: *next,
                    target_topic: target_topic.clone(),
                };
                let value = serde_json::to_vec(&entry).unwrap_or_default();
                (progress::key(&self.job, topic, *partition), value)
            })
            .collect();
        if !self.transactional {
            self.flush()?;
        }
        for (key, value) in &records {
            let record = BaseRecord::to(&self.progress_topic)
                .key(key.as_bytes())
                .payload(value.as_slice());
            self.enqueue(record)?;
        }
        if self.transactional {
            return match self.producer.commit_transaction(TXN_TIMEOUT) {
                Ok(()) => Ok(()),
                Err(e) => {
                    // Nothing of this batch is visible; the next run replays it.
                    let _ = self.producer.abort_transaction(TXN_TIMEOUT);
                    Err(ReplayError::kafka(e))
                }
            };
        }
        self.flush()
    }

    fn flush(&self) -> Result<(), ReplayError> {
        self.producer
            .flush(TXN_TIMEOUT)
            .map_err(ReplayError::kafka)?;
        let context = self.producer.context();
        if context.failed.load(Ordering::Relaxed) > 0 {
            let first = context.first.lock().unwrap_or_else(|p| p.into_inner());
            return Err(ReplayError::Kafka(format!(
                "{} events were not delivered: {}",
                context.failed.load(Ordering::Relaxed),
                first.clone().unwrap_or_default()
            )));
        }
        Ok(())
    }
}
