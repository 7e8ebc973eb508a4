//! The Parquet encoder: the Capture columns, plus a real timestamp.
//!
//! | column             | type                                                        |
//! |--------------------|-------------------------------------------------------------|
//! | `SequenceNumber`   | int64                                                       |
//! | `Offset`           | string                                                      |
//! | `EnqueuedTimeUtc`  | string, Capture's `M/d/yyyy h:mm:ss tt`                     |
//! | `EnqueuedTime`     | timestamp(ms, UTC), null when the record has no timestamp   |
//! | `SystemProperties` | map<string, struct<long int64, double float64, string string, bytes binary>> |
//! | `Properties`       | the same map type; a null value is Capture's `null` branch  |
//! | `Body`             | binary, null for a tombstone                                |
//!
//! Parquet has no unions, so each map value is a struct with one field per Avro union branch;
//! exactly one field is set (the branch), which DuckDB, pyarrow and Spark read natively and
//! which keeps every value type. Rows collect in arrow builders, go to the writer in small
//! batches, and leave as row groups of about `row_group_bytes`, so memory stays at about 2.5 row
//! groups per open file (pages in progress, then the written row group), whatever the window.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, Float64Builder, Int64Builder, MapBuilder, MapFieldNames, StringBuilder,
    StructBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::encoder::{EncodeError, FileEncoder};
use crate::event::{Event, ENQUEUED_TIME_KEY, PARTITION_KEY_KEY};

/// Rows handed to the parquet writer at a time, at most.
const BATCH_ROWS: usize = 4096;
/// Raw bytes handed to the parquet writer at a time, about.
const BATCH_BYTES: usize = 256 << 10;
/// Room kept for the footer when estimating a file's size: a base, plus per row group (column
/// chunk metadata and statistics of 15 leaf columns).
const FOOTER_BASE: u64 = 2 << 10;
const FOOTER_PER_ROW_GROUP: u64 = 4 << 10;

/// Parquet page compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParquetCompression {
    Zstd,
    Snappy,
    None,
}

impl ParquetCompression {
    pub fn name(self) -> &'static str {
        match self {
            ParquetCompression::Zstd => "zstd",
            ParquetCompression::Snappy => "snappy",
            ParquetCompression::None => "none",
        }
    }

    fn codec(self) -> Compression {
        match self {
            ParquetCompression::Zstd => Compression::ZSTD(ZstdLevel::default()),
            ParquetCompression::Snappy => Compression::SNAPPY,
            ParquetCompression::None => Compression::UNCOMPRESSED,
        }
    }
}

fn value_fields() -> Fields {
    Fields::from(vec![
        Field::new("long", DataType::Int64, true),
        Field::new("double", DataType::Float64, true),
        Field::new("string", DataType::Utf8, true),
        Field::new("bytes", DataType::Binary, true),
    ])
}

fn map_names() -> MapFieldNames {
    MapFieldNames {
        entry: "key_value".into(),
        key: "key".into(),
        value: "value".into(),
    }
}

fn map_builder() -> MapBuilder<StringBuilder, StructBuilder> {
    MapBuilder::new(
        Some(map_names()),
        StringBuilder::new(),
        StructBuilder::from_fields(value_fields(), 0),
    )
}

