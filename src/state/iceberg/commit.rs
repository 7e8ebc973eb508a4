//! One append commit: a manifest of the new files (or one merged with earlier small ones), a
//! manifest list of the snapshot's manifests, and the next metadata version, created
//! put-if-absent; then the files it no longer references are deleted.

use std::collections::BTreeMap;

use super::merge::NewSnapshot;
use super::properties::Upkeep;
use super::*;

/// Totals a snapshot summary carries forward.
const TOTALS: [(&str, &str); 3] = [
    ("total-data-files", "added-data-files"),
    ("total-records", "added-records"),
    ("total-files-size", "added-files-size"),
];

impl IcebergTable {
    /// Adds `files` in one snapshot on `base` (the table as last read or committed), recording
    /// `offsets` (merged with those the table holds: each partition keeps its highest). Another
    /// writer having committed on `base` first is [`IcebergError::Conflict`]: nothing of this
    /// commit is in the table; read it again, drop what its offsets cover, and retry.
    ///
    /// The commit keeps the metadata small as the table's properties say ([`Upkeep`]): it may
    /// merge manifests, and it drops the oldest snapshots and previous versions beyond the
    /// bounds, then deletes the files only those referenced.
    pub async fn append(
        &self,
        base: &TableState,
        files: &[DataFile],
        offsets: &[Committed],
    ) -> Result<TableState, IcebergError> {
        let before = &base.metadata;
        let invalid = |reason: String| IcebergError::Invalid {
            table: self.location.display.clone(),
            reason,
        };
        let upkeep = Upkeep::of(&before.properties).map_err(invalid)?;
        let spec = before
            .default_spec()
            .ok_or_else(|| invalid("no default partition spec".into()))?;
        self.refuse_stale_base(base).await?;
        let new = NewSnapshot {
            metadata: before,
            spec,
            snapshot_id: new_snapshot_id(before),
            sequence_number: before.last_sequence_number + 1,
        };
        let entries = files
            .iter()
            .map(|f| self.entry(f, &spec.fields, new.snapshot_id))
            .collect::<Result<Vec<_>, String>>()
            .map_err(invalid)?;
        let summary = summary(before.current_snapshot(), files, &entries, offsets);
        let previous = match before.current_snapshot() {
            Some(s) => self.manifests(&s.manifest_list).await?,
            None => Vec::new(),
        };
        let manifests = self
            .next_manifests(&new, previous, entries, upkeep.merge)
            .await?;
        let manifest_list = self.write_list(&new, &manifests).await?;
        // The names of what this attempt wrote hold its own snapshot id: no one else refers
        // to them, and a lost race leaves them to no one.
        let mut written: Vec<String> = manifests
            .iter()
            .filter(|m| m.added_snapshot_id == new.snapshot_id)
            .map(|m| m.manifest_path.clone())
            .collect();
        written.push(manifest_list.clone());
        // Never before the version it follows: readers order snapshots by time.
        let now = chrono::Utc::now()
            .timestamp_millis()
            .max(before.last_updated_ms);
        let snapshot = Snapshot {
            snapshot_id: new.snapshot_id,
            parent_snapshot_id: before.current_snapshot_id,
            sequence_number: new.sequence_number,
            timestamp_ms: now,
            manifest_list,
            summary,
            schema_id: Some(before.current_schema_id),
        };
        let mut after = before.clone();
        self.log_previous_version(&mut after, base, upkeep.previous_versions_max);
        add_snapshot(&mut after, snapshot);
        expire::expire_snapshots(&mut after, upkeep.max_snapshots);
        let state = match self.commit(base, after).await {
            Err(e @ IcebergError::Conflict { .. }) => {
                self.delete_files(written, "a lost commit's manifests")
                    .await;
                return Err(e);
            }
            committed => committed?,
        };
        self.clean_up(base, &state).await;
        Ok(state)
    }

    /// Deletes what `base` referenced and `after`, now committed, does not: expired
    /// snapshots' manifest lists and manifests, and dropped metadata versions. Only after a
    /// commit that succeeded: after a lost race the table is another writer's, as it left it.
    /// With a catalog, which deletes its own metadata files, only the former would be ours.
    pub(super) async fn clean_up(&self, base: &TableState, after: &TableState) {
        self.delete_expired_snapshot_files(base, after).await;
        if self.catalog.is_none() {
            self.delete_old_metadata_files(base, after).await;
        }
    }

    /// Writes the new snapshot's manifest list (`metadata/snap-{snapshot_id}.avro`) of
    /// `manifests`, and returns its URI.
    async fn write_list(
        &self,
        new: &NewSnapshot<'_>,
        manifests: &[ManifestFile],
    ) -> Result<String, IcebergError> {
        let name = format!("metadata/snap-{}.avro", new.snapshot_id);
        let parent = new.metadata.current_snapshot_id;
        let list_meta = [
            ("snapshot-id", new.snapshot_id.to_string()),
            (
                "parent-snapshot-id",
                parent.map_or("null".into(), |p| p.to_string()),
            ),
            ("sequence-number", new.sequence_number.to_string()),
            ("format-version", FORMAT_VERSION.to_string()),
        ];
        let values = manifests.iter().map(manifest::list_value).collect();
        let list =
            manifest::container(&manifest::list_schema(), &list_meta, values).map_err(|e| {
                IcebergError::Invalid {
                    table: self.location.display.clone(),
                    reason: format!("encoding the manifest list: {e}"),
                }
            })?;
        self.write(&name, list).await?;
        Ok(format!("{}/{name}", self.uri))
    }

