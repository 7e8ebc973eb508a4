//! Peak memory against window size: archives the same preloaded topic with 16 MiB and 1 GiB
//! windows, in Avro and Parquet, and prints each run's peak RSS (from `wait4`'s rusage).
//! Windows stream out as they fill, so the peak should not follow the window size.
//!
//!   cargo bench --bench memory                      # 16 partitions, 600,000 records of ~1 KiB (~560 MiB)
//!   HUBCAP_BENCH_RECORDS=400000 cargo bench --bench memory
//!   HUBCAP_BENCH_FORMATS=parquet HUBCAP_BENCH_ROW_GROUP=2MiB cargo bench --bench memory
//!   HUBCAP_BENCH_ARGS="-X queued.max.messages.kbytes=4096" cargo bench --bench memory
//!
//! Needs the test tools (scripts/setup-test-env): it starts its own Apache Kafka broker.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::{hubcap, preload_kib_records, unique, Kafka};

const PARTITIONS: i32 = 16;

/// Runs one `--once` archive and returns (peak RSS in MiB, seconds, files written).
fn run(brokers: &str, topic: &str, format: &str, window: &str) -> (f64, f64, usize) {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = hubcap();
    cmd.env("HUBCAP_LOG", "warn")
        .args([
            "run",
            "--brokers",
            brokers,
            "--topic",
            topic,
            "--group",
            &unique("bench"),
            "--once",
        ])
        .args([
            "--output",
            out.path().to_str().unwrap(),
            "--format",
            format,
            "--window-size",
            window,
        ])
        .args(["--window-time", "1h"])
        // Parquet row groups: hubcap's default (a budget shared by the partitions) unless set.
        .args(
            std::env::var("HUBCAP_BENCH_ROW_GROUP")
                .map(|size| vec!["--row-group-size".to_string(), size])
                .unwrap_or_default(),
        )
        .args(
            std::env::var("HUBCAP_BENCH_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        );
    let (seconds, _, peak_rss_mib) = common::measure(cmd);
    (peak_rss_mib, seconds, common::list_files(out.path()).len())
}

fn main() {
    let records: usize = std::env::var("HUBCAP_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let t = Kafka::start();
    let topic = unique("bench");
    rt.block_on(t.create_topic(&topic, PARTITIONS));
    let loading = Instant::now();
    preload_kib_records(&t.brokers, &topic, PARTITIONS, records);
    let records = common::stable_high_watermarks(&t.brokers, &topic, PARTITIONS);
    let mib = records as f64 * 0.95 / 1024.0;
    println!(
        "preloaded {records} records (~{mib:.0} MiB) into {PARTITIONS} partitions in {:.1}s",
        loading.elapsed().as_secs_f64()
    );
    println!(
        "{:<8} {:>8} {:>14} {:>9} {:>7}",
        "format", "window", "peak RSS MiB", "seconds", "files"
    );
    let formats = std::env::var("HUBCAP_BENCH_FORMATS").unwrap_or_else(|_| "avro,parquet".into());
    for format in formats.split(',') {
        let mut peaks = Vec::new();
        for window in ["16MiB", "1GiB"] {
            let (rss, secs, files) = run(&t.brokers, &topic, format, window);
            println!("{format:<8} {window:>8} {rss:>14.1} {secs:>9.1} {files:>7}");
            peaks.push(rss);
        }
        println!(
            "{format:<8} peak RSS ratio 1GiB / 16MiB windows: {:.2}",
            peaks[1] / peaks[0]
        );
    }
}
