//! The examples, run as a user would run them: `examples/rudderstack_producer.rs` against a real
//! broker, archived by hubcap, read back with fastavro and with `examples/read_archive.py`.
//!
//! `cargo test --tests` does not build examples, so the test builds the one it needs with the
//! same cargo and profile (Cargo's lock on the target directory is released once the test
//! binaries are built, so the nested build only waits for other builds).

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Builds an example and returns its executable, from cargo's own report of what it built.
fn build_example(name: &str) -> PathBuf {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args([
        "build",
        "--example",
        name,
        "--message-format=json-render-diagnostics",
    ])
    .current_dir(env!("CARGO_MANIFEST_DIR"));
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let (ok, stdout, stderr) = run_with_timeout(&mut cmd, Duration::from_secs(600));
    assert!(ok, "cargo build --example {name} failed:\n{stderr}");
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo reported no executable for example {name}:\n{stdout}"))
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Every archived event is keyed by its body's `userId`, or its `anonymousId` without one, so
/// one user's events share a partition; all three event types and both kinds of key occur.
#[tokio::test(flavor = "multi_thread")]
async fn rudderstack_producer_keys_by_user_id_then_anonymous_id() {
    let producer = build_example("rudderstack_producer");
    let t = Kafka::shared();
    let topic = unique("rudder");
    t.create_topic(&topic, 4).await;
    let count: i64 = 300;
    let (ok, stdout, stderr) = run_with_timeout(
        Command::new(&producer)
            .args(["--brokers", &t.brokers, "--topic", &topic])
            .args(["--count", &count.to_string(), "--rate", "0", "--headers"]),
        Duration::from_secs(120),
    );
    assert!(ok, "the example producer failed:\n{stdout}{stderr}");
    assert!(stdout.contains(&format!("produced {count}")), "{stdout}");
    wait_for_high_watermarks(&t.brokers, &topic, 4, count);

    let out = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run_once(
        &t.brokers,
        &topic,
        "archiver",
        out.path().to_str().unwrap(),
        &["--namespace", "ns"],
    );
    assert!(ok, "hubcap failed:\n{stderr}");

    let files = read_local(out.path());
    let mut ids = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    let (mut by_user, mut by_anonymous, mut events) = (0, 0, 0);
    let mut partition_of_user = std::collections::BTreeMap::new();
    let mut events_of = std::collections::BTreeMap::<String, usize>::new();
    for f in &files {
        let partition = partition_of(f["name"].as_str().unwrap(), &topic);
        for r in f["records"].as_array().unwrap() {
            events += 1;
            let body: Value = serde_json::from_slice(&unhex(r["body"].as_str().unwrap())).unwrap();
            let key = r["sys"]["x-opt-partition-key"]["string"].as_str().unwrap();
            let expected = match body["userId"].as_str() {
                Some(user) => {
                    by_user += 1;
                    user
                }
                None => {
                    by_anonymous += 1;
                    body["anonymousId"].as_str().unwrap()
                }
            };
            assert_eq!(key, expected, "record {partition}/{}: key", r["seq"]);
            *events_of.entry(key.to_string()).or_default() += 1;
            assert_eq!(
                *partition_of_user
                    .entry(key.to_string())
                    .or_insert(partition),
                partition,
                "{key}'s events share one partition"
            );
            let kind = body["type"].as_str().unwrap();
            assert_eq!(r["props"]["type"]["bytes"], hex(kind.as_bytes()));
            assert_eq!(
                r["props"]["messageId"]["bytes"],
                hex(body["messageId"].as_str().unwrap().as_bytes())
            );
            assert!(
                ids.insert(body["messageId"].as_str().unwrap().to_string()),
                "messageId {} archived twice",
                body["messageId"]
            );
            kinds.insert(kind.to_string());
        }
    }
    assert_eq!(events, count as usize, "every produced event is archived");
    assert!(
        by_user > 0 && by_anonymous > 0,
        "{by_user} / {by_anonymous}"
    );
    assert_eq!(
        kinds,
        BTreeSet::from(["identify", "page", "track"].map(String::from))
    );
    let user = events_of.keys().find(|k| k.starts_with("user-")).unwrap();
    read_archive_finds_them(
        out.path(),
        user,
        partition_of_user[user],
        events_of[user],
        count as usize,
    );
}

/// `examples/read_archive.py` on the same archive: per-partition counts that add up, and one
/// user's events, all of them, in offset order.
fn read_archive_finds_them(
    archive: &std::path::Path,
    user: &str,
    partition: i32,
    events_of_user: usize,
    count: usize,
) {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/read_archive.py");
    let summary = String::from_utf8(run_python(&example, &[archive.to_str().unwrap()])).unwrap();
    let total: usize = summary
        .lines()
        .map(|l| {
            l.split_whitespace()
                .nth(2)
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(total, count, "{summary}");

    let lines =
        String::from_utf8(run_python(&example, &[archive.to_str().unwrap(), user])).unwrap();
    let seqs: Vec<i64> = lines
        .lines()
        .map(|l| {
            let mut f = l.split_whitespace();
            assert_eq!(f.next().unwrap(), partition.to_string(), "{l}");
            assert!(l.contains(&format!("'userId': '{user}'")), "{l}");
            f.next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(seqs.len(), events_of_user, "{user}'s events:\n{lines}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{user}: {seqs:?}");
}
