//! The Parquet encoder: the Capture columns, plus a real timestamp.
//!
//! | column             | type                                                        |
//! |--------------------|-------------------------------------------------------------|
//! | `SequenceNumber`   | int64                                                       |
//! | `Offset`           | string                                                      |
//! | `EnqueuedTimeUtc`  | string, Capture's `M/d/yyyy h:mm:ss tt`                     |
//! | `EnqueuedTime`     | timestamp(µs, UTC), null when the record has no timestamp   |
//! | `SystemProperties` | map<string, struct<long int64, double float64, string string, bytes binary>> |
//! | `Properties`       | the same map type; a null value is Capture's `null` branch  |
//! | `Body`             | binary, null for a tombstone                                |
//!
//! Parquet has no unions, so each map value is a struct with one field per Avro union branch;
//! exactly one field is set (the branch), which DuckDB, pyarrow and Spark read natively and
//! which keeps every value type. Rows collect in arrow builders until they hold `row_group_bytes`
//! of raw record bytes, then go to the writer as one row group, encoded and compressed at once:
//! an open file holds its builders and no column writers (whose pages, statistics and zstd
//! contexts cost a few MiB per file), so many open files fit a small memory budget.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, Float64Builder, Int64Builder, MapBuilder, MapFieldNames, StringBuilder,
    StructBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::encode::avro::decimal;
use crate::encode::{EncodeError, FileEncoder};
use crate::record::{EnqueuedTimeText, Record, ENQUEUED_TIME_KEY, PARTITION_KEY_KEY};

/// Room kept for the footer when estimating a file's size: a base, plus per row group (column
/// chunk metadata and statistics of 15 leaf columns).
const FOOTER_BASE: u64 = 2 << 10;
const FOOTER_PER_ROW_GROUP: u64 = 4 << 10;

/// How a leaf column is written when it is not plain and compressed.
enum Column {
    /// Values repeat: a dictionary, whose indices need no compression; its values may.
    Dictionary { compressed: bool },
    /// Values ascend: delta-encoded, which leaves nothing to compress.
    Delta(Encoding),
    /// Text that ascends: delta-encoded, which leaves a digit or two per value; compressed only
    /// in row groups of at least [`COMPRESSED_TEXT_FROM`] (it makes a file 3–6 % smaller, and
    /// costs its codec's contexts per column chunk).
    AscendingText,
    /// Almost always null: only levels, which need no compression.
    Uncompressed,
}

/// Leaf columns that are not plain and compressed. Those that carry the payload are: the
/// partition key as text, header values and `Body`. Each compressed column chunk costs its
/// codec's contexts (zstd queries the CPU's features on each, a trap to the hypervisor on a
/// VM), and a row group of 256 partitions under the default budget is a few hundred KiB: with
/// all 15 columns compressed, creating contexts took a sixth of the CPU; with five (`Offset`
/// and a key that is not text too), a tenth. A key that is not text is mostly random bytes.
const COLUMNS: &[(&str, Column)] = &[
    (
        "SequenceNumber",
        Column::Delta(Encoding::DELTA_BINARY_PACKED),
    ),
    ("Offset", Column::AscendingText),
    ("EnqueuedTimeUtc", Column::Dictionary { compressed: false }),
    ("EnqueuedTime", Column::Delta(Encoding::DELTA_BINARY_PACKED)),
    (
        "SystemProperties.key_value.key",
        Column::Dictionary { compressed: false },
    ),
    // The partition key (a user or device id, say) as text: the values repeat, and are payload.
    (
        "SystemProperties.key_value.value.string",
        Column::Dictionary { compressed: true },
    ),
    // x-opt-enqueued-time, the one long system property.
    (
        "SystemProperties.key_value.value.long",
        Column::Delta(Encoding::DELTA_BINARY_PACKED),
    ),
    (
        "SystemProperties.key_value.value.double",
        Column::Uncompressed,
    ),
    (
        "SystemProperties.key_value.value.bytes",
        Column::Dictionary { compressed: false },
    ),
    (
        "Properties.key_value.key",
        Column::Dictionary { compressed: false },
    ),
    ("Properties.key_value.value.long", Column::Uncompressed),
    ("Properties.key_value.value.double", Column::Uncompressed),
    ("Properties.key_value.value.string", Column::Uncompressed),
];

/// The row group size from which [`Column::AscendingText`] is compressed: smaller ones come
/// from many files sharing the memory budget, where context setup is what limits the speed.
const COMPRESSED_TEXT_FROM: usize = 1 << 20;

/// Columns of payload bytes, which get no statistics.
const UNSORTED_PAYLOAD: &[&str] = &[
    "SystemProperties.key_value.value.bytes",
    "Properties.key_value.value.bytes",
    "Body",
];

