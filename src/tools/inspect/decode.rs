//! Records out of Avro and Parquet files, each as the JSON line `inspect` prints: the Capture
//! columns by name, bodies and header values as text when they are UTF-8.

use super::*;

// ---- Avro ----

pub(super) fn avro_records<'d>(
    file: &'d str,
    data: &'d [u8],
) -> Result<impl Iterator<Item = Result<Record, InspectError>> + 'd, InspectError> {
    let avro_err = |source| InspectError::Avro {
        file: file.to_string(),
        source,
    };
    let reader = apache_avro::Reader::new(data).map_err(avro_err)?;
    Ok(reader.map(move |value| avro_record(file, value.map_err(avro_err)?)))
}

pub(super) fn avro_record(file: &str, value: AvroValue) -> Result<Record, InspectError> {
    let AvroValue::Record(fields) = value else {
        return Err(schema_err(file, "EventData", avro_kind(&value)));
    };
    let mut seq = None;
    let mut offset = None;
    let mut enqueued = None;
    let mut system = None;
    let mut properties = None;
    let mut body = None;
    for (name, value) in fields {
        let value = unwrap_union(value);
        match name.as_str() {
            "SequenceNumber" => seq = Some(value),
            "Offset" => offset = Some(value),
            "EnqueuedTimeUtc" => enqueued = Some(value),
            "SystemProperties" => system = Some(value),
            "Properties" => properties = Some(value),
            "Body" => body = Some(value),
            _ => {}
        }
    }
    Ok(Record {
        sequence_number: match seq {
            Some(AvroValue::Long(n)) => n,
            Some(AvroValue::Int(n)) => i64::from(n),
            other => return Err(schema_err(file, "SequenceNumber", avro_found(&other))),
        },
        offset: avro_string(file, "Offset", offset)?,
        enqueued_time_utc: avro_string(file, "EnqueuedTimeUtc", enqueued)?,
        system_properties: avro_map(file, "SystemProperties", system)?,
        properties: avro_map(file, "Properties", properties)?,
        body: match body {
            Some(AvroValue::Null) => Json::Null,
            Some(AvroValue::Bytes(b)) => body_json(&b),
            Some(AvroValue::String(s)) => Json::String(s),
            other => return Err(schema_err(file, "Body", avro_found(&other))),
        },
    })
}

pub(super) fn avro_string(
    file: &str,
    field: &'static str,
    value: Option<AvroValue>,
) -> Result<String, InspectError> {
    match value {
        Some(AvroValue::String(s)) => Ok(s),
        other => Err(schema_err(file, field, avro_found(&other))),
    }
}

pub(super) fn avro_map(
    file: &str,
    field: &'static str,
    value: Option<AvroValue>,
) -> Result<Entries, InspectError> {
    let Some(AvroValue::Map(map)) = value else {
        return Err(schema_err(file, field, avro_found(&value)));
    };
    let entries = map
        .into_iter()
        .map(|(k, v)| Ok((k, avro_json(file, v)?)))
        .collect::<Result<Vec<_>, InspectError>>()?;
    Ok(Entries::sorted(entries))
}

pub(super) fn unwrap_union(value: AvroValue) -> AvroValue {
    match value {
        AvroValue::Union(_, inner) => unwrap_union(*inner),
        other => other,
    }
}

/// A map value as JSON, by the rules in the module docs.
pub(super) fn avro_json(file: &str, value: AvroValue) -> Result<Json, InspectError> {
    Ok(match unwrap_union(value) {
        AvroValue::Null => Json::Null,
        AvroValue::Boolean(b) => Json::Bool(b),
        AvroValue::Int(n) => Json::from(n),
        AvroValue::Long(n) => Json::from(n),
        AvroValue::Float(x) => float_json(f64::from(x)),
        AvroValue::Double(x) => float_json(x),
        AvroValue::String(s) | AvroValue::Enum(_, s) => Json::String(s),
        AvroValue::Bytes(b) | AvroValue::Fixed(_, b) => bytes_json(&b),
        // Nested and logical types never occur in Capture maps; apache-avro's own mapping will do.
        other => Json::try_from(other).map_err(|source| InspectError::Avro {
            file: file.to_string(),
            source,
        })?,
    })
}

pub(super) fn avro_found(value: &Option<AvroValue>) -> String {
    value.as_ref().map_or_else(|| "nothing".into(), avro_kind)
}

/// What was found, by type: the value itself may be large.
pub(super) fn avro_kind(value: &AvroValue) -> String {
    format!("Avro {:?}", apache_avro::schema::SchemaKind::from(value))
}

// ---- Parquet ----

pub(super) fn parquet_records(
    file: &str,
    data: Bytes,
) -> Result<impl Iterator<Item = Result<Record, InspectError>> + '_, InspectError> {
    let parquet_err = |source| InspectError::Parquet {
        file: file.to_string(),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(data)
        .and_then(|b| b.build())
        .map_err(parquet_err)?;
    // One batch (1024 rows by default) is decoded at a time.
    Ok(reader.flat_map(move |batch| {
        let rows = batch
            .map_err(|source| InspectError::Arrow {
                file: file.to_string(),
                source,
            })
            .and_then(|batch| batch_records(file, &batch));
        match rows {
            Ok(rows) => rows.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => vec![Err(e)],
        }
    }))
}

/// The Capture columns of one batch, found by name.
pub(super) struct Columns<'b> {
    seq: &'b arrow_array::Int64Array,
    offset: &'b dyn Array,
    enqueued: &'b dyn Array,
    system: &'b MapArray,
    properties: &'b MapArray,
    body: &'b dyn Array,
}

