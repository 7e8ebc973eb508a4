//! The replay source against hubcap's own files (round trips in both formats), real Event Hubs
//! Capture files (checked against apache-avro's reading of them), archives in a store (layouts,
//! order, skipped folders, tables) and the selection's ranges.

use std::sync::Arc;

use apache_avro::types::Value as AvroValue;
use object_store::ObjectStoreExt;

use super::source::*;
use crate::encode::avro::Codec;
use crate::encode::format::Format;
use crate::encode::parquet::ParquetCompression;
use crate::layout::{NameParts, PathTemplate, DEFAULT_TEMPLATE};
use crate::record::{format_enqueued_time, Event, Header};
use crate::state::table::TABLE_TEMPLATE;
use crate::store::Location;

const COURSELABS_13: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/capture-samples/courselabs-azure__labs-eventhubs-consumers__13.avro"
);
const METERED_16_50: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/capture-samples/metered-billing-accelerator__p9--2022-12-09--16-50-12.avro"
);
const METERED_17_10: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/capture-samples/metered-billing-accelerator__p9--2022-12-09--17-10-12.avro"
);
const USQL_EHC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/capture-samples/azure-usql__EHC.avro"
);

const AVRO: Format = Format::Avro {
    codec: Codec::Null,
    // Tiny blocks: a file of several blocks.
    block_target: 64,
};
const AVRO_DEFLATE: Format = Format::Avro {
    codec: Codec::Deflate,
    block_target: 200,
};
const PARQUET: Format = Format::Parquet {
    compression: ParquetCompression::Zstd,
    // Several row groups.
    row_group_bytes: 300,
};

fn header(key: &str, value: Option<&[u8]>) -> Header {
    Header {
        key: key.into(),
        value: value.map(<[u8]>::to_vec),
    }
}

/// Events with everything a Kafka record can be: tombstones, empty values and keys, keys that
/// are not UTF-8, no key, headers without values, repeated header names, no timestamp, times
/// with milliseconds (which `EnqueuedTimeUtc` drops).
fn events() -> Vec<Event> {
    let t = 1_667_324_167_168;
    let event = |offset, timestamp_ms, key: Option<&[u8]>, headers, value: Option<&[u8]>| Event {
        offset,
        timestamp_ms,
        key: key.map(<[u8]>::to_vec),
        headers,
        value: value.map(<[u8]>::to_vec),
    };
    vec![
        event(
            100,
            Some(t),
            Some(b"user-1"),
            vec![
                header("h", Some(&[1, 2])),
                header("empty", None),
                header("h", Some(b"again")),
                header("h", None),
            ],
            Some(br#"{"event":"track"}"#),
        ),
        event(101, None, Some(&[0xff, 0x01]), vec![], Some(&[0xc3, 0x28])),
        event(102, Some(t + 1), None, vec![], None),
        event(
            103,
            Some(t + 3_600_001),
            Some(b""),
            vec![header("", Some(b""))],
            Some(b""),
        ),
        event(
            105,
            Some(0),
            None,
            vec![header("dup", None), header("dup", None)],
            None,
        ),
        event(106, Some(t - 999), Some(b"k"), vec![], Some(&[0; 300])),
    ]
}

/// A file of `events` as hubcap writes it.
fn encode(format: Format, partition: i32, events: &[Event]) -> Vec<u8> {
    let mut file = format.create("clicks", partition, events[0].offset);
    let mut bytes = Vec::new();
    for e in events {
        file.prepare(&e.record());
        file.push_prepared(&e.record()).unwrap();
        bytes.extend(file.take_output());
    }
    bytes.extend(file.finish().unwrap().0);
    bytes
}

/// The name `template` gives a file of `topic`/`partition` starting at `first_offset`.
fn name(template: &str, format: Format, topic: &str, partition: i32, first_offset: i64) -> String {
    PathTemplate::parse(template, format.extension())
        .unwrap()
        .render(&NameParts {
            namespace: "ns",
            topic,
            partition,
            first_offset,
            time: chrono::DateTime::from_timestamp_millis(1_767_323_045_000).unwrap(),
        })
}

fn memory(name: &str) -> Location {
    Location::open(&format!("memory:///{name}"), "test").unwrap()
}

async fn put(root: &Location, name: &str, bytes: impl Into<Vec<u8>>) {
    let data: Vec<u8> = bytes.into();
    root.store.put(&root.path(name), data.into()).await.unwrap();
}

fn everything() -> Selection {
    Selection::default()
}

#[tokio::test]
async fn hubcap_files_read_back_as_the_events_written() {
    let root = memory("round-trip");
    let events = events();
    for (partition, format) in [(0, AVRO), (1, AVRO_DEFLATE), (2, PARQUET)] {
        let file = name(DEFAULT_TEMPLATE, format, "clicks", partition, 100);
        put(&root, &file, encode(format, partition, &events)).await;
    }
    // The tables' layout, Parquet only, is tried without --path-format too.
    let table_name = name(TABLE_TEMPLATE, PARQUET, "clicks", 3, 100);
    put(&root, &table_name, encode(PARQUET, 3, &events)).await;

    let files = list(&root, None, &everything()).await.unwrap();
    let formats: Vec<_> = files.iter().map(|f| (f.partition, f.format)).collect();
    assert_eq!(
        formats,
        [
            (0, SourceFormat::Avro),
            (1, SourceFormat::Avro),
            (2, SourceFormat::Parquet),
            (3, SourceFormat::Parquet)
        ]
    );
    for file in &files {
        assert_eq!(file.topic, "clicks");
        assert_eq!(file.first_offset, Some(100));
        let read = read(&root, file, &everything()).await.unwrap();
        assert_eq!(read, events, "{}", file.name);
    }
}

#[tokio::test]
async fn parquet_timestamps_in_milliseconds_read_as_in_microseconds() {
    use arrow_array::{ArrayRef, RecordBatch, TimestampMillisecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    // hubcap's file with its EnqueuedTime column in milliseconds, as older files had it. The
    // column comes before x-opt-enqueued-time: read in the wrong unit, the times would differ.
    let events = events();
    let written = encode(PARQUET, 0, &events);
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(written),
    )
    .unwrap()
    .build()
    .unwrap();
    let mut writer = None;
    let mut row = 0;
    for batch in reader {
        let batch = batch.unwrap();
        let millis: TimestampMillisecondArray = events[row..row + batch.num_rows()]
            .iter()
            .map(|e| e.timestamp_ms)
            .collect::<TimestampMillisecondArray>()
            .with_timezone("UTC");
        row += batch.num_rows();
        let (fields, columns): (Vec<Field>, Vec<ArrayRef>) = batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(field, column)| match field.name().as_str() {
                "EnqueuedTime" => {
                    let unit = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
                    let column: ArrayRef = Arc::new(millis.clone());
                    (Field::new("EnqueuedTime", unit, true), column)
                }
                _ => (field.as_ref().clone(), column.clone()),
            })
            .unzip();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        writer
            .get_or_insert_with(|| {
                parquet::arrow::ArrowWriter::try_new(Vec::new(), batch.schema(), None).unwrap()
            })
            .write(&batch)
            .unwrap();
    }
    let older = writer.unwrap().into_inner().unwrap();
    assert_eq!(row, events.len());

    let root = memory("millis");
    put(
        &root,
        &name(DEFAULT_TEMPLATE, PARQUET, "clicks", 0, 100),
        older,
    )
    .await;
    let files = list(&root, None, &everything()).await.unwrap();
    assert_eq!(read(&root, &files[0], &everything()).await.unwrap(), events);
}

