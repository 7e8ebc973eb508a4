//! A fault-injecting [`ObjectStore`] wrapper, for tests and failure drills.
//!
//! It fails a share of requests before they reach the store, "loses the answer" of a share of
//! writes (the store applied the write, the caller sees an error: the case that makes
//! compare-and-swap retries ambiguous), fails multipart parts and completions, adds latency and
//! hangs a share of writes outright. Checkpoint writes (`.json` objects) have their own error
//! rate. Every injected fault is counted. [`FaultCounts::stall_writes`] holds back every write
//! to some paths (one partition's files, say) until it is called again: a store that is slow for
//! one part of the archive only.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::FutureExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result, UploadPart,
};

/// Fault rates (0.0–1.0 per request) and latency.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Writes of data and manifests failed before reaching the store.
    pub write_error: f64,
    /// Checkpoint (`.json`) writes failed before reaching the store.
    pub checkpoint_error: f64,
    /// Writes applied by the store whose answer is then lost (the caller sees an error).
    pub lost_answer: f64,
    /// Multipart parts and completions that fail.
    pub part_error: f64,
    /// Reads (get, head) that fail.
    pub read_error: f64,
    /// Writes that never answer (the caller's timeout has to end them).
    pub hang: f64,
    /// Each request waits a random time up to this first.
    pub max_latency: Duration,
}

/// How many faults were injected, by kind.
#[derive(Debug)]
pub struct FaultCounts {
    pub write_errors: AtomicU64,
    pub checkpoint_errors: AtomicU64,
    pub lost_answers: AtomicU64,
    pub part_errors: AtomicU64,
    pub read_errors: AtomicU64,
    pub hangs: AtomicU64,
    /// While false, no fault is injected.
    pub enabled: AtomicBool,
    /// Writes to paths containing this wait until it is cleared.
    stalled: std::sync::Mutex<Option<String>>,
}

impl Default for FaultCounts {
    fn default() -> Self {
        FaultCounts {
            write_errors: AtomicU64::new(0),
            checkpoint_errors: AtomicU64::new(0),
            lost_answers: AtomicU64::new(0),
            part_errors: AtomicU64::new(0),
            read_errors: AtomicU64::new(0),
            hangs: AtomicU64::new(0),
            enabled: AtomicBool::new(true),
            stalled: std::sync::Mutex::new(None),
        }
    }
}

impl FaultCounts {
    /// Turns fault injection on or off.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Holds back every write (put, multipart start and completion) to a path containing
    /// `fragment` until called again with `None`.
    pub fn stall_writes(&self, fragment: Option<&str>) {
        *self.stalled.lock().unwrap_or_else(|e| e.into_inner()) = fragment.map(str::to_string);
    }

    async fn wait_unless_stalled(&self, location: &Path) {
        let stalled = || {
            self.stalled
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_deref()
                .is_some_and(|f| location.as_ref().contains(f))
        };
        while stalled() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn roll(&self, rate: f64) -> bool {
        self.enabled.load(Ordering::Relaxed) && rate > 0.0 && rand::random::<f64>() < rate
    }

    pub fn total(&self) -> u64 {
        [
            &self.write_errors,
            &self.checkpoint_errors,
            &self.lost_answers,
            &self.part_errors,
            &self.read_errors,
            &self.hangs,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        write!(
            f,
            "{} faults: {} write errors, {} checkpoint write errors, {} lost answers, {} part errors, {} read errors, {} hangs",
            self.total(),
            n(&self.write_errors),
            n(&self.checkpoint_errors),
            n(&self.lost_answers),
            n(&self.part_errors),
            n(&self.read_errors),
            n(&self.hangs)
        )
    }
}

#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    faults: Faults,
    counts: Arc<FaultCounts>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>, faults: Faults) -> Self {
        FaultyStore {
            inner,
            faults,
            counts: Arc::default(),
        }
    }

    pub fn counts(&self) -> Arc<FaultCounts> {
        self.counts.clone()
    }

    async fn latency(&self) {
        if !self.faults.max_latency.is_zero() {
            let d = self.faults.max_latency.mul_f64(rand::random::<f64>());
            tokio::time::sleep(d).await;
        }
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

fn injected(what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "FaultyStore",
        source: format!("injected fault: {what}").into(),
    }
}

fn count(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.latency().await;
        self.counts.wait_unless_stalled(location).await;
        let checkpoint = location.as_ref().ends_with(".json");
        if self.counts.roll(self.faults.hang) {
            count(&self.counts.hangs);
            std::future::pending::<()>().await;
        }
        if checkpoint && self.counts.roll(self.faults.checkpoint_error) {
            count(&self.counts.checkpoint_errors);
            return Err(injected("checkpoint write failed"));
        }
        if !checkpoint && self.counts.roll(self.faults.write_error) {
            count(&self.counts.write_errors);
            return Err(injected("write failed"));
        }
        let result = self.inner.put_opts(location, payload, opts).await?;
        if self.counts.roll(self.faults.lost_answer) {
            count(&self.counts.lost_answers);
            return Err(injected("write applied, answer lost"));
        }
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.latency().await;
        self.counts.wait_unless_stalled(location).await;
        if self.counts.roll(self.faults.write_error) {
            count(&self.counts.write_errors);
            return Err(injected("starting a multipart upload failed"));
        }
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FaultyUpload {
            inner,
            location: location.clone(),
            faults: self.faults,
            counts: self.counts.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.latency().await;
        if self.counts.roll(self.faults.read_error) {
            count(&self.counts.read_errors);
            return Err(injected("read failed"));
        }
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[derive(Debug)]
struct FaultyUpload {
    inner: Box<dyn MultipartUpload>,
    location: Path,
    faults: Faults,
    counts: Arc<FaultCounts>,
}

#[async_trait]
impl MultipartUpload for FaultyUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        if self.counts.roll(self.faults.part_error) {
            count(&self.counts.part_errors);
            return async { Err(injected("part upload failed")) }.boxed();
        }
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        self.counts.wait_unless_stalled(&self.location).await;
        if self.counts.roll(self.faults.part_error) {
            count(&self.counts.part_errors);
            return Err(injected("completing a multipart upload failed"));
        }
        let result = self.inner.complete().await?;
        if self.counts.roll(self.faults.lost_answer) {
            count(&self.counts.lost_answers);
            return Err(injected("multipart upload completed, answer lost"));
        }
        Ok(result)
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}
