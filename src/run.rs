//! Wiring and lifecycle: opens the stores, checks Kafka is reachable, starts one source per topic
//! and collects what every partition did.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use tracing::info;

use crate::cli::{is_secret_setting, RunConfig};
use crate::kafka::consumer::{self as source, SourceOptions};
use crate::observe::metrics::{BindError, Metrics};
use crate::observe::progress::{Progress, View};
use crate::partition::{CommitQueue, PartitionReport, RewindQueue, Shared};
use crate::state::checkpoint::CheckpointStore;
use crate::state::manifest::Manifests;
use crate::state::sdk::SdkCheckpoints;
use crate::store::retry::RetryPolicy;
use crate::store::{Location, StoreError};

/// How long to wait for Kafka metadata before calling the brokers unreachable.
const METADATA_TIMEOUT: Duration = Duration::from_secs(15);
/// How often librdkafka reports statistics (high watermarks) with `--metrics-addr`.
const STATISTICS_INTERVAL_MS: &str = "2000";
/// Beyond the time window, how long a partition with records behind may go without archiving a
/// file before `/readyz` calls it stuck (the last upload and checkpoint of a window).
const STALL_MARGIN: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Metrics(#[from] BindError),
    #[error("cannot create a Kafka consumer: {}; check the -X settings", client_error(.0))]
    Client(rdkafka::error::KafkaError),
    #[error("cannot reach Kafka at {brokers} within {timeout:?} ({source}); check --brokers and the -X security settings")]
    Unreachable {
        brokers: String,
        timeout: Duration,
        source: rdkafka::error::KafkaError,
    },
    #[error("topic {topic:?} does not exist at {brokers}; create it or fix --topic")]
    UnknownTopic { topic: String, brokers: String },
    #[error("cannot start: a checkpoint is unreadable or unusable:\n  {}", .0.join("\n  "))]
    Checkpoints(Vec<String>),
    #[error("the run failed:\n  {}", .0.join("\n  "))]
    Failed(Vec<String>),
}

/// A client error without the setting's value: librdkafka's config errors repeat the value, which
/// may be a secret.
pub fn client_error(e: &rdkafka::error::KafkaError) -> String {
    match e {
        rdkafka::error::KafkaError::ClientConfig(_, desc, key, _) => format!("-X {key}: {desc}"),
        other => other.to_string(),
    }
}

/// What a run did, per partition.
#[derive(Debug, Default)]
pub struct Summary {
    pub output: String,
    pub reports: Vec<PartitionReport>,
}

impl Summary {
    pub fn files(&self) -> u64 {
        self.reports.iter().map(|r| r.files).sum()
    }
    pub fn events(&self) -> u64 {
        self.reports.iter().map(|r| r.events).sum()
    }
    pub fn bytes(&self) -> u64 {
        self.reports.iter().map(|r| r.bytes).sum()
    }

    /// A table: one line per partition, then the totals.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<24} {:>9} {:>7} {:>10} {:>12} {:>12}",
            "topic", "partition", "files", "events", "bytes", "next offset"
        );
        for r in &self.reports {
            let next = r.next_offset.map_or("-".to_string(), |n| n.to_string());
            let _ = writeln!(
                s,
                "{:<24} {:>9} {:>7} {:>10} {:>12} {:>12}",
                r.topic, r.partition, r.files, r.events, r.bytes, next
            );
        }
        let _ = write!(
            s,
            "{:<24} {:>9} {:>7} {:>10} {:>12}",
            "total",
            "",
            self.files(),
            self.events(),
            self.bytes()
        );
        s
    }
}

