//! Taking a partition on: read its checkpoint, settle a publish a stop interrupted (roll it
//! forward when its file exists, replay it byte for byte when not), and claim the partition by
//! writing the checkpoint under this owner, which fences the former owner.

use super::publish::manifest_entry;
use super::*;
use crate::store::upload::same_or_taken;

/// Where a newly assigned partition starts.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub checkpoint: Option<Checkpoint>,
    pub version: Option<UpdateVersion>,
    /// A file whose intent was written but whose object does not exist: the first window of the
    /// replay is written again under this name with exactly these offsets.
    pub replay: Option<PendingFile>,
    /// Kafka's id of the topic (see [`Checkpoint::topic_id`]), recorded in new checkpoints and
    /// manifest lines.
    pub topic_id: Option<String>,
}

impl Resume {
    pub fn next_offset(&self) -> Option<i64> {
        self.checkpoint.as_ref().map(|c| c.next_offset)
    }
}

/// Reads a partition's checkpoint, settles an unfinished publish, and claims the partition by
/// re-writing the checkpoint under this owner (which fences the former owner's later writes).
///
/// A broker may hand a partition over before its former owner let go of it; when that owner
/// writes the checkpoint between our read and our claim, the claim is refused and is tried
/// again on what it wrote.
///
/// `topic_id`: the id Kafka gives the topic now, if any. A checkpoint recorded under another id
/// belongs to an earlier incarnation of the topic (deleted and re-created since, its offsets
/// started over): the partition is refused, not resumed at an offset of another topic.
pub async fn resume(
    shared: &Shared,
    topic: &str,
    partition: i32,
    topic_id: Option<&str>,
) -> Result<Resume, WorkerError> {
    const CLAIMS: u32 = 10;
    let mut attempt = 1;
    loop {
        match claim(shared, topic, partition, topic_id).await {
            Err(e) if e.is_fenced() && attempt < CLAIMS => {
                debug!(%topic, partition, attempt, "the former owner wrote the checkpoint meanwhile; claiming again");
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(attempt))).await;
            }
            other => return other,
        }
    }
}

async fn claim(
    shared: &Shared,
    topic: &str,
    partition: i32,
    topic_id: Option<&str>,
) -> Result<Resume, WorkerError> {
    let Some(found) = shared.checkpoints.load(topic, partition).await? else {
        let mut r = take_over_from_sdk(shared, topic, partition, topic_id).await?;
        r.topic_id = topic_id.map(str::to_string);
        return Ok(r);
    };
    let mut c = found.checkpoint;
    match (&c.topic_id, topic_id) {
        (Some(archived), Some(now)) if archived != now => {
            return Err(WorkerError::TopicRecreated {
                topic: topic.into(),
                partition,
                checkpoint: shared.checkpoints.path(topic, partition).to_string(),
                archived: archived.clone(),
                now: now.into(),
                next_offset: c.next_offset,
            })
        }
        // A checkpoint from before hubcap recorded ids takes the topic's on this claim.
        (None, Some(now)) => c.topic_id = Some(now.into()),
        _ => {}
    }
    let mut replay = None;
    if let Some(p) = c.pending.clone() {
        let path = shared.output.path(&p.path);
        match shared.output.head(&path).await {
            Ok(found) => {
                // The file of the intent, unless someone else wrote that name meanwhile.
                let same = match &p.crc32c {
                    Some(crc) => {
                        let store = &shared.output.store;
                        same_or_taken(store, &path, p.size, crc, &shared.output.retry).await
                    }
                    None if found.size == p.size => Ok(()),
                    None => Err(object_store::Error::AlreadyExists {
                        path: path.to_string(),
                        source: "another size".into(),
                    }),
                };
                let complete = match same {
                    Ok(()) => true,
                    // A file this group wrote for these offsets before (its checkpoint was lost
                    // or removed since): the intent's file is written again over it.
                    Err(object_store::Error::AlreadyExists { .. })
                        if shared.manifests.lists(topic, partition, &p.path).await? =>
                    {
                        false
                    }
                    Err(object_store::Error::AlreadyExists { .. }) => {
                        return Err(
                            super::publish::occupied(shared, topic, partition, &p.path).await
                        );
                    }
                    Err(source) => {
                        return Err(WorkerError::Head {
                            path: p.path,
                            source,
                        })
                    }
                };
                if complete {
                    roll_forward(shared, topic, partition, &mut c, &p).await?;
                } else {
                    info!(%topic, partition, file = %p.path, "the last file before a stop has other bytes than its intent; it is written again");
                    replay = Some(p);
                }
            }
            Err(object_store::Error::NotFound { .. }) => {
                info!(%topic, partition, file = %p.path, "the last file before a stop never appeared; it is written again");
                replay = Some(p);
            }
            Err(source) => {
                return Err(WorkerError::Head {
                    path: p.path,
                    source,
                })
            }
        }
    }
    c.owner.clone_from(&shared.owner);
    c.updated_at = shared.clock.rfc3339();
    let version = shared.checkpoints.save(&c, Some(found.version)).await?;
    if let Some(sdk) = &shared.sdk {
        sdk.follow(topic, partition, c.next_offset).await;
    }
    Ok(Resume {
        topic_id: c.topic_id.clone(),
        checkpoint: Some(c),
        version: Some(version),
        replay,
    })
}

/// The intent's file is complete: it is listed (and added to the table) and the checkpoint
/// moves past it.
async fn roll_forward(
    shared: &Shared,
    topic: &str,
    partition: i32,
    c: &mut Checkpoint,
    p: &PendingFile,
) -> Result<(), WorkerError> {
    info!(%topic, partition, file = %p.path, "the last file before a stop is complete; checkpoint moves past it");
    shared
        .manifests
        .upsert(&p.manifest, &manifest_entry(shared, topic, partition, p))
        .await?;
    if let Some(tables) = &shared.tables {
        let now = shared.clock.wall().timestamp_millis();
        tables.add(topic, partition, p, now).await?;
    }
    c.next_offset = p.last_offset + 1;
    c.last_time_ms = p.last_time_ms.or(c.last_time_ms);
    c.pending = None;
    Ok(())
}

/// A partition without a hubcap checkpoint: with `--azure-sdk-checkpoints`, it starts after the
/// event an Azure SDK processor checkpointed last. hubcap's checkpoint is created there at once
/// (as a claim), so from then on only hubcap's own checkpoint counts.
async fn take_over_from_sdk(
    shared: &Shared,
    topic: &str,
    partition: i32,
    topic_id: Option<&str>,
) -> Result<Resume, WorkerError> {
    let Some(sdk) = &shared.sdk else {
        return Ok(Resume::default());
    };
    let Some(next_offset) = sdk.start_offset(topic, partition).await? else {
        return Ok(Resume::default());
    };
    let mut c = shared
        .checkpoints
        .document(topic, partition, next_offset, &shared.owner);
    c.topic_id = topic_id.map(str::to_string);
    let version = shared.checkpoints.save(&c, None).await?;
    Ok(Resume {
        topic_id: c.topic_id.clone(),
        checkpoint: Some(c),
        version: Some(version),
        replay: None,
    })
}
