//! The memory budget at 256 partitions, against Apache Kafka: `hubcap run --once` archives
//! 256 MB of records in 256 partitions (each partition's file open from its first record to its
//! last, so all 256 are open at once) with the default `--memory-limit` of 256 MiB, in each
//! format, and its peak resident memory stays under it. The same run (Avro/deflate) with a
//! budget of 2 GiB goes over, so the budget, not the workload, is what keeps it there.
//!
//! Memory is a property of the build people run: this test builds and measures the release
//! binary (a debug build's encoders are slow enough to change how much waits in memory).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;

const PARTITIONS: i32 = 256;
/// Records of about 1 KiB per partition: 256 MB in all.
const PER_PARTITION: usize = 1000;

fn load(brokers: &str, topic: &str) {
    let total = PARTITIONS as usize * PER_PARTITION;
    preload_kib_records(brokers, topic, PARTITIONS, total);
    wait_for_high_watermarks(brokers, topic, PARTITIONS, total as i64);
}

/// The release build of hubcap, built once per test run.
fn release_hubcap() -> Command {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let program = BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--bin", "hubcap"])
            .current_dir(root)
            .status()
            .expect("run cargo build --release");
        assert!(status.success(), "cargo build --release failed");
        std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("target"), PathBuf::from)
            .join("release/hubcap")
    });
    hubcap_at(program)
}

/// Archives the whole topic in a fresh group; returns the peak resident memory in MiB.
fn archive(brokers: &str, topic: &str, flags: &[&str]) -> f64 {
    let out = tempfile::tempdir().unwrap();
    let group = unique("mem");
    let mut cmd = release_hubcap();
    cmd.env("HUBCAP_LOG", "warn")
        .args(["run", "--brokers", brokers, "--topic", topic, "--once"])
        .args(["--group", &group])
        .args(["--output", out.path().to_str().unwrap()])
        .args(flags);
    let (_, _, peak_rss_mib) = measure(cmd);
    let files = list_files(out.path());
    let data: Vec<_> = files
        .iter()
        .filter(|(name, _)| !name.starts_with('_'))
        .collect();
    assert_eq!(data.len(), PARTITIONS as usize, "one file per partition");
    for p in 0..PARTITIONS {
        assert_eq!(
            local_next_offset(out.path(), &group, topic, p),
            PER_PARTITION as i64,
            "partition {p} archived to its end"
        );
    }
    peak_rss_mib
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_budget_holds_at_256_partitions_in_every_format() {
    let t = Kafka::shared();
    let topic = unique("memory");
    t.create_topic(&topic, PARTITIONS).await;
    let brokers = t.brokers.clone();
    let loaded = topic.clone();
    tokio::task::spawn_blocking(move || load(&brokers, &loaded))
        .await
        .unwrap();

    let formats: [&[&str]; 3] = [
        &["--format", "avro", "--codec", "null"],
        &["--format", "avro", "--codec", "deflate"],
        &["--format", "parquet"],
    ];
    for flags in formats {
        let rss = archive(&t.brokers, &topic, flags);
        println!("{flags:?}: peak RSS {rss:.0} MiB with the default --memory-limit (256 MiB)");
        assert!(
            rss <= 256.0,
            "{flags:?}: peak RSS {rss:.0} MiB over the default 256 MiB budget"
        );
    }
    // Deflate is the encoder slow enough for records to wait: with room, they fill it.
    let big = archive(
        &t.brokers,
        &topic,
        &[
            "--format",
            "avro",
            "--codec",
            "deflate",
            "--memory-limit",
            "2GiB",
        ],
    );
    println!("avro/deflate with --memory-limit 2GiB: peak RSS {big:.0} MiB");
    assert!(
        big > 256.0,
        "with a 2 GiB budget the same run stays at {big:.0} MiB: this workload does not test the budget"
    );
}

/// `hubcap replay --memory-limit 32MiB` over an archive of about 150 MB (Avro, eight files of
/// about 19 MB): every event produced, and the peak resident memory far below the archive
/// (files stream in chunks sized from the budget; the producer's queue is a share of it).
/// Measured about 60 MiB; the bound leaves room for allocator and thread noise.
#[tokio::test(flavor = "multi_thread")]
async fn replay_holds_a_small_budget_over_a_far_larger_archive() {
    const REPLAY_PARTITIONS: i32 = 8;
    const RECORDS: usize = 160_000;
    let t = Kafka::shared();
    let topic = unique("replay-mem");
    t.create_topic(&topic, REPLAY_PARTITIONS).await;
    let brokers = t.brokers.clone();
    let loaded = topic.clone();
    tokio::task::spawn_blocking(move || {
        preload_kib_records(&brokers, &loaded, REPLAY_PARTITIONS, RECORDS);
        wait_for_high_watermarks(&brokers, &loaded, REPLAY_PARTITIONS, RECORDS as i64);
    })
    .await
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let output = out.path().to_str().unwrap();
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &unique("g"), output, &[]);
    assert!(ok, "archiving failed: {stderr}");

    let target = unique("replayed-mem");
    t.create_topic(&target, REPLAY_PARTITIONS).await;
    let mut cmd = release_hubcap();
    cmd.env("HUBCAP_LOG", "warn")
        .args(["replay", "--from", output, "--to-topic", &target])
        .args(["--brokers", &t.brokers, "--memory-limit", "32MiB"]);
    let (_, _, rss) = measure(cmd);
    let brokers = t.brokers.clone();
    let got = tokio::task::spawn_blocking(move || {
        stable_high_watermarks(&brokers, &target, REPLAY_PARTITIONS)
    })
    .await
    .unwrap();
    // Transaction markers take an offset each: the topic holds at least the records.
    assert!(got >= RECORDS, "{got} offsets for {RECORDS} records");
    println!("replay of ~150 MB with --memory-limit 32MiB: peak RSS {rss:.0} MiB");
    assert!(
        rss <= 120.0,
        "peak RSS {rss:.0} MiB with --memory-limit 32MiB over a 150 MB archive"
    );
}
