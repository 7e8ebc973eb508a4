//! The command line: clap derive, every flag with an `HUBCAP_…` environment variable, units that
//! validate on parse, and cross-field checks in [`RunArgs::validate`].

pub mod file;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::encode::avro::Codec;
use crate::encode::format::Format;
use crate::encode::parquet::ParquetCompression;
use crate::layout::{namespace_from_brokers, PathError, PathTemplate, DEFAULT_TEMPLATE};
use crate::partition::window::RollPolicy;

#[derive(Debug, Parser)]
#[command(
    name = "hubcap",
    version,
    about = "Archive Kafka topics into Event Hubs Capture-style Avro files in object storage, exactly once."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log lines (on stderr): `text` for people, `json` (one object per line) for collectors.
    /// The level filter is HUBCAP_LOG (default: info).
    #[arg(
        long,
        global = true,
        env = "HUBCAP_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Archive topics as a consumer group, continuously or (with --once) up to their end.
    Run(Box<RunArgs>),
    /// Print the configuration `run` would use, as TOML with secrets redacted, and exit.
    ///
    /// Takes the same flags as `run`. Precedence: flags > HUBCAP_* environment > --config file >
    /// defaults; each value is followed by a comment saying where it came from. Exits non-zero
    /// (after printing) when `run` would refuse the settings.
    Config(Box<RunArgs>),
    /// Start an in-process Kafka cluster, produce sample events and archive them to ./capture.
    Demo(DemoArgs),
    /// Print the records of an Avro or Parquet file, or of every file under a prefix, as JSON
    /// lines (real Capture files too); --stats prints a summary per file instead.
    Inspect(crate::tools::inspect::InspectArgs),
    /// Check that every offset is in exactly one file up to each partition's checkpoint: report
    /// gaps, overlaps, orphans and unreadable files; exit 0 only when the archive is clean.
    Audit(crate::tools::audit::AuditArgs),
}

