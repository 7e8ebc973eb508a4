use std::collections::BTreeMap;
use std::path::Path as FsPath;

use object_store::memory::InMemory;
use object_store::PutPayload;
use serde_json::json;

use super::*;
use crate::encode::avro::Codec;
use crate::encode::format::Format;
use crate::encode::parquet::ParquetCompression;
use crate::record::{Event, Header};

mod samples;
mod watermarks;

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

fn args(target: &str, limit: Option<u64>, stats: bool) -> InspectArgs {
    InspectArgs {
        target: target.to_string(),
        limit,
        stats,
        watermarks: false,
        catalog: Default::default(),
    }
}

/// Runs inspect and returns the raw output and what it reported.
async fn run_raw(
    target: &str,
    limit: Option<u64>,
    stats: bool,
) -> Result<(String, InspectTotals), InspectError> {
    let mut out = Vec::new();
    let totals = inspect(&args(target, limit, stats), &mut out).await?;
    Ok((String::from_utf8(out).expect("JSON is UTF-8"), totals))
}

fn parse_lines(raw: &str) -> Vec<Json> {
    raw.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

async fn run(target: &str, limit: Option<u64>, stats: bool) -> (Vec<Json>, InspectTotals) {
    let (raw, totals) = run_raw(target, limit, stats).await.unwrap();
    (parse_lines(&raw), totals)
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap()
}

/// Copies samples into a tree, with decoys that must be skipped.
fn sample_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let put = |rel: &str, from: &str| {
        let to = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    };
    put("b/ehc.avro", USQL_EHC);
    put("a/x/13.avro", COURSELABS_13);
    // Readable files that are not records by location or name.
    put("_checkpoints/g/t/0.avro", METERED_16_50);
    put("a/_manifests/m.avro", METERED_16_50);
    put("a/13.avro.bak", COURSELABS_13);
    std::fs::write(dir.path().join("notes.txt"), "not a capture file").unwrap();
    dir
}

#[tokio::test]
async fn directory_lists_record_files_sorted_and_skips_the_rest() {
    let dir = sample_tree();
    let target = dir.path().to_str().unwrap();
    let (lines, totals) = run(target, None, true).await;
    let files: Vec<&Json> = lines.iter().map(|l| &l["file"]).collect();
    assert_eq!(
        files,
        [&json!("a/x/13.avro"), &json!("b/ehc.avro"), &Json::Null]
    );
    assert_eq!(lines[0]["records"], 2000);
    assert_eq!(lines[1]["records"], 677);
    assert_eq!(
        lines[2],
        json!({"total": true, "files": 2, "records": 2677, "bytes": 376_151 + 70_323})
    );
    assert_eq!(
        totals,
        InspectTotals {
            files: 2,
            records: 2677,
            bytes: 376_151 + 70_323
        }
    );

    // The same directory as a file:// URL, and a file in it as a file:// URL.
    let url = url::Url::from_directory_path(dir.path()).unwrap();
    let (by_url, _) = run(url.as_str(), None, true).await;
    assert_eq!(by_url, lines);
    let file_url = url.join("b/ehc.avro").unwrap();
    // A name that object paths percent-encode, and a relative path.
    std::fs::copy(USQL_EHC, dir.path().join("b/a copy #1.avro")).unwrap();
    let (spaced, _) = run(
        dir.path().join("b/a copy #1.avro").to_str().unwrap(),
        None,
        true,
    )
    .await;
    assert_eq!(spaced[0]["records"], 677);
    // Unit tests run in the package root.
    let (rel, _) = run("../shared/capture-samples/azure-usql__EHC.avro", None, true).await;
    assert_eq!(rel[0]["records"], 677);
    let (one, _) = run(file_url.as_str(), None, true).await;
    assert_eq!(one[0]["file"], "ehc.avro");
    assert_eq!(one[0]["records"], 677);
}

