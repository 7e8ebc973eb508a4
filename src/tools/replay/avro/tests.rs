//! The decoder against files apache-avro writes (every type, both codecs, several blocks) and
//! against bytes laid out by hand (maps in blocks with repeated keys, damaged files).

use apache_avro::types::Value as AvroValue;
use apache_avro::{Codec as AvroCodec, DeflateSettings, Schema as AvroSchema, Writer};

use super::*;

const EVERY_TYPE: &str = r#"{"type":"record","name":"R","fields":[
    {"name":"b","type":"boolean"},
    {"name":"i","type":"int"},
    {"name":"l","type":"long"},
    {"name":"f","type":"float"},
    {"name":"d","type":"double"},
    {"name":"s","type":"string"},
    {"name":"by","type":"bytes"},
    {"name":"n","type":"null"},
    {"name":"u","type":["null","string","long"]},
    {"name":"a","type":{"type":"array","items":"int"}},
    {"name":"m","type":{"type":"map","values":["long","bytes","null"]}},
    {"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}},
    {"name":"nested","type":{"type":"record","name":"N","fields":[{"name":"x","type":{"type":"int"}}]}}
]}"#;

/// Record `i` of the every-type file, as apache-avro writes it and as this reader returns it.
fn every_type(i: i32) -> (AvroValue, Value) {
    let union = match i % 3 {
        0 => (AvroValue::Union(0, Box::new(AvroValue::Null)), Value::Null),
        1 => (
            AvroValue::Union(1, Box::new(AvroValue::String(format!("s{i}")))),
            Value::String(format!("s{i}")),
        ),
        _ => (
            AvroValue::Union(2, Box::new(AvroValue::Long(-i64::from(i)))),
            Value::Long(-i64::from(i)),
        ),
    };
    // One entry: apache-avro's map is a HashMap, whose order is its own.
    let map_value = AvroValue::Union(1, Box::new(AvroValue::Bytes(vec![i as u8, 0xff])));
    let avro = AvroValue::Record(vec![
        ("b".into(), AvroValue::Boolean(i % 2 == 0)),
        ("i".into(), AvroValue::Int(-i)),
        ("l".into(), AvroValue::Long(i64::MIN + i64::from(i))),
        ("f".into(), AvroValue::Float(i as f32 + 0.5)),
        ("d".into(), AvroValue::Double(-(i as f64) / 3.0)),
        ("s".into(), AvroValue::String("é".repeat(i as usize))),
        ("by".into(), AvroValue::Bytes(vec![0, 0xff, i as u8])),
        ("n".into(), AvroValue::Null),
        ("u".into(), union.0),
        (
            "a".into(),
            AvroValue::Array((0..i).map(AvroValue::Int).collect()),
        ),
        (
            "m".into(),
            AvroValue::Map([("k".to_string(), map_value)].into()),
        ),
        ("t".into(), AvroValue::TimestampMillis(1_667_324_167_168)),
        (
            "nested".into(),
            AvroValue::Record(vec![("x".into(), AvroValue::Int(i))]),
        ),
    ]);
    let field = |name: &str, value| (Arc::from(name), value);
    let ours = Value::Record(vec![
        field("b", Value::Boolean(i % 2 == 0)),
        field("i", Value::Int(-i)),
        field("l", Value::Long(i64::MIN + i64::from(i))),
        field("f", Value::Float(i as f32 + 0.5)),
        field("d", Value::Double(-(i as f64) / 3.0)),
        field("s", Value::String("é".repeat(i as usize))),
        field("by", Value::Bytes(vec![0, 0xff, i as u8])),
        field("n", Value::Null),
        field("u", union.1),
        field("a", Value::Array((0..i).map(Value::Int).collect())),
        field(
            "m",
            Value::Map(vec![("k".into(), Value::Bytes(vec![i as u8, 0xff]))]),
        ),
        field("t", Value::Long(1_667_324_167_168)),
        field("nested", Value::Record(vec![field("x", Value::Int(i))])),
    ]);
    (avro, ours)
}

#[test]
fn reads_every_type_apache_avro_writes_with_both_codecs_across_blocks() {
    let schema = AvroSchema::parse_str(EVERY_TYPE).unwrap();
    for codec in [
        AvroCodec::Null,
        AvroCodec::Deflate(DeflateSettings::default()),
    ] {
        let mut writer = Writer::with_codec(&schema, Vec::new(), codec).unwrap();
        let mut expected = Vec::new();
        for i in 0..7 {
            let (avro, ours) = every_type(i);
            writer.append_value(avro).unwrap();
            expected.push(ours);
            // Blocks of 1, 2 and 4 records.
            if [0, 2, 6].contains(&i) {
                writer.flush().unwrap();
            }
        }
        let file = writer.into_inner().unwrap();
        let read: Vec<Value> = Reader::new(&file)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read, expected, "{codec:?}");
    }
}

/// Avro's zig-zag varint.
fn put_long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

const SYNC: [u8; 16] = *b"0123456789abcdef";

