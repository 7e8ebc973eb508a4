//! Azure Blob end to end, on Azurite: the archiver writing through `az://`, read back with
//! fastavro, and checkpoint compare-and-swap racing on the emulator.
//!
//! One test function: object_store takes the emulator's address from the process environment,
//! so the phases share one Azurite and one environment instead of racing over it.

mod common;

use common::*;
use hubcap::state::checkpoint::CheckpointStore;
use hubcap::store::Location;

#[tokio::test(flavor = "multi_thread")]
async fn azure_blob_archive_and_checkpoint_cas_on_azurite() {
    let az = Azurite::start();
    for (k, v) in az.env() {
        std::env::set_var(k, v);
    }
    let container = unique("hubcap").to_lowercase();
    az.create_container(&container);

    let loc = Location::open(&format!("az://{container}/conformance"), "--checkpoints").unwrap();
    hubcap::store::conformance::check(&loc).await;
    archive_round_trips(&az, &container).await;
}

/// The emulator's address reaches hubcap through the environment set at the start of the test.
async fn archive_round_trips(az: &Azurite, container: &str) {
    let t = Kafka::shared();
    let topic = unique("payments");
    let group = unique("g");
    t.create_topic(&topic, 4).await;
    let produced = produce(&t.brokers, &topic, 0, 600).await;
    wait_for_high_watermarks(&t.brokers, &topic, 4, 600);
    let output = format!("az://{container}/archive");
    let (ok, stdout, stderr) = run_once(
        &t.brokers,
        &topic,
        &group,
        &output,
        &["--window-size", "8KiB", "--namespace", "ns"],
    );
    assert!(ok, "run to Azurite failed:\n{stderr}");
    assert!(stdout.contains("total"), "{stdout}");
    let files = read_azurite(az, container, "archive");
    let a = audit(&files, &topic, &produced);
    println!(
        "azurite: {} files, {} events, {} duplicates, {} missing",
        a.files, a.events, a.duplicates, a.missing
    );
    assert_eq!((a.events, a.duplicates, a.missing), (600, 0, 0));

    let loc = Location::open(
        &format!("az://{container}/archive/_checkpoints"),
        "--checkpoints",
    )
    .unwrap();
    let checkpoints = CheckpointStore::new(loc, &group);
    for p in 0..4 {
        let end = produced.iter().filter(|r| r.partition == p).count() as i64;
        let c = checkpoints
            .load(&topic, p)
            .await
            .unwrap()
            .expect("checkpoint in Azurite")
            .checkpoint;
        assert_eq!((c.next_offset, c.pending), (end, None), "partition {p}");
    }
}
