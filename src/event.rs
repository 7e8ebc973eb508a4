//! The record mapping: one Kafka record, owned, in the shape the Capture schema needs.
//!
//! | Capture field      | from the Kafka record                                                |
//! |--------------------|----------------------------------------------------------------------|
//! | `SequenceNumber`   | offset                                                               |
//! | `Offset`           | offset as a decimal string                                           |
//! | `EnqueuedTimeUtc`  | timestamp, UTC, `M/d/yyyy h:mm:ss tt` (empty when the record has none) |
//! | `SystemProperties` | `x-opt-enqueued-time` (long, epoch ms) when the record has a timestamp; `x-opt-partition-key` = key, `string` when UTF-8, `bytes` otherwise |
//! | `Properties`       | headers, `bytes` values; a header without a value is the `null` branch |
//! | `Body`             | value bytes; `null` for a tombstone                                  |

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
    /// Bytes of key, value and headers, for memory accounting.
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len)
            + self.value.as_ref().map_or(0, Vec::len)
            + self
                .headers
                .iter()
                .map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len))
                .sum::<usize>()
    }

    pub fn enqueued_time_utc(&self) -> String {
        self.time().map(format_enqueued_time).unwrap_or_default()
    }
}

/// Formats a time like .NET's invariant `DateTime.ToString()`: `M/d/yyyy h:mm:ss tt`, no padding on
/// month, day or hour, a 12-hour clock, no fraction and no zone marker (the value is UTC).
pub fn format_enqueued_time(t: DateTime<Utc>) -> String {
    t.format("%-m/%-d/%Y %-I:%M:%S %p").to_string()
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
