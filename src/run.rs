//! Wiring and lifecycle: opens the stores, checks Kafka is reachable, starts one source per topic
//! and collects what every partition did.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::BaseConsumer;
use rdkafka::ClientConfig;
use tracing::info;

use crate::budget::MemoryBudget;
use crate::encode::format::Format;
use crate::kafka::consumer::{self as source, SourceOptions};
use crate::kafka::{self, KafkaConfig, MetadataError};
use crate::layout::{self, PathTemplate};
use crate::observe::clock::Clock;
use crate::observe::metrics::{BindError, Metrics};
use crate::observe::progress::{Progress, View};
use crate::partition::window::RollPolicy;
use crate::partition::{
    CommitQueue, Failure, FailureKind, FileSettings, PartitionReport, RewindQueue, Shared,
    WorkerError,
};
use crate::state::checkpoint::CheckpointStore;
use crate::state::manifest::Manifests;
use crate::state::sdk::SdkCheckpoints;
use crate::state::sdk::SdkConfig;
use crate::state::table::{TableConfig, TableError, Tables};
use crate::store::retry::RetryPolicy;
use crate::store::{Location, StoreError};
use crate::units::{ByteSize, HumanDuration};

mod watermarks;

/// How long to wait for Kafka metadata before calling the brokers unreachable.
const METADATA_TIMEOUT: Duration = Duration::from_secs(15);
/// Beyond the time window, how long a partition with records behind may go without archiving a
/// file before `/readyz` calls it stuck (the last upload and checkpoint of a window).
const STALL_MARGIN: Duration = Duration::from_secs(120);

/// Everything a run needs, validated: `cli::RunArgs::validate` makes one from the command line,
/// and `demo` one of its own. `Debug` redacts secrets (see [`kafka::secrets`]).
#[derive(Clone)]
pub struct RunConfig {
    pub kafka: KafkaConfig,
    /// Where data files go (a directory or an object store URL), and with them, unless
    /// `checkpoints` is given, the checkpoints and manifests.
    pub output: String,
    pub checkpoints: Option<String>,
    /// `{Namespace}` in object names.
    pub namespace: String,
    pub template: PathTemplate,
    pub policy: RollPolicy,
    pub format: Format,
    /// Whether a time window without records still gets a file (Capture's "empty files").
    pub empty_files: bool,
    /// Archive up to each partition's end offset as of the start, then exit.
    pub once: bool,
    /// How long a store or Kafka call is retried before the run gives up on it.
    pub retry_for: Duration,
    /// How long a stop may take to flush open windows.
    pub shutdown_timeout: Duration,
    /// How often `--once` reports progress.
    pub progress_interval: Duration,
    pub metrics_addr: Option<SocketAddr>,
    /// The memory budget, in bytes.
    pub memory_limit: u64,
    /// Mirror checkpoints for the Azure SDKs' processors.
    pub sdk_checkpoints: Option<SdkConfig>,
    /// Keep each topic as a table too: Delta, Iceberg or both (`TableConfig::formats`).
    pub table: Option<TableConfig>,
    /// How often each topic's completeness watermark is brought up to date.
    pub watermark_interval: Duration,
}

impl std::fmt::Debug for RunConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // URLs without their query (SAS tokens) and user info; anything else that looks like a
        // credential (a connection string given as a namespace, say) as `<redacted>`.
        let url = |u: &str| kafka::shown(&crate::store::redact_url(u)).into_owned();
        f.debug_struct("RunConfig")
            .field("kafka", &self.kafka)
            .field("output", &url(&self.output))
            .field("checkpoints", &self.checkpoints.as_deref().map(url))
            .field("namespace", &kafka::shown(&self.namespace))
            .field("template", &self.template)
            .field("policy", &self.policy)
            .field("format", &self.format)
            .field("empty_files", &self.empty_files)
            .field("once", &self.once)
            .field("retry_for", &self.retry_for)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("progress_interval", &self.progress_interval)
            .field("watermark_interval", &self.watermark_interval)
            .field("metrics_addr", &self.metrics_addr)
            .field("memory_limit", &self.memory_limit)
            .field(
                "sdk_checkpoints",
                &self.sdk_checkpoints.as_ref().map(|s| url(&s.url)),
            )
            .field("table", &self.table)
            .finish()
    }
}

impl RunConfig {
    /// A fresh memory budget of `memory_limit`.
    pub fn budget(&self) -> Arc<MemoryBudget> {
        MemoryBudget::new(usize::try_from(self.memory_limit).unwrap_or(usize::MAX))
    }

