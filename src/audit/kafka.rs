//! `--brokers`: each partition's watermarks, to compare the archive with what Kafka holds.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use super::{AuditError, Watermarks};

/// How long to wait for Kafka metadata and for each partition's watermarks.
pub(super) const KAFKA_TIMEOUT: Duration = Duration::from_secs(15);

/// Each partition's (low, high) watermarks of `topics`. The client calls block, so they run on
/// a blocking thread.
pub(super) async fn fetch_watermarks(
    brokers: &str,
    settings: &[String],
    topics: BTreeSet<String>,
) -> Result<Watermarks, AuditError> {
    let mut config = ClientConfig::new();
    config.set("client.id", "hubcap-audit");
    for setting in settings.iter().filter(|s| !s.trim().is_empty()) {
        let (key, value) =
            crate::config::parse_key_value(setting).map_err(AuditError::KafkaSetting)?;
        config.set(key, value);
    }
    config.set("bootstrap.servers", brokers);
    let brokers = brokers.to_string();
    let kafka_err = {
        let brokers = brokers.clone();
        move |source| AuditError::Kafka {
            brokers: brokers.clone(),
            timeout: KAFKA_TIMEOUT,
            source,
        }
    };
    let consumer: BaseConsumer = config
        .create()
        .map_err(|e| AuditError::KafkaSetting(crate::run::client_error(&e)))?;
    tokio::task::spawn_blocking(move || {
        let mut marks = Watermarks::new();
        for topic in topics {
            let md = consumer
                .fetch_metadata(Some(&topic), KAFKA_TIMEOUT)
                .map_err(&kafka_err)?;
            let partitions = md
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .map_or(0, |t| t.partitions().len());
            if partitions == 0 {
                return Err(AuditError::UnknownTopic {
                    topic,
                    brokers: brokers.clone(),
                });
            }
            for p in 0..i32::try_from(partitions).unwrap_or(i32::MAX) {
                let w = consumer
                    .fetch_watermarks(&topic, p, KAFKA_TIMEOUT)
                    .map_err(&kafka_err)?;
                marks.insert((topic.clone(), p), w);
            }
        }
        Ok(marks)
    })
    .await?
}
