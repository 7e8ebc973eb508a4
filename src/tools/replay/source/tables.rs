//! The Delta tables and Iceberg path tables under an archive's root, and the files each holds:
//! what its readers read, not every file in its folders (a file uploaded but not yet committed
//! by a run that crashed is the next run's to commit, or not).

use std::collections::{BTreeSet, HashMap};

use object_store::path::Path;
use object_store::ObjectMeta;

use super::{Candidate, Listed, SourceError};
use crate::state::iceberg::IcebergTable;
use crate::state::table::{read_table, TableError};
use crate::store::Location;

/// The tables under the root, by their folder relative to it (`""`: the root itself).
#[derive(Debug, Default)]
pub(super) struct Tables {
    delta: BTreeSet<String>,
    iceberg: BTreeSet<String>,
}

impl Tables {
    /// The folders holding a `_delta_log/`, and those holding `metadata/vN.metadata.json`,
    /// outside the folders readers skip.
    pub(super) fn find(listed: &[Listed]) -> Tables {
        let mut tables = Tables::default();
        for object in listed {
            let parts = object.parts.as_slice();
            if let Some(log) = parts.iter().position(|p| p == "_delta_log") {
                if visible(&parts[..log]) {
                    tables.delta.insert(parts[..log].join("/"));
                }
            }
            if let [table @ .., dir, file] = parts {
                if dir == "metadata" && file.ends_with(".metadata.json") && visible(table) {
                    tables.iceberg.insert(table.join("/"));
                }
            }
        }
        tables
    }

    /// Whether an object lies in a table's folder, where the table says which files count.
    pub(super) fn holds(&self, parts: &[String]) -> bool {
        self.delta
            .iter()
            .chain(&self.iceberg)
            .any(|table| table.is_empty() || starts_with(parts, table))
    }

    /// The files the tables hold, each once. A folder that is both a Delta and an Iceberg
    /// table (`--table delta,iceberg`) holds one copy of the files for both; a file only one of
    /// them holds yet (a run stopped between the two commits) is durable and archived, so it
    /// counts.
    pub(super) async fn files(
        &self,
        root: &Location,
        listed: &[Listed],
    ) -> Result<Vec<Candidate>, SourceError> {
        let mut found = Found {
            root,
            by_path: listed.iter().map(|l| (&l.meta.location, &l.meta)).collect(),
            seen: BTreeSet::new(),
            files: Vec::new(),
        };
        for folder in &self.delta {
            let table = location(root, folder);
            let contents = read_table(&table, &[]).await?;
            tracing::info!(table = %table.display, version = contents.version, files = contents.files.len(), "replaying the Delta table's files");
            for inside in contents.files.keys() {
                found.add(&table, folder, inside)?;
            }
        }
        for folder in &self.iceberg {
            let location = location(root, folder);
            let table = IcebergTable::new(location.clone()).map_err(TableError::from)?;
            let state = table.load().await.map_err(TableError::from)?;
            let entries = match &state {
                Some(state) => table.files(state).await.map_err(TableError::from)?,
                None => Vec::new(),
            };
            tracing::info!(table = %location.display, version = state.as_ref().map_or(0, |s| s.version), files = entries.len(), "replaying the Iceberg table's current snapshot");
            let prefix = format!("{}/", table.uri());
            for entry in &entries {
                let inside = entry.file_path.strip_prefix(&prefix);
                found.add(&location, folder, inside.unwrap_or(&entry.file_path))?;
            }
        }
        Ok(found.files)
    }
}

/// The tables' files found so far.
struct Found<'a> {
    root: &'a Location,
    by_path: HashMap<&'a Path, &'a ObjectMeta>,
    seen: BTreeSet<Path>,
    files: Vec<Candidate>,
}

impl Found<'_> {
    /// Adds the file `inside` the table at `folder` (relative to the root), unless another
    /// table holds it too.
    fn add(&mut self, table: &Location, folder: &str, inside: &str) -> Result<(), SourceError> {
        let path = table.path(inside);
        if !self.seen.insert(path.clone()) {
            return Ok(());
        }
        let meta = self
            .by_path
            .get(&path)
            .ok_or_else(|| SourceError::TableFileMissing {
                table: table.display.clone(),
                file: inside.to_string(),
            })?;
        let root_folder = folder.is_empty().then(|| root_folder(self.root)).flatten();
        self.files.push(Candidate::new(
            (*meta).clone(),
            self.root,
            root_folder.as_deref(),
        ));
        Ok(())
    }
}

fn location(root: &Location, folder: &str) -> Location {
    if folder.is_empty() {
        root.clone()
    } else {
        root.child(folder)
    }
}

/// The name of the root's own folder, which names the topic of a table given as the root.
fn root_folder(root: &Location) -> Option<String> {
    let last = match root.prefix.parts().next_back() {
        Some(part) => part.as_ref().to_string(),
        // A local directory's store starts at the directory.
        None => root
            .display
            .trim_end_matches('/')
            .rsplit('/')
            .next()?
            .to_string(),
    };
    (!last.is_empty()).then_some(last)
}

/// Whether no folder starts with `_` or `.`, which readers skip.
fn visible(folders: &[String]) -> bool {
    !folders.iter().any(|f| f.starts_with(['_', '.']))
}

/// Whether `parts` lie under the folder `table` (`/`-separated, not empty).
fn starts_with(parts: &[String], table: &str) -> bool {
    let segments: Vec<&str> = table.split('/').collect();
    parts.len() > segments.len() && parts.iter().zip(&segments).all(|(p, s)| p == s)
}
