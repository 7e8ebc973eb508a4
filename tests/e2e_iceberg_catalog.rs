//! `--table iceberg --iceberg-catalog URL` against Apache Kafka and Apache Iceberg's own REST
//! catalog server (from Maven Central's jars), the tables read through the catalog by pyiceberg
//! and DuckDB (and Spark, in the kill loop), not by hubcap: every offset once across runs, a
//! path table moved into the catalog with its files, the catalog restarted mid-run, a token the
//! catalog refuses, and three instances of one group killed at random.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use serde_json::Value;

const NAMESPACE: &str = "lake";

/// The table read through the catalog by tests/py/read_iceberg_rest.py.
fn read_rest(catalog: &str, table: &str, partition: &str) -> Value {
    let out = run_python(
        &script("read_iceberg_rest.py"),
        &[catalog, NAMESPACE, table, partition],
    );
    serde_json::from_slice(&out).expect("read_iceberg_rest.py prints JSON")
}

/// Every reader of `read` returns each of `want` exactly once.
fn assert_every_offset_once(label: &str, read: &Value, want: &BTreeSet<(i32, i64)>) {
    for (reader, list) in [
        ("pyiceberg (REST)", &read["pyiceberg"]["rows"]),
        ("DuckDB (REST ATTACH)", &read["duckdb"]["rows"]),
    ] {
        let (count, seen) = rows(list, 1);
        let duplicates = count - seen.len();
        let missing = want.difference(&seen).count();
        let extra = seen.difference(want).count();
        println!("{label}, {reader}: {count} events, {duplicates} duplicates, {missing} missing");
        assert_eq!((duplicates, missing, extra), (0, 0, 0), "{label}: {reader}");
    }
}

/// The data files pyiceberg plans, relative to the table folder `table` (`file:` URIs in
/// either form).
fn planned(read: &Value, table: &std::path::Path) -> BTreeSet<String> {
    let prefix = format!("{}/", table.display());
    read["pyiceberg"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let path = f.as_str().unwrap().trim_start_matches("file:");
            let path = format!("/{}", path.trim_start_matches('/'));
            path.strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{path} is not under {prefix}"))
                .to_string()
        })
        .collect()
}

fn catalog_flags(rest: &IcebergRest) -> Vec<String> {
    [
        "--table",
        "iceberg",
        "--iceberg-catalog",
        &rest.url(),
        "--iceberg-namespace",
        NAMESPACE,
    ]
    .map(String::from)
    .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_table_holds_every_offset_once_across_runs() {
    const PARTITIONS: i32 = 3;
    let rest = IcebergRest::start();
    let t = Kafka::shared();
    let mut flags = catalog_flags(&rest);
    flags.extend(["--window-size", "16KiB"].map(String::from));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let a = OnceArchive::new(t, "icat", PARTITIONS, 600, &flags).await;
    let (topic, group, out, output) = (a.topic.clone(), a.group.clone(), &a.out, a.output());
    let mut produced = a.produced.clone();
    let table = out.path().canonicalize().unwrap().join(&topic);

    let read = read_rest(&rest.url(), &topic, "1");
    assert_every_offset_once("first run", &read, &produced_offsets(&produced));
    let files = planned(&read, &table);
    assert_eq!(files, parquet_files(&table), "every file written, once");
    assert!(files.len() > PARTITIONS as usize, "{files:?}");
    let one = produced.iter().filter(|p| p.partition == 1).count();
    assert_eq!(read["duckdb"]["in_partition"], one);
    let pruned = read["pyiceberg"]["pruned"]["files"].as_array().unwrap();
    assert!(
        pruned
            .iter()
            .all(|f| f.as_str().unwrap().contains("/partition=1/")),
        "pyiceberg prunes on partition: {pruned:?}"
    );
    for p in 0..PARTITIONS {
        let next = local_next_offset(out.path(), &group, &topic, p);
        let key = format!("hubcap.offsets.{topic}.{p}");
        assert_eq!(
            read["pyiceberg"]["offsets"][&key].as_str(),
            Some((next - 1).to_string().as_str()),
            "{key}"
        );
    }
    // The catalog wrote the metadata; hubcap wrote no path table beside it.
    assert!(!table.join("metadata/version-hint.text").exists());

    produced.extend(produce(&t.brokers, &topic, 600, 300).await);
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, 900);
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, output, &flags);
    assert!(ok, "second run failed:\n{stderr}");
    let again = read_rest(&rest.url(), &topic, "0");
    assert_every_offset_once("second run", &again, &produced_offsets(&produced));
    assert_ne!(again["metadata_location"], read["metadata_location"]);
    assert_eq!(planned(&again, &table), parquet_files(&table));

    // `hubcap inspect` and `hubcap audit` find the table through the catalog.
    let url = rest.url();
    let (ok, stdout, stderr) = run_with_timeout(
        hubcap()
            .args(["inspect", "--stats", "--iceberg-catalog", &url])
            .args(["--iceberg-namespace", NAMESPACE, &topic]),
        Duration::from_secs(60),
    );
    assert!(ok, "{stderr}");
    let totals: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(totals["records"], 900, "{stdout}");
    let catalog = ["--iceberg-catalog", &url, "--iceberg-namespace", NAMESPACE];
    let (clean, report) = audit_cli_with(out.path(), &group, &catalog);
    assert!(clean, "{report}");
    // Without the catalog, the audit says where the table's metadata is.
    let (clean, report) = audit_cli(out.path(), &group);
    assert!(!clean && report.contains("--iceberg-catalog"), "{report}");
}

