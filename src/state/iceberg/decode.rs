//! Manifests and manifest lists read back (hubcap's own, to carry them into the next snapshot
//! and to list a snapshot's files): fields are looked up by name in apache-avro's values.

use std::collections::BTreeMap;

use apache_avro::types::Value as Avro;

use super::manifest::{FieldSummary, ManifestEntry, ManifestFile, Metrics};

type Fields = [(String, Avro)];

fn field<'a>(fields: &'a Fields, name: &str) -> Result<&'a Avro, String> {
    let value = fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .ok_or_else(|| format!("no field {name}"))?;
    Ok(match value {
        Avro::Union(_, inner) => inner,
        other => other,
    })
}

fn long(fields: &Fields, name: &str) -> Result<i64, String> {
    match field(fields, name)? {
        Avro::Long(n) => Ok(*n),
        Avro::Int(n) => Ok(i64::from(*n)),
        other => Err(format!("{name} is not a long: {other:?}")),
    }
}

fn opt_long(fields: &Fields, name: &str) -> Result<Option<i64>, String> {
    match field(fields, name) {
        Ok(Avro::Null) | Err(_) => Ok(None),
        Ok(_) => long(fields, name).map(Some),
    }
}

fn int(fields: &Fields, name: &str) -> Result<i32, String> {
    i32::try_from(long(fields, name)?).map_err(|_| format!("{name} is not an int"))
}

fn string(fields: &Fields, name: &str) -> Result<String, String> {
    match field(fields, name)? {
        Avro::String(s) => Ok(s.clone()),
        other => Err(format!("{name} is not a string: {other:?}")),
    }
}

fn opt_bytes(fields: &Fields, name: &str) -> Result<Option<Vec<u8>>, String> {
    match field(fields, name)? {
        Avro::Null => Ok(None),
        Avro::Bytes(b) => Ok(Some(b.clone())),
        other => Err(format!("{name} is not bytes: {other:?}")),
    }
}

fn record<'a>(value: &'a Avro, what: &str) -> Result<&'a Fields, String> {
    match value {
        Avro::Record(fields) => Ok(fields),
        other => Err(format!("{what} is not a record: {other:?}")),
    }
}

/// An int-keyed Iceberg map (an array of key/value records).
fn int_map<T>(
    fields: &Fields,
    name: &str,
    value: impl Fn(&Avro) -> Option<T>,
) -> Result<BTreeMap<i32, T>, String> {
    let items = match field(fields, name) {
        Ok(Avro::Array(items)) => items,
        _ => return Ok(BTreeMap::new()),
    };
    items
        .iter()
        .map(|item| {
            let kv = record(item, name)?;
            let v = value(field(kv, "value")?).ok_or_else(|| format!("{name}: a bad value"))?;
            Ok((int(kv, "key")?, v))
        })
        .collect()
}

fn values(data: &[u8]) -> Result<Vec<Avro>, String> {
    apache_avro::Reader::new(data)
        .map_err(|e| e.to_string())?
        .map(|v| v.map_err(|e| e.to_string()))
        .collect()
}

/// The entries of a manifest, with partition values in the order of `partition_names`.
pub fn read_manifest(
    data: &[u8],
    partition_names: &[String],
) -> Result<Vec<ManifestEntry>, String> {
    values(data)?
        .iter()
        .map(|v| {
            let e = record(v, "manifest entry")?;
            let f = record(field(e, "data_file")?, "data_file")?;
            let p = record(field(f, "partition")?, "partition")?;
            let partition = partition_names
                .iter()
                .map(|n| match field(p, n) {
                    Ok(Avro::String(s)) => Some(s.clone()),
                    _ => None,
                })
                .collect();
            let as_long = |v: &Avro| match v {
                Avro::Long(n) => Some(*n),
                _ => None,
            };
            let as_bytes = |v: &Avro| match v {
                Avro::Bytes(b) => Some(b.clone()),
                _ => None,
            };
            Ok(ManifestEntry {
                status: int(e, "status")?,
                snapshot_id: opt_long(e, "snapshot_id")?,
                sequence_number: opt_long(e, "sequence_number")?,
                file_sequence_number: opt_long(e, "file_sequence_number")?,
                file_path: string(f, "file_path")?,
                partition,
                record_count: long(f, "record_count")?,
                file_size_in_bytes: long(f, "file_size_in_bytes")?,
                metrics: Metrics {
                    column_sizes: int_map(f, "column_sizes", as_long)?,
                    value_counts: int_map(f, "value_counts", as_long)?,
                    null_value_counts: int_map(f, "null_value_counts", as_long)?,
                    lower_bounds: int_map(f, "lower_bounds", as_bytes)?,
                    upper_bounds: int_map(f, "upper_bounds", as_bytes)?,
                },
            })
        })
        .collect()
}

/// The entries of a manifest list.
pub fn read_manifest_list(data: &[u8]) -> Result<Vec<ManifestFile>, String> {
    values(data)?
        .iter()
        .map(|v| {
            let m = record(v, "manifest list entry")?;
            let partitions = match field(m, "partitions")? {
                Avro::Array(items) => items
                    .iter()
                    .map(|item| {
                        let s = record(item, "partitions")?;
                        Ok(FieldSummary {
                            contains_null: matches!(
                                field(s, "contains_null")?,
                                Avro::Boolean(true)
                            ),
                            lower_bound: opt_bytes(s, "lower_bound")?,
                            upper_bound: opt_bytes(s, "upper_bound")?,
                        })
                    })
                    .collect::<Result<_, String>>()?,
                _ => Vec::new(),
            };
            Ok(ManifestFile {
                manifest_path: string(m, "manifest_path")?,
                manifest_length: long(m, "manifest_length")?,
                partition_spec_id: int(m, "partition_spec_id")?,
                content: int(m, "content")?,
                sequence_number: long(m, "sequence_number")?,
                min_sequence_number: long(m, "min_sequence_number")?,
                added_snapshot_id: long(m, "added_snapshot_id")?,
                added_files_count: int(m, "added_files_count")?,
                existing_files_count: int(m, "existing_files_count")?,
                deleted_files_count: int(m, "deleted_files_count")?,
                added_rows_count: long(m, "added_rows_count")?,
                existing_rows_count: long(m, "existing_rows_count")?,
                deleted_rows_count: long(m, "deleted_rows_count")?,
                partitions,
            })
        })
        .collect()
}
