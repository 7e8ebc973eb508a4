use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::Array;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;
use crate::record::{Event, Header};

fn event(offset: i64) -> Event {
    Event {
        offset,
        timestamp_ms: (offset % 7 != 3).then_some(1_667_324_167_168 + offset),
        key: match offset % 3 {
            0 => None,
            1 => Some(format!("user-{offset}").into_bytes()),
            _ => Some(vec![0xff, offset as u8]),
        },
        headers: vec![
            Header {
                key: "h".into(),
                value: Some(vec![1, 2, offset as u8]),
            },
            Header {
                key: "empty".into(),
                value: None,
            },
        ],
        value: (offset % 5 != 0).then(|| format!("body {offset}").into_bytes()),
    }
}

fn write(events: &[Event], row_group_bytes: usize) -> (Vec<u8>, u64) {
    let mut f: Box<dyn FileEncoder> =
        Box::new(ParquetFile::new(ParquetCompression::Zstd, row_group_bytes));
    let mut out = Vec::new();
    for e in events {
        let n = f.prepare(&e.record());
        assert!(n > 0);
        f.push_prepared(&e.record()).unwrap();
        out.extend(f.take_output());
    }
    let estimate = f.size_with(0);
    let (rest, total) = f.finish().unwrap();
    out.extend(rest);
    assert_eq!(total, out.len() as u64);
    assert!(total <= estimate, "estimate {estimate} under {total}");
    (out, total)
}

fn read(bytes: Vec<u8>) -> (Vec<RecordBatch>, usize) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes)).unwrap();
    let row_groups = builder.metadata().num_row_groups();
    (
        builder.build().unwrap().map(|b| b.unwrap()).collect(),
        row_groups,
    )
}

#[test]
fn columns_round_trip() {
    let events: Vec<Event> = (0..100).map(event).collect();
    let (bytes, _) = write(&events, 8 << 20);
    let (batches, _) = read(bytes);
    let batch = arrow_select_concat(&batches);
    assert_eq!(batch.schema(), schema());
    assert_eq!(batch.num_rows(), 100);
    let seq = batch.column(0).as_primitive::<Int64Type>();
    let offset = batch.column(1).as_string::<i32>();
    let enq = batch.column(2).as_string::<i32>();
    let time = batch.column(3).as_primitive::<TimestampMicrosecondType>();
    let sys = batch.column(4).as_map();
    let props = batch.column(5).as_map();
    let body = batch.column(6).as_binary::<i32>();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(seq.value(i), e.offset);
        assert_eq!(offset.value(i), e.offset.to_string());
        assert_eq!(enq.value(i), e.enqueued_time_utc());
        assert_eq!(time.is_null(i), e.timestamp_ms.is_none());
        if let Some(ms) = e.timestamp_ms {
            assert_eq!(time.value(i), ms * 1000);
        }
        assert_eq!(body.is_null(i), e.value.is_none());
        if let Some(v) = &e.value {
            assert_eq!(body.value(i), v.as_slice());
        }
        // SystemProperties: the key (string or bytes branch), then the enqueue time (long).
        let entries = sys.value(i);
        let keys = entries.column(0).as_string::<i32>();
        let values = entries.column(1).as_struct();
        let mut j = 0;
        if let Some(k) = &e.key {
            assert_eq!(keys.value(j), "x-opt-partition-key");
            match std::str::from_utf8(k) {
                Ok(s) => assert_eq!(values.column(2).as_string::<i32>().value(j), s),
                Err(_) => assert_eq!(values.column(3).as_binary::<i32>().value(j), k.as_slice()),
            }
            j += 1;
        }
        if let Some(ms) = e.timestamp_ms {
            assert_eq!(keys.value(j), "x-opt-enqueued-time");
            assert_eq!(values.column(0).as_primitive::<Int64Type>().value(j), ms);
            j += 1;
        }
        assert_eq!(keys.len(), j);
        // Properties: bytes branch, and a null value for a header without one.
        let entries = props.value(i);
        let values = entries.column(1).as_struct();
        assert_eq!(entries.column(0).as_string::<i32>().value(0), "h");
        assert_eq!(
            values.column(3).as_binary::<i32>().value(0),
            &[1, 2, e.offset as u8]
        );
        assert_eq!(entries.column(0).as_string::<i32>().value(1), "empty");
        assert!(
            values.is_null(1),
            "a header without value is a null map value"
        );
    }
}

