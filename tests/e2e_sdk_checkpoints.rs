//! Azure SDK checkpoint interop on Azurite: hubcap's mirror read back through the Python SDK's
//! blob checkpoint store (azure-eventhub-checkpointstoreblob), and hubcap starting where that
//! store's `update_checkpoint` left a processor.
//!
//! Names are mixed case on purpose (namespace, hub, group): the SDKs lowercase all three.
//! Each test has its own Azurite and broker, and hands the emulator's address to the hubcap
//! process it starts (never to this process's environment, which the tests share).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// What the Python SDK's store lists in `container`: blob name → (size, metadata).
fn sdk_blobs(az: &Azurite, container: &str) -> BTreeMap<String, (u64, BTreeMap<String, Value>)> {
    let out = run_python(
        &script("sdk_checkpoints.py"),
        &["list", &az.account_endpoint(), container],
    );
    let doc: Value = serde_json::from_slice(&out).unwrap();
    doc["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let metadata = b["metadata"].as_object().unwrap().clone().into_iter();
            (
                b["name"].as_str().unwrap().to_string(),
                (b["size"].as_u64().unwrap(), metadata.collect()),
            )
        })
        .collect()
}

/// `hubcap run --once` with `extra` flags, reaching `az` through object_store's emulator support.
fn run_once_on(
    az: &Azurite,
    brokers: &str,
    topic: &str,
    group: &str,
    output: &str,
    extra: &[&str],
) -> (bool, String, String) {
    let mut cmd = hubcap();
    cmd.args([
        "run",
        "--brokers",
        brokers,
        "--topic",
        topic,
        "--group",
        group,
    ])
    .args(["--once", "--output", output, "--window-size", "8KiB"])
    .args(extra)
    .envs(az.env());
    run_with_timeout(&mut cmd, Duration::from_secs(120))
}

