//! Rebalances: a partition assigned gets a worker (which claims it and resumes from its
//! checkpoint), a partition revoked has its worker flushed and stopped, within bounds that keep
//! the poll loop going; a worker that rewinds its partition seeks it back.

use super::*;

impl SourceContext {
    /// Reads the checkpoints of newly assigned partitions, sets their start offsets in `tpl`
    /// and starts their workers.
    pub(super) fn on_assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let topic = self.opts.topic.clone();
        let partitions = self.partitions(tpl);
        info!(%topic, ?partitions, "partitions assigned");
        let shared = self.shared.clone();
        let topic_id = self.topic_id(consumer);
        let resumed = self.rt.block_on(async {
            let all = partitions
                .iter()
                .map(|&p| resume(&shared, &topic, p, topic_id.as_deref()));
            tokio::time::timeout(self.opts.shutdown_timeout, futures::future::join_all(all)).await
        });
        let mut state = self.state();
        state.assigned = true;
        self.shared.metrics.topic(&topic).joined();
        let Ok(resumed) = resumed else {
            drop(state);
            self.fail(
                FailureKind::Store,
                format!(
                    "topic {topic}: reading checkpoints took longer than {:?}",
                    self.opts.shutdown_timeout
                ),
            );
            return;
        };
        for (&partition, r) in partitions.iter().zip(resumed) {
            state.pending.remove(&partition);
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    // No worker: the partition's records are dropped unread and the run fails.
                    state.outcome.errors.push(Failure::new(
                        e.kind(),
                        format!("topic {topic} partition {partition}: {e}"),
                    ));
                    error!(%topic, partition, error = %e, "cannot resume partition");
                    continue;
                }
            };
            if let Err(e) = self.check_end(consumer, partition, r.next_offset()) {
                state.outcome.errors.push(Failure::new(
                    e.kind(),
                    format!("topic {topic} partition {partition}: {e}"),
                ));
                error!(%topic, partition, error = %e, "cannot resume partition");
                continue;
            }
            let start = r.next_offset().map_or(Offset::Beginning, Offset::Offset);
            if let Err(e) = tpl.set_partition_offset(&topic, partition, start) {
                state.outcome.errors.push(Failure::new(
                    FailureKind::Kafka,
                    format!("topic {topic} partition {partition}: {e}"),
                ));
                continue;
            }
            let end = if let Some(targets) = &self.opts.once {
                let marks = match targets.get(&partition) {
                    Some(&marks) => Ok(marks),
                    None => {
                        consumer.fetch_watermarks(&topic, partition, self.opts.metadata_timeout)
                    }
                };
                match marks {
                    Ok(marks) => Some(marks),
                    Err(e) => {
                        state.outcome.errors.push(Failure::new(
                            FailureKind::Kafka,
                            format!("topic {topic} partition {partition}: cannot read the end offset: {e}"),
                        ));
                        continue;
                    }
                }
            } else {
                None
            };
            info!(%topic, partition, start = ?r.next_offset(), end = ?end.map(|(_, h)| h), replay = r.replay.is_some(), "partition resumes");
            let (tx, rx) = mpsc::channel(QUEUED_BATCHES);
            let worker = PartitionWorker::new(self.shared.clone(), &topic, partition, r, rx, end);
            let join = self.rt.spawn(worker.run());
            state.workers.insert(
                partition,
                WorkerHandle {
                    input: Some(tx),
                    join,
                },
            );
        }
    }

    /// Kafka's id of the topic now, or `None` when the brokers give none or cannot say (logged:
    /// the offset checks still hold).
    fn topic_id(&self, consumer: &BaseConsumer<Self>) -> Option<String> {
        let topic = &self.opts.topic;
        let topics = std::slice::from_ref(topic);
        match topic_ids(consumer.client(), topics, self.opts.metadata_timeout) {
            Ok(mut ids) => ids.remove(topic).flatten(),
            Err(e) => {
                // Not every Kafka-protocol service answers (librdkafka's mock cluster does not).
                info!(%topic, error = %e, "no topic id from the brokers; a re-created topic is then found by its offsets only");
                None
            }
        }
    }

    /// Fails a partition whose checkpoint lies past the partition's end: offsets the checkpoint
    /// counts as archived do not exist (the topic was re-created or truncated, or the checkpoint
    /// edited), and waiting for them would archive other records under those offsets' names, or
    /// skip the new records below them.
    fn check_end(
        &self,
        consumer: &BaseConsumer<Self>,
        partition: i32,
        next_offset: Option<i64>,
    ) -> Result<(), WorkerError> {
        let Some(next_offset) = next_offset else {
            return Ok(());
        };
        let topic = &self.opts.topic;
        // `--once` took the ends at its start; another member may have archived past them
        // since, so only the partition's end now can refuse a checkpoint.
        let known = self.opts.once.as_ref().and_then(|t| t.get(&partition));
        if known.is_some_and(|&(_, high)| next_offset <= high) {
            return Ok(());
        }
        let end = match consumer.fetch_watermarks(topic, partition, self.opts.metadata_timeout) {
            Ok((_, high)) => high,
            Err(e) => {
                // Not known now: a fetch past the end is then reset by librdkafka, and the
                // worker refuses the first offset below its checkpoint.
                warn!(%topic, partition, error = %e, "cannot read the partition's end offset");
                return Ok(());
            }
        };
        if next_offset > end {
            return Err(WorkerError::PastEnd {
                topic: topic.clone(),
                partition,
                checkpoint: self.shared.checkpoints.path(topic, partition).to_string(),
                next_offset,
                end,
            });
        }
        Ok(())
    }

    /// Closes the inputs of revoked partitions and waits for their workers to flush.
    pub(super) fn on_revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let partitions = self.partitions(tpl);
        info!(topic = %self.opts.topic, ?partitions, "partitions revoked");
        let (handles, paused): (Vec<_>, Vec<i32>) = {
            let mut state = self.state();
            let paused = partitions
                .iter()
                .filter(|p| state.paused.remove(p) | state.held_back.remove(p))
                .copied()
                .collect();
            let handles = partitions
                .iter()
                .filter_map(|p| {
                    state.pending.remove(p);
                    state.workers.remove(p)
                })
                .collect();
            (handles, paused)
        };
        // librdkafka keeps a pause across assignments: if the partition comes back to this
        // member, it must be fetched again.
        self.set_paused(consumer, &paused, false);
        self.stop_workers(handles);
    }

    pub(super) fn stop_workers(&self, handles: Vec<WorkerHandle>) {
        let joins: Vec<_> = handles
            .into_iter()
            .map(|mut h| {
                h.input.take();
                h.join
            })
            .collect();
        let timeout = self.opts.shutdown_timeout;
        let results = self.rt.block_on(async {
            let waits = joins.into_iter().map(|mut j| async move {
                match tokio::time::timeout(timeout, &mut j).await {
                    Ok(r) => Some(r),
                    Err(_) => {
                        j.abort();
                        None
                    }
                }
            });
            futures::future::join_all(waits).await
        });
        for r in results {
            self.record(r);
        }
    }

    pub(super) fn record(&self, finished: Option<Result<WorkerResult, tokio::task::JoinError>>) {
        let mut state = self.state();
        let topic = &self.opts.topic;
        match finished {
            None => state.outcome.errors.push(Failure::new(
                FailureKind::Internal,
                format!(
                    "topic {topic}: a partition did not flush within {:?}; its open window will be read again",
                    self.opts.shutdown_timeout
                ),
            )),
            Some(Err(e)) => state.outcome.errors.push(Failure::new(
                FailureKind::Internal,
                format!("topic {topic}: partition worker failed: {e}"),
            )),
            Some(Ok((mut report, result))) => {
                match result {
                    Ok(()) => report.ended = Ended::Archived,
                    Err(e) if e.is_fenced() => {
                        report.ended = Ended::Fenced;
                        self.shared.metrics.topic(&report.topic).fenced();
                        warn!(topic = %report.topic, partition = report.partition, error = %e, "partition stopped: another instance owns it now");
                    }
                    Err(e) => {
                        report.ended = Ended::Failed(e.kind());
                        state.outcome.errors.push(Failure::new(
                            e.kind(),
                            format!("topic {} partition {}: {e}", report.topic, report.partition),
                        ));
                    }
                }
                state.outcome.reports.push(report);
            }
        }
    }

    /// Moves partitions whose worker starts over back to their checkpoint. What was polled
    /// before the seek is dropped here or, already queued, by the worker, which waits for
    /// [`Input::Rewound`]; librdkafka drops what it fetched before the seek.
    pub(super) fn rewind(&self, consumer: &BaseConsumer<Self>) {
        let topic = &self.opts.topic;
        for ((t, partition), next) in self.shared.rewinds.drain() {
            if t != *topic {
                self.shared.rewinds.offer(&t, partition, next);
                continue;
            }
            if !self.state().workers.contains_key(&partition) {
                continue; // revoked meanwhile; its next owner starts from the checkpoint
            }
            let offset = next.map_or(Offset::Beginning, Offset::Offset);
            match consumer.seek(topic, partition, offset, self.opts.metadata_timeout) {
                Ok(()) => {
                    info!(%topic, partition, ?offset, "consumer moved back to the checkpoint");
                    let mut state = self.state();
                    state.pending.insert(partition, vec![Input::Rewound]);
                }
                Err(e) => self.fail(FailureKind::Kafka, format!(
                    "topic {topic} partition {partition}: cannot move the consumer back to {offset:?} after a failure: {e}"
                )),
            }
        }
    }
}
