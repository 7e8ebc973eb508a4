//! The source: one Kafka consumer per topic, polled on its own thread, in the run's consumer group.
//!
//! The thread polls, copies records into batches and hands them in batches to the partition
//! workers over bounded channels. It never waits for a worker: when a worker's channel is full
//! (its uploads are slow or failing), the rest of its input stays pending here and its partition
//! is paused, so librdkafka stops fetching it while the other partitions go on and the consumer
//! keeps polling (no `max.poll.interval.ms` expiry, however long the store takes); the partition
//! resumes once its worker took everything pending. Rebalances run in the consumer's callback on
//! the same thread:
//! an assignment reads each partition's checkpoint and assigns the partition at that offset
//! (never at Kafka's committed offset), then starts its worker; a revocation closes the worker's
//! input and waits for it to flush its open window, within the shutdown timeout.
//!
//! One consumer per topic keeps `PARTITION_EOF` (which librdkafka reports by partition number
//! only) unambiguous, which `--once` relies on to finish partitions that end in a gap.
//! [`rebalance`] handles assignments and revocations, [`records`] the records' way to the
//! workers.

mod rebalance;
mod records;

pub(crate) use records::RawHeaders;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::budget::{Charge, Use};
use crate::kafka::topic_id::topic_ids;
use crate::partition::{
    resume, Ended, Failure, FailureKind, Input, PartitionReport, PartitionWorker, Shared,
    WorkerError,
};

/// Records handed to a worker per batch, at most.
const BATCH: usize = 1024;
/// Record bytes per batch, about: a batch closes at `BATCH` records or this many bytes.
const BATCH_BYTES: usize = 256 << 10;
/// Batches a worker may have queued. With `BATCH_BYTES`, about 1 MiB of records waits per
/// partition in its channel; beyond it records wait here, pending.
const QUEUED_BATCHES: usize = 4;
/// Pending batches a partition may have beyond its channel before it is paused. Pausing is not
/// free: librdkafka drops what it had fetched for the partition and fetches it again on resume,
/// so a worker a little behind (a CPU-bound encoder) does not pause its partition each time.
const PENDING_BEFORE_PAUSE: usize = 4;
/// How long the consumer stops polling when the memory budget is exhausted, at most, before it
/// pauses every partition instead. Not polling costs nothing: librdkafka stops fetching once
/// its prefetch queue is full, and what it holds is delivered the moment polling goes on.
/// Pausing makes it drop what it prefetched and fetch it again on resume, but a consumer that
/// polls nothing for longer would delay rebalances, and one whose workers are stuck (a store
/// outage) would exceed `max.poll.interval.ms`.
const HOLD_POLLING: Duration = Duration::from_secs(1);
/// How long the consumer sleeps between checks while it holds polling.
const HELD_POLL_PAUSE: Duration = Duration::from_millis(2);

#[derive(Debug, Clone)]
pub struct SourceOptions {
    pub topic: String,
    /// `--once`: each partition's (low, high) watermarks at start. The run ends when every
    /// partition's checkpoint reached its high watermark, whoever in the group archived it.
    pub once: Option<HashMap<i32, (i64, i64)>>,
    pub shutdown_timeout: Duration,
    pub metadata_timeout: Duration,
    /// `--once` gives up when Kafka stays unreachable this long (`--retry-for`); a continuous
    /// run keeps waiting for it, as librdkafka reconnects on its own.
    pub retry_for: Duration,
}

/// How a source ended.
#[derive(Debug, Default)]
pub struct SourceOutcome {
    pub reports: Vec<PartitionReport>,
    /// Failures that make the run fail (fenced partitions are not among them).
    pub errors: Vec<Failure>,
    /// `--once`: every partition reached its end offset (false when stopped by a signal).
    pub caught_up: bool,
}

/// What a worker task returns.
type WorkerResult = (PartitionReport, Result<(), WorkerError>);

struct WorkerHandle {
    input: Option<mpsc::Sender<Input>>,
    join: JoinHandle<WorkerResult>,
}

#[derive(Default)]
struct State {
    workers: HashMap<i32, WorkerHandle>,
    /// Inputs polled but not yet handed over, per partition, in order.
    pending: HashMap<i32, Vec<Input>>,
    /// Partitions paused because their worker's channel was full.
    paused: HashSet<i32>,
    /// Since when the memory budget has been exhausted: polling stops for a while, then every
    /// partition is paused (see [`SourceContext::dispatch`]).
    exhausted_since: Option<std::time::Instant>,
    /// Partitions paused because the memory budget stayed exhausted.
    held_back: HashSet<i32>,
    outcome: SourceOutcome,
    /// Whether any assignment (even an empty one) arrived; `--once` finishes after that.
    assigned: bool,
    /// Since when the brokers have looked unreachable (cleared by a successful metadata probe).
    kafka_down_since: Option<std::time::Instant>,
    /// When a continuous run last warned that the brokers are unreachable.
    kafka_warned_at: Option<std::time::Instant>,
}

