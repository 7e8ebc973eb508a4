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
    /// A tmpfs of 64 KiB: the first window does not fit, ENOSPC (a full disk).
    Full(PathBuf),
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

impl Unwritable {
    fn full(dir: &Path) -> Option<Unwritable> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status();
        ok.is_ok_and(|s| s.success())
            .then(|| Unwritable::Full(dir.to_path_buf()))
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        let _ = match self {
            Unwritable::Immutable(d) => Command::new("chattr").arg("-i").arg(d).status(),
            Unwritable::ReadOnlyMount(d) | Unwritable::Full(d) => {
                Command::new("umount").arg(d).status()
            }
        };
    }
}

/// An output directory hubcap may not write, with the default `--retry-for 5m`: exit 1 within
/// seconds and a few lines, not ten minutes of retries and exit 5: a permission denied
/// (chattr +i, EPERM), a read-only file system (a read-only bind mount, EROFS) and a full disk
/// (a 64 KiB tmpfs for 400 KiB of records, ENOSPC).
#[tokio::test(flavor = "multi_thread")]
async fn an_unwritable_output_fails_at_once_with_exit_1() {
    let t = Kafka::shared();
    let (topic, group) = (unique("unwritable"), unique("g"));
    t.create_topic(&topic, 2).await;
    preload_kib_records(&t.brokers, &topic, 2, 400);
    wait_for_high_watermarks(&t.brokers, &topic, 2, 400);
    type Make = fn(&Path) -> Option<Unwritable>;
    let cases: [(&str, Make); 3] = [
        ("chattr +i", Unwritable::immutable),
        ("read-only mount", Unwritable::read_only_mount),
        ("full disk", Unwritable::full),
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
        eprintln!("{}", stderr.lines().last().unwrap_or_default());
        assert_eq!(code, Some(1), "{name}:\n{stderr}");
        assert!(took < 20.0, "{name}: took {took:.1} s:\n{stderr}");
        assert!(lines < 20, "{name}: {lines} lines:\n{stderr}");
        assert!(!stderr.contains("retrying"), "{name}:\n{stderr}");
        let hint = ["may not write there", "the disk is full"];
        assert!(hint.iter().any(|h| stderr.contains(h)), "{name}:\n{stderr}");
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

/// The archived `.avro` files under `dir`, by path, outside `_` folders.
fn avro_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = list_files(dir)
        .into_iter()
        .filter(|(name, _)| !name.starts_with('_') && name.ends_with(".avro"))
        .map(|(name, _)| dir.join(name))
        .collect();
    files.sort();
    files
}

/// A file cut short and one with a changed byte (same size): `repair` (with `--verify` for the
/// second) moves each under `_quarantine/` beside a note of why, and writes it again from Kafka
/// byte for byte; fastavro then reads every record once and the audit is clean.
#[tokio::test(flavor = "multi_thread")]
async fn repair_quarantines_a_truncated_or_changed_file_and_restores_it() {
    let t = Kafka::shared();
    let a = OnceArchive::new(t, "truncated", 2, 600, &["--window-size", "16KiB"]).await;
    let (group, dir) = (a.group.clone(), a.output());
    let files = avro_files(a.dir());
    assert!(files.len() >= 4, "{files:?}");
    let (cut, flipped) = (files[1].clone(), files[files.len() - 2].clone());
    let originals: Vec<(PathBuf, Vec<u8>)> = [&cut, &flipped]
        .iter()
        .map(|f| ((*f).clone(), std::fs::read(f).unwrap()))
        .collect();
    let bytes = &originals[0].1;
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let mut changed = originals[1].1.clone();
    let mid = changed.len() / 2;
    changed[mid] ^= 0x20;
    std::fs::write(&flipped, &changed).unwrap();

    let (clean, report) = audit_cli_with(a.dir(), &group, &["--verify"]);
    assert!(!clean, "{report}");
    let start = Instant::now();
    let (ok, stdout, stderr) = run_with_timeout(
        hubcap()
            .args(["repair", "--output", dir, "--group", &group, "--verify"])
            .args(["--brokers", &t.brokers]),
        Duration::from_secs(120),
    );
    eprintln!(
        "repair in {:.1} s:\n{stdout}",
        start.elapsed().as_secs_f64()
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("repair: 2 restored, 2 quarantined, 0 unrecoverable"),
        "{stdout}"
    );
    for (path, original) in &originals {
        assert_eq!(
            &std::fs::read(path).unwrap(),
            original,
            "{}",
            path.display()
        );
        let rel = path.strip_prefix(a.dir()).unwrap().to_str().unwrap();
        let moved = a.dir().join("_quarantine").join(rel);
        assert!(
            moved.exists(),
            "{} kept under _quarantine/",
            moved.display()
        );
        let note = std::fs::read_to_string(format!("{}.why.json", moved.display())).unwrap();
        assert!(note.contains("not as archived"), "{note}");
    }
    let read = read_local(a.dir());
    let audit = audit(&read, &a.topic, &a.produced);
    assert_eq!(audit.events, a.produced.len(), "every record read back");
    assert_eq!(
        (audit.duplicates, audit.missing),
        (0, 0),
        "every record once"
    );
    let (clean, report) = audit_cli_with(a.dir(), &group, &["--verify"]);
    assert!(clean, "{report}");
}

/// `hubcap audit … 2>&1 | head -1` and `hubcap inspect … | head -1`: no panic, exit 0 or
/// SIGPIPE's 141, never 101; the same through a shell pipeline.
#[tokio::test(flavor = "multi_thread")]
async fn broken_pipes_end_quietly() {
    let t = Kafka::shared();
    let a = OnceArchive::new(t, "pipes", 2, 400, &["--window-size", "16KiB"]).await;
    let bin = env!("CARGO_BIN_EXE_hubcap");
    let (dir, group) = (a.output(), a.group.as_str());
    for command in [
        format!("{bin} audit --output {dir} --group {group} 2>&1 | head -1"),
        format!("{bin} audit --output {dir} --group {group} --json | head -1"),
        format!("{bin} inspect {dir} | head -1"),
        format!("{bin} inspect {dir} 2>&1 | head -c 10"),
        format!("{bin} config --topic x --brokers b:1 --group g | head -1"),
    ] {
        // PIPESTATUS: hubcap's own exit, not head's.
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("{command} >/dev/null; exit ${{PIPESTATUS[0]}}"))
            .env("HUBCAP_LOG", "info")
            .output()
            .unwrap();
        let code = out.status.code();
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("{command}: exit {code:?}");
        assert!(
            matches!(code, Some(0 | 141)),
            "{command}: {code:?}\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{command}:\n{stderr}");
        assert!(!stderr.contains("Broken pipe"), "{command}:\n{stderr}");
    }
}

