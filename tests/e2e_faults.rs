//! Store faults, end to end: hubcap runs in-process against Apache Kafka, writing to Azurite
//! through a fault-injecting store (failed writes and reads, writes whose answer is lost, hangs,
//! latency), and a watcher under the faults checks every checkpoint that lands: it never points
//! past a file that is durable. The archive is read back with fastavro and audited.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use hubcap::state::checkpoint::Checkpoint;
use hubcap::store::faults::{Faults, FaultyStore};
use hubcap::store::retry::RetryPolicy;
use hubcap::store::Location;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use common::*;

/// A file announced in a checkpoint intent: (first offset, last offset, path).
type Intent = (i64, i64, String);

/// Sits between the faults and the real store: for every checkpoint that lands, checks that
/// each file its partition announced (in an intent) below the checkpoint's next offset exists,
/// and that those files cover every offset below it.
#[derive(Debug)]
struct Watch {
    inner: Arc<dyn ObjectStore>,
    /// Output prefix the intents' paths are relative to.
    prefix: Path,
    /// Per partition: every intent seen.
    intents: Mutex<std::collections::HashMap<i32, Vec<Intent>>>,
    checks: AtomicU64,
    violations: Mutex<Vec<String>>,
}

impl std::fmt::Display for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Watch({})", self.inner)
    }
}

impl Watch {
    async fn check(&self, data: &[u8]) {
        let doc: serde_json::Value = serde_json::from_slice(data).unwrap();
        let c: Checkpoint = serde_json::from_value(doc).unwrap();
        let covered: Vec<Intent> = {
            let mut intents = self.intents.lock().unwrap();
            let mine = intents.entry(c.partition).or_default();
            if let Some(p) = &c.pending {
                if !mine
                    .iter()
                    .any(|(f, _, path)| *f == p.first_offset && *path == p.path)
                {
                    mine.push((p.first_offset, p.last_offset, p.path.clone()));
                }
            }
            let mut below: Vec<_> = mine
                .iter()
                .filter(|(_, last, _)| *last < c.next_offset)
                .cloned()
                .collect();
            below.sort();
            below
        };
        self.checks.fetch_add(1, Ordering::Relaxed);
        let mut expect = 0;
        for (first, last, path) in covered {
            let mut full = self.prefix.clone();
            for part in path.split('/') {
                full = full.join(part);
            }
            if first != expect {
                self.fail(format!(
                    "partition {}: checkpoint {} but no file starts at {expect} (next: {path} at {first})",
                    c.partition, c.next_offset
                ));
            }
            if self.inner.head(&full).await.is_err() {
                self.fail(format!(
                    "partition {}: checkpoint {} points past {path}, which is not in the store",
                    c.partition, c.next_offset
                ));
            }
            expect = last + 1;
        }
        if expect != c.next_offset && c.next_offset > 0 {
            self.fail(format!(
                "partition {}: checkpoint {} but the files end at {expect}",
                c.partition, c.next_offset
            ));
        }
    }

    fn fail(&self, v: String) {
        self.violations.lock().unwrap().push(v);
    }
}

