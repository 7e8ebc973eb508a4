use std::collections::BTreeMap;

use super::*;
use crate::encode::format::Format;
use crate::encode::parquet::ParquetCompression;
use crate::record::Event;

fn memory_table(name: &str) -> IcebergTable {
    let location = Location::open(&format!("memory:///{name}"), "--output").unwrap();
    IcebergTable::new(location.child("clicks")).unwrap()
}

fn columns() -> Vec<String> {
    vec!["partition".into(), "date".into()]
}

/// A file of partition `p` with offsets `first..first + n`, described by hand.
fn file(p: i32, first: i64, n: u64) -> DataFile {
    DataFile {
        path: format!("partition={p}/date=2026-12-03/{first:020}.parquet"),
        size: 1000 + n,
        records: n,
        partition_values: vec![
            ("partition".into(), p.to_string()),
            ("date".into(), "2026-12-03".into()),
        ],
        metrics: Metrics::default(),
    }
}

fn committed(p: i32, last: i64) -> Committed {
    Committed {
        topic: "clicks.v1".into(),
        partition: p,
        last_offset: last,
    }
}

#[test]
fn schema_ids_and_name_mapping() {
    let s = schema::iceberg_schema(&crate::encode::parquet::schema(), &columns()).unwrap();
    let ids: Vec<(&str, i64)> = s.json["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["id"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        ids,
        [
            ("SequenceNumber", 1),
            ("Offset", 2),
            ("EnqueuedTimeUtc", 3),
            ("EnqueuedTime", 4),
            ("SystemProperties", 5),
            ("Properties", 6),
            ("Body", 7),
            ("partition", 8),
            ("date", 9),
        ]
    );
    assert_eq!(s.json["fields"][3]["type"], "timestamptz");
    assert_eq!(s.json["fields"][0]["required"], true);
    let map = &s.json["fields"][4]["type"];
    assert_eq!(
        (map["key-id"].as_i64(), map["value-id"].as_i64()),
        (Some(10), Some(11))
    );
    // Every id is unique, and the last is last-column-id.
    let mut all: Vec<i32> = s.leaves.values().copied().collect();
    all.extend([5, 6, 11, 17, 8, 9]);
    all.sort();
    all.dedup();
    assert_eq!(all.len() as i32, s.last_column_id);
    assert_eq!(s.leaves["SystemProperties.key_value.value.string"], 14);
    assert_eq!(s.leaves["SequenceNumber"], 1);
    // The name mapping names the same ids, nested ones too.
    assert_eq!(s.name_mapping[4]["field-id"], 5);
    assert_eq!(
        s.name_mapping[4]["fields"][1]["fields"][2]["names"][0],
        "string"
    );
    assert_eq!(s.name_mapping[4]["fields"][1]["fields"][2]["field-id"], 14);
}

#[tokio::test]
async fn create_is_version_one_and_round_trips() {
    let table = memory_table("create");
    let created = table.create(&columns()).await.unwrap();
    assert_eq!(created.version, 1);
    let loaded = table.load().await.unwrap().unwrap();
    assert_eq!(loaded, created);
    let m = &loaded.metadata;
    assert_eq!(m.current_snapshot_id, None);
    assert_eq!(m.location, "memory:///create/clicks");
    assert_eq!(m.last_partition_id, 1001);
    assert_eq!(m.partition_specs[0].fields[1].name, "date");
    assert_eq!(m.partition_specs[0].fields[1].source_id, 9);
    assert!(m.properties["schema.name-mapping.default"].contains("SequenceNumber"));
    // The upkeep hubcap does is in the table's properties, for users to see and change.
    assert_eq!(m.properties[properties::MAX_SNAPSHOTS], "100");
    assert_eq!(m.properties[properties::PREVIOUS_VERSIONS_MAX], "100");
    assert_eq!(m.properties[properties::DELETE_AFTER_COMMIT], "true");
    // The JSON says "no snapshot" as Java does, and reads back.
    let json: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
    assert_eq!(json["current-snapshot-id"], serde_json::Value::Null);
    // A second create finds the first's table.
    assert_eq!(table.create(&columns()).await.unwrap(), created);
}

