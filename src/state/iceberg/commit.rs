//! One append commit: a manifest of the new files, a manifest list of the previous snapshot's
//! manifests plus the new one, and the next metadata version, created put-if-absent.

use std::collections::BTreeMap;

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
        let spec = before
            .default_spec()
            .ok_or_else(|| invalid("no default partition spec".into()))?;
        let snapshot_id = new_snapshot_id(before);
        let sequence_number = before.last_sequence_number + 1;
        // Never before the version it follows: readers order snapshots by time.
        let now = chrono::Utc::now()
            .timestamp_millis()
            .max(before.last_updated_ms);
        let entries = files
            .iter()
            .map(|f| self.entry(f, &spec.fields, snapshot_id))
            .collect::<Result<Vec<_>, String>>()
            .map_err(invalid)?;

        let mut manifests = match before.current_snapshot() {
            Some(s) => self.manifests(&s.manifest_list).await?,
            None => Vec::new(),
        };
        if !entries.is_empty() {
            let name = format!("metadata/{snapshot_id}-m0.avro");
            let body = self.manifest_bytes(before, spec, &entries)?;
            let length = body.len() as i64;
            self.write(&name, body).await?;
            manifests.push(ManifestFile {
                manifest_path: format!("{}/{name}", self.uri),
                manifest_length: length,
                partition_spec_id: spec.spec_id,
                sequence_number,
                min_sequence_number: sequence_number,
                added_snapshot_id: snapshot_id,
                added_files_count: entries.len() as i32,
                existing_files_count: 0,
                deleted_files_count: 0,
                added_rows_count: entries.iter().map(|e| e.record_count).sum(),
                existing_rows_count: 0,
                deleted_rows_count: 0,
                partitions: (0..spec.fields.len())
                    .map(|i| field_summary(&entries, i))
                    .collect(),
            });
        }
        let list_name = format!("metadata/snap-{snapshot_id}.avro");
        let parent = before.current_snapshot_id;
        let list_meta = [
            ("snapshot-id", snapshot_id.to_string()),
            (
                "parent-snapshot-id",
                parent.map_or("null".into(), |p| p.to_string()),
            ),
            ("sequence-number", sequence_number.to_string()),
            ("format-version", FORMAT_VERSION.to_string()),
        ];
        let values = manifests.iter().map(manifest::list_value).collect();
        let list = manifest::container(&manifest::list_schema(), &list_meta, values)
            .map_err(|e| invalid(format!("encoding the manifest list: {e}")))?;
        self.write(&list_name, list).await?;

        let snapshot = Snapshot {
            snapshot_id,
            parent_snapshot_id: parent,
            sequence_number,
            timestamp_ms: now,
            manifest_list: format!("{}/{list_name}", self.uri),
            summary: summary(before.current_snapshot(), files, &entries, offsets),
            schema_id: Some(before.current_schema_id),
        };
        let mut after = before.clone();
        after.metadata_log.push(MetadataLogEntry {
            metadata_file: format!("{}/metadata/{}", self.uri, metadata_name(base.version)),
            timestamp_ms: before.last_updated_ms,
        });
        after.snapshot_log.push(SnapshotLogEntry {
            snapshot_id,
            timestamp_ms: now,
        });
        after.snapshots.push(snapshot);
        after.current_snapshot_id = Some(snapshot_id);
        after.refs.insert(
            "main".into(),
            SnapshotRef {
                snapshot_id,
                kind: "branch".into(),
            },
        );
        after.last_sequence_number = sequence_number;
        after.last_updated_ms = now;
        self.commit(base, after).await
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
            file_path: format!("{}/{}", self.uri, file.path.trim_start_matches('/')),
            partition,
            record_count: long(file.records)?,
            file_size_in_bytes: long(file.size)?,
            metrics: file.metrics.clone(),
        })
    }

    fn manifest_bytes(
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
    async fn write(&self, name: &str, body: Vec<u8>) -> Result<(), IcebergError> {
        self.location
            .put(&self.location.path(name), body.into())
            .await
            .map_err(self.store_err(name))
    }
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
