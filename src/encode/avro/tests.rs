use super::*;
use crate::record::{Event, Header};
use apache_avro::types::Value;
use proptest::prelude::*;

fn samples() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/capture-samples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|d| d.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "avro"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 4, "expected the four real Capture samples");
    files
}

fn event(offset: i64) -> Event {
    Event {
        offset,
        timestamp_ms: Some(1_667_324_167_168),
        key: Some(b"user-1".to_vec()),
        headers: vec![
            Header {
                key: "h1".into(),
                value: Some(vec![0xff, 0x00]),
            },
            Header {
                key: "h2".into(),
                value: None,
            },
        ],
        value: Some(br#"{"a":1}"#.to_vec()),
    }
}

#[test]
fn schema_file_is_the_compact_capture_string() {
    assert_eq!(CAPTURE_SCHEMA.len(), 438);
    assert!(!CAPTURE_SCHEMA.ends_with('\n'));
    apache_avro::Schema::parse_str(CAPTURE_SCHEMA).expect("schema parses");
}

#[test]
fn header_equals_real_capture_files_byte_for_byte() {
    let (ours, len) = AvroFile::new(Codec::Null, [7; 16], 1 << 20).finish();
    assert_eq!(len, 508, "an empty Capture file is 508 bytes");
    assert_eq!(ours.len(), 508);
    for path in samples() {
        let real = std::fs::read(&path).unwrap();
        // Header = 474 bytes of magic, metadata and end-of-map, then the 16-byte sync marker.
        assert_eq!(&ours[..474], &real[..474], "{}", path.display());
    }
}

#[test]
fn empty_file_is_header_plus_one_empty_block() {
    let (bytes, _) = AvroFile::new(Codec::Null, [9; 16], 1 << 20).finish();
    assert_eq!(&bytes[474..490], &[9; 16]);
    assert_eq!(&bytes[490..492], &[0, 0], "zero records, zero bytes");
    assert_eq!(&bytes[492..], &[9; 16]);
    let reader = apache_avro::Reader::new(&bytes[..]).unwrap();
    assert_eq!(reader.count(), 0);
}

fn to_value(e: &Event) -> Value {
    let long = |n| Value::Union(0, Box::new(Value::Long(n)));
    let mut sys = std::collections::HashMap::new();
    if let Some(k) = &e.key {
        let v = match std::str::from_utf8(k) {
            Ok(s) => Value::Union(2, Box::new(Value::String(s.into()))),
            Err(_) => Value::Union(3, Box::new(Value::Bytes(k.clone()))),
        };
        sys.insert("x-opt-partition-key".to_string(), v);
    }
    if let Some(ms) = e.timestamp_ms {
        sys.insert("x-opt-enqueued-time".to_string(), long(ms));
    }
    let props = e
        .headers
        .iter()
        .map(|h| {
            let v = match &h.value {
                Some(b) => Value::Union(3, Box::new(Value::Bytes(b.clone()))),
                None => Value::Union(4, Box::new(Value::Null)),
            };
            (h.key.clone(), v)
        })
        .collect();
    let body = match &e.value {
        Some(b) => Value::Union(1, Box::new(Value::Bytes(b.clone()))),
        None => Value::Union(0, Box::new(Value::Null)),
    };
    Value::Record(vec![
        ("SequenceNumber".into(), Value::Long(e.offset)),
        ("Offset".into(), Value::String(e.offset.to_string())),
        (
            "EnqueuedTimeUtc".into(),
            Value::String(e.enqueued_time_utc()),
        ),
        ("SystemProperties".into(), Value::Map(sys)),
        ("Properties".into(), Value::Map(props)),
        ("Body".into(), body),
    ])
}

fn arb_event() -> impl Strategy<Value = Event> {
    (
        any::<i64>(),
        proptest::option::of(-100_000_000_000_000i64..100_000_000_000_000),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        // Unique keys: apache-avro's map Value is a HashMap, so duplicates cannot round-trip there.
        proptest::collection::btree_map(
            "[a-z]{1,8}",
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            0..5,
        ),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
    )
        .prop_map(|(offset, timestamp_ms, key, headers, value)| Event {
            offset,
            timestamp_ms,
            key,
            headers: headers
                .into_iter()
                .map(|(key, value)| Header { key, value })
                .collect(),
            value,
        })
}

proptest! {
    /// The direct encoder and apache-avro's generic encoder produce the same bytes.
    #[test]
    fn direct_encoding_equals_apache_avro(e in arb_event()) {
        let schema = apache_avro::Schema::parse_str(CAPTURE_SCHEMA).unwrap();
        let mut ours = Vec::new();
        RecordEncoder::default().encode(&e.record(), &mut ours);
        let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&schema).build().unwrap();
        let reference = writer.write_value_to_vec(to_value(&e)).unwrap();
        // Map entry order is not fixed in apache-avro's HashMap, so compare decoded values when
        // a map has more than one entry, and bytes otherwise.
        let reader = apache_avro::reader::datum::GenericDatumReader::builder(&schema).build().unwrap();
        let decoded = reader.read_value(&mut &ours[..]).unwrap();
        prop_assert_eq!(decoded, to_value(&e));
        if e.headers.len() <= 1 && !(e.key.is_some() && e.timestamp_ms.is_some()) {
            prop_assert_eq!(ours, reference);
        } else {
            prop_assert_eq!(ours.len(), reference.len());
        }
    }

    /// Files with many blocks, in both codecs, read back record for record.
    #[test]
    fn files_round_trip_through_apache_avro(
        events in proptest::collection::vec(arb_event(), 0..60),
        deflate in any::<bool>(),
        block_target in 1usize..2000,
    ) {
        let codec = if deflate { Codec::Deflate } else { Codec::Null };
        let mut file = AvroFile::new(codec, sync_marker("t", 3, 0), block_target);
        let mut enc = RecordEncoder::default();
        let mut bytes = Vec::new();
        let mut buf = Vec::new();
        for e in &events {
            buf.clear();
            enc.encode(&e.record(), &mut buf);
            file.append_encoded(&buf);
            bytes.extend(file.take_output());
        }
        let (rest, total) = file.finish();
        bytes.extend(rest);
        prop_assert_eq!(total, bytes.len() as u64);
        let read: Vec<Value> = apache_avro::Reader::new(&bytes[..]).unwrap().map(|r| r.unwrap()).collect();
        let expected: Vec<Value> = events.iter().map(to_value).collect();
        prop_assert_eq!(read, expected);
    }
}

