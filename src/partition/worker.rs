//! The worker loop: takes its partition's record batches, appends records to the open window's
//! file (starting one sized from the memory budget), rolls it by size and time, and restarts
//! after transient failures.

use super::*;
use crate::store::retry::within;

impl PartitionWorker {
    pub fn new(
        shared: Arc<Shared>,
        topic: &str,
        partition: i32,
        resume: Resume,
        input: mpsc::Receiver<Input>,
        end: Option<(i64, i64)>,
    ) -> Self {
        let next = resume.next_offset();
        let opened = shared.clock.now();
        let opened_wall = shared.clock.wall_at(opened);
        shared
            .workers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stats = shared.metrics.partition(topic, partition);
        let low = end.map_or(0, |(low, _)| low);
        stats.assigned(next.unwrap_or(low), next, end.map(|(_, high)| high));
        let held = Charge::new(&shared.budget, Use::File);
        PartitionWorker {
            shared,
            topic: topic.to_string(),
            partition,
            input,
            end: end.map(|(_, high)| high),
            low,
            checkpoint: resume.checkpoint,
            version: resume.version,
            replay: resume.replay,
            topic_id: resume.topic_id,
            next,
            open: None,
            opened,
            opened_wall,
            report: PartitionReport {
                topic: topic.to_string(),
                partition,
                next_offset: next,
                ..Default::default()
            },
            stats,
            held,
        }
    }

