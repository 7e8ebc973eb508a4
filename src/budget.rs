//! One memory budget for the whole instance (`--memory-limit`).
//!
//! The budget is split once, at start, by what each part was measured to cost in resident
//! memory (256 partitions on Apache Kafka; see the README's Memory section):
//! - librdkafka's prefetch queue (`queued.max.messages.kbytes`, and `fetch.max.bytes`, so that
//!   one fetch response cannot overshoot it) gets a thirty-second. What librdkafka holds for it
//!   costs several times its payload (whole fetch buffers kept alive by the records in them,
//!   and per-record bookkeeping), about a sixth of the budget. (A sixty-fourth left the
//!   consumer waiting for the next fetch: Avro/null 5-10 % slower at 256 partitions.)
//! - The data path gets three eighths, counted as it is used, per batch and per part, never per
//!   record:
//!   - open files (each one's Avro block or Parquet row group, its upload parts buffered and in
//!     flight), each sized at start from its share, so that together they hold about half;
//!   - records polled and waiting for their partition's worker get what open files leave, and
//!     never less than an eighth. While they hold that much the consumer stops polling
//!     records (librdkafka stops fetching at its own bound), for a second at most, then pauses
//!     every partition of its topic; both end once the workers took three quarters of it.
//!     Workers always take their input, so paused partitions always resume, even when open
//!     files hold more than their half (a store's minimum part size can force that: see
//!     [`crate::store::Location::min_part_size_for`]).
//! - The other half is the process around the counted bytes: encoding's scratch memory,
//!   batches kept for reuse, the allocator's free pages, threads.
//!
//! Nothing is dropped or reordered: a paused partition's records wait, in order, in librdkafka
//! (which stops fetching them) or in the consumer's pending input.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// The smallest `--memory-limit`: librdkafka's share and a few open files.
pub const MIN_LIMIT: u64 = 32 << 20;

#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    /// Records polled and not yet taken by their worker.
    queued: AtomicUsize,
    /// Open files' blocks, row groups and upload parts.
    files: AtomicUsize,
    /// Whether [`MemoryBudget::check_file`] warned already.
    warned: AtomicBool,
}

/// What a [`Charge`] counts.
#[derive(Debug, Clone, Copy)]
pub enum Use {
    /// Records waiting for their worker.
    Queued,
    /// An open file.
    File,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit,
            queued: AtomicUsize::new(0),
            files: AtomicUsize::new(0),
            warned: AtomicBool::new(false),
        })
    }

    /// The whole budget.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// librdkafka's prefetch queue in KiB (`queued.max.messages.kbytes`, also the bound of one
    /// fetch response): a thirty-second of the budget, at least 1 MiB.
    pub fn prefetch_kbytes(&self) -> usize {
        (self.limit / 32 / 1024).max(1024)
    }

    /// What the data path may hold: three eighths of the budget.
    pub fn data_limit(&self) -> usize {
        self.limit / 8 * 3
    }

    /// One of `files` open files' share of the data path; a file is sized to hold about half of
    /// it, the other half is for records waiting.
    pub fn share(&self, files: usize) -> usize {
        self.data_limit() / files.max(1)
    }

    /// Warns, once, when `files` open files of at most `need` bytes each (never less than the
    /// store's minimum upload part and the encoder's minimum block or row group) may hold more
    /// than half the budget: memory may then exceed it.
    pub fn check_file(&self, files: usize, need: usize) -> bool {
        let fits = need.saturating_mul(files.max(1)) <= self.limit / 2;
        if !fits && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                files,
                "--memory-limit {}: {files} open files need at least {} each ({} in all), more than half the budget, so memory use may exceed the limit; raise --memory-limit or spread the partitions over more instances",
                mib(self.limit),
                mib(need),
                mib(need.saturating_mul(files)),
            );
        }
        fits
    }

    /// Bytes counted now.
    pub fn used(&self) -> usize {
        self.queued() + self.files.load(Ordering::Relaxed)
    }

    fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// What records waiting for their workers may hold: what open files leave of the data
    /// path, at least an eighth of it.
    fn queue_limit(&self) -> usize {
        let data = self.data_limit();
        data.saturating_sub(self.files.load(Ordering::Relaxed))
            .max(data / 8)
    }

    /// Whether records waiting hold their whole part: time to pause fetching.
    pub fn exhausted(&self) -> bool {
        self.queued() >= self.queue_limit()
    }

    /// Whether the workers took three quarters of what was waiting: time to resume.
    pub fn recovered(&self) -> bool {
        self.queued() < self.queue_limit() / 4
    }

    fn counter(&self, what: Use) -> &AtomicUsize {
        match what {
            Use::Queued => &self.queued,
            Use::File => &self.files,
        }
    }
}