/// A leaf column's path from its dotted name.
fn column_path(name: &str) -> ColumnPath {
    ColumnPath::new(name.split('.').map(str::to_string).collect())
}

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
        // Microseconds, though Kafka's timestamps are milliseconds: Iceberg stores a
        // `timestamptz` as microseconds in Parquet (and Delta's `TIMESTAMP` is microseconds),
        // so the same files serve every table format and readers need no cast.
        Field::new(
            "EnqueuedTime",
            DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("UTC".into())),
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
    time: TimestampMicrosecondBuilder,
    system: MapBuilder<StringBuilder, StructBuilder>,
    properties: MapBuilder<StringBuilder, StructBuilder>,
    body: BinaryBuilder,
    rows: usize,
    bytes: usize,
    time_text: EnqueuedTimeText,
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
            time: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            system: map_builder(),
            properties: map_builder(),
            body: BinaryBuilder::new(),
            rows: 0,
            bytes: 0,
            time_text: EnqueuedTimeText::default(),
        }
    }

    fn push(&mut self, r: &Record<'_>, raw: usize) -> Result<(), EncodeError> {
        self.seq.append_value(r.offset);
        let mut digits = [0u8; 20];
        // Digits and '-' are UTF-8.
        self.offset
            .append_value(std::str::from_utf8(decimal(r.offset, &mut digits)).unwrap_or_default());
        self.enqueued
            .append_value(self.time_text.of(r.timestamp_ms));
        self.time
            .append_option(r.timestamp_ms.map(|ms| ms.saturating_mul(1000)));
        if let Some(key) = r.key {
            let branch = std::str::from_utf8(key).map_or(Branch::Bytes(key), Branch::String);
            append_value(&mut self.system, PARTITION_KEY_KEY, branch);
        }
        if let Some(ms) = r.timestamp_ms {
            append_value(&mut self.system, ENQUEUED_TIME_KEY, Branch::Long(ms));
        }
        self.system.append(true)?;
        for (name, value) in r.headers.iter() {
            let branch = value.map_or(Branch::Null, Branch::Bytes);
            append_value(&mut self.properties, &name, branch);
        }
        self.properties.append(true)?;
        self.body.append_option(r.value);
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
    /// Raw bytes of rows that make a row group.
    row_group_bytes: usize,
}

impl ParquetFile {
    pub fn new(compression: ParquetCompression, row_group_bytes: usize) -> Self {
        let schema = schema();
        let mut props = WriterProperties::builder()
            .set_compression(compression.codec())
            .set_dictionary_enabled(false);
        for (column, setting) in COLUMNS {
            let path = column_path(column);
            props = match setting {
                Column::Dictionary { compressed: true } => {
                    props.set_column_dictionary_enabled(path, true)
                }
                Column::Dictionary { compressed: false } => props
                    .set_column_dictionary_enabled(path.clone(), true)
                    .set_column_compression(path, Compression::UNCOMPRESSED),
                Column::Delta(encoding) => props
                    .set_column_encoding(path.clone(), *encoding)
                    .set_column_compression(path, Compression::UNCOMPRESSED),
                Column::AscendingText => {
                    let props = props.set_column_encoding(path.clone(), Encoding::DELTA_BYTE_ARRAY);
                    if row_group_bytes >= COMPRESSED_TEXT_FROM {
                        props
                    } else {
                        props.set_column_compression(path, Compression::UNCOMPRESSED)
                    }
                }
                Column::Uncompressed => {
                    props.set_column_compression(path, Compression::UNCOMPRESSED)
                }
            };
        }
        // Nobody filters on payload bytes: their minimum and maximum cost a comparison per
        // value and footer room per row group.
        for column in UNSORTED_PAYLOAD {
            props =
                props.set_column_statistics_enabled(column_path(column), EnabledStatistics::None);
        }
        let props = props
            // Row groups are cut here, by raw size: one batch, then a flush.
            .set_max_row_group_row_count(None)
            .set_max_row_group_bytes(None)
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
            row_group_bytes: row_group_bytes.max(1),
        }
    }

    /// Writes the rows collected as one row group.
    fn write_rows(&mut self) -> Result<(), EncodeError> {
        if self.rows.rows == 0 {
            return Ok(());
        }
        let batch = self.rows.take_batch(&self.schema)?;
        self.writer.write(&batch)?;
        self.writer.flush()?;
        Ok(())
    }
}

/// The bytes a record takes before encoding, to decide about the size window before it is added.
fn raw_size(r: &Record<'_>) -> usize {
    let headers: usize = r
        .headers
        .iter()
        .map(|(name, value)| name.len() + value.map_or(0, <[u8]>::len) + 8)
        .sum();
    64 + r.key.map_or(0, <[u8]>::len) + headers + r.value.map_or(0, <[u8]>::len)
}

impl FileEncoder for ParquetFile {
    fn prepare(&mut self, r: &Record<'_>) -> usize {
        self.raw = raw_size(r);
        self.raw
    }

    fn push_prepared(&mut self, r: &Record<'_>) -> Result<(), EncodeError> {
        self.rows.push(r, self.raw)?;
        self.records += 1;
        if self.rows.bytes >= self.row_group_bytes {
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

    fn take_output(&mut self) -> Bytes {
        Bytes::from(std::mem::take(self.writer.inner_mut()))
    }

    fn output_len(&self) -> usize {
        self.writer.inner().len()
    }

    fn held_bytes(&self) -> usize {
        self.writer.memory_size() + self.writer.inner().capacity() + self.rows.bytes
    }

    fn finish(mut self: Box<Self>) -> Result<(Bytes, u64), EncodeError> {
        self.write_rows()?;
        self.writer.finish()?;
        let total = self.writer.bytes_written() as u64;
        Ok((Bytes::from(std::mem::take(self.writer.inner_mut())), total))
    }
}

#[cfg(test)]
mod tests;
