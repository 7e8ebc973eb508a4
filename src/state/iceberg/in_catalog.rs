//! A table kept by a REST catalog: creating it (or moving a path table hubcap kept before into
//! the catalog), reading what the catalog returns, and a commit as the catalog takes it.

use std::sync::Arc;

use serde_json::{json, Value};

use super::catalog::{Loaded, RestCatalog};
use super::*;

/// Attempts at creating the namespace or the table when the catalog fails.
const STARTS: u64 = 5;

impl IcebergTable {
    /// Creates the table in the catalog as `metadata` describes it. A path table hubcap kept at
    /// the location before (run without `--iceberg-catalog`) is registered instead, with every
    /// file it holds, after its own metadata is marked as moved so that no run without the
    /// catalog commits to it again.
    pub(super) async fn create_in_catalog(
        &self,
        catalog: &Arc<RestCatalog>,
        name: &str,
        metadata: TableMetadata,
    ) -> Result<TableState, IcebergError> {
        // Instances starting together race to create the namespace and the table: a lost race
        // may fail before the winner's is visible, so a transient failure is tried again.
        let mut attempt = 0;
        while let Err(e) = catalog.ensure_namespace().await {
            attempt += 1;
            if !e.is_transient() || attempt == STARTS {
                return Err(e);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
        }
        let by_path = self.by_path();
        let Some(path_table) = by_path.load_path().await? else {
            let mut attempt = 0;
            let loaded = loop {
                match catalog.create_table(name, &metadata).await {
                    Err(e) if e.is_transient() && attempt + 1 < STARTS => attempt += 1,
                    done => break done?,
                }
                tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
            };
            let state = self.catalog_state(loaded)?;
            self.check_ids(&metadata, &state.metadata)?;
            tracing::info!(table = %self.name(), location = %self.uri, "created the Iceberg table in the catalog");
            return Ok(state);
        };
        let moved = format!(
            "{} {}",
            catalog.config().shown_uri(),
            catalog.config().qualified(name)
        );
        let marked = if path_table.metadata.properties.contains_key(MOVED_TO) {
            path_table
        } else {
            let mut after = path_table.metadata.clone();
            after.properties.insert(MOVED_TO.to_string(), moved);
            let marked = TableState {
                version: path_table.version + 1,
                metadata: after,
            };
            by_path.put_version(&marked).await.map_err(|e| match e {
                IcebergError::Conflict { .. } => IcebergError::Commit {
                    table: self.location.display.clone(),
                    reason: "a run without --iceberg-catalog committed to the path table while it moved into the catalog; run again".into(),
                },
                e => e,
            })?;
            marked
        };
        let location = format!("{}/metadata/{}", self.uri, metadata_name(marked.version));
        let loaded = match catalog.register_table(name, &location).await {
            Ok(loaded) => loaded,
            // Another instance registered it meanwhile.
            Err(IcebergError::Catalog { .. }) if self.exists(catalog, name).await => {
                return self.load().await?.ok_or_else(|| {
                    self.unreadable(&location, "registered, yet the catalog cannot load it")
                })
            }
            Err(e) => return Err(e),
        };
        tracing::info!(table = %self.name(), from = %location, "moved the path table into the Iceberg catalog");
        self.catalog_state(loaded)
    }

    async fn exists(&self, catalog: &RestCatalog, name: &str) -> bool {
        matches!(catalog.load_table(name).await, Ok(Some(_)))
    }

    /// The catalog's table as a [`TableState`], refused when it is not the table at this
    /// location: another table of that name would mix two archives.
    pub(super) fn catalog_state(&self, loaded: Loaded) -> Result<TableState, IcebergError> {
        let metadata = loaded.metadata;
        if file_uri(&metadata.location) != file_uri(&self.uri) {
            return Err(IcebergError::Invalid {
                table: self.name(),
                reason: format!(
                    "the catalog's table is at {}, hubcap's at {}: give --iceberg-namespace a namespace of its own, or drop that table",
                    metadata.location, self.uri
                ),
            });
        }
        if metadata.format_version != FORMAT_VERSION {
            return Err(self.unreadable(
                &loaded.metadata_location,
                format!(
                    "format version {}, hubcap writes {FORMAT_VERSION}",
                    metadata.format_version
                ),
            ));
        }
        Ok(TableState {
            version: u64::try_from(metadata.last_sequence_number).unwrap_or_default(),
            metadata,
        })
    }

    /// The catalog may assign a new table's column ids afresh: they must be those of the name
    /// mapping hubcap gave it, or readers would take one column for another.
    fn check_ids(&self, asked: &TableMetadata, got: &TableMetadata) -> Result<(), IcebergError> {
        let fields = |m: &TableMetadata| m.current_schema().map(|s| s["fields"].clone());
        if fields(asked) == fields(got) {
            return Ok(());
        }
        Err(IcebergError::Invalid {
            table: self.name(),
            reason: "the catalog gave the new table other column ids than hubcap's; drop the table in the catalog and report this catalog to hubcap's maintainers".into(),
        })
    }
}

/// A commit as the REST catalog takes it: the requirements (the same table, the `main` branch
/// where `base` left it) and the updates that turn `base` into `after` (snapshots added and
/// removed, the branch moved, properties changed). The catalog keeps the logs itself.
pub(super) fn changes(base: &TableMetadata, after: &TableMetadata) -> (Vec<Value>, Vec<Value>) {
    let requirements = vec![
        json!({"type": "assert-table-uuid", "uuid": base.table_uuid}),
        json!({"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": base.current_snapshot_id}),
    ];
    let had = |id: i64| base.snapshots.iter().any(|s| s.snapshot_id == id);
    let kept = |id: i64| after.snapshots.iter().any(|s| s.snapshot_id == id);
    let mut updates: Vec<Value> = after
        .snapshots
        .iter()
        .filter(|s| !had(s.snapshot_id))
        .map(|s| json!({"action": "add-snapshot", "snapshot": s}))
        .collect();
    if let Some(id) = after.current_snapshot_id {
        if base.current_snapshot_id != Some(id) {
            updates.push(json!({"action": "set-snapshot-ref", "ref-name": "main", "type": "branch", "snapshot-id": id}));
        }
    }
    let removed: Vec<i64> = base
        .snapshots
        .iter()
        .map(|s| s.snapshot_id)
        .filter(|id| !kept(*id))
        .collect();
    if !removed.is_empty() {
        updates.push(json!({"action": "remove-snapshots", "snapshot-ids": removed}));
    }
    let set: BTreeMap<&String, &String> = after
        .properties
        .iter()
        .filter(|(k, v)| base.properties.get(*k) != Some(*v))
        .collect();
    if !set.is_empty() {
        updates.push(json!({"action": "set-properties", "updates": set}));
    }
    let gone: Vec<&String> = base
        .properties
        .keys()
        .filter(|k| !after.properties.contains_key(*k))
        .collect();
    if !gone.is_empty() {
        updates.push(json!({"action": "remove-properties", "removals": gone}));
    }
    (requirements, updates)
}

/// A `file:` URI in one form (`file:///x`): catalogs backed by Hadoop write `file:/x`.
pub(super) fn file_uri(uri: &str) -> String {
    let uri = uri.trim_end_matches('/');
    match uri.strip_prefix("file:") {
        Some(rest) if !rest.starts_with("//") => format!("file://{rest}"),
        _ => uri.to_string(),
    }
}