fn mib(bytes: usize) -> String {
    format!("{:.1}MiB", bytes as f64 / (1 << 20) as f64)
}

/// Bytes counted against a budget until dropped.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<MemoryBudget>,
    what: Use,
    bytes: usize,
}

impl Charge {
    pub fn new(budget: &Arc<MemoryBudget>, what: Use) -> Charge {
        Charge {
            budget: budget.clone(),
            what,
            bytes: 0,
        }
    }

    /// Counts `bytes` instead of what was counted so far.
    pub fn set(&mut self, bytes: usize) {
        let counter = self.budget.counter(self.what);
        if bytes > self.bytes {
            counter.fetch_add(bytes - self.bytes, Ordering::Relaxed);
        } else {
            counter.fetch_sub(self.bytes - bytes, Ordering::Relaxed);
        }
        self.bytes = bytes;
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_count_until_dropped() {
        let budget = MemoryBudget::new(256 << 20);
        assert_eq!(budget.data_limit(), 96 << 20);
        assert_eq!(budget.prefetch_kbytes(), 8 << 10);
        let mut a = Charge::new(&budget, Use::Queued);
        a.set(60 << 20);
        let mut b = Charge::new(&budget, Use::Queued);
        b.set(60 << 20);
        assert!(budget.exhausted());
        b.set(0);
        assert!(!budget.exhausted() && !budget.recovered());
        drop(a);
        assert_eq!(budget.used(), 0);
        assert!(budget.recovered());
    }

    #[test]
    fn open_files_leave_records_at_least_an_eighth() {
        let budget = MemoryBudget::new(256 << 20);
        let mut files = Charge::new(&budget, Use::File);
        let mut queued = Charge::new(&budget, Use::Queued);
        files.set(48 << 20);
        queued.set(47 << 20);
        assert!(!budget.exhausted(), "open files leave 48 MiB");
        queued.set(48 << 20);
        assert!(budget.exhausted());
        // Open files holding more than the data path (a store's minimum part size): records
        // still get an eighth, and fetching resumes once the workers took them.
        files.set(200 << 20);
        queued.set(11 << 20);
        assert!(!budget.exhausted());
        queued.set(12 << 20);
        assert!(budget.exhausted());
        queued.set(2 << 20);
        assert!(budget.recovered());
        assert_eq!(budget.used(), 202 << 20);
    }

    #[test]
    fn files_that_cannot_fit_are_reported() {
        let budget = MemoryBudget::new(256 << 20);
        assert!(budget.check_file(256, 256 << 10));
        // Parquet on S3: a 256 KiB row group and three 5 MiB parts per file.
        assert!(!budget.check_file(256, (256 << 10) + 3 * (5 << 20)));
        assert!(budget.check_file(4, (256 << 10) + 3 * (5 << 20)));
    }

    #[test]
    fn a_small_budget_keeps_a_minimum_prefetch() {
        let budget = MemoryBudget::new(MIN_LIMIT as usize);
        assert_eq!(budget.prefetch_kbytes(), 1024);
        assert_eq!(budget.share(4), 3 << 20);
    }
}
