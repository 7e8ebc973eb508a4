//! What keeps a table's metadata from growing with every commit, besides manifest merging
//! ([`merge`](super::merge)): each version keeps at most `hubcap.snapshots.max` snapshots and
//! lists at most `write.metadata.previous-versions-max` previous versions ([`Upkeep`]); once a
//! commit has succeeded, the files that only the snapshots and versions it dropped referenced
//! are deleted.
//!
//! Data files are never deleted: hubcap only appends, so the current snapshot references every
//! data file the table ever had, and expiring a snapshot frees its manifest list and some
//! manifests, nothing else.

use std::collections::BTreeSet;

use futures::StreamExt;

use super::properties::Upkeep;
use super::*;

/// Removes the oldest snapshots of `metadata` beyond `max`, and their snapshot-log entries.
/// A snapshot a ref names (the current one; another tool's tag or branch) stays, even beyond
/// `max`.
pub(super) fn expire_snapshots(metadata: &mut TableMetadata, max: usize) {
    let pinned: BTreeSet<i64> = metadata
        .refs
        .values()
        .map(|r| r.snapshot_id)
        .chain(metadata.current_snapshot_id)
        .collect();
    let mut by_age: Vec<(i64, i64)> = metadata
        .snapshots
        .iter()
        .map(|s| (s.sequence_number, s.snapshot_id))
        .collect();
    by_age.sort_unstable();
    let excess = metadata.snapshots.len().saturating_sub(max);
    let removed: BTreeSet<i64> = by_age
        .into_iter()
        .map(|(_, id)| id)
        .filter(|id| !pinned.contains(id))
        .take(excess)
        .collect();
    metadata
        .snapshots
        .retain(|s| !removed.contains(&s.snapshot_id));
    metadata
        .snapshot_log
        .retain(|e| !removed.contains(&e.snapshot_id));
}

impl IcebergTable {
    /// Lists `base`'s version in `after`'s metadata log, dropping the oldest entries beyond
    /// `max` (as Java's `TableMetadata` builder does).
    pub(super) fn log_previous_version(
        &self,
        after: &mut TableMetadata,
        base: &TableState,
        max: usize,
    ) {
        after.metadata_log.push(MetadataLogEntry {
            metadata_file: format!("{}/metadata/{}", self.uri, metadata_name(base.version)),
            timestamp_ms: base.metadata.last_updated_ms,
        });
        let excess = after.metadata_log.len().saturating_sub(max);
        after.metadata_log.drain(..excess);
    }

    /// [`IcebergError::Conflict`], before anything is written, when the version hint names a
    /// version after `base`'s: another writer committed since.
    ///
    /// Without it, deleting old versions would lose commits: on a table long past `base`,
    /// `v{base+1}.metadata.json` is deleted, so creating it again would succeed and make a
    /// stale snapshot the latest. The hint lags the latest version by the versions whose hint
    /// write failed, far fewer than the previous versions kept; a table without a catalog
    /// works the same in Java (`HadoopTableOperations` reads the hint before it commits).
    pub(super) async fn refuse_stale_base(&self, base: &TableState) -> Result<(), IcebergError> {
        // A catalog checks the base itself (`assert-ref-snapshot-id`).
        if self.catalog.is_some() {
            return Ok(());
        }
        let hinted = self.get(VERSION_HINT).await?.and_then(|b| {
            std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
        });
        match hinted {
            Some(latest) if latest > base.version => Err(IcebergError::Conflict {
                table: self.location.display.clone(),
                version: base.version + 1,
            }),
            _ => Ok(()),
        }
    }