/// `--config PATH` is not a field: [`crate::cli::file::parse`] has applied the file by the time
/// these are parsed.
#[derive(Debug, Clone, Args)]
#[command(arg(crate::cli::file::config_arg()))]
pub struct RunArgs {
    /// Kafka bootstrap servers, HOST:PORT[,HOST:PORT…].
    #[arg(
        long,
        env = "HUBCAP_BROKERS",
        default_value = "",
        hide_default_value = true,
        required_unless_present = "eventhubs_connection_string"
    )]
    pub brokers: String,

    /// An Azure Event Hubs connection string (Endpoint=sb://…;SharedAccessKeyName=…;
    /// SharedAccessKey=…[;EntityPath=HUB]): sets the brokers to the namespace's Kafka endpoint
    /// (port 9093, SASL_SSL, PLAIN), the topic to EntityPath when given, and {Namespace}. A
    /// secret: never printed.
    #[arg(
        long,
        env = "HUBCAP_EVENTHUBS_CONNECTION_STRING",
        hide_env_values = true,
        value_parser = crate::kafka::eventhubs::secret,
        value_name = "STRING"
    )]
    pub eventhubs_connection_string: Option<crate::kafka::eventhubs::Secret>,

    /// Topic to archive; repeat the flag (or comma-separate the variable) for several.
    #[arg(
        long = "topic",
        env = "HUBCAP_TOPIC",
        value_delimiter = ',',
        required_unless_present = "eventhubs_connection_string"
    )]
    pub topics: Vec<String>,

    /// Consumer group id; checkpoints are kept per group.
    #[arg(long, env = "HUBCAP_GROUP")]
    pub group: String,

    /// Where files go: a local directory, or file://, az://, abfss://, s3://, gs://, memory:// URL.
    #[arg(long, env = "HUBCAP_OUTPUT", default_value = "./capture")]
    pub output: String,

    /// Where checkpoints go (same URL forms); default: the `_checkpoints/` prefix of --output.
    #[arg(long, env = "HUBCAP_CHECKPOINTS")]
    pub checkpoints: Option<String>,

    /// Size window: a file closes before it would exceed this many encoded bytes (e.g. 300MiB, 10MB).
    #[arg(long, env = "HUBCAP_WINDOW_SIZE", default_value = "300MiB")]
    pub window_size: ByteSize,

    /// Time window: a file closes this long after its window opened (e.g. 5m, 90s, 1h).
    #[arg(long, env = "HUBCAP_WINDOW_TIME", default_value = "5m")]
    pub window_time: HumanDuration,

    /// Object name template; tokens {Namespace} {EventHub} {PartitionId} {Year} {Month} {Day}
    /// {Hour} {Minute} {Second} {Offset}. `-{Offset}` is appended when absent, then `.avro`.
    #[arg(long, env = "HUBCAP_PATH_FORMAT", default_value = DEFAULT_TEMPLATE)]
    pub path_format: String,

    /// Value of {Namespace}; default: the first label of the first broker's host name.
    #[arg(long, env = "HUBCAP_NAMESPACE")]
    pub namespace: Option<String>,

    /// File format: avro (Capture's, the default) or parquet (same columns, plus a timestamp).
    #[arg(long, env = "HUBCAP_FORMAT", value_enum, default_value = "avro")]
    pub format: FormatName,

    /// Avro codec: null (what Capture writes) or deflate.
    #[arg(long, env = "HUBCAP_CODEC", value_enum, default_value = "null")]
    pub codec: Codec,

    /// Parquet compression: zstd, snappy or none.
    #[arg(long, env = "HUBCAP_COMPRESSION", value_enum, default_value = "zstd")]
    pub compression: ParquetCompression,

    /// Parquet row group size, in record bytes (keys, values, headers) before encoding: an open
    /// file holds one row group's records in memory. Default: from --memory-limit, a quarter of
    /// each open file's share, 256 KiB to 8 MiB.
    #[arg(long, env = "HUBCAP_ROW_GROUP_SIZE")]
    pub row_group_size: Option<ByteSize>,

    /// Memory budget of the whole instance (e.g. 256MiB, 1GiB): librdkafka's prefetch, records
    /// waiting for their partition, open files' blocks, row groups and upload parts are sized
    /// from it; when records waiting reach their part, fetching pauses. At least 32MiB.
    #[arg(long, env = "HUBCAP_MEMORY_LIMIT", default_value = "256MiB")]
    pub memory_limit: ByteSize,

    /// Write an empty Capture file (header plus one empty block) for a window without events.
    #[arg(long, env = "HUBCAP_EMPTY_FILES")]
    pub empty_files: bool,

    /// Scheduled mode: archive each assigned partition up to its end offset at start, then exit.
    #[arg(long, env = "HUBCAP_ONCE")]
    pub once: bool,

    /// On SIGINT/SIGTERM (or a revoked partition), how long to flush open windows before giving up.
    #[arg(long, env = "HUBCAP_SHUTDOWN_TIMEOUT", default_value = "30s")]
    pub shutdown_timeout: HumanDuration,

    /// How long a failing store operation is retried (with backoff, one log line per retry)
    /// before the run gives up and exits non-zero. Each attempt is bounded by the same limit,
    /// at most 2 minutes.
    #[arg(long, env = "HUBCAP_RETRY_FOR", default_value = "5m")]
    pub retry_for: HumanDuration,

    /// Also keep Azure SDK checkpoints in this container (az://CONTAINER, the one an
    /// EventProcessorClient's BlobCheckpointStore uses): per partition, a zero-length blob
    /// NAMESPACE/HUB/GROUP/checkpoint/ID whose metadata names the last archived event, so a
    /// processor can take over where hubcap stopped; a partition without a hubcap checkpoint
    /// starts after the one found there.
    #[arg(long, env = "HUBCAP_AZURE_SDK_CHECKPOINTS", value_name = "URL")]
    pub azure_sdk_checkpoints: Option<String>,

    /// The fully qualified Event Hubs namespace in the Azure SDK checkpoint names; default: the
    /// connection string's host, else the first broker's host.
    #[arg(long, env = "HUBCAP_AZURE_SDK_NAMESPACE", value_name = "HOST")]
    pub azure_sdk_namespace: Option<String>,

    /// The Event Hubs consumer group in the Azure SDK checkpoint names (the processor's, e.g.
    /// $Default); default: --group. Event Hubs keeps Kafka group ids apart from its consumer
    /// groups, so the two may differ.
    #[arg(long, env = "HUBCAP_AZURE_SDK_CONSUMER_GROUP", value_name = "NAME")]
    pub azure_sdk_consumer_group: Option<String>,

    /// Serve Prometheus metrics on http://ADDR/metrics, with /healthz and /readyz, at this
    /// IP:PORT (e.g. 127.0.0.1:9464; 0.0.0.0:9464 for every interface). Off by default.
    #[arg(long, env = "HUBCAP_METRICS_ADDR", value_name = "IP:PORT")]
    pub metrics_addr: Option<std::net::SocketAddr>,

    /// No live progress bars: on a terminal, --once then reports its progress in periodic log
    /// lines, as it always does off a terminal (HUBCAP_LOG=warn hides those too).
    #[arg(long, short = 'q', env = "HUBCAP_QUIET")]
    pub quiet: bool,

    /// How often --once logs its progress in log-line form.
    #[arg(
        long,
        env = "HUBCAP_PROGRESS_INTERVAL",
        default_value = "10s",
        hide = true
    )]
    pub progress_interval: HumanDuration,

    /// A librdkafka setting, key=value (security, SASL, TLS, …); repeatable. Settings hubcap
    /// relies on (group.id, enable.auto.commit, …) are applied after these and win.
    /// (Parsed in `validate`, not by clap: clap's errors would echo a malformed value, which
    /// may hold a secret; the environment value is hidden from `--help` for the same reason.)
    #[arg(
        short = 'X',
        value_name = "KEY=VALUE",
        env = "HUBCAP_KAFKA_CONFIG",
        value_delimiter = '\n',
        hide_env_values = true
    )]
    pub kafka: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Where the demo writes its files.
    #[arg(long, env = "HUBCAP_OUTPUT", default_value = "./capture")]
    pub output: String,

    /// How many events the demo produces.
    #[arg(long, default_value_t = 5000)]
    pub events: usize,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatName {
    Avro,
    Parquet,
}

