//! The replay source over archives in a store: layouts, order, skipped folders, errors, tables,
//! the selection's ranges, and files it cannot read.

use super::*;

/// A hubcap name under the default template, at a given time of the first record.
fn hubcap_name(topic_folder: &str, partition: i32, time: &str, first_offset: i64) -> String {
    format!("ns/{topic_folder}/{partition}/{time}-{first_offset:020}.avro")
}

/// The listing as (name, topic, partition, first offset).
fn summary(files: &[SourceFile]) -> Vec<(&str, &str, i32, Option<i64>)> {
    files
        .iter()
        .map(|f| {
            (
                f.name.as_str(),
                f.topic.as_str(),
                f.partition,
                f.first_offset,
            )
        })
        .collect()
}

/// An archive of hubcap's files, Capture's own and files that are not the archive's.
async fn archive() -> Location {
    let root = memory("archive");
    let names = [
        // Offset order is not name order: the first record's time leads the name.
        hubcap_name("clicks", 0, "2026/01/02/03/04/05", 0),
        hubcap_name("clicks", 0, "2026/01/01/00/00/00", 10),
        hubcap_name("clicks", 0, "2026/01/03/00/00/00", 5),
        hubcap_name("clicks", 10, "2026/01/01/00/00/00", 0),
        hubcap_name("clicks", 2, "2026/01/01/00/00/00", 7),
        hubcap_name("@_internal", 0, "2026/01/01/00/00/00", 3),
        "ns/views/1/2026/01/01/00/00/00-00000000000000000042.parquet".into(),
        // Capture's native layout: in time order.
        "eh/hub/3/2022/11/01/17/36/07.avro".into(),
        "eh/hub/3/2022/11/01/09/31/07.avro".into(),
        "eh/hub/3/2021/12/31/23/59/59.avro".into(),
    ];
    for (i, name) in names.iter().enumerate() {
        put(&root, name, vec![0; i + 1]).await;
    }
    let strays = [
        // Names that fit a layout, in folders readers and replay skip.
        hubcap_name("clicks", 0, "2026/01/01/00/00/00", 99).replacen("ns/", "_checkpoints/", 1),
        hubcap_name("clicks", 0, "2026/01/01/00/00/00", 99).replacen("ns/", ".tmp/", 1),
        format!(
            "_watermarks/{}",
            hubcap_name("clicks", 0, "2026/01/01/00/00/00", 99)
        ),
        "_manifests/g/clicks/0/2026/01/02/03.jsonl".into(),
        // Names that fit no layout.
        "ns/clicks/0/notes.txt".into(),
        format!("{}.bak", hubcap_name("clicks", 0, "2026/01/02/03/04/05", 0)),
        format!("{}#1", hubcap_name("clicks", 0, "2026/01/02/03/04/05", 0)),
        "ns/clicks/0/2026/01/02/03/04/05-123.avro".into(),
        "eh/hub/3/2022/11/01/17/36/7.avro".into(),
    ];
    for name in strays {
        put(&root, &name, b"x".to_vec()).await;
    }
    root
}