#[tokio::test]
async fn limit_counts_records_across_files() {
    let dir = sample_tree();
    let target = dir.path().to_str().unwrap();
    let (lines, totals) = run(target, Some(2003), false).await;
    assert_eq!(lines.len(), 2003);
    assert_eq!(
        totals,
        InspectTotals {
            files: 2,
            records: 2003,
            bytes: 376_151 + 70_323
        }
    );
    let tail: Vec<(&Json, &Json)> = lines[1999..]
        .iter()
        .map(|l| (&l["file"], &l["SequenceNumber"]))
        .collect();
    assert_eq!(
        tail,
        [
            (&json!("a/x/13.avro"), &json!(2999)),
            (&json!("b/ehc.avro"), &json!(4141)),
            (&json!("b/ehc.avro"), &json!(4142)),
            (&json!("b/ehc.avro"), &json!(4143)),
        ]
    );

    // With --stats the limit bounds what is summarized; a file past it is not opened.
    let (stats, totals) = run(target, Some(1500), true).await;
    assert_eq!(stats.len(), 2, "{stats:?}");
    assert_eq!(stats[0]["records"], 1500);
    assert_eq!(stats[0]["last_sequence_number"], 2499);
    assert_eq!(totals.files, 1);
    let (none, totals) = run(target, Some(0), false).await;
    assert!(none.is_empty());
    assert_eq!(totals, InspectTotals::default());
}

fn events() -> Vec<Event> {
    let t = 1_667_324_167_168;
    vec![
        Event {
            offset: 5,
            timestamp_ms: Some(t),
            key: Some(b"user-1".to_vec()),
            headers: vec![
                Header {
                    key: "h".into(),
                    value: Some(vec![1, 2]),
                },
                Header {
                    key: "empty".into(),
                    value: None,
                },
                Header {
                    key: "text".into(),
                    value: Some(b"hi".to_vec()),
                },
            ],
            value: Some(br#"{"event":"track"}"#.to_vec()),
        },
        Event {
            offset: 6,
            timestamp_ms: None,
            key: Some(vec![0xff, 0x01]),
            headers: vec![],
            value: Some(vec![0xc3, 0x28]),
        },
        Event {
            offset: 7,
            timestamp_ms: Some(t + 3_600_000),
            key: None,
            headers: vec![],
            value: None,
        },
        Event {
            offset: 8,
            timestamp_ms: Some(t + 3_600_001),
            key: None,
            headers: vec![Header {
                key: "empty".into(),
                value: None,
            }],
            value: Some(vec![]),
        },
    ]
}

/// What inspect must print for [`events`], without the `file` field.
fn expected() -> Vec<Json> {
    vec![
        json!({
            "SequenceNumber": 5, "Offset": "5", "EnqueuedTimeUtc": "11/1/2022 5:36:07 PM",
            "SystemProperties": {"x-opt-partition-key": "user-1", "x-opt-enqueued-time": 1_667_324_167_168_i64},
            "Properties": {"h": {"bytes": "0102"}, "empty": null, "text": {"bytes": "6869"}},
            "Body": "{\"event\":\"track\"}",
        }),
        json!({
            "SequenceNumber": 6, "Offset": "6", "EnqueuedTimeUtc": "",
            "SystemProperties": {"x-opt-partition-key": {"bytes": "ff01"}},
            "Properties": {},
            "Body": {"bytes": "c328"},
        }),
        json!({
            "SequenceNumber": 7, "Offset": "7", "EnqueuedTimeUtc": "11/1/2022 6:36:07 PM",
            "SystemProperties": {"x-opt-enqueued-time": 1_667_327_767_168_i64},
            "Properties": {},
            "Body": null,
        }),
        json!({
            "SequenceNumber": 8, "Offset": "8", "EnqueuedTimeUtc": "11/1/2022 6:36:07 PM",
            "SystemProperties": {"x-opt-enqueued-time": 1_667_327_767_169_i64},
            "Properties": {"empty": null},
            "Body": "",
        }),
    ]
}

fn encode(format: Format, events: &[Event]) -> Vec<u8> {
    let mut file = format.create("clicks", 0, events[0].offset);
    let mut bytes = Vec::new();
    for e in events {
        file.prepare(&e.record());
        file.push_prepared(&e.record()).unwrap();
        bytes.extend(file.take_output());
    }
    let (rest, total) = file.finish().unwrap();
    bytes.extend(rest);
    assert_eq!(total, bytes.len() as u64);
    bytes
}

const AVRO: Format = Format::Avro {
    codec: Codec::Null,
    // Tiny blocks: a file of several blocks.
    block_target: 64,
};
const AVRO_DEFLATE: Format = Format::Avro {
    codec: Codec::Deflate,
    block_target: 1 << 20,
};
const PARQUET: Format = Format::Parquet {
    compression: ParquetCompression::Zstd,
    row_group_bytes: 1 << 20,
};

fn write(dir: &FsPath, rel: &str, bytes: &[u8]) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn avro_and_parquet_print_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let events = events();
    write(dir.path(), "ns/clicks/0/a.avro", &encode(AVRO, &events));
    write(
        dir.path(),
        "ns/clicks/0/b.avro",
        &encode(AVRO_DEFLATE, &events),
    );
    write(
        dir.path(),
        "ns/clicks/0/c.parquet",
        &encode(PARQUET, &events),
    );

    let (raw, totals) = run_raw(dir.path().to_str().unwrap(), None, false)
        .await
        .unwrap();
    assert_eq!(totals.files, 3);
    assert_eq!(totals.records, 12);
    let mut by_file: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    for mut line in parse_lines(&raw) {
        let file = line["file"].as_str().unwrap().to_string();
        line.as_object_mut().unwrap().remove("file");
        by_file.entry(file).or_default().push(line);
    }
    assert_eq!(
        by_file.keys().collect::<Vec<_>>(),
        [
            "ns/clicks/0/a.avro",
            "ns/clicks/0/b.avro",
            "ns/clicks/0/c.parquet"
        ]
    );
    for (file, records) in &by_file {
        assert_eq!(records, &expected(), "{file}");
    }
    // Map entries print sorted by key in both formats, not in header order.
    for file in by_file.keys() {
        let first = raw.lines().find(|l| l.contains(file.as_str())).unwrap();
        assert!(
            first.contains(r#""Properties":{"empty":null,"h":{"bytes":"0102"},"text":"#),
            "{first}"
        );
    }
}

#[tokio::test]
async fn stats_of_own_files_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = events();
    // Out of order on purpose: first/last are the lowest and highest SequenceNumber.
    events.swap(0, 3);
    for (name, format) in [("x.avro", AVRO), ("x.parquet", PARQUET)] {
        let bytes = encode(format, &events);
        write(dir.path(), name, &bytes);
        let target = dir.path().join(name);
        let (lines, _) = run(target.to_str().unwrap(), None, true).await;
        assert_eq!(
            lines[0],
            json!({
                "file": name,
                "format": format.name(),
                "bytes": bytes.len(),
                "records": 4,
                "first_sequence_number": 5,
                "last_sequence_number": 8,
                "first_enqueued_time_utc": "11/1/2022 5:36:07 PM",
                "last_enqueued_time_utc": "11/1/2022 6:36:07 PM",
            })
        );
    }
}

