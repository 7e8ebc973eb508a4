//! Manifests and manifest lists: Avro container files in Iceberg's v2 schemas. Readers
//! (pyiceberg, DuckDB, Java) resolve their fields by the `field-id` attribute of each Avro
//! field, so the schema in the header is written as Iceberg spells it, attributes and all
//! (`avro.schema`), next to the key-value metadata a manifest must carry. The records are
//! encoded by apache-avro against the same schema.

use std::collections::BTreeMap;

use apache_avro::types::Value as Avro;
use serde_json::{json, Value};

use super::metadata::PartitionField;

/// `status` of a manifest entry.
pub const EXISTING: i32 = 0;
pub const ADDED: i32 = 1;
pub const DELETED: i32 = 2;

/// `content` of a manifest (a manifest list entry): data files, not delete files.
pub const DATA: i32 = 0;

/// One data file as a manifest entry describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub status: i32,
    /// `None`: inherited from the manifest list entry (the snapshot that added the manifest).
    pub snapshot_id: Option<i64>,
    /// The data sequence number; `None`: inherited from the manifest list entry's sequence
    /// number, which only an entry `ADDED` by the manifest's own snapshot may do (v2).
    pub sequence_number: Option<i64>,
    /// When the file was added; inherited as `sequence_number` is.
    pub file_sequence_number: Option<i64>,
    pub file_path: String,
    /// One value per partition field, in the spec's order.
    pub partition: Vec<Option<String>>,
    pub record_count: i64,
    pub file_size_in_bytes: i64,
    pub metrics: Metrics,
}

impl ManifestEntry {
    /// The entry with what it leaves null taken from `manifest`, its manifest list entry: the
    /// snapshot id always, the sequence numbers only for an entry the manifest's own snapshot
    /// added (the spec's inheritance, as Java's `InheritableMetadataFactory` applies it).
    pub fn inherit(mut self, manifest: &ManifestFile) -> ManifestEntry {
        self.snapshot_id.get_or_insert(manifest.added_snapshot_id);
        if self.status == ADDED {
            self.sequence_number.get_or_insert(manifest.sequence_number);
            self.file_sequence_number
                .get_or_insert(manifest.sequence_number);
        }
        self
    }
}

/// Per-column metrics of a data file, by Iceberg field id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    pub column_sizes: BTreeMap<i32, i64>,
    pub value_counts: BTreeMap<i32, i64>,
    pub null_value_counts: BTreeMap<i32, i64>,
    /// Bounds in Iceberg's single-value serialization (a long: 8 bytes, little-endian).
    pub lower_bounds: BTreeMap<i32, Vec<u8>>,
    pub upper_bounds: BTreeMap<i32, Vec<u8>>,
}

/// One manifest as a manifest list entry describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    pub manifest_path: String,
    pub manifest_length: i64,
    pub partition_spec_id: i32,
    /// [`DATA`], or delete files (another writer's): never merged with data manifests.
    pub content: i32,
    pub sequence_number: i64,
    pub min_sequence_number: i64,
    pub added_snapshot_id: i64,
    pub added_files_count: i32,
    pub existing_files_count: i32,
    pub deleted_files_count: i32,
    pub added_rows_count: i64,
    pub existing_rows_count: i64,
    pub deleted_rows_count: i64,
    /// Per partition field: whether a value is null, the lowest and the highest value.
    pub partitions: Vec<FieldSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSummary {
    pub contains_null: bool,
    pub lower_bound: Option<Vec<u8>>,
    pub upper_bound: Option<Vec<u8>>,
}

fn optional(ty: Value, name: &str, id: i32) -> Value {
    json!({"name": name, "type": ["null", ty], "default": null, "field-id": id})
}

fn required(ty: Value, name: &str, id: i32) -> Value {
    json!({"name": name, "type": ty, "field-id": id})
}

/// An Iceberg map with non-string keys: an Avro array of key/value records.
fn int_map(name: &str, id: i32, key_id: i32, value_id: i32, value: &str) -> Value {
    let items = json!({
        "type": "record",
        "name": format!("k{key_id}_v{value_id}"),
        "fields": [required(json!("int"), "key", key_id), required(json!(value), "value", value_id)],
    });
    optional(
        json!({"type": "array", "logicalType": "map", "items": items}),
        name,
        id,
    )
}