    /// Deletes the manifest lists of the snapshots that `after` no longer has and `base` had,
    /// and the manifests that only they listed. Failures are logged, not returned: the commit
    /// is done, and a file left behind is one no snapshot references (orphan-file removal
    /// finds it).
    ///
    /// A manifest is added by one snapshot and leaves the list at most once (merged away):
    /// the snapshots that list it are consecutive in their lineage. So a manifest that a
    /// removed snapshot lists and the oldest kept snapshot of each lineage (one whose parent
    /// is not kept) does not list, no kept snapshot lists.
    pub(super) async fn delete_expired_snapshot_files(
        &self,
        base: &TableState,
        after: &TableState,
    ) {
        let kept: BTreeSet<i64> = after
            .metadata
            .snapshots
            .iter()
            .map(|s| s.snapshot_id)
            .collect();
        let removed: Vec<&Snapshot> = base
            .metadata
            .snapshots
            .iter()
            .filter(|s| !kept.contains(&s.snapshot_id))
            .collect();
        if removed.is_empty() {
            return;
        }
        let mut unreferenced = BTreeSet::new();
        for s in &removed {
            unreferenced.extend(self.listed(&s.manifest_list).await.unwrap_or_default());
        }
        let oldest_kept = after
            .metadata
            .snapshots
            .iter()
            .filter(|s| s.parent_snapshot_id.is_none_or(|p| !kept.contains(&p)));
        for s in oldest_kept {
            match self.listed(&s.manifest_list).await {
                Some(listed) => unreferenced.retain(|m| !listed.contains(m)),
                // Which of them it still lists is unknown: keep them all.
                None => unreferenced.clear(),
            }
        }
        let lists = removed.iter().map(|s| s.manifest_list.clone());
        self.delete_files(
            lists.chain(unreferenced).collect(),
            "expired snapshots' files",
        )
        .await;
    }

    /// The manifests `list` names; `None`, logged, when it cannot be read.
    async fn listed(&self, list: &str) -> Option<BTreeSet<String>> {
        match self.manifests(list).await {
            Ok(manifests) => Some(manifests.into_iter().map(|m| m.manifest_path).collect()),
            Err(e) => {
                tracing::warn!(table = %self.location.display, error = %e, "cannot read an expired snapshot's manifest list: its manifests stay");
                None
            }
        }
    }

    /// Deletes the metadata files that `base`'s log listed and `after`'s does not, when the
    /// table says so (`write.metadata.delete-after-commit.enabled`). A catalog deletes its
    /// own; this is for a table without one. Failures are logged, not returned.
    pub(super) async fn delete_old_metadata_files(&self, base: &TableState, after: &TableState) {
        let enabled = Upkeep::of(&after.metadata.properties).is_ok_and(|u| u.delete_old_metadata);
        if !enabled {
            return;
        }
        let kept: BTreeSet<&str> = after
            .metadata
            .metadata_log
            .iter()
            .map(|e| e.metadata_file.as_str())
            .collect();
        let dropped = base
            .metadata
            .metadata_log
            .iter()
            .map(|e| e.metadata_file.clone())
            .filter(|f| !kept.contains(f.as_str()))
            .collect();
        self.delete_files(dropped, "old metadata versions").await;
    }

    /// Deletes the table's files `uris`; what fails is logged. A file already gone (deleted by
    /// another tool) is fine.
    pub(super) async fn delete_files(&self, uris: Vec<String>, what: &str) {
        let prefix = format!("{}/", self.uri);
        let paths: Vec<object_store::Result<object_store::path::Path>> = uris
            .iter()
            .filter_map(|uri| match uri.strip_prefix(&prefix) {
                Some(relative) => Some(Ok(self.location.path(relative))),
                None => {
                    tracing::warn!(table = %self.location.display, file = uri, "not deleting a file outside the table");
                    None
                }
            })
            .collect();
        let count = paths.len();
        let mut results = self
            .location
            .store
            .delete_stream(futures::stream::iter(paths).boxed());
        while let Some(result) = results.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(table = %self.location.display, error = %crate::store::retry::describe(&e), "cannot delete one of the {what}: it stays, unreferenced")
                }
            }
        }
        tracing::debug!(table = %self.location.display, count, "deleted {what}");
    }
}
