//! End to end against Apache Kafka (one broker for the test binary, in its own JVM), read back with
//! fastavro.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const PARTITIONS: i32 = 4;

fn run_args(t: &Kafka, topic: &str, group: &str, out: &std::path::Path) -> Vec<String> {
    [
        "run",
        "--brokers",
        &t.brokers,
        "--topic",
        topic,
        "--group",
        group,
        "--output",
        out.to_str().unwrap(),
        "--namespace",
        "ns",
        // Short sessions so a killed instance leaves the group quickly.
        "-X",
        "session.timeout.ms=6000",
        "-X",
        "heartbeat.interval.ms=1000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn once_archives_every_offset_exactly_once_and_a_second_run_writes_nothing() {
    let t = Kafka::shared();
    let topic = unique("orders");
    let group = unique("g");
    t.create_topic(&topic, PARTITIONS).await;
    let produced = produce(&t.brokers, &topic, 0, 1200).await;
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, 1200);
    let out = tempfile::tempdir().unwrap();

    let (ok, stdout, stderr) = run_with_timeout(
        hubcap()
            .args(run_args(t, &topic, &group, out.path()))
            .args(["--once", "--window-size", "16KiB"]),
        Duration::from_secs(120),
    );
    assert!(ok, "first run failed:\n{stderr}");
    assert!(stdout.contains("total"), "summary printed: {stdout}");

    let files = read_local(out.path());
    let a = audit(&files, &topic, &produced);
    check_manifests(out.path(), &files);
    println!(
        "once: {} files, {} events, {} duplicates, {} missing",
        a.files, a.events, a.duplicates, a.missing
    );
    assert_eq!((a.events, a.duplicates, a.missing), (1200, 0, 0));
    assert!(
        a.files > PARTITIONS as usize * 2,
        "16KiB windows roll several files per partition"
    );
    for f in &files {
        assert!(
            f["size"].as_u64().unwrap() <= 16 * 1024,
            "{} exceeds the size window",
            f["name"]
        );
    }
    for p in 0..PARTITIONS {
        let end = produced.iter().filter(|r| r.partition == p).count() as i64;
        let c = local_checkpoint(out.path(), &group, &topic, p);
        assert_eq!(
            c["next_offset"], end,
            "partition {p} checkpoint = end offset"
        );
        assert!(c["pending"].is_null());
    }

    // The README's DuckDB-over-Avro example, unchanged.
    let glob = format!("{}/**/*.avro", out.path().display());
    let query = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/query_avro_duckdb.py");
    let text = String::from_utf8(run_python(&query, &[&glob, "user-5"])).unwrap();
    let user5 = produced
        .iter()
        .filter(|r| r.key.as_deref() == Some(b"user-5".as_slice()))
        .count();
    assert!(text.contains("avro: 1200 events"), "{text}");
    assert!(
        text.contains(&format!("avro: {user5} events of user-5")),
        "{text}"
    );

    // Nothing new: a second run writes no file and exits promptly.
    let before = list_files(out.path());
    let started = Instant::now();
    let (ok, _, stderr) = run_with_timeout(
        hubcap()
            .args(run_args(t, &topic, &group, out.path()))
            .arg("--once"),
        Duration::from_secs(60),
    );
    assert!(ok, "second run failed:\n{stderr}");
    assert_eq!(list_files(out.path()), before, "second --once wrote files");
    println!("second --once took {:?}", started.elapsed());

    // New data: a third run archives exactly the new records.
    let more = produce(&t.brokers, &topic, 1200, 200).await;
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, 1400);
    let (ok, _, stderr) = run_with_timeout(
        hubcap()
            .args(run_args(t, &topic, &group, out.path()))
            .arg("--once"),
        Duration::from_secs(60),
    );
    assert!(ok, "third run failed:\n{stderr}");
    let all: Vec<Produced> = produced.into_iter().chain(more).collect();
    let files = read_local(out.path());
    let a = audit(&files, &topic, &all);
    assert_eq!((a.events, a.duplicates, a.missing), (1400, 0, 0));

    // hubcap audit agrees, and notices a lost file.
    let (clean, report) = audit_cli(out.path(), &group);
    assert!(clean && report.contains("audit: clean"), "{report}");
    let victim = files[files.len() / 2]["name"].as_str().unwrap().to_string();
    std::fs::remove_file(out.path().join(&victim)).unwrap();
    let (clean, report) = audit_cli(out.path(), &group);
    assert!(!clean, "a deleted file must fail the audit:\n{report}");
    assert!(
        report.contains(&victim) && report.contains("audit: FAILED"),
        "{report}"
    );
}

