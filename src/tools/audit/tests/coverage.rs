//! Coverage rules without a store: watermarks, gaps Kafka still holds, the flags.

use super::*;

fn checked(checkpoint: Option<i64>, spans: &[(i64, i64)]) -> PartitionAudit {
    let mut p = PartitionAudit {
        group: Some("g".into()),
        topic: "t".into(),
        checkpoint,
        ..Default::default()
    };
    p.check_files(
        spans
            .iter()
            .map(|&(first, last)| FileSpan {
                path: format!("f{first}"),
                first_offset: first,
                last_offset: last,
                events: (last - first + 1) as u64,
            })
            .collect(),
    );
    p
}

#[test]
fn watermarks_find_unarchived_heads_and_tails() {
    // Kafka holds 0..30; files hold 5..=19; the checkpoint is 20.
    let mut p = checked(Some(20), &[(5, 19)]);
    p.compare_watermarks(0, 30);
    assert_eq!(
        p.gaps,
        vec![Gap {
            offsets: range(0, 4),
            after: None,
            before: Some("f5".into()),
            kafka: None,
        }]
    );
    let k = p.kafka.clone().unwrap();
    assert_eq!(k.unarchived, Some(range(20, 29)));
    assert_eq!((k.retention_lost, k.checkpoint_ahead), (None, false));
    assert_eq!(p.failures(false).gaps, 1);

    // Retention already deleted what the archive starts with: no gap, and what came before the
    // first file was removed before hubcap read it.
    let mut p = checked(Some(20), &[(5, 19)]);
    p.compare_watermarks(10, 30);
    assert!(p.gaps.is_empty());
    assert_eq!(
        p.kafka.as_ref().unwrap().removed_before_archived,
        Some(range(0, 4))
    );
    assert_eq!(p.failures(false).total(), 0);
}

#[test]
fn watermarks_find_retention_losses_and_recreated_topics() {
    let mut p = checked(Some(20), &[(0, 19)]);
    p.compare_watermarks(25, 40);
    let k = p.kafka.clone().unwrap();
    assert_eq!(k.retention_lost, Some(range(20, 24)));
    assert_eq!(k.unarchived, Some(range(25, 39)));
    // Retention losses fail even with gaps allowed.
    assert_eq!(p.failures(true).retention_lost, 1);

    let mut p = checked(Some(20), &[(0, 19)]);
    p.compare_watermarks(0, 8);
    assert!(p.kafka.as_ref().unwrap().checkpoint_ahead);
    assert_eq!(p.failures(false).total(), 1);

    // Up to date: nothing to say.
    let mut p = checked(Some(20), &[(0, 19)]);
    p.compare_watermarks(0, 20);
    assert_eq!(p.kafka.as_ref().unwrap().unarchived, None);
    assert_eq!(p.failures(false).total(), 0);
}

#[test]
fn partitions_only_kafka_has_are_added_as_not_archived() {
    let mut report = AuditReport {
        partitions: vec![checked(Some(10), &[(0, 9)])],
        ..Default::default()
    };
    let marks: Watermarks = [
        (("t".to_string(), 0), (0, 10)),
        (("t".to_string(), 1), (3, 7)),
    ]
    .into_iter()
    .collect();
    report.compare_watermarks(&marks);
    assert!(report.clean());
    assert_eq!(report.partitions.len(), 2, "{report:#?}");
    let added = partition(&report, 1);
    assert_eq!(added.group.as_deref(), Some("g"));
    assert_eq!(added.kafka.as_ref().unwrap().unarchived, Some(range(3, 6)));
    let text = report.text();
    assert!(
        text.contains("t/1  checkpoint none  files 0  offsets none  kafka 3..7  no checkpoint"),
        "{text}"
    );
    assert!(
        text.contains("not archived yet: 3..=6 (4 offsets)"),
        "{text}"
    );
}

#[test]
fn percent_decoding_is_the_inverse_of_object_paths() {
    for raw in ["plain", "$Default {blue}#1", "100%", "a%zz", "é"] {
        let part = object_store::path::PathPart::from(raw);
        assert_eq!(percent_decode(part.as_ref()), raw, "{}", part.as_ref());
    }
}

