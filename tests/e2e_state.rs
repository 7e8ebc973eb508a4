//! Bad configuration and bad state, end to end: each case has a documented outcome. hubcap exits
//! non-zero with a message naming the problem (the checkpoint file or the template, and the fix
//! where there is one), changes nothing it was given (checkpoints byte-identical, no file
//! written), prints no secret and no panic, and once the state is fixed the records are archived
//! exactly once. Also: what becomes of repeated header names in Avro and Parquet.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use futures::TryStreamExt;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::ObjectStore;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

/// The emulator's well-known account key: hubcap must not print it either.
const EMULATOR_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// A valid base64 account key that is not the emulator's: wrong credentials.
const WRONG_KEY: &str =
    "aHViY2FwLXdyb25nLWtleS1mb3ItdGVzdHMtMDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6MDE=";

/// The message `run` stops with when a checkpoint cannot be used.
const CANNOT_START: &str = "cannot start: a checkpoint is unreadable or unusable:";

/// Every file under `dir` but lock files, with its bytes: "nothing changed" is equality.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_none_or(|x| x != "lock") {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The events column of the summary's `total` line.
fn total_events(stdout: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap_or_else(|| panic!("no total line:\n{stdout}"));
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// The line of `stderr` that holds `needle`.
fn line_with<'a>(stderr: &'a str, needle: &str) -> &'a str {
    stderr
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}:\n{stderr}"))
}

fn assert_no_secret_or_panic(stdout: &str, stderr: &str) {
    for secret in [EMULATOR_KEY, WRONG_KEY] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "an account key was printed:\n{stderr}"
        );
    }
    for trace in ["panicked", "stack backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(trace), "a panic, not a message:\n{stderr}");
    }
}

/// What each broken checkpoint is, how it is fixed, and what the fixed run must archive.
enum BadCheckpoint {
    /// Not JSON. Fixed by deleting it: the partition is archived again from its beginning, into
    /// the same names (a replay overwrites, it does not add).
    Corrupt,
    /// `"version":"2"`. Fixed by restoring the original: the partition continues from it.
    NewerVersion,
    /// A valid checkpoint of another topic copied over this one. Fixed by restoring the original.
    OtherTopic,
}

