//! Reading the offsets of a record file: every `SequenceNumber`, which must increase. Only what
//! the audit needs is decoded: for Parquet, the `SequenceNumber` column alone.

use apache_avro::types::Value as AvroValue;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::Array;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

/// The offsets seen in one file.
#[derive(Debug, Default)]
pub(super) struct Offsets {
    pub first: Option<i64>,
    pub last: i64,
    pub count: u64,
}

impl Offsets {
    fn push(&mut self, offset: i64) -> Result<(), String> {
        if self.first.is_some() && offset <= self.last {
            return Err(format!(
                "SequenceNumber {offset} follows {}: a file's offsets must increase, so a record is in it twice or out of order",
                self.last
            ));
        }
        self.first.get_or_insert(offset);
        self.last = offset;
        self.count += 1;
        Ok(())
    }
}

pub(super) fn avro_offsets(data: &[u8]) -> Result<Offsets, String> {
    let reader =
        apache_avro::Reader::new(data).map_err(|e| format!("not a readable Avro file: {e}"))?;
    let mut seen = Offsets::default();
    for value in reader {
        let value = value.map_err(|e| format!("Avro record {}: {e}", seen.count))?;
        let offset = avro_sequence_number(&value).ok_or_else(|| {
            format!(
                "Avro record {} has no long SequenceNumber: not a Capture file",
                seen.count
            )
        })?;
        seen.push(offset)?;
    }
    Ok(seen)
}

fn avro_sequence_number(value: &AvroValue) -> Option<i64> {
    let AvroValue::Record(fields) = value else {
        return None;
    };
    let (_, seq) = fields.iter().find(|(name, _)| name == "SequenceNumber")?;
    match seq {
        AvroValue::Long(n) => Some(*n),
        AvroValue::Int(n) => Some(i64::from(*n)),
        _ => None,
    }
}

/// Reads only the `SequenceNumber` column.
pub(super) fn parquet_offsets(data: Bytes) -> Result<Offsets, String> {
    let unreadable = |e: parquet::errors::ParquetError| format!("not a readable Parquet file: {e}");
    let builder = ParquetRecordBatchReaderBuilder::try_new(data).map_err(unreadable)?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), ["SequenceNumber"]);
    let reader = builder.with_projection(mask).build().map_err(unreadable)?;
    let mut seen = Offsets::default();
    for batch in reader {
        let batch = batch.map_err(|e| format!("cannot decode Parquet rows: {e}"))?;
        let column = batch
            .column_by_name("SequenceNumber")
            .and_then(|c| c.as_primitive_opt::<Int64Type>())
            .ok_or("no int64 SequenceNumber column: not a hubcap Parquet file")?;
        for i in 0..column.len() {
            if column.is_null(i) {
                return Err(format!("row {} has a null SequenceNumber", seen.count));
            }
            seen.push(column.value(i))?;
        }
    }
    Ok(seen)
}
