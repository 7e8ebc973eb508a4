use super::http::route;
use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NOW: i64 = 1_800_000_000_000;

/// A registry with partition 0 archiving (one file archived, a window open) and partition 1
/// revoked after archiving a file.
fn registry() -> Metrics {
    let m = Metrics::new(Duration::from_secs(60));
    m.topic("orders").joined();
    m.topic("orders").watermark(NOW - 90_000);
    m.topic("orders").watermark(NOW - 95_000);
    let p0 = m.partition("orders", 0);
    p0.assigned(100, Some(100), None);
    p0.checkpointed(150, true);
    p0.file_archived(50, 4096);
    p0.window_opened(Some(NOW - 30_000));
    p0.window(7, 900, Some(157));
    p0.set_high_watermark(200);
    let p1 = m.partition("orders", 1);
    p1.assigned(0, None, None);
    p1.checkpointed(10, true);
    p1.file_archived(10, 1000);
    p1.released();
    m.upload_duration.observe(Duration::from_millis(30));
    m.upload_duration.observe(Duration::from_secs(3));
    m.checkpoint_duration.observe(Duration::from_millis(4));
    m
}

/// The value of the sample whose line starts with `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn counters_and_gauges_are_exposed_per_partition() {
    let text = registry().render(NOW);
    let p0 = "{topic=\"orders\",partition=\"0\"}";
    let p1 = "{topic=\"orders\",partition=\"1\"}";
    let table: &[(&str, &str, Option<f64>)] = &[
        ("hubcap_records_archived_total", p0, Some(50.0)),
        ("hubcap_bytes_archived_total", p0, Some(4096.0)),
        ("hubcap_files_archived_total", p0, Some(1.0)),
        // Revoked: counters stay, gauges go.
        ("hubcap_records_archived_total", p1, Some(10.0)),
        ("hubcap_window_records", p1, None),
        ("hubcap_window_records", p0, Some(7.0)),
        ("hubcap_window_bytes", p0, Some(900.0)),
        ("hubcap_consumer_lag_records", p0, Some(50.0)),
        ("hubcap_consumer_lag_seconds", p0, Some(30.0)),
        ("hubcap_checkpoint_offset", p0, Some(150.0)),
        (
            "hubcap_assigned_partitions",
            "{topic=\"orders\"}",
            Some(1.0),
        ),
        (
            "hubcap_fenced_partitions_total",
            "{topic=\"orders\"}",
            Some(0.0),
        ),
        ("hubcap_kafka_reachable", "{topic=\"orders\"}", Some(1.0)),
        // The later of the two: a watermark only moves forward.
        (
            "hubcap_watermark_timestamp_seconds",
            "{topic=\"orders\"}",
            Some((NOW - 90_000) as f64 / 1000.0),
        ),
        (
            "hubcap_upload_duration_seconds_bucket",
            "{le=\"0.05\"}",
            Some(1.0),
        ),
        (
            "hubcap_upload_duration_seconds_bucket",
            "{le=\"5\"}",
            Some(2.0),
        ),
        (
            "hubcap_upload_duration_seconds_bucket",
            "{le=\"+Inf\"}",
            Some(2.0),
        ),
        ("hubcap_upload_duration_seconds_count", "", Some(2.0)),
        ("hubcap_upload_duration_seconds_sum", "", Some(3.03)),
        ("hubcap_checkpoint_duration_seconds_count", "", Some(1.0)),
    ];
    for (name, labels, want) in table {
        assert_eq!(
            value(&text, &format!("{name}{labels}")),
            *want,
            "{name}{labels}\n{text}"
        );
    }
    let age = value(&text, &format!("hubcap_window_age_seconds{p0}")).unwrap();
    assert!(age >= 0.0, "{age}");
    assert!(text.contains("hubcap_retries_total{operation=\"upload\"}"));
    assert!(text.contains("hubcap_retries_total{operation=\"partition_restart\"}"));
}

#[test]
fn every_metric_has_help_and_type_and_every_line_parses() {
    let text = registry().render(NOW);
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(name.starts_with("hubcap_"), "{line}");
            typed.insert(name.to_string());
        } else if !line.starts_with("# HELP ") {
            let (series, v) = line.rsplit_once(' ').unwrap();
            v.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
            let name = series.split('{').next().unwrap();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| typed.contains(*b)))
                .unwrap_or(name);
            assert!(typed.contains(base), "{line}: sample before its TYPE");
        }
    }
    for name in [
        "hubcap_records_archived_total",
        "hubcap_bytes_archived_total",
        "hubcap_files_archived_total",
        "hubcap_window_age_seconds",
        "hubcap_window_bytes",
        "hubcap_window_records",
        "hubcap_upload_duration_seconds",
        "hubcap_checkpoint_duration_seconds",
        "hubcap_retries_total",
        "hubcap_consumer_lag_records",
        "hubcap_consumer_lag_seconds",
        "hubcap_checkpoint_age_seconds",
        "hubcap_assigned_partitions",
        "hubcap_fenced_partitions_total",
        "hubcap_watermark_timestamp_seconds",
    ] {
        assert!(typed.contains(name), "{name} missing");
    }
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

