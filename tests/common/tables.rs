//! Helpers of the table tests (Delta, Iceberg, catalogs): the Parquet files under a table, rows
//! as readers return them, and the three-instance kill loop.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::*;

/// (rows read, the distinct (partition, offset) among them) of one reader's rows, each row
/// `[partition, …, SequenceNumber at index `at`]`.
pub fn rows(list: &Value, at: usize) -> (usize, BTreeSet<(i32, i64)>) {
    let list = list.as_array().unwrap();
    let seen = list
        .iter()
        .map(|r| {
            let p: i32 = r[0].as_str().unwrap().parse().unwrap();
            (p, r[at].as_i64().unwrap())
        })
        .collect();
    (list.len(), seen)
}

/// The Parquet data files under the table, relative to it (not a Delta checkpoint in
/// `_delta_log/`).
pub fn parquet_files(table: &Path) -> BTreeSet<String> {
    list_files(table)
        .into_iter()
        .map(|(name, _)| name)
        .filter(|n| n.ends_with(".parquet") && !n.starts_with("_delta_log/"))
        .collect()
}

/// What a kill loop left: the archive, and every record produced.
pub struct Killed {
    pub out: tempfile::TempDir,
    pub topic: String,
    pub group: String,
    pub produced: Vec<Produced>,
    pub kills: usize,
}

/// Three instances of one group archive a topic with `table_flags` (`--table iceberg`, …) while
/// a producer writes, killed with SIGKILL at random moments, one at a time, each restarted at
/// once (`HUBCAP_KILLS`, default 6); then a last `--once` run catches up.
pub async fn kill_loop(table_flags: &[&str], partitions: i32) -> Killed {
    let t = Kafka::shared();
    let topic = unique("ikills");
    let group = unique("g");
    t.create_topic(&topic, partitions).await;
    let out = tempfile::tempdir().unwrap();
    let output = out.path().to_str().unwrap().to_string();
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
    let kills: usize = std::env::var("HUBCAP_KILLS")
        .ok()
        .map(|v| v.parse().expect("HUBCAP_KILLS is a number"))
        .unwrap_or(6);
    let members: Vec<String> = (0..3).map(|i| unique(&format!("member{i}"))).collect();
    let start = |i: usize| {
        let mut cmd = hubcap();
        cmd.args(["run", "--brokers", &t.brokers, "--topic", &topic])
            .args(["--group", &group, "--output", &output])
            .args(table_flags)
            .args(["--window-size", "8KiB"])
            .args(["--window-time", "1s"])
            .args(["-X", "session.timeout.ms=6000"])
            .args(["-X", "heartbeat.interval.ms=1000"])
            .args(["-X", &format!("group.instance.id={}", members[i])]);
        Instance::spawn(&format!("instance {i}"), cmd)
    };
    let mut instances: Vec<Instance> = (0..3).map(start).collect();
    for i in &mut instances {
        i.wait_for_line(0, "partitions assigned", Duration::from_secs(60));
    }
    for _ in 0..kills {
        std::thread::sleep(Duration::from_millis(rand::random_range(300..2500)));
        let victim = rand::random_range(0..instances.len());
        instances[victim].kill(); // SIGKILL
        instances[victim] = start(victim);
    }
    std::thread::sleep(Duration::from_secs(2));
    for i in &mut instances {
        i.kill();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let produced = producer.await.unwrap();
    wait_for_high_watermarks(&t.brokers, &topic, partitions, produced.len() as i64);
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, &output, table_flags);
    assert!(ok, "final run failed:\n{stderr}");
    Killed {
        out,
        topic,
        group,
        produced,
        kills,
    }
}
