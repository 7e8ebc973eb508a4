//! Odd records and bad configuration, on the real broker: each case has a defined outcome.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

/// (label, key, value, headers, timestamp)
type Case = (
    &'static str,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(&'static str, Option<Vec<u8>>)>,
    Option<i64>,
);

fn corpus() -> Vec<Case> {
    vec![
        (
            "tombstone",
            Some(b"k".to_vec()),
            None,
            vec![],
            Some(1_790_000_000_000),
        ),
        (
            "empty value",
            Some(b"k".to_vec()),
            Some(vec![]),
            vec![],
            Some(1_790_000_000_001),
        ),
        (
            "no key",
            None,
            Some(b"v".to_vec()),
            vec![],
            Some(1_790_000_000_002),
        ),
        (
            "binary key",
            Some(vec![0xc3, 0x28, 0xff]),
            Some(b"v".to_vec()),
            vec![],
            Some(1_790_000_000_003),
        ),
        (
            "binary header value",
            Some(b"k".to_vec()),
            Some(b"v".to_vec()),
            vec![("h", Some(vec![0xff, 0, 0xfe]))],
            Some(1_790_000_000_004),
        ),
        (
            "header without value",
            Some(b"k".to_vec()),
            Some(b"v".to_vec()),
            vec![("h", None)],
            Some(1_790_000_000_005),
        ),
        (
            "duplicate header names",
            Some(b"k".to_vec()),
            Some(b"v".to_vec()),
            vec![("dup", Some(b"1".to_vec())), ("dup", Some(b"2".to_vec()))],
            Some(1_790_000_000_006),
        ),
        (
            "timestamp at the epoch",
            Some(b"k".to_vec()),
            Some(b"v".to_vec()),
            vec![],
            Some(1),
        ),
        (
            "very old timestamp",
            Some(b"k".to_vec()),
            Some(b"v".to_vec()),
            vec![],
            Some(31_536_000_000),
        ),
        (
            "far-future timestamp",
            Some(b"k".to_vec()),
            Some(b"v".to_vec()),
            vec![],
            Some(7_258_118_400_000),
        ),
        (
            "timestamp before the epoch",
            Some(b"k".to_vec()),
            Some(b"v".to_vec()),
            vec![],
            Some(-86_400_000),
        ),
        (
            "no timestamp (-1)",
            Some(b"k".to_vec()),
            Some(b"v".to_vec()),
            vec![],
            Some(-1),
        ),
        (
            "value bigger than the window",
            Some(b"k".to_vec()),
            Some(vec![b'x'; 200_000]),
            vec![],
            Some(1_790_000_000_010),
        ),
        (
            "value near the broker's limit",
            Some(b"k".to_vec()),
            Some(vec![b'y'; 900_000]),
            vec![],
            Some(1_790_000_000_011),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_records_each_get_their_documented_outcome() {
    let t = Kafka::shared();
    let topic = unique("odd");
    let group = unique("g");
    // Kafka 4 refuses timestamps more than an hour ahead by default; this topic takes any, as
    // older brokers and Event Hubs do, so the far-future case reaches hubcap.
    t.create_topic_with(
        &topic,
        1,
        &[("message.timestamp.after.max.ms", "9223372036854775807")],
    )
    .await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &t.brokers)
        .set("message.max.bytes", "1000000")
        .create()
        .unwrap();
    let cases = corpus();
    for (label, key, value, headers, ts) in &cases {
        let mut h = OwnedHeaders::new();
        for (k, v) in headers {
            h = h.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        let mut rec: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&topic).partition(0).headers(h);
        if let Some(ts) = ts {
            rec = rec.timestamp(*ts);
        }
        if let Some(k) = key {
            rec = rec.key(k.as_slice());
        }
        if let Some(v) = value {
            rec = rec.payload(v.as_slice());
        }
        producer
            .send(rec, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| format!("{label}: {e}"))
            .unwrap();
    }
    wait_for_high_watermarks(&t.brokers, &topic, 1, cases.len() as i64);
    let out = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run_once(
        &t.brokers,
        &topic,
        &group,
        out.path().to_str().unwrap(),
        &["--window-size", "64KiB"],
    );
    assert!(ok, "{stderr}");
    let files = read_local(out.path());
    let records: Vec<&serde_json::Value> = files
        .iter()
        .flat_map(|f| f["records"].as_array().unwrap())
        .collect();
    assert_eq!(records.len(), cases.len(), "every odd record archived once");
    for (i, (label, key, value, headers, ts)) in cases.iter().enumerate() {
        let r = records
            .iter()
            .find(|r| r["seq"] == i as i64)
            .unwrap_or_else(|| panic!("{label}: missing"));
        assert_eq!(
            r["body"],
            value
                .as_deref()
                .map_or(serde_json::Value::Null, |v| hex(v).into()),
            "{label}: body"
        );
        match key {
            None => assert!(r["sys"]["x-opt-partition-key"].is_null(), "{label}"),
            Some(k) => match std::str::from_utf8(k) {
                Ok(s) => assert_eq!(r["sys"]["x-opt-partition-key"]["string"], s, "{label}"),
                Err(_) => assert_eq!(
                    r["sys"]["x-opt-partition-key"]["bytes"],
                    hex(k),
                    "{label}: key kept as bytes"
                ),
            },
        }
        if *ts == Some(-1) {
            // Kafka's "no timestamp": Capture's fields stay empty rather than invent a time.
            assert!(
                r["sys"].get("x-opt-enqueued-time").is_none(),
                "{label}: {r}"
            );
            assert_eq!(r["enqueued"], "", "{label}");
        } else {
            assert_eq!(
                r["sys"]["x-opt-enqueued-time"]["long"],
                ts.unwrap(),
                "{label}: timestamp kept exactly"
            );
            assert_eq!(
                r["enqueued_matches"], true,
                "{label}: EnqueuedTimeUtc {}",
                r["enqueued"]
            );
        }
        if *label == "duplicate header names" {
            // Both entries are in the file, in order; a dict-based reader such as fastavro keeps
            // the last one.
            assert_eq!(r["props"]["dup"]["bytes"], hex(b"2"), "{label}");
        } else {
            for (k, v) in headers {
                match v {
                    None => assert!(r["props"][k].get("null").is_some(), "{label}"),
                    Some(b) => assert_eq!(r["props"][k]["bytes"], hex(b), "{label}"),
                }
            }
        }
    }
    // The two big values got files of their own; odd timestamps name sensible folders.
    let solo: Vec<&str> = files
        .iter()
        .filter(|f| {
            f["records"].as_array().unwrap().len() == 1 && f["size"].as_u64().unwrap() > 64 * 1024
        })
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(solo.len(), 2, "{solo:?}");
    // Names take their time from each file's first record.
    let first = files.iter().find(|f| f["records"][0]["seq"] == 0).unwrap();
    assert!(
        first["name"]
            .as_str()
            .unwrap()
            .contains("/0/2026/09/21/14/13/20-00000000000000000000.avro"),
        "{first}"
    );
    let (clean, report) = audit_cli(out.path(), &group);
    assert!(clean, "{report}");
}

#[test]
fn secrets_stay_out_of_logs_errors_and_help() {
    let secret = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=SuperSecret123=";
    let out = tempfile::tempdir().unwrap();
    let port = free_port();
    let (ok, stdout, stderr) = run_with_timeout(
        hubcap()
            .args([
                "run",
                "--brokers",
                &format!("127.0.0.1:{port}"),
                "--topic",
                "t",
                "--group",
                "g",
                "--once",
            ])
            .args(["--output", out.path().to_str().unwrap()])
            .args([
                "-X",
                "security.protocol=SASL_PLAINTEXT",
                "-X",
                "sasl.mechanism=PLAIN",
            ])
            .args([
                "-X",
                "sasl.username=$ConnectionString",
                "-X",
                &format!("sasl.password={secret}"),
            ]),
        Duration::from_secs(60),
    );
    assert!(!ok);
    assert!(
        stderr.contains("sasl.password=<redacted>"),
        "the effective config is logged, redacted:\n{stderr}"
    );
    assert!(
        !stderr.contains("SuperSecret123") && !stdout.contains("SuperSecret123"),
        "{stderr}"
    );

    let (_, help, _) = run_with_timeout(
        hubcap()
            .args(["run", "--help"])
            .env("HUBCAP_KAFKA_CONFIG", format!("sasl.password={secret}")),
        Duration::from_secs(10),
    );
    assert!(
        help.contains("HUBCAP_KAFKA_CONFIG") && !help.contains("SuperSecret123"),
        "{help}"
    );

    // A malformed setting is not echoed whole.
    let (ok, _, stderr) = run_with_timeout(
        hubcap().args([
            "run",
            "--brokers",
            "127.0.0.1:1",
            "--topic",
            "t",
            "--group",
            "g",
            "-X",
            secret,
        ]),
        Duration::from_secs(10),
    );
    assert!(
        !ok && stderr.contains("--eventhubs-connection-string"),
        "names the fix: {stderr}"
    );
    assert!(!stderr.contains("SuperSecret123"), "{stderr}");

    // The connection string given its own way: from the environment, hidden from --help, never
    // in the log (here it points at a closed local port, so the run fails fast).
    let local = format!(
        "Endpoint=sb://127.0.0.1:{port}/;SharedAccessKeyName=k;SharedAccessKey=SuperSecret123=;EntityPath=clicks"
    );
    let (ok, stdout, stderr) = run_with_timeout(
        hubcap()
            .args(["run", "--group", "g", "--once"])
            .args(["--output", out.path().to_str().unwrap()])
            .env("HUBCAP_EVENTHUBS_CONNECTION_STRING", &local),
        Duration::from_secs(60),
    );
    assert!(!ok, "{stdout}");
    assert!(
        stderr.contains("brokers=127.0.0.1:9093") && stderr.contains("topics=clicks"),
        "brokers and topic come from the string:\n{stderr}"
    );
    assert!(stderr.contains("sasl.password=<redacted>"), "{stderr}");
    assert!(
        !stderr.contains("SuperSecret123") && !stdout.contains("SuperSecret123"),
        "{stderr}"
    );
    let (_, help, _) = run_with_timeout(
        hubcap()
            .args(["run", "--help"])
            .env("HUBCAP_EVENTHUBS_CONNECTION_STRING", &local),
        Duration::from_secs(10),
    );
    assert!(
        help.contains("HUBCAP_EVENTHUBS_CONNECTION_STRING") && !help.contains("SuperSecret123"),
        "{help}"
    );
}