/// Uncompressed size at which an Avro block closes.
const AVRO_BLOCK: usize = 1 << 20;

/// Everything a run needs, validated. `Debug` redacts secret settings.
#[derive(Clone)]
pub struct RunConfig {
    pub args: RunArgs,
    pub namespace: String,
    pub template: PathTemplate,
    pub policy: RollPolicy,
    pub format: Format,
    /// The `-X` settings, in order.
    pub kafka: Vec<(String, String)>,
}

impl std::fmt::Debug for RunConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |k: &str, v: &str| {
            if is_secret_setting(k) {
                format!("{k}=<redacted>")
            } else {
                format!("{k}={v}")
            }
        };
        let mut args = self.args.clone();
        args.kafka = args
            .kafka
            .iter()
            .map(|s| match s.split_once('=') {
                Some((k, v)) => redact(k.trim(), v),
                None => "<not key=value>".into(),
            })
            .collect();
        let kafka: Vec<String> = self.kafka.iter().map(|(k, v)| redact(k, v)).collect();
        f.debug_struct("RunConfig")
            .field("args", &args)
            .field("namespace", &self.namespace)
            .field("template", &self.template)
            .field("policy", &self.policy)
            .field("format", &self.format)
            .field("kafka", &kafka)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("--{flag} must be greater than zero")]
    Zero { flag: &'static str },
    #[error("--topic {0:?} is not a valid Kafka topic name (letters, digits, '.', '_' and '-', at most 249)")]
    Topic(String),
    #[error("--brokers is empty; give HOST:PORT, e.g. --brokers 127.0.0.1:9092, or --eventhubs-connection-string")]
    Brokers,
    #[error("no --topic; give one, or an entity-scoped connection string (…;EntityPath=HUB)")]
    NoTopic,
    /// Not `#[from]`: a source would be printed twice by `{:#}`, after this message's `{0}`.
    #[error("--eventhubs-connection-string: {0}")]
    EventHubs(crate::kafka::eventhubs::ConnectionStringError),
    #[error("--group is empty; give the consumer group id, e.g. --group hubcap")]
    Group,
    #[error("-X {0}")]
    KafkaSetting(String),
    #[error("--memory-limit {} is too small: hubcap needs at least 32MiB (librdkafka's prefetch and a few open files); the default is 256MiB", crate::cli::ByteSize(*.0))]
    MemoryLimit(u64),
    #[error("--azure-sdk-checkpoints: {0}")]
    SdkCheckpoints(String),
}