impl<'b> Columns<'b> {
    fn of(file: &str, batch: &'b RecordBatch) -> Result<Columns<'b>, InspectError> {
        let column = |field: &'static str| {
            batch
                .column_by_name(field)
                .ok_or_else(|| schema_err(file, field, "no such column".into()))
        };
        let typed_err = |field: &'static str, array: &dyn Array| {
            schema_err(file, field, format!("Parquet {}", array.data_type()))
        };
        let seq = column("SequenceNumber")?;
        let system = column("SystemProperties")?;
        let properties = column("Properties")?;
        Ok(Columns {
            seq: seq
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| typed_err("SequenceNumber", seq))?,
            offset: column("Offset")?.as_ref(),
            enqueued: column("EnqueuedTimeUtc")?.as_ref(),
            system: system
                .as_map_opt()
                .ok_or_else(|| typed_err("SystemProperties", system))?,
            properties: properties
                .as_map_opt()
                .ok_or_else(|| typed_err("Properties", properties))?,
            body: column("Body")?.as_ref(),
        })
    }
}

pub(super) fn batch_records(file: &str, batch: &RecordBatch) -> Result<Vec<Record>, InspectError> {
    let c = Columns::of(file, batch)?;
    (0..batch.num_rows())
        .map(|i| {
            let text = |field, array: &dyn Array| match cell_json(file, field, array, i)? {
                Json::String(s) => Ok(s),
                other => Err(schema_err(file, field, format!("{other}"))),
            };
            Ok(Record {
                sequence_number: c.seq.value(i),
                offset: text("Offset", c.offset)?,
                enqueued_time_utc: text("EnqueuedTimeUtc", c.enqueued)?,
                system_properties: map_entries(file, "SystemProperties", c.system, i)?,
                properties: map_entries(file, "Properties", c.properties, i)?,
                body: parquet_body(file, c.body, i)?,
            })
        })
        .collect()
}

pub(super) fn parquet_body(file: &str, body: &dyn Array, i: usize) -> Result<Json, InspectError> {
    if body.is_null(i) {
        return Ok(Json::Null);
    }
    match binary_at(body, i) {
        Some(b) => Ok(body_json(&b)),
        // A string body (not what hubcap writes) is text already.
        None => cell_json(file, "Body", body, i),
    }
}

pub(super) fn map_entries(
    file: &str,
    field: &'static str,
    map: &MapArray,
    row: usize,
) -> Result<Entries, InspectError> {
    if map.is_null(row) {
        return Ok(Entries::default());
    }
    // The row's entries: a struct of (key, value) columns.
    let row_entries = map.value(row);
    let (keys, values) = (row_entries.column(0), row_entries.column(1));
    let entries = (0..row_entries.len())
        .map(|j| {
            let key = match cell_json(file, field, keys.as_ref(), j)? {
                Json::String(s) => s,
                other => other.to_string(),
            };
            Ok((key, cell_json(file, field, values.as_ref(), j)?))
        })
        .collect::<Result<Vec<_>, InspectError>>()?;
    Ok(Entries::sorted(entries))
}

/// One cell as JSON. A map value is a struct with one field per Avro union branch and exactly
/// one set (see `parquet.rs`); a null struct is the `null` branch. Should a writer set several,
/// the first in field order wins.
pub(super) fn cell_json(
    file: &str,
    field: &'static str,
    array: &dyn Array,
    i: usize,
) -> Result<Json, InspectError> {
    if array.is_null(i) {
        return Ok(Json::Null);
    }
    Ok(match array.data_type() {
        DataType::Null => Json::Null,
        DataType::Boolean => Json::Bool(array.as_boolean().value(i)),
        DataType::Int32 => Json::from(array.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => Json::from(array.as_primitive::<Int64Type>().value(i)),
        DataType::Float32 => float_json(f64::from(array.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => float_json(array.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Json::from(array.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Json::from(array.as_string::<i64>().value(i)),
        DataType::Utf8View => Json::from(array.as_string_view().value(i)),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            bytes_json(&binary_at(array, i).unwrap_or_default())
        }
        DataType::Struct(_) => {
            let s = array.as_struct();
            match s.columns().iter().find(|c| !c.is_null(i)) {
                Some(set) => cell_json(file, field, set.as_ref(), i)?,
                None => Json::Null,
            }
        }
        other => return Err(schema_err(file, field, format!("Parquet {other}"))),
    })
}

pub(super) fn binary_at(array: &dyn Array, i: usize) -> Option<Vec<u8>> {
    match array.data_type() {
        DataType::Binary => Some(array.as_binary::<i32>().value(i).to_vec()),
        DataType::LargeBinary => Some(array.as_binary::<i64>().value(i).to_vec()),
        DataType::BinaryView => Some(array.as_binary_view().value(i).to_vec()),
        _ => None,
    }
}

// ---- JSON values ----

/// `{"bytes": "<lowercase hex>"}`.
pub(super) fn bytes_json(b: &[u8]) -> Json {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(b.len() * 2);
    for &byte in b {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    serde_json::json!({ "bytes": hex })
}

/// The body as text when it is UTF-8 (Capture bodies are mostly JSON), else as hex.
pub(super) fn body_json(b: &[u8]) -> Json {
    match std::str::from_utf8(b) {
        Ok(text) => Json::from(text),
        Err(_) => bytes_json(b),
    }
}

/// A finite double as a number; NaN and the infinities, which JSON has no numbers for, as the
/// strings `"NaN"`, `"inf"`, `"-inf"` rather than a `null` that would read as the null branch.
pub(super) fn float_json(x: f64) -> Json {
    serde_json::Number::from_f64(x).map_or_else(|| Json::String(x.to_string()), Json::Number)
}

pub(super) fn schema_err(file: &str, field: &'static str, found: String) -> InspectError {
    InspectError::Schema {
        file: file.to_string(),
        field,
        found,
    }
}