/// What apache-avro reads in a real Capture file, record by record, held to the events `read`
/// gives: the mapping of the module docs, checked by an independent reader.
fn assert_maps_like_apache_avro(sample: &[u8], events: &[Event]) {
    let records: Vec<AvroValue> = apache_avro::Reader::new(sample)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(records.len(), events.len());
    for (record, event) in records.into_iter().zip(events) {
        let AvroValue::Record(fields) = record else {
            panic!("not a record")
        };
        let field = |name: &str| match fields.iter().find(|(k, _)| k == name).map(|(_, v)| v) {
            Some(AvroValue::Union(_, inner)) => (**inner).clone(),
            Some(v) => v.clone(),
            None => panic!("no {name}"),
        };
        let map = |name: &str| match field(name) {
            AvroValue::Map(m) => m,
            other => panic!("{name}: {other:?}"),
        };
        let unwrap = |v: &AvroValue| match v {
            AvroValue::Union(_, inner) => (**inner).clone(),
            other => other.clone(),
        };
        assert_eq!(field("SequenceNumber"), AvroValue::Long(event.offset));
        let AvroValue::Bytes(body) = field("Body") else {
            panic!("every sampled body is bytes")
        };
        assert_eq!(event.value.as_deref(), Some(body.as_slice()));
        let system = map("SystemProperties");
        let key = system.get("x-opt-partition-key").map(|v| match unwrap(v) {
            AvroValue::String(s) => s.into_bytes(),
            other => panic!("{other:?}"),
        });
        assert_eq!(event.key, key);
        match system.get("x-opt-enqueued-time").map(unwrap) {
            Some(AvroValue::Long(ms)) => assert_eq!(event.timestamp_ms, Some(ms)),
            _ => assert_eq!(
                AvroValue::String(event.enqueued_time_utc()),
                field("EnqueuedTimeUtc")
            ),
        }
        let properties = map("Properties");
        assert_eq!(event.headers.len(), properties.len());
        for (key, value) in properties {
            let bytes = match unwrap(&value) {
                AvroValue::String(s) => Some(s.into_bytes()),
                AvroValue::Long(n) => Some(n.to_be_bytes().to_vec()),
                AvroValue::Double(x) => Some(x.to_be_bytes().to_vec()),
                AvroValue::Bytes(b) => Some(b),
                AvroValue::Null => None,
                other => panic!("{other:?}"),
            };
            assert!(event.headers.contains(&Header { key, value: bytes }));
        }
    }
}

