//! The Delta tables of an archive (`--table delta`), checked against the manifests and the
//! checkpoints: the table is what readers see, so it must hold exactly the archived files.
//!
//! A table is a folder under the output with a `_delta_log/`; it is audited when an audited
//! partition's manifest lists a file inside it. Failures:
//! - a file the log adds that no manifest lists (hubcap did not archive it), or whose size or
//!   record count (`numRecords`) disagrees with its manifest line;
//! - a path two commits add;
//! - a file archived inside the table below its partition's checkpoint that the table does not
//!   hold: readers of the table miss its records;
//! - a partition whose set-transaction version (app id `hubcap/{group}/{topic}/{partition}`) is
//!   not the last offset of its last file below the checkpoint (the checkpoint minus one on a
//!   plain topic). A version at the last offset of the pending file is no failure: its commit
//!   was made, the checkpoint not yet moved, and the next run rolls it forward;
//! - a table the kernel cannot read.
//!
//! An Iceberg table (`--table iceberg`, a folder with `metadata/vN.metadata.json`) is held to
//! the same rules: the data files of its current snapshot (a path in two manifest entries is
//! added twice), and each partition's committed offset from the snapshot summary
//! (`hubcap.offsets.<topic>.<partition>`) in place of the set-transaction version.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::state::iceberg::catalog::{CatalogConfig, RestCatalog};
use crate::state::iceberg::IcebergTable;
use crate::state::manifest::ManifestEntry;
use crate::state::table::{app_id, read_table, LoggedFile, TableContents};
use crate::store::Location;

use super::{BadFile, Key, PartitionAudit, TableAudit, TableTransaction};

/// A file an audited group's manifest lists, by its name relative to the output.
pub(crate) type Archived = BTreeMap<String, (Key, ManifestEntry)>;

/// A table's format.
pub(crate) const DELTA: &str = "delta";
pub(crate) const ICEBERG: &str = "iceberg";

/// Audits each table under `output` that holds files of the audited partitions: the Delta
/// tables at `delta`, the Iceberg tables at `iceberg` (a folder may be both).
pub(super) async fn audit_tables(
    output: &Location,
    delta: &BTreeSet<String>,
    iceberg: &BTreeSet<String>,
    archived: &Archived,
    partitions: &[PartitionAudit],
    catalog: Option<&CatalogConfig>,
) -> Vec<TableAudit> {
    let mut audits = Vec::new();
    // Connected once, for every Iceberg table; a catalog that fails fails each table.
    let catalog = match catalog {
        Some(c) if !iceberg.is_empty() => Some(
            RestCatalog::connect(c.clone())
                .await
                .map(Arc::new)
                .map_err(|e| e.to_string()),
        ),
        _ => None,
    };
    let roots = delta
        .iter()
        .map(|r| (r, DELTA))
        .chain(iceberg.iter().map(|r| (r, ICEBERG)));
    for (root, format) in roots {
        let inside = format!("{root}/");
        let keys: BTreeSet<&Key> = archived
            .iter()
            .filter(|(name, _)| name.starts_with(&inside))
            .map(|(_, (key, _))| key)
            .collect();
        let tied: Vec<&PartitionAudit> = partitions
            .iter()
            .filter(|p| keys.contains(&(p.group.clone(), p.topic.clone(), p.partition)))
            .filter(|p| p.group.is_some())
            .collect();
        if tied.is_empty() {
            continue;
        }
        let contents = if format == ICEBERG {
            // The catalog's table is named as the topic is.
            let location = output.child(root);
            match &catalog {
                Some(Err(e)) => Err(e.clone()),
                Some(Ok(c)) => {
                    let named = (c.clone(), tied[0].topic.as_str());
                    read_iceberg(&location, root, &tied, Some(named)).await
                }
                None => read_iceberg(&location, root, &tied, None).await,
            }
        } else {
            let apps: Vec<String> = tied.iter().map(|p| app_of(p)).collect();
            let contents = read_table(&output.child(root), &apps).await;
            contents.map_err(|e| e.to_string())
        };
        let mut audit = judge(root, contents, archived, &tied);
        audit.format = format;
        audits.push(audit);
    }
    audits
}

