//! The record mapping: one Kafka record in the shape the Capture schema needs, as the encoders
//! read it ([`Record`]), packed with its partition's next records into one reused buffer on the
//! data path ([`Batch`]), or owned ([`Event`], for tests and tools).
//!
//! | Capture field      | from the Kafka record                                                |
//! |--------------------|----------------------------------------------------------------------|
//! | `SequenceNumber`   | offset                                                               |
//! | `Offset`           | offset as a decimal string                                           |
//! | `EnqueuedTimeUtc`  | timestamp, UTC, `M/d/yyyy h:mm:ss tt` (empty when the record has none) |
//! | `SystemProperties` | `x-opt-enqueued-time` (long, epoch ms) when the record has a timestamp; `x-opt-partition-key` = key, `string` when UTF-8, `bytes` otherwise |
//! | `Properties`       | headers, `bytes` values; a header without a value is the `null` branch |
//! | `Body`             | value bytes; `null` for a tombstone                                  |

use std::borrow::Cow;
use std::ops::Range;

use chrono::{DateTime, Utc};

/// Capture's system-property name for the enqueue time (epoch milliseconds).
pub const ENQUEUED_TIME_KEY: &str = "x-opt-enqueued-time";
/// Capture's system-property name for the partition key (the Kafka record key).
pub const PARTITION_KEY_KEY: &str = "x-opt-partition-key";

/// One consumed record, detached from the consumer's buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub offset: i64,
    /// Record timestamp in epoch milliseconds; `None` when the producer sent none (-1).
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    /// Headers in record order. Duplicate keys are kept; see [`Header`].
    pub headers: Vec<Header>,
    /// `None` for a tombstone (null value); `Some(vec![])` for an empty value.
    pub value: Option<Vec<u8>>,
}

/// A Kafka header. Kafka header keys are strings; a key that is not valid UTF-8 is kept lossily
/// (U+FFFD), because Avro map keys must be strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

impl Event {
    /// The record timestamp as a UTC time, when it has one that chrono can represent.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        self.timestamp_ms.and_then(DateTime::from_timestamp_millis)
    }

    /// `EnqueuedTimeUtc` exactly as Capture writes it, or `""` when the record has no timestamp.
    pub fn enqueued_time_utc(&self) -> String {
        self.time().map(format_enqueued_time).unwrap_or_default()
    }

    /// The record as the encoders read it.
    pub fn record(&self) -> Record<'_> {
        Record {
            offset: self.offset,
            timestamp_ms: self.timestamp_ms,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers: Headers::Owned(&self.headers),
        }
    }
}

/// One record, borrowed: what the encoders read.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub offset: i64,
    /// Epoch milliseconds; `None` when the producer sent none.
    pub timestamp_ms: Option<i64>,
    pub key: Option<&'a [u8]>,
    /// `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    pub headers: Headers<'a>,
}

/// A record's headers, in record order.
#[derive(Debug, Clone, Copy)]
pub enum Headers<'a> {
    /// Spans of a [`Batch`]'s buffer.
    Packed {
        spans: &'a [(Span, Span)],
        data: &'a [u8],
    },
    Owned(&'a [Header]),
}

impl<'a> Headers<'a> {
    pub fn len(&self) -> usize {
        match self {
            Headers::Packed { spans, .. } => spans.len(),
            Headers::Owned(h) => h.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each header's name (as text: Avro map keys are strings, so a name that is not UTF-8 is
    /// kept lossily, U+FFFD) and value (`None`: a header without a value).
    pub fn iter(self) -> HeaderIter<'a> {
        match self {
            Headers::Packed { spans, data } => HeaderIter::Packed {
                spans: spans.iter(),
                data,
            },
            Headers::Owned(h) => HeaderIter::Owned(h.iter()),
        }
    }
}

/// The iterator of [`Headers::iter`].
pub enum HeaderIter<'a> {
    Packed {
        spans: std::slice::Iter<'a, (Span, Span)>,
        data: &'a [u8],
    },
    Owned(std::slice::Iter<'a, Header>),
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (Cow<'a, str>, Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            HeaderIter::Packed { spans, data } => spans.next().map(|(name, value)| {
                let name = name.get(data).unwrap_or_default();
                // Names are almost always UTF-8: checked at full speed, copied only if not.
                let name = std::str::from_utf8(name)
                    .map_or_else(|_| String::from_utf8_lossy(name), Cow::Borrowed);
                (name, value.get(data))
            }),
            HeaderIter::Owned(h) => h
                .next()
                .map(|h| (Cow::Borrowed(h.key.as_str()), h.value.as_deref())),
        }
    }
}

/// Where optional bytes sit in a [`Batch`]'s buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span(Option<Range<usize>>);

impl Span {
    fn get<'d>(&self, data: &'d [u8]) -> Option<&'d [u8]> {
        self.0.clone().and_then(|r| data.get(r))
    }
}

/// A record of a [`Batch`], its bytes elsewhere.
#[derive(Debug, Clone)]
struct Packed {
    offset: i64,
    timestamp_ms: Option<i64>,
    key: Span,
    value: Span,
    headers: Range<usize>,
}

/// Consecutive records of one partition, copied out of the consumer into one buffer, so that
/// the data path allocates per batch, not per record or header: batches are cleared and reused
/// (see [`BatchPool`]).
#[derive(Debug, Default)]
pub struct Batch {
    data: Vec<u8>,
    records: Vec<Packed>,
    headers: Vec<(Span, Span)>,
}