/// The Arrow schema of hubcap's Parquet files.
pub fn schema() -> SchemaRef {
    let map = map_builder().finish();
    Arc::new(Schema::new(vec![
        Field::new("SequenceNumber", DataType::Int64, false),
        Field::new("Offset", DataType::Utf8, false),
        Field::new("EnqueuedTimeUtc", DataType::Utf8, false),
        Field::new(
            "EnqueuedTime",
            DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("SystemProperties", map.data_type().clone(), false),
        Field::new("Properties", map.data_type().clone(), false),
        Field::new("Body", DataType::Binary, true),
    ]))
}

/// Column builders for the rows not yet handed to the writer.
struct Rows {
    seq: Int64Builder,
    offset: StringBuilder,
    enqueued: StringBuilder,
    time: TimestampMillisecondBuilder,
    system: MapBuilder<StringBuilder, StructBuilder>,
    properties: MapBuilder<StringBuilder, StructBuilder>,
    body: BinaryBuilder,
    rows: usize,
    bytes: usize,
}

/// The union branch a map value takes.
enum Branch<'a> {
    Long(i64),
    String(&'a str),
    Bytes(&'a [u8]),
    Null,
}

fn append_value(map: &mut MapBuilder<StringBuilder, StructBuilder>, key: &str, value: Branch<'_>) {
    map.keys().append_value(key);
    let v = map.values();
    let (long, string, bytes) = match value {
        Branch::Long(n) => (Some(n), None, None),
        Branch::String(s) => (None, Some(s), None),
        Branch::Bytes(b) => (None, None, Some(b)),
        Branch::Null => (None, None, None),
    };
    // The builders are the ones `value_fields` declares, in that order.
    if let Some(b) = v.field_builder::<Int64Builder>(0) {
        b.append_option(long);
    }
    if let Some(b) = v.field_builder::<Float64Builder>(1) {
        b.append_null();
    }
    if let Some(b) = v.field_builder::<StringBuilder>(2) {
        b.append_option(string);
    }
    if let Some(b) = v.field_builder::<BinaryBuilder>(3) {
        b.append_option(bytes);
    }
    v.append(!matches!(value, Branch::Null));
}

impl Rows {
    fn new() -> Self {
        Rows {
            seq: Int64Builder::new(),
            offset: StringBuilder::new(),
            enqueued: StringBuilder::new(),
            time: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            system: map_builder(),
            properties: map_builder(),
            body: BinaryBuilder::new(),
            rows: 0,
            bytes: 0,
        }
    }

    fn push(&mut self, e: &Event, raw: usize) -> Result<(), EncodeError> {
        self.seq.append_value(e.offset);
        self.offset.append_value(e.offset.to_string());
        self.enqueued.append_value(e.enqueued_time_utc());
        self.time.append_option(e.timestamp_ms);
        if let Some(key) = &e.key {
            let branch = std::str::from_utf8(key).map_or(Branch::Bytes(key), Branch::String);
            append_value(&mut self.system, PARTITION_KEY_KEY, branch);
        }
        if let Some(ms) = e.timestamp_ms {
            append_value(&mut self.system, ENQUEUED_TIME_KEY, Branch::Long(ms));
        }
        self.system.append(true)?;
        for h in &e.headers {
            let branch = h.value.as_deref().map_or(Branch::Null, Branch::Bytes);
            append_value(&mut self.properties, &h.key, branch);
        }
        self.properties.append(true)?;
        self.body.append_option(e.value.as_deref());
        self.rows += 1;
        self.bytes += raw;
        Ok(())
    }

    fn take_batch(&mut self, schema: &SchemaRef) -> Result<RecordBatch, EncodeError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.seq.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.enqueued.finish()),
            Arc::new(self.time.finish()),
            Arc::new(self.system.finish()),
            Arc::new(self.properties.finish()),
            Arc::new(self.body.finish()),
        ];
        self.rows = 0;
        self.bytes = 0;
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// One Parquet file being written.
pub struct ParquetFile {
    schema: SchemaRef,
    writer: ArrowWriter<Vec<u8>>,
    rows: Rows,
    records: u64,
    raw: usize,
    /// Raw bytes collected before a batch goes to the writer: small against the row group, so
    /// row groups come out near their target size.
    batch_bytes: usize,
}

impl ParquetFile {
    pub fn new(compression: ParquetCompression, row_group_bytes: usize) -> Self {
        let schema = schema();
        let mut props = WriterProperties::builder()
            .set_compression(compression.codec())
            .set_dictionary_enabled(false);
        // Dictionaries only where values repeat: header and property names, the partition key
        // (a user id, say) and the second-resolution time text. On unique values (offsets,
        // bodies, ids) a dictionary costs a few MiB per open file, then falls back anyway.
        for column in [
            "SystemProperties.key_value.key",
            "SystemProperties.key_value.value.string",
            "Properties.key_value.key",
            "EnqueuedTimeUtc",
        ] {
            let path: Vec<String> = column.split('.').map(str::to_string).collect();
            props = props.set_column_dictionary_enabled(ColumnPath::new(path), true);
        }
        let props = props
            // Row groups are cut by their estimated encoded size, not by row count.
            .set_max_row_group_row_count(None)
            .set_max_row_group_bytes(Some(row_group_bytes.max(1)))
            .set_created_by(format!("hubcap {}", env!("CARGO_PKG_VERSION")))
            .build();
        // A Vec sink and a schema built by the same code cannot fail to open.
        let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props))
            .unwrap_or_else(|e| unreachable!("parquet writer on a Vec: {e}"));
        ParquetFile {
            schema,
            writer,
            rows: Rows::new(),
            records: 0,
            raw: 0,
            batch_bytes: (row_group_bytes / 4).clamp(1, BATCH_BYTES),
        }
    }

    fn write_rows(&mut self) -> Result<(), EncodeError> {
        if self.rows.rows == 0 {
            return Ok(());
        }
        let batch = self.rows.take_batch(&self.schema)?;
        self.writer.write(&batch)?;
        Ok(())
    }
}

/// The bytes a record takes before encoding, to decide about the size window before it is added.
fn raw_size(e: &Event) -> usize {
    let headers: usize = e
        .headers
        .iter()
        .map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len) + 8)
        .sum();
    64 + e.key.as_ref().map_or(0, Vec::len) + headers + e.value.as_ref().map_or(0, Vec::len)
}

impl FileEncoder for ParquetFile {
    fn prepare(&mut self, e: &Event) -> usize {
        self.raw = raw_size(e);
        self.raw
    }

    fn push_prepared(&mut self, e: &Event) -> Result<(), EncodeError> {
        self.rows.push(e, self.raw)?;
        self.records += 1;
        if self.rows.rows >= BATCH_ROWS || self.rows.bytes >= self.batch_bytes {
            self.write_rows()?;
        }
        Ok(())
    }

    fn size_with(&self, extra: usize) -> u64 {
        self.writer.bytes_written() as u64
            + self.writer.in_progress_size() as u64
            + (self.rows.bytes + extra) as u64
            + FOOTER_BASE
            + FOOTER_PER_ROW_GROUP * (self.writer.flushed_row_groups().len() as u64 + 1)
    }

    fn records(&self) -> u64 {
        self.records
    }

    fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(self.writer.inner_mut())
    }

    fn output_len(&self) -> usize {
        self.writer.inner().len()
    }

    fn finish(mut self: Box<Self>) -> Result<(Vec<u8>, u64), EncodeError> {
        self.write_rows()?;
        self.writer.finish()?;
        let total = self.writer.bytes_written() as u64;
        Ok((std::mem::take(self.writer.inner_mut()), total))
    }
}

#[cfg(test)]
mod tests;