#[test]
fn coverage_rules_at_the_edges() {
    // (files, checkpoint) → (covered, gaps, overlaps, past the checkpoint, orphans)
    type Case = (
        &'static [(i64, i64)],
        i64,
        &'static [(i64, i64)],
        &'static [(i64, i64)],
        &'static [(i64, i64)],
        usize,
        usize,
    );
    let table: &[Case] = &[
        // Adjacent files: no gap, no overlap.
        (&[(0, 9), (10, 19)], 20, &[(0, 19)], &[], &[], 0, 0),
        // Sharing one offset is an overlap.
        (&[(0, 9), (9, 19)], 20, &[(0, 19)], &[], &[(9, 9)], 0, 0),
        // A file inside another, then one that overlaps the outer one only.
        (
            &[(0, 20), (5, 6), (15, 25)],
            26,
            &[(0, 25)],
            &[],
            &[(5, 6), (15, 20)],
            0,
            0,
        ),
        // A single missing offset; files given out of order.
        (
            &[(11, 19), (0, 9)],
            20,
            &[(0, 9), (11, 19)],
            &[(10, 10)],
            &[],
            0,
            0,
        ),
        // Reaching past the checkpoint; an orphan starting exactly at it.
        (&[(0, 9), (10, 14)], 12, &[(0, 14)], &[], &[], 1, 0),
        (&[(0, 9), (10, 14)], 10, &[(0, 9)], &[], &[], 0, 1),
        // Nothing below the checkpoint: no gap can be placed without Kafka's low watermark.
        (&[(10, 14)], 5, &[], &[], &[], 0, 1),
    ];
    for &(files, next, covered, gaps, overlaps, past, orphans) in table {
        let p = checked(Some(next), files);
        let ranges = |r: &[(i64, i64)]| r.iter().map(|&(f, l)| range(f, l)).collect::<Vec<_>>();
        let case = format!("{files:?} checkpoint {next}");
        assert_eq!(p.covered, ranges(covered), "{case}");
        assert_eq!(
            p.gaps.iter().map(|g| g.offsets).collect::<Vec<_>>(),
            ranges(gaps),
            "{case}"
        );
        assert_eq!(
            p.overlaps.iter().map(|o| o.offsets).collect::<Vec<_>>(),
            ranges(overlaps),
            "{case}"
        );
        assert_eq!(
            (p.past_checkpoint.len(), p.orphans.len()),
            (past, orphans),
            "{case}"
        );
    }
}

#[test]
fn partitions_only_kafka_has_are_added_once_per_group() {
    let mut h = checked(Some(10), &[(0, 9)]);
    h.group = Some("h".into());
    let mut report = AuditReport {
        partitions: vec![checked(Some(10), &[(0, 9)]), h],
        ..Default::default()
    };
    let marks: Watermarks = (0..4).map(|p| (("t".to_string(), p), (0, 10))).collect();
    report.compare_watermarks(&marks);
    let keys: Vec<(Option<&str>, i32)> = report
        .partitions
        .iter()
        .map(|p| (p.group.as_deref(), p.partition))
        .collect();
    let expected: Vec<(Option<&str>, i32)> = ["g", "h"]
        .into_iter()
        .flat_map(|g| (0..4).map(move |p| (Some(g), p)))
        .collect();
    assert_eq!(keys, expected);
}

#[test]
fn command_line_defaults_and_flags() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: AuditArgs,
    }
    // clap checks the definitions themselves (duplicate flags, bad defaults) here.
    <Cli as clap::CommandFactory>::command().debug_assert();
    let args = Cli::try_parse_from([
        "audit",
        "--topic",
        "a",
        "--topic",
        "b",
        "--allow-gaps",
        "--brokers",
        "k:9092",
        "-X",
        "security.protocol=SSL",
        "--json",
    ])
    .unwrap()
    .args;
    assert_eq!(args.topics, vec!["a", "b"]);
    assert!(args.allow_gaps && args.json);
    assert_eq!(args.kafka[0].0, "security.protocol=SSL");
    assert_eq!(args.brokers.as_deref(), Some("k:9092"));
    if std::env::var_os("HUBCAP_PATH_FORMAT").is_none() {
        assert_eq!(args.path_format, DEFAULT_TEMPLATE);
    }
}

// ---- what Kafka holds in gaps ----

/// Partition 0 of topic `t`, files `spans` below `checkpoint`, compared with (low, high), and
/// its gaps answered by `answer` as Kafka would (only those `gaps_to_check` asks about).
fn kafka_checked(
    checkpoint: i64,
    spans: &[(i64, i64)],
    (low, high): (i64, i64),
    answer: impl Fn(OffsetRange) -> GapCheck,
) -> AuditReport {
    let mut report = AuditReport {
        partitions: vec![checked(Some(checkpoint), spans)],
        ..Default::default()
    };
    report.partitions[0].compare_watermarks(low, high);
    let checks: GapChecks = report
        .gaps_to_check()
        .into_iter()
        .flat_map(|((topic, partition), gaps)| {
            let answer = &answer;
            gaps.into_iter()
                .map(move |g| ((topic.clone(), partition, g), answer(g)))
        })
        .collect();
    report.apply_gap_checks(&checks);
    report
}

