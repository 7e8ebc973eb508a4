//! `hubcap audit` as the gate before downstream jobs, on an archive of Apache Kafka written by
//! the binary: what a reader's glob would pick up besides the archive fails it (a copy of an
//! archived file under another name, a foreign file), and `--verify` finds files whose bytes
//! changed (one bit flipped, cut short) by their CRC32C, which each manifest line records.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

const PARTITIONS: i32 = 3;

/// The archived `.avro` files under `dir`, by path.
fn archived(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = list_files(dir)
        .into_iter()
        .map(|(name, _)| dir.join(name))
        .filter(|p| p.extension().is_some_and(|e| e == "avro"))
        .collect();
    files.sort();
    files
}

fn audit_json(dir: &Path, group: &str, extra: &[&str]) -> (bool, Value) {
    let mut flags = vec!["--json"];
    flags.extend_from_slice(extra);
    let (clean, report) = audit_cli_with(dir, group, &flags);
    let start = report.find('{').expect("a JSON report");
    let end = report.rfind('}').unwrap();
    (clean, serde_json::from_str(&report[start..=end]).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_and_foreign_files_fail_the_audit_and_verify_finds_changed_bytes() {
    let t = Kafka::shared();
    let topic = unique("gate");
    let group = unique("g");
    t.create_topic(&topic, PARTITIONS).await;
    produce(&t.brokers, &topic, 0, 600).await;
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, 600);
    let out = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run_once(
        &t.brokers,
        &topic,
        &group,
        out.path().to_str().unwrap(),
        &["--window-size", "16KiB"],
    );
    assert!(ok, "{stderr}");
    let (clean, report) = audit_json(out.path(), &group, &["--verify"]);
    assert!(clean, "{report}");
    let files = archived(out.path());
    assert!(files.len() > 2 * PARTITIONS as usize, "{files:?}");

    // A second copy of an archived file beside it, as a retried copy job leaves one: every glob
    // reader would count its events twice.
    let copy = files[1].with_file_name("copy of the file.avro");
    std::fs::copy(&files[1], &copy).unwrap();
    let (clean, report) = audit_json(out.path(), &group, &[]);
    assert!(!clean, "{report}");
    assert_eq!(report["failures"]["duplicates"], 1, "{report}");
    let named = report["duplicates"][0]["path"].as_str().unwrap();
    assert!(named.ends_with("copy of the file.avro"), "{report}");
    std::fs::remove_file(&copy).unwrap();

    // A foreign file under the output: a stray, allowed with --allow-stray.
    let foreign = out.path().join(&topic).join("exports/orders.parquet");
    std::fs::create_dir_all(foreign.parent().unwrap()).unwrap();
    std::fs::write(&foreign, b"PAR1 someone else's data PAR1").unwrap();
    let (clean, report) = audit_json(out.path(), &group, &[]);
    assert!(!clean && report["failures"]["strays"] == 1, "{report}");
    let (clean, report) = audit_json(out.path(), &group, &["--allow-stray"]);
    assert!(clean, "{report}");
    std::fs::remove_file(&foreign).unwrap();

    // One bit flipped in one file, another cut short.
    let mut bytes = std::fs::read(&files[2]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&files[2], &bytes).unwrap();
    let bytes = std::fs::read(&files[3]).unwrap();
    std::fs::write(&files[3], &bytes[..bytes.len() - 100]).unwrap();
    let (clean, report) = audit_json(out.path(), &group, &[]);
    assert!(!clean, "{report}");
    assert_eq!(
        report["failures"]["unreadable"], 1,
        "without --verify only the size shows: {report}"
    );
    let (clean, report) = audit_json(out.path(), &group, &["--verify"]);
    assert!(!clean, "{report}");
    assert_eq!(report["failures"]["unreadable"], 2, "{report}");
    let reasons: Vec<String> = report["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["unreadable"].as_array().unwrap().clone())
        .map(|b| b["reason"].as_str().unwrap().to_string())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("its bytes changed since it was archived: CRC32C")),
        "{reasons:?}"
    );
}

/// `hubcap repair` restores deleted files from Kafka: the first and the last file of two
/// partitions come back byte for byte (the same CRC32C as the manifest lines), `--dry-run`
/// writes nothing, and a range Kafka's retention deleted is reported unrecoverable.
#[tokio::test(flavor = "multi_thread")]
async fn repair_restores_deleted_files_byte_for_byte_and_names_what_kafka_lost() {
    let t = Kafka::shared();
    let topic = unique("repair");
    let group = unique("g");
    t.create_topic(&topic, PARTITIONS).await;
    produce(&t.brokers, &topic, 0, 900).await;
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, 900);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, dir, &["--window-size", "16KiB"]);
    assert!(ok, "{stderr}");

    // The first and last files of partitions 0 and 2.
    let files = archived(out.path());
    let of = |p: i32| -> Vec<PathBuf> {
        files
            .iter()
            .filter(|f| f.to_str().unwrap().contains(&format!("/{topic}/{p}/")))
            .cloned()
            .collect()
    };
    let mut deleted = Vec::new();
    for p in [0, 2] {
        let mine = of(p);
        assert!(mine.len() >= 3, "{mine:?}");
        for f in [mine.first().unwrap(), mine.last().unwrap()] {
            deleted.push((f.clone(), std::fs::read(f).unwrap()));
            std::fs::remove_file(f).unwrap();
        }
    }
    let (clean, report) = audit_json(out.path(), &group, &[]);
    assert!(!clean && report["failures"]["missing"] == 4, "{report}");

    let repair = |extra: &[&str]| {
        run_with_timeout(
            hubcap()
                .args(["repair", "--output", dir, "--group", &group])
                .args(["--brokers", &t.brokers])
                .args(extra),
            std::time::Duration::from_secs(120),
        )
    };
    let (ok, stdout, stderr) = repair(&["--dry-run"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("repair: 4 would restore, 0 unrecoverable"),
        "{stdout}"
    );
    assert!(
        deleted.iter().all(|(f, _)| !f.exists()),
        "--dry-run wrote nothing"
    );

    let (ok, stdout, stderr) = repair(&[]);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("repair: 4 restored, 0 unrecoverable"),
        "{stdout}"
    );
    for (f, bytes) in &deleted {
        assert_eq!(
            &std::fs::read(f).unwrap(),
            bytes,
            "{f:?} is byte for byte the same"
        );
    }
    let (clean, report) = audit_json(out.path(), &group, &["--verify"]);
    assert!(clean, "{report}");

    // Retention deletes partition 1's first records from Kafka; its first file goes too.
    let first = of(1)[0].clone();
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &t.brokers)
            .create()
            .unwrap();
    let mut upto = rdkafka::TopicPartitionList::new();
    upto.add_partition_offset(&topic, 1, rdkafka::Offset::Offset(5))
        .unwrap();
    admin
        .delete_records(&upto, &rdkafka::admin::AdminOptions::new())
        .await
        .unwrap();
    std::fs::remove_file(&first).unwrap();
    let (ok, stdout, _) = repair(&[]);
    assert!(!ok, "an unrecoverable file fails the repair:\n{stdout}");
    assert!(
        stdout.contains("unrecoverable: ") && stdout.contains("its log starts at 5 (retention)"),
        "{stdout}"
    );
    assert!(!first.exists());
}