/// A container file laid out by hand: its header, then each block as (count, data).
fn container(schema: &str, codec: &str, blocks: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut file = b"Obj\x01".to_vec();
    put_long(&mut file, 2);
    put_bytes(&mut file, b"avro.schema");
    put_bytes(&mut file, schema.as_bytes());
    put_bytes(&mut file, b"avro.codec");
    put_bytes(&mut file, codec.as_bytes());
    put_long(&mut file, 0);
    file.extend_from_slice(&SYNC);
    for (count, data) in blocks {
        put_long(&mut file, *count);
        put_bytes(&mut file, data);
        file.extend_from_slice(&SYNC);
    }
    file
}

fn read_all(file: &[u8]) -> Result<Vec<Value>, AvroError> {
    Reader::new(file)?.collect()
}

#[test]
fn maps_keep_file_order_and_repeated_keys_across_their_blocks() {
    // One record: a map written in two blocks, the first with a negative count and its size,
    // a key repeated across them.
    let mut entries = Vec::new();
    put_bytes(&mut entries, b"b");
    put_long(&mut entries, 1);
    put_bytes(&mut entries, b"a");
    put_long(&mut entries, 2);
    let mut record = Vec::new();
    put_long(&mut record, -2);
    put_long(&mut record, entries.len() as i64);
    record.extend_from_slice(&entries);
    put_long(&mut record, 1);
    put_bytes(&mut record, b"b");
    put_long(&mut record, 3);
    put_long(&mut record, 0);
    let file = container(r#"{"type":"map","values":"long"}"#, "null", &[(1, record)]);
    let expected = Value::Map(vec![
        ("b".into(), Value::Long(1)),
        ("a".into(), Value::Long(2)),
        ("b".into(), Value::Long(3)),
    ]);
    assert_eq!(read_all(&file).unwrap(), [expected]);
}

#[test]
fn empty_blocks_and_files_hold_no_records() {
    // Capture's empty file: the header and one block of no records.
    let file = container(r#""long""#, "null", &[(0, vec![])]);
    assert_eq!(read_all(&file).unwrap(), []);
    // An empty block between two others.
    let file = container(
        r#""long""#,
        "null",
        &[(1, vec![2]), (0, vec![]), (1, vec![4])],
    );
    assert_eq!(read_all(&file).unwrap(), [Value::Long(1), Value::Long(2)]);
    // No codec in the header is codec null.
    let mut file = b"Obj\x01".to_vec();
    put_long(&mut file, 1);
    put_bytes(&mut file, b"avro.schema");
    put_bytes(&mut file, br#""int""#);
    put_long(&mut file, 0);
    file.extend_from_slice(&SYNC);
    assert_eq!(read_all(&file).unwrap(), []);
}

#[test]
fn damaged_files_and_unsupported_schemas_are_errors_that_say_where() {
    let long = r#""long""#;
    let err = |file: &[u8]| read_all(file).unwrap_err().to_string();
    assert!(matches!(read_all(b"PAR1...."), Err(AvroError::NotAvro)));
    assert!(err(&container(long, "snappy", &[])).contains("codec \"snappy\""));
    let enum_schema = r#"{"type":"enum","name":"E","symbols":["A"]}"#;
    assert!(err(&container(enum_schema, "null", &[])).contains("uses the type enum"));
    let named = r#"{"type":"record","name":"R","fields":[{"name":"x","type":"Other"}]}"#;
    assert!(err(&container(named, "null", &[])).contains("named type \"Other\""));
    assert!(matches!(
        read_all(&container("{not json", "null", &[])),
        Err(AvroError::SchemaJson(_))
    ));

    // A block cut short, or with another sync marker.
    let file = container(long, "null", &[(1, vec![2]), (1, vec![4])]);
    let cut = &file[..file.len() - 3];
    let e = read_all(cut).unwrap_err();
    assert!(matches!(e, AvroError::Block { block: 1, .. }), "{e}");
    let mut resynced = file.clone();
    let end = resynced.len();
    resynced[end - 1] ^= 1;
    let e = read_all(&resynced).unwrap_err();
    assert!(matches!(e, AvroError::Sync { block: 1, .. }), "{e}");
    // The records before the damage come out first.
    let mut reader = Reader::new(&resynced).unwrap();
    assert_eq!(reader.next().unwrap().unwrap(), Value::Long(1));
    assert!(reader.next().unwrap().is_err());
    assert!(reader.next().is_none(), "nothing after an error");

    // A union branch that does not exist; a count larger than the block; bytes left over.
    let union = container(r#"["null","long"]"#, "null", &[(1, vec![4, 2])]);
    assert!(
        err(&union).contains("union branch 2 of a union of 2"),
        "{}",
        err(&union)
    );
    let counted = container(long, "null", &[(5, vec![2, 4])]);
    assert!(err(&counted).contains("a count of 5 items with 2 bytes left"));
    let trailing = container(long, "null", &[(1, vec![2, 4])]);
    assert!(err(&trailing).contains("holds 1 bytes after its 1 records"));
    // A deflate block that is not deflate.
    let bad = container(long, "deflate", &[(1, vec![0xff; 8])]);
    assert!(matches!(read_all(&bad), Err(AvroError::Inflate { .. })));
}