/// The Avro schema of a v2 manifest entry for a spec with `fields` (identity on strings).
pub fn entry_schema(fields: &[PartitionField]) -> Value {
    let partition: Vec<Value> = fields
        .iter()
        .map(|f| optional(json!("string"), &f.name, f.field_id))
        .collect();
    let data_file = json!({
        "type": "record",
        "name": "r2",
        "fields": [
            required(json!("int"), "content", 134),
            required(json!("string"), "file_path", 100),
            required(json!("string"), "file_format", 101),
            required(json!({"type": "record", "name": "r102", "fields": partition}), "partition", 102),
            required(json!("long"), "record_count", 103),
            required(json!("long"), "file_size_in_bytes", 104),
            int_map("column_sizes", 108, 117, 118, "long"),
            int_map("value_counts", 109, 119, 120, "long"),
            int_map("null_value_counts", 110, 121, 122, "long"),
            int_map("nan_value_counts", 137, 138, 139, "long"),
            int_map("lower_bounds", 125, 126, 127, "bytes"),
            int_map("upper_bounds", 128, 129, 130, "bytes"),
            optional(json!("bytes"), "key_metadata", 131),
            optional(json!({"type": "array", "items": "long", "element-id": 133}), "split_offsets", 132),
            optional(json!({"type": "array", "items": "int", "element-id": 136}), "equality_ids", 135),
            optional(json!("int"), "sort_order_id", 140),
        ],
    });
    json!({
        "type": "record",
        "name": "manifest_entry",
        "fields": [
            required(json!("int"), "status", 0),
            optional(json!("long"), "snapshot_id", 1),
            optional(json!("long"), "sequence_number", 3),
            optional(json!("long"), "file_sequence_number", 4),
            required(data_file, "data_file", 2),
        ],
    })
}

/// The Avro schema of a v2 manifest list entry.
pub fn list_schema() -> Value {
    let summary = json!({
        "type": "record",
        "name": "r508",
        "fields": [
            required(json!("boolean"), "contains_null", 509),
            optional(json!("boolean"), "contains_nan", 518),
            optional(json!("bytes"), "lower_bound", 510),
            optional(json!("bytes"), "upper_bound", 511),
        ],
    });
    json!({
        "type": "record",
        "name": "manifest_file",
        "fields": [
            required(json!("string"), "manifest_path", 500),
            required(json!("long"), "manifest_length", 501),
            required(json!("int"), "partition_spec_id", 502),
            required(json!("int"), "content", 517),
            required(json!("long"), "sequence_number", 515),
            required(json!("long"), "min_sequence_number", 516),
            required(json!("long"), "added_snapshot_id", 503),
            required(json!("int"), "added_files_count", 504),
            required(json!("int"), "existing_files_count", 505),
            required(json!("int"), "deleted_files_count", 506),
            required(json!("long"), "added_rows_count", 512),
            required(json!("long"), "existing_rows_count", 513),
            required(json!("long"), "deleted_rows_count", 514),
            optional(json!({"type": "array", "items": summary, "element-id": 508}), "partitions", 507),
            optional(json!("bytes"), "key_metadata", 519),
        ],
    })
}

fn null() -> Avro {
    Avro::Union(0, Box::new(Avro::Null))
}

fn some(v: Avro) -> Avro {
    Avro::Union(1, Box::new(v))
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Avro) -> Avro {
    v.map_or_else(null, |v| some(f(v)))
}

