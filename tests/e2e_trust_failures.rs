//! Trust under operator mistakes, on Apache Kafka with the binary: what no retry fixes (an output
//! directory hubcap may not write, a corrupt Delta log) ends the run at once with exit 1 and a
//! few lines, no backtrace; a size without a unit is refused; broken pipes end quietly; `repair`
//! quarantines a truncated file and writes it again byte for byte; SIGTERM stops `--once` within
//! `--shutdown-timeout`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `hubcap run --once` with `extra` flags: (exit code, stdout, stderr, seconds taken).
fn run_once_code(
    brokers: &str,
    topic: &str,
    group: &str,
    output: &str,
    extra: &[&str],
) -> (Option<i32>, String, String, f64) {
    let start = Instant::now();
    let out = hubcap()
        .args([
            "run",
            "--brokers",
            brokers,
            "--topic",
            topic,
            "--group",
            group,
        ])
        .args(["--once", "--output", output])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed().as_secs_f64(),
    )
}

fn assert_no_backtrace_or_panic(stderr: &str) {
    for trace in [
        "panicked",
        "stack backtrace",
        "Backtrace",
        "   0: ",
        "at /rustc/",
    ] {
        assert!(!stderr.contains(trace), "a trace, not a message:\n{stderr}");
    }
}

/// A directory made unwritable for root too; undone on drop.
enum Unwritable {
    /// `chattr +i`: creating an entry fails with EPERM (permission denied).
    Immutable(PathBuf),
    /// A read-only bind mount of the directory on itself: EROFS.
    ReadOnlyMount(PathBuf),
}

impl Unwritable {
    fn immutable(dir: &Path) -> Option<Unwritable> {
        let ok = Command::new("chattr").arg("+i").arg(dir).status();
        ok.is_ok_and(|s| s.success())
            .then(|| Unwritable::Immutable(dir.to_path_buf()))
    }

    fn read_only_mount(dir: &Path) -> Option<Unwritable> {
        let ok = Command::new("mount")
            .args(["--bind", "-o", "ro"])
            .arg(dir)
            .arg(dir)
            .stderr(Stdio::null())
            .status();
        ok.is_ok_and(|s| s.success())
            .then(|| Unwritable::ReadOnlyMount(dir.to_path_buf()))
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        let _ = match self {
            Unwritable::Immutable(d) => Command::new("chattr").arg("-i").arg(d).status(),
            Unwritable::ReadOnlyMount(d) => Command::new("umount").arg(d).status(),
        };
    }
}

/// An output directory hubcap may not write, with the default `--retry-for 5m`: exit 1 within
/// seconds and a few lines, not ten minutes of retries and exit 5. Both a permission denied
/// (chattr +i, EPERM) and a read-only file system (a read-only bind mount, EROFS).
#[tokio::test(flavor = "multi_thread")]
async fn an_unwritable_output_fails_at_once_with_exit_1() {
    let t = Kafka::shared();
    let (topic, group) = (unique("unwritable"), unique("g"));
    t.create_topic(&topic, 2).await;
    produce(&t.brokers, &topic, 0, 50).await;
    wait_for_high_watermarks(&t.brokers, &topic, 2, 50);
    type Make = fn(&Path) -> Option<Unwritable>;
    let cases: [(&str, Make); 2] = [
        ("chattr +i", Unwritable::immutable),
        ("read-only mount", Unwritable::read_only_mount),
    ];
    let mut tried = 0;
    for (name, make) in cases {
        let out = tempfile::tempdir().unwrap();
        let Some(_guard) = make(out.path()) else {
            eprintln!("skipped {name}: not possible here");
            continue;
        };
        tried += 1;
        let output = out.path().to_str().unwrap();
        let (code, _, stderr, took) = run_once_code(&t.brokers, &topic, &group, output, &[]);
        let lines = stderr.lines().count();
        eprintln!("{name}: exit {code:?} after {took:.1} s, {lines} log lines");
        assert_eq!(code, Some(1), "{name}:\n{stderr}");
        assert!(took < 20.0, "{name}: took {took:.1} s:\n{stderr}");
        assert!(lines < 20, "{name}: {lines} lines:\n{stderr}");
        assert!(!stderr.contains("retrying"), "{name}:\n{stderr}");
        assert_no_backtrace_or_panic(&stderr);
    }
    assert!(
        tried > 0,
        "no way to make a directory unwritable for root here"
    );
}

