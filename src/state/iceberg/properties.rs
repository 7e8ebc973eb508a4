//! The table properties that keep a table's metadata small, read at each commit: manifest
//! merging (Java Iceberg's names and defaults), how many snapshots the metadata keeps (hubcap's
//! own), and how many previous metadata versions it lists and whether those it drops are
//! deleted (Java's names; hubcap sets them on create, see [`on_create`]).

use std::collections::BTreeMap;

use super::*;

pub const MERGE_ENABLED: &str = "commit.manifest-merge.enabled";
pub const MIN_COUNT_TO_MERGE: &str = "commit.manifest.min-count-to-merge";
pub const TARGET_SIZE_BYTES: &str = "commit.manifest.target-size-bytes";
pub const MAX_SNAPSHOTS: &str = "hubcap.snapshots.max";
pub const PREVIOUS_VERSIONS_MAX: &str = "write.metadata.previous-versions-max";
pub const DELETE_AFTER_COMMIT: &str = "write.metadata.delete-after-commit.enabled";

const DEFAULT_MIN_COUNT_TO_MERGE: usize = 100;
const DEFAULT_TARGET_SIZE_BYTES: u64 = 8 << 20;
const DEFAULT_MAX_SNAPSHOTS: usize = 100;
const DEFAULT_PREVIOUS_VERSIONS_MAX: usize = 100;

/// What a commit does to keep the metadata small, from the table's properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upkeep {
    /// `None`: merging is off; each commit adds a manifest to the list.
    pub merge: Option<Merge>,
    /// Snapshots the metadata keeps, the new one included (at least 1).
    pub max_snapshots: usize,
    /// Previous versions the metadata log lists (at least 1, as Java has it).
    pub previous_versions_max: usize,
    /// Whether a commit deletes the metadata files it drops from the log. Java's default is
    /// false; hubcap's tables say true ([`on_create`]).
    pub delete_old_metadata: bool,
}

/// When and what to merge: Java's `ManifestMergeManager` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merge {
    /// Merge once the default spec has this many manifests (the new one counted).
    pub min_count: usize,
    /// Manifests of this size or larger are kept as they are.
    pub target_size: u64,
}

impl Upkeep {
    /// The upkeep `properties` ask for, defaults where a property is absent. A value that does
    /// not parse is an error naming the property: guessing could delete what the user keeps.
    pub fn of(properties: &BTreeMap<String, String>) -> Result<Upkeep, String> {
        let merge = parse(properties, MERGE_ENABLED, true)?.then_some(Merge {
            min_count: parse(properties, MIN_COUNT_TO_MERGE, DEFAULT_MIN_COUNT_TO_MERGE)?,
            target_size: parse(properties, TARGET_SIZE_BYTES, DEFAULT_TARGET_SIZE_BYTES)?,
        });
        Ok(Upkeep {
            merge,
            max_snapshots: parse(properties, MAX_SNAPSHOTS, DEFAULT_MAX_SNAPSHOTS)?.max(1),
            previous_versions_max: parse(
                properties,
                PREVIOUS_VERSIONS_MAX,
                DEFAULT_PREVIOUS_VERSIONS_MAX,
            )?
            .max(1),
            delete_old_metadata: parse(properties, DELETE_AFTER_COMMIT, false)?,
        })
    }
}

/// `key`'s value, `default` when absent. Booleans are `true`/`false` in any case, as Java
/// reads them (but anything else is an error here, not false).
fn parse<T: std::str::FromStr + std::fmt::Display>(
    properties: &BTreeMap<String, String>,
    key: &str,
    default: T,
) -> Result<T, String> {
    let Some(value) = properties.get(key) else {
        return Ok(default);
    };
    value.trim().to_ascii_lowercase().parse().map_err(|_| {
        format!(
            "table property {key} is {value:?}, which hubcap cannot read: set it to a value like {default} (the default) or remove it"
        )
    })
}

/// The upkeep properties `IcebergTable::create` writes: hubcap's defaults, shown in the
/// table's metadata so users see them and know what to change. Old metadata files are deleted,
/// unlike Java's default: hubcap commits often, and they are never read again.
pub fn on_create() -> [(String, String); 3] {
    [
        (MAX_SNAPSHOTS, DEFAULT_MAX_SNAPSHOTS.to_string()),
        (
            PREVIOUS_VERSIONS_MAX,
            DEFAULT_PREVIOUS_VERSIONS_MAX.to_string(),
        ),
        (DELETE_AFTER_COMMIT, "true".to_string()),
    ]
    .map(|(k, v)| (k.to_string(), v))
}

impl IcebergTable {
    /// Sets table `properties` (such as [`MAX_SNAPSHOTS`]) in a new version on `base`, without
    /// a snapshot; a lost race is [`IcebergError::Conflict`], as for `append`. Values hubcap
    /// cannot read are refused before anything is written.
    pub async fn set_properties(
        &self,
        base: &TableState,
        properties: &[(&str, &str)],
    ) -> Result<TableState, IcebergError> {
        let mut after = base.metadata.clone();
        for (k, v) in properties {
            after.properties.insert(k.to_string(), v.to_string());
        }
        let upkeep = Upkeep::of(&after.properties).map_err(|reason| IcebergError::Invalid {
            table: self.location.display.clone(),
            reason,
        })?;
        self.refuse_stale_base(base).await?;
        let now = chrono::Utc::now()
            .timestamp_millis()
            .max(base.metadata.last_updated_ms);
        self.log_previous_version(&mut after, base, upkeep.previous_versions_max);
        after.last_updated_ms = now;
        let state = self.commit(base, after).await?;
        self.clean_up(base, &state).await;
        Ok(state)
    }
}