#[test]
fn lag_is_zero_when_caught_up_and_unknown_without_a_watermark() {
    let m = Metrics::default();
    let p = m.partition("t", 0);
    p.assigned(0, None, None);
    assert_eq!(p.snapshot().lag_records(), None);
    p.set_high_watermark(40);
    assert_eq!(p.snapshot().lag_records(), Some(40));
    p.checkpointed(40, true);
    p.file_archived(40, 1);
    let s = p.snapshot();
    assert_eq!((s.lag_records(), s.lag_seconds(NOW)), (Some(0), 0.0));
    // An intent does not move the archived offset.
    p.checkpointed(90, false);
    assert_eq!(p.snapshot().archived, Some(40));
}

fn part(assigned: bool, archived: i64, high: i64, idle_s: i64) -> PartitionSnapshot {
    PartitionSnapshot {
        topic: "t".into(),
        partition: 3,
        assigned,
        start: Some(0),
        archived: Some(archived),
        high_watermark: Some(high),
        progress_ms: Some(NOW - idle_s * 1000),
        ..Default::default()
    }
}

#[test]
fn readiness_table() {
    let joined = TopicSnapshot {
        name: "t".into(),
        joined: true,
        ..Default::default()
    };
    let waiting = TopicSnapshot {
        joined: false,
        ..joined.clone()
    };
    let down = TopicSnapshot {
        kafka_down: true,
        ..joined.clone()
    };
    let stall = Duration::from_secs(60);
    let mut window_open = part(true, 10, 10, 120);
    window_open.window_records = 5;
    // (topic, partitions, ready, reason fragment)
    let table: Vec<(TopicSnapshot, Vec<PartitionSnapshot>, bool, &str)> = vec![
        (waiting, vec![], false, "not in the consumer group"),
        (joined.clone(), vec![], true, ""),
        (down, vec![], false, "kafka unreachable"),
        (joined.clone(), vec![part(true, 10, 10, 3600)], true, ""), // idle, caught up
        (joined.clone(), vec![part(true, 10, 90, 30)], true, ""),   // behind, progressing
        (
            joined.clone(),
            vec![part(true, 10, 90, 120)],
            false,
            "partition 3: no file archived for 120s",
        ),
        (joined.clone(), vec![window_open], false, "partition 3"), // a window that never closes
        (joined.clone(), vec![part(false, 10, 90, 600)], true, ""), // revoked: not ours
    ];
    for (i, (topic, parts, ready, reason)) in table.into_iter().enumerate() {
        let got = readiness(&[topic], &parts, NOW, stall);
        assert_eq!(got.is_ok(), ready, "row {i}: {got:?}");
        if let Err(reasons) = got {
            assert!(reasons.join("\n").contains(reason), "row {i}: {reasons:?}");
        }
    }
}

#[test]
fn routes() {
    let m = registry();
    let now = now_ms(); // the registry's progress times are real ones
    assert_eq!(route("GET /healthz HTTP/1.1", &m, now).0, "200 OK");
    let (status, kind, body) = route("GET /metrics HTTP/1.1", &m, now);
    assert_eq!(
        (status, kind),
        ("200 OK", "text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(body.contains("hubcap_records_archived_total"));
    assert_eq!(route("GET /readyz HTTP/1.1", &m, now).0, "200 OK");
    m.topic("late");
    let (status, _, body) = route("GET /readyz HTTP/1.1", &m, now);
    assert_eq!(status, "503 Service Unavailable");
    assert!(body.contains("topic late"), "{body}");
    assert_eq!(
        route("POST /metrics HTTP/1.1", &m, now).0,
        "405 Method Not Allowed"
    );
    assert_eq!(route("GET /nope HTTP/1.1", &m, now).0, "404 Not Found");
    assert_eq!(route("", &m, now).0, "405 Method Not Allowed");
}

#[tokio::test]
async fn the_server_answers_over_http_and_a_taken_port_names_the_flag() {
    let metrics = Arc::new(registry());
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), metrics.clone())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let task = tokio::spawn(server.serve());
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{head}"
    );
    assert!(body.contains("hubcap_files_archived_total{topic=\"orders\",partition=\"0\"} 1"));

    let err = Server::bind(addr, metrics).await.err().unwrap().to_string();
    assert!(
        err.contains("--metrics-addr") && err.contains(&addr.to_string()),
        "{err}"
    );
    task.abort();
}
