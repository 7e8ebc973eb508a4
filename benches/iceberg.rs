//! Iceberg commits against table age: one-file appends to a local table through
//! `IcebergTable::append`, as a run makes them (each file a Kafka partition's next offsets, 32
//! partitions, a few `date=` folders; metrics as a real file's, made up since no data file is
//! read). Two tables in the same run:
//!
//! - **bounded**: hubcap's defaults (manifests merged at 100, 100 snapshots, 100 previous
//!   versions, old files deleted), 10,000 commits;
//! - **unbounded**: merging off and the bounds out of reach (`commit.manifest-merge.enabled=false`,
//!   `hubcap.snapshots.max` and `write.metadata.previous-versions-max` a billion, nothing
//!   deleted), as tables grew before: 2,000 commits, since each rewrites all of its history.
//!
//! At 1k, 2k, 5k and 10k commits it prints the current metadata JSON and manifest list, the
//! manifests in it, everything under `metadata/`, commits per second over the last 1,000 and
//! overall, and the slowest of the last 1,000 commits (a merge); then the ratios at the last
//! count both tables reached. Only `append` is timed, not the measuring.
//!
//!   cargo bench --bench iceberg
//!   HUBCAP_BENCH_COMMITS=3000 HUBCAP_BENCH_BASELINE_COMMITS=1000 cargo bench --bench iceberg
//!
//! The tables are written under HUBCAP_BENCH_OUT (default `/dev/shm`, a memory file system, so
//! that the disk's syncs are not what is measured; another folder measures them too).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hubcap::state::iceberg::manifest::Metrics;
use hubcap::state::iceberg::properties::{
    DELETE_AFTER_COMMIT, MAX_SNAPSHOTS, MERGE_ENABLED, PREVIOUS_VERSIONS_MAX,
};
use hubcap::state::iceberg::{schema, Committed, DataFile, IcebergTable, TableState};
use hubcap::store::Location;

/// hubcap's allocator, as `main.rs` sets it: glibc's would be measured instead.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PARTITIONS: u64 = 32;
const DATES: u64 = 4;
/// Records per file (and so offsets per commit of a partition).
const RECORDS: u64 = 50_000;
const CHECKPOINTS: [u64; 4] = [1_000, 2_000, 5_000, 10_000];
const UNBOUNDED: [(&str, &str); 4] = [
    (MERGE_ENABLED, "false"),
    (MAX_SNAPSHOTS, "1000000000"),
    (PREVIOUS_VERSIONS_MAX, "1000000000"),
    (DELETE_AFTER_COMMIT, "false"),
];

