//! S3 end to end, on moto's S3 server: the store's compare-and-swap contract, checkpoint
//! writers racing, and the archiver writing through `s3://` with its checkpoints on S3, read back
//! with boto3 + fastavro, audited, and resumed by a second run.
//!
//! One test function: object_store takes the endpoint and keys from the process environment,
//! so the phases share one moto and one environment instead of racing over it.

mod common;

use common::*;
use hubcap::state::checkpoint::CheckpointStore;
use hubcap::store::Location;

#[tokio::test(flavor = "multi_thread")]
async fn s3_archive_resume_and_checkpoint_cas_on_moto() {
    let moto = Moto::start();
    // Whatever the machine has set must not redirect or reconfigure the store: the endpoint and
    // dummy keys below are all hubcap gets, and conditional put is object_store's default, which
    // hubcap relies on without being told.
    for var in [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_DEFAULT_REGION",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONDITIONAL_PUT",
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
        "AWS_SKIP_SIGNATURE",
    ] {
        std::env::remove_var(var);
    }
    for (k, v) in moto.env() {
        std::env::set_var(k, v);
    }
    let bucket = unique("hubcap");
    moto.create_bucket(&bucket);

    let loc = Location::open(&format!("s3://{bucket}/conformance"), "--checkpoints").unwrap();
    hubcap::store::conformance::check(&loc).await;
    archive_resumes_from_s3_checkpoints(&moto, &bucket).await;
}

/// A `--once` run archives to S3 with its checkpoints there; `hubcap audit` finds the archive
/// clean; a second run after more produce starts where the S3 checkpoints say and adds exactly
/// the new records.
async fn archive_resumes_from_s3_checkpoints(moto: &Moto, bucket: &str) {
    let t = Kafka::shared();
    let topic = unique("payments");
    let group = unique("g");
    t.create_topic(&topic, 4).await;
    let mut produced = produce(&t.brokers, &topic, 0, 600).await;
    wait_for_high_watermarks(&t.brokers, &topic, 4, 600);
    let output = format!("s3://{bucket}/archive");
    let flags = ["--window-size", "8KiB", "--namespace", "ns"];

    let (ok, stdout, stderr) = run_once(&t.brokers, &topic, &group, &output, &flags);
    assert!(ok, "first run to moto failed:\n{stderr}");
    assert_eq!(total_events(&stdout), 600, "{stdout}");
    let first = read_moto(moto, bucket, "archive");
    let a = audit(&first, &topic, &produced);
    println!(
        "s3 first run: {} files, {} events, {} duplicates, {} missing",
        a.files, a.events, a.duplicates, a.missing
    );
    assert_eq!((a.events, a.duplicates, a.missing), (600, 0, 0));
    check_s3_checkpoints(bucket, &group, &topic, &produced).await;
    audit_is_clean(&t.brokers, &output, &group, first.len(), 600);

    produced.extend(produce(&t.brokers, &topic, 600, 400).await);
    wait_for_high_watermarks(&t.brokers, &topic, 4, 1000);
    let (ok, stdout, stderr) = run_once(&t.brokers, &topic, &group, &output, &flags);
    assert!(ok, "second run to moto failed:\n{stderr}");
    assert_eq!(
        total_events(&stdout),
        400,
        "the second run archives only what is new:\n{stdout}"
    );
    let both = read_moto(moto, bucket, "archive");
    let a = audit(&both, &topic, &produced);
    println!(
        "s3 after resume: {} files, {} events, {} duplicates, {} missing",
        a.files, a.events, a.duplicates, a.missing
    );
    assert_eq!((a.events, a.duplicates, a.missing), (1000, 0, 0));
    for f in &first {
        let name = f["name"].as_str().unwrap();
        let now = both.iter().find(|g| g["name"] == name);
        assert_eq!(
            now.map(|g| &g["size"]),
            Some(&f["size"]),
            "{name} is untouched by the second run"
        );
    }
    check_s3_checkpoints(bucket, &group, &topic, &produced).await;
    audit_is_clean(&t.brokers, &output, &group, both.len(), 1000);
}

/// Every partition's checkpoint on S3 points just past its last produced record.
async fn check_s3_checkpoints(bucket: &str, group: &str, topic: &str, produced: &[Produced]) {
    let loc = Location::open(
        &format!("s3://{bucket}/archive/_checkpoints"),
        "--checkpoints",
    )
    .unwrap();
    let checkpoints = CheckpointStore::new(loc, group);
    for p in 0..4 {
        let end = produced.iter().filter(|r| r.partition == p).count() as i64;
        let c = checkpoints
            .load(topic, p)
            .await
            .unwrap()
            .expect("checkpoint on S3")
            .checkpoint;
        assert_eq!((c.next_offset, c.pending), (end, None), "partition {p}");
    }
}

/// `hubcap audit` reads the archive and checkpoints back from S3 and compares them with Kafka.
fn audit_is_clean(brokers: &str, output: &str, group: &str, files: usize, events: usize) {
    let (ok, stdout, stderr) = run_with_timeout(
        hubcap().args([
            "audit",
            "--output",
            output,
            "--group",
            group,
            "--brokers",
            brokers,
        ]),
        std::time::Duration::from_secs(60),
    );
    assert!(ok, "hubcap audit of {output}:\n{stdout}{stderr}");
    let summary = format!("audit: clean (4 partitions, {files} files, {events} events)");
    assert!(stdout.contains(&summary), "{summary}:\n{stdout}");
}

/// The events column of the summary's `total` line.
fn total_events(stdout: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap_or_else(|| panic!("no total line:\n{stdout}"));
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}