pub struct SourceContext {
    opts: SourceOptions,
    shared: Arc<Shared>,
    rt: Handle,
    state: Mutex<State>,
}

impl ClientContext for SourceContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(
            error.rdkafka_error_code(),
            Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        ) {
            // End of partition also arrives as a message error, where it is handled.
            return debug!(topic = %self.opts.topic, reason, "end of partition");
        }
        if !self.broker_trouble(&error) {
            warn!(topic = %self.opts.topic, %error, reason, "kafka client error");
        }
    }

    /// librdkafka's statistics (`statistics.interval.ms`, set with `--metrics-addr`): only the
    /// high watermarks are read, for `hubcap_consumer_lag_records`.
    fn stats_raw(&self, statistics: &[u8]) {
        #[derive(serde::Deserialize)]
        struct Stats {
            #[serde(default)]
            topics: HashMap<String, Topic>,
        }
        #[derive(serde::Deserialize)]
        struct Topic {
            #[serde(default)]
            partitions: HashMap<String, Partition>,
        }
        #[derive(serde::Deserialize)]
        struct Partition {
            partition: i32,
            #[serde(default = "unknown")]
            hi_offset: i64,
        }
        fn unknown() -> i64 {
            -1
        }
        let stats: Stats = match serde_json::from_slice(statistics) {
            Ok(s) => s,
            Err(e) => return debug!(error = %e, "unreadable librdkafka statistics"),
        };
        let Some(topic) = stats.topics.get(&self.opts.topic) else {
            return;
        };
        for p in topic.partitions.values() {
            if p.partition < 0 || p.hi_offset < 0 {
                continue;
            }
            if let Some(stats) = self.shared.metrics.existing(&self.opts.topic, p.partition) {
                stats.set_high_watermark(p.hi_offset);
            }
        }
    }
}

impl ConsumerContext for SourceContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.on_assign(consumer, tpl);
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.on_revoke(consumer, tpl);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                error!(topic = %self.opts.topic, error = ?other, "rebalance error; dropping the assignment");
                self.on_revoke(consumer, tpl);
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            self.fail(
                FailureKind::Kafka,
                format!(
                    "topic {}: applying a rebalance failed: {e}",
                    self.opts.topic
                ),
            );
        }
    }
}

impl SourceContext {
    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a panic elsewhere on this thread; the state is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long a poll may wait for records: 100 ms, but only 10 ms while input waits for a
    /// worker or partitions are paused. Then what ends the wait is a worker taking its input
    /// (which lets pending input go and paused partitions resume), not a record, and with every
    /// partition paused for the memory budget no record comes at all: the budget recovered
    /// 100 ms after it was exhausted, now 10–50 ms (at 256 partitions, Avro/deflate). `--once`
    /// waits 10 ms too: it ends when its last worker published its last file, which no record
    /// announces (at 100 ms, the run ended 0.1 s after its last file).
    /// `None`: do not poll now, the memory budget has been exhausted for less than
    /// [`HOLD_POLLING`]. (Its time, not whether partitions were paused since: a topic with no
    /// partition to pause, whose budget another topic exhausted, must poll again too.)
    fn poll_timeout(&self) -> Option<Duration> {
        let state = self.state();
        if state
            .exhausted_since
            .is_some_and(|since| since.elapsed() < HOLD_POLLING)
        {
            None
        } else if self.opts.once.is_none()
            && state.pending.is_empty()
            && state.paused.is_empty()
            && state.held_back.is_empty()
        {
            Some(Duration::from_millis(100))
        } else {
            Some(Duration::from_millis(10))
        }
    }

    fn fail(&self, kind: FailureKind, message: String) {
        error!("{message}");
        self.state()
            .outcome
            .errors
            .push(Failure::new(kind, message));
    }

    fn partitions(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        tpl.elements_for_topic(&self.opts.topic)
            .iter()
            .map(|e| e.partition())
            .collect()
    }

    /// Collects workers that ended on their own (`--once` done, or an error).
    fn reap(&self) {
        let finished: Vec<_> = {
            let mut state = self.state();
            let done: Vec<i32> = state
                .workers
                .iter()
                .filter(|(_, h)| h.join.is_finished())
                .map(|(p, _)| *p)
                .collect();
            done.iter()
                .filter_map(|p| state.workers.remove(p))
                .collect()
        };
        for h in finished {
            let r = self.rt.block_on(h.join);
            self.record(Some(r));
        }
    }

