//! `/metrics`, `/healthz` and `/readyz` during a continuous run against Apache Kafka, checked
//! against the files on disk; `--once` progress in its log-line form and, in a pseudo-terminal, as bars.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const PARTITIONS: i32 = 3;

/// `GET path` on 127.0.0.1:`port`: (status code, body).
fn get(port: u16, path: &str) -> (u16, String) {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(conn, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// The samples of a scrape: series (name with labels) → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, v) = l.rsplit_once(' ').unwrap();
            (series.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn series(name: &str, topic: &str, partition: i32) -> String {
    format!("{name}{{topic=\"{topic}\",partition=\"{partition}\"}}")
}

/// Per partition: (files, records, bytes) on disk, read back with fastavro.
fn on_disk(out: &Path, topic: &str) -> BTreeMap<i32, (u64, u64, u64)> {
    let mut per: BTreeMap<i32, (u64, u64, u64)> = BTreeMap::new();
    for f in read_local(out) {
        let p = partition_of(f["name"].as_str().unwrap(), topic);
        let e = per.entry(p).or_default();
        e.0 += 1;
        e.1 += f["records"].as_array().unwrap().len() as u64;
        e.2 += f["size"].as_u64().unwrap();
    }
    per
}

/// The checkpoint's next offset, if the partition has one yet.
fn checkpointed(out: &Path, group: &str, topic: &str, p: i32) -> Option<i64> {
    let path = out
        .join("_checkpoints")
        .join(group)
        .join(topic)
        .join(format!("{p}.json"));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    doc["next_offset"].as_i64()
}

/// Waits until every partition's checkpoint reached its share of `produced`.
fn wait_archived(out: &Path, group: &str, topic: &str, produced: &[Produced], hubcap: &Instance) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for p in 0..PARTITIONS {
        let end = produced.iter().filter(|r| r.partition == p).count() as i64;
        while checkpointed(out, group, topic, p) != Some(end) {
            assert!(
                Instant::now() < deadline,
                "partition {p} not archived up to {end}\n{}",
                hubcap.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Scrapes until every partition's lag is 0 (librdkafka reports watermarks every 2 s), then
/// checks the archive counters against the files.
fn scrape_and_check(
    port: u16,
    out: &Path,
    topic: &str,
    hubcap: &Instance,
) -> BTreeMap<String, f64> {
    let disk = on_disk(out, topic);
    let deadline = Instant::now() + Duration::from_secs(30);
    let m = loop {
        let (status, text) = get(port, "/metrics");
        assert_eq!(status, 200, "{text}");
        let m = samples(&text);
        let caught_up = (0..PARTITIONS)
            .all(|p| m.get(&series("hubcap_consumer_lag_records", topic, p)) == Some(&0.0));
        if caught_up {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "lag never reached 0:\n{text}\n{}",
            hubcap.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    for p in 0..PARTITIONS {
        let (files, records, bytes) = disk.get(&p).copied().unwrap_or_default();
        let at = |name: &str| m[&series(name, topic, p)];
        assert_eq!(
            at("hubcap_records_archived_total"),
            records as f64,
            "partition {p}"
        );
        assert_eq!(
            at("hubcap_files_archived_total"),
            files as f64,
            "partition {p}"
        );
        assert_eq!(
            at("hubcap_bytes_archived_total"),
            bytes as f64,
            "partition {p}"
        );
        assert_eq!(at("hubcap_consumer_lag_seconds"), 0.0, "partition {p}");
        assert_eq!(at("hubcap_window_records"), 0.0, "partition {p}");
        assert!(at("hubcap_checkpoint_age_seconds") >= 0.0);
    }
    let files: u64 = disk.values().map(|d| d.0).sum();
    assert_eq!(
        m[&format!("hubcap_assigned_partitions{{topic=\"{topic}\"}}")],
        PARTITIONS as f64
    );
    assert_eq!(m["hubcap_upload_duration_seconds_count"], files as f64);
    // Each file: an intent, then the commit.
    assert!(m["hubcap_checkpoint_duration_seconds_count"] >= 2.0 * files as f64);
    m
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scrape_during_a_run_counts_exactly_what_was_archived() {
    let t = Kafka::shared();
    let topic = unique("metered");
    let group = unique("g");
    t.create_topic(&topic, PARTITIONS).await;
    let out = tempfile::tempdir().unwrap();
    let port = free_port();

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
    .args([
        "--output",
        out.path().to_str().unwrap(),
        "--namespace",
        "ns",
    ])
    .args(["--window-size", "8KiB", "--window-time", "2s"])
    .args(["--metrics-addr", &format!("127.0.0.1:{port}")]);
    let mut hubcap = Instance::spawn("hubcap", cmd);
    hubcap.wait_for_line(0, "serving /metrics", Duration::from_secs(30));
    assert_eq!(get(port, "/healthz"), (200, "ok\n".into()));
    hubcap.wait_for_line(0, "partitions assigned", Duration::from_secs(60));
    hubcap.wait_for_line(0, "partition resumes", Duration::from_secs(30));

    let mut produced = produce(&t.brokers, &topic, 0, 600).await;
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, 600);
    wait_archived(out.path(), &group, &topic, &produced, &hubcap);
    let first = scrape_and_check(port, out.path(), &topic, &hubcap);
    let total = |m: &BTreeMap<String, f64>| -> f64 {
        (0..PARTITIONS)
            .map(|p| m[&series("hubcap_records_archived_total", &topic, p)])
            .sum()
    };
    assert_eq!(total(&first), 600.0);
    let (status, body) = get(port, "/readyz");
    assert_eq!(status, 200, "{body}");

    // More records: the counters follow.
    produced.extend(produce(&t.brokers, &topic, 600, 150).await);
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, 750);
    wait_archived(out.path(), &group, &topic, &produced, &hubcap);
    let second = scrape_and_check(port, out.path(), &topic, &hubcap);
    assert_eq!(total(&second), 750.0);
    let a = audit(&read_local(out.path()), &topic, &produced);
    assert_eq!((a.events, a.duplicates, a.missing), (750, 0, 0));
    assert_eq!(get(port, "/readyz").0, 200);
    assert_eq!(get(port, "/nothing").0, 404);

    hubcap.signal(libc::SIGTERM);
    assert!(
        hubcap.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        hubcap.log()
    );
}

#[test]
fn a_taken_metrics_port_stops_the_start_with_the_flag_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (ok, _, stderr) = run_with_timeout(
        hubcap().args([
            "run",
            "--brokers",
            "127.0.0.1:1",
            "--topic",
            "t",
            "--group",
            "g",
            "--once",
            "--metrics-addr",
            &addr,
        ]),
        Duration::from_secs(30),
    );
    assert!(!ok);
    assert!(
        stderr.contains("--metrics-addr") && stderr.contains(&addr),
        "{stderr}"
    );
}

/// `key=value` fields of a log line (values unquoted).
fn fields(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn once_off_a_terminal_logs_progress_lines_up_to_the_end() {
    let t = Kafka::shared();
    let topic = unique("backlog");
    let group = unique("g");
    t.create_topic(&topic, 2).await;
    produce(&t.brokers, &topic, 0, 1000).await;
    wait_for_high_watermarks(&t.brokers, &topic, 2, 1000);
    let out = tempfile::tempdir().unwrap();

    let (ok, _, stderr) = run_with_timeout(
        hubcap()
            .env("HUBCAP_PROGRESS_INTERVAL", "100ms")
            .args([
                "run",
                "--brokers",
                &t.brokers,
                "--topic",
                &topic,
                "--group",
                &group,
            ])
            .args(["--output", out.path().to_str().unwrap(), "--once"])
            .args(["--window-size", "4KiB"]),
        Duration::from_secs(120),
    );
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("progress") && l.contains(&format!("topic={topic}")))
        .collect();
    println!("{}", lines.join("\n"));
    let last = fields(lines.last().expect("progress lines"));
    assert!(
        lines.last().unwrap().contains("progress: final"),
        "{stderr}"
    );
    for (k, v) in [
        ("done", "1000"),
        ("total", "1000"),
        ("left", "0"),
        ("eta", "0s"),
    ] {
        assert_eq!(last[k], v, "{k} in {last:?}");
    }
    assert_eq!(
        (
            last["partitions_done"].as_str(),
            last["partitions"].as_str()
        ),
        ("2", "2")
    );
    // Periodic lines, if the run outlasted the interval: done never goes back, rate and ETA
    // are there.
    let mut before = 0;
    for l in &lines {
        let f = fields(l);
        let done: u64 = f["done"].parse().unwrap();
        assert!(done >= before && done <= 1000, "{l}");
        assert!(f["rate"].ends_with("/s") && f.contains_key("eta"), "{l}");
        before = done;
    }
    assert!(!stderr.contains('\r'), "no bars off a terminal");
}

/// The live view, in a pseudo-terminal made by util-linux's `script`.
#[tokio::test(flavor = "multi_thread")]
async fn once_in_a_terminal_draws_bars_without_garbling_log_lines() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no util-linux script");
        return;
    }
    let t = Kafka::shared();
    let topic = unique("tty");
    let group = unique("g");
    t.create_topic(&topic, 2).await;
    produce(&t.brokers, &topic, 0, 600).await;
    wait_for_high_watermarks(&t.brokers, &topic, 2, 600);
    let out = tempfile::tempdir().unwrap();
    // A terminal of a known size (script's has none without a terminal around it).
    let command = format!(
        "stty cols 120 rows 30 && exec {} run --brokers {} --topic {topic} --group {group} --output {} --once --window-size 4KiB",
        env!("CARGO_BIN_EXE_hubcap"),
        t.brokers,
        out.path().display()
    );
    let (ok, screen, stderr) = run_with_timeout(
        std::process::Command::new("script")
            .env("HUBCAP_LOG", "info,librdkafka=warn")
            .args(["-q", "-e", "-c", &command, "/dev/null"]),
        Duration::from_secs(120),
    );
    assert!(ok, "{screen}\n{stderr}");
    let plain = strip_ansi(&screen);
    assert!(
        plain.contains(&format!("{topic} / 0")),
        "a bar per partition:\n{plain}"
    );
    assert!(plain.contains("ETA") && plain.contains("0 left"), "{plain}");
    // Each log line arrives whole: the bars are cleared (cursor moves, then `\r`) before it
    // and drawn again after its newline, never in the middle of it.
    let written: Vec<&str> = plain
        .split(['\r', '\n'])
        .filter(|l| l.contains("file written"))
        .collect();
    assert!(!written.is_empty(), "{plain}");
    for l in &written {
        assert!(
            l.starts_with("20"),
            "a log line starts with its time: {l:?}"
        );
        assert!(
            l.contains("offsets=") && l.contains("reason="),
            "garbled: {l:?}"
        );
        assert!(
            !l.contains("ETA") && !l.contains(" left"),
            "a bar on a log line: {l:?}"
        );
    }
    assert!(
        plain.contains("total"),
        "the summary table follows:\n{plain}"
    );
}

/// The text with ANSI escape sequences removed.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}