fn arrow_select_concat(batches: &[RecordBatch]) -> RecordBatch {
    assert_eq!(batches.len(), 1, "small test files read back as one batch");
    batches[0].clone()
}

#[test]
fn row_groups_are_cut_by_size_and_stream_out() {
    let events: Vec<Event> = (0..20_000).map(event).collect();
    let mut f = ParquetFile::new(ParquetCompression::None, 64 << 10);
    let mut streamed = 0;
    for e in &events {
        f.prepare(&e.record());
        f.push_prepared(&e.record()).unwrap();
        streamed += f.take_output().len();
    }
    assert!(streamed > 0, "row groups leave before the file closes");
    let (rest, total) = Box::new(f).finish().unwrap();
    assert_eq!(streamed + rest.len(), total as usize);
    let mut all = Vec::new();
    // Re-encode for reading: the streamed bytes were dropped above, so write again in one piece.
    let (bytes, _) = write(&events, 64 << 10);
    all.extend(bytes);
    let (batches, row_groups) = read(all);
    assert!(row_groups > 3, "{row_groups} row groups");
    assert_eq!(
        batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
        20_000
    );
}

#[test]
fn empty_file_is_valid() {
    let (bytes, _) = write(&[], 1 << 20);
    let (batches, _) = read(bytes);
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
}

#[test]
fn dictionaries_only_on_columns_whose_values_repeat() {
    let events: Vec<Event> = (0..500).map(event).collect();
    let (bytes, _) = write(&events, 1 << 20);
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes)).unwrap();
    let rg = builder.metadata().row_group(0);
    let dictionary: Vec<String> = rg
        .columns()
        .iter()
        .filter(|c| c.dictionary_page_offset().is_some())
        .map(|c| c.column_path().string())
        .collect();
    assert_eq!(
        dictionary,
        [
            "EnqueuedTimeUtc",
            "SystemProperties.key_value.key",
            "SystemProperties.key_value.value.string",
            "SystemProperties.key_value.value.bytes",
            "Properties.key_value.key",
        ],
        "unique values (offsets, bodies, header values) take no dictionary; keys, text or not, do"
    );
}

#[test]
fn only_payload_columns_are_compressed_and_ascending_ones_delta_encoded() {
    let events: Vec<Event> = (0..500).map(event).collect();
    let (bytes, _) = write(&events, 1 << 20);
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes)).unwrap();
    let rg = builder.metadata().row_group(0);
    let columns = |pick: &dyn Fn(&parquet::file::metadata::ColumnChunkMetaData) -> bool| {
        rg.columns()
            .iter()
            .filter(|c| pick(c))
            .map(|c| c.column_path().string())
            .collect::<Vec<_>>()
    };
    assert_eq!(rg.num_columns(), 15);
    assert_eq!(
        columns(&|c| c.compression() != Compression::UNCOMPRESSED),
        [
            "Offset",
            "SystemProperties.key_value.value.string",
            "Properties.key_value.value.bytes",
            "Body",
        ]
    );
    assert_eq!(
        columns(&|c| c.encodings().any(|e| e == Encoding::DELTA_BYTE_ARRAY)),
        ["Offset"],
        "ascending decimal text shares its prefix with the previous value"
    );
    assert_eq!(
        columns(&|c| c.statistics().is_none()),
        [
            "SystemProperties.key_value.value.bytes",
            "Properties.key_value.value.bytes",
            "Body",
        ],
        "payload bytes get no minimum and maximum"
    );
    assert_eq!(
        columns(&|c| c.encodings().any(|e| e == Encoding::DELTA_BINARY_PACKED)),
        [
            "SequenceNumber",
            "EnqueuedTime",
            "SystemProperties.key_value.value.long",
        ]
    );
}

#[test]
fn offsets_are_compressed_only_in_row_groups_of_a_mib() {
    let events: Vec<Event> = (0..2000).map(event).collect();
    let offset_codec = |row_group_bytes| {
        let (bytes, _) = write(&events, row_group_bytes);
        let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes)).unwrap();
        let rg = builder.metadata().row_group(0);
        let offset = rg
            .columns()
            .iter()
            .find(|c| c.column_path().string() == "Offset");
        offset.unwrap().compression()
    };
    assert_eq!(offset_codec(256 << 10), Compression::UNCOMPRESSED);
    assert!(matches!(offset_codec(1 << 20), Compression::ZSTD(_)));
}