/// A corrupt entry in a Delta table's log: exit 1 (a person must fix the log), no delta_kernel
/// backtrace even with RUST_BACKTRACE=1, a few lines; `audit` reports it in one line.
#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_delta_log_fails_at_once_with_exit_1_and_no_backtrace() {
    let t = Kafka::shared();
    let flags = ["--table", "delta", "--window-size", "16KiB"];
    let a = OnceArchive::new(t, "corruptlog", 2, 200, &flags).await;
    let log = a.dir().join(&a.topic).join("_delta_log");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    let last = entries.last().expect("a log entry").clone();
    std::fs::write(&last, b"{\"add\": {\"path\": truncated mid-wr").unwrap();
    produce(&t.brokers, &a.topic, 200, 100).await;
    wait_for_high_watermarks(&t.brokers, &a.topic, 2, 300);

    let start = Instant::now();
    let out = hubcap()
        .env("RUST_BACKTRACE", "1")
        .args(["run", "--brokers", &t.brokers, "--topic", &a.topic])
        .args(["--group", &a.group, "--once", "--output", a.output()])
        .args(flags)
        .output()
        .unwrap();
    let took = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = stderr.lines().count();
    eprintln!(
        "run: exit {:?} after {took:.1} s, {lines} lines",
        out.status.code()
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(lines < 25, "{lines} lines:\n{stderr}");
    assert!(took < 30.0, "took {took:.1} s:\n{stderr}");
    assert!(stderr.contains("_delta_log"), "{stderr}");
    assert_no_backtrace_or_panic(&stderr);

    let audit = hubcap()
        .env("RUST_BACKTRACE", "1")
        .args(["audit", "--output", a.output(), "--group", &a.group])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&audit.stdout);
    let stderr = String::from_utf8_lossy(&audit.stderr);
    assert_eq!(audit.status.code(), Some(1), "{report}{stderr}");
    assert_no_backtrace_or_panic(&report);
    assert_no_backtrace_or_panic(&stderr);
}

/// SIGTERM while `--once` archives a large backlog: it stops within `--shutdown-timeout` (plus
/// the consumer's close), exit 3, what it archived checkpointed, instead of writing on.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_once_within_the_shutdown_timeout() {
    let t = Kafka::shared();
    let (topic, group) = (unique("sigterm"), unique("g"));
    let partitions = 32;
    let records = 200_000;
    t.create_topic(&topic, partitions).await;
    preload_kib_records(&t.brokers, &topic, partitions, records);
    wait_for_high_watermarks(&t.brokers, &topic, partitions, records as i64);
    let out = tempfile::tempdir().unwrap();
    let mut cmd = hubcap();
    cmd.args([
        "run",
        "--brokers",
        &t.brokers,
        "--topic",
        &topic,
        "--group",
        &group,
    ])
    .args(["--once", "--output", out.path().to_str().unwrap()])
    .args(["--shutdown-timeout", "2s", "--format", "parquet", "--quiet"]);
    let mut run = Instance::spawn("once", cmd);
    run.wait_for_line(0, "partition resumes", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(1500));
    let signalled = Instant::now();
    run.signal(libc::SIGTERM);
    let status = run.wait_exit(Duration::from_secs(120));
    let took = signalled.elapsed().as_secs_f64();
    eprintln!(
        "stopped {took:.1} s after SIGTERM, exit {:?}",
        status.code()
    );
    let log = run.log();
    assert!(took < 5.0, "took {took:.1} s after SIGTERM:\n{log}");
    assert_eq!(status.code(), Some(3), "{log}");
    // What it archived before stopping is checkpointed and readable.
    let next: i64 = (0..partitions)
        .map(|p| {
            let file = checkpoint_file(out.path(), &group, &topic, p);
            if file.exists() {
                local_next_offset(out.path(), &group, &topic, p)
            } else {
                0
            }
        })
        .sum();
    assert!(next < records as i64, "it stopped before the end: {next}");
}
