use chrono::DateTime;
use tempfile::TempDir;

use super::*;
use crate::encode::avro::Codec;
use crate::encode::format::Format;
use crate::encode::parquet::ParquetCompression;
use crate::layout::{NameParts, DEFAULT_TEMPLATE};
use crate::record::Event;
use crate::state::checkpoint::PendingFile;
use crate::state::manifest::{time_text, ManifestEntry, VERSION};

mod coverage;
mod integrity;

const AVRO: Format = Format::Avro {
    codec: Codec::Null,
    block_target: 1 << 20,
};
const PARQUET: Format = Format::Parquet {
    compression: ParquetCompression::Zstd,
    row_group_bytes: 1 << 20,
};

fn ev(offset: i64) -> Event {
    Event {
        offset,
        timestamp_ms: Some(1_700_000_000_000 + offset * 1000),
        key: None,
        headers: vec![],
        value: Some(format!("event {offset}").into_bytes()),
    }
}

/// Encodes records with these offsets (in this order) as hubcap would.
fn encode(format: Format, topic: &str, partition: i32, offsets: &[i64]) -> Vec<u8> {
    let mut file = format.create(topic, partition, offsets.first().copied().unwrap_or(0));
    let mut bytes = Vec::new();
    for &o in offsets {
        let e = ev(o);
        file.prepare(&e.record());
        file.push_prepared(&e.record()).unwrap();
        bytes.extend(file.take_output());
    }
    let (rest, _) = file.finish().unwrap();
    bytes.extend(rest);
    bytes
}

/// An archive in a local directory (or a memory store), written with hubcap's own pieces.
struct Archive {
    dir: Option<TempDir>,
    spec: String,
    output: Location,
    group: String,
    template: PathTemplate,
}

impl Archive {
    fn local() -> Archive {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().to_str().unwrap().to_string();
        Archive {
            output: Location::open(&spec, "--output").unwrap(),
            dir: Some(dir),
            spec,
            group: "g".into(),
            template: PathTemplate::parse(DEFAULT_TEMPLATE, "avro").unwrap(),
        }
    }

    fn memory() -> Archive {
        Archive {
            output: Location::open("memory://", "--output").unwrap(),
            dir: None,
            spec: "memory://".into(),
            group: "g".into(),
            template: PathTemplate::parse(DEFAULT_TEMPLATE, "avro").unwrap(),
        }
    }

    /// The name hubcap gives a file of `t`/`partition` starting at `first`.
    fn name(&self, partition: i32, first: i64) -> String {
        self.template.render(&NameParts {
            namespace: "ns",
            topic: "t",
            partition,
            first_offset: first,
            time: DateTime::from_timestamp_millis(ev(first).timestamp_ms.unwrap()).unwrap(),
        })
    }

    async fn put(&self, name: &str, bytes: Vec<u8>) -> u64 {
        let size = bytes.len() as u64;
        self.output
            .store
            .put(&self.output.path(name), bytes.into())
            .await
            .unwrap();
        size
    }

    /// An Avro file of `t`/`partition` holding `offsets`, under its proper name; no manifest line.
    async fn file(&self, partition: i32, offsets: std::ops::RangeInclusive<i64>) -> String {
        let offsets: Vec<i64> = offsets.collect();
        let name = self.name(partition, offsets[0]);
        self.put(&name, encode(AVRO, "t", partition, &offsets))
            .await;
        name
    }

    /// A file as `file` writes it, plus its manifest line.
    async fn listed_file(&self, partition: i32, offsets: std::ops::RangeInclusive<i64>) -> String {
        let name = self.file(partition, offsets.clone()).await;
        let size = self
            .output
            .store
            .head(&self.output.path(&name))
            .await
            .unwrap()
            .size;
        let bytes = self
            .output
            .store
            .get(&self.output.path(&name))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let crc = crate::store::upload::crc32c_of(&bytes);
        self.manifest_line_with(partition, &name, offsets, size, Some(crc))
            .await;
        name
    }

    async fn manifest_line(
        &self,
        partition: i32,
        name: &str,
        offsets: std::ops::RangeInclusive<i64>,
        size: u64,
    ) {
        self.manifest_line_with(partition, name, offsets, size, None)
            .await;
    }

