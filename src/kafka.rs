//! Kafka: the client settings hubcap uses (its defaults, the user's `-X` settings, the ones it
//! relies on), client errors without secrets, topic metadata and watermarks (shared by `run` and
//! `audit`), Event Hubs connection strings, and the consumer that feeds the partition workers.

pub mod consumer;
pub mod eventhubs;
pub mod topic_id;

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::ClientConfig;

/// How often librdkafka reports statistics (high watermarks) when they are wanted.
const STATISTICS_INTERVAL_MS: &str = "2000";

/// Where and as whom to consume.
#[derive(Clone)]
pub struct KafkaConfig {
    /// librdkafka's `bootstrap.servers`.
    pub brokers: String,
    pub group: String,
    pub topics: Vec<String>,
    /// librdkafka settings (`-X`, and those an Event Hubs connection string implies), in order:
    /// a later one wins.
    pub settings: Vec<(String, String)>,
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("group", &self.group)
            .field("topics", &self.topics)
            .field("settings", &redacted(&self.settings))
            .finish()
    }
}

/// The settings as `key=value`, secrets redacted.
pub fn redacted(settings: &[(String, String)]) -> Vec<String> {
    settings
        .iter()
        .map(|(k, v)| {
            if is_secret_setting(k) {
                format!("{k}=<redacted>")
            } else {
                format!("{k}={v}")
            }
        })
        .collect()
}

/// The consumer's librdkafka settings: hubcap's defaults, then the user's settings, then the
/// settings hubcap relies on, which win. `prefetch_kbytes`: the prefetch queue of one topic's
/// consumer, its part of the memory budget. `statistics`: report high watermarks (for the lag
/// metrics).
pub fn client_config(
    kafka: &KafkaConfig,
    prefetch_kbytes: usize,
    statistics: bool,
) -> ClientConfig {
    let message_max = kafka
        .settings
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
        // queue often, and drains it (a thirty-second of the budget) in about 30 ms: a longer
        // pause leaves it idle (at 1 s, a third of the speed at 256 partitions; at 50 ms, 30 %
        // slower than at 2 ms).
        .set("fetch.queue.backoff.ms", "2")
        // A fetch asks only for partitions that are neither paused nor backed off; when those
        // are all at their end the broker holds it this long (default 500 ms), and no other
        // fetch leaves for that broker meanwhile. A partition resumed just after waits for it:
        // at 256 partitions a catch-up stalled for half a second once or twice a run (Avro/null
        // 3.6-5.3 s against 3.6-3.8 s at 100 ms). Idle, this is ten fetches a second.
        .set("fetch.wait.max.ms", "100");
    if statistics {
        // High watermarks for the lag metrics, read off the poll thread's statistics callback.
        c.set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
    }
    for (k, v) in &kafka.settings {
        c.set(k, v);
    }
    c.set("bootstrap.servers", &kafka.brokers)
        .set("group.id", &kafka.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true");
    c
}

/// A client error without the setting's value: librdkafka's config errors repeat the value, which
/// may be a secret.
pub fn client_error(e: &KafkaError) -> String {
    match e {
        KafkaError::ClientConfig(_, desc, key, _) => format!("-X {key}: {desc}"),
        other => other.to_string(),
    }
}

/// Why a topic's partitions or watermarks could not be read.
#[derive(Debug)]
pub enum MetadataError {
    /// Kafka did not answer within the timeout.
    Unreachable(KafkaError),
    /// Kafka answered: the topic does not exist (or has no partitions).
    UnknownTopic(String),
}

/// Each partition's (low, high) watermarks, by topic and partition.
pub type Watermarks = HashMap<(String, i32), (i64, i64)>;

/// Each topic's partition count and, with `watermarks`, each partition's watermarks. Blocks (the
/// client calls do): call it on a blocking thread.
pub fn topic_partitions(
    consumer: &BaseConsumer,
    topics: &[String],
    watermarks: bool,
    timeout: Duration,
) -> Result<(HashMap<String, i32>, Watermarks), MetadataError> {
    let mut counts = HashMap::new();
    let mut marks = Watermarks::new();
    for topic in topics {
        let md = consumer
            .fetch_metadata(Some(topic), timeout)
            .map_err(MetadataError::Unreachable)?;
        let partitions = md
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map_or(0, |t| {
                i32::try_from(t.partitions().len()).unwrap_or(i32::MAX)
            });
        if partitions == 0 {
            return Err(MetadataError::UnknownTopic(topic.clone()));
        }
        counts.insert(topic.clone(), partitions);
        if watermarks {
            for p in 0..partitions {
                let w = consumer
                    .fetch_watermarks(topic, p, timeout)
                    .map_err(MetadataError::Unreachable)?;
                marks.insert((topic.clone(), p), w);
            }
        }
    }
    Ok((counts, marks))
}

/// A `-X KEY=VALUE` librdkafka setting.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_settings_are_recognised() {
        assert!(is_secret_setting("sasl.password"));
        assert!(is_secret_setting("ssl.key.password"));
        assert!(!is_secret_setting("security.protocol"));
    }
}