/// The librdkafka settings: hubcap's defaults, then the user's `-X` settings, then the settings
/// hubcap relies on, which win.
pub fn kafka_config(cfg: &RunConfig) -> ClientConfig {
    let prefetch_kbytes = (cfg.budget().prefetch_kbytes() / cfg.args.topics.len().max(1)).max(1024);
    let message_max = cfg
        .kafka
        .iter()
        .find(|(k, _)| k == "message.max.bytes")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut c = ClientConfig::new();
    c.set("client.id", "hubcap")
        .set("auto.offset.reset", "earliest")
        // Committed records only, never aborted ones or those of open transactions; a
        // partition's end is then its last stable offset, so `--once` neither waits for open
        // transactions nor skips them (librdkafka's default too, stated because the archive's
        // contents depend on it). `-X isolation.level=read_uncommitted` archives everything.
        .set("isolation.level", "read_committed")
        // librdkafka's prefetch queue, one per topic's consumer: its part of --memory-limit.
        .set("queued.max.messages.kbytes", prefetch_kbytes.to_string())
        // A fetch response is kept whole while any record of it waits in the queue, and the
        // queue's bound is only checked before a fetch: one response (50 MB by default) would
        // overshoot it many times over. librdkafka wants it no smaller than
        // `message.max.bytes`, which `-X` may raise.
        .set(
            "fetch.max.bytes",
            (prefetch_kbytes * 1024).max(message_max).to_string(),
        )
        // When the prefetch queue is full, librdkafka postpones every partition's next fetch
        // by this long (default 1 s). A consumer that hands records on to workers fills its
        // queue often, and drains it (a sixty-fourth of the budget) in about 15 ms: a longer
        // pause leaves it idle (at 1 s, a third of the speed at 256 partitions; at 50 ms, 30 %
        // slower than at 2 ms).
        .set("fetch.queue.backoff.ms", "2");
    if cfg.args.metrics_addr.is_some() {
        // High watermarks for the lag metrics, read off the poll thread's statistics callback.
        c.set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
    }
    for (k, v) in &cfg.kafka {
        c.set(k, v);
    }
    c.set("bootstrap.servers", &cfg.args.brokers)
        .set("group.id", &cfg.args.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true");
    c
}

/// The effective configuration, one line, secrets redacted.
pub fn describe(cfg: &RunConfig, output: &Location, checkpoints: &Location) -> String {
    let kafka: Vec<String> = cfg
        .kafka
        .iter()
        .map(|(k, v)| {
            if is_secret_setting(k) {
                format!("{k}=<redacted>")
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    format!(
        "brokers={} topics={} group={} output={} checkpoints={} window-size={} window-time={} format={} codec={} empty-files={} once={} namespace={} metrics={} kafka=[{}]",
        cfg.args.brokers,
        cfg.args.topics.join(","),
        cfg.args.group,
        output.display,
        checkpoints.display,
        cfg.args.window_size,
        cfg.args.window_time,
        cfg.format.name(),
        cfg.format.codec_name(),
        cfg.args.empty_files,
        cfg.args.once,
        cfg.namespace,
        cfg.args
            .metrics_addr
            .map_or("off".to_string(), |a| a.to_string()),
        kafka.join(" ")
    )
}

/// Runs the archiver until `stop` is set or, with `--once`, until every assigned partition
/// reached its end offset. `view`: how `--once` shows its progress.
pub async fn run(cfg: RunConfig, stop: Arc<AtomicBool>, view: View) -> Result<Summary, RunError> {
    let retry = retry_policy(cfg.args.retry_for.0);
    let output = Location::open(&cfg.args.output, "--output")?.with_retry(retry);
    let checkpoints = match &cfg.args.checkpoints {
        Some(url) => Location::open(url, "--checkpoints")?.with_retry(retry),
        None => output.child("_checkpoints"),
    };
    run_observed(cfg, output, checkpoints, stop, view).await
}

/// The retry policy of `--retry-for`: each attempt is bounded by the same time, at most 2 min.
pub fn retry_policy(retry_for: Duration) -> RetryPolicy {
    RetryPolicy {
        attempt_timeout: retry_for.clamp(Duration::from_secs(1), Duration::from_secs(120)),
        ..RetryPolicy::giving_up_after(retry_for)
    }
}

/// [`run`] on stores already opened (tests wrap them, e.g. to inject faults), progress in log
/// lines.
pub async fn run_with(
    cfg: RunConfig,
    output: Location,
    checkpoints: Location,
    stop: Arc<AtomicBool>,
) -> Result<Summary, RunError> {
    run_observed(cfg, output, checkpoints, stop, View::Log).await
}

/// Aborts a background task when dropped (the metrics server outlives no run).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// [`run_with`], with `--once` progress shown as `view`.
pub async fn run_observed(
    cfg: RunConfig,
    output: Location,
    checkpoints: Location,
    stop: Arc<AtomicBool>,
    view: View,
) -> Result<Summary, RunError> {
    info!("starting: {}", describe(&cfg, &output, &checkpoints));
    let sdk = SdkCheckpoints::from_config(&cfg, retry_policy(cfg.args.retry_for.0))?;
    let metrics = Arc::new(Metrics::new(cfg.args.window_time.0 + STALL_MARGIN));
    for topic in &cfg.args.topics {
        metrics.topic(topic);
    }
    // Bound before Kafka is checked, so that a taken port fails the start at once and
    // /healthz answers while the run starts.
    let _server = match cfg.args.metrics_addr {
        Some(addr) => {
            let server = crate::observe::metrics::Server::bind(addr, metrics.clone()).await?;
            Some(AbortOnDrop(tokio::spawn(server.serve())))
        }
        None => None,
    };
    let kafka = kafka_config(&cfg);
    let (partitions, watermarks) = preflight(&cfg, &kafka).await?;
    let checkpoints = CheckpointStore::new(checkpoints, &cfg.args.group);
    check_checkpoints(&checkpoints, &partitions).await?;
    if let Some(sdk) = &sdk {
        let probe = sdk.probe().await;
        probe.map_err(|e| RunError::Checkpoints(vec![e.to_string()]))?;
    }

    let shared = Arc::new(Shared {
        output: output.clone(),
        checkpoints,
        sdk,
        manifests: Manifests::new(&output, &cfg.args.group),
        namespace: cfg.namespace.clone(),
        template: cfg.template.clone(),
        policy: cfg.policy,
        format: cfg.format,
        empty_files: cfg.args.empty_files,
        part_size: output.part_size(),
        min_part_size: output.min_part_size_for(cfg.policy.max_bytes),
        budget: cfg.budget(),
        batches: Default::default(),
        owner: instance_id(),
        commits: CommitQueue::default(),
        rewinds: RewindQueue::default(),
        workers: Default::default(),
        metrics: metrics.clone(),
    });
    let progress = cfg
        .args
        .once
        .then(|| Progress::start(metrics.clone(), view, cfg.args.progress_interval.0));
    let rt = tokio::runtime::Handle::current();
    let mut threads = Vec::new();
    for topic in &cfg.args.topics {
        let opts = SourceOptions {
            topic: topic.clone(),
            once: cfg
                .args
                .once
                .then(|| watermarks.get(topic).cloned().unwrap_or_default()),
            shutdown_timeout: cfg.args.shutdown_timeout.0,
            metadata_timeout: METADATA_TIMEOUT,
            retry_for: cfg.args.retry_for.0,
        };
        let consumer =
            source::consumer(&kafka, opts, shared.clone(), rt.clone()).map_err(RunError::Client)?;
        let stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("hubcap-{topic}"))
            .spawn(move || source::run(consumer, stop))
            .map_err(|e| {
                RunError::Failed(vec![format!("cannot start the consumer thread: {e}")])
            })?;
        threads.push(thread);
    }
    let mut summary = Summary {
        output: output.display.clone(),
        reports: Vec::new(),
    };
    let mut errors = Vec::new();
    for t in threads {
        let outcome = match tokio::task::spawn_blocking(move || t.join()).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => {
                errors.push("a consumer thread panicked".into());
                continue;
            }
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        summary.reports.extend(outcome.reports);
        if cfg.args.once && !outcome.caught_up && outcome.errors.is_empty() {
            errors.push("stopped by a signal before every partition reached its end offset; what was archived is checkpointed, run again to finish".into());
        }
        errors.extend(outcome.errors);
    }
    if let Some(p) = progress {
        p.finish().await;
    }
    if errors.is_empty() {
        Ok(summary)
    } else {
        Err(RunError::Failed(errors))
    }
}

/// Reads every partition's checkpoint before joining the group, so that an unreachable store,
/// wrong credentials or a checkpoint hubcap cannot use stop the run at once, with a message,
/// instead of at the first assignment.
async fn check_checkpoints(
    checkpoints: &CheckpointStore,
    partitions: &HashMap<String, i32>,
) -> Result<(), RunError> {
    let all = partitions
        .iter()
        .flat_map(|(topic, &n)| (0..n).map(move |p| (topic.as_str(), p)));
    let mut errors = Vec::new();
    for chunk in all.collect::<Vec<_>>().chunks(16) {
        let loads = chunk.iter().map(|&(topic, p)| checkpoints.load(topic, p));
        for r in futures::future::join_all(loads).await {
            if let Err(e) = r {
                errors.push(e.to_string());
            }
        }
        if !errors.is_empty() {
            break;
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RunError::Checkpoints(errors))
    }
}

/// Fails fast, with a message naming the fix, when the brokers cannot be reached or a topic
/// does not exist. Returns each topic's partition count and, with `--once`, every partition's
/// watermarks: the run's end.
async fn preflight(
    cfg: &RunConfig,
    kafka: &ClientConfig,
) -> Result<(HashMap<String, i32>, Watermarks), RunError> {
    let consumer: BaseConsumer = kafka.create().map_err(RunError::Client)?;
    let topics = cfg.args.topics.clone();
    let brokers = cfg.args.brokers.clone();
    let once = cfg.args.once;
    let cfg_brokers = brokers.clone();
    let unreachable = move |source| RunError::Unreachable {
        brokers: brokers.clone(),
        timeout: METADATA_TIMEOUT,
        source,
    };
    tokio::task::spawn_blocking(move || {
        let mut counts = HashMap::new();
        let mut marks = Watermarks::new();
        for topic in &topics {
            let md = consumer
                .fetch_metadata(Some(topic), METADATA_TIMEOUT)
                .map_err(&unreachable)?;
            let partitions = md
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .map_or(0, |t| t.partitions().len() as i32);
            if partitions == 0 {
                return Err(RunError::UnknownTopic {
                    topic: topic.clone(),
                    brokers: cfg_brokers.clone(),
                });
            }
            counts.insert(topic.clone(), partitions);
            if once {
                let mut m = HashMap::new();
                for p in 0..partitions {
                    let w = consumer
                        .fetch_watermarks(topic, p, METADATA_TIMEOUT)
                        .map_err(&unreachable)?;
                    m.insert(p, w);
                }
                marks.insert(topic.clone(), m);
            }
        }
        Ok((counts, marks))
    })
    .await
    .map_err(|e| RunError::Failed(vec![e.to_string()]))?
}

/// Per topic, per partition: (low, high) watermarks.
type Watermarks = HashMap<String, HashMap<i32, (i64, i64)>>;

/// `{host}-{pid}-{random}`: names the owner in checkpoints.
fn instance_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}