async fn run_store(target: &Target, stats: bool) -> Result<Vec<Json>, InspectError> {
    let mut out = Vec::new();
    inspect_target(target, &args(&target.display, None, stats), &mut out).await?;
    Ok(parse_lines(&String::from_utf8(out).unwrap()))
}

#[tokio::test]
async fn object_store_prefix_and_single_objects() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let avro = encode(AVRO, &events());
    let parquet = encode(PARQUET, &events());
    for (path, bytes) in [
        ("archive/ns/hub/0/2026/a.avro", avro.clone()),
        ("archive/ns/hub/1/2026/b.parquet", parquet.clone()),
        ("archive/ns/hub/0/blob", avro.clone()),
        ("archive/_checkpoints/g/hub/0.json", b"{}".to_vec()),
        // Garbage: reading any of these fails the test.
        ("archive/ns/_manifests/m.avro", b"garbage".to_vec()),
        ("archive/ns/readme.txt", b"garbage".to_vec()),
        ("archived/other.avro", b"garbage".to_vec()),
    ] {
        store
            .put(&Path::from(path), PutPayload::from(bytes))
            .await
            .unwrap();
    }
    let target = |path: &str| Target {
        store: store.clone(),
        path: Path::from(path),
        display: format!("memory:///{path}"),
        location: None,
        iceberg: None,
    };

    let lines = run_store(&target("archive"), true).await.unwrap();
    let files: Vec<&Json> = lines.iter().map(|l| &l["file"]).collect();
    assert_eq!(
        files,
        [
            &json!("archive/ns/hub/0/2026/a.avro"),
            &json!("archive/ns/hub/1/2026/b.parquet"),
            &Json::Null
        ]
    );
    assert_eq!(lines[1]["format"], "parquet");

    // A URL that names one object reads just that object.
    let one = run_store(&target("archive/ns/hub/1/2026/b.parquet"), false)
        .await
        .unwrap();
    assert_eq!(one.len(), 4);
    assert!(one
        .iter()
        .all(|l| l["file"] == "archive/ns/hub/1/2026/b.parquet"));

    // Named explicitly, an object without an extension is recognized by its magic bytes.
    let blob = run_store(&target("archive/ns/hub/0/blob"), true)
        .await
        .unwrap();
    assert_eq!(blob[0]["format"], "avro");
    assert_eq!(blob[0]["records"], 4);

    let err = run_store(&target("archive/ns/readme.txt"), false)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, InspectError::UnknownFormat { file } if file == "archive/ns/readme.txt"),
        "{err}"
    );
    // A zero-byte object with objects under it (an ADLS Gen2 directory) is a prefix; alone, it
    // is a file, and an empty file is not Avro.
    store
        .put(&Path::from("archive/ns/hub/1"), PutPayload::default())
        .await
        .unwrap();
    let dir = run_store(&target("archive/ns/hub/1"), true).await.unwrap();
    assert_eq!(dir[0]["file"], "archive/ns/hub/1/2026/b.parquet");
    store
        .put(&Path::from("archive/empty.avro"), PutPayload::default())
        .await
        .unwrap();
    let err = run_store(&target("archive/empty.avro"), false)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, InspectError::Avro { file, .. } if file == "archive/empty.avro"),
        "{err:?}"
    );
    let err = run_store(&target("nothing/here"), false).await.unwrap_err();
    assert!(matches!(err, InspectError::NoFiles { .. }), "{err}");
}

