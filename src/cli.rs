//! The command line: clap derive, every flag with an `HUBCAP_…` environment variable, units that
//! validate on parse, and cross-field checks in [`RunArgs::validate`].

pub mod file;
mod limits;

use clap::{Args, Parser, Subcommand};

use crate::encode::avro::Codec;
use crate::encode::format::{Format, AVRO_BLOCK};
use crate::encode::parquet::ParquetCompression;
pub use crate::kafka::KafkaArg;
use crate::kafka::{parse_settings, KafkaConfig};
use crate::layout::{
    fully_qualified_namespace, namespace_from_brokers, namespace_problem, sdk_segment_problem,
    PathError, PathTemplate, DEFAULT_TEMPLATE,
};
use crate::partition::window::RollPolicy;
use crate::run::RunConfig;
use crate::state::iceberg::catalog::{CatalogArgs, CatalogConfig};
use crate::state::sdk::SdkConfig;
use crate::state::table::{Formats, TableConfig, TABLE_TEMPLATE};
use crate::units::{ByteSize, HumanDuration};

#[derive(Debug, Parser)]
#[command(
    name = "hubcap",
    version,
    about = "Archive Kafka topics into object storage exactly once: Event Hubs Capture-style Avro or Parquet files, optionally kept as Delta and Iceberg tables; replay them into Kafka."
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
    Demo(crate::tools::demo::DemoArgs),
    /// Print the records of an Avro or Parquet file, or of every file under a prefix, as JSON
    /// lines (real Capture files too); --stats prints a summary per file instead.
    Inspect(crate::tools::inspect::InspectArgs),
    /// Check that every offset is in exactly one file up to each partition's checkpoint: report
    /// gaps, overlaps, orphans and unreadable files; exit 0 only when the archive is clean.
    Audit(crate::tools::audit::AuditArgs),
    /// Re-archive files the audit finds missing from the records Kafka still holds, under
    /// their names and with the blocks their manifest lines give; never moves a checkpoint.
    Repair(crate::tools::repair::RepairArgs),
    /// Produce an archive's events (hubcap's, or Event Hubs Capture's files) into a Kafka topic,
    /// exactly once for read_committed consumers, in archived order per partition.
    Replay(crate::tools::replay::ReplayArgs),
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
    /// {Hour} {Minute} {Second} {Offset}. `-{Offset}` is appended when absent, then the
    /// format's extension (`.avro`, `.parquet`).
    /// No `.` or `..` segment and none starting with `_` or `.` (readers skip those folders); a
    /// topic starting with `_` or `.` is filed as `@` + its name.
    #[arg(long, env = "HUBCAP_PATH_FORMAT", default_value = DEFAULT_TEMPLATE)]
    pub path_format: String,

    /// Value of {Namespace}; default: the first label of the first broker's host name. One
    /// folder name: no '/', not '.' or '..', not starting with '_' or '.'.
    #[arg(long, env = "HUBCAP_NAMESPACE")]
    pub namespace: Option<String>,

    /// File format: avro (Capture's; the default) or parquet (same columns, plus a timestamp;
    /// the default with --table).
    #[arg(long, env = "HUBCAP_FORMAT", value_enum)]
    pub format: Option<FormatName>,

    /// Also keep each topic as a table: delta (Delta Lake), iceberg (Apache Iceberg: a path
    /// table, or one in --iceberg-catalog) or delta,iceberg (both, over one copy of the files). Every
    /// archived file is added to each exactly once. Writes Parquet. A list: comma-separated,
    /// or the flag repeated (an array in the configuration file).
    #[arg(
        long,
        env = "HUBCAP_TABLE",
        value_enum,
        value_delimiter = ',',
        value_name = "delta|iceberg"
    )]
    pub table: Vec<TableFormat>,

    /// Where each topic's table is, under --output; {EventHub} is the topic. The data files
    /// (--path-format, by default {EventHub}/partition={PartitionId}/date={Year}-{Month}-{Day}/{Offset}
    /// with --table) go inside it, and its key=value folders are the table's partition columns.
    #[arg(long, env = "HUBCAP_TABLE_PATH", default_value = "{EventHub}")]
    pub table_path: String,

    #[command(flatten)]
    pub catalog: CatalogArgs,

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

    /// How often each topic's completeness watermark (_watermarks/GROUP/TOPIC.json under
    /// --output: up to which time every partition's events are archived) is brought up to
    /// date; also at the start and at the end of a run.
    #[arg(long, env = "HUBCAP_WATERMARK_INTERVAL", default_value = "30s")]
    pub watermark_interval: HumanDuration,

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
    /// relies on (group.id, enable.auto.commit, …) are applied after these and win. Errors
    /// never repeat a setting's value.
    // Parsed in `validate`, not by clap: clap's errors would echo a malformed value, which may
    // hold a secret; the environment value is hidden from `--help` for the same reason.
    #[arg(
        short = 'X',
        value_name = "KEY=VALUE",
        env = "HUBCAP_KAFKA_CONFIG",
        value_delimiter = '\n',
        hide_env_values = true,
        value_parser = crate::kafka::kafka_arg
    )]
    pub kafka: Vec<KafkaArg>,
}

