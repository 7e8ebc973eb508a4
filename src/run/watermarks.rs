//! Keeps each topic's completeness watermark (`state::watermark`) up to date while a run goes:
//! at the start, every `--watermark-interval`, and once more at the end, after the last files
//! of a `--once` run or of a stop are checkpointed.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::BaseConsumer;
use tracing::{debug, warn};

use crate::kafka::{self, MetadataError};
use crate::partition::Shared;
use crate::state::watermark::{Watermark, Watermarks};

use super::METADATA_TIMEOUT;

/// What a check needs: the brokers (end offsets), the checkpoints and where watermarks go.
pub(super) struct Keeper {
    consumer: Arc<BaseConsumer>,
    shared: Arc<Shared>,
    watermarks: Watermarks,
    topics: Vec<String>,
}

impl Keeper {
    pub fn new(
        consumer: BaseConsumer,
        shared: Arc<Shared>,
        group: &str,
        topics: &[String],
    ) -> Keeper {
        Keeper {
            consumer: Arc::new(consumer),
            watermarks: Watermarks::new(&shared.output, group),
            shared,
            topics: topics.to_vec(),
        }
    }

    /// Checks every topic; a failure is logged and left to the next check.
    pub async fn check_all(&self) {
        for topic in &self.topics {
            match self.check(topic).await {
                Ok(w) => {
                    if let Some(ms) = w.complete_until_ms {
                        self.shared.metrics.topic(topic).watermark(ms);
                    }
                    debug!(%topic, complete_until = ?w.complete_until, "watermark checked");
                }
                Err(e) => {
                    warn!(%topic, error = %e, "the completeness watermark was not updated; the next check tries again")
                }
            }
        }
    }

    async fn check(&self, topic: &str) -> Result<Watermark, String> {
        // The time is taken before the end offsets are asked for: anything appended after
        // the brokers answered is stamped later than this.
        let checked_ms = self.shared.clock.wall().timestamp_millis();
        let (consumer, topics) = (self.consumer.clone(), vec![topic.to_string()]);
        let found = tokio::task::spawn_blocking(move || {
            kafka::topic_partitions(&consumer, &topics, true, METADATA_TIMEOUT)
        })
        .await
        .map_err(|e| e.to_string())?;
        let (_, marks) = found.map_err(|e| match e {
            MetadataError::Unreachable(e) => kafka::client_error(&e),
            MetadataError::UnknownTopic(t) => format!("topic {t} is gone from the brokers"),
        })?;
        let mut ends: Vec<(i32, i64, i64)> = marks
            .into_iter()
            .map(|((_, p), (low, high))| (p, low, high))
            .collect();
        ends.sort_unstable();
        let writer = &self.shared.owner;
        self.watermarks
            .advance(&self.shared.checkpoints, topic, &ends, checked_ms, writer)
            .await
            .map_err(|e| e.to_string())
    }

    /// Checks now and then every `every` until the returned task is dropped.
    pub fn spawn(self: Arc<Self>, every: Duration) -> super::AbortOnDrop {
        super::AbortOnDrop(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                self.check_all().await;
            }
        }))
    }
}
