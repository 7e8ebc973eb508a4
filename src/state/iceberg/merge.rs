//! The manifests of a commit's snapshot, merged as Java Iceberg merges them (its table
//! properties `commit.manifest-merge.enabled`, `commit.manifest.min-count-to-merge`,
//! `commit.manifest.target-size-bytes`, see [`Upkeep`]): without merging each commit adds a
//! manifest, and the manifest list that every commit rewrites and every reader reads first
//! grows by one entry per commit, forever.

use futures::{StreamExt, TryStreamExt};

use super::manifest::{DATA, EXISTING};
use super::properties::Merge;
use super::*;

/// Manifests read at once while merging.
const CONCURRENT_READS: usize = 8;

/// The snapshot a commit makes, which its manifests are written for.
pub(super) struct NewSnapshot<'a> {
    /// The table as the commit found it (schema, for the manifests' headers).
    pub metadata: &'a TableMetadata,
    /// The default partition spec, which the new files are in.
    pub spec: &'a PartitionSpec,
    pub snapshot_id: i64,
    pub sequence_number: i64,
}

impl IcebergTable {
    /// The manifests of the new snapshot: `previous` (the base snapshot's), plus `entries` (the
    /// commit's new files) in a manifest of their own, `{snapshot_id}-m0.avro`.
    ///
    /// When the default spec would then have `min_count` data manifests or more, the new
    /// files and each of those manifests smaller than `target_size` go into one new manifest,
    /// `{snapshot_id}-m1.avro`, instead. Java packs them in bins of the target size; hubcap's
    /// manifests (one commit's files each) are far smaller than that, so it is one bin here: a
    /// merged manifest takes in the small ones at each merge until it reaches the target size,
    /// then is left as it is and the next merges start another. Manifests of other specs, and
    /// delete manifests (another writer's), are never merged.
    pub(super) async fn next_manifests(
        &self,
        new: &NewSnapshot<'_>,
        previous: Vec<ManifestFile>,
        entries: Vec<ManifestEntry>,
        merge: Option<Merge>,
    ) -> Result<Vec<ManifestFile>, IcebergError> {
        let mergeable =
            |m: &ManifestFile| m.partition_spec_id == new.spec.spec_id && m.content == DATA;
        let added = usize::from(!entries.is_empty());
        let count = previous.iter().filter(|m| mergeable(m)).count() + added;
        let target = merge
            .filter(|m| count >= m.min_count)
            .map(|m| m.target_size);
        let small = |m: &ManifestFile| {
            target.is_some_and(|t| {
                mergeable(m) && u64::try_from(m.manifest_length).is_ok_and(|l| l < t)
            })
        };
        let merged = previous.iter().filter(|m| small(m)).count();
        if merged == 0 || merged + added < 2 {
            let mut list = previous;
            if added > 0 {
                list.push(self.write_manifest(new, "m0", &entries).await?);
            }
            return Ok(list);
        }
        let (small, mut list): (Vec<ManifestFile>, Vec<ManifestFile>) =
            previous.into_iter().partition(small);
        let mut all = self.carried(&small, new.spec).await?;
        all.extend(entries);
        list.push(self.write_manifest(new, "m1", &all).await?);
        tracing::debug!(table = %self.location.display, manifests = small.len(), files = all.len(), "merged Iceberg manifests");
        Ok(list)
    }

    /// The files of `manifests` as entries of a manifest another snapshot writes: `EXISTING`,
    /// with the snapshot id and the sequence numbers they were added with written out, since
    /// only an entry `ADDED` by a manifest's own snapshot may inherit them. `DELETED` entries
    /// are left out: the snapshot that deleted them is the last to list them.
    async fn carried(
        &self,
        manifests: &[ManifestFile],
        spec: &PartitionSpec,
    ) -> Result<Vec<ManifestEntry>, IcebergError> {
        let names: Vec<String> = spec.fields.iter().map(|f| f.name.clone()).collect();
        // The futures collected first: a stream mapping through a closure that borrows makes
        // the commit's future not `Send` (rustc's higher-ranked lifetime limits).
        let reads: Vec<_> = manifests
            .iter()
            .map(|m| self.live_entries(m, &names))
            .collect();
        let read: Vec<Vec<ManifestEntry>> = futures::stream::iter(reads)
            .buffered(CONCURRENT_READS)
            .try_collect()
            .await?;
        Ok(read
            .into_iter()
            .flatten()
            .map(|e| ManifestEntry {
                status: EXISTING,
                ..e
            })
            .collect())
    }

    /// The entries of manifest `m` in its snapshot (all but `DELETED` ones), with what they
    /// inherit from `m` filled in; partition values in the order of `names`.
    pub(super) async fn live_entries(
        &self,
        m: &ManifestFile,
        names: &[String],
    ) -> Result<Vec<ManifestEntry>, IcebergError> {
        let data = self.get_uri(&m.manifest_path).await?;
        let entries = decode::read_manifest(&data, names)
            .map_err(|e| self.unreadable(&m.manifest_path, e))?;
        Ok(entries
            .into_iter()
            .filter(|e| e.status != DELETED)
            .map(|e| e.inherit(m))
            .collect())
    }

    /// Writes `entries` as the new snapshot's manifest `metadata/{snapshot_id}-{suffix}.avro`
    /// and describes it as the manifest list does.
    async fn write_manifest(
        &self,
        new: &NewSnapshot<'_>,
        suffix: &str,
        entries: &[ManifestEntry],
    ) -> Result<ManifestFile, IcebergError> {
        let name = format!("metadata/{}-{suffix}.avro", new.snapshot_id);
        let body = self.manifest_bytes(new.metadata, new.spec, entries)?;
        let length = body.len() as i64;
        self.write(&name, body).await?;
        Ok(list_entry(
            format!("{}/{name}", self.uri),
            length,
            new,
            entries,
        ))
    }
}

/// The manifest list entry of a manifest the new snapshot wrote: its counts by status, and the
/// lowest data sequence number of its files (an `ADDED` one's is the new snapshot's).
fn list_entry(
    path: String,
    length: i64,
    new: &NewSnapshot<'_>,
    entries: &[ManifestEntry],
) -> ManifestFile {
    let count = |status: i32| {
        let of = entries.iter().filter(|e| e.status == status);
        (
            of.clone().count() as i32,
            of.map(|e| e.record_count).sum::<i64>(),
        )
    };
    let (added_files, added_rows) = count(ADDED);
    let (existing_files, existing_rows) = count(EXISTING);
    let min_sequence_number = entries
        .iter()
        .map(|e| e.sequence_number.unwrap_or(new.sequence_number))
        .min()
        .unwrap_or(new.sequence_number);
    ManifestFile {
        manifest_path: path,
        manifest_length: length,
        partition_spec_id: new.spec.spec_id,
        content: DATA,
        sequence_number: new.sequence_number,
        min_sequence_number,
        added_snapshot_id: new.snapshot_id,
        added_files_count: added_files,
        existing_files_count: existing_files,
        deleted_files_count: 0,
        added_rows_count: added_rows,
        existing_rows_count: existing_rows,
        deleted_rows_count: 0,
        partitions: (0..new.spec.fields.len())
            .map(|i| field_summary(entries, i))
            .collect(),
    }
}