/// `--window-size 1` is refused (exit 2) with the fix, instead of one-byte windows; so are a
/// memory limit past what hubcap can use and a zero shutdown timeout.
#[test]
fn sizes_without_a_unit_and_absurd_limits_are_refused() {
    for (flags, says) in [
        (&["--window-size", "1"][..], "1 what? write 1MiB"),
        (
            &["--memory-limit", "100TiB"][..],
            "--memory-limit 102400GiB is more than",
        ),
        (
            &["--shutdown-timeout", "0s"][..],
            "--shutdown-timeout must be at least 1s",
        ),
        (
            &["--retry-for", "0s"][..],
            "--retry-for must be at least 1s",
        ),
    ] {
        let out = hubcap()
            .args([
                "run",
                "--brokers",
                "127.0.0.1:1",
                "--topic",
                "t",
                "--group",
                "g",
            ])
            .args(["--output", "memory:///"])
            .args(flags)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}:\n{stderr}");
        assert!(stderr.contains(says), "{flags:?}:\n{stderr}");
        assert!(stderr.lines().count() <= 6, "{flags:?}:\n{stderr}");
    }
}

/// An Azure container that does not exist (Azurite): exit 1 at once, naming the container's
/// absence, instead of `--retry-for` of retries (a large window too: its multipart upload starts
/// before the file closes).
#[tokio::test(flavor = "multi_thread")]
async fn a_container_that_does_not_exist_fails_at_once_with_exit_1() {
    let t = Kafka::shared();
    let (topic, group) = (unique("nocontainer"), unique("g"));
    t.create_topic(&topic, 2).await;
    preload_kib_records(&t.brokers, &topic, 2, 6000);
    wait_for_high_watermarks(&t.brokers, &topic, 2, 6000);
    let az = Azurite::start();
    for window in ["16KiB", "64MiB"] {
        let start = Instant::now();
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
        .args(["--once", "--output", "az://nosuchcontainer/archive"])
        .args(["--window-size", window])
        .envs(az.env());
        let out = cmd.output().unwrap();
        let took = start.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines = stderr.lines().count();
        eprintln!(
            "window {window}: exit {:?} after {took:.1} s, {lines} lines",
            out.status.code()
        );
        eprintln!("{}", stderr.lines().last().unwrap_or_default());
        assert_eq!(out.status.code(), Some(1), "{window}:\n{stderr}");
        assert!(took < 30.0, "{window}: took {took:.1} s:\n{stderr}");
        assert!(!stderr.contains("retrying"), "{window}:\n{stderr}");
    }
}