#[tokio::test]
async fn empty_directory_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().to_str().unwrap();
    let err = run_raw(target, None, false).await.unwrap_err();
    assert!(matches!(err, InspectError::NoFiles { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(target), "{msg}");
    assert!(msg.contains("no .avro or .parquet files"), "{msg}");

    // Only skipped files: still nothing to read.
    write(dir.path(), "_checkpoints/g/t/0.avro", b"x");
    write(dir.path(), "notes.txt", b"x");
    let err = run_raw(target, None, false).await.unwrap_err();
    assert!(matches!(err, InspectError::NoFiles { .. }), "{err:?}");
}

#[tokio::test]
async fn missing_path_is_an_error_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir");
    let err = run_raw(missing.to_str().unwrap(), None, false)
        .await
        .unwrap_err();
    assert!(matches!(err, InspectError::NotFound { .. }), "{err:?}");
    assert!(!missing.exists(), "inspect must not create directories");
}

#[tokio::test]
async fn files_that_are_not_capture_files_are_errors_that_name_them() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "notes.txt", b"hello, not avro");
    write(dir.path(), "bad.avro", b"Obj\x01 and then garbage");
    write(dir.path(), "bad.parquet", b"PAR1 and then garbage");
    let schema = apache_avro::Schema::parse_str(
        r#"{"type":"record","name":"Other","fields":[{"name":"a","type":"long"}]}"#,
    )
    .unwrap();
    let mut other = apache_avro::Writer::new(&schema, Vec::new()).unwrap();
    other
        .append_value(AvroValue::Record(vec![("a".into(), AvroValue::Long(1))]))
        .unwrap();
    write(dir.path(), "other.avro", &other.into_inner().unwrap());

    let at = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let err = run_raw(&at("notes.txt"), None, false).await.unwrap_err();
    assert!(
        matches!(&err, InspectError::UnknownFormat { file } if file == "notes.txt"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("neither Avro nor Parquet"),
        "{err}"
    );

    let err = run_raw(&at("bad.avro"), None, false).await.unwrap_err();
    assert!(
        matches!(&err, InspectError::Avro { file, .. } if file == "bad.avro"),
        "{err:?}"
    );
    let err = run_raw(&at("bad.parquet"), None, false).await.unwrap_err();
    assert!(
        matches!(&err, InspectError::Parquet { file, .. } if file == "bad.parquet"),
        "{err:?}"
    );
    let err = run_raw(&at("other.avro"), None, false).await.unwrap_err();
    assert!(
        matches!(
            &err,
            InspectError::Schema { file, field: "SequenceNumber", .. } if file == "other.avro"
        ),
        "{err:?}"
    );
}

/// Accepts `room` bytes, then fails like stdout whose reader has gone.
struct ClosedAfter {
    room: usize,
}

impl Write for ClosedAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.room == 0 {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn closed_output_ends_the_run_quietly() {
    let mut out = ClosedAfter { room: 100 };
    let totals = inspect(&args(COURSELABS_13, None, false), &mut out)
        .await
        .unwrap();
    assert!(totals.records < 2000, "{totals:?}");

