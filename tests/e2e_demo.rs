//! `hubcap demo`, the README's first command, as a new user runs it: it archives its events in
//! each format, the archive audits clean, and the one-liner it prints at the end, run as printed
//! (with the test venv's python), reads every event back: fastavro for Avro, DuckDB for Parquet.

mod common;

use std::time::Duration;

use common::*;

/// Runs `hubcap demo --output DIR FLAGS…` and then the last line it prints, which reads the
/// files back; returns that line's output.
fn demo_and_its_hint(flags: &[&str]) -> String {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let (ok, stdout, stderr) = run_with_timeout(
        hubcap().args(["demo", "--output", dir]).args(flags),
        Duration::from_secs(120),
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("5000"), "{stdout}");
    // As the demo says: `hubcap audit --output DIR`, every group found.
    let (clean, a, b) = run_with_timeout(
        hubcap().args(["audit", "--output", dir]),
        Duration::from_secs(60),
    );
    let report = format!("{a}{b}");
    assert!(clean, "{report}");
    assert!(report.contains("5000 events"), "{report}");
    let hint = stdout.lines().last().unwrap().trim();
    let command = hint
        .strip_prefix("python3 ")
        .unwrap_or_else(|| panic!("the last line is a python3 one-liner: {hint}"));
    let read = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("{} {command}", python().display()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&read.stdout).into_owned();
    assert!(
        read.status.success(),
        "{hint}\n{}",
        String::from_utf8_lossy(&read.stderr)
    );
    text
}

#[test]
fn the_avro_demo_prints_a_fastavro_line_that_reads_every_event() {
    let text = demo_and_its_hint(&[]);
    assert!(text.starts_with("5000 events; first:"), "{text}");
}

#[test]
fn the_parquet_demo_prints_a_duckdb_query_over_partition_and_date() {
    let text = demo_and_its_hint(&["--format", "parquet"]);
    // DuckDB's table: one row per (partition, date), the events column summing to 5000.
    let events: u64 = text
        .lines()
        .filter(|l| l.starts_with('│'))
        .filter_map(|l| l.split('│').nth(3)?.trim().parse::<u64>().ok())
        .sum();
    assert_eq!(events, 5000, "{text}");
    assert!(
        text.contains("partition") && text.contains("date"),
        "{text}"
    );
}

/// A second demo in the same directory replaces the first one's archive (each demo's mock
/// cluster starts its offsets over, so the two could not be told apart), and a directory that
/// holds anything else is refused with exit 2 and left as it was.
#[test]
fn a_second_demo_replaces_the_first_and_other_directories_are_refused() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    for _ in 0..2 {
        let (ok, stdout, stderr) = run_with_timeout(
            hubcap().args(["demo", "--output", dir, "--events", "600"]),
            Duration::from_secs(120),
        );
        assert!(ok, "{stderr}");
        assert!(stdout.contains("600"), "{stdout}");
    }
    let records: usize = read_local(out.path())
        .iter()
        .map(|f| f["records"].as_array().unwrap().len())
        .sum();
    assert_eq!(records, 600, "one demo's events, not two");
    let (clean, a, b) = run_with_timeout(
        hubcap().args(["audit", "--output", dir]),
        Duration::from_secs(60),
    );
    assert!(clean, "{a}{b}");

    let other = tempfile::tempdir().unwrap();
    let mine = other.path().join("notes.txt");
    std::fs::write(&mine, "mine").unwrap();
    let mut cmd = hubcap();
    cmd.args(["demo", "--output", other.path().to_str().unwrap()]);
    let mut demo = Instance::spawn("demo", cmd);
    let status = demo.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(2), "{}", demo.log());
    assert!(demo.log().contains("--output"), "{}", demo.log());
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "mine");
    assert_eq!(std::fs::read_dir(other.path()).unwrap().count(), 1);
}