impl Batch {
    /// Appends a record; `headers` gives each header's name and value.
    pub fn push<'h>(
        &mut self,
        offset: i64,
        timestamp_ms: Option<i64>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: impl IntoIterator<Item = (&'h [u8], Option<&'h [u8]>)>,
    ) {
        let first_header = self.headers.len();
        let key = self.put(key);
        let value = self.put(value);
        for (name, value) in headers {
            let name = self.put(Some(name));
            let value = self.put(value);
            self.headers.push((name, value));
        }
        self.records.push(Packed {
            offset,
            timestamp_ms,
            key,
            value,
            headers: first_header..self.headers.len(),
        });
    }

    /// Appends an owned record.
    pub fn push_event(&mut self, e: &Event) {
        let headers = e
            .headers
            .iter()
            .map(|h| (h.key.as_bytes(), h.value.as_deref()));
        self.push(
            e.offset,
            e.timestamp_ms,
            e.key.as_deref(),
            e.value.as_deref(),
            headers,
        );
    }

    /// A batch of these records.
    pub fn of(events: &[Event]) -> Batch {
        let mut b = Batch::default();
        for e in events {
            b.push_event(e);
        }
        b
    }

    fn put(&mut self, bytes: Option<&[u8]>) -> Span {
        Span(bytes.map(|b| {
            let start = self.data.len();
            self.data.extend_from_slice(b);
            start..self.data.len()
        }))
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes of keys, values and header names and values.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    /// Memory the batch holds (its buffers' capacities), for the memory budget.
    pub fn footprint(&self) -> usize {
        self.data.capacity()
            + self.records.capacity() * std::mem::size_of::<Packed>()
            + self.headers.capacity() * std::mem::size_of::<(Span, Span)>()
    }

    pub fn iter(&self) -> impl Iterator<Item = Record<'_>> {
        self.records.iter().map(|p| Record {
            offset: p.offset,
            timestamp_ms: p.timestamp_ms,
            key: p.key.get(&self.data),
            value: p.value.get(&self.data),
            headers: Headers::Packed {
                spans: self.headers.get(p.headers.clone()).unwrap_or_default(),
                data: &self.data,
            },
        })
    }

    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.data.clear();
        self.records.clear();
        self.headers.clear();
    }
}

/// Cleared batches for reuse, shared by the consumer (which fills them) and the partition
/// workers (which give them back once encoded). Keeps a few; more are dropped.
#[derive(Debug, Default)]
pub struct BatchPool(std::sync::Mutex<Vec<Batch>>);

impl BatchPool {
    /// Batches kept for reuse, at most.
    const KEEP: usize = 16;

    pub fn take(&self) -> Batch {
        self.0
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_default()
    }

    pub fn give_back(&self, mut batch: Batch) {
        // A batch grown by a huge record is not worth keeping.
        if batch.data.capacity() > 4 << 20 {
            return;
        }
        batch.clear();
        if let Ok(mut pool) = self.0.lock() {
            if pool.len() < Self::KEEP {
                pool.push(batch);
            }
        }
    }
}

/// `EnqueuedTimeUtc` texts, formatted once per second: consecutive records mostly share their
/// second, so the data path formats no text per record.
#[derive(Debug, Default)]
pub struct EnqueuedTimeText {
    second: Option<i64>,
    text: String,
}

impl EnqueuedTimeText {
    /// The text for a record's timestamp, `""` without one.
    pub fn of(&mut self, timestamp_ms: Option<i64>) -> &str {
        let Some(ms) = timestamp_ms else { return "" };
        let second = ms.div_euclid(1000);
        if self.second != Some(second) {
            self.text.clear();
            if let Some(t) = DateTime::from_timestamp(second, 0) {
                use std::fmt::Write;
                // Writing to a String cannot fail.
                let _ = write!(self.text, "{}", t.format(ENQUEUED_TIME_FORMAT));
            }
            self.second = Some(second);
        }
        &self.text
    }
}

/// .NET's invariant `DateTime.ToString()`, in chrono's terms.
const ENQUEUED_TIME_FORMAT: &str = "%-m/%-d/%Y %-I:%M:%S %p";

/// Formats a time like .NET's invariant `DateTime.ToString()`: `M/d/yyyy h:mm:ss tt`, no padding on
/// month, day or hour, a 12-hour clock, no fraction and no zone marker (the value is UTC).
pub fn format_enqueued_time(t: DateTime<Utc>) -> String {
    t.format(ENQUEUED_TIME_FORMAT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> String {
        format_enqueued_time(DateTime::from_timestamp_millis(ms).unwrap())
    }

    #[test]
    fn enqueued_time_matches_real_capture_values() {
        // Pairs taken from the real samples: x-opt-enqueued-time → EnqueuedTimeUtc.
        assert_eq!(at(1_667_324_167_168), "11/1/2022 5:36:07 PM");
        assert_eq!(
            at(DateTime::parse_from_rfc3339("2018-12-07T10:22:49.9Z")
                .unwrap()
                .timestamp_millis()),
            "12/7/2018 10:22:49 AM"
        );
    }

    #[test]
    fn enqueued_time_edges() {
        assert_eq!(at(0), "1/1/1970 12:00:00 AM");
        assert_eq!(at(12 * 3600 * 1000), "1/1/1970 12:00:00 PM");
        assert_eq!(at(13 * 3600 * 1000 + 5_000), "1/1/1970 1:00:05 PM");
        assert_eq!(at(-1), "12/31/1969 11:59:59 PM");
        assert_eq!(
            at(DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
                .unwrap()
                .timestamp_millis()),
            "12/31/9999 11:59:59 PM"
        );
    }

    #[test]
    fn missing_timestamp_gives_empty_string() {
        let e = Event {
            offset: 0,
            timestamp_ms: None,
            key: None,
            headers: vec![],
            value: None,
        };
        assert_eq!(e.enqueued_time_utc(), "");
        assert_eq!(e.time(), None);
    }
}