    // Any other write error is an error.
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::StorageFull.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let err = inspect(&args(COURSELABS_13, None, false), &mut Full)
        .await
        .unwrap_err();
    assert!(matches!(err, InspectError::Output(_)), "{err:?}");
}

#[test]
fn inspect_can_run_on_a_spawned_task() {
    fn assert_send<T: Send>(_: &T) {}
    let args = args("x", None, false);
    let mut out = Vec::new();
    let fut = inspect(&args, &mut out);
    assert_send(&fut);
}

#[test]
fn value_encodings() {
    assert_eq!(
        bytes_json(&[0x00, 0xff, 0x10, 0xab]),
        json!({"bytes": "00ff10ab"})
    );
    assert_eq!(bytes_json(&[]), json!({"bytes": ""}));
    assert_eq!(body_json("é".as_bytes()), json!("é"));
    assert_eq!(body_json(&[0xe9]), json!({"bytes": "e9"}));
    assert_eq!(float_json(1.5), json!(1.5));
    assert_eq!(float_json(f64::NAN), json!("NaN"));
    assert_eq!(float_json(f64::NEG_INFINITY), json!("-inf"));
}

#[test]
fn format_by_extension_then_magic() {
    let avro = Path::from("a/b.avro");
    let parquet = Path::from("a/b.parquet");
    let other = Path::from("a/b");
    assert_eq!(detect_format(&avro, b"PAR1"), Some(FileFormat::Avro));
    assert_eq!(detect_format(&parquet, b""), Some(FileFormat::Parquet));
    assert_eq!(detect_format(&other, b"Obj\x01..."), Some(FileFormat::Avro));
    assert_eq!(detect_format(&other, b"PAR1..."), Some(FileFormat::Parquet));
    assert_eq!(detect_format(&other, b"Obj\x02"), None);
    assert_eq!(detect_format(&other, b""), None);
}

#[test]
fn record_files_by_extension_and_location() {
    let root = Path::from("");
    let under = |p: &str, prefix: &Path| is_record_file(&Path::from(p), prefix);
    assert!(under("ns/hub/0/x.avro", &root));
    assert!(under("ns/hub/0/x.parquet", &root));
    assert!(!under("ns/hub/0/x.avro.tmp", &root));
    assert!(!under("ns/hub/0/x.jsonl", &root));
    assert!(!under("_checkpoints/g/t/0.avro", &root));
    assert!(!under("ns/_manifests/x.avro", &root));
    // Pointed into on purpose, a skipped folder is read.
    assert!(under(
        "out/_manifests/x.avro",
        &Path::from("out/_manifests")
    ));
    // A segment merely containing the name is not skipped.
    assert!(under("my_checkpoints/x.avro", &root));
    // A Delta table's log, with its checkpoints in Parquet, is not a record file.
    assert!(!under(
        "hub/_delta_log/00000000000000000100.checkpoint.parquet",
        &root
    ));
    assert!(!under("hub/.hidden/x.avro", &root));
    assert!(under("hub/partition=0/date=2026-12-03/x.parquet", &root));
}

#[tokio::test]
async fn repeated_header_names_print_once_from_avro_and_every_time_from_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let header = |v: &[u8]| Header {
        key: "dup".into(),
        value: Some(v.to_vec()),
    };
    let events = [Event {
        offset: 0,
        timestamp_ms: None,
        key: None,
        headers: vec![header(b"\x01"), header(b"\x02")],
        value: None,
    }];
    write(dir.path(), "x.avro", &encode(AVRO, &events));
    write(dir.path(), "x.parquet", &encode(PARQUET, &events));
    let (raw, _) = run_raw(dir.path().to_str().unwrap(), None, false)
        .await
        .unwrap();
    let lines: Vec<&str> = raw.lines().collect();
    assert!(
        lines[0].contains(r#""Properties":{"dup":{"bytes":"02"}}"#),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(r#""Properties":{"dup":{"bytes":"01"},"dup":{"bytes":"02"}}"#),
        "{}",
        lines[1]
    );
}

#[tokio::test]
async fn empty_files_have_zero_records_and_no_range() {
    let dir = tempfile::tempdir().unwrap();
    for (name, format) in [("e.avro", AVRO), ("e.parquet", PARQUET)] {
        let (bytes, _) = format.create("clicks", 0, 0).finish().unwrap();
        write(dir.path(), name, &bytes);
    }
    let (lines, totals) = run(dir.path().to_str().unwrap(), None, true).await;
    assert_eq!(totals.files, 2);
    assert_eq!(totals.records, 0);
    for line in &lines[..2] {
        assert_eq!(line["records"], 0, "{line}");
        assert_eq!(line["first_sequence_number"], Json::Null, "{line}");
        assert_eq!(line["last_enqueued_time_utc"], Json::Null, "{line}");
    }
    // Capture's empty file: the header plus one empty block.
    assert_eq!(lines[0]["bytes"], 508);
    let (records, _) = run(dir.path().to_str().unwrap(), None, false).await;
    assert!(records.is_empty());
}