impl RunArgs {
    pub fn validate(mut self) -> Result<RunConfig, ConfigError> {
        let mut kafka = Vec::new();
        let mut eventhubs_host = None;
        if let Some(secret) = &self.eventhubs_connection_string {
            let conn = crate::kafka::eventhubs::parse(&secret.0).map_err(ConfigError::EventHubs)?;
            eventhubs_host = Some(conn.host.clone());
            if self.brokers.trim().is_empty() {
                self.brokers = conn.bootstrap_servers();
            }
            if self.topics.is_empty() {
                self.topics.extend(conn.entity_path.clone());
            }
            kafka = crate::kafka::eventhubs::Connection::kafka_settings(secret);
        }
        if self.topics.is_empty() {
            return Err(ConfigError::NoTopic);
        }
        if self.brokers.trim().is_empty() {
            return Err(ConfigError::Brokers);
        }
        if self.group.trim().is_empty() {
            return Err(ConfigError::Group);
        }
        for topic in &self.topics {
            let valid = !topic.is_empty()
                && topic.len() <= 249
                && topic != "."
                && topic != ".."
                && topic
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if !valid {
                return Err(ConfigError::Topic(topic.clone()));
            }
        }
        if self.window_size.0 == 0 {
            return Err(ConfigError::Zero {
                flag: "window-size",
            });
        }
        if self.window_time.0.is_zero() {
            return Err(ConfigError::Zero {
                flag: "window-time",
            });
        }
        if self.progress_interval.0.is_zero() {
            return Err(ConfigError::Zero {
                flag: "progress-interval",
            });
        }
        if self.memory_limit.0 < crate::budget::MIN_LIMIT {
            return Err(ConfigError::MemoryLimit(self.memory_limit.0));
        }
        if self.row_group_size.is_some_and(|s| s.0 == 0) {
            return Err(ConfigError::Zero {
                flag: "row-group-size",
            });
        }
        let format = match self.format {
            FormatName::Avro => Format::Avro {
                codec: self.codec,
                block_target: AVRO_BLOCK,
            },
            FormatName::Parquet => Format::Parquet {
                compression: self.compression,
                row_group_bytes: self
                    .row_group_size
                    .map_or(0, |s| usize::try_from(s.0).unwrap_or(usize::MAX)),
            },
        };
        self.validate_sdk_checkpoints(eventhubs_host)?;
        let template = PathTemplate::parse(&self.path_format, format.extension())?;
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| namespace_from_brokers(&self.brokers));
        let policy = RollPolicy {
            max_bytes: self.window_size.0,
            max_age: self.window_time.0,
        };
        // The connection string's settings first, so that -X can still change them.
        for setting in self.kafka.iter().filter(|s| !s.trim().is_empty()) {
            kafka.push(parse_key_value(setting).map_err(ConfigError::KafkaSetting)?);
        }
        Ok(RunConfig {
            args: self,
            namespace,
            template,
            policy,
            format,
            kafka,
        })
    }
}

