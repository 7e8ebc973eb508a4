//! Replay speed against a bare producer: preloads a topic on Apache Kafka, archives it with
//! `hubcap run --once` (Avro, under /dev/shm), then in the same run, round by round, produces
//! the same records from memory with a bare rdkafka producer (this binary, `--producer-child`:
//! the preloader's records with the `hubcap.source` header a replay adds, made in memory before
//! its clock starts, batched as the replay's producer; its seconds, CPU and memory are those of
//! producing) into one new topic and replays the archive with `hubcap replay` (transactional,
//! reading and decoding the files; the whole process timed) into another. Each in a process of
//! its own; medians; the ratio is replay / bare producer of the same broker.
//!
//!   cargo bench --bench replay
//!   HUBCAP_BENCH_RECORDS=400000 HUBCAP_BENCH_RUNS=1 cargo bench --bench replay
//!
//! Knobs: HUBCAP_BENCH_RECORDS (200,000 records of about 1 KiB), HUBCAP_BENCH_RUNS (3),
//! HUBCAP_BENCH_ARGS (more `hubcap replay` arguments, e.g. `--no-transactions`), HUBCAP_BENCH_HOLD
//! (set: print the broker and the archive and keep them until stdin closes, to profile a
//! replay by hand). Needs the test
//! tools (scripts/setup-test-env): it starts its own broker.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;

use common::{hubcap, kib_record, preload_kib_records, unique, Kafka};

const PARTITIONS: i32 = 16;

/// (seconds, CPU seconds, peak RSS MiB) of each run of a case.
type Samples = Vec<(f64, f64, f64)>;

/// The bare producer: the preloader's records with the header a replay adds, made in memory
/// first; then, timed, a producer with the replay's batching (linger 20 ms, librdkafka's
/// batch.size of 1,000,000 bytes) sends them all and flushes.
/// Prints the seconds, the CPU seconds and the resident memory it grew by while producing.
fn bare_from_memory(brokers: &str, topic: &str, records: usize, source: &str) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let made: Vec<(String, String, i32, String)> = (0..records)
        .map(|i| {
            let (key, body) = kib_record(i, &mut x);
            let partition = (i % PARTITIONS as usize) as i32;
            let header = format!("{source}/{partition}/{}", i / PARTITIONS as usize);
            (key, body, partition, header)
        })
        .collect();
    let before = (cpu_seconds(), status_kib("VmRSS:"));
    let started = std::time::Instant::now();
    let producer: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .create()
        .unwrap();
    for (key, body, partition, header) in &made {
        let headers = OwnedHeaders::new().insert(Header {
            key: "hubcap.source",
            value: Some(header.as_bytes()),
        });
        let mut rec = BaseRecord::to(topic)
            .key(key)
            .payload(body)
            .partition(*partition)
            .headers(headers);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(std::time::Duration::from_secs(120)).unwrap();
    let grew = status_kib("VmHWM:").saturating_sub(before.1) as f64 / 1024.0;
    let seconds = started.elapsed().as_secs_f64();
    println!("{seconds} {} {grew}", cpu_seconds() - before.0);
}

/// This process's user and system CPU seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: a zeroed rusage is a valid value for getrusage to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: fills our own rusage; the pointer is valid for the call.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A line of /proc/self/status, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Runs the bare producer child: (seconds, CPU seconds, MiB) of its producing, as it printed.
fn measure_child(mut cmd: Command) -> (f64, f64, f64) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "the bare producer failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = text
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    (v[0], v[1], v[2])
}