/// What a table looks like after some commits.
#[derive(Debug, Clone, Copy)]
struct Figures {
    commits: u64,
    metadata_json: u64,
    manifest_list: u64,
    manifests: usize,
    folder_bytes: u64,
    folder_files: usize,
    /// Commits per second over the last 1,000 commits, and since the first.
    last_rate: f64,
    overall_rate: f64,
    /// The slowest of the last 1,000 commits, in milliseconds (a merge, or an expiry that
    /// deletes the manifests a merge replaced).
    slowest_ms: f64,
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Metrics as `DataFile::from_footer` makes them for hubcap's columns: sizes and counts of
/// every leaf column, bounds of the offsets and times.
fn metrics(leaves: &BTreeMap<String, i32>, first_offset: u64) -> Metrics {
    let mut m = Metrics::default();
    for &id in leaves.values() {
        m.column_sizes.insert(id, 40_000 + i64::from(id));
        m.value_counts.insert(id, RECORDS as i64);
        m.null_value_counts.insert(id, 0);
    }
    let first = first_offset as i64;
    let last = first + RECORDS as i64 - 1;
    let micros = |offset: i64| (1_772_600_000_000 + offset) * 1000;
    for (id, lo, hi) in [
        (leaves["SequenceNumber"], first, last),
        (leaves["EnqueuedTime"], micros(first), micros(last)),
    ] {
        m.lower_bounds.insert(id, lo.to_le_bytes().to_vec());
        m.upper_bounds.insert(id, hi.to_le_bytes().to_vec());
    }
    m
}

/// Commit `k`'s file: partition `k % 32`'s next `RECORDS` offsets, in one of four dates.
fn file(leaves: &BTreeMap<String, i32>, k: u64, total: u64) -> (DataFile, Committed) {
    let partition = k % PARTITIONS;
    let first = k / PARTITIONS * RECORDS;
    let date = format!("2026-03-{:02}", 1 + k * DATES / total.max(1));
    let file = DataFile {
        path: format!("partition={partition}/date={date}/{first:020}.parquet"),
        size: 64 << 20,
        records: RECORDS,
        partition_values: vec![
            ("partition".into(), partition.to_string()),
            ("date".into(), date),
        ],
        metrics: metrics(leaves, first),
    };
    let committed = Committed {
        topic: "bench".into(),
        partition: partition as i32,
        last_offset: (first + RECORDS - 1) as i64,
    };
    (file, committed)
}

/// The files under `dir`: their count and total bytes.
fn folder(dir: &Path) -> (usize, u64) {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .fold((0, 0), |(n, bytes), len| (n + 1, bytes + len))
}

/// How fast the last 1,000 commits and all of them went.
struct Pace {
    last_rate: f64,
    overall_rate: f64,
    slowest_ms: f64,
}

fn figures(table_dir: &Path, state: &TableState, commits: u64, pace: Pace) -> Figures {
    let metadata = table_dir.join("metadata");
    let json = metadata.join(format!("v{}.metadata.json", state.version));
    let list_uri = &state.snapshot().unwrap().manifest_list;
    let list = PathBuf::from(list_uri.strip_prefix("file://").unwrap());
    let list_bytes = std::fs::read(&list).unwrap();
    let manifests = apache_avro::Reader::new(&list_bytes[..]).unwrap().count();
    let (folder_files, folder_bytes) = folder(&metadata);
    Figures {
        commits,
        metadata_json: std::fs::metadata(json).unwrap().len(),
        manifest_list: list_bytes.len() as u64,
        manifests,
        folder_bytes,
        folder_files,
        last_rate: pace.last_rate,
        overall_rate: pace.overall_rate,
        slowest_ms: pace.slowest_ms,
    }
}

/// Commits `commits` one-file appends to a new table under `out`, with `properties` set
/// first, and returns the figures at each checkpoint it reaches.
async fn run(out: &Path, name: &str, commits: u64, properties: &[(&str, &str)]) -> Vec<Figures> {
    let location = Location::open(out.to_str().unwrap(), "--output").unwrap();
    let table = IcebergTable::new(location.child(name)).unwrap();
    let table_dir = out.canonicalize().unwrap().join(name);
    let created = table
        .create(&["partition".to_string(), "date".to_string()])
        .await
        .unwrap();
    let mut state = table.set_properties(&created, properties).await.unwrap();
    let leaves = schema::iceberg_schema(&hubcap::encode::parquet::schema(), &[])
        .unwrap()
        .leaves;
    let mut results = Vec::new();
    let mut elapsed = 0.0;
    let (mut segment, mut slowest) = (0.0, 0.0f64);
    for k in 0..commits {
        let (file, committed) = file(&leaves, k, commits);
        let started = Instant::now();
        state = table.append(&state, &[file], &[committed]).await.unwrap();
        let took = started.elapsed().as_secs_f64();
        (elapsed, segment, slowest) = (elapsed + took, segment + took, slowest.max(took));
        let done = k + 1;
        if done % 1_000 != 0 {
            continue;
        }
        if CHECKPOINTS.contains(&done) || done == commits {
            let pace = Pace {
                last_rate: 1_000.0 / segment,
                overall_rate: done as f64 / elapsed,
                slowest_ms: slowest * 1000.0,
            };
            results.push(figures(&table_dir, &state, done, pace));
        }
        (segment, slowest) = (0.0, 0.0);
    }
    results
}

fn kib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1024.0)
}

fn print(name: &str, all: &[Figures]) {
    for f in all {
        println!(
            "{name:<10} {:>7} {:>9} {:>9} {:>9} {:>13} {:>6} {:>11.0} {:>11.0} {:>11.1}",
            f.commits,
            kib(f.metadata_json),
            kib(f.manifest_list),
            f.manifests,
            format!("{:.1}", f.folder_bytes as f64 / (1 << 20) as f64),
            f.folder_files,
            f.last_rate,
            f.overall_rate,
            f.slowest_ms,
        );
    }
}

fn main() {
    let commits = env("HUBCAP_BENCH_COMMITS", 10_000);
    let baseline_commits = env("HUBCAP_BENCH_BASELINE_COMMITS", 2_000);
    let out_root = std::env::var("HUBCAP_BENCH_OUT").unwrap_or_else(|_| "/dev/shm".into());
    let out = tempfile::tempdir_in(&out_root).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "one-file appends to a local table under {out_root}; {PARTITIONS} partitions, {DATES} dates"
    );
    let unbounded = rt.block_on(run(out.path(), "unbounded", baseline_commits, &UNBOUNDED));
    // The unbounded table's files are not needed any more: free the room before the next.
    std::fs::remove_dir_all(out.path().join("unbounded")).unwrap();
    let bounded = rt.block_on(run(out.path(), "bounded", commits, &[]));
    println!(
        "{:<10} {:>7} {:>9} {:>9} {:>9} {:>13} {:>6} {:>11} {:>11} {:>11}",
        "table",
        "commits",
        "json KiB",
        "list KiB",
        "manifests",
        "metadata/ MiB",
        "files",
        "last 1k c/s",
        "overall c/s",
        "slowest ms",
    );
    print("unbounded", &unbounded);
    print("bounded", &bounded);
    let both = unbounded
        .iter()
        .rev()
        .find_map(|u| Some((u, bounded.iter().find(|b| b.commits == u.commits)?)));
    if let Some((u, b)) = both {
        println!(
            "at {} commits, unbounded / bounded: metadata JSON {:.1}x, manifest list {:.1}x, metadata/ bytes {:.1}x, files {:.1}x; commits/s (last 1k) {:.2}x",
            u.commits,
            u.metadata_json as f64 / b.metadata_json as f64,
            u.manifest_list as f64 / b.manifest_list as f64,
            u.folder_bytes as f64 / b.folder_bytes as f64,
            u.folder_files as f64 / b.folder_files as f64,
            u.last_rate / b.last_rate,
        );
    }
}