#[tokio::test]
async fn appends_carry_manifests_offsets_and_sequence_numbers() {
    let table = memory_table("append");
    let v1 = table.create(&columns()).await.unwrap();
    let v2 = table
        .append(
            &v1,
            &[file(0, 0, 10), file(1, 0, 5)],
            &[committed(0, 9), committed(1, 4)],
        )
        .await
        .unwrap();
    let v3 = table
        .append(&v2, &[file(0, 10, 3)], &[committed(0, 12)])
        .await
        .unwrap();
    assert_eq!(v3.version, 3);
    let loaded = table.load().await.unwrap().unwrap();
    assert_eq!(loaded, v3);
    // Partition 1's offset is carried by a commit that did not touch it.
    assert_eq!(
        loaded.offsets(),
        BTreeMap::from([(("clicks.v1".into(), 0), 12), (("clicks.v1".into(), 1), 4)])
    );
    let snap = loaded.snapshot().unwrap();
    assert_eq!(snap.sequence_number, 2);
    assert_eq!(snap.parent_snapshot_id, v2.metadata.current_snapshot_id);
    assert_eq!(snap.summary["total-records"], "18");
    assert_eq!(snap.summary["total-data-files"], "3");
    assert_eq!(loaded.metadata.metadata_log.len(), 2);
    assert_eq!(loaded.metadata.refs["main"].snapshot_id, snap.snapshot_id);
    // Each file once, with the sequence number of the commit that added it (inherited).
    let files = table.files(&loaded).await.unwrap();
    let got: Vec<(String, i64, Option<i64>)> = files
        .iter()
        .map(|e| (e.file_path.clone(), e.record_count, e.sequence_number))
        .collect();
    let path = |p: &str| format!("memory:///append/clicks/{p}");
    assert_eq!(
        got,
        [
            (
                path("partition=0/date=2026-12-03/00000000000000000000.parquet"),
                10,
                Some(1)
            ),
            (
                path("partition=1/date=2026-12-03/00000000000000000000.parquet"),
                5,
                Some(1)
            ),
            (
                path("partition=0/date=2026-12-03/00000000000000000010.parquet"),
                3,
                Some(2)
            ),
        ]
    );
    assert_eq!(
        files[0].partition,
        [Some("0".into()), Some("2026-12-03".into())]
    );
    // The version hint names the latest version.
    let hint = table.get(VERSION_HINT).await.unwrap().unwrap();
    assert_eq!(&hint[..], b"3");
}

#[tokio::test]
async fn a_lost_race_is_a_typed_conflict_and_adds_nothing() {
    let table = memory_table("race");
    let v1 = table.create(&columns()).await.unwrap();
    let (fa, oa) = ([file(0, 0, 10)], [committed(0, 9)]);
    let (fb, ob) = ([file(1, 0, 7)], [committed(1, 6)]);
    let (a, b) = tokio::join!(table.append(&v1, &fa, &oa), table.append(&v1, &fb, &ob));
    let (won, lost) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        other => panic!("one append must win and one lose: {other:?}"),
    };
    assert!(
        matches!(lost, IcebergError::Conflict { version: 2, .. }),
        "{lost}"
    );
    assert!(lost.is_transient());
    let now = table.load().await.unwrap().unwrap();
    assert_eq!(now, won);
    assert_eq!(table.files(&now).await.unwrap().len(), 1);
    assert_eq!(now.offsets().len(), 1);
    // The loser retries on the table as it is now: both files, once each.
    let (p, last) = if now.offsets().contains_key(&("clicks.v1".into(), 0)) {
        (1, 6)
    } else {
        (0, 9)
    };
    let retried = table
        .append(
            &now,
            &[file(p, 0, if p == 0 { 10 } else { 7 })],
            &[committed(p, last)],
        )
        .await
        .unwrap();
    let files = table.files(&retried).await.unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files.iter().map(|f| f.record_count).sum::<i64>(), 17);
    assert_eq!(retried.offsets().len(), 2);
}