/// `hubcap run --once` of `topic` with `flags` and `env`: (exit code, stdout, stderr).
fn run_once_env(
    t: &Kafka,
    topic: &str,
    group: &str,
    output: &str,
    flags: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let mut cmd = hubcap();
    cmd.args(["run", "--brokers", &t.brokers, "--topic", topic])
        .args(["--group", group, "--once", "--output", output])
        .args(flags)
        .envs(env.iter().copied());
    let (status, stdout, stderr) = run_status(&mut cmd, Duration::from_secs(120));
    (status.code().unwrap_or(-1), stdout, stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_path_table_moves_into_the_catalog_with_its_files() {
    let rest = IcebergRest::start();
    let t = Kafka::shared();
    let path_flags = ["--table", "iceberg", "--window-size", "16KiB"];
    let a = OnceArchive::new(t, "imove", 2, 300, &path_flags).await;
    let (topic, group, out, output) = (a.topic.clone(), a.group.clone(), &a.out, a.output());
    let table = out.path().canonicalize().unwrap().join(&topic);
    assert!(table.join("metadata/version-hint.text").exists());
    let mut produced = a.produced.clone();
    produced.extend(produce(&t.brokers, &topic, 300, 200).await);
    wait_for_high_watermarks(&t.brokers, &topic, 2, 500);

    let mut flags = catalog_flags(&rest);
    flags.extend(["--window-size", "16KiB"].map(String::from));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, output, &flags);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("moved the path table into the Iceberg catalog"),
        "{stderr}"
    );
    let read = read_rest(&rest.url(), &topic, "0");
    assert_every_offset_once(
        "moved into the catalog",
        &read,
        &produced_offsets(&produced),
    );
    assert_eq!(planned(&read, &table), parquet_files(&table));

    // A run without the catalog would commit to the path table behind the catalog's back.
    let (code, _, stderr) = run_once_env(t, &topic, &group, output, &path_flags, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("moved into the REST catalog"), "{stderr}");
    assert!(stderr.contains("--iceberg-catalog"), "{stderr}");
}