/// Starts a continuous run and returns once it logged its partition assignment.
fn spawn_assigned(mut cmd: std::process::Command) -> std::process::Child {
    use std::io::BufRead;
    let mut child = cmd
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("partitions assigned") {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = child.kill();
        panic!("hubcap got no partitions within 60 s");
    }
    child
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_moments_loses_and_duplicates_nothing() {
    let t = Kafka::shared();
    let topic = unique("clicks");
    let group = unique("g");
    t.create_topic(&topic, PARTITIONS).await;
    let out = tempfile::tempdir().unwrap();

    // A producer keeps writing while instances are started and killed.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let (brokers, topic, stop) = (t.brokers.clone(), topic.clone(), stop.clone());
        tokio::spawn(async move {
            let mut all = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                all.extend(produce(&brokers, &topic, all.len(), 40).await);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            all
        })
    };
    // CI runs 20; scripts/kill-loop runs more (HUBCAP_KILLS=N).
    let kills: usize = std::env::var("HUBCAP_KILLS")
        .ok()
        .map(|v| v.parse().expect("HUBCAP_KILLS is a number"))
        .unwrap_or(20);
    assert!(kills >= 2, "HUBCAP_KILLS must be at least 2");
    let mut files_after = Vec::new();
    // Static membership (KIP-345), as a restarted scheduled job would use it: each new instance
    // takes over the killed one's membership and partitions at once, without waiting for its
    // session to expire (the group tests cover expiring sessions).
    let instance_id = format!("group.instance.id={}", unique("member"));
    for _ in 0..kills {
        let mut cmd = hubcap();
        cmd.args(run_args(t, &topic, &group, out.path()))
            .args(["--window-size", "8KiB", "--window-time", "1s"])
            .args(["-X", &instance_id]);
        let mut child = spawn_assigned(cmd);
        std::thread::sleep(Duration::from_millis(rand::random_range(200..3000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        files_after.push(list_files(out.path()).len());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let produced = producer.await.unwrap();
    let total = produced.len() as i64;
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, total);
    let (ok, _, stderr) = run_with_timeout(
        hubcap()
            .args(run_args(t, &topic, &group, out.path()))
            .args(["--once", "--window-size", "8KiB"]),
        Duration::from_secs(180),
    );
    assert!(ok, "final run failed:\n{stderr}");
    let files = read_local(out.path());
    let a = audit(&files, &topic, &produced);
    let listed = check_manifests(out.path(), &files);
    println!(
        "crash test: {listed} manifest entries agree with the files; {kills} kills (files after each: {files_after:?}), {} files, {} events, {} duplicates, {} missing",
        a.files, a.events, a.duplicates, a.missing
    );
    let (clean, report) = audit_cli(out.path(), &group);
    assert!(clean, "hubcap audit after the kill loop:\n{report}");
    assert!(
        files_after[kills - 1] > files_after[0],
        "the killed instances archived something"
    );
    assert_eq!((a.events as i64, a.duplicates, a.missing), (total, 0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_flushes_open_windows_and_exits_zero() {
    let t = Kafka::shared();
    let topic = unique("views");
    let group = unique("g");
    t.create_topic(&topic, PARTITIONS).await;
    let produced = produce(&t.brokers, &topic, 0, 200).await;
    let out = tempfile::tempdir().unwrap();
    let child = hubcap()
        .args(run_args(t, &topic, &group, out.path()))
        .args(["--window-time", "1h"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let it join the group and read everything; its windows stay open (1h, 300MiB), so only
    // the stop (or a rebalance, which also flushes) can publish them.
    std::thread::sleep(Duration::from_secs(10));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit after SIGTERM: {:?}\n{stderr}",
        output.status
    );
    let a = audit(&read_local(out.path()), &topic, &produced);
    assert_eq!((a.events, a.duplicates, a.missing), (200, 0, 0), "{stderr}");
    assert!(
        stderr.contains("reason=Stop"),
        "files flushed at the stop:\n{stderr}"
    );
    for p in 0..PARTITIONS {
        let end = produced.iter().filter(|r| r.partition == p).count() as i64;
        assert_eq!(
            local_checkpoint(out.path(), &group, &topic, p)["next_offset"],
            end
        );
    }
}

#[tokio::test]
async fn exit_codes_tell_usage_kafka_store_and_data_apart() {
    let t = Kafka::shared();
    let topic = unique("exit");
    t.create_topic(&topic, 1).await;
    produce(&t.brokers, &topic, 0, 10).await;
    let out = tempfile::tempdir().unwrap();
    let output = out.path().to_str().unwrap();
    let code = |brokers: &str, output: &str, extra: &[&str]| {
        let o = hubcap()
            .args(["run", "--once", "--brokers", brokers, "--topic", &topic])
            .args(["--group", "g", "--output", output])
            .args(extra)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (done, stderr) = code(&t.brokers, output, &[]);
    assert_eq!(done, Some(0), "{stderr}");
    let (usage, stderr) = code(&t.brokers, output, &["--window-time", "0s"]);
    assert_eq!(usage, Some(2), "{stderr}");
    let (usage, stderr) = code(&t.brokers, "ftp://nowhere/x", &[]);
    assert_eq!(usage, Some(2), "{stderr}");
    let nowhere = format!("127.0.0.1:{}", free_port());
    let (kafka, stderr) = code(&nowhere, output, &[]);
    assert_eq!(kafka, Some(4), "{stderr}");
    // The cause is said once, not once per link of the error chain.
    let error = stderr.lines().find(|l| l.starts_with("hubcap: ")).unwrap();
    assert_eq!(
        error.matches("BrokerTransportFailure").count(),
        1,
        "{error}"
    );
    let file = out.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let under_a_file = file.join("archive");
    // A file where the output directory should be: no retry fixes it, a person must (exit 1,
    // not the store's 5, which says "retry later").
    let (refused, stderr) = code(&t.brokers, under_a_file.to_str().unwrap(), &[]);
    assert_eq!(refused, Some(1), "{stderr}");
    let checkpoint = out.path().join(format!("_checkpoints/g/{topic}/0.json"));
    std::fs::write(&checkpoint, b"{ not json").unwrap();
    let (data, stderr) = code(&t.brokers, output, &[]);
    assert_eq!(data, Some(1), "{stderr}");
    assert!(stderr.contains("not valid JSON"), "{stderr}");
}

#[test]
fn unreachable_brokers_and_unknown_topics_fail_fast_naming_the_fix() {
    let out = tempfile::tempdir().unwrap();
    let port = free_port(); // nothing listens there
    let output = out.path().to_str().unwrap();
    let (ok, _, stderr) = run_once(&format!("127.0.0.1:{port}"), "t", "g", output, &[]);
    assert!(!ok);
    assert!(
        stderr.contains("cannot reach Kafka") && stderr.contains("--brokers"),
        "{stderr}"
    );

    let t = Kafka::shared();
    let (ok, _, stderr) = run_once(&t.brokers, "no-such-topic", "g", output, &[]);
    assert!(!ok);
    assert!(
        stderr.contains("no-such-topic") && stderr.contains("--topic"),
        "{stderr}"
    );
}

#[test]
fn bad_flags_get_one_line_errors() {
    for (args, needle) in [
        (vec!["--window-size", "lots"], "300MiB"),
        (vec!["--window-time", "soon"], "5m"),
        (
            vec!["--path-format", "{EventHub}/{Partition}"],
            "{PartitionId}",
        ),
        (vec!["--output", "ftp://x/y"], "s3://"),
        (vec!["--codec", "zip"], "deflate"),
    ] {
        let (ok, _, stderr) = run_with_timeout(
            hubcap()
                .args([
                    "run",
                    "--brokers",
                    "127.0.0.1:1",
                    "--topic",
                    "t",
                    "--group",
                    "g",
                ])
                .args(&args),
            Duration::from_secs(30),
        );
        assert!(!ok, "{args:?} accepted");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn once_covers_several_topics_and_an_empty_one() {
    let t = Kafka::shared();
    let busy = unique("busy");
    let empty = unique("empty");
    let group = unique("g");
    t.create_topic(&busy, PARTITIONS).await;
    t.create_topic(&empty, 3).await;
    let produced = produce(&t.brokers, &busy, 0, 300).await;
    wait_for_high_watermarks(&t.brokers, &busy, PARTITIONS, 300);
    let out = tempfile::tempdir().unwrap();
    let mut args = run_args(t, &busy, &group, out.path());
    args.extend(["--topic", &empty, "--once"].map(String::from));
    let (ok, stdout, stderr) = run_with_timeout(hubcap().args(&args), Duration::from_secs(120));
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&empty),
        "the summary lists the empty topic's partitions: {stdout}"
    );
    let files = read_local(out.path());
    assert!(
        !files
            .iter()
            .any(|f| f["name"].as_str().unwrap().contains(&empty)),
        "an empty topic writes nothing"
    );
    let a = audit(&files, &busy, &produced);
    assert_eq!((a.events, a.duplicates, a.missing), (300, 0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line_with_the_fields() {
    let t = Kafka::shared();
    let topic = unique("logs");
    t.create_topic(&topic, 2).await;
    produce(&t.brokers, &topic, 0, 50).await;
    wait_for_high_watermarks(&t.brokers, &topic, 2, 50);
    let out = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run_once(
        &t.brokers,
        &topic,
        &unique("g"),
        out.path().to_str().unwrap(),
        &["--log-format", "json"],
    );
    assert!(ok, "{stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let written: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "file written")
        .collect();
    assert_eq!(written.len(), 2, "one file per partition: {stderr}");
    let events: u64 = written
        .iter()
        .map(|l| l["fields"]["events"].as_u64().unwrap())
        .sum();
    assert_eq!(events, 50);
    assert!(written
        .iter()
        .all(|l| l["level"] == "INFO" && l["fields"]["topic"] == topic.as_str()));

    // A failure is a JSON line too.
    let (ok, _, stderr) = run_once(
        "127.0.0.1:1",
        &topic,
        "g",
        out.path().to_str().unwrap(),
        &["--log-format", "json"],
    );
    assert!(!ok);
    let last: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR");
    assert!(
        last["fields"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach Kafka"),
        "{last}"
    );
}