/// `--table`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableFormat {
    Delta,
    Iceberg,
}

impl RunArgs {
    /// The table formats `--table` names; `None` without one.
    fn table_formats(&self) -> Option<Formats> {
        (!self.table.is_empty()).then(|| Formats {
            delta: self.table.contains(&TableFormat::Delta),
            iceberg: self.table.contains(&TableFormat::Iceberg),
        })
    }

    /// `--table` as given, for messages: `delta`, `iceberg` or `delta,iceberg`.
    fn table_names(&self) -> String {
        let names: Vec<&str> = self
            .table
            .iter()
            .map(|t| match t {
                TableFormat::Delta => "delta",
                TableFormat::Iceberg => "iceberg",
            })
            .collect();
        names.join(",")
    }
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatName {
    Avro,
    Parquet,
}

/// Everything a run needs, validated. `Debug` redacts secret settings.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--path-format: {0}")]
    Path(#[from] PathError),
    #[error("{} {problem}; give --namespace a folder name readers see, like mynamespace (letters, digits, '-'; not starting with '_' or '.')", if *.given { "--namespace" } else { "{Namespace}, the first label of the first --brokers host (no --namespace given)," })]
    Namespace { problem: &'static str, given: bool },
    #[error("--{flag} must be greater than zero")]
    Zero { flag: &'static str },
    #[error("--topic {:?} is not a valid Kafka topic name (letters, digits, '.', '_' and '-', at most 249)", crate::kafka::shown(.0))]
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
    #[error("--memory-limit {} is too small: hubcap needs at least 32MiB (librdkafka's prefetch and a few open files); the default is 256MiB", ByteSize(*.0))]
    MemoryLimit(u64),
    #[error("--memory-limit {} is more than hubcap can use: at most 1TiB (did you mean GiB?)", ByteSize(*.0))]
    MemoryLimitHuge(u64),
    #[error("--{flag} must be at least 1s")]
    TooShort { flag: &'static str },
    #[error("--azure-sdk-checkpoints: {0}")]
    SdkCheckpoints(String),
    #[error("{0}")]
    Table(String),
    #[error("{0}")]
    Catalog(String),
    #[error("{flag} is not valid, and holds what looks like a credential (not shown): give it its own kind of value (see hubcap run --help), and keep secrets in --eventhubs-connection-string or -X")]
    LooksSecret { flag: &'static str },
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
        if self.watermark_interval.0.is_zero() {
            return Err(ConfigError::Zero {
                flag: "watermark-interval",
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
        limits::check(&self)?;
        if self.row_group_size.is_some_and(|s| s.0 == 0) {
            return Err(ConfigError::Zero {
                flag: "row-group-size",
            });
        }
        let formats = self.table_formats();
        let format = match (self.format, formats) {
            (Some(FormatName::Avro), Some(_)) => {
                return Err(ConfigError::Table(format!(
                    "--table {} writes Parquet (Delta and Iceberg tables hold Parquet files here); drop --format avro",
                    self.table_names()
                )))
            }
            (Some(FormatName::Avro), None) | (None, None) => Format::Avro {
                codec: self.codec,
                block_target: AVRO_BLOCK,
            },
            (Some(FormatName::Parquet), _) | (None, Some(_)) => Format::Parquet {
                compression: self.compression,
                row_group_bytes: self
                    .row_group_size
                    .map_or(0, |s| usize::try_from(s.0).unwrap_or(usize::MAX)),
            },
        };
        let sdk_checkpoints = self.validate_sdk_checkpoints(eventhubs_host)?;
        let path_format = match formats {
            Some(_) if self.path_format == DEFAULT_TEMPLATE => TABLE_TEMPLATE,
            _ => self.path_format.as_str(),
        };
        // These errors quote the template; not one that looks like a credential (a connection
        // string given to the wrong flag).
        let looks_secret = |flag, value: &str| {
            crate::kafka::is_secret_value(value).then_some(ConfigError::LooksSecret { flag })
        };
        let template = PathTemplate::parse(path_format, format.extension())
            .map_err(|e| looks_secret("--path-format", path_format).unwrap_or(e.into()))?;
        let catalog = self.validate_catalog(formats)?;
        let table = match formats {
            Some(formats) => Some(TableConfig {
                formats,
                catalog,
                ..TableConfig::new(&self.table_path, &template).map_err(|e| {
                    looks_secret("--table-path", &self.table_path).unwrap_or(ConfigError::Table(e))
                })?
            }),
            None => None,
        };
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| namespace_from_brokers(&self.brokers));
        // Checked where it becomes a folder; not quoted (it may come from the file).
        let in_names = template.uses_namespace()
            || (formats.is_some() && self.table_path.contains("{Namespace}"));
        if let Some(problem) = namespace_problem(&namespace).filter(|_| in_names) {
            return Err(ConfigError::Namespace {
                problem,
                given: self.namespace.is_some(),
            });
        }
        let policy = RollPolicy {
            max_bytes: self.window_size.0,
            max_age: self.window_time.0,
        };
        // The connection string's settings first, so that -X can still change them.
        kafka.extend(
            parse_settings(self.kafka.iter().map(|a| &a.0)).map_err(ConfigError::KafkaSetting)?,
        );
        Ok(RunConfig {
            kafka: KafkaConfig {
                brokers: self.brokers,
                group: self.group,
                topics: self.topics,
                settings: kafka,
            },
            output: self.output,
            checkpoints: self.checkpoints,
            namespace,
            template,
            policy,
            format,
            empty_files: self.empty_files,
            once: self.once,
            retry_for: self.retry_for.0,
            shutdown_timeout: self.shutdown_timeout.0,
            progress_interval: self.progress_interval.0,
            watermark_interval: self.watermark_interval.0,
            metrics_addr: self.metrics_addr,
            memory_limit: self.memory_limit.0,
            sdk_checkpoints,
            table,
        })
    }
}

impl RunArgs {
    /// `--iceberg-catalog` and its companions, with the credentials from the environment.
    fn validate_catalog(
        &self,
        formats: Option<Formats>,
    ) -> Result<Option<CatalogConfig>, ConfigError> {
        let catalog = self.catalog.config().map_err(ConfigError::Catalog)?;
        if catalog.is_some() && !formats.is_some_and(|f| f.iceberg) {
            return Err(ConfigError::Catalog(
                "--iceberg-catalog keeps Iceberg tables: add --table iceberg (or delta,iceberg)"
                    .into(),
            ));
        }
        Ok(catalog)
    }

    /// `--azure-sdk-checkpoints`: a store that keeps blob metadata, and names the SDKs can split
    /// on `/`, the namespace defaulting to the connection string's host, else the first broker's.
    fn validate_sdk_checkpoints(
        &self,
        eventhubs_host: Option<String>,
    ) -> Result<Option<SdkConfig>, ConfigError> {
        let Some(url) = &self.azure_sdk_checkpoints else {
            return Ok(None);
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
            .unwrap_or_else(|| fully_qualified_namespace(&self.brokers));
        let (group_flag, group) = match &self.azure_sdk_consumer_group {
            Some(g) => ("--azure-sdk-consumer-group", g.clone()),
            None => ("--group", self.group.clone()),
        };
        // Topics were checked already: their characters are all allowed.
        for (what, value) in [("the namespace", &namespace), (group_flag, &group)] {
            if let Some(problem) = sdk_segment_problem(value) {
                return Err(ConfigError::SdkCheckpoints(format!(
                    "{what} {value:?} {problem}, so it cannot be one part of a checkpoint blob name"
                )));
            }
        }
        Ok(Some(SdkConfig {
            url: url.clone(),
            namespace,
            consumer_group: group,
        }))
    }
}

#[cfg(test)]
mod redaction_tests;
#[cfg(test)]
mod tests;