fn offsets(events: &[Event]) -> Vec<i64> {
    events.iter().map(|e| e.offset).collect()
}

#[tokio::test]
async fn real_capture_files_in_its_native_layout() {
    let root = memory("capture-native");
    let courselabs = std::fs::read(COURSELABS_13).unwrap();
    let usql = std::fs::read(USQL_EHC).unwrap();
    put(
        &root,
        "courselabs/hub/0/2022/11/01/17/36/07.avro",
        courselabs.clone(),
    )
    .await;
    put(&root, "usql/ehc/1/2018/12/07/10/22/49.avro", usql.clone()).await;

    let files = list(&root, None, &everything()).await.unwrap();
    let listed: Vec<_> = files
        .iter()
        .map(|f| (f.topic.as_str(), f.partition, f.first_offset, f.size))
        .collect();
    assert_eq!(
        listed,
        [("ehc", 1, None, 70_323), ("hub", 0, None, 376_151)]
    );

    let ehc = read(&root, &files[0], &everything()).await.unwrap();
    assert_eq!(offsets(&ehc), (4141..=4817).collect::<Vec<_>>());
    assert_maps_like_apache_avro(&usql, &ehc);
    // No x-opt-enqueued-time in 2018: the time is EnqueuedTimeUtc's, whole seconds.
    let first = &ehc[0];
    assert_eq!(
        first.time().unwrap().to_rfc3339(),
        "2018-12-07T10:22:49+00:00"
    );
    assert_eq!(first.key, None);
    assert_eq!(first.value.as_deref(), Some(&b"Message 1"[..]));
    // Application properties: a string as UTF-8, a long as Java's LongSerializer writes it.
    let mut headers = first.headers.clone();
    headers.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(
        headers,
        [
            header("GUID", Some(b"2f5f92bc-8cef-45fe-a59e-26a623b0bc53")),
            header("RandomInt", Some(&566i64.to_be_bytes())),
        ]
    );

    let hub = read(&root, &files[1], &everything()).await.unwrap();
    assert_eq!(offsets(&hub), (1000..=2999).collect::<Vec<_>>());
    assert_eq!(hub[0].timestamp_ms, Some(1_667_324_167_168));
    assert!(hub.iter().all(|e| e.key.is_none() && e.headers.is_empty()));
    assert_maps_like_apache_avro(&courselabs, &hub);
    assert_eq!(
        format_enqueued_time(hub[1999].time().unwrap()),
        "11/1/2022 5:43:40 PM"
    );
}

#[tokio::test]
async fn real_capture_files_in_a_custom_layout() {
    const METERING: &str =
        "{Namespace}/{EventHub}/p{PartitionId}--{Year}-{Month}-{Day}--{Hour}-{Minute}-{Second}";
    let root = memory("capture-custom");
    let early = std::fs::read(METERED_16_50).unwrap();
    let late = std::fs::read(METERED_17_10).unwrap();
    // Partitions in numeric order (as text, `p10` sorts before `p9`), each one's files in
    // time order.
    put(
        &root,
        "ns/metering/p9--2022-12-09--17-10-12.avro",
        late.clone(),
    )
    .await;
    put(
        &root,
        "ns/metering/p9--2022-12-09--16-50-12.avro",
        early.clone(),
    )
    .await;
    put(
        &root,
        "ns/metering/p10--2022-12-09--16-50-12.avro",
        early.clone(),
    )
    .await;

    let none = list(&root, None, &everything()).await.unwrap_err();
    assert!(
        matches!(none, SourceError::NoneFit { files: 3, .. }),
        "{none}"
    );

    let files = list(&root, Some(METERING), &everything()).await.unwrap();
    let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ns/metering/p9--2022-12-09--16-50-12.avro",
            "ns/metering/p9--2022-12-09--17-10-12.avro",
            "ns/metering/p10--2022-12-09--16-50-12.avro",
        ]
    );
    let first = read(&root, &files[0], &everything()).await.unwrap();
    assert_eq!(offsets(&first), [1]);
    assert_eq!(
        first[0].key.as_deref(),
        Some(&b"d8b14c3c-fcfa-4bf4-d034-be8c3f3ecab5"[..])
    );
    assert_eq!(first[0].timestamp_ms, Some(1_670_604_685_193));
    assert_maps_like_apache_avro(&early, &first);
    let second = read(&root, &files[1], &everything()).await.unwrap();
    assert_eq!(offsets(&second), (4..=23).collect::<Vec<_>>());
    assert!(second.iter().all(|e| e.key.is_some()));
    assert_maps_like_apache_avro(&late, &second);
}