#[tokio::test]
async fn list_finds_each_partitions_files_in_order_and_skips_the_rest() {
    let root = archive().await;
    let files = list(&root, None, &everything()).await.unwrap();
    let clicks = |p, time, offset| (hubcap_name("clicks", p, time, offset), offset);
    let c0 = [
        clicks(0, "2026/01/02/03/04/05", 0),
        clicks(0, "2026/01/03/00/00/00", 5),
        clicks(0, "2026/01/01/00/00/00", 10),
    ];
    let c2 = clicks(2, "2026/01/01/00/00/00", 7);
    let c10 = clicks(10, "2026/01/01/00/00/00", 0);
    let internal = hubcap_name("@_internal", 0, "2026/01/01/00/00/00", 3);
    let views = "ns/views/1/2026/01/01/00/00/00-00000000000000000042.parquet";
    let expected = vec![
        (internal.as_str(), "_internal", 0, Some(3)),
        (c0[0].0.as_str(), "clicks", 0, Some(0)),
        (c0[1].0.as_str(), "clicks", 0, Some(5)),
        (c0[2].0.as_str(), "clicks", 0, Some(10)),
        (c2.0.as_str(), "clicks", 2, Some(7)),
        (c10.0.as_str(), "clicks", 10, Some(0)),
        ("eh/hub/3/2021/12/31/23/59/59.avro", "hub", 3, None),
        ("eh/hub/3/2022/11/01/09/31/07.avro", "hub", 3, None),
        ("eh/hub/3/2022/11/01/17/36/07.avro", "hub", 3, None),
        (views, "views", 1, Some(42)),
    ];
    assert_eq!(summary(&files), expected);
    let views_file = files.iter().find(|f| f.topic == "views").unwrap();
    assert_eq!(
        (views_file.format, views_file.size),
        (SourceFormat::Parquet, 7)
    );

    // The selection's topics and partitions.
    let only = |topics: &[&str], partitions: &[i32]| Selection {
        topics: topics.iter().map(|t| t.to_string()).collect(),
        partitions: partitions.to_vec(),
        ..Selection::default()
    };
    let some = list(&root, None, &only(&["clicks", "hub"], &[0, 3]))
        .await
        .unwrap();
    assert_eq!(summary(&some), [&expected[1..4], &expected[6..9]].concat());
    let none = list(&root, None, &only(&["nope"], &[])).await.unwrap();
    assert!(
        none.is_empty(),
        "a selection that takes nothing is no error"
    );

    // Files that cannot hold the offsets asked for are left out; Capture's own, whose names
    // carry no offset, stay.
    let range = Selection {
        from_offset: Some(6),
        to_offset: Some(9),
        ..Selection::default()
    };
    let ranged = list(&root, None, &range).await.unwrap();
    let names: Vec<&str> = ranged.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            internal.as_str(),
            &c0[1].0,
            &c2.0,
            // Its only file: it may hold any offset from 0 on.
            &c10.0,
            "eh/hub/3/2021/12/31/23/59/59.avro",
            "eh/hub/3/2022/11/01/09/31/07.avro",
            "eh/hub/3/2022/11/01/17/36/07.avro",
        ]
    );
}

#[tokio::test]
async fn list_errors_name_the_layouts_tried_and_the_fix() {
    // Nothing at all, or nothing outside skipped folders.
    let root = memory("empty");
    put(&root, "_manifests/a.avro", b"x".to_vec()).await;
    let e = list(&root, None, &everything()).await.unwrap_err();
    assert!(matches!(e, SourceError::Empty { .. }), "{e}");

    // Files, none of which fits.
    let root = memory("unfit");
    put(&root, "data/2026/01/01/part-0.avro", b"x".to_vec()).await;
    put(&root, "ns/clicks/0/a.parquet", b"x".to_vec()).await;
    let e = list(&root, None, &everything())
        .await
        .unwrap_err()
        .to_string();
    for part in [
        "none of the 2 .avro and .parquet files",
        "data/2026/01/01/part-0.avro",
        r#""{Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}"-{Offset}.avro"#,
        r#""{EventHub}/partition={PartitionId}/date={Year}-{Month}-{Day}/{Offset}".parquet"#,
        "(Event Hubs Capture's own names)",
        "pass --path-format",
    ] {
        assert!(e.contains(part), "{part:?} in {e}");
    }
    let e = list(&root, Some("{EventHub}/{Year}"), &everything())
        .await
        .unwrap_err();
    assert!(matches!(e, SourceError::Template { .. }), "{e}");

    // One partition with both hubcap's names and Capture's: names cannot order them.
    let root = archive().await;
    put(
        &root,
        &hubcap_name("hub", 3, "2022/11/01/17/36/07", 0).replacen("ns/", "eh/", 1),
        b"x".to_vec(),
    )
    .await;
    let e = list(&root, None, &everything()).await.unwrap_err();
    assert!(
        matches!(&e, SourceError::MixedLayouts { topic, partition: 3, .. } if topic == "hub"),
        "{e}"
    );
    // A selection without that partition does not mind.
    let clicks = Selection {
        topics: vec!["clicks".into()],
        ..Selection::default()
    };
    assert_eq!(list(&root, None, &clicks).await.unwrap().len(), 5);
}

