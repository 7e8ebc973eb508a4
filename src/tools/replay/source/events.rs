//! Capture records, from Avro or Parquet, turned back into Kafka records (the mapping in the
//! module docs above).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float64Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, MapArray, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use bytes::Bytes;
use chrono::NaiveDateTime;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::super::avro::{Reader, Value};
use super::SourceError;
use crate::record::{Event, Header, ENQUEUED_TIME_KEY, PARTITION_KEY_KEY};

/// `EnqueuedTimeUtc` as Capture writes it (.NET's invariant `M/d/yyyy h:mm:ss tt`): chrono
/// reads unpadded numbers with the padded specifiers.
const ENQUEUED_TIME_FORMAT: &str = "%m/%d/%Y %I:%M:%S %p";

/// The events of an Avro file that `keep` keeps.
pub(super) fn avro(
    file: &str,
    data: &[u8],
    keep: &dyn Fn(&Event) -> bool,
) -> Result<Vec<Event>, SourceError> {
    avro_blocks(file, data, (0, 0), keep).map(|(events, _)| events)
}

/// The events `keep` keeps of `data`, an Avro file's header and some of its blocks, the first
/// of them block `start.0` of the file, at byte `start.1`; and how many blocks there were.
pub(super) fn avro_blocks(
    file: &str,
    data: &[u8],
    start: (u64, usize),
    keep: &dyn Fn(&Event) -> bool,
) -> Result<(Vec<Event>, u64), SourceError> {
    let avro_err = |source| SourceError::Avro {
        file: file.to_string(),
        source,
    };
    let mut events = Vec::new();
    let mut reader = Reader::resumed(data, start.0, start.1).map_err(avro_err)?;
    for value in reader.by_ref() {
        let event = Envelope::of_avro(file, value.map_err(avro_err)?)?.event(file)?;
        if keep(&event) {
            events.push(event);
        }
    }
    Ok((events, reader.blocks()))
}

/// The events of a Parquet file that `keep` keeps, decoded a batch of rows at a time.
pub(super) fn parquet(
    file: &str,
    data: Bytes,
    keep: &dyn Fn(&Event) -> bool,
) -> Result<Vec<Event>, SourceError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(data)
        .and_then(|b| b.build())
        .map_err(|source| SourceError::Parquet {
            file: file.to_string(),
            source,
        })?;
    let mut events = Vec::new();
    for batch in reader {
        events.extend(parquet_batch(file, batch, keep)?);
    }
    Ok(events)
}

/// The events `keep` keeps of one batch of a Parquet file's rows.
pub(super) fn parquet_batch(
    file: &str,
    batch: Result<RecordBatch, arrow_schema::ArrowError>,
    keep: &dyn Fn(&Event) -> bool,
) -> Result<Vec<Event>, SourceError> {
    let batch = batch.map_err(|source| SourceError::Arrow {
        file: file.to_string(),
        source,
    })?;
    let columns = Columns::of(file, &batch)?;
    let mut events = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let event = columns.envelope(file, row)?.event(file)?;
        if keep(&event) {
            events.push(event);
        }
    }
    Ok(events)
}

/// One Capture record's fields, from either format.
struct Envelope {
    sequence_number: i64,
    enqueued_time_utc: String,
    /// Parquet's `EnqueuedTime`, in epoch milliseconds.
    enqueued_time: Option<i64>,
    system_properties: Vec<(String, Value)>,
    properties: Vec<(String, Value)>,
    /// `None` for a tombstone.
    body: Option<Vec<u8>>,
}