/// What an Iceberg table's current snapshot holds, as [`TableContents`]: its data files by
/// path relative to the table (`root`, relative to the output), a path two manifest entries
/// name as added twice, and each of `partitions`' committed offset from the summary, under
/// the partition's app id.
pub(super) async fn read_iceberg(
    location: &Location,
    root: &str,
    partitions: &[&PartitionAudit],
    catalog: Option<(Arc<RestCatalog>, &str)>,
) -> Result<TableContents, String> {
    let table = match &catalog {
        Some((c, name)) => IcebergTable::in_catalog(location.clone(), c.clone(), name),
        None => IcebergTable::new(location.clone()),
    }
    .map_err(|e| e.to_string())?;
    let missing = match catalog {
        Some(_) => "the catalog has no such table",
        None => "it has no path-table metadata (metadata/vN.metadata.json); a table kept by a REST catalog is audited with --iceberg-catalog URL and --iceberg-namespace, as run was given them",
    };
    let state = table
        .load()
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| missing.to_string())?;
    let entries = table.files(&state).await.map_err(|e| e.to_string())?;
    let columns: Vec<String> = state
        .metadata
        .default_spec()
        .map(|s| s.fields.iter().map(|f| f.name.clone()).collect())
        .unwrap_or_default();
    let prefix = format!("{}/", table.uri());
    let elsewhere = format!("/{root}/");
    let mut contents = TableContents {
        version: state.version,
        ..Default::default()
    };
    for e in entries {
        // The URI the writer gave it; the table seen through another path (a symlink, a
        // mount) is matched by its folder.
        let inside = match e.file_path.strip_prefix(&prefix) {
            Some(inside) => inside,
            None => match e.file_path.rfind(&elsewhere) {
                Some(i) => &e.file_path[i + elsewhere.len()..],
                None => e.file_path.as_str(),
            },
        }
        .to_string();
        let values = e.partition.iter().map(|v| v.clone().unwrap_or_default());
        let file = LoggedFile {
            size: u64::try_from(e.file_size_in_bytes).unwrap_or_default(),
            records: u64::try_from(e.record_count).ok(),
            partition_values: columns.iter().cloned().zip(values).collect(),
        };
        if contents.files.insert(inside.clone(), file).is_some() {
            *contents.added_twice.entry(inside).or_insert(1) += 1;
        }
    }
    let offsets = state.offsets();
    for p in partitions {
        let offset = offsets.get(&(p.topic.clone(), p.partition)).copied();
        contents.versions.insert(app_of(p), offset);
    }
    Ok(contents)
}

fn app_of(p: &PartitionAudit) -> String {
    app_id(
        p.group.as_deref().unwrap_or_default(),
        &p.topic,
        p.partition,
    )
}

/// The findings for the table at `root` (relative to the output), given what its log holds,
/// the archived files, and the audited partitions whose files are inside it.
pub(super) fn judge(
    root: &str,
    contents: Result<TableContents, String>,
    archived: &Archived,
    partitions: &[&PartitionAudit],
) -> TableAudit {
    let mut audit = TableAudit {
        path: root.to_string(),
        ..Default::default()
    };
    let contents = match contents {
        Ok(c) => c,
        Err(e) => {
            audit.error = Some(e);
            return audit;
        }
    };
    audit.version = Some(contents.version);
    audit.files = contents.files.len() as u64;
    audit.added_twice = contents
        .added_twice
        .keys()
        .map(|inside| format!("{root}/{inside}"))
        .collect();
    for (inside, logged) in &contents.files {
        let name = format!("{root}/{inside}");
        audit.events += logged.records.unwrap_or_default();
        let Some((_, line)) = archived.get(&name) else {
            audit.not_archived.push(name);
            continue;
        };
        let mut reasons = Vec::new();
        if logged.size != line.size_in_bytes {
            reasons.push(format!(
                "the log says {} bytes, its manifest line {}",
                logged.size, line.size_in_bytes
            ));
        }
        if logged.records.is_some_and(|n| n != line.event_count) {
            reasons.push(format!(
                "the log says {} records, its manifest line {}",
                logged.records.unwrap_or_default(),
                line.event_count
            ));
        }
        if !reasons.is_empty() {
            audit.disagree.push(BadFile {
                path: name,
                first_offset: Some(line.first_sequence_number),
                reason: reasons.join("; "),
                below_checkpoint: true,
            });
        }
    }
    let inside = format!("{root}/");
    // A partition without a readable checkpoint promises nothing (and fails on its own).
    for p in partitions.iter().filter(|p| p.checkpoint.is_some()) {
        let key: Key = (p.group.clone(), p.topic.clone(), p.partition);
        let mine = archived
            .iter()
            .filter(|(name, (k, _))| *k == key && name.starts_with(&inside));
        let mut expected = None;
        for (name, (_, line)) in mine {
            let committed = p.checkpoint.is_some_and(|c| line.first_sequence_number < c);
            // An empty file (`--empty-files`) holds no offsets, and no table holds it.
            if !committed || line.event_count == 0 {
                continue;
            }
            expected = expected.max(Some(line.last_sequence_number));
            if !contents.files.contains_key(&name[inside.len()..]) {
                audit.not_in_table.push(name.clone());
            }
        }
        let version = contents.versions.get(&app_of(p)).copied().flatten();
        let pending = p.pending.as_ref().map(|f| f.last_offset);
        let ok = version == expected || (version.is_some() && version == pending);
        audit.transactions.push(TableTransaction {
            group: p.group.clone().unwrap_or_default(),
            topic: p.topic.clone(),
            partition: p.partition,
            version,
            expected,
            checkpoint: p.checkpoint,
            pending,
            ok,
        });
    }
    audit
}

#[cfg(test)]
mod tests;