    /// The consumer's librdkafka settings, one topic's share of the budget for its prefetch.
    pub fn client_config(&self) -> ClientConfig {
        let prefetch_kbytes =
            (self.budget().prefetch_kbytes() / self.kafka.topics.len().max(1)).max(1024);
        kafka::client_config(&self.kafka, prefetch_kbytes, self.metrics_addr.is_some())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Metrics(#[from] BindError),
    #[error("cannot create a Kafka consumer: {}; check the -X settings", kafka::client_error(.0))]
    Client(rdkafka::error::KafkaError),
    #[error("cannot reach Kafka at {brokers} within {timeout:?} ({source}); check --brokers and the -X security settings")]
    Unreachable {
        brokers: String,
        timeout: Duration,
        source: rdkafka::error::KafkaError,
    },
    #[error("topic {topic:?} does not exist at {brokers}; create it or fix --topic")]
    UnknownTopic { topic: String, brokers: String },
    #[error("cannot start: a checkpoint is unreadable or unusable:\n  {}", lines(.0))]
    Checkpoints(Vec<Failure>),
    #[error("the run failed:\n  {}", lines(.0))]
    Failed(Vec<Failure>),
    /// `--once`, stopped by a signal before every partition reached its end offset.
    #[error("stopped by a signal before every partition reached its end offset; what was archived is checkpointed, run again to finish")]
    Interrupted,
    #[error("cannot start: {0}")]
    Table(#[from] TableError),
}

fn lines(failures: &[Failure]) -> String {
    let messages: Vec<&str> = failures.iter().map(|f| f.message.as_str()).collect();
    messages.join("\n  ")
}

/// hubcap's exit codes, for schedulers: whether to retry, page someone or fix the command.
pub mod exit {
    /// Done: `--once` reached every partition's end, or a continuous run stopped cleanly.
    pub const DONE: u8 = 0;
    /// Failed for a reason that needs a person: a record, a checkpoint or a table log hubcap
    /// cannot use, the store refusing hubcap (credentials, rights, a read-only or full disk),
    /// or a failure of hubcap itself; also `audit` finding the archive not clean.
    pub const FAILED: u8 = 1;
    /// The command line, environment or configuration file is wrong.
    pub const USAGE: u8 = 2;
    /// `--once` was stopped before the end; what was archived is checkpointed.
    pub const INCOMPLETE: u8 = 3;
    /// Kafka could not be reached, refused hubcap, or failed (after `--retry-for`).
    pub const KAFKA: u8 = 4;
    /// The store could not be reached, timed out or throttled hubcap (for `--retry-for`).
    pub const STORE: u8 = 5;
}

impl RunError {
    /// The process exit code for this error (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            // A directory hubcap may not create or write (or a file where it should be)
            // needs a person; a mount that failed to answer may come back.
            RunError::Store(StoreError::LocalDir { source, .. }) => {
                use std::io::ErrorKind as K;
                match source.kind() {
                    K::PermissionDenied
                    | K::ReadOnlyFilesystem
                    | K::StorageFull
                    | K::QuotaExceeded
                    | K::NotADirectory
                    | K::AlreadyExists => exit::FAILED,
                    _ => exit::STORE,
                }
            }
            RunError::Store(_) | RunError::Client(_) => exit::USAGE,
            RunError::Metrics(_) => exit::FAILED,
            RunError::Unreachable { .. } | RunError::UnknownTopic { .. } => exit::KAFKA,
            RunError::Interrupted => exit::INCOMPLETE,
            RunError::Table(e) if e.is_transient() || e.is_refused() => exit::STORE,
            RunError::Table(_) => exit::FAILED,
            RunError::Checkpoints(failures) | RunError::Failed(failures) => {
                // What needs a person wins over what a retry may fix.
                let has = |kind| failures.iter().any(|f: &Failure| f.kind == kind);
                let person = [
                    FailureKind::Data,
                    FailureKind::Refused,
                    FailureKind::Internal,
                ];
                if person.into_iter().any(has) || failures.is_empty() {
                    exit::FAILED
                } else if has(FailureKind::Store) {
                    exit::STORE
                } else {
                    exit::KAFKA
                }
            }
        }
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

/// The effective configuration, one line, secrets redacted.
pub fn describe(cfg: &RunConfig, output: &Location, checkpoints: &Location) -> String {
    format!(
        "brokers={} topics={} group={} output={} checkpoints={} window-size={} window-time={} format={} codec={} empty-files={} once={} namespace={} metrics={} kafka=[{}]",
        kafka::shown(&cfg.kafka.brokers),
        kafka::shown(&cfg.kafka.topics.join(",")),
        kafka::shown(&cfg.kafka.group),
        output.display,
        checkpoints.display,
        ByteSize(cfg.policy.max_bytes),
        HumanDuration(cfg.policy.max_age),
        cfg.format.name(),
        cfg.format.codec_name(),
        cfg.empty_files,
        cfg.once,
        kafka::shown(&cfg.namespace),
        cfg.metrics_addr.map_or("off".to_string(), |a| a.to_string()),
        kafka::redacted(&cfg.kafka.settings).join(" ")
    )
}

/// Runs the archiver until `stop` is set or, with `--once`, until every assigned partition
/// reached its end offset. `view`: how `--once` shows its progress.
pub async fn run(cfg: RunConfig, stop: Arc<AtomicBool>, view: View) -> Result<Summary, RunError> {
    let retry = retry_policy(cfg.retry_for);
    let output = Location::open(&cfg.output, "--output")?.with_retry(retry);
    let checkpoints = match &cfg.checkpoints {
        Some(url) => Location::open(url, "--checkpoints")?.with_retry(retry),
        None => output.child(layout::CHECKPOINTS_DIR),
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
    let sdk =
        SdkCheckpoints::from_config(cfg.sdk_checkpoints.as_ref(), retry_policy(cfg.retry_for))?;
    let metrics = Arc::new(Metrics::new(cfg.policy.max_age + STALL_MARGIN));
    for topic in &cfg.kafka.topics {
        metrics.topic(topic);
    }
    // Bound before Kafka is checked, so that a taken port fails the start at once and
    // /healthz answers while the run starts.
    let _server = match cfg.metrics_addr {
        Some(addr) => {
            let server = crate::observe::metrics::Server::bind(addr, metrics.clone()).await?;
            Some(AbortOnDrop(tokio::spawn(server.serve())))
        }
        None => None,
    };
    let kafka = cfg.client_config();
    let (partitions, watermarks) = preflight(&cfg, &kafka).await?;
    let clock = Clock::system();
    let checkpoints = CheckpointStore::new(checkpoints, &cfg.kafka.group).with_clock(clock.clone());
    check_checkpoints(&checkpoints, &partitions).await?;
    if let Some(sdk) = &sdk {
        let probe = sdk.probe().await;
        probe.map_err(|e| {
            RunError::Checkpoints(vec![Failure::new(FailureKind::Store, e.to_string())])
        })?;
    }

    let tables = match &cfg.table {
        Some(table) => Some(
            Tables::open(
                &output,
                table,
                &cfg.kafka.group,
                &cfg.namespace,
                &cfg.kafka.topics,
                &crate::encode::parquet::schema(),
            )
            .await?,
        ),
        None => None,
    };
    let shared = Arc::new(Shared {
        tables,
        output: output.clone(),
        checkpoints,
        sdk,
        manifests: Manifests::new(&output, &cfg.kafka.group),
        files: FileSettings {
            namespace: cfg.namespace.clone(),
            template: cfg.template.clone(),
            policy: cfg.policy,
            format: cfg.format,
            empty_files: cfg.empty_files,
            part_size: output.part_size(),
            min_part_size: output.min_part_size_for(cfg.policy.max_bytes),
        },
        budget: cfg.budget(),
        batches: Default::default(),
        owner: instance_id(),
        clock,
        commits: CommitQueue::default(),
        rewinds: RewindQueue::default(),
        workers: Default::default(),
        metrics: metrics.clone(),
    });
    let keeper = Arc::new(watermarks::Keeper::new(
        kafka.create().map_err(RunError::Client)?,
        shared.clone(),
        &cfg.kafka.group,
        &cfg.kafka.topics,
    ));
    let checking = keeper.clone().spawn(cfg.watermark_interval);
    let progress = cfg
        .once
        .then(|| Progress::start(metrics.clone(), view, cfg.progress_interval));
    let rt = tokio::runtime::Handle::current();
    let mut threads = Vec::new();
    for topic in &cfg.kafka.topics {
        let opts = SourceOptions {
            topic: topic.clone(),
            once: cfg.once.then(|| {
                let of_topic = watermarks.iter().filter(|((t, _), _)| t == topic);
                of_topic.map(|((_, p), w)| (*p, *w)).collect()
            }),
            shutdown_timeout: cfg.shutdown_timeout,
            metadata_timeout: METADATA_TIMEOUT,
            retry_for: cfg.retry_for,
        };
        let consumer =
            source::consumer(&kafka, opts, shared.clone(), rt.clone()).map_err(RunError::Client)?;
        let stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("hubcap-{topic}"))
            .spawn(move || source::run(consumer, stop))
            .map_err(|e| {
                let message = format!("cannot start the consumer thread: {e}");
                RunError::Failed(vec![Failure::new(FailureKind::Internal, message)])
            })?;
        threads.push(thread);
    }
    let mut summary = Summary {
        output: output.display.clone(),
        reports: Vec::new(),
    };
    let mut errors = Vec::new();
    let mut interrupted = false;
    for (topic, t) in cfg.kafka.topics.iter().zip(threads) {
        let outcome = match tokio::task::spawn_blocking(move || t.join()).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => {
                errors.push(Failure::new(
                    FailureKind::Internal,
                    format!("topic {topic}: the consumer thread panicked"),
                ));
                continue;
            }
            Err(e) => {
                errors.push(Failure::new(FailureKind::Internal, e.to_string()));
                continue;
            }
        };
        summary.reports.extend(outcome.reports);
        interrupted |= cfg.once && !outcome.caught_up && outcome.errors.is_empty();
        errors.extend(outcome.errors);
    }
    if let Some(p) = progress {
        p.finish().await;
    }
    // Once more, with what the last files moved.
    drop(checking);
    keeper.check_all().await;
    if !errors.is_empty() {
        Err(RunError::Failed(errors))
    } else if interrupted {
        Err(RunError::Interrupted)
    } else {
        Ok(summary)
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
                let message = e.to_string();
                errors.push(Failure::new(WorkerError::from(e).kind(), message));
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
) -> Result<(HashMap<String, i32>, kafka::Watermarks), RunError> {
    let consumer: BaseConsumer = kafka.create().map_err(RunError::Client)?;
    let topics = cfg.kafka.topics.clone();
    let once = cfg.once;
    let found = tokio::task::spawn_blocking(move || {
        kafka::topic_partitions(&consumer, &topics, once, METADATA_TIMEOUT)
    })
    .await
    .map_err(|e| RunError::Failed(vec![Failure::new(FailureKind::Internal, e.to_string())]))?;
    let brokers = cfg.kafka.brokers.clone();
    found.map_err(|e| match e {
        MetadataError::Unreachable(source) => RunError::Unreachable {
            brokers,
            timeout: METADATA_TIMEOUT,
            source,
        },
        MetadataError::UnknownTopic(topic) => RunError::UnknownTopic { topic, brokers },
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_put_what_needs_a_person_before_what_a_retry_may_fix() {
        let failed = |kinds: &[FailureKind]| {
            RunError::Failed(kinds.iter().map(|&k| Failure::new(k, "x")).collect()).exit_code()
        };
        use FailureKind::*;
        assert_eq!(failed(&[Kafka]), exit::KAFKA);
        assert_eq!(failed(&[Store, Kafka]), exit::STORE);
        assert_eq!(failed(&[Kafka, Data, Store]), exit::FAILED);
        assert_eq!(failed(&[Internal]), exit::FAILED);
        assert_eq!(failed(&[Store, Refused]), exit::FAILED);
        // What a worker's errors are, hence the code: refused or corrupt is 1, failing is 5.
        use crate::state::checkpoint::CheckpointError;
        use crate::store::CasError;
        let io = |kind: std::io::ErrorKind| object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(std::io::Error::from(kind)),
        };
        let upload = |source| WorkerError::Upload {
            path: "f".into(),
            source,
        };
        let not_found = object_store::Error::NotFound {
            path: "c".into(),
            source: "ContainerNotFound".into(),
        };
        let unreadable = TableError::Unreadable {
            url: "t".into(),
            reason: "Json error".into(),
        };
        for (e, kind) in [
            (upload(io(std::io::ErrorKind::PermissionDenied)), Refused),
            (upload(io(std::io::ErrorKind::StorageFull)), Refused),
            (upload(io(std::io::ErrorKind::ConnectionReset)), Store),
            (WorkerError::Table(unreadable), Data),
            (
                WorkerError::Checkpoint(CheckpointError::Store {
                    path: "c".into(),
                    source: CasError::Store(not_found),
                }),
                Refused,
            ),
        ] {
            assert_eq!(e.kind(), kind, "{e}");
        }
        assert_eq!(RunError::Interrupted.exit_code(), exit::INCOMPLETE);
        let corrupt = RunError::Checkpoints(vec![Failure::new(Data, "corrupt")]);
        assert_eq!(corrupt.exit_code(), exit::FAILED);
        let scheme = StoreError::Scheme {
            flag: "--output",
            url: "ftp://x".into(),
        };
        assert_eq!(RunError::Store(scheme).exit_code(), exit::USAGE);
        let codes = [
            exit::DONE,
            exit::FAILED,
            exit::USAGE,
            exit::INCOMPLETE,
            exit::KAFKA,
            exit::STORE,
        ];
        let distinct: std::collections::BTreeSet<u8> = codes.into_iter().collect();
        assert_eq!(distinct.len(), codes.len());
    }
}