/// An authenticating front for the catalog (tests/py/catalog_auth.py), as Polaris or Unity
/// check tokens: a static token, OAuth2 client credentials, and a switch that revokes both.
struct AuthFront {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

const TOKEN: &str = "tok-5e6f7a8b9c";
const CLIENT_ID: &str = "hubcap-writer";
const CLIENT_SECRET: &str = "cs-1a2b3c4d5e";

impl AuthFront {
    fn start(upstream: &str) -> AuthFront {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = std::process::Command::new(python())
            .arg(script("catalog_auth.py"))
            .args([&port.to_string(), upstream, TOKEN])
            .arg(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
            .arg(dir.path())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "catalog_auth.py exited"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "catalog_auth.py did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        AuthFront { child, port, dir }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn revoke(&self, revoked: bool) {
        let flag = self.dir.path().join("revoked");
        if revoked {
            std::fs::write(flag, "").unwrap();
        } else {
            let _ = std::fs::remove_file(flag);
        }
    }

    fn requests(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("requests.log")).unwrap_or_default()
    }
}

impl Drop for AuthFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token the catalog refuses, at the start or in the middle of a run: exit 5, a message that
/// names the fix and never the secret, no checkpoint past what the table holds; the next run
/// with good credentials archives every offset once.
#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_that_refuses_hubcap_stops_it_with_exit_5_and_loses_nothing() {
    const PARTITIONS: i32 = 2;
    let rest = IcebergRest::start();
    let front = AuthFront::start(&rest.url());
    let t = Kafka::shared();
    let topic = unique("iauth");
    let group = unique("g");
    t.create_topic(&topic, PARTITIONS).await;
    let mut produced = produce(&t.brokers, &topic, 0, 200).await;
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, 200);
    let out = tempfile::tempdir().unwrap();
    let output = out.path().to_str().unwrap();
    let front_url = front.url();
    let flags = [
        "--table",
        "iceberg",
        "--iceberg-catalog",
        &front_url,
        "--iceberg-namespace",
        NAMESPACE,
        "--window-size",
        "8KiB",
        "--window-time",
        "1s",
    ];
    let secrets = ["wrong-tok-0d9c8b", TOKEN, CLIENT_SECRET, "wrong-cs-77aa"];
    let no_secret = |text: &str| {
        for s in secrets {
            assert!(!text.contains(s), "a secret in the output:\n{text}");
        }
    };

    // At the start: a wrong token, then wrong client credentials.
    for env in [
        ("HUBCAP_ICEBERG_TOKEN", "wrong-tok-0d9c8b".to_string()),
        (
            "HUBCAP_ICEBERG_CREDENTIAL",
            format!("{CLIENT_ID}:wrong-cs-77aa"),
        ),
    ] {
        let (code, stdout, stderr) =
            run_once_env(t, &topic, &group, output, &flags, &[(env.0, &env.1)]);
        assert_eq!(code, 5, "{}: {stderr}", env.0);
        println!(
            "{}: exit {code}: {}",
            env.0,
            stderr.trim_end().lines().last().unwrap_or_default()
        );
        assert!(stderr.contains("refused hubcap"), "{stderr}");
        assert!(stderr.contains("HUBCAP_ICEBERG_CREDENTIAL"), "{stderr}");
        no_secret(&stdout);
        no_secret(&stderr);
        for p in 0..PARTITIONS {
            assert_eq!(local_next_offset(out.path(), &group, &topic, p), 0);
        }
    }

    // Good client credentials: a token is issued and every offset archived.
    let credential = format!("{CLIENT_ID}:{CLIENT_SECRET}");
    let good = [("HUBCAP_ICEBERG_CREDENTIAL", credential.as_str())];
    let (code, stdout, stderr) = run_once_env(t, &topic, &group, output, &flags, &good);
    assert_eq!(code, 0, "{stderr}");
    no_secret(&stdout);
    no_secret(&stderr);
    assert!(
        front.requests().contains("token issued"),
        "{}",
        front.requests()
    );
    let read = read_rest(&rest.url(), &topic, "0");
    assert_every_offset_once("good credentials", &read, &produced_offsets(&produced));

    // Revoked in the middle of a continuous run (a static token this time).
    let mut cmd = hubcap();
    cmd.args(["run", "--brokers", &t.brokers, "--topic", &topic])
        .args(["--group", &group, "--output", output])
        .args(flags)
        .env("HUBCAP_ICEBERG_TOKEN", TOKEN);
    let mut instance = Instance::spawn("revoked", cmd);
    instance.wait_for_line(0, "partitions assigned", Duration::from_secs(60));
    front.revoke(true);
    produced.extend(produce(&t.brokers, &topic, 200, 200).await);
    let status = instance.wait_exit(Duration::from_secs(90));
    let log = instance.log();
    assert_eq!(status.code(), Some(5), "{log}");
    assert!(log.contains("refused hubcap"), "{log}");
    no_secret(&log);

    // Let in again: the next run archives the rest, every offset once.
    front.revoke(false);
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, 400);
    let good = [("HUBCAP_ICEBERG_TOKEN", TOKEN)];
    let (code, _, stderr) = run_once_env(t, &topic, &group, output, &flags, &good);
    assert_eq!(code, 0, "{stderr}");
    let read = read_rest(&rest.url(), &topic, "1");
    assert_every_offset_once("after the revocation", &read, &produced_offsets(&produced));
    let table = out.path().canonicalize().unwrap().join(&topic);
    assert_eq!(planned(&read, &table), parquet_files(&table));
}