    /// Runs until the input closes (revoked or stopping), `--once` reaches its end, or an error.
    /// An open window is flushed first in every case but an error.
    ///
    /// A transient store error that outlived the store's retries aborts the open file and starts
    /// the partition over from its checkpoint (as a restarted process would), after a backoff;
    /// the run fails once errors persisted without progress for the retry policy's
    /// `give_up_after`. That time bounds the whole streak: every store operation retried during
    /// it gives up by the streak's end ([`within`]), and an error the store's retries already
    /// gave up on is not retried again.
    pub async fn run(mut self) -> (PartitionReport, Result<(), WorkerError>) {
        let policy = self.shared.output.retry;
        let mut streak: Option<(Instant, u32)> = None;
        let result = loop {
            let files_before = self.report.files;
            let result = match streak {
                Some((since, _)) => within(since + policy.give_up_after, self.run_inner()).await,
                None => self.run_inner().await,
            };
            if let Some(f) = self.open.take() {
                f.upload.abort().await;
            }
            self.stats.window_closed();
            let e = match result {
                Ok(()) => break Ok(()),
                Err(e) if !e.is_transient() => break Err(e),
                Err(e) => e,
            };
            if self.report.files > files_before {
                streak = None;
            }
            let (since, attempts) = streak.get_or_insert((self.shared.clock.now(), 0));
            *attempts += 1;
            if since.elapsed() >= policy.give_up_after {
                error!(topic = %self.topic, partition = self.partition, attempts = *attempts, error = %e,
                    "archiving the partition failed; giving up after {:?} of retries", policy.give_up_after);
                break Err(e);
            }
            let delay = policy.delay(*attempts);
            crate::observe::metrics::count_retry(Operation::PartitionRestart);
            warn!(topic = %self.topic, partition = self.partition, attempt = *attempts, retry_in = ?delay, error = %e,
                "archiving the partition failed; it starts again from its checkpoint");
            let until = *since + policy.give_up_after;
            match within(until, self.restart(delay)).await {
                Ok(true) => {}
                Ok(false) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.report.next_offset = self
            .checkpoint
            .as_ref()
            .map(|c| c.next_offset)
            .or(self.next);
        (std::mem::take(&mut self.report), result)
    }

    pub(super) async fn run_inner(&mut self) -> Result<(), WorkerError> {
        if self.at_end() {
            return Ok(());
        }
        // Where the consumer last reached the partition's end, if no record came since.
        let mut eof_at = None;
        loop {
            let deadline = self.shared.files.policy.deadline(self.opened);
            tokio::select! {
                input = self.input.recv() => match input {
                    Some(Input::Records(batch, charge)) => {
                        eof_at = None;
                        let flow = self.accept_all(&batch).await;
                        self.shared.batches.give_back(batch);
                        drop(charge);
                        if let Flow::Done = flow? {
                            return self.close(RollReason::End).await;
                        }
                        self.observe_window();
                    }
                    Some(Input::Eof(_)) if self.end.is_some() => {
                        self.close(RollReason::End).await?;
                        return self.skip_to_end().await;
                    }
                    Some(Input::Eof(Some(at))) => {
                        eof_at = Some(at);
                        self.skip_to_position(at).await?;
                    }
                    Some(Input::Eof(None) | Input::Rewound) => {}
                    None => return self.close(RollReason::Stop).await,
                },
                () = sleep_until(deadline) => {
                    self.close(RollReason::Time).await?;
                    if let Some(at) = eof_at {
                        self.skip_to_position(at).await?;
                    }
                    self.observe_window();
                }
            }
        }
    }

    /// After a failure: waits `delay`, reloads the checkpoint (settling the file in flight, as
    /// on assignment) and has the consumer move back to it. Input sent meanwhile is dropped: it
    /// is read again after the rewind. `Ok(false)` when the input closed (revoked or stopping).
    pub(super) async fn restart(
        &mut self,
        delay: std::time::Duration,
    ) -> Result<bool, WorkerError> {
        let until = self.shared.clock.now() + delay;
        loop {
            tokio::select! {
                input = self.input.recv() => if input.is_none() { return Ok(false) },
                () = sleep_until(until) => break,
            }
        }
        let r = resume(
            &self.shared,
            &self.topic,
            self.partition,
            self.topic_id.as_deref(),
        )
        .await?;
        self.next = r.next_offset();
        self.checkpoint = r.checkpoint;
        self.version = r.version;
        self.replay = r.replay;
        self.opened = self.shared.clock.now();
        self.opened_wall = self.wall(self.opened);
        self.shared
            .rewinds
            .offer(&self.topic, self.partition, self.next);
        loop {
            match self.input.recv().await {
                None => return Ok(false),
                Some(Input::Rewound) => return Ok(true),
                Some(_) => {}
            }
        }
    }

    pub(super) fn at_end(&self) -> bool {
        self.end
            .is_some_and(|end| self.next.unwrap_or(self.low) >= end)
    }

    pub(super) async fn accept_all(&mut self, batch: &Batch) -> Result<Flow, WorkerError> {
        for r in batch.iter() {
            if let Flow::Done = self.accept(&r).await? {
                return Ok(Flow::Done);
            }
        }
        Ok(Flow::Continue)
    }

    pub(super) async fn accept(&mut self, r: &Record<'_>) -> Result<Flow, WorkerError> {
        if let Some(c) = self
            .checkpoint
            .as_ref()
            .filter(|c| r.offset < c.next_offset)
        {
            // The consumer starts at the checkpoint and never seeks below it: an offset under it
            // means Kafka reset the position, because the topic was deleted and re-created (or
            // truncated) and its offsets started over. Skipping those records as already
            // archived would lose them without a word.
            return Err(WorkerError::OffsetsWentBack {
                topic: self.topic.clone(),
                partition: self.partition,
                offset: r.offset,
                next_offset: c.next_offset,
            });
        }
        if self.next.is_some_and(|next| r.offset < next) {
            // Re-delivered after a seek or rebalance; already archived or in the open file.
            return Ok(Flow::Continue);
        }
        if self.end.is_some_and(|end| r.offset >= end) {
            return Ok(Flow::Done);
        }
        self.append(r).await?;
        Ok(if self.at_end() {
            Flow::Done
        } else {
            Flow::Continue
        })
    }

    pub(super) async fn append(&mut self, e: &Record<'_>) -> Result<(), WorkerError> {
        // Prepare the record on the open file; if it would overflow the size window, close the
        // file first (a replayed window keeps exactly the offsets its intent named).
        let mut prepared = false;
        let mut roll = None;
        if let Some(f) = &mut self.open {
            let extra = f.file.prepare(e);
            prepared = true;
            if self.replay.is_none() {
                roll = self
                    .shared
                    .files
                    .policy
                    .roll_before(f.file.records(), f.file.size_with(extra));
            }
        }
        if let Some(reason) = roll {
            self.close(reason).await?;
            prepared = false;
        }
        if self.open.is_none() {
            self.open = Some(self.start_file(e));
        }
        let Some(f) = self.open.as_mut() else {
            return Ok(()); // unreachable: opened just above
        };
        if !prepared {
            f.file.prepare(e);
        }
        let encode_err = |source| WorkerError::Encode {
            path: f.name.clone(),
            source,
        };
        f.file.push_prepared(e).map_err(encode_err)?;
        f.last_offset = e.offset;
        f.last_time_ms = e.timestamp_ms;
        if f.file.output_len() > 0 {
            let path = f.name.clone();
            f.upload
                .write(f.file.take_output())
                .await
                .map_err(|source| WorkerError::Upload { path, source })?;
        }
        let size = f.file.size_with(0);
        self.next = Some(e.offset + 1);
        let roll = match &self.replay {
            Some(r) if e.offset >= r.last_offset => Some(RollReason::Size),
            Some(_) => None,
            None => self.shared.files.policy.roll_after(size),
        };
        if let Some(reason) = roll {
            self.close(reason).await?;
        }
        Ok(())
    }

    /// Per batch, not per record: the open window's size and the position, for metrics, and
    /// the open file's memory, for the budget.
    pub(super) fn observe_window(&mut self) {
        let (records, bytes, held) = self.open.as_ref().map_or((0, 0, 0), |f| {
            (
                f.file.records(),
                f.file.size_with(0),
                f.file.held_bytes() + f.upload.held_bytes(),
            )
        });
        self.stats.window(records, bytes, self.next);
        self.held.set(held);
    }

    pub(super) fn start_file(&self, first: &Record<'_>) -> OpenFile {
        self.stats.window_opened(first.timestamp_ms);
        let name = match &self.replay {
            Some(r) => r.path.clone(),
            None => self.name(
                first.offset,
                name_time(first.timestamp_ms, self.opened_wall),
            ),
        };
        // This file's share of the memory budget: an eighth for each upload part (one filling,
        // the others in flight), an eighth for an Avro block, a quarter for a Parquet row group;
        // never below the store's minimum part or the encoder's minimum.
        let files = self
            .shared
            .workers
            .load(std::sync::atomic::Ordering::Relaxed);
        let share = self.shared.budget.share(files);
        let part_size = (share / 8).clamp(
            self.shared.files.min_part_size,
            self.shared
                .files
                .part_size
                .max(self.shared.files.min_part_size),
        );
        // A replay writes its blocks as the file it replaces had them: the same bytes.
        let recorded = self.replay.as_ref().and_then(|r| r.block_bytes);
        let format = match recorded.and_then(|b| usize::try_from(b).ok()) {
            Some(bytes) => self.shared.files.format.with_block_bytes(bytes),
            None => self.shared.files.format.sized_for(share),
        };
        self.shared.budget.check_file(
            files,
            format.block_bytes() + (1 + PARTS_IN_FLIGHT) * part_size,
        );
        OpenFile {
            upload: Upload::new(
                self.shared.output.store.clone(),
                self.shared.output.path(&name),
                part_size,
                PARTS_IN_FLIGHT,
            )
            .with_retry(self.shared.output.retry),
            name,
            file: format.create(&self.topic, self.partition, first.offset),
            first_offset: first.offset,
            last_offset: first.offset,
            first_time_ms: first.timestamp_ms,
            last_time_ms: first.timestamp_ms,
            block_bytes: format.block_bytes(),
        }
    }

    pub(super) fn wall(&self, at: Instant) -> DateTime<Utc> {
        self.shared.clock.wall_at(at)
    }

    pub(super) fn name(&self, first_offset: i64, time: DateTime<Utc>) -> String {
        self.shared.files.template.render(&NameParts {
            namespace: &self.shared.files.namespace,
            topic: &self.topic,
            partition: self.partition,
            first_offset,
            time,
        })
    }

    /// Closes the window: publishes its file (if any), then starts the next window.
    pub(super) async fn close(&mut self, reason: RollReason) -> Result<(), WorkerError> {
        let opened_wall = self.opened_wall;
        self.opened = self.shared.clock.now();
        self.opened_wall = self.wall(self.opened);
        match self.open.take() {
            Some(f) => self.publish(f, reason).await,
            None if reason == RollReason::Time && self.shared.files.empty_files => {
                self.publish_empty(opened_wall).await
            }
            None => Ok(()),
        }
    }
}