/// Archives 60 records of a 2-partition topic, produces 40 more, breaks partition 0's
/// checkpoint, and checks the run is refused with `message` and changes nothing; then fixes the
/// checkpoint and checks one `--once` run archives exactly what remains.
async fn refused_until_fixed(case: BadCheckpoint, message: &[&str]) {
    let t = Kafka::shared();
    let topic = unique("state");
    let other = unique("other");
    let group = unique("g");
    t.create_topic(&topic, 2).await;
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let window = ["--window-size", "2KiB"];

    let mut produced = produce(&t.brokers, &topic, 0, 60).await;
    wait_for_high_watermarks(&t.brokers, &topic, 2, 60);
    let (ok, _, stderr) = run_once(&t.brokers, &topic, &group, dir, &window);
    assert!(ok, "{stderr}");
    if let BadCheckpoint::OtherTopic = case {
        t.create_topic(&other, 1).await;
        produce(&t.brokers, &other, 0, 5).await;
        wait_for_high_watermarks(&t.brokers, &other, 1, 5);
        let (ok, _, stderr) = run_once(&t.brokers, &other, &group, dir, &window);
        assert!(ok, "{stderr}");
    }
    produced.extend(produce(&t.brokers, &topic, 60, 40).await);
    wait_for_high_watermarks(&t.brokers, &topic, 2, 100);

    let file = checkpoint_file(out.path(), &group, &topic, 0);
    let original = std::fs::read(&file).unwrap();
    let bad = match case {
        BadCheckpoint::Corrupt => b"{\"version\":\"1\",\"next_offset\":17, <- cut short".to_vec(),
        BadCheckpoint::NewerVersion => String::from_utf8(original.clone())
            .unwrap()
            .replace(r#""version": "1""#, r#""version": "2""#)
            .into_bytes(),
        BadCheckpoint::OtherTopic => {
            std::fs::read(checkpoint_file(out.path(), &group, &other, 0)).unwrap()
        }
    };
    assert_ne!(bad, original, "the checkpoint was broken");
    std::fs::write(&file, &bad).unwrap();
    let before = snapshot(out.path());

    let started = Instant::now();
    let (ok, stdout, stderr) = run_once(&t.brokers, &topic, &group, dir, &window);
    let took = started.elapsed();
    println!("refused in {took:?}:\n{}", line_with(&stderr, "hubcap: "));
    assert!(!ok, "a bad checkpoint must stop the run:\n{stderr}");
    assert!(stderr.contains(CANNOT_START), "{stderr}");
    let path = format!("_checkpoints/{group}/{topic}/0.json");
    let line = line_with(&stderr, &path);
    println!("{line}");
    for m in message {
        assert!(line.contains(m), "{m:?} is not in {line:?}");
    }
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert_no_secret_or_panic(&stdout, &stderr);
    assert_eq!(
        snapshot(out.path()),
        before,
        "a refused run changes nothing: checkpoints, files and manifests are as they were"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        bad,
        "the bad checkpoint is kept"
    );

    let partition0 = produced.iter().filter(|r| r.partition == 0).count() as u64;
    let expected_events = match case {
        BadCheckpoint::Corrupt => {
            std::fs::remove_file(&file).unwrap();
            // Partition 0 again from its beginning, partition 1 from its checkpoint.
            partition0 + produced[60..].iter().filter(|r| r.partition == 1).count() as u64
        }
        BadCheckpoint::NewerVersion | BadCheckpoint::OtherTopic => {
            std::fs::write(&file, &original).unwrap();
            40
        }
    };
    let (ok, stdout, stderr) = run_once(&t.brokers, &topic, &group, dir, &window);
    assert!(ok, "the fixed state archives:\n{stderr}");
    assert_eq!(total_events(&stdout), expected_events, "{stdout}");
    let files: Vec<serde_json::Value> = read_local(out.path())
        .into_iter()
        .filter(|f| f["name"].as_str().unwrap().contains(&format!("/{topic}/")))
        .collect();
    let a = audit(&files, &topic, &produced);
    assert_eq!(
        (a.events, a.duplicates, a.missing),
        (100, 0, 0),
        "exactly once after the fix"
    );
    for p in 0..2 {
        let end = produced.iter().filter(|r| r.partition == p).count() as i64;
        let c = local_checkpoint(out.path(), &group, &topic, p);
        assert_eq!(c["next_offset"], end, "partition {p}");
    }
    // Also after the corrupt case's replay: it overwrote the same names, and manifests agree.
    let (clean, report) = audit_cli(out.path(), &group);
    assert!(clean, "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_checkpoint_is_refused_until_removed() {
    refused_until_fixed(
        BadCheckpoint::Corrupt,
        &[
            "is not valid JSON of a known format",
            "fix or remove it by hand",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn newer_version_checkpoint_is_refused_until_restored() {
    refused_until_fixed(
        BadCheckpoint::NewerVersion,
        &[
            "has format version 2, newer than this hubcap understands (1)",
            "upgrade hubcap",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoint_of_another_topic_is_refused_until_restored() {
    refused_until_fixed(
        BadCheckpoint::OtherTopic,
        &["is for other-", "was it copied or renamed?"],
    )
    .await;
}

/// A topic with a few records: the store is only reached after Kafka's preflight.
async fn broker_with_topic() -> (&'static Kafka, String) {
    let t = Kafka::shared();
    let topic = unique("az");
    t.create_topic(&topic, 2).await;
    produce(&t.brokers, &topic, 0, 10).await;
    wait_for_high_watermarks(&t.brokers, &topic, 2, 10);
    (t, topic)
}

/// `hubcap run --once` into `az://{container}/archive` with the Azure environment `env`.
fn run_azure(
    brokers: &str,
    topic: &str,
    container: &str,
    env: &[(&str, String)],
    extra: &[&str],
    timeout: Duration,
) -> (bool, String, String, Duration) {
    let started = Instant::now();
    let mut cmd = hubcap();
    cmd.args(["run", "--brokers", brokers, "--topic", topic])
        .args(["--group", "g", "--once"])
        .args(["--output", &format!("az://{container}/archive")])
        .args(extra);
    for var in [
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_ACCESS_KEY",
        "AZURE_STORAGE_SAS_KEY",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let (ok, stdout, stderr) = run_with_timeout(&mut cmd, timeout);
    (ok, stdout, stderr, started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_store_is_retried_then_given_up() {
    let (t, topic) = broker_with_topic().await;
    let closed = format!("http://127.0.0.1:{}", free_port());
    let env = [
        ("AZURE_STORAGE_USE_EMULATOR", "true".to_string()),
        ("AZURITE_BLOB_STORAGE_URL", closed.clone()),
        ("AZURE_STORAGE_ACCOUNT_KEY", WRONG_KEY.to_string()),
    ];
    let (ok, stdout, stderr, took) = run_azure(
        &t.brokers,
        &topic,
        "nowhere",
        &env,
        &["--retry-for", "5s"],
        Duration::from_secs(120),
    );
    println!("gave up after {took:?}");
    let retries: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("failed; retrying"))
        .collect();
    println!(
        "{} retry lines; first:\n{}\n{}\n{}",
        retries.len(),
        retries.first().copied().unwrap_or("<none>"),
        line_with(&stderr, "giving up"),
        line_with(&stderr, "hubcap: ")
    );
    assert!(!ok, "an unreachable store fails the run:\n{stderr}");
    assert!(
        took < Duration::from_secs(60),
        "gives up in bounded time: {took:?}"
    );
    assert!(
        took >= Duration::from_secs(5),
        "retries for --retry-for: {took:?}"
    );
    assert!(!retries.is_empty(), "one WARN line per retry:\n{stderr}");
    assert!(retries.iter().all(|l| l.contains("WARN")), "{retries:#?}");
    assert!(
        line_with(&stderr, "giving up").contains("giving up after 5s of retries"),
        "{stderr}"
    );
    assert!(stderr.contains(CANNOT_START), "{stderr}");
    let last = line_with(&stderr, "archive/_checkpoints/g/");
    assert!(last.contains(".json"), "names the checkpoint: {last}");
    assert_no_secret_or_panic(&stdout, &stderr);
}

/// The container's blobs with their ETags, read with the right key.
async fn blobs(az: &Azurite, container: &str) -> BTreeMap<String, Option<String>> {
    let store = MicrosoftAzureBuilder::new()
        .with_account("devstoreaccount1")
        .with_access_key(EMULATOR_KEY)
        .with_endpoint(az.account_endpoint())
        .with_allow_http(true)
        .with_container_name(container)
        .build()
        .unwrap();
    store
        .list(None)
        .map_ok(|m| (m.location.to_string(), m.e_tag))
        .try_collect()
        .await
        .unwrap()
}

/// Wrong credentials: a run that has archived before is refused, fast, without retrying, and
/// nothing in the container changes. In a private container (Azure's default) the checkpoint
/// check before joining the group fails; in a container that allows anonymous reads the reads
/// pass (Azurite serves them despite the bad signature) and the first write fails instead.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_fail_fast_and_change_nothing() {
    let (t, topic) = broker_with_topic().await;
    let az = Azurite::start();
    let right: Vec<(&str, String)> = az.env().into_iter().collect();
    let mut wrong = right.clone();
    wrong.push(("AZURE_STORAGE_ACCOUNT_KEY", WRONG_KEY.to_string()));
    let private = unique("private").to_lowercase();
    let public = unique("public").to_lowercase();
    az.create_private_container(&private);
    az.create_container(&public);
    for container in [&private, &public] {
        let (ok, _, stderr, _) = run_azure(
            &t.brokers,
            &topic,
            container,
            &right,
            &[],
            Duration::from_secs(120),
        );
        assert!(ok, "{container}: {stderr}");
    }
    produce(&t.brokers, &topic, 10, 10).await;
    wait_for_high_watermarks(&t.brokers, &topic, 2, 20);

    for (container, refusal) in [(&private, CANNOT_START), (&public, "the run failed:")] {
        let before = blobs(&az, container).await;
        assert!(
            before.keys().any(|k| k.contains("_checkpoints")),
            "{before:?}"
        );
        let (ok, stdout, stderr, took) = run_azure(
            &t.brokers,
            &topic,
            container,
            &wrong,
            &[],
            Duration::from_secs(120),
        );
        let line = line_with(&stderr, "archive/_checkpoints/g/");
        println!(
            "{container}: refused in {took:?}:\n{}\n{line}",
            line_with(&stderr, "hubcap: ")
        );
        assert!(
            !ok,
            "{container}: wrong credentials fail the run:\n{stderr}"
        );
        assert!(
            took < Duration::from_secs(30),
            "{container}: no long retrying (the default --retry-for is 5m): {took:?}"
        );
        assert!(
            !stderr.contains("failed; retrying"),
            "{container}: a 403 is not retried:\n{stderr}"
        );
        assert!(stderr.contains(refusal), "{container}: {stderr}");
        assert!(
            line.contains("lacked the necessary privileges") && line.contains("403 Forbidden"),
            "{container}: names the problem: {line}"
        );
        assert_no_secret_or_panic(&stdout, &stderr);
        assert_eq!(
            blobs(&az, container).await,
            before,
            "{container}: nothing written or changed"
        );
    }
}

fn bad_template(template: &str) -> (bool, String, String, Duration, bool) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let started = Instant::now();
    // A closed port: the template is checked before Kafka is contacted.
    let (ok, stdout, stderr) = run_with_timeout(
        hubcap()
            .args(["run", "--brokers", &format!("127.0.0.1:{}", free_port())])
            .args(["--topic", "t", "--group", "g", "--once"])
            .args(["--output", out.to_str().unwrap(), "--path-format", template]),
        Duration::from_secs(30),
    );
    (ok, stdout, stderr, started.elapsed(), out.exists())
}

#[test]
fn path_template_without_partition_id_is_refused() {
    let (ok, stdout, stderr, took, created) = bad_template("{Namespace}/{EventHub}/{Year}");
    println!("{took:?}: {stderr}");
    assert!(!ok);
    let line = line_with(&stderr, "hubcap: ");
    assert!(
        line.contains("{Namespace}/{EventHub}/{Year}")
            && line.contains("must contain {PartitionId}"),
        "{stderr}"
    );
    assert!(!stderr.contains("Kafka"), "no Kafka needed: {stderr}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(!created, "nothing created for a refused configuration");
    assert!(stdout.is_empty(), "{stdout}");
}

#[test]
fn path_template_with_unknown_token_is_refused() {
    let (ok, stdout, stderr, took, created) = bad_template("{EventHub}/{PartitionId}/{Foo}");
    println!("{took:?}: {stderr}");
    assert!(!ok);
    let line = line_with(&stderr, "hubcap: ");
    assert!(
        line.contains("unknown token {Foo}") && line.contains("known tokens: {Namespace}"),
        "{stderr}"
    );
    assert!(!stderr.contains("Kafka"), "no Kafka needed: {stderr}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(!created, "nothing created for a refused configuration");
    assert!(stdout.is_empty(), "{stdout}");
}

/// Kafka allows a header name more than once. hubcap keeps every header, in order: the Avro
/// `Properties` map gets one entry per header, so a repeated key is written (dict-based readers
/// such as fastavro keep the last value), and the Parquet map column keeps every entry (pyarrow
/// reads a list of key/value pairs).
#[tokio::test(flavor = "multi_thread")]
async fn duplicate_header_names_are_all_kept() {
    let t = Kafka::shared();
    let topic = unique("dup");
    t.create_topic(&topic, 1).await;
    let headers: [(&str, Option<&[u8]>); 4] = [
        ("dup", Some(b"first-dup-value")),
        ("other", Some(b"between")),
        ("dup", Some(b"second-dup-value")),
        ("dup", None),
    ];
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &t.brokers)
        .create()
        .unwrap();
    for i in 0..2 {
        let mut h = OwnedHeaders::new();
        for (key, value) in &headers {
            h = h.insert(Header { key, value: *value });
        }
        let body = format!("body-{i}");
        producer
            .send(
                FutureRecord::<[u8], str>::to(&topic)
                    .partition(0)
                    .payload(&body)
                    .headers(h)
                    .timestamp(1_790_000_000_000 + i),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    wait_for_high_watermarks(&t.brokers, &topic, 1, 2);

    let expected = serde_json::json!([
        ["dup", {"bytes": hex(b"first-dup-value")}],
        ["other", {"bytes": hex(b"between")}],
        ["dup", {"bytes": hex(b"second-dup-value")}],
        ["dup", {"null": null}],
    ]);
    for format in ["avro", "parquet"] {
        let out = tempfile::tempdir().unwrap();
        let (ok, _, stderr) = run_once(
            &t.brokers,
            &topic,
            &unique("g"),
            out.path().to_str().unwrap(),
            &["--format", format],
        );
        assert!(ok, "{format}: {stderr}");
        let files: Vec<String> = list_files(out.path())
            .into_iter()
            .map(|(name, _)| out.path().join(name).display().to_string())
            .collect();
        assert_eq!(files.len(), 1, "{format}: {files:?}");
        let mut args = vec![format];
        args.extend(files.iter().map(String::as_str));
        let doc: serde_json::Value =
            serde_json::from_slice(&run_python(&script("read_headers.py"), &args)).unwrap();
        let records = doc["records"].as_array().unwrap();
        println!(
            "{format}: {}",
            serde_json::to_string_pretty(&records[0]).unwrap()
        );
        assert_eq!(records.len(), 2, "{format}");
        for r in records {
            assert_eq!(r["entries"], expected, "{format}: every header, in order");
            assert_eq!(
                r["as_dict"],
                serde_json::json!({"dup": {"null": null}, "other": {"bytes": hex(b"between")}}),
                "{format}: a dict-based reader keeps the last value"
            );
        }
        let duck = &records[0]["duckdb"];
        let (inspect_props, duck_keys, duck_dup, duck_fetch) = if format == "avro" {
            // Each value is in the file bytes once per record, independently of any reader.
            let bytes = std::fs::read(&files[0]).unwrap();
            for v in ["first-dup-value", "second-dup-value"] {
                let n = bytes
                    .windows(v.len())
                    .filter(|w| *w == v.as_bytes())
                    .count();
                assert_eq!(n, 2, "{v}");
            }
            // apache-avro and DuckDB's Avro extension decode into a map: the last value wins.
            (
                format!(
                    r#""Properties":{{"dup":null,"other":{{"bytes":"{}"}}}}"#,
                    hex(b"between")
                ),
                serde_json::json!(["dup", "other"]),
                serde_json::Value::Null,
                "ok",
            )
        } else {
            // hubcap inspect prints every entry; DuckDB keeps every entry, a lookup returns the
            // first, and fetching the whole map into a Python dict fails.
            let v = |s: &[u8]| format!(r#"{{"bytes":"{}"}}"#, hex(s));
            (
                format!(
                    r#""Properties":{{"dup":{},"dup":{},"dup":null,"other":{}}}"#,
                    v(b"first-dup-value"),
                    v(b"second-dup-value"),
                    v(b"between")
                ),
                serde_json::json!(["dup", "other", "dup", "dup"]),
                "{'long': NULL, 'double': NULL, 'string': NULL, 'bytes': first-dup-value}".into(),
                "InvalidInputException: Invalid Input Error: Map keys must be unique.",
            )
        };
        assert_eq!(duck["keys"], duck_keys, "{format}: DuckDB map_keys");
        assert_eq!(
            duck["lookup"]["dup"], duck_dup,
            "{format}: DuckDB Properties['dup']"
        );
        assert_eq!(
            duck["fetch_map"], duck_fetch,
            "{format}: DuckDB fetch into Python"
        );
        // hubcap's own reader.
        let (ok, stdout, stderr) = run_with_timeout(
            hubcap().args(["inspect", out.path().to_str().unwrap()]),
            Duration::from_secs(30),
        );
        assert!(ok, "{stderr}");
        let first = stdout.lines().next().unwrap_or_default();
        println!("{format} inspect: {first}");
        assert!(first.contains(&inspect_props), "{format}: {first}");
    }
}
