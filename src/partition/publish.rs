//! Publishing a closed file, in the order that makes it exactly once: the intent in the
//! checkpoint, the object, the manifest line, then the checkpoint past the file (and the Kafka
//! commit offered, the Azure SDK mirror followed).

use super::*;
use crate::store::upload::Finish;

impl PartitionWorker {
    pub(super) async fn publish(
        &mut self,
        mut f: OpenFile,
        reason: RollReason,
    ) -> Result<(), WorkerError> {
        let records = f.file.records();
        let (rest, size) = match f.file.finish() {
            Ok(done) => done,
            Err(source) => {
                f.upload.abort().await;
                return Err(WorkerError::Encode {
                    path: f.name,
                    source,
                });
            }
        };
        let upload_err = |path: &str| {
            let path = path.to_string();
            move |source| WorkerError::Upload { path, source }
        };
        f.upload.write(rest).await.map_err(upload_err(&f.name))?;

        // 1. Intent: name the file and its offsets before it can appear.
        // A replay keeps the manifest object of the file it re-writes.
        let manifest = match &self.replay {
            Some(r) => r.manifest.clone(),
            None => self.shared.manifests.object_for(
                &self.topic,
                self.partition,
                self.shared.clock.wall(),
            ),
        };
        let pending = PendingFile {
            path: f.name.clone(),
            first_offset: f.first_offset,
            last_offset: f.last_offset,
            events: records,
            size,
            first_time_ms: f.first_time_ms,
            last_time_ms: f.last_time_ms,
            manifest,
            crc32c: Some(f.upload.crc32c()),
            block_bytes: Some(f.block_bytes as u64),
            topic_id: self.topic_id.clone(),
        };
        let next_offset = self
            .checkpoint
            .as_ref()
            .map_or(f.first_offset, |c| c.next_offset);
        if let Err(e) = self
            .save_checkpoint(next_offset, Some(pending.clone()))
            .await
        {
            f.upload.abort().await;
            return Err(e.into());
        }

        // 2. Publish: the object appears, complete, or not at all; then list it.
        let upload_started = std::time::Instant::now();
        match f.upload.finish().await.map_err(upload_err(&f.name))? {
            Finish::Written => {}
            // This group's own file from an earlier archive of these offsets (its checkpoint was
            // lost or removed, and the window closed elsewhere this time): replaced, and its
            // manifest line with it. Anyone else's is left alone.
            Finish::Taken(taken) => {
                let lists = self
                    .shared
                    .manifests
                    .lists(&self.topic, self.partition, &f.name);
                if lists.await? {
                    warn!(topic = %self.topic, partition = self.partition, file = %f.name,
                        "replacing a file this group wrote earlier for these offsets");
                    taken.replace().await.map_err(upload_err(&f.name))?;
                } else {
                    taken.abort().await;
                    let (shared, topic) = (&self.shared, &self.topic);
                    return Err(occupied(shared, topic, self.partition, &f.name).await);
                }
            }
        }
        let took = upload_started.elapsed();
        self.shared.metrics.upload_duration.observe(took);
        let entry = manifest_entry(&self.shared, &self.topic, self.partition, &pending);
        self.shared
            .manifests
            .upsert(&pending.manifest, &entry)
            .await?;
        if let Some(tables) = &self.shared.tables {
            let now = self.shared.clock.wall().timestamp_millis();
            tables
                .add(&self.topic, self.partition, &pending, now)
                .await?;
        }

        // 3. Commit: only now does the checkpoint move past the file.
        if let Some(c) = self.checkpoint.as_mut() {
            c.last_time_ms = f.last_time_ms.or(c.last_time_ms);
        }
        self.save_checkpoint(f.last_offset + 1, None).await?;
        self.replay = None;
        self.shared
            .commits
            .offer(&self.topic, self.partition, f.last_offset + 1);

        self.report.files += 1;
        self.report.events += records;
        self.report.bytes += size;
        self.stats.file_archived(records, size);
        info!(
            topic = %self.topic,
            partition = self.partition,
            file = %f.name,
            events = records,
            bytes = size,
            offsets = %format!("{}..={}", f.first_offset, f.last_offset),
            ?reason,
            "file written"
        );
        Ok(())
    }

    /// `--once` reached the end of the partition (EOF) below its end offset: the offsets left
    /// hold no records (transaction markers, compacted or aborted records), so the checkpoint
    /// moves to the end offset and the next run does not wait for them.
    pub(super) async fn skip_to_end(&mut self) -> Result<(), WorkerError> {
        let Some(end) = self.end else { return Ok(()) };
        if self.next.unwrap_or(self.low) >= end && self.checkpoint.is_some() {
            return Ok(());
        }
        self.save_checkpoint(end, None).await?;
        debug!(topic = %self.topic, partition = self.partition, end, "no records left below the end offset; checkpoint moved to it");
        self.next = Some(end);
        Ok(())
    }