impl RunConfig {
    /// A fresh memory budget of `--memory-limit`.
    pub fn budget(&self) -> std::sync::Arc<crate::budget::MemoryBudget> {
        crate::budget::MemoryBudget::new(
            usize::try_from(self.args.memory_limit.0).unwrap_or(usize::MAX),
        )
    }
}

impl RunArgs {
    /// `--azure-sdk-checkpoints`: a store that keeps blob metadata, and names the SDKs can split
    /// on `/`. Fills in the default namespace.
    fn validate_sdk_checkpoints(
        &mut self,
        eventhubs_host: Option<String>,
    ) -> Result<(), ConfigError> {
        use crate::state::sdk::{namespace_from_brokers, segment_problem};
        let Some(url) = &self.azure_sdk_checkpoints else {
            return Ok(());
        };
        if !url.contains("://") || url.starts_with("file:") {
            return Err(ConfigError::SdkCheckpoints(
                "a local directory cannot keep blob metadata; give the container an Azure SDK processor uses, e.g. az://checkpoints".into(),
            ));
        }
        let namespace = self
            .azure_sdk_namespace
            .clone()
            .or(eventhubs_host)
            .unwrap_or_else(|| namespace_from_brokers(&self.brokers));
        let (group_flag, group) = match &self.azure_sdk_consumer_group {
            Some(g) => ("--azure-sdk-consumer-group", g.clone()),
            None => ("--group", self.group.clone()),
        };
        // Topics were checked already: their characters are all allowed.
        for (what, value) in [("the namespace", &namespace), (group_flag, &group)] {
            if let Some(problem) = segment_problem(value) {
                return Err(ConfigError::SdkCheckpoints(format!(
                    "{what} {value:?} {problem}, so it cannot be one part of a checkpoint blob name"
                )));
            }
        }
        self.azure_sdk_namespace = Some(namespace);
        self.azure_sdk_consumer_group = Some(group);
        Ok(())
    }
}

pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        // librdkafka names are lowercase words with dots; anything else is likely a value given
        // without its key, such as a bare Event Hubs connection string (`Endpoint=sb://…`).
        Some((k, _)) if !k.trim().chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_') => Err(format!(
            "{:?} is not a librdkafka setting name (lowercase words with dots, like security.protocol); \
             an Event Hubs connection string goes in --eventhubs-connection-string",
            redact_unparsed(k.trim())
        )),
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!(
            "expected KEY=VALUE (a librdkafka setting), e.g. -X security.protocol=SASL_SSL; got {:?}",
            redact_unparsed(s)
        )),
    }
}

/// Shows at most the start of a malformed setting: it may hold a secret.
fn redact_unparsed(s: &str) -> String {
    let head: String = s.chars().take(12).collect();
    if head.len() < s.len() {
        format!("{head}…")
    } else {
        head
    }
}

/// Whether a librdkafka setting holds a secret that must never be printed.
pub fn is_secret_setting(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "sasl.oauthbearer.config",
        "ssl.key.pem",
        "ssl_key",
        "token",
    ]
    .iter()
    .any(|needle| k.contains(needle))
}

/// A byte count that parses `300MiB`, `10MB`, `1GiB`, `4096`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid size {s:?}: use a number with a unit, like 300MiB, 10MB, 512KiB or 1GiB"
            )
        };
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| bad())?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1_000,
            "kib" => 1 << 10,
            "mb" => 1_000_000,
            "mib" => 1 << 20,
            "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            _ => return Err(bad()),
        };
        n.checked_mul(mult).map(ByteSize).ok_or_else(bad)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        match n {
            _ if n >= 1 << 30 && n.is_multiple_of(1 << 30) => write!(f, "{}GiB", n >> 30),
            _ if n >= 1 << 20 && n.is_multiple_of(1 << 20) => write!(f, "{}MiB", n >> 20),
            _ if n >= 1 << 10 && n.is_multiple_of(1 << 10) => write!(f, "{}KiB", n >> 10),
            _ => write!(f, "{n}B"),
        }
    }
}

