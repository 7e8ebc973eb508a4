//! Reading an archive back with independent readers (fastavro) and checking it: every record
//! once, checkpoints, manifests, `hubcap audit`.

use super::*;

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

/// A new topic of test records archived by one `hubcap run --once` into a new directory.
pub struct OnceArchive {
    pub topic: String,
    pub group: String,
    pub produced: Vec<Produced>,
    pub out: tempfile::TempDir,
}

impl OnceArchive {
    /// Creates a topic named after `name` with `partitions`, produces `records` test records,
    /// and archives them with `flags`; panics with hubcap's log if the run fails.
    pub async fn new(
        t: &Kafka,
        name: &str,
        partitions: i32,
        records: usize,
        flags: &[&str],
    ) -> OnceArchive {
        let (topic, group) = (unique(name), unique("g"));
        t.create_topic(&topic, partitions).await;
        let produced = produce(&t.brokers, &topic, 0, records).await;
        wait_for_high_watermarks(&t.brokers, &topic, partitions, records as i64);
        let out = tempfile::tempdir().unwrap();
        let (ok, _, stderr) = run_once(
            &t.brokers,
            &topic,
            &group,
            out.path().to_str().unwrap(),
            flags,
        );
        assert!(ok, "the run failed:\n{stderr}");
        OnceArchive {
            topic,
            group,
            produced,
            out,
        }
    }

    pub fn dir(&self) -> &Path {
        self.out.path()
    }

    pub fn output(&self) -> &str {
        self.out.path().to_str().unwrap()
    }
}

/// Sets the partition's checkpoint back to the intent of publishing `file` (its name relative
/// to the output), as a crash after the upload and before the commit leaves it.
pub fn rewind_checkpoint_to(dir: &Path, group: &str, topic: &str, file: &str) {
    let path = checkpoint_file(dir, group, topic, 0);
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut manifests = Vec::new();
    let mut stack = vec![dir.join("_manifests")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                manifests.push(p);
            }
        }
    }
    let (manifest, line) = manifests
        .iter()
        .find_map(|m| {
            let text = std::fs::read_to_string(m).unwrap();
            let line = text
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .find(|l| l["path"] == file)?;
            let name = m.strip_prefix(dir.join("_manifests")).unwrap();
            Some((name.display().to_string(), line))
        })
        .unwrap_or_else(|| panic!("{file} in no manifest"));
    let first = line["firstSequenceNumber"].as_i64().unwrap();
    let last = line["lastSequenceNumber"].as_i64().unwrap();
    c["next_offset"] = first.into();
    c["pending"] = serde_json::json!({
        "path": file,
        "first_offset": first,
        "last_offset": last,
        "events": line["eventCount"],
        "size": line["sizeInBytes"],
        "first_time_ms": null,
        "last_time_ms": null,
        "manifest": manifest,
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
}

/// Every (partition, offset) produced.
pub fn produced_offsets(produced: &[Produced]) -> std::collections::BTreeSet<(i32, i64)> {
    produced.iter().map(|p| (p.partition, p.offset)).collect()
}
