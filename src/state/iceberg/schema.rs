//! hubcap's Parquet columns as an Iceberg schema: field ids, the name mapping that lets readers
//! find those ids in files written without them, and which Parquet leaf column is which id
//! (for the metrics in manifests).

use std::collections::BTreeMap;

use arrow_schema::{DataType, Field, Schema, TimeUnit};
use serde_json::{json, Value};

/// The table's columns with their Iceberg ids, assigned as Iceberg assigns fresh ids: the fields
/// of a struct first (1, 2, …), then the fields nested in each of them, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct IcebergSchema {
    /// The schema as table metadata holds it (`type: struct`, `schema-id`, `fields`).
    pub json: Value,
    /// `schema.name-mapping.default`: hubcap's Parquet files carry no field ids, so readers
    /// map columns to ids by name.
    pub name_mapping: Value,
    /// The id of each Parquet leaf column, by its dotted path (`SystemProperties.key_value.key`).
    pub leaves: BTreeMap<String, i32>,
    /// The id of each top-level column, by name.
    pub columns: BTreeMap<String, i32>,
    pub last_column_id: i32,
}

/// Assigns ids while walking the Arrow schema.
struct Walk {
    next: i32,
    leaves: BTreeMap<String, i32>,
}

impl Walk {
    fn take(&mut self) -> i32 {
        self.next += 1;
        self.next
    }

    /// The Iceberg type of field `id`, of `data_type` at Parquet path `path`, and the name
    /// mapping of its nested fields (`Null` for a primitive).
    fn type_of(
        &mut self,
        id: i32,
        data_type: &DataType,
        path: &str,
    ) -> Result<(Value, Value), String> {
        let primitive = match data_type {
            DataType::Int64 => "long",
            DataType::Int32 => "int",
            DataType::Float64 => "double",
            DataType::Utf8 => "string",
            DataType::Binary => "binary",
            DataType::Boolean => "boolean",
            // Iceberg's timestamptz is microseconds in UTC: hubcap's encoder writes exactly that.
            DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => "timestamptz",
            DataType::Struct(fields) => return self.struct_of(fields.iter(), path),
            DataType::Map(entries, _) => return self.map_of(entries, path),
            other => return Err(format!("column {path}: no Iceberg type for {other}")),
        };
        self.leaves.insert(path.to_string(), id);
        Ok((json!(primitive), Value::Null))
    }

    fn struct_of<'a>(
        &mut self,
        fields: impl Iterator<Item = &'a std::sync::Arc<Field>>,
        path: &str,
    ) -> Result<(Value, Value), String> {
        let fields: Vec<&Field> = fields.map(|f| f.as_ref()).collect();
        let ids: Vec<i32> = fields.iter().map(|_| self.take()).collect();
        let (mut out, mut mapping) = (Vec::new(), Vec::new());
        for (field, id) in fields.iter().zip(ids) {
            let (ty, nested) = self.type_of(id, field.data_type(), &join(path, field.name()))?;
            out.push(json!({"id": id, "name": field.name(), "required": !field.is_nullable(), "type": ty}));
            mapping.push(mapping_entry(id, field.name(), nested));
        }
        Ok((
            json!({"type": "struct", "fields": out}),
            Value::Array(mapping),
        ))
    }

    fn map_of(&mut self, entries: &Field, path: &str) -> Result<(Value, Value), String> {
        let not_a_map = || format!("column {path}: a map without a key and a value");
        let DataType::Struct(kv) = entries.data_type() else {
            return Err(not_a_map());
        };
        let [key, value] = kv.iter().collect::<Vec<_>>()[..] else {
            return Err(not_a_map());
        };
        let base = join(path, entries.name());
        let (key_id, value_id) = (self.take(), self.take());
        let (key_type, key_nested) =
            self.type_of(key_id, key.data_type(), &join(&base, key.name()))?;
        let (value_type, value_nested) =
            self.type_of(value_id, value.data_type(), &join(&base, value.name()))?;
        let ty = json!({
            "type": "map",
            "key-id": key_id, "key": key_type,
            "value-id": value_id, "value": value_type,
            "value-required": !value.is_nullable(),
        });
        let mapping = json!([
            mapping_entry(key_id, key.name(), key_nested),
            mapping_entry(value_id, value.name(), value_nested),
        ]);
        Ok((ty, mapping))
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn mapping_entry(id: i32, name: &str, nested: Value) -> Value {
    let mut entry = json!({"field-id": id, "names": [name]});
    if nested.is_array() {
        entry["fields"] = nested;
    }
    entry
}

/// The Iceberg schema of `arrow` (hubcap's Parquet columns) plus one optional string column per
/// partition column: the `key=value` folders, which the files do not hold and readers take
/// from each file's partition values (identity-partitioned columns missing from a data file).
pub fn iceberg_schema(
    arrow: &Schema,
    partition_columns: &[String],
) -> Result<IcebergSchema, String> {
    let mut fields: Vec<std::sync::Arc<Field>> = arrow.fields().iter().cloned().collect();
    for column in partition_columns {
        if arrow.field_with_name(column).is_ok() {
            return Err(format!(
                "partition column {column:?} is also a column of the data files"
            ));
        }
        fields.push(std::sync::Arc::new(Field::new(
            column,
            DataType::Utf8,
            true,
        )));
    }
    let mut walk = Walk {
        next: 0,
        leaves: BTreeMap::new(),
    };
    let (mut json, name_mapping) = walk.struct_of(fields.iter(), "")?;
    json["schema-id"] = json!(0);
    let columns = json["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f["name"].as_str()?.to_string(), f["id"].as_i64()? as i32)))
        .collect();
    let last_column_id = walk.next;
    // Partition columns are not in the files: no leaf of theirs has metrics.
    let leaves = walk
        .leaves
        .into_iter()
        .filter(|(path, _)| !partition_columns.contains(path))
        .collect();
    Ok(IcebergSchema {
        json,
        name_mapping,
        leaves,
        columns,
        last_column_id,
    })
}
