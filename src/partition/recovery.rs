//! Taking a partition on: read its checkpoint, settle a publish a stop interrupted (roll it
//! forward when its file exists, replay it byte for byte when not), and claim the partition by
//! writing the checkpoint under this owner, which fences the former owner.

use super::publish::manifest_entry;
use super::*;

/// Where a newly assigned partition starts.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub checkpoint: Option<Checkpoint>,
    pub version: Option<UpdateVersion>,
    /// A file whose intent was written but whose object does not exist: the first window of the
    /// replay is written again under this name with exactly these offsets.
    pub replay: Option<PendingFile>,
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
pub async fn resume(shared: &Shared, topic: &str, partition: i32) -> Result<Resume, WorkerError> {
    const CLAIMS: u32 = 10;
    let mut attempt = 1;
    loop {
        match claim(shared, topic, partition).await {
            Err(e) if e.is_fenced() && attempt < CLAIMS => {
                debug!(%topic, partition, attempt, "the former owner wrote the checkpoint meanwhile; claiming again");
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(attempt))).await;
            }
            other => return other,
        }
    }
}

async fn claim(shared: &Shared, topic: &str, partition: i32) -> Result<Resume, WorkerError> {
    let Some(found) = shared.checkpoints.load(topic, partition).await? else {
        return take_over_from_sdk(shared, topic, partition).await;
    };
    let mut c = found.checkpoint;
    let mut replay = None;
    if let Some(p) = c.pending.clone() {
        let path = shared.output.path(&p.path);
        match shared.output.head(&path).await {
            Ok(_) => {
                info!(%topic, partition, file = %p.path, "the last file before a stop is complete; checkpoint moves past it");
                shared
                    .manifests
                    .upsert(&p.manifest, &manifest_entry(shared, topic, partition, &p))
                    .await?;
                if let Some(tables) = &shared.tables {
                    let now = shared.clock.wall().timestamp_millis();
                    tables.add(topic, partition, &p, now).await?;
                }
                c.next_offset = p.last_offset + 1;
                c.pending = None;
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
        checkpoint: Some(c),
        version: Some(version),
        replay,
    })
}

/// A partition without a hubcap checkpoint: with `--azure-sdk-checkpoints`, it starts after the
/// event an Azure SDK processor checkpointed last. hubcap's checkpoint is created there at once
/// (as a claim), so from then on only hubcap's own checkpoint counts.
async fn take_over_from_sdk(
    shared: &Shared,
    topic: &str,
    partition: i32,
) -> Result<Resume, WorkerError> {
    let Some(sdk) = &shared.sdk else {
        return Ok(Resume::default());
    };
    let Some(next_offset) = sdk.start_offset(topic, partition).await? else {
        return Ok(Resume::default());
    };
    let c = shared
        .checkpoints
        .document(topic, partition, next_offset, &shared.owner);
    let version = shared.checkpoints.save(&c, None).await?;
    Ok(Resume {
        checkpoint: Some(c),
        version: Some(version),
        replay: None,
    })
}
