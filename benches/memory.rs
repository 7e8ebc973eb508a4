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

use std::time::{Duration, Instant};

use common::{hubcap, unique, Kafka};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

const PARTITIONS: i32 = 16;

/// Loads `records` values of ~1 KiB, batched.
fn preload(brokers: &str, topic: &str, records: usize) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("batch.size", "262144")
        .create()
        .unwrap();
    // Hex of a cheap hash: compresses about 2:1, like real JSON does, so Parquet files reach
    // their size window too.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..records {
        let key = format!("user-{}", i % 1000);
        let pad: String = (0..56)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("{:016x}", x)
            })
            .collect();
        let body = format!(r#"{{"type":"track","n":{i},"pad":"{pad}"}}"#);
        let mut rec = BaseRecord::to(topic)
            .key(&key)
            .payload(&body)
            .partition((i % PARTITIONS as usize) as i32);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
}

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
    preload(&t.brokers, &topic, records);
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