/// A duration that parses `5m`, `90s`, `1h30m`, `500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid duration {s:?}: use a number with a unit, like 5m, 90s, 1h30m or 500ms"
            )
        };
        let mut rest = s.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total = Duration::ZERO;
        while !rest.is_empty() {
            let split = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            let n: u64 = rest[..split].parse().map_err(|_| bad())?;
            let unit_end = rest[split..]
                .find(|c: char| c.is_ascii_digit())
                .map_or(rest.len(), |i| split + i);
            let unit = match &rest[split..unit_end] {
                "ms" => Duration::from_millis(1),
                "s" => Duration::from_secs(1),
                "m" => Duration::from_secs(60),
                "h" => Duration::from_secs(3600),
                _ => return Err(bad()),
            };
            total += unit
                .checked_mul(u32::try_from(n).map_err(|_| bad())?)
                .ok_or_else(bad)?;
            rest = &rest[unit_end..];
        }
        Ok(HumanDuration(total))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<RunArgs, clap::Error> {
        let mut full = vec!["hubcap", "run"];
        full.extend_from_slice(args);
        Cli::try_parse_from(full).map(|cli| match cli.command {
            Command::Run(a) => *a,
            _ => unreachable!(),
        })
    }

    const CONN: &str = "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=c2VjcmV0LWtleQ==;EntityPath=clicks";

    #[test]
    fn an_event_hubs_connection_string_sets_brokers_topic_namespace_and_sasl() {
        let cfg = parse(&["--group", "g", "--eventhubs-connection-string", CONN])
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(cfg.args.brokers, "contoso.servicebus.windows.net:9093");
        assert_eq!(cfg.args.topics, ["clicks"]);
        assert_eq!(cfg.namespace, "contoso");
        let get = |k: &str| {
            cfg.kafka
                .iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(get("sasl.mechanism"), Some("PLAIN"));
        assert_eq!(get("sasl.username"), Some("$ConnectionString"));
        assert_eq!(get("sasl.password"), Some(CONN));
        assert!(
            !format!("{cfg:?}").contains("c2VjcmV0"),
            "Debug shows the key"
        );

        // librdkafka accepts them: it is built with TLS (rdkafka's `ssl-vendored`) and has
        // SASL PLAIN built in. Without TLS, creating the consumer fails with "OpenSSL not
        // available at build time". The bootstrap is replaced so nothing is looked up.
        let mut kafka = crate::run::kafka_config(&cfg);
        kafka.set("bootstrap.servers", "127.0.0.1:9");
        if let Err(e) = kafka.create::<rdkafka::consumer::BaseConsumer>() {
            panic!("librdkafka refused the Event Hubs settings: {e}");
        }

        // Explicit flags win over what the string implies; -X comes after its settings.
        let cfg = parse(&[
            "--group",
            "g",
            "--eventhubs-connection-string",
            CONN,
            "--topic",
            "other",
            "--brokers",
            "10.0.0.1:9093",
            "-X",
            "session.timeout.ms=45000",
        ])
        .unwrap()
        .validate()
        .unwrap();
        assert_eq!(
            (cfg.args.brokers.as_str(), cfg.args.topics[0].as_str()),
            ("10.0.0.1:9093", "other")
        );
        assert_eq!(
            cfg.kafka
                .iter()
                .rev()
                .find(|(k, _)| k == "session.timeout.ms")
                .unwrap()
                .1,
            "45000"
        );
    }

    #[test]
    fn a_connection_string_without_a_hub_needs_a_topic_and_bad_strings_say_why() {
        let no_hub = CONN.replace(";EntityPath=clicks", "");
        let err = parse(&["--group", "g", "--eventhubs-connection-string", &no_hub])
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("EntityPath"), "{err}");
        let no_key = "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen";
        let err = parse(&[
            "--group",
            "g",
            "--topic",
            "t",
            "--eventhubs-connection-string",
            no_key,
        ])
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("SharedAccessKey"), "{err}");
        assert!(
            parse(&["--group", "g", "--topic", "t"]).is_err(),
            "brokers or a connection string is required"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!("300MiB".parse::<ByteSize>().unwrap().0, 300 << 20);
        assert_eq!("10MB".parse::<ByteSize>().unwrap().0, 10_000_000);
        assert_eq!("1gib".parse::<ByteSize>().unwrap().0, 1 << 30);
        assert_eq!("4096".parse::<ByteSize>().unwrap().0, 4096);
        let err = "300 Mbit".parse::<ByteSize>().unwrap_err();
        assert!(err.contains("300MiB"), "{err}");
        assert!("".parse::<ByteSize>().is_err());
        assert!("99999999999999GiB".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(300 << 20).to_string(), "300MiB");
    }

    #[test]
    fn durations() {
        assert_eq!(
            "5m".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(300)
        );
        assert_eq!(
            "1h30m".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(5400)
        );
        assert_eq!(
            "500ms".parse::<HumanDuration>().unwrap().0,
            Duration::from_millis(500)
        );
        let err = "5 minutes".parse::<HumanDuration>().unwrap_err();
        assert!(err.contains("5m"), "{err}");
        assert!("5".parse::<HumanDuration>().is_err());
        assert!("m".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn flags_parse_and_validate() {
        let a = parse(&[
            "--brokers",
            "127.0.0.1:9092",
            "--topic",
            "a",
            "--topic",
            "b",
            "--group",
            "g",
            "--window-size",
            "1MiB",
            "--window-time",
            "10s",
            "-X",
            "security.protocol=SASL_SSL",
            "-X",
            "sasl.password=Endpoint=sb://x/;Key=abc=",
        ])
        .unwrap();
        assert_eq!(a.topics, ["a", "b"]);
        let cfg = a.validate().unwrap();
        assert_eq!(
            cfg.kafka[1],
            ("sasl.password".into(), "Endpoint=sb://x/;Key=abc=".into())
        );
        assert_eq!(cfg.namespace, "127.0.0.1");
        assert_eq!(cfg.policy.max_bytes, 1 << 20);
    }

    #[test]
    fn bad_flags_name_the_fix() {
        let err = parse(&[
            "--brokers",
            "b:1",
            "--topic",
            "t",
            "--group",
            "g",
            "--window-size",
            "big",
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("300MiB"), "{err}");
        let err = parse(&[
            "--brokers",
            "b:1",
            "--topic",
            "t",
            "--group",
            "g",
            "-X",
            "Endpoint-sb://secret-namespace",
        ])
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("KEY=VALUE"), "{err}");
        assert!(!err.contains("secret-namespace"), "not echoed whole: {err}");
        let bad_template = parse(&[
            "--brokers",
            "b:1",
            "--topic",
            "t",
            "--group",
            "g",
            "--path-format",
            "{EventHub}/{Partition}",
        ])
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
        assert!(bad_template.contains("{PartitionId}"), "{bad_template}");
        let bad_topic = parse(&["--brokers", "b:1", "--topic", "a/b", "--group", "g"])
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(matches!(bad_topic, ConfigError::Topic(_)));
    }

    #[test]
    fn secret_settings_are_recognised() {
        assert!(is_secret_setting("sasl.password"));
        assert!(is_secret_setting("ssl.key.password"));
        assert!(!is_secret_setting("security.protocol"));
    }
}