fn json_of(report: &AuditReport) -> serde_json::Value {
    let mut out = Vec::new();
    write_report(report, true, &mut out).unwrap();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn gaps_kafka_holds_no_committed_record_in_are_not_failures() {
    // Transaction markers at 10 and at 20..=21 (an aborted record and its marker), as a
    // transactional topic leaves them between files and before the checkpoint.
    let report = kafka_checked(22, &[(0, 9), (11, 19)], (0, 22), |_| GapCheck::NoRecords);
    let p = partition(&report, 0);
    assert_eq!(p.gaps.len(), 2, "{p:#?}");
    assert!(p.gaps.iter().all(Gap::explained), "{p:#?}");
    assert!(report.clean());
    let text = report.text();
    assert!(
        text.contains(
            "offsets 10..10 hold no committed record in Kafka (transaction markers, aborted or \
             compacted records): nothing lost (between f0 and f11)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "offsets 20..21 hold no committed record in Kafka (transaction markers, aborted or \
             compacted records): nothing lost (after f11, up to the checkpoint)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("offsets 0..=9, 11..=19  kafka 0..22  clean\n"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "audit: clean (1 partitions, 2 files, 19 events; not failures: 2 gaps without \
             committed records)\n"
        ),
        "{text}"
    );
    let json = json_of(&report);
    assert_eq!(json["clean"], true);
    assert_eq!(json["failures"]["gaps"], 0);
    let gap = &json["partitions"][0]["gaps"][0];
    assert_eq!(
        (gap["first"].as_i64(), gap["last"].as_i64()),
        (Some(10), Some(10))
    );
    assert_eq!(gap["kafka"], serde_json::json!({"check": "no_records"}));
}

#[test]
fn a_record_kafka_still_has_in_a_gap_is_a_loss() {
    let report = kafka_checked(30, &[(0, 9), (20, 29)], (0, 30), |g| GapCheck::RecordAt {
        offset: g.first + 2,
    });
    let p = partition(&report, 0);
    assert_eq!(p.gaps[0].kafka, Some(GapCheck::RecordAt { offset: 12 }));
    assert_eq!(report.failures().gaps, 1);
    let text = report.text();
    assert!(
        text.contains(
            "gap 10..=19 (10 offsets) between f0 and f20; Kafka still has a record at offset 12: \
             lost\n"
        ),
        "{text}"
    );
    assert!(text.contains("audit: FAILED: 1 gap ("), "{text}");
    let json = json_of(&report);
    assert_eq!(
        json["partitions"][0]["gaps"][0]["kafka"],
        serde_json::json!({"check": "record_at", "offset": 12})
    );

    // --allow-gaps still allows it.
    let mut report = report;
    report.allow_gaps = true;
    assert!(report.clean());
    assert!(report.text().contains("not failures: 1 allowed gap)"));
}

#[test]
fn gaps_kafka_no_longer_holds_stay_gaps() {
    // Retention moved the log start into the gap: it cannot be checked, and is not asked about.
    let report = kafka_checked(30, &[(0, 9), (20, 29)], (15, 30), |g| {
        panic!("{g} was asked about")
    });
    let p = partition(&report, 0);
    let reason = "Kafka no longer holds these offsets (its log starts at 15)";
    assert_eq!(
        p.gaps[0].kafka,
        Some(GapCheck::NotChecked {
            reason: reason.into()
        })
    );
    assert_eq!(report.failures().gaps, 1);
    let text = report.text();
    assert!(
        text.contains(&format!(
            "gap 10..=19 (10 offsets) between f0 and f20; not checked in Kafka: {reason}\n"
        )),
        "{text}"
    );
    let json = json_of(&report);
    assert_eq!(
        json["partitions"][0]["gaps"][0]["kafka"],
        serde_json::json!({"check": "not_checked", "reason": reason})
    );

    // A checkpoint past the partition's end: Kafka's offsets are other records.
    let report = kafka_checked(30, &[(0, 9), (20, 29)], (0, 8), |g| {
        panic!("{g} was asked about")
    });
    let gap = &partition(&report, 0).gaps[0];
    assert!(
        matches!(&gap.kafka, Some(GapCheck::NotChecked { reason }) if reason.contains("past the partition's end")),
        "{gap:?}"
    );
    assert!(!report.clean());
}

#[test]
fn a_gap_is_checked_once_for_every_group_that_has_it() {
    let mut h = checked(Some(30), &[(0, 9), (20, 24)]);
    h.group = Some("h".into());
    let mut report = AuditReport {
        partitions: vec![checked(Some(30), &[(0, 9), (20, 29)]), h],
        ..Default::default()
    };
    let marks: Watermarks = [(("t".to_string(), 0), (0, 30))].into_iter().collect();
    report.compare_watermarks(&marks);
    let queries = report.gaps_to_check();
    assert_eq!(
        queries,
        [(("t".to_string(), 0), vec![range(10, 19), range(25, 29)])]
            .into_iter()
            .collect::<GapQueries>()
    );
    // Answered once, applied to both groups.
    let checks: GapChecks = [
        (("t".to_string(), 0, range(10, 19)), GapCheck::NoRecords),
        (
            ("t".to_string(), 0, range(25, 29)),
            GapCheck::RecordAt { offset: 25 },
        ),
    ]
    .into_iter()
    .collect();
    report.apply_gap_checks(&checks);
    let by_group: Vec<(Option<&str>, u64)> = report
        .partitions
        .iter()
        .map(|p| (p.group.as_deref(), p.failures(false).gaps))
        .collect();
    assert_eq!(by_group, vec![(Some("g"), 0), (Some("h"), 1)]);
}

#[test]
fn offsets_retention_removed_before_the_first_read_are_a_note() {
    // (checkpoint, files, low watermark) → offsets removed before hubcap first read them
    type Case = (Option<i64>, &'static [(i64, i64)], i64, Option<(i64, i64)>);
    let table: &[Case] = &[
        // The first file starts at the low watermark, or below it (retention went on since).
        (Some(20), &[(5, 19)], 5, Some((0, 4))),
        (Some(20), &[(5, 19)], 12, Some((0, 4))),
        // Kafka still holds offsets before the first file: a gap, not this note.
        (Some(20), &[(5, 19)], 3, None),
        (Some(20), &[(5, 19)], 0, None),
        // The archive starts at offset 0: nothing was removed before it.
        (Some(20), &[(0, 19)], 10, None),
        // No file: only a checkpoint at the low watermark says hubcap started there.
        (Some(20), &[], 20, Some((0, 19))),
        (Some(20), &[], 25, None),
        (Some(20), &[], 10, None),
        (Some(0), &[], 0, None),
        (None, &[], 10, None),
    ];
    for &(checkpoint, files, low, removed) in table {
        let mut p = checked(checkpoint, files);
        p.compare_watermarks(low, 40);
        let case = format!("checkpoint {checkpoint:?}, files {files:?}, low {low}");
        let k = p.kafka.as_ref().unwrap();
        assert_eq!(
            k.removed_before_archived,
            removed.map(|(f, l)| range(f, l)),
            "{case}"
        );
        // A note, never a failure (a checkpoint below the low watermark fails on its own).
        let lost = u64::from(k.retention_lost.is_some());
        assert_eq!(
            p.failures(true).total(),
            lost,
            "{case}: {:?}",
            p.failures(true)
        );
    }
}

#[test]
fn a_gap_before_the_first_file_without_records_extends_the_retention_note() {
    // Kafka's log starts at 3 with offsets that hold no committed record (the end of a
    // transaction whose records retention deleted), then the first file at 5.
    let report = kafka_checked(20, &[(5, 19)], (3, 20), |_| GapCheck::NoRecords);
    let p = partition(&report, 0);
    assert_eq!(
        p.kafka.as_ref().unwrap().removed_before_archived,
        Some(range(0, 2))
    );
    assert!(report.clean());
    // No file at all, and nothing committed from the low watermark to the checkpoint.
    let report = kafka_checked(20, &[], (10, 20), |_| GapCheck::NoRecords);
    let p = partition(&report, 0);
    assert_eq!(
        p.kafka.as_ref().unwrap().removed_before_archived,
        Some(range(0, 9))
    );
    assert!(report.clean(), "{}", report.text());
    // A record there: lost, and no note.
    let report = kafka_checked(20, &[(5, 19)], (3, 20), |_| GapCheck::RecordAt {
        offset: 3,
    });
    let p = partition(&report, 0);
    assert_eq!(p.kafka.as_ref().unwrap().removed_before_archived, None);
    assert!(!report.clean());
}

#[test]
fn the_retention_note_in_text_and_json() {
    let report = kafka_checked(800, &[(500, 799)], (500, 800), |g| {
        panic!("{g} was asked about")
    });
    assert!(report.clean());
    let text = report.text();
    assert!(
        text.contains(
            "  offsets 0..499 were removed by Kafka's retention before hubcap first read this \
             partition (never archived)\n"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("audit: clean (1 partitions, 1 files, 300 events)\n"),
        "{text}"
    );
    let json = json_of(&report);
    assert_eq!(
        json["partitions"][0]["kafka"]["removed_before_archived"],
        serde_json::json!({"first": 0, "last": 499})
    );
}