    /// Notes an error saying the brokers cannot be reached; `true` when it repeats one already
    /// noted (librdkafka reports it every few hundred ms while they are down): logged at debug.
    fn broker_trouble(&self, error: &KafkaError) -> bool {
        use rdkafka::types::RDKafkaErrorCode as C;
        if !matches!(
            error.rdkafka_error_code(),
            Some(C::AllBrokersDown | C::BrokerTransportFailure | C::Resolve)
        ) {
            return false;
        }
        {
            let mut state = self.state();
            if state.kafka_down_since.is_none() {
                state.kafka_down_since = Some(std::time::Instant::now());
                self.shared.metrics.topic(&self.opts.topic).kafka_down(true);
                return false;
            }
        }
        debug!(topic = %self.opts.topic, %error, "kafka still unreachable");
        true
    }

    /// After broker errors: probes the brokers (at most every few seconds) and clears the error
    /// once they answer. `--once` fails once they stayed unreachable for `retry_for`.
    fn check_kafka(&self, consumer: &BaseConsumer<Self>, last_probe: &mut std::time::Instant) {
        const PROBE_EVERY: Duration = Duration::from_secs(3);
        let Some(since) = self.state().kafka_down_since else {
            return;
        };
        if last_probe.elapsed() < PROBE_EVERY {
            return;
        }
        *last_probe = std::time::Instant::now();
        let topic = &self.opts.topic;
        if consumer
            .fetch_metadata(Some(topic), Duration::from_secs(2))
            .is_ok()
        {
            info!(%topic, down_for = ?since.elapsed(), "kafka reachable again");
            let mut state = self.state();
            state.kafka_down_since = None;
            state.kafka_warned_at = None;
            self.shared.metrics.topic(topic).kafka_down(false);
            return;
        }
        let down = since.elapsed();
        if self.opts.once.is_some() && down >= self.opts.retry_for {
            self.fail(FailureKind::Kafka, format!(
                "topic {topic}: kafka unreachable for {down:.0?}, giving up (--retry-for {:?}); what was archived is checkpointed, run again to finish",
                self.opts.retry_for
            ));
        } else {
            // Once at first, then every 30 s.
            let mut state = self.state();
            if state
                .kafka_warned_at
                .is_none_or(|at| at.elapsed() >= Duration::from_secs(30))
            {
                state.kafka_warned_at = Some(std::time::Instant::now());
                drop(state);
                warn!(%topic, down_for = ?down, "kafka unreachable; librdkafka keeps reconnecting");
            }
        }
    }

    /// `--once`: whether every partition's checkpoint reached its end offset taken at start.
    /// Partitions this instance does not own belong to other members (or to a crashed member
    /// whose session has not expired yet, after which they are assigned here), so the run stays
    /// in the group until they are done. Checks at most once a second.
    fn caught_up(
        &self,
        targets: &HashMap<i32, (i64, i64)>,
        last: &mut Option<(std::time::Instant, Vec<i32>)>,
    ) -> bool {
        if last
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < Duration::from_secs(1))
        {
            return false;
        }
        let checkpoints = &self.shared.checkpoints;
        let topic = &self.opts.topic;
        let pending: Vec<i32> = targets
            .iter()
            .filter(|(_, (low, high))| low < high)
            .map(|(p, _)| *p)
            .collect();
        let loaded = self.rt.block_on(futures::future::join_all(
            pending
                .iter()
                .map(|&p| async move { (p, checkpoints.load(topic, p).await) }),
        ));
        let mut behind = Vec::new();
        for (p, c) in loaded {
            match c {
                Ok(Some(v)) if v.checkpoint.next_offset >= targets[&p].1 => {}
                Ok(_) => behind.push(p),
                Err(e) => {
                    let message = format!("topic {topic} partition {p}: {e}");
                    self.fail(WorkerError::from(e).kind(), message);
                    return false;
                }
            }
        }
        behind.sort_unstable();
        if !behind.is_empty() && last.as_ref().is_none_or(|(_, b)| *b != behind) {
            info!(%topic, partitions = ?behind, "waiting for partitions owned by other members of the group");
        }
        *last = Some((std::time::Instant::now(), behind.clone()));
        behind.is_empty()
    }
}

/// Builds a consumer for one topic.
pub fn consumer(
    config: &rdkafka::ClientConfig,
    opts: SourceOptions,
    shared: Arc<Shared>,
    rt: Handle,
) -> Result<Arc<BaseConsumer<SourceContext>>, KafkaError> {
    let ctx = SourceContext {
        opts,
        shared,
        rt,
        state: Mutex::new(State::default()),
    };
    Ok(Arc::new(config.create_with_context(ctx)?))
}