/// A new broker creates its transaction log when the first transactional producer starts, a
/// second or two of the fixture's, not of a replay (any cluster in use has it): started here.
fn warm_transactions(brokers: &str) {
    use rdkafka::producer::{BaseProducer, Producer};
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("transactional.id", unique("warm"))
        .create()
        .unwrap();
    producer
        .init_transactions(std::time::Duration::from_secs(60))
        .unwrap();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--producer-child") {
        let records = args[4].parse().unwrap();
        return bare_from_memory(&args[2], &args[3], records, &args[5]);
    }
    let records: usize = std::env::var("HUBCAP_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let runs: usize = std::env::var("HUBCAP_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    // The broker's log in memory: on disk, the kernel's writeback of the gigabytes written
    // throttles whichever client writes next, and the benchmark measures the disk.
    if std::path::Path::new("/dev/shm").is_dir() && std::env::var_os("TMPDIR").is_none() {
        std::env::set_var("TMPDIR", "/dev/shm");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let t = Kafka::start();
    warm_transactions(&t.brokers);
    let topic = unique("source");
    rt.block_on(t.create_topic(&topic, PARTITIONS));
    preload_kib_records(&t.brokers, &topic, PARTITIONS, records);
    let held = common::stable_high_watermarks(&t.brokers, &topic, PARTITIONS);
    let out = tempfile::tempdir_in("/dev/shm").unwrap();
    let output = out.path().to_str().unwrap();
    let (ok, _, stderr) = common::run_once(&t.brokers, &topic, &unique("g"), output, &[]);
    assert!(ok, "archiving failed: {stderr}");
    let mib = held as f64 * 0.95 / 1024.0;
    println!("{held} records (~{mib:.0} MiB) in {PARTITIONS} partitions, archived as Avro; {runs} run(s) per case, medians");
    if std::env::var_os("HUBCAP_BENCH_HOLD").is_some() {
        // For profiling by hand: the broker and the archive stay until stdin closes.
        println!("holding: --brokers {} --from {output}", t.brokers);
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
        return;
    }

    let (mut bare, mut replay): (Samples, Samples) = (Vec::new(), Vec::new());
    let run_bare = || {
        let target = unique("bare");
        rt.block_on(t.create_topic(&target, PARTITIONS));
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--producer-child",
            &t.brokers,
            &target,
            &held.to_string(),
            &topic,
        ]);
        measure_child(cmd)
    };
    let run_replay = || {
        let target = unique("replayed");
        rt.block_on(t.create_topic(&target, PARTITIONS));
        let mut cmd = hubcap();
        cmd.env("HUBCAP_LOG", "warn")
            .args(["replay", "--from", output, "--to-topic", &target])
            .args(["--brokers", &t.brokers])
            .args(
                std::env::var("HUBCAP_BENCH_ARGS")
                    .unwrap_or_default()
                    .split_whitespace(),
            );
        let sample = common::measure(cmd);
        let got = common::stable_high_watermarks(&t.brokers, &target, PARTITIONS);
        // Transaction markers take an offset each: the topic holds at least the records.
        assert!(
            got >= held,
            "the replay produced {got} offsets for {held} records"
        );
        sample
    };
    // Rounds alternate which goes first, so that what the broker does after a topic is
    // written (flushes, segment rolls) falls on both alike; each round's ratio is printed.
    let mut ratios = Vec::new();
    for round in 0..runs {
        let (b, r) = if round % 2 == 0 {
            let b = run_bare();
            (b, run_replay())
        } else {
            let r = run_replay();
            (run_bare(), r)
        };
        println!(
            "round {round}: bare {:.0} events/s, replay {:.0} events/s, ratio {:.2}",
            held as f64 / b.0,
            held as f64 / r.0,
            b.0 / r.0
        );
        ratios.push(b.0 / r.0);
        bare.push(b);
        replay.push(r);
    }
    println!("median of the rounds' ratios: {:.2}", median(ratios));
    println!(
        "{:<14} {:>10} {:>8} {:>8} {:>9} {:>13}",
        "case", "events/s", "MB/s", "ratio", "CPU s", "peak RSS MiB"
    );
    let rate = |s: &Samples| median(s.iter().map(|x| held as f64 / x.0).collect());
    let base = rate(&bare);
    for (name, samples) in [("bare producer", &bare), ("hubcap replay", &replay)] {
        let r = rate(samples);
        println!(
            "{name:<14} {r:>10.0} {:>8.1} {:>8.2} {:>9.1} {:>13.1}",
            r * 0.95 * 1024.0 / 1e6,
            r / base,
            median(samples.iter().map(|x| x.1).collect()),
            median(samples.iter().map(|x| x.2).collect()),
        );
    }
}
