//! Test fixtures: Apache Kafka (one broker per test binary, or per test), Azurite and moto per
//! test (on free loopback ports, stopped on drop), a producer, the hubcap binary, and fastavro as
//! the independent reader.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::Value;

pub mod kafka;
pub mod moto;
#[allow(unused_imports)] // not every test binary starts Kafka
pub use kafka::Kafka;
#[allow(unused_imports)] // not every test binary starts moto
pub use moto::*;

/// Where scripts/setup-test-env installed the tools.
pub fn tools() -> PathBuf {
    std::env::var_os("HUBCAP_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/hubcap")
        })
}

fn tool(relative: &str) -> PathBuf {
    let path = tools().join(relative);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup-test-env (or scripts/test) first",
        path.display()
    );
    path
}

pub fn python() -> PathBuf {
    tool("venv/bin/python")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A unique name for a topic, group or container.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

/// Azurite's blob service, in memory, in its own process.
pub struct Azurite {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Azurite {
    pub fn start() -> Azurite {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = Command::new(tool("azurite/node_modules/.bin/azurite-blob"))
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args(["--inMemoryPersistence", "--silent", "--disableTelemetry"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start azurite");
        wait_for_port(port, "azurite", &mut child);
        Azurite {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn account_endpoint(&self) -> String {
        format!("{}/devstoreaccount1", self.url())
    }

    /// Creates a container that allows anonymous reads, so the reader needs no credentials.
    pub fn create_container(&self, name: &str) {
        run_python(
            &script("azurite_container.py"),
            &[&self.account_endpoint(), name],
        );
    }

    /// Creates a container without anonymous access (Azure's default): every request needs
    /// valid credentials.
    pub fn create_private_container(&self, name: &str) {
        run_python(
            &script("azurite_container.py"),
            &[&self.account_endpoint(), name, "private"],
        );
    }

    /// Environment for hubcap to reach this Azurite through object_store's emulator support.
    pub fn env(&self) -> [(&'static str, String); 2] {
        [
            ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
            ("AZURITE_BLOB_STORAGE_URL", self.url()),
        ]
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a Python script from the test venv; panics with its stderr unless it succeeds, else
/// returns its stdout.
pub fn run_python(script: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

/// Kafka headers: name and optional value.
pub type Headers = Vec<(String, Option<Vec<u8>>)>;

/// One produced record, as the broker acknowledged it.
#[derive(Debug, Clone)]
pub struct Produced {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Headers,
    pub timestamp: i64,
}

/// The i-th test record: keyed (some keys not UTF-8, some records without a key), with headers
/// (one binary, one without a value), a tombstone now and then.
pub fn record(i: usize) -> (Option<Vec<u8>>, Option<Vec<u8>>, Headers) {
    let key = match i % 10 {
        0 => None,
        1 => Some(vec![0xff, 0xfe, i as u8]),
        _ => Some(format!("user-{}", i % 37).into_bytes()),
    };
    let value = match i % 50 {
        7 => None,
        8 => Some(Vec::new()),
        _ => Some(
            format!(
                r#"{{"type":"track","n":{i},"pad":"{}"}}"#,
                "x".repeat(i % 80)
            )
            .into_bytes(),
        ),
    };
    let mut headers = vec![("event-type".to_string(), Some(b"track".to_vec()))];
    if i.is_multiple_of(3) {
        headers.push(("bin".to_string(), Some(vec![0, 159, 146, 150, i as u8])));
    }
    if i.is_multiple_of(4) {
        headers.push(("no-value".to_string(), None));
    }
    (key, value, headers)
}

/// Produces `count` records, starting with record number `first`, batched as producers do (so
/// files and resumes start in the middle of batches), and returns what the broker acked.
pub async fn produce(brokers: &str, topic: &str, first: usize, count: usize) -> Vec<Produced> {
    produce_stamped(brokers, topic, first, count, |i| {
        1_790_000_000_000 + i as i64 * 250
    })
    .await
}

/// [`produce`] with record `i`'s timestamp from `timestamp(i)`.
pub async fn produce_stamped(
    brokers: &str,
    topic: &str,
    first: usize,
    count: usize,
    timestamp: impl Fn(usize) -> i64,
) -> Vec<Produced> {
    produce_with(brokers, topic, first, count, |i| {
        let (key, value, headers) = record(i);
        (key, value, headers, timestamp(i))
    })
    .await
}

/// Produces records `first..first + count`, record `i` being `make(i)` (key, value, headers,
/// timestamp). Idempotent, so a broker restart or a lost answer never writes a record twice.
pub async fn produce_with(
    brokers: &str,
    topic: &str,
    first: usize,
    count: usize,
    make: impl Fn(usize) -> (Option<Vec<u8>>, Option<Vec<u8>>, Headers, i64),
) -> Vec<Produced> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let mut out = Vec::with_capacity(count);
    for chunk_start in (first..first + count).step_by(1000) {
        let chunk_end = (chunk_start + 1000).min(first + count);
        let sends = (chunk_start..chunk_end).map(|i| {
            let (key, value, headers, ts) = make(i);
            let producer = producer.clone();
            async move {
                let rec = future_record(topic, &key, &value, &headers, ts);
                let delivery = producer
                    .send(rec, Duration::from_secs(30))
                    .await
                    .map_err(|(e, _)| e)
                    .unwrap();
                Produced {
                    partition: delivery.partition,
                    offset: delivery.offset,
                    key,
                    value,
                    headers,
                    timestamp: ts,
                }
            }
        });
        out.extend(futures::future::join_all(sends).await);
    }
    out
}

/// A record to send: `key`, `value` and `headers` as [`record`] makes them, at `timestamp`.
pub fn future_record<'a>(
    topic: &'a str,
    key: &'a Option<Vec<u8>>,
    value: &'a Option<Vec<u8>>,
    headers: &Headers,
    timestamp: i64,
) -> FutureRecord<'a, [u8], [u8]> {
    let mut h = OwnedHeaders::new();
    for (k, v) in headers {
        h = h.insert(Header {
            key: k,
            value: v.as_deref(),
        });
    }
    let mut rec = FutureRecord::to(topic).headers(h).timestamp(timestamp);
    if let Some(k) = key {
        rec = rec.key(k.as_slice());
    }
    if let Some(v) = value {
        rec = rec.payload(v.as_slice());
    }
    rec
}

/// Loads `records` JSON values of about 1 KiB (a key, no headers) round-robin over `partitions`
/// partitions, batched as a busy producer does. The padding is hex of a cheap hash: it
/// compresses about 2:1, as real JSON does, so encoders work as on real data.
pub fn preload_kib_records(brokers: &str, topic: &str, partitions: i32, records: usize) {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("batch.size", "262144")
        .create()
        .unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..records {
        let key = format!("user-{}", i % 1000);
        let pad: String = (0..56)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("{:016x}", x)
            })
            .collect();
        let body = format!(r#"{{"type":"track","n":{i},"pad":"{pad}"}}"#);
        let mut rec = BaseRecord::to(topic)
            .key(&key)
            .payload(&body)
            .partition((i % partitions as usize) as i32);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
}

/// Waits until the topic's high watermarks add up to `total`.
pub fn wait_for_high_watermarks(brokers: &str, topic: &str, partitions: i32, total: i64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sum: i64 = (0..partitions)
            .map(|p| {
                consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(5))
                    .unwrap()
                    .1
            })
            .sum();
        if sum == total {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "high watermarks sum to {sum}, expected {total}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The hubcap binary, logging at info.
pub fn hubcap() -> Command {
    hubcap_at(Path::new(env!("CARGO_BIN_EXE_hubcap")))
}

/// `program` (a hubcap binary, or a wrapper that runs one) as [`hubcap`] sets it up: logging at
/// info, no hubcap settings from the environment.
pub fn hubcap_at(program: &Path) -> Command {
    let mut c = Command::new(program);
    c.env("HUBCAP_LOG", "info,librdkafka=warn");
    for var in [
        "HUBCAP_BROKERS",
        "HUBCAP_TOPIC",
        "HUBCAP_GROUP",
        "HUBCAP_OUTPUT",
        "HUBCAP_CHECKPOINTS",
    ] {
        c.env_remove(var);
    }
    c
}

/// Runs `cmd` to completion within `timeout`, returning (success, stdout, stderr).
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> (bool, String, String) {
    use std::io::Read;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained while the child runs: a full pipe would block it.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "command did not finish within {timeout:?}\nstderr:\n{}",
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.success(),
        stdout.join().unwrap(),
        stderr.join().unwrap(),
    )
}

/// The archive as fastavro reads it.
pub fn read_local(dir: &Path) -> Vec<Value> {
    read_with(&["local", dir.to_str().unwrap()])
}

pub fn read_azurite(az: &Azurite, container: &str, prefix: &str) -> Vec<Value> {
    read_with(&["azurite", &az.account_endpoint(), container, prefix])
}

fn read_with(args: &[&str]) -> Vec<Value> {
    let doc: Value = serde_json::from_slice(&run_python(&script("read_capture.py"), args)).unwrap();
    doc["files"].as_array().unwrap().clone()
}

/// The partition a file belongs to, from the default layout `{ns}/{topic}/{partition}/…`.
pub fn partition_of(name: &str, topic: &str) -> i32 {
    let mut parts = name.split('/');
    parts
        .by_ref()
        .find(|p| *p == topic)
        .unwrap_or_else(|| panic!("{name} has no {topic}"));
    parts.next().unwrap().parse().unwrap()
}

/// What an archive holds, checked against what was produced.
#[derive(Debug, Default)]
pub struct Audit {
    pub files: usize,
    pub events: usize,
    pub duplicates: usize,
    pub missing: usize,
}

/// Checks every produced record is in exactly one file, in order within its partition, with its
/// key, headers, body and timestamp intact, and that every file carries Capture's header.
pub fn audit(files: &[Value], topic: &str, produced: &[Produced]) -> Audit {
    let schema =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/capture.avsc"))
            .unwrap();
    let mut seen: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    let mut by_partition: BTreeMap<i32, Vec<(i64, Vec<i64>)>> = BTreeMap::new();
    for f in files {
        let name = f["name"].as_str().unwrap();
        assert_eq!(
            f["schema"].as_str().unwrap(),
            schema,
            "{name}: header schema"
        );
        assert_eq!(
            f["metadata_keys"],
            serde_json::json!(["avro.codec", "avro.schema"]),
            "{name}"
        );
        let p = partition_of(name, topic);
        let offsets: Vec<i64> = f["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["seq"].as_i64().unwrap())
            .collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "{name}: offsets out of order"
        );
        for &o in &offsets {
            *seen.entry((p, o)).or_default() += 1;
        }
        if let Some(&first) = offsets.first() {
            assert!(
                name.ends_with(&format!("-{first:020}.avro")),
                "{name}: leaf names its first offset"
            );
            by_partition.entry(p).or_default().push((first, offsets));
        }
    }
    let expected: BTreeMap<(i32, i64), &Produced> = produced
        .iter()
        .map(|r| ((r.partition, r.offset), r))
        .collect();
    for f in files {
        let p = partition_of(f["name"].as_str().unwrap(), topic);
        for r in f["records"].as_array().unwrap() {
            let seq = r["seq"].as_i64().unwrap();
            let Some(want) = expected.get(&(p, seq)) else {
                panic!("record {p}/{seq} was never produced");
            };
            check_record(r, want);
        }
    }
    let duplicates = seen.values().filter(|&&n| n > 1).map(|n| n - 1).sum();
    let missing = expected.keys().filter(|k| !seen.contains_key(k)).count();
    Audit {
        files: files.len(),
        events: seen.values().sum(),
        duplicates,
        missing,
    }
}

pub fn check_record(r: &Value, want: &Produced) {
    let at = format!("{}/{}", want.partition, want.offset);
    assert_eq!(r["offset"], want.offset.to_string(), "{at}: Offset");
    assert_eq!(
        r["sys"]["x-opt-enqueued-time"]["long"], want.timestamp,
        "{at}: enqueued time"
    );
    assert_eq!(
        r["enqueued_matches"], true,
        "{at}: EnqueuedTimeUtc {}",
        r["enqueued"]
    );
    let key = &r["sys"]["x-opt-partition-key"];
    match &want.key {
        None => assert!(key.is_null(), "{at}: key {key}"),
        Some(k) => match std::str::from_utf8(k) {
            Ok(s) => assert_eq!(key["string"], s, "{at}: key"),
            Err(_) => assert_eq!(key["bytes"], hex(k), "{at}: non-UTF-8 key kept as bytes"),
        },
    }
    let props = r["props"].as_object().unwrap();
    assert_eq!(props.len(), want.headers.len(), "{at}: headers {props:?}");
    for (k, v) in &want.headers {
        let got = &props[k];
        match v {
            None => assert!(
                got.get("null").is_some(),
                "{at}: header {k} without value → null branch, got {got}"
            ),
            Some(b) => assert_eq!(got["bytes"], hex(b), "{at}: header {k}"),
        }
    }
    match &want.value {
        None => assert!(r["body"].is_null(), "{at}: tombstone body"),
        Some(v) => assert_eq!(r["body"], hex(v), "{at}: body"),
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Reads a checkpoint document from a local archive.
pub fn local_checkpoint(dir: &Path, group: &str, topic: &str, partition: i32) -> Value {
    let path = checkpoint_file(dir, group, topic, partition);
    serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// Where a local archive keeps a partition's checkpoint.
pub fn checkpoint_file(dir: &Path, group: &str, topic: &str, partition: i32) -> PathBuf {
    dir.join("_checkpoints")
        .join(group)
        .join(topic)
        .join(format!("{partition}.json"))
}

/// A partition's checkpointed `next_offset` in a local archive; 0 before its first checkpoint.
pub fn local_next_offset(dir: &Path, group: &str, topic: &str, partition: i32) -> i64 {
    if !checkpoint_file(dir, group, topic, partition).exists() {
        return 0;
    }
    local_checkpoint(dir, group, topic, partition)["next_offset"]
        .as_i64()
        .unwrap()
}

/// Every data file (Avro or Parquet) under `dir`, relative names with their modification times,
/// for "nothing new was written" checks.
pub fn list_files(dir: &Path) -> Vec<(String, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "avro" || x == "parquet") {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, e.metadata().unwrap().modified().unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Checks the manifests under `dir/_manifests` list every file exactly once, with the file's
/// size, event count and offset range. Returns how many entries there are.
pub fn check_manifests(dir: &Path, files: &[Value]) -> usize {
    let mut entries: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut stack = vec![dir.join("_manifests")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                for line in std::fs::read_to_string(&p).unwrap().lines() {
                    let v: Value = serde_json::from_str(line).unwrap();
                    assert_eq!(v["version"], "1");
                    entries
                        .entry(v["path"].as_str().unwrap().to_string())
                        .or_default()
                        .push(v);
                }
            }
        }
    }
    let total: usize = entries.values().map(Vec::len).sum();
    for f in files {
        let name = f["name"].as_str().unwrap();
        let listed = entries
            .get(name)
            .unwrap_or_else(|| panic!("{name} is in no manifest"));
        assert_eq!(listed.len(), 1, "{name} listed {} times", listed.len());
        let m = &listed[0];
        let records = f["records"].as_array().unwrap();
        assert_eq!(m["sizeInBytes"], f["size"], "{name}: size");
        assert_eq!(m["eventCount"], records.len(), "{name}: count");
        assert_eq!(m["firstSequenceNumber"], records[0]["seq"], "{name}: first");
        assert_eq!(
            m["lastSequenceNumber"],
            records[records.len() - 1]["seq"],
            "{name}: last"
        );
    }
    assert_eq!(total, files.len(), "manifest entries without a file");
    total
}

/// Runs `hubcap audit` on a local archive: (clean, report text).
pub fn audit_cli(dir: &Path, group: &str) -> (bool, String) {
    audit_cli_with(dir, group, &[])
}

/// [`audit_cli`] with more flags (`--brokers`, `--allow-gaps`).
pub fn audit_cli_with(dir: &Path, group: &str, extra: &[&str]) -> (bool, String) {
    let (ok, stdout, stderr) = run_with_timeout(
        hubcap()
            .args(["audit", "--output", dir.to_str().unwrap(), "--group", group])
            .args(extra),
        Duration::from_secs(120),
    );
    (ok, format!("{stdout}{stderr}"))
}

/// `hubcap run --once` of one topic into `output` with `extra` flags: (success, stdout, stderr).
pub fn run_once(
    brokers: &str,
    topic: &str,
    group: &str,
    output: &str,
    extra: &[&str],
) -> (bool, String, String) {
    run_with_timeout(
        hubcap()
            .args([
                "run",
                "--brokers",
                brokers,
                "--topic",
                topic,
                "--group",
                group,
                "--once",
            ])
            .args(["--output", output])
            .args(extra),
        Duration::from_secs(120),
    )
}

/// Sends `signal` to process `pid`; panics if it cannot be delivered.
pub fn send_signal(pid: u32, signal: i32) {
    let pid = i32::try_from(pid).expect("pid fits in pid_t");
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}

/// A producer writing `per_round` records every `pause` in the background until stopped, so
/// tests can start, stop and freeze things while data keeps arriving.
pub struct BackgroundProducer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Set by `hold`: the producer finishes its round and waits.
    hold: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Set by the producer while it waits for `hold` to clear.
    held: std::sync::Arc<std::sync::atomic::AtomicBool>,
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<Vec<Produced>>,
}

impl BackgroundProducer {
    pub fn start(brokers: &str, topic: &str, per_round: usize, pause: Duration) -> Self {
        use std::sync::atomic::Ordering;
        let flag = || std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (stop, hold, held) = (flag(), flag(), flag());
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let task = {
            let (brokers, topic) = (brokers.to_string(), topic.to_string());
            let (stop, hold, held, count) =
                (stop.clone(), hold.clone(), held.clone(), count.clone());
            tokio::spawn(async move {
                let mut all = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if hold.load(Ordering::SeqCst) {
                        held.store(true, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    held.store(false, Ordering::SeqCst);
                    all.extend(produce(&brokers, &topic, all.len(), per_round).await);
                    count.store(all.len(), Ordering::Relaxed);
                    tokio::time::sleep(pause).await;
                }
                all
            })
        };
        BackgroundProducer {
            stop,
            hold,
            held,
            count,
            task,
        }
    }

    /// Waits for the current round to be acked, then holds further rounds until `release`.
    pub async fn hold(&self) {
        use std::sync::atomic::Ordering;
        self.hold.store(true, Ordering::SeqCst);
        while !self.held.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn release(&self) {
        use std::sync::atomic::Ordering;
        self.held.store(false, Ordering::SeqCst);
        self.hold.store(false, Ordering::SeqCst);
    }

    /// Records acknowledged so far.
    pub fn acked(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits (without blocking the runtime) until at least `more` further records were acked.
    pub async fn wait_for_more(&self, more: usize, timeout: Duration) {
        let target = self.acked() + more;
        let deadline = Instant::now() + timeout;
        while self.acked() < target {
            assert!(
                Instant::now() < deadline,
                "the producer acked {} records, expected {target} within {timeout:?}",
                self.acked()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops after the current round and returns every acked record.
    pub async fn finish(self) -> Vec<Produced> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.expect("producer task")
    }
}

/// A hubcap process whose stderr is collected line by line on a thread, so a test can wait for
/// log lines, read the whole log afterwards, and signal the process. Killed on drop.
pub struct Instance {
    pub name: String,
    child: Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    status: Option<std::process::ExitStatus>,
}

impl Instance {
    /// Spawns `cmd` (stdout discarded, stderr collected).
    pub fn spawn(name: &str, mut cmd: Command) -> Instance {
        use std::io::BufRead;
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let reader = {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    lines.lock().unwrap().push(line);
                }
            })
        };
        Instance {
            name: name.to_string(),
            child,
            lines,
            reader: Some(reader),
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: i32) {
        send_signal(self.pid(), signal);
    }

    /// The stderr lines read so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn line_count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// The log so far, for failure messages.
    pub fn log(&self) -> String {
        format!("--- {} stderr ---\n{}", self.name, self.lines().join("\n"))
    }

    /// How many lines from line `from` on contain `needle`.
    pub fn count_since(&self, from: usize, needle: &str) -> usize {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .skip(from)
            .filter(|l| l.contains(needle))
            .count()
    }

    /// The index of the last line so far that contains `needle`.
    pub fn last_line_with(&self, needle: &str) -> Option<usize> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .rposition(|l| l.contains(needle))
    }

    /// The exit status, if the process ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().unwrap();
        }
        self.status
    }

    /// Waits until a line from line `from` on contains `needle` and returns its index; panics
    /// with the log if the process ends or `timeout` passes first.
    pub fn wait_for_line(&mut self, from: usize, needle: &str, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .skip(from)
                .position(|l| l.contains(needle))
            {
                return from + i;
            }
            if let Some(status) = self.exited() {
                // Let the reader catch up before concluding the line never came.
                self.join_reader();
                if let Some(i) = self
                    .lines()
                    .iter()
                    .skip(from)
                    .position(|l| l.contains(needle))
                {
                    return from + i;
                }
                panic!(
                    "{} exited ({status}) without logging {needle:?}\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not log {needle:?} within {timeout:?}\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The partitions the process owns, from its log: what the assignments gave and the
    /// revocations did not take away; `None` before its first assignment and after a revocation
    /// that left it nothing (an eager rebalance, or a lost session, until it is assigned again).
    pub fn assignment(&self) -> Option<Vec<i32>> {
        // Sets, not lists: with cooperative rebalancing (`cooperative-sticky`, or the KIP-848
        // consumer protocol) each line names only the partitions added or taken away.
        let mut current: Option<std::collections::BTreeSet<i32>> = None;
        for line in self.lines.lock().unwrap().iter() {
            if line.contains("partitions assigned") {
                current
                    .get_or_insert_default()
                    .extend(logged_partitions(line));
            } else if line.contains("partitions revoked") {
                if let Some(owned) = current.as_mut() {
                    for p in logged_partitions(line) {
                        owned.remove(&p);
                    }
                }
                current = current.filter(|owned| !owned.is_empty());
            }
        }
        current.map(|owned| owned.into_iter().collect())
    }

    /// Waits for the process to end within `timeout` (panicking with its log otherwise) and
    /// returns its status once its whole log was read.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.exited() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        self.join_reader();
        status
    }

    /// SIGKILL, then reaps the process.
    pub fn kill(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
        }
        self.status = Some(self.child.wait().unwrap());
        self.join_reader();
    }

    fn join_reader(&mut self) {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `partitions=[0, 1]` field of a rebalance log line.
pub fn logged_partitions(line: &str) -> Vec<i32> {
    let Some(start) = line.find("partitions=[") else {
        panic!("no partitions field in {line:?}");
    };
    let rest = &line[start + "partitions=[".len()..];
    let list = &rest[..rest.find(']').expect("closing bracket")];
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

/// A TCP proxy on 127.0.0.1 in front of a broker, on threads. [`Proxy::cut`] makes the network
/// swallow everything (connections stay open, nothing arrives either way, new connections are
/// accepted and hang), [`Proxy::heal`] drops every connection made before it, with whatever was
/// in flight, and forwards again: a network partition whose end breaks the connections, so no
/// request sent during it reaches the broker late.
pub struct Proxy {
    pub port: u16,
    state: std::sync::Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    cut: std::sync::atomic::AtomicBool,
    /// Bumped by `heal`: connections of an older epoch close.
    epoch: std::sync::atomic::AtomicU64,
    stop: std::sync::atomic::AtomicBool,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let state = std::sync::Arc::new(ProxyState::default());
        let accept_state = state.clone();
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering;
            while !accept_state.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let state = accept_state.clone();
                        std::thread::spawn(move || proxy_connection(client, upstream, state));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => return,
                }
            }
        });
        Proxy { port, state }
    }

    /// Starts the partition.
    pub fn cut(&self) {
        self.state
            .cut
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Ends the partition, breaking every connection that existed during it.
    pub fn heal(&self) {
        use std::sync::atomic::Ordering;
        self.state.epoch.fetch_add(1, Ordering::SeqCst);
        self.state.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        self.state.stop.store(true, Ordering::Relaxed);
        self.state.epoch.fetch_add(1, Ordering::SeqCst);
    }
}

fn proxy_connection(client: TcpStream, upstream: u16, state: std::sync::Arc<ProxyState>) {
    use std::sync::atomic::Ordering;
    let epoch = state.epoch.load(Ordering::SeqCst);
    // A connection made during a partition waits for its end, which closes it.
    while state.cut.load(Ordering::SeqCst) {
        if state.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let pumps = [
        (client.try_clone().unwrap(), server.try_clone().unwrap()),
        (server, client),
    ];
    for (from, to) in pumps {
        let state = state.clone();
        std::thread::spawn(move || pump(from, to, epoch, &state));
    }
}

/// Copies `from` to `to` until either side closes or the connection's epoch ends.
fn pump(mut from: TcpStream, mut to: TcpStream, epoch: u64, state: &ProxyState) {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    from.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if state.epoch.load(Ordering::SeqCst) != epoch {
            break;
        }
        if state.cut.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                // Read just as the partition began: it is lost with the connection.
                if state.cut.load(Ordering::SeqCst) {
                    while state.epoch.load(Ordering::SeqCst) == epoch {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    break;
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// The sum of the high watermarks once it stops moving (a producer may still be writing).
pub fn stable_high_watermarks(brokers: &str, topic: &str, partitions: i32) -> usize {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let mut last = -1;
    loop {
        let sum: i64 = (0..partitions)
            .map(|p| {
                c.fetch_watermarks(topic, p, Duration::from_secs(10))
                    .unwrap()
                    .1
            })
            .sum();
        if sum == last {
            return sum as usize;
        }
        last = sum;
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Runs `cmd` to completion, measuring wall time, CPU time and peak RSS (from `wait4`).
pub fn measure(mut cmd: Command) -> (f64, f64, f64) {
    let started = Instant::now();
    // Reaped below with wait4, which also reports the child's resource usage.
    #[allow(clippy::zombie_processes)]
    let child = cmd.stdout(Stdio::null()).spawn().unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; both pointers are valid for the call.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(pid, child.id() as i32);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "run failed: {status}"
    );
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        seconds,
        tv(usage.ru_utime) + tv(usage.ru_stime),
        usage.ru_maxrss as f64 / 1024.0,
    )
}

/// A validated `hubcap run` configuration from the words after `run`, for in-process runs.
pub fn run_config(args: &[&str]) -> hubcap::run::RunConfig {
    use clap::Parser;
    let cli = hubcap::cli::Cli::try_parse_from(["hubcap", "run"].iter().chain(args)).unwrap();
    match cli.command {
        hubcap::cli::Command::Run(args) => args.validate().unwrap(),
        _ => unreachable!("parsed a run command"),
    }
}
