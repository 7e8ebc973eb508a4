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
    iceberg_table_names_abfss_uris(&container).await;
}

/// `--table iceberg` on Azure: the table's location and files are abfss:// URIs (what Spark on
/// Databricks, Synapse and Fabric open), and hubcap reads its own table back through them.
async fn iceberg_table_names_abfss_uris(container: &str) {
    let t = Kafka::shared();
    let topic = unique("ledger");
    let group = unique("g");
    t.create_topic(&topic, 2).await;
    produce(&t.brokers, &topic, 0, 200).await;
    wait_for_high_watermarks(&t.brokers, &topic, 2, 200);
    let output = format!("az://{container}/lake");
    let flags = ["--table", "iceberg", "--window-size", "8KiB"];
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, &output, &flags);
    assert!(ok, "--table iceberg to Azurite failed:\n{stderr}");
    let table = Location::open(&format!("{output}/{topic}"), "--output").unwrap();
    let read = |name: &str| {
        let table = table.clone();
        let name = name.to_string();
        async move {
            use object_store::ObjectStoreExt;
            let got = table.store.get(&table.path(&name)).await.unwrap();
            String::from_utf8(got.bytes().await.unwrap().to_vec()).unwrap()
        }
    };
    let version = read("metadata/version-hint.text").await;
    let metadata = read(&format!("metadata/v{}.metadata.json", version.trim())).await;
    let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap();
    let want = format!("abfss://{container}@devstoreaccount1.dfs.core.windows.net/lake/{topic}");
    assert_eq!(metadata["location"], want.as_str());
    let list = metadata["snapshots"].as_array().unwrap().last().unwrap()["manifest-list"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(list.starts_with(&format!("{want}/metadata/")), "{list}");
    let (ok, report, stderr) = run_with_timeout(
        hubcap().args(["audit", "--output", &output, "--group", &group]),
        std::time::Duration::from_secs(60),
    );
    assert!(ok, "audit of the Azure table:\n{report}\n{stderr}");
    assert!(report.contains(&format!("table {topic}")), "{report}");
    println!("azurite: Iceberg table at {want}, audit clean");
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
