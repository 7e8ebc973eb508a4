//! `hubcap audit`'s command line.

/// `hubcap audit`: check that every offset below each checkpoint is in exactly one file.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// The archive: a local directory or URL (file://, az://, abfss://, s3://, gs://, memory://).
    #[arg(long, env = "HUBCAP_OUTPUT", default_value = "./capture")]
    pub output: String,
    /// Where the checkpoints are; default: the `_checkpoints/` prefix of --output.
    #[arg(long, env = "HUBCAP_CHECKPOINTS")]
    pub checkpoints: Option<String>,
    /// Consumer group whose checkpoints to check; default: every group found.
    #[arg(long, env = "HUBCAP_GROUP")]
    pub group: Option<String>,
    /// Only this topic (repeatable); default: every topic found.
    #[arg(long = "topic")]
    pub topics: Vec<String>,
    /// The path template the archive was written with, used for files no manifest lists.
    #[arg(long, env = "HUBCAP_PATH_FORMAT", default_value = crate::layout::DEFAULT_TEMPLATE)]
    pub path_format: String,
    /// Report gaps (offsets no file holds) as warnings, not failures: for compacted or
    /// transactional topics, whose offsets do not all hold records, where `--brokers` cannot
    /// tell (Kafka no longer holds the offsets).
    #[arg(long, env = "HUBCAP_ALLOW_GAPS")]
    pub allow_gaps: bool,
    /// Report stray files (under the output, picked up by a reader's `*.avro` or `*.parquet`
    /// glob, and not archived by hubcap) as warnings, not failures: for an output that shares
    /// its prefix with other data on purpose. Duplicates of archived records still fail.
    #[arg(long, env = "HUBCAP_ALLOW_STRAY")]
    pub allow_stray: bool,
    /// Also read every file a manifest lists and check it against its line: its CRC32C (the
    /// bytes archived), its records and its offsets. Finds files truncated, rewritten or rotted
    /// since. Without it the audit only lists the store (and reads files no manifest lists).
    #[arg(long, env = "HUBCAP_VERIFY")]
    pub verify: bool,
    /// Kafka bootstrap servers: also compare with each partition's earliest/latest offsets, and
    /// read each gap from Kafka (read_committed): a gap without committed records is no failure.
    #[arg(long)]
    pub brokers: Option<String>,
    /// A librdkafka setting for --brokers, key=value (security, SASL, TLS); repeatable.
    #[arg(
        short = 'X',
        value_name = "KEY=VALUE",
        env = "HUBCAP_KAFKA_CONFIG",
        value_delimiter = '\n',
        hide_env_values = true,
        value_parser = crate::kafka::kafka_arg
    )]
    pub kafka: Vec<crate::kafka::KafkaArg>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub catalog: crate::state::iceberg::catalog::CatalogArgs,
}
