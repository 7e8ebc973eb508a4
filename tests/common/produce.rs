//! Producing test records (and remembering them), preloading topics, waiting for watermarks.

use super::*;

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
        let (key, body) = kib_record(i, &mut x);
        let partition = (i % partitions as usize) as i32;
        let mut rec = BaseRecord::to(topic)
            .key(&key)
            .payload(&body)
            .partition(partition);
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

/// The key and value of record `i` of [`preload_kib_records`], `x` the generator's state
/// (starting at 0x9e37_79b9_7f4a_7c15, advanced record by record).
pub fn kib_record(i: usize, x: &mut u64) -> (String, String) {
    let key = format!("user-{}", i % 1000);
    let pad: String = (0..56)
        .map(|_| {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            format!("{:016x}", *x)
        })
        .collect();
    (key, format!(r#"{{"type":"track","n":{i},"pad":"{pad}"}}"#))
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