#[async_trait]
impl ObjectStore for Watch {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let data: Bytes = payload.clone().into();
        let r = self.inner.put_opts(location, payload, opts).await?;
        let checkpoint = location.as_ref().contains("_checkpoints/");
        if checkpoint && location.as_ref().ends_with(".json") {
            self.check(&data).await;
        }
        Ok(r)
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn store_faults_never_move_a_checkpoint_past_durable_data() {
    let az = Azurite::start();
    for (k, v) in az.env() {
        // This test binary runs this one test; nothing else reads the environment meanwhile.
        std::env::set_var(k, v);
    }
    let container = unique("faults");
    az.create_container(&container);
    let t = Kafka::shared();
    let topic = unique("ledger");
    let group = unique("g");
    t.create_topic(&topic, 4).await;
    let produced = produce(&t.brokers, &topic, 0, 1500).await;
    wait_for_high_watermarks(&t.brokers, &topic, 4, 1500);

    let output_url = format!("az://{container}/archive");
    let base = Location::open(&output_url, "--output").unwrap();
    let watch = Arc::new(Watch {
        inner: base.store.clone(),
        prefix: base.prefix.clone(),
        intents: Default::default(),
        checks: AtomicU64::new(0),
        violations: Default::default(),
    });
    let faulty = FaultyStore::new(
        watch.clone(),
        Faults {
            write_error: 0.1,
            checkpoint_error: 0.1,
            lost_answer: 0.1,
            part_error: 0.1,
            read_error: 0.05,
            hang: 0.01,
            max_latency: Duration::from_millis(20),
        },
    );
    let counts = faulty.counts();
    let output = Location {
        store: Arc::new(faulty),
        ..base
    }
    .with_retry(RetryPolicy {
        give_up_after: Duration::from_secs(60),
        attempt_timeout: Duration::from_secs(2),
        first_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(500),
    });
    let checkpoints = output.child("_checkpoints");
    let cfg = run_config(&[
        "--brokers",
        &t.brokers,
        "--topic",
        &topic,
        "--group",
        &group,
        "--output",
        &output_url,
        "--namespace",
        "ns",
        "--once",
        "--window-size",
        "4KiB",
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let summary = tokio::time::timeout(
        Duration::from_secs(240),
        hubcap::run::run_with(cfg, output, checkpoints, stop),
    )
    .await
    .expect("the run ends")
    .expect("the run succeeds despite the faults");
    counts.set_enabled(false);

    let files = read_azurite(&az, &container, "archive");
    let a = audit(&files, &topic, &produced);
    let checks = watch.checks.load(Ordering::Relaxed);
    println!(
        "store faults: {counts}; {checks} checkpoint writes checked; {} files, {} events, {} duplicates, {} missing",
        a.files, a.events, a.duplicates, a.missing
    );
    let violations = watch.violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(
        counts.total() >= 10,
        "too few faults to prove much: {counts}"
    );
    assert!(checks > 20, "{checks}");
    assert_eq!((a.events, a.duplicates, a.missing), (1500, 0, 0));
    assert_eq!(summary.events(), 1500);

    let (ok, stdout, stderr) = run_with_timeout(
        hubcap()
            .args(["audit", "--output", &output_url, "--group", &group])
            .envs(az.env()),
        Duration::from_secs(60),
    );
    assert!(ok, "hubcap audit:\n{stdout}{stderr}");
}

/// The broker disappears in the middle of a `--once` run: the run gives up after `--retry-for`
/// with a message, exits with an error, and what it archived before is checkpointed and exact.
#[tokio::test(flavor = "multi_thread")]
async fn once_gives_up_when_kafka_stays_unreachable() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info,librdkafka=warn,rdkafka=warn")
        .with_test_writer()
        .try_init();
    let t = Kafka::start();
    let topic = unique("vanishing");
    let group = unique("g");
    t.create_topic(&topic, 2).await;
    let produced = produce(&t.brokers, &topic, 0, 600).await;
    wait_for_high_watermarks(&t.brokers, &topic, 2, 600);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_string();

    // A slow store and a small, slow prefetch keep the run going, and reading, for a while.
    let base = Location::open(&out, "--output").unwrap();
    let slow = FaultyStore::new(
        base.store.clone(),
        Faults {
            max_latency: Duration::from_millis(150),
            ..Default::default()
        },
    );
    let output = Location {
        store: Arc::new(slow),
        ..base
    };
    let checkpoints = output.child("_checkpoints");
    let cfg = run_config(&[
        "--brokers",
        &t.brokers,
        "--topic",
        &topic,
        "--group",
        &group,
        "--output",
        &out,
        "--once",
        "--window-size",
        "2KiB",
        "--retry-for",
        "5s",
        "-X",
        "queued.max.messages.kbytes=1",
        "-X",
        "fetch.message.max.bytes=1024",
        "-X",
        "fetch.max.bytes=1024",
        "-X",
        "message.max.bytes=1000",
        // A full prefetch queue (after every fetch, at 1 KiB) waits this long before the next.
        "-X",
        "fetch.queue.backoff.ms=200",
    ]);
    let run = tokio::spawn(hubcap::run::run_with(
        cfg,
        output,
        checkpoints,
        Arc::new(AtomicBool::new(false)),
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while list_files(dir.path()).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no file within 60 s");
        if run.is_finished() {
            panic!("the run ended before the broker went: {:?}", run.await);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed_at = std::time::Instant::now();
    drop(t); // the broker is gone for good
    let result = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run gives up within a bounded time")
        .unwrap();
    let took = killed_at.elapsed();
    let err = result
        .expect_err("a run that could not reach its end fails")
        .to_string();
    println!("broker gone: the run failed after {took:?}: {err}");
    assert!(err.contains("kafka unreachable"), "{err}");

    // Whatever was archived is exact and checkpointed. Records the consumer had taken in
    // before the broker went may all be archived (the outage still outlasted --retry-for).
    let files = read_local(dir.path());
    let a = audit(&files, &topic, &produced);
    assert!(
        a.events > 0 && (a.events as usize) <= produced.len(),
        "{a:?}"
    );
    assert_eq!(a.duplicates, 0);
    for p in 0..2 {
        let archived = files
            .iter()
            .filter(|f| partition_of(f["name"].as_str().unwrap(), &topic) == p)
            .map(|f| f["records"].as_array().unwrap().len() as i64)
            .sum::<i64>();
        if archived > 0 {
            let c = local_checkpoint(dir.path(), &group, &topic, p);
            assert_eq!(
                c["next_offset"].as_i64().unwrap(),
                archived,
                "partition {p}: {c}"
            );
            assert!(c["pending"].is_null(), "partition {p}: {c}");
        }
    }
}