fn record(fields: Vec<(&str, Avro)>) -> Avro {
    Avro::Record(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

fn map_value<T: Clone>(map: &BTreeMap<i32, T>, f: impl Fn(T) -> Avro) -> Avro {
    if map.is_empty() {
        return null();
    }
    let items = map
        .iter()
        .map(|(k, v)| record(vec![("key", Avro::Int(*k)), ("value", f(v.clone()))]))
        .collect();
    some(Avro::Array(items))
}

/// A manifest entry as an Avro value of [`entry_schema`].
pub fn entry_value(e: &ManifestEntry, fields: &[PartitionField]) -> Avro {
    let partition = fields
        .iter()
        .zip(&e.partition)
        .map(|(f, v)| (f.name.as_str(), opt(v.clone(), Avro::String)))
        .collect();
    let m = &e.metrics;
    let data_file = record(vec![
        ("content", Avro::Int(0)),
        ("file_path", Avro::String(e.file_path.clone())),
        ("file_format", Avro::String("PARQUET".into())),
        ("partition", record(partition)),
        ("record_count", Avro::Long(e.record_count)),
        ("file_size_in_bytes", Avro::Long(e.file_size_in_bytes)),
        ("column_sizes", map_value(&m.column_sizes, Avro::Long)),
        ("value_counts", map_value(&m.value_counts, Avro::Long)),
        (
            "null_value_counts",
            map_value(&m.null_value_counts, Avro::Long),
        ),
        ("nan_value_counts", null()),
        ("lower_bounds", map_value(&m.lower_bounds, Avro::Bytes)),
        ("upper_bounds", map_value(&m.upper_bounds, Avro::Bytes)),
        ("key_metadata", null()),
        ("split_offsets", null()),
        ("equality_ids", null()),
        ("sort_order_id", null()),
    ]);
    record(vec![
        ("status", Avro::Int(e.status)),
        ("snapshot_id", opt(e.snapshot_id, Avro::Long)),
        ("sequence_number", opt(e.sequence_number, Avro::Long)),
        (
            "file_sequence_number",
            opt(e.file_sequence_number, Avro::Long),
        ),
        ("data_file", data_file),
    ])
}

/// A manifest list entry as an Avro value of [`list_schema`].
pub fn list_value(m: &ManifestFile) -> Avro {
    let partitions = m
        .partitions
        .iter()
        .map(|p| {
            record(vec![
                ("contains_null", Avro::Boolean(p.contains_null)),
                ("contains_nan", null()),
                ("lower_bound", opt(p.lower_bound.clone(), Avro::Bytes)),
                ("upper_bound", opt(p.upper_bound.clone(), Avro::Bytes)),
            ])
        })
        .collect();
    record(vec![
        ("manifest_path", Avro::String(m.manifest_path.clone())),
        ("manifest_length", Avro::Long(m.manifest_length)),
        ("partition_spec_id", Avro::Int(m.partition_spec_id)),
        ("content", Avro::Int(m.content)),
        ("sequence_number", Avro::Long(m.sequence_number)),
        ("min_sequence_number", Avro::Long(m.min_sequence_number)),
        ("added_snapshot_id", Avro::Long(m.added_snapshot_id)),
        ("added_files_count", Avro::Int(m.added_files_count)),
        ("existing_files_count", Avro::Int(m.existing_files_count)),
        ("deleted_files_count", Avro::Int(m.deleted_files_count)),
        ("added_rows_count", Avro::Long(m.added_rows_count)),
        ("existing_rows_count", Avro::Long(m.existing_rows_count)),
        ("deleted_rows_count", Avro::Long(m.deleted_rows_count)),
        ("partitions", some(Avro::Array(partitions))),
        ("key_metadata", null()),
    ])
}

/// An Avro container file (no compression, one block) of `values` in `schema`, with the
/// key-value `metadata` readers look for beside `avro.schema`.
pub fn container(
    schema: &Value,
    metadata: &[(&str, String)],
    values: Vec<Avro>,
) -> Result<Vec<u8>, apache_avro::Error> {
    let text = schema.to_string();
    let parsed = apache_avro::Schema::parse_str(&text)?;
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&parsed).build()?;
    let mut block = Vec::new();
    let count = values.len();
    for v in &values {
        writer.write_value_ref(&mut block, v)?;
    }
    let sync: [u8; 16] = rand::random();
    let mut out = b"Obj\x01".to_vec();
    let mut keys: Vec<(&str, &[u8])> =
        vec![("avro.schema", text.as_bytes()), ("avro.codec", b"null")];
    keys.extend(metadata.iter().map(|(k, v)| (*k, v.as_bytes())));
    long(&mut out, keys.len() as i64);
    for (k, v) in keys {
        bytes(&mut out, k.as_bytes());
        bytes(&mut out, v);
    }
    long(&mut out, 0);
    out.extend_from_slice(&sync);
    if count > 0 {
        long(&mut out, count as i64);
        bytes(&mut out, &block);
        out.extend_from_slice(&sync);
    }
    Ok(out)
}

/// An Avro long: zigzag, then variable-length.
fn long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    long(out, b.len() as i64);
    out.extend_from_slice(b);
}