impl Envelope {
    fn of_avro(file: &str, value: Value) -> Result<Envelope, SourceError> {
        let Value::Record(fields) = value else {
            return Err(schema_err(file, "EventData", value.kind()));
        };
        let mut fields: Vec<(Arc<str>, Option<Value>)> =
            fields.into_iter().map(|(k, v)| (k, Some(v))).collect();
        let mut take = |name: &str| {
            fields
                .iter_mut()
                .find(|(k, _)| k.as_ref() == name)
                .and_then(|(_, v)| v.take())
        };
        let found = |v: &Option<Value>| v.as_ref().map_or("nothing", Value::kind);
        let sequence_number = match take("SequenceNumber") {
            Some(Value::Long(n)) => n,
            Some(Value::Int(n)) => i64::from(n),
            other => return Err(schema_err(file, "SequenceNumber", found(&other))),
        };
        let enqueued_time_utc = match take("EnqueuedTimeUtc") {
            Some(Value::String(s)) => s,
            other => return Err(schema_err(file, "EnqueuedTimeUtc", found(&other))),
        };
        let mut map = |field: &'static str| match take(field) {
            Some(Value::Map(entries)) => Ok(entries),
            other => Err(schema_err(file, field, found(&other))),
        };
        let (system_properties, properties) = (map("SystemProperties")?, map("Properties")?);
        let body = match take("Body") {
            Some(Value::Null) => None,
            Some(Value::Bytes(b)) => Some(b),
            other => return Err(schema_err(file, "Body", found(&other))),
        };
        Ok(Envelope {
            sequence_number,
            enqueued_time_utc,
            enqueued_time: None,
            system_properties,
            properties,
            body,
        })
    }

    /// The Kafka record, by the mapping in the module docs.
    fn event(self, file: &str) -> Result<Event, SourceError> {
        let offset = self.sequence_number;
        let value_err = |(field, problem): FieldProblem| SourceError::Value {
            file: file.to_string(),
            offset,
            field,
            problem,
        };
        let key = self.key().map_err(value_err)?;
        let timestamp_ms = self.timestamp_ms().map_err(value_err)?;
        let headers = self
            .properties
            .into_iter()
            .map(|(key, value)| match header_value(value) {
                Ok(value) => Ok(Header { key, value }),
                Err(problem) => Err(value_err((format!("Properties[{key:?}]"), problem))),
            })
            .collect::<Result<_, SourceError>>()?;
        Ok(Event {
            offset,
            timestamp_ms,
            key,
            headers,
            value: self.body,
        })
    }

    fn system(&self, key: &str) -> Option<&Value> {
        self.system_properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    fn key(&self) -> Result<Option<Vec<u8>>, FieldProblem> {
        match self.system(PARTITION_KEY_KEY) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_bytes().to_vec())),
            Some(Value::Bytes(b)) => Ok(Some(b.clone())),
            Some(other) => Err(system_problem(
                PARTITION_KEY_KEY,
                other,
                "a string or bytes",
            )),
        }
    }

    fn timestamp_ms(&self) -> Result<Option<i64>, FieldProblem> {
        if let Some(ms) = self.enqueued_time {
            return Ok(Some(ms));
        }
        match self.system(ENQUEUED_TIME_KEY) {
            Some(Value::Long(ms)) => Ok(Some(*ms)),
            None | Some(Value::Null) => parse_enqueued_time(&self.enqueued_time_utc)
                .map_err(|problem| ("EnqueuedTimeUtc".into(), problem)),
            Some(other) => Err(system_problem(
                ENQUEUED_TIME_KEY,
                other,
                "a long (epoch ms)",
            )),
        }
    }
}

/// A field that holds what has no Kafka equivalent: its name and what it holds.
type FieldProblem = (String, String);

fn system_problem(key: &str, found: &Value, wanted: &str) -> FieldProblem {
    (
        format!("SystemProperties[{key:?}]"),
        format!("a {}, where {wanted} belongs", found.kind()),
    )
}

/// A header's value: bytes as they are, text as UTF-8, numbers as Java's `LongSerializer` and
/// `DoubleSerializer` write them, the null branch as no value.
fn header_value(value: Value) -> Result<Option<Vec<u8>>, String> {
    Ok(Some(match value {
        Value::Null => return Ok(None),
        Value::Bytes(b) => b,
        Value::String(s) => s.into_bytes(),
        Value::Long(n) => n.to_be_bytes().to_vec(),
        Value::Double(x) => x.to_be_bytes().to_vec(),
        other => {
            return Err(format!(
                "a {}: only long, double, string, bytes and null have a header encoding",
                other.kind()
            ))
        }
    }))
}

/// `EnqueuedTimeUtc` in epoch milliseconds; `None` for the empty text hubcap writes for a
/// record without a timestamp.
fn parse_enqueued_time(text: &str) -> Result<Option<i64>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    NaiveDateTime::parse_from_str(text, ENQUEUED_TIME_FORMAT)
        .map(|t| Some(t.and_utc().timestamp_millis()))
        .map_err(|_| format!("{text:?}, not a time like 11/1/2022 5:36:07 PM"))
}

fn schema_err(file: &str, field: &'static str, found: &str) -> SourceError {
    SourceError::Schema {
        file: file.to_string(),
        field,
        found: found.to_string(),
    }
}

/// The Capture columns of one batch of rows, found by name.
struct Columns<'b> {
    seq: &'b arrow_array::Int64Array,
    enqueued_utc: &'b dyn Array,
    /// hubcap's timestamp column; absent from files other writers made.
    enqueued: Option<&'b dyn Array>,
    system: &'b MapArray,
    properties: &'b MapArray,
    body: &'b dyn Array,
}

