//! The roll policy: when a partition's open file closes. Pure functions of the window's state and
//! the time, so they are table-tested; the partition worker sleeps until [`RollPolicy::deadline`].

use std::time::Duration;

use tokio::time::Instant;

/// Why a window closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RollReason {
    /// The next record would take the file past the size window.
    Size,
    /// The time window passed.
    Time,
    /// `--once` reached the end offset taken at start.
    End,
    /// The partition was revoked or the process is stopping.
    Stop,
}

/// The size and time windows; the first one reached closes the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollPolicy {
    pub max_bytes: u64,
    pub max_age: Duration,
}

impl RollPolicy {
    /// Whether a file of `size` bytes holding `records` records must close before a record of
    /// `next` encoded bytes joins it. A record bigger than the size window still goes into an
    /// empty file: it gets a file of its own.
    pub fn roll_before(&self, records: u64, size_with_next: u64) -> Option<RollReason> {
        (records > 0 && size_with_next > self.max_bytes).then_some(RollReason::Size)
    }

    /// Whether a file of `size` bytes must close now that a record has joined it.
    pub fn roll_after(&self, size: u64) -> Option<RollReason> {
        (size >= self.max_bytes).then_some(RollReason::Size)
    }

    /// When the window opened at `opened` closes on time.
    pub fn deadline(&self, opened: Instant) -> Instant {
        opened + self.max_age
    }

    /// Whether the window opened at `opened` has passed its time at `now`.
    pub fn expired(&self, opened: Instant, now: Instant) -> Option<RollReason> {
        (now >= self.deadline(opened)).then_some(RollReason::Time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RollPolicy = RollPolicy {
        max_bytes: 1000,
        max_age: Duration::from_secs(60),
    };

    #[test]
    fn size_decisions() {
        // (records already in the file, size including the next record, expected)
        let table = [
            (0, 10, None),
            (0, 5000, None), // an oversized record still enters an empty file
            (3, 999, None),
            (3, 1000, None),
            (3, 1001, Some(RollReason::Size)),
        ];
        for (records, size, expected) in table {
            assert_eq!(
                POLICY.roll_before(records, size),
                expected,
                "{records} {size}"
            );
        }
        assert_eq!(POLICY.roll_after(999), None);
        assert_eq!(POLICY.roll_after(1000), Some(RollReason::Size));
        assert_eq!(POLICY.roll_after(5000), Some(RollReason::Size));
    }

    #[test]
    fn time_decisions() {
        let opened = Instant::now();
        assert_eq!(POLICY.expired(opened, opened), None);
        assert_eq!(
            POLICY.expired(opened, opened + Duration::from_secs(59)),
            None
        );
        assert_eq!(
            POLICY.expired(opened, opened + Duration::from_secs(60)),
            Some(RollReason::Time)
        );
        assert_eq!(POLICY.deadline(opened), opened + Duration::from_secs(60));
    }
}