    fn entry(
        &self,
        file: &DataFile,
        fields: &[PartitionField],
        snapshot_id: i64,
    ) -> Result<ManifestEntry, String> {
        let partition = fields
            .iter()
            .map(|f| {
                let value = file.partition_values.iter().find(|(k, _)| *k == f.name);
                value.map(|(_, v)| Some(v.clone())).ok_or_else(|| {
                    format!("{}: no value for partition column {}", file.path, f.name)
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let long =
            |n: u64| i64::try_from(n).map_err(|_| format!("{}: {n} is too large", file.path));
        Ok(ManifestEntry {
            status: ADDED,
            snapshot_id: Some(snapshot_id),
            // Inherited from the manifest list entry: the commit's sequence number.
            sequence_number: None,
            file_sequence_number: None,
            file_path: format!("{}/{}", self.uri, file.path.trim_start_matches('/')),
            partition,
            record_count: long(file.records)?,
            file_size_in_bytes: long(file.size)?,
            metrics: file.metrics.clone(),
        })
    }

    pub(super) fn manifest_bytes(
        &self,
        metadata: &TableMetadata,
        spec: &PartitionSpec,
        entries: &[ManifestEntry],
    ) -> Result<Vec<u8>, IcebergError> {
        let schema = metadata.current_schema().cloned().unwrap_or_default();
        let keys = [
            ("schema", schema.to_string()),
            ("schema-id", metadata.current_schema_id.to_string()),
            ("partition-spec", json!(spec.fields).to_string()),
            ("partition-spec-id", spec.spec_id.to_string()),
            ("format-version", FORMAT_VERSION.to_string()),
            ("content", "data".to_string()),
        ];
        let values = entries
            .iter()
            .map(|e| manifest::entry_value(e, &spec.fields))
            .collect();
        manifest::container(&manifest::entry_schema(&spec.fields), &keys, values).map_err(|e| {
            IcebergError::Invalid {
                table: self.location.display.clone(),
                reason: format!("encoding a manifest: {e}"),
            }
        })
    }

    /// Writes a manifest or manifest list: its name holds the new snapshot's random id, so no
    /// other commit writes it.
    pub(super) async fn write(&self, name: &str, body: Vec<u8>) -> Result<(), IcebergError> {
        self.location
            .put(&self.location.path(name), body.into())
            .await
            .map_err(self.store_err(name))
    }
}

/// Makes `snapshot` the current snapshot of `metadata` (and of its `main` branch).
fn add_snapshot(metadata: &mut TableMetadata, snapshot: Snapshot) {
    let id = snapshot.snapshot_id;
    metadata.snapshot_log.push(SnapshotLogEntry {
        snapshot_id: id,
        timestamp_ms: snapshot.timestamp_ms,
    });
    metadata.last_sequence_number = snapshot.sequence_number;
    metadata.last_updated_ms = snapshot.timestamp_ms;
    metadata.snapshots.push(snapshot);
    metadata.current_snapshot_id = Some(id);
    metadata.refs.insert(
        "main".into(),
        SnapshotRef {
            snapshot_id: id,
            kind: "branch".into(),
        },
    );
}

/// A snapshot summary: what was added, the totals, and every partition's last committed offset
/// (those of `parent`, raised by `offsets`), so the current snapshot alone says them all.
fn summary(
    parent: Option<&Snapshot>,
    files: &[DataFile],
    entries: &[ManifestEntry],
    offsets: &[Committed],
) -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    s.insert("operation".to_string(), "append".to_string());
    let partitions: std::collections::BTreeSet<&Vec<Option<String>>> =
        entries.iter().map(|e| &e.partition).collect();
    let added = [
        ("added-data-files", files.len() as u64),
        ("added-records", files.iter().map(|f| f.records).sum()),
        ("added-files-size", files.iter().map(|f| f.size).sum()),
        ("changed-partition-count", partitions.len() as u64),
    ];
    for (k, v) in added {
        s.insert(k.to_string(), v.to_string());
    }
    let previous = |key: &str| -> u64 {
        parent
            .and_then(|p| p.summary.get(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    for (total, add) in TOTALS {
        let value = previous(total) + s[add].parse::<u64>().unwrap_or(0);
        s.insert(total.to_string(), value.to_string());
    }
    for total in [
        "total-delete-files",
        "total-position-deletes",
        "total-equality-deletes",
    ] {
        s.insert(total.to_string(), "0".to_string());
    }
    let mut committed = parent
        .map(|p| summary_offsets(&p.summary))
        .unwrap_or_default();
    for c in offsets {
        let at = committed
            .entry((c.topic.clone(), c.partition))
            .or_insert(c.last_offset);
        *at = (*at).max(c.last_offset);
    }
    for ((topic, partition), offset) in committed {
        s.insert(
            format!("{OFFSETS_PREFIX}{topic}.{partition}"),
            offset.to_string(),
        );
    }
    s.insert(
        "hubcap.summary-version".to_string(),
        SUMMARY_VERSION.to_string(),
    );
    s
}