#[tokio::test]
async fn read_applies_the_offset_and_time_ranges() {
    let root = memory("ranges");
    let t = 1_767_323_045_000;
    let events: Vec<Event> = (0..10)
        .map(|offset| Event {
            offset,
            // Offset 4 has no timestamp; times are not in offset order.
            timestamp_ms: (offset != 4).then_some(t + 1000 * (offset % 5)),
            key: None,
            headers: vec![],
            value: Some(vec![offset as u8]),
        })
        .collect();
    put(
        &root,
        &name(DEFAULT_TEMPLATE, AVRO, "clicks", 0, 0),
        encode(AVRO, 0, &events),
    )
    .await;
    let file = &list(&root, None, &everything()).await.unwrap()[0];
    let read_offsets = |selection: Selection| {
        let (root, file) = (root.clone(), file.clone());
        async move { offsets(&read(&root, &file, &selection).await.unwrap()) }
    };
    let all = Selection::default();
    assert_eq!(read_offsets(all.clone()).await, (0..10).collect::<Vec<_>>());
    // Offsets: both ends included; the event without a timestamp stays.
    let by_offset = Selection {
        from_offset: Some(3),
        to_offset: Some(6),
        ..all.clone()
    };
    assert_eq!(read_offsets(by_offset).await, [3, 4, 5, 6]);
    // Times: since included, until not; no timestamp, no place in a time range.
    let by_time = Selection {
        since_ms: Some(t + 1000),
        until_ms: Some(t + 3000),
        ..all.clone()
    };
    assert_eq!(read_offsets(by_time).await, [1, 2, 6, 7]);
    let since = Selection {
        since_ms: Some(t + 3000),
        ..all.clone()
    };
    assert_eq!(read_offsets(since).await, [3, 8, 9]);
    let both = Selection {
        since_ms: Some(t + 1000),
        from_offset: Some(5),
        to_offset: Some(8),
        ..all
    };
    assert_eq!(read_offsets(both).await, [6, 7, 8]);
}

