//! What a Delta table holds, read without writing anything: for `hubcap audit` and
//! `hubcap inspect`. The files and the set-transaction versions come from delta_kernel's log
//! replay (what readers see); the add actions of each JSON commit are also read one by one, to
//! find a path added by two commits, which a reader's replay would hide.

use std::collections::{BTreeMap, HashMap};

use delta_kernel::Snapshot;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;

use super::{blocking, engine, engine_store, TableError};
use crate::store::{percent_decode, Location};

/// JSON commits fetched at once.
const COMMIT_READS: usize = 16;

/// A table's contents at its latest version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableContents {
    pub version: u64,
    /// Its data files, by path relative to the table (decoded).
    pub files: BTreeMap<String, LoggedFile>,
    /// The version of each app id asked about (`None`: the table has none).
    pub versions: BTreeMap<String, Option<i64>>,
    /// Paths that two or more JSON commits add (without a remove between them), with how many.
    pub added_twice: BTreeMap<String, u32>,
}

/// A data file as the log's add action describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedFile {
    pub size: u64,
    /// `numRecords` from the add action's statistics, when it has them.
    pub records: Option<u64>,
    pub partition_values: BTreeMap<String, String>,
}

/// Reads the table at `location`: its files, the versions of `apps`, and the paths added twice.
/// Must run on a multi-thread runtime.
pub async fn read_table(location: &Location, apps: &[String]) -> Result<TableContents, TableError> {
    let kernel = |source| TableError::Kernel {
        url: location.display.clone(),
        source,
    };
    let (store, url) = engine_store(location).map_err(|reason| TableError::Invalid {
        url: location.display.clone(),
        reason,
    })?;
    let engine = engine(store);
    let apps = apps.to_vec();
    let mut contents = blocking(move || {
        let snapshot = Snapshot::builder_for(url.as_str()).build(engine.as_ref())?;
        let mut contents = TableContents {
            version: snapshot.version(),
            ..Default::default()
        };
        for app in apps {
            let version = snapshot.get_app_id_version(&app, engine.as_ref())?;
            contents.versions.insert(app, version);
        }
        let scan = snapshot.scan_builder().build()?;
        for metadata in scan.scan_metadata(engine.as_ref())? {
            contents.files = metadata?.visit_scan_files(contents.files, |files, f| {
                let file = LoggedFile {
                    size: u64::try_from(f.size).unwrap_or_default(),
                    records: f.stats.map(|s| s.num_records),
                    partition_values: f.partition_values.into_iter().collect(),
                };
                files.insert(percent_decode(&f.path), file);
            })?;
        }
        Ok(contents)
    })
    .await
    .map_err(kernel)?;
    contents.added_twice = adds_per_path(location)
        .await?
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    Ok(contents)
}

/// How many times the JSON commits in the log add each path, counting from its last remove.
async fn adds_per_path(location: &Location) -> Result<HashMap<String, u32>, TableError> {
    let failed = |reason: String| TableError::Invalid {
        url: location.display.clone(),
        reason,
    };
    let log = location.path("_delta_log");
    let mut commits: Vec<(u64, object_store::path::Path)> = location
        .store
        .list(Some(&log))
        .try_filter_map(|meta| async move {
            let version = meta
                .location
                .filename()
                .and_then(|n| n.strip_suffix(".json"))
                .filter(|v| v.len() == 20)
                .and_then(|v| v.parse::<u64>().ok());
            Ok(version.map(|v| (v, meta.location)))
        })
        .try_collect()
        .await
        .map_err(|e| failed(format!("cannot list its log: {e}")))?;
    commits.sort();
    let store = &location.store;
    let mut bodies = futures::stream::iter(commits)
        .map(|(version, path)| async move {
            let body = store.get(&path).await?.bytes().await?;
            Ok::<_, object_store::Error>((version, body))
        })
        .buffered(COMMIT_READS);
    let mut adds: HashMap<String, u32> = HashMap::new();
    while let Some(read) = bodies.next().await {
        let (version, body) = read.map_err(|e| failed(format!("cannot read its log: {e}")))?;
        for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let action: serde_json::Value = serde_json::from_slice(line)
                .map_err(|e| failed(format!("log entry {version}: {e}")))?;
            let path = |kind: &str| action.get(kind)?.get("path")?.as_str().map(percent_decode);
            if let Some(p) = path("add") {
                *adds.entry(p).or_default() += 1;
            } else if let Some(p) = path("remove") {
                adds.remove(&p);
            }
        }
    }
    Ok(adds)
}
