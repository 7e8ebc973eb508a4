//! `hubcap demo`: a zero-setup first run. Starts librdkafka's in-process mock cluster, produces
//! RudderStack-style events, archives them with `--once` and short windows, and says how to read
//! what it wrote.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::ClientConfig;

use crate::encode::avro::Codec;
use crate::encode::format::{Format, AVRO_BLOCK};
use crate::encode::parquet::ParquetCompression;
use crate::kafka::KafkaConfig;
use crate::layout::{PathTemplate, DEFAULT_TEMPLATE};
use crate::observe::progress::View;
use crate::partition::window::RollPolicy;
use crate::run::{run, RunConfig, Summary};

pub const DEMO_TOPIC: &str = "events";
const PARTITIONS: i32 = 4;

/// One RudderStack-style event: (partition key, JSON body, event type).
pub fn rudderstack_event(i: usize, timestamp_ms: i64) -> (String, String, &'static str) {
    let kind = ["track", "identify", "page"][i % 3];
    let user = i * 7919 % 97;
    // About one event in five comes from a visitor who has not identified yet.
    let anonymous_id = format!("anon-{:04x}", user * 31 + 7);
    let user_id = (!i.is_multiple_of(5)).then(|| format!("user-{user}"));
    let key = user_id.clone().unwrap_or_else(|| anonymous_id.clone());
    let ts = chrono::DateTime::from_timestamp_millis(timestamp_ms)
        .unwrap_or_default()
        .to_rfc3339();
    let user_json = user_id.map_or("null".to_string(), |u| format!("\"{u}\""));
    let detail = match kind {
        "track" => format!(
            r#""event":"Order Completed","properties":{{"revenue":{}.{:02},"currency":"EUR"}}"#,
            i % 90 + 10,
            i % 100
        ),
        "identify" => format!(
            r#""traits":{{"plan":"{}","email":"{}@example.com"}}"#,
            ["free", "pro"][i % 2],
            key
        ),
        _ => format!(
            r#""name":"Docs","properties":{{"path":"/docs/{}","title":"Page {}"}}"#,
            i % 12,
            i % 12
        ),
    };
    let body = format!(
        r#"{{"type":"{kind}","messageId":"msg-{i:08}","anonymousId":"{anonymous_id}","userId":{user_json},"timestamp":"{ts}",{detail}}}"#
    );
    (key, body, kind)
}

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Where the demo writes its files.
    #[arg(long, env = "HUBCAP_OUTPUT", default_value = "./capture")]
    pub output: String,

    /// How many events the demo produces.
    #[arg(long, default_value_t = 5000)]
    pub events: usize,

    /// avro: Event Hubs Capture's files and layout; parquet: the same columns, in the data-lake
    /// layout `{EventHub}/partition=N/date=YYYY-MM-DD/`, which DuckDB, Spark and pyarrow read
    /// as columns.
    #[arg(long, value_enum, default_value_t = DemoFormat::Avro)]
    pub format: DemoFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoFormat {
    Avro,
    Parquet,
}

/// The demo's Parquet layout: Hive folders for the partition and the day.
pub const LAKE_TEMPLATE: &str =
    "{EventHub}/partition={PartitionId}/date={Year}-{Month}-{Day}/{Offset}";

/// Why the demo will not write where it was told.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{dir} is not empty and holds no earlier demo's archive; the demo writes only into a new or empty directory, or over an archive an earlier demo wrote: pass --output with another directory")]
    NotEmpty { dir: String },
    #[error("cannot clear the earlier demo's archive in {dir}: {source}")]
    Clear { dir: String, source: std::io::Error },
}

