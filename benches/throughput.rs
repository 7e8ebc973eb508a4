//! Throughput against the bare-consumer limit: preloads one topic, then in the same run reads it
//! to the end with a bare rdkafka consumer (same consumer settings as hubcap, no work done on the
//! records) and archives it with `hubcap run --once` in Avro (null, deflate) and Parquet (zstd).
//! Each case runs in its own process, each run of every case in turn; the table shows medians,
//! and each case's ratio to the bare consumer of the same broker, topic and run.
//!
//! Two brokers, so that one of them is not the limit:
//! - librdkafka's mock cluster, in a process of its own (this binary, `--mock-child`): fast, but
//!   it keeps only about 5 MB per partition, so the topic has many partitions of 15,000 records;
//! - Apache Kafka (the test tools' broker), whose JVM shares this machine's cores with the cases.
//!
//! Each broker at 16 and at 256 partitions, the same records per partition.
//!
//!   cargo bench --bench throughput
//!   HUBCAP_BENCH_RUNS=1 HUBCAP_BENCH_BROKERS=mock HUBCAP_BENCH_PARTITIONS=256 cargo bench --bench throughput
//!
//! A last table shows each format's encoding alone, on one thread, over the same events in
//! memory: the ceiling hubcap's own work puts on a run, whatever the broker.
//!
//! Knobs (environment): HUBCAP_BENCH_BROKERS (mock,kafka; empty: only the encoding table), HUBCAP_BENCH_PARTITIONS (16,256),
//! HUBCAP_BENCH_RECORDS_PER_PARTITION (15,000), HUBCAP_BENCH_RUNS (3), HUBCAP_BENCH_CASES
//! (comma-separated subset of baseline,avro-null,avro-deflate,parquet-zstd, and not run by default
//! parquet-delta, parquet-iceberg, parquet-delta-iceberg: Parquet with --table delta, iceberg or
//! delta,iceberg), HUBCAP_BENCH_WINDOW (--window-size for every case,
//! e.g. 256KiB for many files), HUBCAP_BENCH_ARGS (more `hubcap run` arguments for every case,
//! the baseline's client settings too, e.g. `--memory-limit 1GiB`), HUBCAP_BENCH_WRAP (a
//! command hubcap runs under, e.g. `perf record -g -o /tmp/perf.data`), HUBCAP_BENCH_KAFKA
//! (host:port of a broker to use instead of starting one; its topics are kept and reused by the
//! next run), HUBCAP_BENCH_OUT (where the cases write: by default `/dev/shm`, a memory file system,
//! so that the disk's writeback is not what is measured). Needs the test tools
//! (scripts/setup-test-env) for Apache Kafka.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{hubcap, hubcap_at, unique, Kafka};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A RudderStack-like event of about 200 bytes, its key (the user) and two headers.
fn event(i: usize) -> (String, String, [(&'static str, String); 2]) {
    const EVENTS: [&str; 4] = [
        "Product Viewed",
        "Product Added",
        "Checkout Started",
        "Order Completed",
    ];
    let user = format!("user-{}", (i * 7919) % 50_000);
    let body = format!(
        r#"{{"type":"track","event":"{}","userId":"{user}","messageId":"{:016x}","properties":{{"sku":"SKU-{:05}","price":{}.{:02},"quantity":{}}},"timestamp":"2026-11-21T14:{:02}:{:02}.{:03}Z"}}"#,
        EVENTS[i % 4],
        (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        i % 99_991,
        i % 500,
        i % 100,
        1 + i % 9,
        (i / 60_000) % 60,
        (i / 1000) % 60,
        i % 1000,
    );
    let headers = [
        ("content-type", "application/json".to_string()),
        (
            "trace-id",
            format!("{:032x}", (i as u128) * 0x1f1f_1f1f_1f1f),
        ),
    ];
    (user, body, headers)
}

/// Bytes of event `i`'s key, value and headers.
fn event_bytes(i: usize) -> u64 {
    let (key, body, headers) = event(i);
    (key.len()
        + body.len()
        + headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()) as u64
}

/// Loads `records` events, batched. Returns the bytes of keys, values and headers produced.
fn preload(brokers: &str, topic: &str, partitions: i32, records: usize) -> u64 {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create()
        .unwrap();
    let mut bytes = 0u64;
    for i in 0..records {
        let (key, body, headers) = event(i);
        bytes += (key.len() + body.len()) as u64;
        let mut hs = OwnedHeaders::new();
        for (k, v) in &headers {
            bytes += (k.len() + v.len()) as u64;
            hs = hs.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut rec = BaseRecord::to(topic)
            .key(&key)
            .payload(&body)
            .headers(hs)
            .partition((i % partitions as usize) as i32);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(300)).unwrap();
    bytes
}

/// `HUBCAP_BENCH_ARGS`: more `hubcap run` arguments for every case, the baseline's client
/// settings included (e.g. `--memory-limit 1GiB`, `-X fetch.max.bytes=8388608`).
fn extra_args() -> Vec<String> {
    std::env::var("HUBCAP_BENCH_ARGS")
        .map(|a| a.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The child side of the baseline: a consumer with exactly hubcap's librdkafka settings (taken
/// from `hubcap::run::RunConfig::client_config`) in a fresh group, reading every record to the end and
/// touching each one's bytes, nothing more.
fn baseline_child(brokers: &str, topic: &str, total: usize) {
    let group = unique("baseline");
    let mut args = vec!["--brokers", brokers, "--topic", topic, "--group", &group];
    let extra = extra_args();
    args.extend(extra.iter().map(String::as_str));
    let cfg = common::run_config(&args);
    let consumer: BaseConsumer = cfg.client_config().create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let (mut n, mut sum) = (0usize, 0u64);
    while n < total {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                n += 1;
                sum +=
                    m.payload().map_or(0, |p| p.len() as u64) + m.key().map_or(0, |k| k[0] as u64);
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => panic!("baseline consumer: {e}"),
        }
    }
    println!("{n} {sum}");
}

/// One measured run.
#[derive(Debug, Clone, Copy)]
struct Sample {
    seconds: f64,
    cpu_seconds: f64,
    peak_rss_mib: f64,
    files: usize,
}

fn run_case(case: &str, brokers: &str, topic: &str, total: usize) -> Sample {
    if case == "baseline" {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--baseline-child", brokers, topic, &total.to_string()]);
        let (seconds, cpu_seconds, peak_rss_mib) = common::measure(cmd);
        return Sample {
            seconds,
            cpu_seconds,
            peak_rss_mib,
            files: 0,
        };
    }
    let (format, codec): (&str, &[&str]) = match case {
        "avro-null" => ("avro", &["--codec", "null"]),
        "avro-deflate" => ("avro", &["--codec", "deflate"]),
        "parquet-zstd" => ("parquet", &["--compression", "zstd"]),
        "parquet-delta" => ("parquet", &["--compression", "zstd", "--table", "delta"]),
        "parquet-iceberg" => ("parquet", &["--compression", "zstd", "--table", "iceberg"]),
        "parquet-delta-iceberg" => (
            "parquet",
            &["--compression", "zstd", "--table", "delta,iceberg"],
        ),
        other => panic!("unknown case {other}"),
    };
    let out = tempfile::tempdir_in(output_parent()).unwrap();
    let mut cmd = hubcap_command();
    cmd.env("HUBCAP_LOG", "warn")
        .args(["run", "--brokers", brokers, "--topic", topic])
        .args(["--group", &unique("bench"), "--once", "--format", format])
        .args(codec)
        .args(["--output", out.path().to_str().unwrap()]);
    cmd.args(extra_args());
    if let Ok(window) = std::env::var("HUBCAP_BENCH_WINDOW") {
        cmd.args(["--window-size", &window]);
    }
    let (seconds, cpu_seconds, peak_rss_mib) = common::measure(cmd);
    Sample {
        seconds,
        cpu_seconds,
        peak_rss_mib,
        files: common::list_files(out.path())
            .iter()
            // Data files only: not a table's log or metadata.
            .filter(|(name, _)| !name.contains("_delta_log") && !name.contains("/metadata/"))
            .count(),
    }
}

/// hubcap, or HUBCAP_BENCH_WRAP running hubcap when set (a profiler: `perf record -g -o
/// /tmp/perf.data`). The figures then include the wrapper.
fn hubcap_command() -> Command {
    let Ok(wrapper) = std::env::var("HUBCAP_BENCH_WRAP") else {
        return hubcap();
    };
    let mut words = wrapper.split_whitespace();
    let program = words.next().expect("HUBCAP_BENCH_WRAP: a command");
    let mut cmd = hubcap_at(Path::new(program));
    cmd.args(words).arg(env!("CARGO_BIN_EXE_hubcap"));
    cmd
}

/// Where the cases write their files: HUBCAP_BENCH_OUT, else a memory file system (`/dev/shm`)
/// where there is one, so that the disk's block allocation and writeback (kernel threads that
/// share the two cores too) are not measured; the copy of every byte written is. Decided once.
fn output_parent() -> &'static Path {
    static PARENT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PARENT.get_or_init(|| {
        if let Some(dir) = std::env::var_os("HUBCAP_BENCH_OUT") {
            return PathBuf::from(dir);
        }
        let shm = Path::new("/dev/shm");
        if tempfile::tempdir_in(shm).is_ok() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    })
}

/// Records the broker holds: the sum of high minus low watermarks; `None` without the topic.
fn held_records(brokers: &str, topic: &str, partitions: i32) -> Option<usize> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let metadata = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .ok()?;
    if metadata.topics().first()?.partitions().len() != partitions as usize {
        return None;
    }
    (0..partitions)
        .map(|p| {
            let (low, high) = c.fetch_watermarks(topic, p, Duration::from_secs(10)).ok()?;
            Some((high - low) as usize)
        })
        .sum()
}

fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let topics = [NewTopic::new(topic, partitions, TopicReplication::Fixed(1))];
    for r in rt
        .block_on(admin.create_topics(&topics, &AdminOptions::new()))
        .unwrap()
    {
        r.unwrap();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--baseline-child") => {
            return baseline_child(&args[2], &args[3], args[4].parse().unwrap())
        }
        Some("--mock-child") => {
            return mock_child(args[2].parse().unwrap(), args[3].parse().unwrap())
        }
        _ => {}
    }
    let per_partition: usize = env_or("HUBCAP_BENCH_RECORDS_PER_PARTITION", 15_000);
    let runs: usize = env_or("HUBCAP_BENCH_RUNS", 3).max(1);
    let cases = list(
        "HUBCAP_BENCH_CASES",
        "baseline,avro-null,avro-deflate,parquet-zstd",
    );
    let partition_counts: Vec<i32> = list("HUBCAP_BENCH_PARTITIONS", "16,256")
        .iter()
        .map(|p| p.parse().expect("HUBCAP_BENCH_PARTITIONS: numbers"))
        .collect();
    for broker in list("HUBCAP_BENCH_BROKERS", "mock,kafka") {
        for &partitions in &partition_counts {
            let records = partitions as usize * per_partition;
            println!("\n{broker}, {partitions} partitions");
            match broker.as_str() {
                "mock" => {
                    let mock = MockChild::start(partitions, records);
                    bench(
                        &mock.brokers,
                        MOCK_TOPIC,
                        partitions,
                        mock.bytes,
                        runs,
                        &cases,
                    );
                }
                "kafka" => {
                    // A broker of the caller's (kept between runs, its topics reused), or one
                    // of our own.
                    let (_own, brokers) = match std::env::var("HUBCAP_BENCH_KAFKA") {
                        Ok(brokers) => (None, brokers),
                        Err(_) => {
                            let k = Kafka::start();
                            let brokers = k.brokers.clone();
                            (Some(k), brokers)
                        }
                    };
                    let topic = format!("throughput-{partitions}x{per_partition}");
                    let bytes = if held_records(&brokers, &topic, partitions) == Some(records) {
                        println!("topic {topic} already loaded");
                        (0..records).map(event_bytes).sum()
                    } else {
                        create_topic(&brokers, &topic, partitions);
                        let loading = Instant::now();
                        let bytes = preload(&brokers, &topic, partitions, records);
                        println!("preloaded in {:.1}s", loading.elapsed().as_secs_f64());
                        bytes
                    };
                    bench(&brokers, &topic, partitions, bytes, runs, &cases);
                }
                other => panic!("HUBCAP_BENCH_BROKERS: unknown broker {other} (mock, kafka)"),
            }
        }
    }
    encoding_alone(1_000_000, runs);
}

const MOCK_TOPIC: &str = "throughput";

/// librdkafka's mock cluster in a process of its own (so that its work is not counted as the
/// cases'), preloaded; it lives until its stdin closes.
struct MockChild {
    child: std::process::Child,
    brokers: String,
    /// Bytes of keys, values and headers produced.
    bytes: u64,
}

impl MockChild {
    fn start(partitions: i32, records: usize) -> MockChild {
        use std::io::BufRead;
        let loading = Instant::now();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--mock-child",
                &partitions.to_string(),
                &records.to_string(),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut words = line.split_whitespace();
        let brokers = words
            .next()
            .expect("the mock cluster's address")
            .to_string();
        let bytes = words.next().and_then(|b| b.parse().ok()).expect("bytes");
        println!("preloaded in {:.1}s", loading.elapsed().as_secs_f64());
        MockChild {
            child,
            brokers,
            bytes,
        }
    }
}

impl Drop for MockChild {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The mock cluster's process: creates and preloads the topic, prints its address and the bytes
/// produced, then serves until stdin closes.
fn mock_child(partitions: i32, records: usize) {
    use std::io::{Read, Write};
    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    cluster.create_topic(MOCK_TOPIC, partitions, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let bytes = preload(&brokers, MOCK_TOPIC, partitions, records);
    println!("{brokers} {bytes}");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// Each format's encoder on one thread over in-memory events (built like the broker's), files
/// rolled at 64 MiB: records/s and MB/s of hubcap's own work, no Kafka, no storage.
fn encoding_alone(records: usize, runs: usize) {
    use hubcap::encode::format::Format;
    use hubcap::record::{Event, Header};
    let events: Vec<Event> = (0..records)
        .map(|i| {
            let (key, body, headers) = event(i);
            Event {
                offset: i as i64,
                timestamp_ms: Some(1_795_000_000_000 + i as i64),
                key: Some(key.into_bytes()),
                headers: headers
                    .iter()
                    .map(|(k, v)| Header {
                        key: k.to_string(),
                        value: Some(v.clone().into_bytes()),
                    })
                    .collect(),
                value: Some(body.into_bytes()),
            }
        })
        .collect();
    let bytes: usize = events
        .iter()
        .map(|e| {
            e.key.as_ref().map_or(0, Vec::len)
                + e.value.as_ref().map_or(0, Vec::len)
                + e.headers
                    .iter()
                    .map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len))
                    .sum::<usize>()
        })
        .sum();
    println!(
        "\nencoding alone, one thread, {records} events in memory, 64 MiB files; medians of {runs}"
    );
    println!(
        "{:<14} {:>10} {:>7} {:>11}",
        "format", "records/s", "MB/s", "bytes out/in"
    );
    let formats = [
        (
            "avro-null",
            Format::Avro {
                codec: hubcap::encode::avro::Codec::Null,
                block_target: 1 << 20,
            },
        ),
        (
            "avro-deflate",
            Format::Avro {
                codec: hubcap::encode::avro::Codec::Deflate,
                block_target: 1 << 20,
            },
        ),
        (
            "parquet-zstd",
            Format::Parquet {
                compression: hubcap::encode::parquet::ParquetCompression::Zstd,
                row_group_bytes: 8 << 20,
            },
        ),
        // The row groups of 256 partitions under the default memory budget.
        (
            "parquet-256k",
            Format::Parquet {
                compression: hubcap::encode::parquet::ParquetCompression::Zstd,
                row_group_bytes: 256 << 10,
            },
        ),
    ];
    // Records as the consumer hands them to a worker: views into one batch buffer.
    let batch = hubcap::record::Batch::of(&events);
    for (name, format) in formats {
        let mut times = Vec::new();
        let mut out = 0usize;
        for _ in 0..runs {
            let started = Instant::now();
            out = 0;
            let mut file = format.create("t", 0, 0);
            for r in batch.iter() {
                file.prepare(&r);
                file.push_prepared(&r).unwrap();
                out += file.take_output().len();
                if file.size_with(0) >= 64 << 20 {
                    let done = std::mem::replace(&mut file, format.create("t", 0, r.offset + 1));
                    out += done.finish().unwrap().0.len();
                }
            }
            out += file.finish().unwrap().0.len();
            times.push(started.elapsed().as_secs_f64());
        }
        let secs = median(times);
        println!(
            "{name:<14} {:>10.0} {:>7.1} {:>11.3}",
            records as f64 / secs,
            bytes as f64 / 1e6 / secs,
            out as f64 / bytes as f64
        );
    }
}

/// Runs every case on the preloaded topic and prints its table. `bytes`: the keys, values and
/// headers produced, of which the broker may have kept only the newest (the mock cluster).
fn bench(brokers: &str, topic: &str, partitions: i32, bytes: u64, runs: usize, cases: &[String]) {
    let produced = common::stable_high_watermarks(brokers, topic, partitions);
    let total = held_records(brokers, topic, partitions).expect("the topic's watermarks");
    let per_record = bytes as f64 / produced as f64;
    let mb = per_record * total as f64 / 1e6;
    println!(
        "{total} records held (of {produced} produced; {mb:.0} MB of keys, values and headers, {per_record:.0} B each); {runs} run(s) per case, medians; files written under {}",
        output_parent().display()
    );
    println!(
        "{:<14} {:>10} {:>7} {:>10} {:>9} {:>13} {:>6} {:>8}",
        "case", "records/s", "MB/s", "×baseline", "CPU s/GB", "peak RSS MiB", "files", "files/s"
    );
    let mut baseline_rate = None;
    let mut baseline_busy = None;
    // Round by round, every case once per round: a machine that slows down or speeds up over
    // the minutes (a VM's neighbours) then moves every case alike, not the last ones.
    let mut rounds: Vec<Vec<Sample>> = vec![Vec::new(); cases.len()];
    for _ in 0..runs {
        for (case, samples) in cases.iter().zip(&mut rounds) {
            samples.push(run_case(case, brokers, topic, total));
        }
    }
    for (case, samples) in cases.iter().zip(rounds) {
        let seconds = median(samples.iter().map(|s| s.seconds).collect());
        let cpu = median(samples.iter().map(|s| s.cpu_seconds).collect());
        let rss = median(samples.iter().map(|s| s.peak_rss_mib).collect());
        let files = samples[samples.len() / 2].files;
        let rate = total as f64 / seconds;
        if case == "baseline" {
            baseline_rate = Some(rate);
            baseline_busy = Some(cpu / seconds);
        }
        let ratio = baseline_rate.map_or("-".to_string(), |b| format!("{:.2}", rate / b));
        println!(
            "{case:<14} {rate:>10.0} {:>7.1} {ratio:>10} {:>9.1} {rss:>13.1} {files:>6} {:>8.1}",
            mb / seconds,
            cpu / (mb / 1000.0),
            files as f64 / seconds,
        );
    }
    // A bare consumer that keeps less than half a core busy spends its time waiting for the
    // broker: then the ratios say only whether hubcap keeps up with that broker.
    if let Some(busy) = baseline_busy.filter(|b| *b < 0.5) {
        println!(
            "the baseline is limited by the broker (the bare consumer kept {:.0} % of a core busy): ratios near 1 mean hubcap keeps up with it, not how fast hubcap is",
            busy * 100.0
        );
    }
}