impl<'b> Columns<'b> {
    fn of(file: &str, batch: &'b RecordBatch) -> Result<Columns<'b>, SourceError> {
        let column = |field: &'static str| {
            batch
                .column_by_name(field)
                .map(|c| c.as_ref())
                .ok_or_else(|| schema_err(file, field, "no such column"))
        };
        let typed_err = |field: &'static str, array: &dyn Array| {
            schema_err(file, field, &format!("Parquet {}", array.data_type()))
        };
        let map = |field: &'static str| {
            let array = column(field)?;
            array.as_map_opt().ok_or_else(|| typed_err(field, array))
        };
        let seq = column("SequenceNumber")?;
        Ok(Columns {
            seq: seq
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| typed_err("SequenceNumber", seq))?,
            enqueued_utc: column("EnqueuedTimeUtc")?,
            enqueued: batch.column_by_name("EnqueuedTime").map(|c| c.as_ref()),
            system: map("SystemProperties")?,
            properties: map("Properties")?,
            body: column("Body")?,
        })
    }

    fn envelope(&self, file: &str, row: usize) -> Result<Envelope, SourceError> {
        let body = match self.body.is_null(row) {
            true => None,
            false => Some(binary(self.body, row).ok_or_else(|| {
                schema_err(file, "Body", &format!("Parquet {}", self.body.data_type()))
            })?),
        };
        let enqueued_utc = match self.enqueued_utc.is_null(row) {
            true => Some(String::new()),
            false => text(self.enqueued_utc, row),
        };
        let enqueued_utc = enqueued_utc.ok_or_else(|| {
            let found = format!("Parquet {}", self.enqueued_utc.data_type());
            schema_err(file, "EnqueuedTimeUtc", &found)
        })?;
        Ok(Envelope {
            sequence_number: self.seq.value(row),
            enqueued_time_utc: enqueued_utc,
            enqueued_time: match self.enqueued {
                Some(array) => timestamp_ms(file, array, row)?,
                None => None,
            },
            system_properties: entries(file, "SystemProperties", self.system, row)?,
            properties: entries(file, "Properties", self.properties, row)?,
            body,
        })
    }
}

/// A timestamp cell in epoch milliseconds, whatever its unit (hubcap writes microseconds now,
/// milliseconds before).
fn timestamp_ms(file: &str, array: &dyn Array, row: usize) -> Result<Option<i64>, SourceError> {
    if array.is_null(row) {
        return Ok(None);
    }
    let ms = match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => array
            .as_primitive::<TimestampSecondType>()
            .value(row)
            .saturating_mul(1000),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            array.as_primitive::<TimestampMillisecondType>().value(row)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => array
            .as_primitive::<TimestampMicrosecondType>()
            .value(row)
            .div_euclid(1000),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => array
            .as_primitive::<TimestampNanosecondType>()
            .value(row)
            .div_euclid(1_000_000),
        other => {
            return Err(schema_err(
                file,
                "EnqueuedTime",
                &format!("Parquet {other}"),
            ))
        }
    };
    Ok(Some(ms))
}

/// A map cell's entries, in order. A value is a struct with one field per Avro union branch,
/// of which one is set (see `encode/parquet.rs`); a null struct is the `null` branch.
fn entries(
    file: &str,
    field: &'static str,
    map: &MapArray,
    row: usize,
) -> Result<Vec<(String, Value)>, SourceError> {
    if map.is_null(row) {
        return Ok(Vec::new());
    }
    let row_entries = map.value(row);
    let (keys, values) = (row_entries.column(0), row_entries.column(1));
    (0..row_entries.len())
        .map(|i| {
            let key = text(keys.as_ref(), i)
                .ok_or_else(|| schema_err(file, field, &format!("keys of {}", keys.data_type())))?;
            let value = branch(values.as_ref(), i).ok_or_else(|| {
                schema_err(file, field, &format!("values of {}", values.data_type()))
            })?;
            Ok((key, value))
        })
        .collect()
}

/// The set branch of a map value; `None` for a type hubcap does not write.
fn branch(array: &dyn Array, i: usize) -> Option<Value> {
    if array.is_null(i) {
        return Some(Value::Null);
    }
    Some(match array.data_type() {
        DataType::Struct(_) => {
            let fields = array.as_struct();
            match fields.columns().iter().find(|c| !c.is_null(i)) {
                Some(set) => branch(set.as_ref(), i)?,
                None => Value::Null,
            }
        }
        DataType::Int64 => Value::Long(array.as_primitive::<Int64Type>().value(i)),
        DataType::Float64 => Value::Double(array.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Value::String(text(array, i)?),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            Value::Bytes(binary(array, i)?)
        }
        _ => return None,
    })
}

fn text(array: &dyn Array, i: usize) -> Option<String> {
    Some(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(i).to_string(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(i).to_string(),
        DataType::Utf8View => array.as_string_view().value(i).to_string(),
        _ => return None,
    })
}

fn binary(array: &dyn Array, i: usize) -> Option<Vec<u8>> {
    Some(match array.data_type() {
        DataType::Binary => array.as_binary::<i32>().value(i).to_vec(),
        DataType::LargeBinary => array.as_binary::<i64>().value(i).to_vec(),
        DataType::BinaryView => array.as_binary_view().value(i).to_vec(),
        _ => return None,
    })
}