/// Puts a Parquet file of `events` at `inside` the table at `table`, and describes it.
async fn table_file(
    table: &Location,
    inside: &str,
    events: &[Event],
) -> (u64, Vec<(String, String)>) {
    let bytes = encode(PARQUET, 0, events);
    let size = bytes.len() as u64;
    put(table, inside, bytes).await;
    let values = inside
        .split('/')
        .filter_map(|s| s.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (size, values)
}

/// A Delta table at `lake/clicks` and an Iceberg path table at `lake/views`, each with a file
/// uploaded but not committed (a crashed run's), beside a plain archive file.
async fn lake() -> Location {
    use crate::state::iceberg::manifest::Metrics;
    use crate::state::iceberg::{DataFile, IcebergTable};
    use crate::state::table::{DeltaTable, TableFile};

    let root = memory("lake");
    let events = events();
    let delta = root.child("clicks");
    let columns = ["partition", "date"];
    let table = DeltaTable::open_or_create(&delta, &crate::encode::parquet::schema(), &columns)
        .await
        .unwrap();
    for (inside, version) in [
        (
            "partition=0/date=2026-01-02/00000000000000000100.parquet",
            106,
        ),
        (
            "partition=0/date=2026-01-03/00000000000000000107.parquet",
            113,
        ),
    ] {
        let (size, partition_values) = table_file(&delta, inside, &events).await;
        let file = TableFile {
            path: inside.into(),
            size,
            records: events.len() as u64,
            modified_ms: 1_767_323_045_000,
            partition_values,
        };
        table
            .add("hubcap/g/clicks/0", version, &file)
            .await
            .unwrap();
    }
    table_file(
        &delta,
        "partition=1/date=2026-01-02/00000000000000000100.parquet",
        &events,
    )
    .await;

    let views = root.child("views");
    let iceberg = IcebergTable::new(views.clone()).unwrap();
    let created = iceberg.create(&columns.map(String::from)).await.unwrap();
    let inside = "partition=2/date=2026-01-02/00000000000000000100.parquet";
    let (size, partition_values) = table_file(&views, inside, &events).await;
    let file = DataFile {
        path: inside.into(),
        size,
        records: events.len() as u64,
        partition_values,
        metrics: Metrics::default(),
    };
    iceberg.append(&created, &[file], &[]).await.unwrap();
    table_file(
        &views,
        "partition=2/date=2026-01-02/00000000000000000200.parquet",
        &events,
    )
    .await;

    let plain = name(DEFAULT_TEMPLATE, AVRO, "other", 0, 100);
    put(&root, &plain, encode(AVRO, 0, &events)).await;
    root
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_give_the_files_they_hold_and_no_others() {
    let root = lake().await;
    let files = list(&root, None, &everything()).await.unwrap();
    let plain = name(DEFAULT_TEMPLATE, AVRO, "other", 0, 100);
    assert_eq!(
        summary(&files),
        [
            (
                "clicks/partition=0/date=2026-01-02/00000000000000000100.parquet",
                "clicks",
                0,
                Some(100)
            ),
            (
                "clicks/partition=0/date=2026-01-03/00000000000000000107.parquet",
                "clicks",
                0,
                Some(107)
            ),
            (plain.as_str(), "other", 0, Some(100)),
            (
                "views/partition=2/date=2026-01-02/00000000000000000100.parquet",
                "views",
                2,
                Some(100)
            ),
        ]
    );
    for file in &files {
        assert_eq!(read(&root, file, &everything()).await.unwrap(), events());
    }

    // A table given as the root: its folder is the topic's.
    for (table, topic, count) in [("clicks", "clicks", 2), ("views", "views", 1)] {
        let at = root.child(table);
        let files = list(&at, None, &everything()).await.unwrap();
        assert_eq!(files.len(), count);
        assert!(files.iter().all(|f| f.topic == topic), "{files:?}");
        assert!(files[0].name.starts_with("partition="), "{files:?}");
        assert_eq!(read(&at, &files[0], &everything()).await.unwrap(), events());
    }

    // A file the log holds but the store lost.
    let lost = "clicks/partition=0/date=2026-01-03/00000000000000000107.parquet";
    root.store.delete(&root.path(lost)).await.unwrap();
    let e = list(&root, None, &everything()).await.unwrap_err();
    assert!(
        matches!(&e, SourceError::TableFileMissing { file, .. } if lost.ends_with(file.as_str())),
        "{e}"
    );
}

/// An Avro file of one record of `schema`, as apache-avro writes it.
fn avro_file(schema: &str, record: Vec<(&str, AvroValue)>) -> Vec<u8> {
    let schema = apache_avro::Schema::parse_str(schema).unwrap();
    let mut writer = apache_avro::Writer::new(&schema, Vec::new()).unwrap();
    let fields = record
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    writer.append_value(AvroValue::Record(fields)).unwrap();
    writer.into_inner().unwrap()
}

/// A Capture record with this `EnqueuedTimeUtc`, no system properties and one property `p`.
fn capture_record(enqueued: &str, property: AvroValue) -> Vec<(&str, AvroValue)> {
    let map = |entries: Vec<(&str, AvroValue)>| {
        AvroValue::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    };
    vec![
        ("SequenceNumber", AvroValue::Long(7)),
        ("Offset", AvroValue::String("7".into())),
        ("EnqueuedTimeUtc", AvroValue::String(enqueued.into())),
        ("SystemProperties", map(vec![])),
        ("Properties", map(vec![("p", property)])),
        ("Body", AvroValue::Union(0, Box::new(AvroValue::Null))),
    ]
}

#[tokio::test]
async fn files_replay_cannot_read_are_errors_that_name_them_and_the_fix() {
    let root = memory("unreadable");
    let capture_schema = crate::encode::avro::CAPTURE_SCHEMA;
    let other_schema =
        r#"{"type":"record","name":"X","fields":[{"name":"SequenceNumber","type":"string"}]}"#;
    let wide_schema = capture_schema.replace(r#""bytes","null"]"#, r#""bytes","null","boolean"]"#);
    let cases = [
        (0, b"PAR1 not really".to_vec(), "not a readable Avro file"),
        (
            1,
            avro_file(
                other_schema,
                vec![("SequenceNumber", AvroValue::String("1".into()))],
            ),
            "field SequenceNumber is missing or is not what the Capture schema has (found string)",
        ),
        (
            2,
            avro_file(
                capture_schema,
                capture_record("yesterday", AvroValue::Union(4, Box::new(AvroValue::Null))),
            ),
            r#"the record at offset 7: EnqueuedTimeUtc is "yesterday", not a time like 11/1/2022 5:36:07 PM"#,
        ),
        (
            3,
            avro_file(
                &wide_schema,
                capture_record("", AvroValue::Union(5, Box::new(AvroValue::Boolean(true)))),
            ),
            r#"Properties["p"] is a boolean: only long, double, string, bytes and null have a header encoding"#,
        ),
    ];
    for (partition, bytes, _) in &cases {
        put(
            &root,
            &name(DEFAULT_TEMPLATE, AVRO, "t", *partition, 0),
            bytes.clone(),
        )
        .await;
    }
    put(
        &root,
        &name(DEFAULT_TEMPLATE, PARQUET, "t", 4, 0),
        b"PAR1 not really".to_vec(),
    )
    .await;
    let files = list(&root, None, &everything()).await.unwrap();
    assert_eq!(files.len(), 5);
    for (file, expected) in files.iter().zip(
        cases
            .iter()
            .map(|c| c.2)
            .chain(["not a readable Parquet file"]),
    ) {
        let e = read(&root, file, &everything())
            .await
            .unwrap_err()
            .to_string();
        let shown = format!("memory:///unreadable/{}", file.name);
        for part in [
            shown.as_str(),
            expected,
            "move it into a folder whose name starts with _",
        ] {
            assert!(e.contains(part), "{part:?} in {e}");
        }
    }
    // Gone since it was listed.
    root.store.delete(&root.path(&files[0].name)).await.unwrap();
    let e = read(&root, &files[0], &everything()).await.unwrap_err();
    assert!(matches!(e, SourceError::Read { .. }), "{e}");
}