/// Makes `output` ready for a demo: a new or empty directory stays as it is; an archive an
/// earlier demo wrote (every consumer group in its checkpoints is a demo's) is removed, so that
/// each demo's archive holds one cluster's records (each demo starts a new mock cluster, whose
/// offsets start over at 0: two demos' files would otherwise share offsets, and an audit could
/// not tell them apart). Anything else is left alone and refused. URLs are not checked.
fn prepare_output(output: &str) -> Result<(), DemoError> {
    let dir = std::path::Path::new(output);
    if output.contains("://") || !dir.is_dir() {
        return Ok(());
    }
    let entries: Vec<std::fs::DirEntry> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(Result::ok).collect(),
        Err(_) => return Ok(()),
    };
    if entries.is_empty() {
        return Ok(());
    }
    let groups = std::fs::read_dir(dir.join(crate::layout::CHECKPOINTS_DIR))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let demo_only = !groups.is_empty() && groups.iter().all(|g| g.starts_with(DEMO_GROUP));
    if !demo_only {
        return Err(DemoError::NotEmpty {
            dir: output.to_string(),
        });
    }
    tracing::info!(dir = %output, "replacing the earlier demo's archive");
    for e in entries {
        let path = e.path();
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(|source| DemoError::Clear {
            dir: output.to_string(),
            source,
        })?;
    }
    Ok(())
}

/// The demo's consumer groups are named `hubcap-demo-<time>`.
const DEMO_GROUP: &str = "hubcap-demo-";

pub async fn demo(args: DemoArgs) -> anyhow::Result<Summary> {
    prepare_output(&args.output)?;
    let (format, template) = match args.format {
        DemoFormat::Avro => (
            Format::Avro {
                codec: Codec::Null,
                block_target: AVRO_BLOCK,
            },
            DEFAULT_TEMPLATE,
        ),
        DemoFormat::Parquet => (
            Format::Parquet {
                compression: ParquetCompression::Zstd,
                row_group_bytes: 0,
            },
            LAKE_TEMPLATE,
        ),
    };
    let cluster = MockCluster::new(1)?;
    cluster.create_topic(DEMO_TOPIC, PARTITIONS, 1)?;
    let brokers = cluster.bootstrap_servers();
    produce(&brokers, args.events)?;
    println!("produced {} RudderStack-style events to topic {DEMO_TOPIC:?} ({PARTITIONS} partitions) on an in-process Kafka cluster", args.events);

    let config = RunConfig {
        kafka: KafkaConfig {
            brokers,
            // A group per run, named as `prepare_output` recognises it.
            group: format!("{DEMO_GROUP}{}", chrono::Utc::now().format("%Y%m%d-%H%M%S")),
            topics: vec![DEMO_TOPIC.into()],
            settings: Vec::new(),
        },
        output: args.output.clone(),
        checkpoints: None,
        namespace: "demo".into(),
        template: PathTemplate::parse(template, format.extension())?,
        policy: RollPolicy {
            max_bytes: 256 << 10,
            max_age: Duration::from_secs(10),
        },
        format,
        empty_files: false,
        once: true,
        retry_for: Duration::from_secs(60),
        shutdown_timeout: Duration::from_secs(30),
        progress_interval: Duration::from_secs(10),
        watermark_interval: Duration::from_secs(30),
        metrics_addr: None,
        memory_limit: 256 << 20,
        sdk_checkpoints: None,
        table: None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let summary = run(config, stop, View::Log).await?;
    drop(cluster);
    Ok(summary)
}

fn produce(brokers: &str, events: usize) -> anyhow::Result<()> {
    let producer: rdkafka::producer::BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()?;
    // Spread the events over the last 30 minutes, so the archive shows its time layout.
    let now = chrono::Utc::now().timestamp_millis();
    let span = 30 * 60 * 1000;
    for i in 0..events {
        let ts = now - span + (i as i64 * span) / events.max(1) as i64;
        let (key, body, kind) = rudderstack_event(i, ts);
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "event-type",
                value: Some(kind),
            })
            .insert(Header {
                key: "source",
                value: Some("hubcap-demo"),
            });
        let mut record = BaseRecord::to(DEMO_TOPIC)
            .key(&key)
            .payload(&body)
            .headers(headers)
            .timestamp(ts);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    r,
                )) => {
                    producer.poll(Duration::from_millis(10));
                    record = r;
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30))?;
    Ok(())
}
