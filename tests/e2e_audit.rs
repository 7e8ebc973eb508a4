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
    let a = OnceArchive::new(t, "gate", PARTITIONS, 600, &["--window-size", "16KiB"]).await;
    let (topic, group, out) = (a.topic.clone(), a.group.clone(), &a.out);
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
    let a = OnceArchive::new(t, "repair", PARTITIONS, 900, &["--window-size", "16KiB"]).await;
    let (topic, group, out, dir) = (a.topic.clone(), a.group.clone(), &a.out, a.output());

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
        stdout.contains("repair: 4 would restore, 0 would quarantine, 0 unrecoverable"),
        "{stdout}"
    );
    assert!(
        deleted.iter().all(|(f, _)| !f.exists()),
        "--dry-run wrote nothing"
    );

    let (ok, stdout, stderr) = repair(&[]);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("repair: 4 restored, 0 quarantined, 0 unrecoverable"),
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

/// Repair beside a continuous archiver of the same group: it restores a deleted file and moves
/// a copy and a foreign file under `_quarantine/` (with a note of why), while the archiver keeps
/// its partitions (no rebalance) and goes on archiving; afterwards every record is in exactly
/// one file and the audit, with `--verify`, is clean.
#[tokio::test(flavor = "multi_thread")]
async fn repair_beside_a_running_archiver_takes_nothing_from_it() {
    let t = Kafka::shared();
    let topic = unique("beside");
    let group = unique("g");
    t.create_topic(&topic, PARTITIONS).await;
    let mut produced = produce(&t.brokers, &topic, 0, 600).await;
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap().to_string();
    let mut archiver = Instance::spawn("archiver", {
        let mut cmd = hubcap();
        cmd.args(["run", "--brokers", &t.brokers, "--topic", &topic])
            .args(["--group", &group, "--output", &dir])
            .args(["--window-size", "16KiB", "--window-time", "1s"]);
        cmd
    });
    let caught_up = |produced: &[Produced], archiver: &Instance| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let done = (0..PARTITIONS).all(|p| {
                let end = produced.iter().filter(|r| r.partition == p).count() as i64;
                let path = checkpoint_file(out.path(), &group, &topic, p);
                path.exists() && local_next_offset(out.path(), &group, &topic, p) == end
            });
            if done {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{}", archiver.log());
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    caught_up(&produced, &archiver);

    let files = archived(out.path());
    let (gone, kept) = (files[1].clone(), std::fs::read(&files[1]).unwrap());
    std::fs::remove_file(&gone).unwrap();
    let copy = files[2].with_file_name("copy.avro");
    std::fs::copy(&files[2], &copy).unwrap();
    let stray = out.path().join("exports/orders.parquet");
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, b"not ours").unwrap();
    let assigned = archiver.count_since(0, "partitions assigned");

    let (ok, stdout, stderr) = run_with_timeout(
        hubcap()
            .args(["repair", "--output", &dir, "--group", &group])
            .args(["--brokers", &t.brokers]),
        std::time::Duration::from_secs(120),
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("repair: 1 restored, 2 quarantined, 0 unrecoverable"),
        "{stdout}"
    );
    assert_eq!(std::fs::read(&gone).unwrap(), kept);
    assert!(!copy.exists() && !stray.exists());
    let relative = |p: &Path| p.strip_prefix(out.path()).unwrap().to_path_buf();
    for moved in [&copy, &stray] {
        let to = out.path().join("_quarantine").join(relative(moved));
        assert!(to.exists(), "{to:?}");
        let note = to.with_file_name(format!(
            "{}.why.json",
            to.file_name().unwrap().to_str().unwrap()
        ));
        let note: Value = serde_json::from_slice(&std::fs::read(note).unwrap()).unwrap();
        assert!(
            note["why"].as_str().unwrap().starts_with("a duplicate")
                || note["why"].as_str().unwrap().starts_with("a stray"),
            "{note}"
        );
    }

    // The archiver kept its partitions and goes on.
    produced.extend(produce(&t.brokers, &topic, 600, 300).await);
    caught_up(&produced, &archiver);
    assert_eq!(
        archiver.count_since(0, "partitions assigned"),
        assigned,
        "no rebalance:\n{}",
        archiver.log()
    );
    archiver.signal(15);
    assert!(archiver
        .wait_exit(std::time::Duration::from_secs(60))
        .success());
    let a = audit(&read_local(out.path()), &topic, &produced);
    assert_eq!((a.events, a.duplicates, a.missing), (900, 0, 0));
    let (clean, report) = audit_json(out.path(), &group, &["--verify"]);
    assert!(clean, "{report}");
}

/// Parquet files come back from Kafka byte for byte too: the writer is deterministic for the
/// same records and row group size (`blockBytes`).
#[tokio::test(flavor = "multi_thread")]
async fn repair_restores_parquet_files_byte_for_byte() {
    let t = Kafka::shared();
    let flags = ["--format", "parquet", "--window-size", "16KiB"];
    let a = OnceArchive::new(t, "repairpq", 2, 600, &flags).await;
    let (topic, group, out, dir) = (a.topic.clone(), a.group.clone(), &a.out, a.output());
    let mut files: Vec<PathBuf> = list_files(out.path())
        .into_iter()
        .map(|(name, _)| out.path().join(name))
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .filter(|p| p.to_str().unwrap().contains(&format!("/{topic}/1/")))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    let mut deleted = Vec::new();
    for f in [files.first().unwrap(), files.last().unwrap()] {
        deleted.push((f.clone(), std::fs::read(f).unwrap()));
        std::fs::remove_file(f).unwrap();
    }
    let (ok, stdout, stderr) = run_with_timeout(
        hubcap()
            .args(["repair", "--output", dir, "--group", &group])
            .args(["--brokers", &t.brokers]),
        std::time::Duration::from_secs(120),
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("repair: 2 restored"), "{stdout}");
    for (f, bytes) in &deleted {
        assert_eq!(
            &std::fs::read(f).unwrap(),
            bytes,
            "{f:?} is byte for byte the same"
        );
    }
    let (clean, report) = audit_json(out.path(), &group, &["--verify"]);
    assert!(clean, "{report}");
}