/// The catalog stops for a few seconds while a continuous run archives: commits wait and retry,
/// the run carries on, and every offset is in the table once.
#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_restarted_mid_run_costs_nothing() {
    const PARTITIONS: i32 = 3;
    let mut rest = IcebergRest::start();
    let t = Kafka::shared();
    let topic = unique("irestart");
    let group = unique("g");
    t.create_topic(&topic, PARTITIONS).await;
    let out = tempfile::tempdir().unwrap();
    let output = out.path().to_str().unwrap();
    let mut flags = catalog_flags(&rest);
    flags.extend(["--window-size", "8KiB", "--window-time", "1s"].map(String::from));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut cmd = hubcap();
    cmd.args(["run", "--brokers", &t.brokers, "--topic", &topic])
        .args(["--group", &group, "--output", output])
        .args(&flags);
    let mut instance = Instance::spawn("through a restart", cmd);
    instance.wait_for_line(0, "partitions assigned", Duration::from_secs(60));
    let mut produced = Vec::new();
    for _ in 0..10 {
        produced.extend(produce(&t.brokers, &topic, produced.len(), 40).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    rest.stop();
    let stopped = std::time::Instant::now();
    for _ in 0..15 {
        produced.extend(produce(&t.brokers, &topic, produced.len(), 40).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    rest.restart();
    let outage = stopped.elapsed();
    for _ in 0..10 {
        produced.extend(produce(&t.brokers, &topic, produced.len(), 40).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        instance.exited().is_none(),
        "the run gave up during the outage:\n{}",
        instance.log()
    );
    instance.signal(libc::SIGTERM);
    let status = instance.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "{}", instance.log());
    let warnings: Vec<String> = instance
        .lines()
        .into_iter()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    println!(
        "during the outage: {} warnings, e.g. {:?}",
        warnings.len(),
        warnings.first()
    );
    wait_for_high_watermarks(&t.brokers, &topic, PARTITIONS, produced.len() as i64);
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, output, &flags);
    assert!(ok, "{stderr}");
    let read = read_rest(&rest.url(), &topic, "2");
    let label = format!("catalog down {:.1} s mid-run", outage.as_secs_f64());
    assert_every_offset_once(&label, &read, &produced_offsets(&produced));
    let table = out.path().canonicalize().unwrap().join(&topic);
    assert_eq!(planned(&read, &table), parquet_files(&table));
}

/// The table read through the catalog by Spark with Iceberg's runtime, and with `delta` the
/// Delta table over the same files by delta-spark (tests/py/read_iceberg_spark.py).
fn read_spark(
    catalog: &str,
    table: &str,
    partition: &str,
    delta: Option<&std::path::Path>,
) -> Value {
    let jars = [
        "iceberg-spark-runtime-4.1_2.13-1.12.0.jar",
        "delta-spark_4.1_2.13-4.4.0.jar",
        "delta-storage-4.4.0.jar",
    ]
    .map(|j| tools().join("spark-jars").join(j).display().to_string())
    .join(",");
    let scratch = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(python());
    cmd.arg(script("read_iceberg_spark.py"))
        .args([catalog, NAMESPACE, table, partition])
        .args(delta.map(|d| d.to_str().unwrap()))
        .env("SPARK_JARS", jars)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .env("SPARK_LOCAL_DIRS", scratch.path())
        .env("TMPDIR", scratch.path());
    let (ok, stdout, stderr) = run_with_timeout(&mut cmd, Duration::from_secs(300));
    assert!(ok, "read_iceberg_spark.py failed:\n{stderr}");
    serde_json::from_str(stdout.lines().last().unwrap()).expect("read_iceberg_spark.py prints JSON")
}

/// Three instances of one group commit to one catalog table while they are killed at random
/// (`HUBCAP_KILLS`, default 6), with Delta and Iceberg tables over the same files: pyiceberg,
/// DuckDB and Spark read the Iceberg table through the catalog, delta-rs and Spark the Delta one,
/// each every offset once, Spark planning one partition's files for a filter on it.
#[tokio::test(flavor = "multi_thread")]
async fn three_instances_killed_at_random_leave_every_offset_once_in_the_catalog_table() {
    const PARTITIONS: i32 = 6;
    let rest = IcebergRest::start();
    let url = rest.url();
    let flags = [
        "--table",
        "delta,iceberg",
        "--iceberg-catalog",
        &url,
        "--iceberg-namespace",
        NAMESPACE,
    ];
    let k = kill_loop(&flags, PARTITIONS).await;
    let table = k.out.path().canonicalize().unwrap().join(&k.topic);
    let want = produced_offsets(&k.produced);
    let label = format!("catalog crash test ({} kills)", k.kills);
    let read = read_rest(&url, &k.topic, "1");
    assert_every_offset_once(&label, &read, &want);
    let files = planned(&read, &table);
    assert_eq!(files, parquet_files(&table), "every file written, once");

    let spark = read_spark(&url, &k.topic, "1", Some(&table));
    let names = |list: &Value| -> BTreeSet<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect()
    };
    let file_names: BTreeSet<String> = files
        .iter()
        .map(|f| f.rsplit('/').next().unwrap().to_string())
        .collect();
    let in_one: BTreeSet<String> = files
        .iter()
        .filter(|f| f.starts_with("partition=1/"))
        .map(|f| f.rsplit('/').next().unwrap().to_string())
        .collect();
    let delta: Value = serde_json::from_slice(&run_python(
        &script("read_delta.py"),
        &[table.to_str().unwrap(), "1"],
    ))
    .unwrap();
    let delta_rs: Vec<Value> = delta["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::json!([r["partition"], r["SequenceNumber"]]))
        .collect();
    for (reader, list) in [
        ("Spark (Iceberg, REST)", spark["iceberg"]["rows"].clone()),
        ("Spark (Delta)", spark["delta"]["rows"].clone()),
        ("delta-rs", Value::Array(delta_rs)),
    ] {
        let (count, seen) = rows(&list, 1);
        let duplicates = count - seen.len();
        let missing = want.difference(&seen).count();
        let extra = seen.difference(&want).count();
        println!("{label}, {reader}: {count} events, {duplicates} duplicates, {missing} missing");
        assert_eq!((duplicates, missing, extra), (0, 0, 0), "{reader}");
    }
    assert_eq!(
        names(&spark["delta"]["all"]),
        file_names,
        "one copy of the files"
    );
    assert_eq!(
        names(&spark["delta"]["pruned"]),
        in_one,
        "Spark's Delta reader prunes"
    );
    let iceberg = &spark["iceberg"];
    assert_eq!(iceberg["files"], files.len(), "Spark plans every file once");
    assert_eq!(
        iceberg["pruned_files"],
        in_one.len(),
        "Spark's Iceberg reader prunes"
    );
    let (clean, report) = audit_cli_with(
        k.out.path(),
        &k.group,
        &["--iceberg-catalog", &url, "--iceberg-namespace", NAMESPACE],
    );
    println!(
        "{label}: {} kills plus 3 at the end, {} events, {} files, {} snapshots kept; audit: {}",
        k.kills,
        k.produced.len(),
        files.len(),
        read["pyiceberg"]["snapshots"],
        if clean { "clean" } else { "NOT clean" }
    );
    assert!(clean, "{report}");
}

/// Partition `p`'s file of offsets `first..first + 10` of topic `clicks`, described by hand.
fn addition(p: i32, first: i64) -> hubcap::state::iceberg::Addition {
    use hubcap::state::iceberg::{Addition, Committed, DataFile};
    Addition {
        file: DataFile {
            path: format!("partition={p}/{first:020}.parquet"),
            size: 100,
            records: 10,
            partition_values: vec![("partition".into(), p.to_string())],
            metrics: Default::default(),
        },
        committed: Committed {
            topic: "clicks".into(),
            partition: p,
            last_offset: first + 9,
        },
    }
}

/// Two writers (two instances' commit queues) on one catalog table: the one that commits on a
/// stale snapshot loses the catalog's requirement check (409), reads the table again and
/// commits on the new snapshot; a file the other committed meanwhile is not added twice. Then
/// sixteen partitions' files from both at once: every file once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_commit_race_in_the_catalog_never_adds_a_file_twice() {
    use hubcap::state::iceberg::catalog::{Auth, CatalogConfig, RestCatalog};
    use hubcap::state::iceberg::{Appended, IcebergTable, IcebergWriter};
    use std::sync::Arc;

    let rest = IcebergRest::start();
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().canonicalize().unwrap();
    let location = hubcap::store::Location::open(output.to_str().unwrap(), "--output")
        .unwrap()
        .child("clicks");
    let config = CatalogConfig {
        uri: rest.url(),
        warehouse: None,
        namespace: vec![NAMESPACE.into()],
        auth: Auth::None,
    };
    let writer = || async {
        let catalog = Arc::new(RestCatalog::connect(config.clone()).await.unwrap());
        let table = IcebergTable::in_catalog(location.clone(), catalog, "clicks").unwrap();
        Arc::new(
            IcebergWriter::open(table, &["partition".to_string()])
                .await
                .unwrap(),
        )
    };
    let (a, b) = (writer().await, writer().await);
    // Small bounds, so that the commits below merge manifests and expire snapshots through
    // the catalog's updates too.
    let created = a.table().load().await.unwrap().unwrap();
    a.table()
        .set_properties(
            &created,
            &[
                ("commit.manifest.min-count-to-merge", "4"),
                ("hubcap.snapshots.max", "3"),
            ],
        )
        .await
        .unwrap();
    let Appended::Committed(first) = a.add(addition(0, 0)).await.unwrap() else {
        panic!("not committed")
    };
    // `b` still holds the table as created: the catalog refuses its commit, it retries.
    let Appended::Committed(second) = b.add(addition(1, 0)).await.unwrap() else {
        panic!("not committed")
    };
    assert!(second > first);
    // `a` holds its own commit: `b`'s file is in the table already.
    assert_eq!(a.add(addition(1, 0)).await.unwrap(), Appended::AlreadyThere);

    let mut tasks = Vec::new();
    for p in 0..16 {
        let writers = [a.clone(), b.clone()];
        tasks.push(tokio::spawn(async move {
            for first in [10, 20, 30] {
                let w = &writers[(p as usize + first as usize / 10) % 2];
                assert_ne!(
                    w.add(addition(p, first)).await.unwrap(),
                    Appended::AlreadyThere
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let state = a.table().load().await.unwrap().unwrap();
    let files: Vec<String> = a
        .table()
        .files(&state)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.file_path)
        .collect();
    let unique: BTreeSet<&String> = files.iter().collect();
    assert_eq!((files.len(), unique.len()), (50, 50), "{files:?}");
    let offsets = state.offsets();
    assert_eq!(offsets.len(), 16);
    assert!(offsets.values().all(|o| *o == 39), "{offsets:?}");
    assert!(state.metadata.snapshots.len() <= 3, "snapshots expired");
    let manifests = std::fs::read_dir(output.join("clicks/metadata"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_str().unwrap();
            name.ends_with(".avro") && !name.starts_with("snap-")
        })
        .count();
    println!(
        "two writers, 50 files: {} commits in the catalog, {} snapshots kept, {manifests} manifest files",
        state.version,
        state.metadata.snapshots.len()
    );
}