/// Records produced per partition (offsets start at 0 on a new topic).
fn counts(produced: &[Produced], partitions: i32) -> Vec<i64> {
    (0..partitions)
        .map(|p| produced.iter().filter(|r| r.partition == p).count() as i64)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_checkpoint_blobs_read_back_with_their_metadata_from_azurite() {
    let az = Azurite::start();
    let container = unique("sdk").to_lowercase();
    az.create_private_container(&container);
    let t = Kafka::shared();
    let topic = unique("Clicks");
    let group = unique("archiver");
    // The processors' Event Hubs consumer group, apart from hubcap's Kafka group id.
    let sdk_group = unique("Archive-Team");
    t.create_topic(&topic, 3).await;
    let produced = produce(&t.brokers, &topic, 0, 300).await;
    wait_for_high_watermarks(&t.brokers, &topic, 3, 300);
    let counts = counts(&produced, 3);
    let out = tempfile::tempdir().unwrap();

    let sdk_url = format!("az://{container}");
    let (ok, _, stderr) = run_once_on(
        &az,
        &t.brokers,
        &topic,
        &group,
        out.path().to_str().unwrap(),
        &[
            "--azure-sdk-checkpoints",
            &sdk_url,
            "--azure-sdk-namespace",
            "MyHub-NS.ServiceBus.Windows.Net",
            "--azure-sdk-consumer-group",
            &sdk_group,
        ],
    );
    assert!(ok, "hubcap failed:\n{stderr}");

    // Exactly one zero-length blob per partition, at the lowercased name, naming the last
    // archived offset; no byte offset (Kafka has none to give).
    let blobs = sdk_blobs(&az, &container);
    println!("SDK checkpoints written by hubcap: {blobs:?}");
    let want: BTreeMap<String, (u64, BTreeMap<String, Value>)> = (0..3)
        .map(|p| {
            let name = format!(
                "myhub-ns.servicebus.windows.net/{}/{}/checkpoint/{p}",
                topic.to_lowercase(),
                sdk_group.to_lowercase()
            );
            let seq = (counts[p as usize] - 1).to_string();
            let metadata = [("sequencenumber".to_string(), Value::from(seq))];
            (name, (0, metadata.into_iter().collect()))
        })
        .collect();
    assert_eq!(blobs, want, "{stderr}");
    // The mirror follows hubcap's own checkpoints.
    for p in 0..3 {
        let c = local_checkpoint(out.path(), &group, &topic, p);
        assert_eq!(c["next_offset"], counts[p as usize], "partition {p}");
    }

    // A container that does not exist stops the run at start, with what to fix.
    let (ok, _, stderr) = run_once_on(
        &az,
        &t.brokers,
        &topic,
        &unique("g"),
        out.path().to_str().unwrap(),
        &["--azure-sdk-checkpoints", "az://no-such-container"],
    );
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("give the existing container"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hubcap_starts_after_the_checkpoints_an_sdk_processor_wrote() {
    let az = Azurite::start();
    let container = unique("sdk").to_lowercase();
    az.create_private_container(&container);
    let t = Kafka::shared();
    let topic = unique("Orders");
    let group = "$Default";
    let namespace = "Contoso-Events.ServiceBus.Windows.Net";
    t.create_topic(&topic, 3).await;
    let produced = produce(&t.brokers, &topic, 0, 300).await;
    wait_for_high_watermarks(&t.brokers, &topic, 3, 300);
    let counts = counts(&produced, 3);

    // A processor checkpointed partitions 0 and 1 (with byte offsets, which hubcap ignores);
    // partition 2 has no checkpoint. The SDK lowercases the names it writes.
    let last = [counts[0] / 2, counts[1] / 3];
    for (p, (seq, offset)) in last.iter().zip(["104976", ""]).enumerate() {
        let out = run_python(
            &script("sdk_checkpoints.py"),
            &[
                "update",
                &az.account_endpoint(),
                &container,
                namespace,
                &topic,
                group,
                &p.to_string(),
                &seq.to_string(),
                offset,
            ],
        );
        let listed: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(listed["checkpoints"].as_array().unwrap().len(), p + 1);
    }

    let out = tempfile::tempdir().unwrap();
    let sdk_url = format!("az://{container}");
    let (ok, _, stderr) = run_once_on(
        &az,
        &t.brokers,
        &topic,
        group,
        out.path().to_str().unwrap(),
        &[
            "--azure-sdk-checkpoints",
            &sdk_url,
            "--azure-sdk-namespace",
            namespace,
        ],
    );
    assert!(ok, "hubcap failed:\n{stderr}");
    assert_eq!(
        stderr
            .matches("starts after the Azure SDK checkpoint")
            .count(),
        2,
        "{stderr}"
    );

    // The archive starts at the event after each checkpoint (partition 2 at its beginning) and
    // holds everything from there exactly once.
    let start = [last[0] + 1, last[1] + 1, 0];
    let files = read_local(out.path());
    for p in 0..3 {
        let first = files
            .iter()
            .filter(|f| partition_of(f["name"].as_str().unwrap(), &topic) == p)
            .filter_map(|f| f["records"].as_array().unwrap().first())
            .map(|r| r["seq"].as_i64().unwrap())
            .min();
        assert_eq!(first, Some(start[p as usize]), "partition {p}");
    }
    let expected: Vec<Produced> = produced
        .iter()
        .filter(|r| r.offset >= start[r.partition as usize])
        .cloned()
        .collect();
    let a = audit(&files, &topic, &expected);
    println!("archive from the SDK checkpoints {start:?} on: {a:?}");
    assert_eq!(
        (a.events, a.duplicates, a.missing),
        (expected.len(), 0, 0),
        "{a:?}"
    );
    let (clean, report) = audit_cli(out.path(), group);
    assert!(clean, "{report}");

    // From then on hubcap's checkpoints rule, and the SDK blobs follow them: the byte offset a
    // processor wrote is gone, so no SDK positions by it.
    let blobs = sdk_blobs(&az, &container);
    println!("SDK checkpoints after hubcap took over: {blobs:?}");
    for p in 0..3 {
        let name = format!(
            "contoso-events.servicebus.windows.net/{}/$default/checkpoint/{p}",
            topic.to_lowercase()
        );
        let (size, metadata) = &blobs[&name];
        let seq = (counts[p as usize] - 1).to_string();
        let want: BTreeMap<String, Value> = [("sequencenumber".to_string(), Value::from(seq))]
            .into_iter()
            .collect();
        assert_eq!((*size, metadata), (0, &want), "{name}");
    }
    assert_eq!(blobs.len(), 3, "{blobs:?}");
}
