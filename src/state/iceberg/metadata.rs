//! Iceberg table metadata (`metadata/vN.metadata.json`), format version 2: the fields hubcap
//! reads and writes are typed; what another writer may have added is kept as it is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The one format version hubcap writes (and the only one it reads).
pub const FORMAT_VERSION: u8 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TableMetadata {
    pub format_version: u8,
    pub table_uuid: String,
    /// The table's absolute URI: every path in the metadata is under it.
    pub location: String,
    pub last_sequence_number: i64,
    pub last_updated_ms: i64,
    pub last_column_id: i32,
    pub current_schema_id: i32,
    pub schemas: Vec<Value>,
    pub default_spec_id: i32,
    pub partition_specs: Vec<PartitionSpec>,
    pub last_partition_id: i32,
    pub default_sort_order_id: i32,
    pub sort_orders: Vec<Value>,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// `None` (written null) before the first snapshot; Java's `-1` reads as `None` too.
    #[serde(default, deserialize_with = "no_snapshot_as_none")]
    pub current_snapshot_id: Option<i64>,
    #[serde(default)]
    pub snapshots: Vec<Snapshot>,
    #[serde(default)]
    pub snapshot_log: Vec<SnapshotLogEntry>,
    #[serde(default)]
    pub metadata_log: Vec<MetadataLogEntry>,
    #[serde(default)]
    pub refs: BTreeMap<String, SnapshotRef>,
    /// Fields hubcap does not use (statistics, partition-statistics, …), kept as they are.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

fn no_snapshot_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<i64>::deserialize(d)?.filter(|id| *id != -1))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PartitionSpec {
    pub spec_id: i32,
    pub fields: Vec<PartitionField>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PartitionField {
    pub name: String,
    pub transform: String,
    pub source_id: i32,
    pub field_id: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Snapshot {
    pub snapshot_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_snapshot_id: Option<i64>,
    pub sequence_number: i64,
    pub timestamp_ms: i64,
    pub manifest_list: String,
    pub summary: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_id: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SnapshotLogEntry {
    pub snapshot_id: i64,
    pub timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MetadataLogEntry {
    pub metadata_file: String,
    pub timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SnapshotRef {
    pub snapshot_id: i64,
    #[serde(rename = "type")]
    pub kind: String,
}

impl TableMetadata {
    pub fn current_snapshot(&self) -> Option<&Snapshot> {
        let id = self.current_snapshot_id?;
        self.snapshots.iter().find(|s| s.snapshot_id == id)
    }

    pub fn default_spec(&self) -> Option<&PartitionSpec> {
        self.partition_specs
            .iter()
            .find(|s| s.spec_id == self.default_spec_id)
    }

    pub fn current_schema(&self) -> Option<&Value> {
        self.schemas
            .iter()
            .find(|s| s["schema-id"].as_i64() == Some(i64::from(self.current_schema_id)))
    }

    /// The JSON written to the store, compact: a version holds up to `hubcap.snapshots.max`
    /// snapshots with every partition's offset, and each commit writes it whole. Serializing
    /// these types cannot fail (string keys only).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The name of version `version`'s metadata file under the table's `metadata/` folder: a
/// "Hadoop" table's, which readers find through `version-hint.text` without a catalog.
pub fn metadata_name(version: u64) -> String {
    format!("v{version}.metadata.json")
}

/// A table UUID (version 4, random).
pub fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A new snapshot id: random, positive (Iceberg's ids are positive longs) and not one the
/// table has.
pub fn new_snapshot_id(metadata: &TableMetadata) -> i64 {
    loop {
        let id = rand::random::<i64>() & i64::MAX;
        if id != 0 && !metadata.snapshots.iter().any(|s| s.snapshot_id == id) {
            return id;
        }
    }
}