    /// Continuous mode at the end of the partition (EOF) with no file open: every record the
    /// consumer passed is archived, and the offsets between the checkpoint and the consumer's
    /// position `at` hold no records (transaction markers, aborted or compacted records). The
    /// checkpoint moves to `at`, so that an idle partition whose last write was a transaction
    /// counts as caught up (consumer lag 0, the completeness watermark).
    pub(super) async fn skip_to_position(&mut self, at: i64) -> Result<(), WorkerError> {
        let pending = self
            .checkpoint
            .as_ref()
            .is_some_and(|c| c.pending.is_some());
        if self.open.is_some() || self.replay.is_some() || pending {
            return Ok(());
        }
        if self.next.unwrap_or(self.low) >= at {
            return Ok(());
        }
        self.save_checkpoint(at, None).await?;
        debug!(topic = %self.topic, partition = self.partition, at, "no records between the last file and the end; checkpoint moved to the end");
        self.next = Some(at);
        Ok(())
    }

    /// Writes this partition's checkpoint (creating it the first time) with compare-and-swap on
    /// the version last read or written.
    pub(super) async fn save_checkpoint(
        &mut self,
        next_offset: i64,
        pending: Option<PendingFile>,
    ) -> Result<(), CheckpointError> {
        let mut c = self.checkpoint.clone().unwrap_or_else(|| {
            let mut c = self.shared.checkpoints.document(
                &self.topic,
                self.partition,
                next_offset,
                &self.shared.owner,
            );
            c.topic_id.clone_from(&self.topic_id);
            c
        });
        // A commit (no file pending) counts as archived and is mirrored to the Azure SDK
        // checkpoint, if any.
        let committed = pending.is_none();
        c.next_offset = next_offset;
        c.pending = pending;
        c.updated_at = self.shared.clock.rfc3339();
        let started = std::time::Instant::now();
        self.version = Some(
            self.shared
                .checkpoints
                .save(&c, self.version.take())
                .await?,
        );
        self.shared
            .metrics
            .checkpoint_duration
            .observe(started.elapsed());
        self.stats.checkpointed(next_offset, committed);
        self.checkpoint = Some(c);
        if let (Some(sdk), true) = (&self.shared.sdk, committed) {
            sdk.mirror(&self.topic, self.partition, next_offset).await;
        }
        Ok(())
    }

    /// An idle window with `--empty-files`: a valid Capture file with no records. It covers no
    /// offsets, so the checkpoint does not change.
    pub(super) async fn publish_empty(
        &mut self,
        opened_wall: DateTime<Utc>,
    ) -> Result<(), WorkerError> {
        let first = self.next.unwrap_or(self.low);
        let name = self.name(first, opened_wall);
        let (bytes, size) = self
            .shared
            .files
            .format
            .create(&self.topic, self.partition, first)
            .finish()
            .map_err(|source| WorkerError::Encode {
                path: name.clone(),
                source,
            })?;
        // Created like any file: an object already at the name is never replaced.
        let output = &self.shared.output;
        let mut upload = Upload::new(output.store.clone(), output.path(&name), usize::MAX, 1)
            .with_retry(output.retry);
        let upload_err = |source| WorkerError::Upload {
            path: name.clone(),
            source,
        };
        upload.write(bytes).await.map_err(upload_err)?;
        if let Finish::Taken(taken) = upload.finish().await.map_err(upload_err)? {
            taken.abort().await;
            return Err(occupied(&self.shared, &self.topic, self.partition, &name).await);
        }
        self.report.empty_files += 1;
        self.report.bytes += size;
        debug!(topic = %self.topic, partition = self.partition, file = %name, "empty file written");
        Ok(())
    }
}

/// The manifest line of a published file, from its intent.
pub(super) fn manifest_entry(
    shared: &Shared,
    topic: &str,
    partition: i32,
    p: &PendingFile,
) -> ManifestEntry {
    ManifestEntry {
        version: MANIFEST_VERSION.into(),
        file_url: format!("{}/{}", shared.output.display.trim_end_matches('/'), p.path),
        path: p.path.clone(),
        topic: topic.into(),
        partition_id: partition,
        size_in_bytes: p.size,
        event_count: p.events,
        first_sequence_number: p.first_offset,
        last_sequence_number: p.last_offset,
        first_enqueue_time: time_text(p.first_time_ms),
        last_enqueue_time: time_text(p.last_time_ms),
        format: shared.files.format.name().into(),
        codec: shared.files.format.codec_name().into(),
        created_at: shared.clock.rfc3339(),
        content_crc32c: p.crc32c.clone(),
        block_bytes: p.block_bytes,
        topic_id: p.topic_id.clone(),
    }
}

/// The error for a file name another writer holds, naming who it may be.
pub(super) async fn occupied(
    shared: &Shared,
    topic: &str,
    partition: i32,
    name: &str,
) -> WorkerError {
    let others = shared.checkpoints.other_groups(topic, partition).await;
    let where_ = shared.checkpoints.location().display.clone();
    let owner = if others.is_empty() {
        format!("no other consumer group keeps checkpoints for {}/{} in {where_}, so another archiver, a person or a tool wrote it", topic, partition)
    } else {
        format!(
            "consumer group {} archives {}/{} into this output too (its checkpoints are in {where_})",
            others.join(", "),
            topic,
            partition
        )
    };
    WorkerError::Occupied {
        path: name.to_string(),
        owner,
    }
}
