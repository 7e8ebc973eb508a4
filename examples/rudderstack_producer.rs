//! Produces RudderStack-style events to a Kafka topic, keyed the way RudderStack's Kafka
//! destination keys them: by `userId`, or by `anonymousId` when the event has no `userId`, so one
//! user's events stay in one partition (and so in one partition directory of hubcap's archive).
//!
//! ```sh
//! cargo run --example rudderstack_producer -- --brokers 127.0.0.1:9092 --topic events \
//!     --count 10000 --rate 500
//! hubcap run --brokers 127.0.0.1:9092 --topic events --group archiver --output ./capture --once
//! python3 examples/read_archive.py ./capture user-42     # one user's events, in order
//! ```
//!
//! Each value is one event as RudderStack delivers it: `type` (`track`, `identify` or `page`),
//! `messageId`, `userId` (absent for about one event in five, from visitors who have not
//! identified yet), `anonymousId`, `event` and `properties` for `track`, `traits` for
//! `identify`, `name` and `properties` for `page`, `context` (library, page, user agent, locale)
//! and the `originalTimestamp` / `sentAt` / `receivedAt` / `timestamp` quartet. The record
//! timestamp is the event's `timestamp`. RudderStack's destination sends no Kafka headers; this
//! producer sends none either unless `--headers` asks for `type` and `messageId` headers, which
//! hubcap archives as Capture `Properties`.
//!
//! `-X key=value` passes librdkafka settings (SASL, TLS, batching). Exits non-zero if any event
//! is not acknowledged.

use std::time::{Duration, Instant};

use clap::Parser;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::{json, Value};

#[derive(Debug, Parser)]
#[command(about = "Produce RudderStack-style events keyed by userId / anonymousId")]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic to produce to (it must exist).
    #[arg(long, default_value = "events")]
    topic: String,
    /// How many events to produce.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Events per second; 0 produces as fast as the broker acknowledges.
    #[arg(long, default_value_t = 0)]
    rate: u32,
    /// Also send `type` and `messageId` as Kafka headers.
    #[arg(long)]
    headers: bool,
    /// A librdkafka producer setting, key=value; repeatable.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    kafka: Vec<String>,
}

/// Events in flight at once: enough to keep the broker busy, bounded so memory is too.
const IN_FLIGHT: usize = 256;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.brokers)
        .set("client.id", "rudderstack-example")
        .set("enable.idempotence", "true");
    for setting in &args.kafka {
        let (k, v) = setting
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("-X {setting:?}: expected key=value"))?;
        config.set(k, v);
    }
    let producer: FutureProducer = config.create()?;

    let started = Instant::now();
    let interval = (args.rate > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    let mut pending = futures::stream::FuturesUnordered::new();
    let mut acked = 0usize;
    for i in 0..args.count {
        if let Some(interval) = interval {
            // Paced from the start, so a slow acknowledgement does not lower the rate.
            let due = started + interval * u32::try_from(i)?;
            tokio::time::sleep_until(due.into()).await;
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        let event = rudderstack_event(i, now_ms);
        let producer = producer.clone();
        let topic = args.topic.clone();
        let with_headers = args.headers;
        pending.push(async move { send(&producer, &topic, &event, now_ms, with_headers).await });
        if pending.len() >= IN_FLIGHT {
            acked += next_ack(&mut pending).await?;
        }
    }
    while !pending.is_empty() {
        acked += next_ack(&mut pending).await?;
    }
    println!(
        "produced {acked} RudderStack-style events to {} in {:.1} s",
        args.topic,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn next_ack(
    pending: &mut futures::stream::FuturesUnordered<
        impl std::future::Future<Output = anyhow::Result<()>>,
    >,
) -> anyhow::Result<usize> {
    use futures::StreamExt;
    match pending.next().await {
        Some(r) => r.map(|()| 1),
        None => Ok(0),
    }
}

/// Sends one event keyed by its `userId`, else its `anonymousId`.
async fn send(
    producer: &FutureProducer,
    topic: &str,
    event: &Value,
    timestamp_ms: i64,
    with_headers: bool,
) -> anyhow::Result<()> {
    let key = partition_key(event).ok_or_else(|| anyhow::anyhow!("event without any id"))?;
    let body = serde_json::to_vec(event)?;
    let mut record = FutureRecord::to(topic)
        .key(key)
        .payload(&body)
        .timestamp(timestamp_ms);
    if with_headers {
        let header = |name: &str| event[name].as_str().unwrap_or_default().to_string();
        let (kind, message_id) = (header("type"), header("messageId"));
        record = record.headers(
            OwnedHeaders::new()
                .insert(Header {
                    key: "type",
                    value: Some(&kind),
                })
                .insert(Header {
                    key: "messageId",
                    value: Some(&message_id),
                }),
        );
    }
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map_err(|(e, _)| anyhow::anyhow!("event {key}: {e}"))?;
    Ok(())
}

/// RudderStack's rule: `userId` when the event has one, else `anonymousId`.
fn partition_key(event: &Value) -> Option<&str> {
    event["userId"]
        .as_str()
        .filter(|s| !s.is_empty())
        .or_else(|| event["anonymousId"].as_str())
}

/// The i-th event: a deterministic mix of 97 visitors, one in five not identified yet.
fn rudderstack_event(i: usize, now_ms: i64) -> Value {
    let visitor = i * 7919 % 97;
    let anonymous_id = format!(
        "{:08x}-0000-4000-8000-{visitor:012x}",
        visitor * 2_654_435 + 1
    );
    let user_id = (!i.is_multiple_of(5)).then(|| format!("user-{visitor}"));
    let at = |offset_ms: i64| {
        chrono::DateTime::from_timestamp_millis(now_ms + offset_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let path = format!("/docs/{}", i % 12);
    let kind = ["track", "identify", "page"][i % 3];
    let locale = ["en-US", "de-DE", "fr-FR"][visitor % 3];
    let mut event = json!({
        "type": kind,
        "messageId": format!("msg-{i:08}-{:04x}", now_ms & 0xffff),
        "anonymousId": anonymous_id,
        "channel": "web",
        "context": {
            "library": {"name": "RudderLabs JavaScript SDK", "version": "3.7.0"},
            "page": {"path": path, "url": format!("https://example.com{path}")},
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
            "locale": locale,
        },
        "originalTimestamp": at(-120),
        "sentAt": at(-100),
        "receivedAt": at(0),
        "timestamp": at(-20),
    });
    if let Some(u) = &user_id {
        event["userId"] = json!(u);
    }
    match kind {
        "track" => {
            let name = ["Order Completed", "Product Viewed", "Signed Up"][i % 7 % 3];
            event["event"] = json!(name);
            event["properties"] =
                json!({"revenue": (i % 90 + 10) as f64 + 0.99, "currency": "EUR"});
        }
        "identify" => {
            let plan = ["free", "pro"][i % 2];
            event["traits"] = json!({
                "plan": plan,
                "email": format!("{}@example.com", user_id.as_deref().unwrap_or("visitor")),
            });
        }
        _ => {
            event["name"] = json!("Docs");
            event["properties"] = json!({"path": path, "title": format!("Page {}", i % 12)});
        }
    }
    event
}
