//! Operator mistakes that used to cost records or files without a word, on Apache Kafka with the
//! binary: a topic deleted and re-created under its name (its offsets start over), a checkpoint
//! past the partition's end, and two consumer groups archiving one topic into one output. Each
//! now stops with exit 1 and a message saying what happened and how to go on; nothing archived
//! is changed, and the records are archived once the operator does what the message says.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::*;

/// Every `.avro` file under `dir` with its bytes.
fn data_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    list_files(dir)
        .into_iter()
        .map(|(name, _)| {
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            (name, bytes)
        })
        .collect()
}

/// `hubcap run --once` of `topic` by `group` into `output`: its exit code and log.
fn once_code(t: &Kafka, topic: &str, group: &str, output: &str) -> (Option<i32>, String) {
    let mut cmd = hubcap();
    cmd.args(["run", "--brokers", &t.brokers, "--topic", topic])
        .args(["--group", group, "--output", output, "--once"]);
    let mut run = Instance::spawn("once", cmd);
    let status = run.wait_exit(Duration::from_secs(120));
    (status.code(), run.log())
}

/// Every archived offset of `topic`, in order, as fastavro reads the files.
fn archived_offsets(dir: &Path) -> Vec<i64> {
    let mut offsets: Vec<i64> = read_local(dir)
        .iter()
        .flat_map(|f| f["records"].as_array().unwrap().clone())
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    offsets.sort();
    offsets
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recreated_topic_stops_the_run_instead_of_skipping_its_records() {
    let t = Kafka::shared();
    let a = OnceArchive::new(t, "recreated", 1, 100, &[]).await;
    let (topic, group) = (a.topic.clone(), a.group.clone());
    let first = local_checkpoint(a.dir(), &group, &topic, 0);
    assert_eq!(first["next_offset"], 100);
    let id = first["topic_id"]
        .as_str()
        .expect("the checkpoint records the topic id");
    let before = data_files(a.dir());

    // The topic is deleted and re-created, and gets fewer records than were archived.
    t.delete_topic(&topic).await;
    t.recreate_topic(&topic, 1).await;
    produce(&t.brokers, &topic, 0, 50).await;
    wait_for_high_watermarks(&t.brokers, &topic, 1, 50);
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, a.output(), &[]);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("deleted and re-created"), "{stderr}");
    assert!(
        stderr.contains(id),
        "names the archived topic id:\n{stderr}"
    );

    // More records than were archived: the offsets alone no longer tell, the id does.
    produce(&t.brokers, &topic, 50, 150).await;
    wait_for_high_watermarks(&t.brokers, &topic, 1, 200);
    let (code, log) = once_code(t, &topic, &group, a.output());
    assert_eq!(code, Some(1), "exit 1, a person must decide:\n{log}");
    assert!(log.contains("deleted and re-created"), "{log}");
    assert!(log.contains("--output"), "says how to go on:\n{log}");

    // A continuous run stops too, rather than wait at offset 100 of the new topic.
    let mut cmd = hubcap();
    cmd.args(["run", "--brokers", &t.brokers, "--topic", &topic])
        .args(["--group", &group, "--output", a.output()]);
    let mut run = Instance::spawn("continuous", cmd);
    assert_eq!(
        run.wait_exit(Duration::from_secs(60)).code(),
        Some(1),
        "{}",
        run.log()
    );

    assert_eq!(
        data_files(a.dir()),
        before,
        "the first topic's files are as they were"
    );
    assert_eq!(
        local_checkpoint(a.dir(), &group, &topic, 0)["next_offset"],
        100
    );
    let (clean, report) = audit_cli_with(a.dir(), &group, &["--brokers", &t.brokers]);
    assert!(!clean, "the audit against Kafka fails too:\n{report}");

    // What the message says: the new topic under a new output, every record of it once.
    let fresh = tempfile::tempdir().unwrap();
    let out = fresh.path().to_str().unwrap();
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, out, &[]);
    assert!(ok, "{stderr}");
    assert_eq!(archived_offsets(fresh.path()), (0..200).collect::<Vec<_>>());
    let new_id = local_checkpoint(fresh.path(), &group, &topic, 0)["topic_id"].clone();
    assert!(new_id.is_string() && new_id != id, "{new_id}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkpoint_past_the_partitions_end_stops_the_run() {
    let t = Kafka::shared();
    let a = OnceArchive::new(t, "pastend", 2, 100, &[]).await;
    let (topic, group) = (a.topic.clone(), a.group.clone());
    let path = checkpoint_file(a.dir(), &group, &topic, 1);
    let mut c = local_checkpoint(a.dir(), &group, &topic, 1);
    let end = c["next_offset"].as_i64().unwrap();
    c["next_offset"] = (end + 1000).into();
    std::fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    produce(&t.brokers, &topic, 100, 40).await;
    wait_for_high_watermarks(&t.brokers, &topic, 2, 140);

    let (code, log) = once_code(t, &topic, &group, a.output());
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("but the partition ends at") && log.contains("partition 1"),
        "{log}"
    );
    let (clean, report) = audit_cli_with(a.dir(), &group, &["--brokers", &t.brokers]);
    assert!(!clean, "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_group_on_one_output_overwrites_nothing_and_names_the_first() {
    let t = Kafka::shared();
    let a = OnceArchive::new(t, "twogroups", 3, 3000, &["--window-size", "200KiB"]).await;
    let topic = a.topic.clone();
    let before = data_files(a.dir());
    assert!(before.len() > 3, "several files per partition");

    let second = unique("gB");
    let (ok, _, stderr) = run_once(
        &t.brokers,
        &topic,
        &second,
        a.output(),
        &["--window-size", "300KiB"],
    );
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("did not overwrite"), "{stderr}");
    assert!(
        stderr.contains(&a.group),
        "names the first group:\n{stderr}"
    );
    assert_eq!(
        data_files(a.dir()),
        before,
        "the first group's files, byte for byte"
    );
    let (clean, report) = audit_cli(a.dir(), &a.group);
    assert!(clean, "{report}");
    let (ok, _, stderr) = run_once(
        &t.brokers,
        &topic,
        &second,
        a.output(),
        &["--window-size", "300KiB"],
    );
    assert!(!ok, "a second try fails the same way:\n{stderr}");
    assert_eq!(data_files(a.dir()), before);
}