#[test]
fn manifest_and_list_read_back_with_their_field_ids() {
    let fields = vec![metadata::PartitionField {
        name: "partition".into(),
        transform: "identity".into(),
        source_id: 8,
        field_id: 1000,
    }];
    let entry = ManifestEntry {
        status: ADDED,
        snapshot_id: Some(42),
        sequence_number: None,
        file_sequence_number: None,
        file_path: "file:///t/partition=3/a.parquet".into(),
        partition: vec![Some("3".into())],
        record_count: 7,
        file_size_in_bytes: 123,
        metrics: Metrics {
            column_sizes: BTreeMap::from([(1, 50)]),
            value_counts: BTreeMap::from([(1, 7)]),
            null_value_counts: BTreeMap::from([(1, 0)]),
            lower_bounds: BTreeMap::from([(1, 5i64.to_le_bytes().to_vec())]),
            upper_bounds: BTreeMap::from([(1, 11i64.to_le_bytes().to_vec())]),
        },
    };
    let keys = [
        ("format-version", "2".to_string()),
        ("content", "data".to_string()),
    ];
    let bytes = manifest::container(
        &manifest::entry_schema(&fields),
        &keys,
        vec![manifest::entry_value(&entry, &fields)],
    )
    .unwrap();
    let reader = apache_avro::Reader::new(&bytes[..]).unwrap();
    let meta = reader.user_metadata();
    assert_eq!(meta["format-version"], b"2");
    assert_eq!(meta["content"], b"data");
    // The header's schema keeps Iceberg's field ids, which readers resolve fields by.
    let raw = String::from_utf8_lossy(&bytes);
    assert!(raw.contains(r#""field-id":100"#) && raw.contains(r#""name":"k126_v127""#));
    let back = decode::read_manifest(&bytes, &["partition".into()]).unwrap();
    assert_eq!(back, [entry]);

    let list = ManifestFile {
        manifest_path: "file:///t/metadata/42-m0.avro".into(),
        manifest_length: bytes.len() as i64,
        partition_spec_id: 0,
        content: manifest::DATA,
        sequence_number: 3,
        min_sequence_number: 3,
        added_snapshot_id: 42,
        added_files_count: 1,
        existing_files_count: 0,
        deleted_files_count: 0,
        added_rows_count: 7,
        existing_rows_count: 0,
        deleted_rows_count: 0,
        partitions: vec![FieldSummary {
            contains_null: false,
            lower_bound: Some(b"3".to_vec()),
            upper_bound: Some(b"3".to_vec()),
        }],
    };
    let bytes = manifest::container(
        &manifest::list_schema(),
        &[],
        vec![manifest::list_value(&list)],
    )
    .unwrap();
    assert!(String::from_utf8_lossy(&bytes).contains(r#""field-id":515"#));
    assert_eq!(decode::read_manifest_list(&bytes).unwrap(), [list]);
}

#[test]
fn footer_metrics_of_hubcap_parquet() {
    let format = Format::Parquet {
        compression: ParquetCompression::Zstd,
        row_group_bytes: 4 << 10,
    };
    let mut file = format.create("t", 0, 100);
    let mut bytes = Vec::new();
    for offset in 100..300 {
        let e = Event {
            offset,
            // Every tenth record without a timestamp.
            timestamp_ms: (offset % 10 != 0).then_some(1_772_600_000_000 + offset),
            key: None,
            headers: vec![],
            value: Some(vec![b'x'; 64]),
        };
        file.prepare(&e.record());
        file.push_prepared(&e.record()).unwrap();
        bytes.extend(file.take_output());
    }
    bytes.extend(file.finish().unwrap().0);
    let footer = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&Bytes::from(bytes.clone()))
        .unwrap();
    assert!(footer.num_row_groups() > 1, "bounds span row groups");
    let f = DataFile::from_footer("a.parquet", bytes.len() as u64, vec![], &footer).unwrap();
    assert_eq!(f.records, 200);
    let m = &f.metrics;
    assert_eq!(m.lower_bounds[&1], 100i64.to_le_bytes());
    assert_eq!(m.upper_bounds[&1], 299i64.to_le_bytes());
    // Microseconds, as timestamptz is: the first and last records with a time.
    assert_eq!(
        m.lower_bounds[&4],
        ((1_772_600_000_000i64 + 101) * 1000).to_le_bytes()
    );
    assert_eq!(
        m.upper_bounds[&4],
        ((1_772_600_000_000i64 + 299) * 1000).to_le_bytes()
    );
    assert_eq!((m.value_counts[&4], m.null_value_counts[&4]), (200, 20));
    assert_eq!(m.null_value_counts[&1], 0);
    assert!(m.column_sizes[&7] > 0);
}

#[tokio::test]
async fn load_looks_past_a_stale_version_hint_and_refuses_a_wrong_one() {
    let table = memory_table("hint");
    assert_eq!(table.load().await.unwrap(), None);
    let v1 = table.create(&columns()).await.unwrap();
    let v2 = table
        .append(&v1, &[file(0, 0, 1)], &[committed(0, 0)])
        .await
        .unwrap();
    let hint = table.location.path(VERSION_HINT);
    // A crash between a version and its hint: hubcap still finds the latest version.
    table.location.put(&hint, "1".into()).await.unwrap();
    assert_eq!(table.load().await.unwrap(), Some(v2));
    table.location.put(&hint, "7".into()).await.unwrap();
    let err = table.load().await.unwrap_err();
    assert!(matches!(err, IcebergError::Unreadable { .. }), "{err}");
    assert!(!err.is_transient());
}

/// A commit as a REST catalog takes it: the snapshot added, the branch moved, the snapshots
/// removed and the properties changed, guarded by the table's UUID and the branch's snapshot.
#[test]
fn a_commit_becomes_the_catalogs_updates_and_requirements() {
    use super::metadata::Snapshot;
    let snapshot = |id: i64| Snapshot {
        snapshot_id: id,
        parent_snapshot_id: None,
        sequence_number: id,
        timestamp_ms: 0,
        manifest_list: format!("file:///t/metadata/snap-{id}.avro"),
        summary: BTreeMap::from([("operation".to_string(), "append".to_string())]),
        schema_id: Some(0),
    };
    let base_json = serde_json::json!({
        "format-version": 2, "table-uuid": "u-1", "location": "file:///t",
        "last-sequence-number": 2, "last-updated-ms": 0, "last-column-id": 7,
        "current-schema-id": 0, "schemas": [], "default-spec-id": 0, "partition-specs": [],
        "last-partition-id": 999, "default-sort-order-id": 0, "sort-orders": [],
        "properties": {"a": "1", "gone": "x"}, "current-snapshot-id": 2,
    });
    let mut base: TableMetadata = serde_json::from_value(base_json).unwrap();
    base.snapshots = vec![snapshot(1), snapshot(2)];
    let mut after = base.clone();
    after.snapshots = vec![snapshot(2), snapshot(3)];
    after.current_snapshot_id = Some(3);
    after.properties = BTreeMap::from([("a".into(), "2".into())]);
    let (requirements, updates) = changes(&base, &after);
    assert_eq!(
        requirements,
        [
            serde_json::json!({"type": "assert-table-uuid", "uuid": "u-1"}),
            serde_json::json!({"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": 2}),
        ]
    );
    let actions: Vec<&str> = updates
        .iter()
        .map(|u| u["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "add-snapshot",
            "set-snapshot-ref",
            "remove-snapshots",
            "set-properties",
            "remove-properties"
        ]
    );
    assert_eq!(updates[0]["snapshot"]["snapshot-id"], 3);
    assert_eq!(updates[1]["snapshot-id"], 3);
    assert_eq!(updates[2]["snapshot-ids"], serde_json::json!([1]));
    assert_eq!(updates[3]["updates"], serde_json::json!({"a": "2"}));
    assert_eq!(updates[4]["removals"], serde_json::json!(["gone"]));
    // A table without a snapshot yet: the branch must still be absent.
    base.current_snapshot_id = None;
    let (requirements, _) = changes(&base, &after);
    assert_eq!(requirements[1]["snapshot-id"], serde_json::Value::Null);
}

#[test]
fn file_uris_compare_in_one_form() {
    assert_eq!(file_uri("file:/tmp/x/"), "file:///tmp/x");
    assert_eq!(file_uri("file:///tmp/x"), "file:///tmp/x");
    assert_eq!(file_uri("s3://b/x/"), "s3://b/x");
}

/// Readers open Azure files by their abfss:// URI, whatever form `--output` took.
#[test]
fn azure_locations_become_abfss_uris() {
    let want = "abfss://lake@acct.dfs.core.windows.net/archive/clicks";
    for (display, account) in [
        ("az://lake/archive/clicks", Some("acct")),
        ("azure://lake/archive/clicks/", Some("acct")),
        ("abfss://lake/archive/clicks", Some("acct")),
        (
            "abfss://lake@acct.dfs.core.windows.net/archive/clicks",
            None,
        ),
        (
            "abfs://lake@acct.blob.core.windows.net/archive/clicks",
            None,
        ),
        (
            "https://acct.blob.core.windows.net/lake/archive/clicks",
            None,
        ),
        (
            "https://acct.dfs.core.windows.net/lake/archive/clicks",
            Some("other"),
        ),
    ] {
        let got = abfss_uri(display, account.map(str::to_string));
        assert_eq!(got.as_deref(), Ok(want), "{display}");
    }
    let err = abfss_uri("az://lake/archive", None).unwrap_err();
    assert!(err.contains("AZURE_STORAGE_ACCOUNT_NAME"), "{err}");
}

mod upkeep;