    async fn manifest_line_with(
        &self,
        partition: i32,
        name: &str,
        offsets: std::ops::RangeInclusive<i64>,
        size: u64,
        crc: Option<String>,
    ) {
        let manifests = Manifests::new(&self.output, &self.group);
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let entry = ManifestEntry {
            version: VERSION.into(),
            file_url: format!("{}/{name}", self.spec),
            path: name.into(),
            topic: "t".into(),
            partition_id: partition,
            size_in_bytes: size,
            event_count: (offsets.end() - offsets.start() + 1) as u64,
            first_sequence_number: *offsets.start(),
            last_sequence_number: *offsets.end(),
            first_enqueue_time: time_text(ev(*offsets.start()).timestamp_ms),
            last_enqueue_time: time_text(ev(*offsets.end()).timestamp_ms),
            format: "avro".into(),
            codec: "null".into(),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            content_crc32c: crc,
            block_bytes: None,
            topic_id: None,
        };
        let object = manifests.object_for("t", partition, at);
        manifests.upsert(&object, &entry).await.unwrap();
    }

    fn checkpoints(&self) -> CheckpointStore {
        CheckpointStore::new(self.output.child(CHECKPOINTS_DIR), &self.group)
    }

    async fn checkpoint(&self, partition: i32, next: i64, pending: Option<PendingFile>) {
        let store = self.checkpoints();
        let mut c = store.document("t", partition, next, "test");
        c.pending = pending;
        let current = store.load("t", partition).await.unwrap().map(|v| v.version);
        store.save(&c, current).await.unwrap();
    }

    fn args(&self) -> AuditArgs {
        AuditArgs {
            output: self.spec.clone(),
            checkpoints: None,
            group: None,
            topics: vec![],
            path_format: DEFAULT_TEMPLATE.into(),
            allow_gaps: false,
            allow_stray: false,
            verify: false,
            brokers: None,
            kafka: vec![],
            json: false,
            catalog: Default::default(),
        }
    }

    /// Audits through the same path as the command (text output), or, for a memory store that
    /// `audit` cannot reopen, through `audit_locations`.
    async fn audit_with(&self, args: &AuditArgs) -> (AuditReport, String) {
        let mut out = Vec::new();
        let report = if self.dir.is_some() {
            audit(args, &mut out).await.unwrap()
        } else {
            let checkpoints = self.output.child(CHECKPOINTS_DIR);
            let opts = Options::new(args).unwrap();
            let report = audit_locations(&self.output, &checkpoints, &opts)
                .await
                .unwrap();
            write_report(&report, args.json, &mut out).unwrap();
            report
        };
        (report, String::from_utf8(out).unwrap())
    }

    async fn audit(&self) -> (AuditReport, String) {
        self.audit_with(&self.args()).await
    }
}

fn partition(report: &AuditReport, n: i32) -> &PartitionAudit {
    report
        .partitions
        .iter()
        .find(|p| p.partition == n)
        .unwrap_or_else(|| panic!("no partition {n} in {report:#?}"))
}

fn range(first: i64, last: i64) -> OffsetRange {
    OffsetRange { first, last }
}