mod listing;

/// `stream` with chunks far smaller than a file: the same events as the whole file, in order,
/// in several chunks, the last one marked, the file's bytes counted once.
#[tokio::test]
async fn files_stream_in_chunks_as_they_read_whole() {
    let root = memory("chunks");
    let many: Vec<Event> = (0..3000)
        .map(|i| Event {
            offset: 500 + i,
            timestamp_ms: Some(1_767_323_045_000 + i),
            key: Some(format!("key-{}", i % 7).into_bytes()),
            headers: vec![header("n", Some(&i.to_be_bytes()))],
            value: Some(vec![b'x'; 200 + (i as usize % 50)]),
        })
        .collect();
    for (partition, format) in [(0, AVRO), (1, AVRO_DEFLATE), (2, PARQUET)] {
        let file = name(DEFAULT_TEMPLATE, format, "clicks", partition, 500);
        put(&root, &file, encode(format, partition, &many)).await;
    }
    let files = list(&root, None, &everything()).await.unwrap();
    let limits = ReadLimits {
        chunk: 16 << 10,
        row_group: 16 << 20,
        memory_limit: 128 << 20,
    };
    let mut chunks = stream(root.clone(), files.clone(), everything(), limits);
    let mut got: Vec<Vec<Event>> = vec![Vec::new(); files.len()];
    let (mut count, mut read) = (vec![0; files.len()], vec![0; files.len()]);
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk.unwrap();
        count[chunk.file] += 1;
        read[chunk.file] += chunk.read;
        let done = got[chunk.file].len() + chunk.events.len() == many.len();
        assert!(!chunk.last || done, "the last chunk ends the file");
        got[chunk.file].extend(chunk.events);
    }
    for (i, file) in files.iter().enumerate() {
        assert_eq!(got[i], many, "{}", file.name);
        assert!(count[i] > 3, "{}: {} chunks", file.name, count[i]);
        assert_eq!(read[i], file.size, "{}", file.name);
    }
}

/// A Parquet row group larger than the budget holds is refused, naming the budget that reads it.
#[tokio::test]
async fn a_parquet_row_group_over_the_budget_names_the_memory_limit_that_reads_it() {
    let root = memory("too-large");
    let file = name(DEFAULT_TEMPLATE, PARQUET, "clicks", 0, 100);
    put(&root, &file, encode(PARQUET, 0, &events())).await;
    let files = list(&root, None, &everything()).await.unwrap();
    let limits = ReadLimits {
        chunk: 1 << 10,
        row_group: 100,
        memory_limit: 800,
    };
    let mut chunks = stream(root.clone(), files, everything(), limits);
    let err = chunks.recv().await.unwrap().unwrap_err().to_string();
    assert!(
        err.contains("row group 0") && err.contains("--memory-limit"),
        "{err}"
    );
    assert!(chunks.recv().await.is_none(), "nothing after the error");
}

/// A file cut short, in its header or in a block, is an error naming it when streamed too, after
/// the events of its whole blocks.
#[tokio::test]
async fn a_file_cut_short_streams_to_an_error_that_names_it() {
    let root = memory("cut");
    let many: Vec<Event> = (0..2000)
        .map(|i| Event {
            offset: i,
            timestamp_ms: Some(1_767_323_045_000),
            key: None,
            headers: vec![],
            value: Some(vec![b'v'; 300]),
        })
        .collect();
    let whole = encode(AVRO, 0, &many);
    for cut in [10, whole.len() - 100] {
        let file = name(DEFAULT_TEMPLATE, AVRO, "clicks", 0, cut as i64);
        put(&root, &file, whole[..cut].to_vec()).await;
        let files: Vec<_> = list(&root, None, &everything())
            .await
            .unwrap()
            .into_iter()
            .filter(|f| f.name == file)
            .collect();
        let limits = ReadLimits {
            chunk: 16 << 10,
            row_group: 16 << 20,
            memory_limit: 128 << 20,
        };
        let mut chunks = stream(root.clone(), files, everything(), limits);
        let mut err = None;
        while let Some(chunk) = chunks.recv().await {
            if let Err(e) = chunk {
                err = Some(e.to_string());
            }
        }
        let err = err.unwrap_or_else(|| panic!("cut at {cut}: no error"));
        assert!(err.contains(&file), "cut at {cut}: {err}");
    }
}
