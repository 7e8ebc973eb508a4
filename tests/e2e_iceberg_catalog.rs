//! `--table iceberg --iceberg-catalog URL` against Apache Kafka and Apache Iceberg's own REST
//! catalog server (from Maven Central's jars), the tables read through the catalog by pyiceberg
//! and DuckDB (and Spark, in the kill loop), not by hubcap: every offset once across runs, a
//! path table moved into the catalog with its files, the catalog restarted mid-run, a token the
//! catalog refuses, and three instances of one group killed at random.

mod common;

use std::collections::BTreeSet;

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
}
