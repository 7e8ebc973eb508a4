//! A Parquet file in an object store, read a row group at a time: the row group's bytes are
//! fetched in one request and held while the reader decodes it; anything else it asks for (the
//! footer) is fetched as asked.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};

use crate::store::StoreKind;

/// How to fetch ranges of objects from the reading thread.
#[derive(Clone)]
pub struct Fetcher {
    pub store: Arc<dyn ObjectStore>,
    pub kind: StoreKind,
    pub runtime: tokio::runtime::Handle,
}

impl Fetcher {
    /// A range of an object, read on this thread (not a runtime's). A local store reads on
    /// tokio's blocking pool when it runs in the runtime's context: the buffer would then be
    /// allocated by a pool thread that rarely allocates again, and freed here; the allocator
    /// reclaims such frees only when their thread allocates, so they piled up to most of the
    /// archive (300 MB resident with a 32 MiB budget). Outside the runtime's context it reads
    /// right here. Other stores need the runtime.
    pub fn get(&self, path: &Path, range: Range<u64>) -> object_store::Result<Bytes> {
        let get = self.store.get_range(path, range);
        match self.kind {
            StoreKind::Local | StoreKind::Memory => futures::executor::block_on(get),
            _ => self.runtime.block_on(get),
        }
    }
}

/// One Parquet object, with the bytes of the row group being read.
#[derive(Clone)]
pub struct Ranged(Arc<Inner>);

struct Inner {
    fetcher: Fetcher,
    path: Path,
    size: u64,
    /// The held range's start and bytes.
    held: Mutex<Option<(u64, Bytes)>>,
}

impl Ranged {
    pub fn new(fetcher: Fetcher, path: Path, size: u64) -> Ranged {
        Ranged(Arc::new(Inner {
            fetcher,
            path,
            size,
            held: Mutex::new(None),
        }))
    }

    /// Fetches `range` and holds it (instead of what was held).
    pub fn hold(&self, range: Range<u64>) -> object_store::Result<()> {
        let start = range.start;
        let bytes = self.0.fetcher.get(&self.0.path, range)?;
        *self.held() = Some((start, bytes));
        Ok(())
    }

    /// Lets go of the held range.
    pub fn release(&self) {
        *self.held() = None;
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<(u64, Bytes)>> {
        self.0.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `length` bytes from `start`: from the held range when it has them, else fetched.
    fn bytes(&self, start: u64, length: u64) -> parquet::errors::Result<Bytes> {
        let end = start.saturating_add(length).min(self.0.size);
        if let Some((at, held)) = self.held().as_ref() {
            if start >= *at && end <= at + held.len() as u64 {
                return Ok(held.slice((start - at) as usize..(end - at) as usize));
            }
        }
        self.0
            .fetcher
            .get(&self.0.path, start..end)
            .map_err(|e| ParquetError::External(Box::new(e)))
    }
}

impl Length for Ranged {
    fn len(&self) -> u64 {
        self.0.size
    }
}

impl ChunkReader for Ranged {
    type T = bytes::buf::Reader<Bytes>;

    /// A reader from `start`: to the end of the held range when it holds `start` (page headers
    /// within the row group), else of the next 64 KiB.
    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let held_end = self.held().as_ref().and_then(|(at, held)| {
            let end = at + held.len() as u64;
            (start >= *at && start < end).then_some(end)
        });
        let length = held_end.map_or(64 << 10, |end| end - start);
        Ok(self.bytes(start, length)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.bytes(start, length as u64)
    }
}