/// Polls `consumer` until `stop` is set, `--once` is done, or a failure; then stops the workers
/// (each flushes its open window) and returns what the partitions did.
pub fn run(consumer: Arc<BaseConsumer<SourceContext>>, stop: Arc<AtomicBool>) -> SourceOutcome {
    let ctx = consumer.context();
    let topic = ctx.opts.topic.clone();
    if let Err(e) = consumer.subscribe(&[&topic]) {
        ctx.fail(
            FailureKind::Kafka,
            format!("cannot subscribe to topic {topic}: {e}"),
        );
    }
    let mut last_check: Option<(std::time::Instant, Vec<i32>)> = None;
    let mut last_probe = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match ctx.poll_timeout() {
            Some(timeout) => poll_batch(&consumer, timeout),
            None => std::thread::sleep(HELD_POLL_PAUSE),
        }
        ctx.check_kafka(&consumer, &mut last_probe);
        ctx.rewind(&consumer);
        ctx.dispatch(&consumer);
        ctx.reap();
        commit(&consumer);
        let state = ctx.state();
        if !state.outcome.errors.is_empty() {
            break;
        }
        let assigned_done = state.assigned && state.workers.is_empty();
        drop(state);
        if let Some(targets) = &ctx.opts.once {
            if assigned_done && ctx.caught_up(targets, &mut last_check) {
                info!(%topic, "every partition reached its end offset");
                ctx.state().outcome.caught_up = true;
                break;
            }
        }
    }
    let handles: Vec<_> = ctx.state().workers.drain().map(|(_, h)| h).collect();
    ctx.stop_workers(handles);
    commit(&consumer);
    consumer.unsubscribe();
    let mut outcome = std::mem::take(&mut ctx.state().outcome);
    outcome.reports.sort_by_key(|r| r.partition);
    let limit = if ctx.state().kafka_down_since.is_some() {
        Duration::from_secs(2)
    } else {
        ctx.opts.shutdown_timeout
    };
    close_within(consumer, limit, &topic);
    outcome
}

/// Closes the consumer (leaving the group), waiting at most `limit`: librdkafka's close waits
/// for the group coordinator, without end while the brokers are unreachable. Everything this
/// instance archived is checkpointed by then; a consumer still closing is left to the exit.
fn close_within(consumer: Arc<BaseConsumer<SourceContext>>, limit: Duration, topic: &str) {
    let (tx, rx) = std::sync::mpsc::channel();
    let closing = std::thread::Builder::new()
        .name(format!("hubcap-close-{topic}"))
        .spawn(move || {
            drop(consumer);
            let _ = tx.send(());
        });
    if closing.is_ok() && rx.recv_timeout(limit).is_err() {
        warn!(%topic, "the Kafka consumer did not close within {limit:?} (brokers unreachable?); not waiting for it");
    }
}

/// One poll that waits at most `timeout`, then whatever else is ready, up to a batch.
fn poll_batch(consumer: &BaseConsumer<SourceContext>, mut timeout: Duration) {
    let ctx = consumer.context();
    for _ in 0..BATCH {
        match consumer.poll(timeout) {
            None => break,
            Some(Ok(m)) => ctx.push_message(&m),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                ctx.push(p, Input::Eof(position(consumer, &ctx.opts.topic, p)))
            }
            Some(Err(e)) => {
                if !ctx.broker_trouble(&e) {
                    warn!(topic = %ctx.opts.topic, error = %e, "consumer error");
                }
                if matches!(e, KafkaError::MessageConsumptionFatal(_)) {
                    ctx.fail(
                        FailureKind::Kafka,
                        format!("topic {}: fatal consumer error: {e}", ctx.opts.topic),
                    );
                    break;
                }
            }
        }
        timeout = Duration::ZERO;
    }
}

/// The consumer's position in `partition`: at its end, past the transaction markers.
fn position(consumer: &BaseConsumer<SourceContext>, topic: &str, partition: i32) -> Option<i64> {
    let positions = consumer.position().ok()?;
    let at = positions
        .find_partition(topic, partition)?
        .offset()
        .to_raw()?;
    (at >= 0).then_some(at)
}

fn commit(consumer: &BaseConsumer<SourceContext>) {
    let ctx = consumer.context();
    let offsets = ctx.shared.commits.drain();
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), next) in offsets {
        if topic == ctx.opts.topic {
            let _ = tpl.add_partition_offset(&topic, partition, Offset::Offset(next));
        } else {
            ctx.shared.commits.offer(&topic, partition, next);
        }
    }
    if tpl.count() > 0 {
        // Advisory, for lag tools: hubcap resumes from its own checkpoints.
        if let Err(e) = consumer.commit(&tpl, rdkafka::consumer::CommitMode::Async) {
            debug!(error = %e, "kafka offset commit failed (advisory only)");
        }
    }
}