#[test]
fn size_estimate_never_undercounts() {
    for codec in [Codec::Null, Codec::Deflate] {
        let mut file = AvroFile::new(codec, [1; 16], 4096);
        let mut enc = RecordEncoder::default();
        let mut buf = Vec::new();
        for i in 0..1000 {
            buf.clear();
            enc.encode(&event(i).record(), &mut buf);
            let before = file.size_with(buf.len());
            file.append_encoded(&buf);
            assert!(file.size_with(0) <= before);
            file.take_output();
        }
        let estimate = file.size_with(0);
        let (_, total) = file.finish();
        assert!(total <= estimate, "{codec:?}: {total} > {estimate}");
    }
}

#[test]
fn sync_marker_is_deterministic_and_distinct() {
    assert_eq!(sync_marker("t", 0, 5), sync_marker("t", 0, 5));
    assert_ne!(sync_marker("t", 0, 5), sync_marker("t", 0, 6));
    assert_ne!(sync_marker("t", 0, 5), sync_marker("t", 1, 5));
    assert_ne!(sync_marker("t", 0, 5), sync_marker("u", 0, 5));
}

#[test]
fn decimal_formats_all_longs() {
    let mut buf = [0u8; 20];
    for n in [0, 1, -1, 42, i64::MAX, i64::MIN, 1_000_000] {
        assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
    }
}

proptest! {
    /// The data path's way: each record encoded into the open block when prepared; some
    /// prepared records are then dropped (the caller closed the file before them), by the
    /// next prepare or the file's end. Blocks leave one by one, with the header in the first.
    #[test]
    fn prepared_records_not_added_are_left_out(
        events in proptest::collection::vec(arb_event(), 0..40),
        dropped in proptest::collection::vec(any::<bool>(), 40),
        deflate in any::<bool>(),
        block_target in 1usize..600,
    ) {
        let codec = if deflate { Codec::Deflate } else { Codec::Null };
        let mut file = AvroEncoder::new(codec, sync_marker("t", 1, 0), block_target);
        let mut bytes = Vec::new();
        let mut kept = Vec::new();
        for (e, drop) in events.iter().zip(&dropped) {
            let size = file.prepare(&e.record());
            let mut alone = Vec::new();
            RecordEncoder::default().encode(&e.record(), &mut alone);
            prop_assert_eq!(size, alone.len());
            if !drop {
                file.push_prepared(&e.record()).unwrap();
                kept.push(to_value(e));
            }
            let out = file.take_output();
            prop_assert_eq!(file.output_len(), 0);
            bytes.extend_from_slice(&out);
        }
        let estimate = file.size_with(0);
        let (rest, total) = Box::new(file).finish().unwrap();
        bytes.extend_from_slice(&rest);
        prop_assert_eq!(total, bytes.len() as u64);
        prop_assert!(total <= estimate);
        let read: Vec<Value> = apache_avro::Reader::new(&bytes[..]).unwrap().map(|r| r.unwrap()).collect();
        prop_assert_eq!(read, kept);
    }
}