#[tokio::test]
async fn clean_archive_with_and_without_manifests() {
    let a = Archive::local();
    // Partition 0: listed in manifests; partition 1: an older archive, files only.
    a.listed_file(0, 0..=9).await;
    a.listed_file(0, 10..=24).await;
    a.checkpoint(0, 25, None).await;
    a.file(1, 0..=4).await;
    a.file(1, 5..=5).await;
    a.file(1, 6..=11).await;
    a.checkpoint(1, 12, None).await;

    let (report, text) = a.audit().await;
    assert!(report.clean(), "{text}");
    let p0 = partition(&report, 0);
    assert_eq!((p0.files, p0.events), (2, 25));
    assert_eq!(p0.covered, vec![range(0, 24)]);
    let p1 = partition(&report, 1);
    assert_eq!((p1.files, p1.events), (3, 12));
    assert_eq!(p1.covered, vec![range(0, 11)]);
    assert!(
        text.contains("t/0  checkpoint 25  files 2  offsets 0..=24  clean\n"),
        "{text}"
    );
    assert!(
        text.contains("t/1  checkpoint 12  files 3  offsets 0..=11  clean\n"),
        "{text}"
    );
    assert!(
        text.ends_with("audit: clean (2 partitions, 5 files, 37 events)\n"),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_file_is_a_gap_between_its_neighbours() {
    let a = Archive::local();
    let first = a.file(0, 0..=9).await;
    let third = a.file(0, 20..=29).await;
    a.checkpoint(0, 30, None).await;

    let (report, text) = a.audit().await;
    assert!(!report.clean());
    let p = partition(&report, 0);
    assert_eq!(
        p.gaps,
        vec![Gap {
            offsets: range(10, 19),
            after: Some(first.clone()),
            before: Some(third.clone()),
            kafka: None,
        }]
    );
    assert_eq!(p.covered, vec![range(0, 9), range(20, 29)]);
    assert!(
        text.contains(&format!(
            "gap 10..=19 (10 offsets) between {first} and {third}"
        )),
        "{text}"
    );
    assert!(text.contains("offsets 0..=9, 20..=29  FAILED"), "{text}");
    assert!(
        text.contains("audit: FAILED: 1 gap (1 partitions"),
        "{text}"
    );

    // For a compacted or transactional topic, the same gap is a warning.
    let mut args = a.args();
    args.allow_gaps = true;
    let (report, text) = a.audit_with(&args).await;
    assert!(report.clean(), "{text}");
    assert!(text.contains("gap (allowed) 10..=19"), "{text}");
    assert!(
        text.ends_with(
            "audit: clean (1 partitions, 2 files, 20 events; not failures: 1 allowed gap)\n"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn offsets_between_the_last_file_and_the_checkpoint_are_a_gap() {
    let a = Archive::local();
    let last = a.file(0, 0..=9).await;
    a.checkpoint(0, 15, None).await;
    let (report, text) = a.audit().await;
    assert!(!report.clean());
    assert_eq!(
        partition(&report, 0).gaps,
        vec![Gap {
            offsets: range(10, 14),
            after: Some(last),
            before: None,
            kafka: None,
        }]
    );
    assert!(text.contains("up to the checkpoint"), "{text}");
}

#[tokio::test]
async fn an_offset_in_two_files_is_an_overlap_naming_both() {
    let a = Archive::local();
    let one = a.file(0, 0..=9).await;
    let two = a.file(0, 5..=14).await;
    a.checkpoint(0, 15, None).await;

    let (report, text) = a.audit().await;
    assert!(!report.clean());
    let p = partition(&report, 0);
    assert_eq!(
        p.overlaps,
        vec![Overlap {
            offsets: range(5, 9),
            files: [one.clone(), two.clone()],
        }]
    );
    assert!(p.gaps.is_empty());
    assert!(
        text.contains(&format!("overlap 5..=9 (5 offsets) in {one} and {two}")),
        "{text}"
    );
    assert!(text.contains("audit: FAILED: 1 overlap"), "{text}");
}

#[tokio::test]
async fn orphans_past_the_checkpoint_are_reported_but_clean() {
    let a = Archive::local();
    a.listed_file(0, 0..=9).await;
    let orphan = a.file(0, 10..=19).await;
    a.checkpoint(0, 10, None).await;

    let (report, text) = a.audit().await;
    assert!(report.clean(), "{text}");
    let p = partition(&report, 0);
    assert_eq!(p.orphans.len(), 1);
    assert_eq!(p.orphans[0].path, orphan);
    assert_eq!((p.files, p.events), (1, 10));
    assert!(
        text.contains(&format!("orphan: {orphan} holds 10..=19")),
        "{text}"
    );
    assert!(
        text.ends_with("audit: clean (1 partitions, 1 files, 10 events; not failures: 1 orphan)\n"),
        "{text}"
    );

    // The same file named by an intent is pending, not an orphan.
    let pending = PendingFile {
        path: orphan.clone(),
        first_offset: 10,
        last_offset: 19,
        events: 10,
        size: 0,
        first_time_ms: None,
        last_time_ms: None,
        manifest: "g/t/0/2023/11/14/22.jsonl".into(),
        crc32c: None,
        block_bytes: None,
        topic_id: None,
    };
    a.checkpoint(0, 10, Some(pending)).await;
    let (report, text) = a.audit().await;
    assert!(report.clean(), "{text}");
    let p = partition(&report, 0);
    assert!(p.orphans.is_empty(), "{p:?}");
    assert_eq!(
        p.pending,
        Some(Pending {
            path: orphan,
            first_offset: 10,
            last_offset: 19,
            exists: true,
        })
    );
    assert!(
        text.contains("the next run moves the checkpoint past it"),
        "{text}"
    );
}

#[tokio::test]
async fn a_file_reaching_past_the_checkpoint_fails() {
    let a = Archive::local();
    a.file(0, 0..=19).await;
    a.checkpoint(0, 10, None).await;
    let (report, text) = a.audit().await;
    assert!(!report.clean());
    assert_eq!(partition(&report, 0).past_checkpoint.len(), 1);
    assert!(text.contains("past the checkpoint:"), "{text}");
}

#[tokio::test]
async fn an_unreadable_file_fails_below_the_checkpoint_only() {
    let a = Archive::local();
    a.file(0, 0..=9).await;
    let broken = a.name(0, 10);
    a.put(&broken, b"Obj\x01 cut short".to_vec()).await;
    a.file(0, 20..=29).await;
    let late = a.name(0, 30);
    a.put(&late, b"not avro".to_vec()).await;
    a.checkpoint(0, 30, None).await;

    let (report, text) = a.audit().await;
    assert!(!report.clean());
    let p = partition(&report, 0);
    let bad: Vec<(&str, bool)> = p
        .unreadable
        .iter()
        .map(|b| (b.path.as_str(), b.below_checkpoint))
        .collect();
    assert_eq!(bad, vec![(broken.as_str(), true), (late.as_str(), false)]);
    assert_eq!(report.failures().unreadable, 1);
    assert!(
        text.contains(&format!("unreadable: {broken}: not a readable Avro file")),
        "{text}"
    );

    // Past the checkpoint alone, it is no failure: the next run archives those offsets again.
    let b = Archive::local();
    b.file(0, 0..=9).await;
    b.put(&b.name(0, 10), b"not avro".to_vec()).await;
    b.checkpoint(0, 10, None).await;
    let (report, text) = b.audit().await;
    assert!(report.clean(), "{text}");
}

#[tokio::test]
async fn a_file_holding_an_offset_twice_is_unreadable() {
    let a = Archive::local();
    let name = a.name(0, 0);
    a.put(&name, encode(AVRO, "t", 0, &[0, 1, 1, 2])).await;
    a.checkpoint(0, 3, None).await;
    let (report, _) = a.audit().await;
    let p = partition(&report, 0);
    assert_eq!(p.unreadable.len(), 1, "{p:?}");
    assert!(p.unreadable[0]
        .reason
        .contains("SequenceNumber 1 follows 1"));
    assert!(!report.clean());
}

#[tokio::test]
async fn a_file_whose_name_and_records_disagree_is_flagged() {
    let a = Archive::local();
    // Named as starting at 5, holds 0..=4: a replay would not overwrite it.
    a.put(&a.name(0, 5), encode(AVRO, "t", 0, &[0, 1, 2, 3, 4]))
        .await;
    a.checkpoint(0, 10, None).await;
    let (report, _) = a.audit().await;
    let p = partition(&report, 0);
    assert!(
        p.unreadable[0]
            .reason
            .contains("first offset is 5, its first record is 0"),
        "{p:?}"
    );
}

#[tokio::test]
async fn a_listed_file_that_is_missing_fails_even_with_gaps_allowed() {
    let a = Archive::local();
    a.listed_file(0, 0..=9).await;
    let gone = a.name(0, 10);
    a.manifest_line(0, &gone, 10..=19, 1234).await;
    a.checkpoint(0, 20, None).await;

    let mut args = a.args();
    args.allow_gaps = true;
    let (report, text) = a.audit_with(&args).await;
    assert!(!report.clean(), "{text}");
    let p = partition(&report, 0);
    assert_eq!(p.missing.len(), 1);
    assert_eq!(
        (p.missing[0].path.as_str(), p.missing[0].first_offset),
        (gone.as_str(), 10)
    );
    assert!(
        text.contains(&format!(
            "missing: {gone} (10..=19) is listed in a manifest but not in the store"
        )),
        "{text}"
    );
    assert!(text.contains("audit: FAILED: 1 missing file"), "{text}");
}

#[tokio::test]
async fn a_listed_file_of_another_size_fails() {
    let a = Archive::local();
    let name = a.file(0, 0..=9).await;
    a.manifest_line(0, &name, 0..=9, 7).await;
    a.checkpoint(0, 10, None).await;
    let (report, _) = a.audit().await;
    let p = partition(&report, 0);
    assert!(
        p.unreadable[0].reason.contains("manifest line says 7"),
        "{p:?}"
    );
    assert!(!report.clean());
}

#[tokio::test]
async fn manifest_ranges_are_trusted_and_files_outside_them_read() {
    let a = Archive::local();
    // The manifest says 0..=9 and the file is not read: its bytes do not matter.
    let listed = a.name(0, 0);
    let size = a.put(&listed, b"whatever".to_vec()).await;
    a.manifest_line(0, &listed, 0..=9, size).await;
    // A file from before manifests: read.
    a.file(0, 10..=14).await;
    a.checkpoint(0, 15, None).await;
    let (report, text) = a.audit().await;
    assert!(report.clean(), "{text}");
    assert_eq!(partition(&report, 0).covered, vec![range(0, 14)]);
}

#[tokio::test]
async fn parquet_files_under_a_hive_template_are_read() {
    let a = Archive::local();
    let template = "{EventHub}/partition={PartitionId}/{Offset}";
    for (first, last) in [(0, 99), (100, 149), (160, 199)] {
        let offsets: Vec<i64> = (first..=last).collect();
        let name = format!("t/partition=2/{first:020}.parquet");
        a.put(&name, encode(PARQUET, "t", 2, &offsets)).await;
    }
    a.put("t/partition=2/notes.txt", b"ignored".to_vec()).await;
    a.checkpoint(2, 200, None).await;
    let mut args = a.args();
    args.path_format = template.into();
    let (report, text) = a.audit_with(&args).await;
    let p = partition(&report, 2);
    assert_eq!((p.files, p.events), (3, 190));
    assert_eq!(p.covered, vec![range(0, 149), range(160, 199)]);
    assert_eq!(p.gaps.len(), 1);
    assert_eq!(p.gaps[0].offsets, range(150, 159));
    assert!(report.strays.is_empty(), "{:?}", report.strays);
    assert!(text.contains("gap 150..=159"), "{text}");
}

#[tokio::test]
async fn a_corrupt_checkpoint_fails_its_partition() {
    let a = Archive::local();
    a.file(0, 0..=9).await;
    a.checkpoint(0, 10, None).await;
    let path = a.checkpoints().path("t", 1);
    a.output.store.put(&path, "{oops".into()).await.unwrap();
    let (report, text) = a.audit().await;
    assert!(!report.clean());
    assert!(partition(&report, 1).checkpoint_error.is_some());
    assert!(partition(&report, 0).failures(false).total() == 0);
    assert!(text.contains("t/1  checkpoint unreadable"), "{text}");
    assert!(text.contains("1 unreadable checkpoint"), "{text}");
}

#[tokio::test]
async fn groups_are_audited_apart_and_filtered() {
    let mut a = Archive::local();
    a.listed_file(0, 0..=9).await;
    a.listed_file(0, 10..=19).await;
    a.checkpoint(0, 20, None).await;
    // Group h archives partition 1, and partition 0 too into the same output (from offset 5,
    // with other window boundaries): each group's manifest claims its own files, so neither
    // sees the other's as overlaps.
    a.group = "h".into();
    a.listed_file(0, 5..=12).await;
    a.listed_file(0, 13..=19).await;
    a.checkpoint(0, 20, None).await;
    a.listed_file(1, 0..=4).await;
    a.checkpoint(1, 5, None).await;
    // An old unlisted file of partition 1 belongs to h, whose checkpoint covers it.
    a.file(1, 5..=5).await;
    a.checkpoint(1, 6, None).await;

    let (report, text) = a.audit().await;
    assert!(report.clean(), "{text}");
    let keys: Vec<(Option<&str>, i32, u64)> = report
        .partitions
        .iter()
        .map(|p| (p.group.as_deref(), p.partition, p.files))
        .collect();
    assert_eq!(
        keys,
        vec![(Some("g"), 0, 2), (Some("h"), 0, 2), (Some("h"), 1, 2)]
    );
    assert!(text.contains("group g\nt/0"), "{text}");

    let mut args = a.args();
    args.group = Some("g".into());
    let (report, _) = a.audit_with(&args).await;
    assert_eq!(report.partitions.len(), 1, "{report:#?}");
    assert!(report.clean(), "{report:#?}");

    args.group = Some("nobody".into());
    let err = audit(&args, &mut Vec::new()).await.unwrap_err();
    assert!(matches!(err, AuditError::NoCheckpoints { .. }), "{err}");
    assert!(err.to_string().contains("group \"nobody\""), "{err}");
}

#[tokio::test]
async fn files_no_group_has_a_checkpoint_for_are_orphans() {
    let a = Archive::local();
    a.file(0, 0..=9).await;
    a.checkpoint(0, 10, None).await;
    a.file(7, 0..=9).await;
    let (report, text) = a.audit().await;
    assert!(report.clean(), "{text}");
    let p = partition(&report, 7);
    assert_eq!((p.group.as_deref(), p.orphans.len()), (None, 1));
    assert!(
        text.contains("t/7  checkpoint none  files 0  offsets none  no checkpoint"),
        "{text}"
    );
}

#[tokio::test]
async fn memory_store_and_json_output() {
    let a = Archive::memory();
    a.listed_file(0, 0..=9).await;
    a.file(0, 20..=29).await;
    a.checkpoint(0, 30, None).await;
    let mut args = a.args();
    args.json = true;
    let (report, out) = a.audit_with(&args).await;
    assert!(!report.clean());
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["clean"], false);
    assert_eq!(json["failures"]["gaps"], 1);
    let p = &json["partitions"][0];
    assert_eq!(
        (p["group"].as_str(), p["checkpoint"].as_i64()),
        (Some("g"), Some(30))
    );
    assert_eq!(p["gaps"][0]["first"], 10);
    assert_eq!(p["gaps"][0]["last"], 19);
    assert_eq!(p["covered"][1]["first"], 20);
}

#[tokio::test]
async fn nothing_to_audit_is_an_error_not_a_clean_report() {
    let a = Archive::local();
    a.file(0, 0..=9).await;
    let err = audit(&a.args(), &mut Vec::new()).await.unwrap_err();
    assert!(matches!(err, AuditError::NoCheckpoints { .. }), "{err}");
    assert!(err.to_string().contains("--checkpoints"), "{err}");

    let mut args = a.args();
    args.output = format!("{}/does-not-exist", a.spec);
    let err = audit(&args, &mut Vec::new()).await.unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::NotFound {
                flag: "--output",
                ..
            }
        ),
        "{err}"
    );
    // The audit did not create it.
    assert!(!std::path::Path::new(&args.output).exists());
}

#[tokio::test]
async fn special_characters_in_group_names_survive_the_listing() {
    for mut a in [Archive::local(), Archive::memory()] {
        a.group = "$Default {blue}#1".into();
        a.listed_file(0, 0..=9).await;
        a.checkpoint(0, 10, None).await;
        let (report, text) = a.audit().await;
        assert!(report.clean(), "{}: {text}", a.spec);
        let p = partition(&report, 0);
        assert_eq!(p.group.as_deref(), Some("$Default {blue}#1"));
        assert_eq!(p.files, 1, "{}: {text}", a.spec);
    }
}

// ---- watermarks ----
