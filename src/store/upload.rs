//! Uploads: one object per window, streamed as it is encoded and published atomically.
//!
//! Bytes collect up to `part_size`; a file that stays smaller is written with one `put` when it
//! closes, a bigger one becomes a multipart upload whose parts go out while the window is still
//! open. Either way the object appears only when [`Upload::finish`] completes, and no reader ever
//! sees a partial file. Memory per upload: the buffer plus `max_parts_in_flight` parts; waiting for
//! a free slot is the backpressure point on the partition worker.
//!
//! Whole-object puts and starting a multipart upload are retried under the upload's
//! [`RetryPolicy`]; a failed part cannot be sent again (its bytes are gone once sent), so it
//! fails the upload and the partition worker starts the window over from its checkpoint. Every
//! wait is bounded by the policy's attempt timeout, so a hung store fails instead of stalling.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::store::retry::{retry, Operation, RetryPolicy, Transient};

/// A CRC32C (Castagnoli) as S3's `ChecksumCRC32C` and GCS's `crc32c` show it: base64 of its four
/// big-endian bytes.
pub fn crc32c_text(crc: u64) -> String {
    use base64::Engine as _;
    let crc = u32::try_from(crc).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())
}

/// The CRC32C of `data`, as [`crc32c_text`] shows it.
pub fn crc32c_of(data: &[u8]) -> String {
    crc32c_text(crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data))
}

pub struct Upload {
    store: Arc<dyn ObjectStore>,
    path: Path,
    part_size: usize,
    max_parts_in_flight: usize,
    retry: RetryPolicy,
    state: State,
    /// CRC32C of the bytes written so far.
    crc: crc_fast::Digest,
}

enum State {
    Buffer { parts: Vec<Bytes>, len: usize },
    Multipart(WriteMultipart),
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Upload {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        path: Path,
        part_size: usize,
        max_parts_in_flight: usize,
    ) -> Self {
        Upload {
            store,
            path,
            part_size,
            max_parts_in_flight: max_parts_in_flight.max(1),
            retry: RetryPolicy::default(),
            state: State::Buffer {
                parts: Vec::new(),
                len: 0,
            },
            crc: crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi),
        }
    }

    /// The CRC32C of the bytes written so far, as S3 and GCS give an object's: the four bytes
    /// (big-endian) in base64.
    pub fn crc32c(&self) -> String {
        crc32c_text(self.crc.finalize())
    }

    /// Retries and time bounds for this upload's requests.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Memory the upload holds, about: what it buffered, or once multipart, a part filling and
    /// the parts in flight.
    pub fn held_bytes(&self) -> usize {
        match &self.state {
            State::Buffer { len, .. } => *len,
            State::Multipart(_) => self.part_size * (1 + self.max_parts_in_flight),
        }
    }

    /// Adds bytes to the object; may wait for an in-flight part to finish.
    pub async fn write(&mut self, data: Bytes) -> object_store::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.crc.update(&data);
        match &mut self.state {
            State::Buffer { parts, len } if *len + data.len() < self.part_size => {
                *len += data.len();
                parts.push(data);
            }
            State::Buffer { parts, .. } => {
                let what = format!("starting the upload of {}", self.path);
                let upload = retry(&self.retry, Operation::Upload, &what, || {
                    self.store.put_multipart(&self.path)
                })
                .await?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
                for part in parts.drain(..) {
                    writer.put(part);
                }
                writer.put(data);
                self.state = State::Multipart(writer);
            }
            State::Multipart(writer) => {
                bounded(
                    self.retry.attempt_timeout,
                    writer.wait_for_capacity(self.max_parts_in_flight),
                )
                .await?;
                writer.put(data);
            }
        }
        Ok(())
    }

    /// Publishes the object. After this returns `Ok`, the object is durable and complete.
    pub async fn finish(self) -> object_store::Result<()> {
        match self.state {
            State::Buffer { parts, .. } => {
                let payload: PutPayload = parts.into_iter().collect();
                let what = format!("writing {}", self.path);
                retry(&self.retry, Operation::Upload, &what, || async {
                    self.store
                        .put(&self.path, payload.clone())
                        .await
                        .map(|_| ())
                })
                .await
            }
            State::Multipart(writer) => bounded(self.retry.attempt_timeout, writer.finish())
                .await
                .map(|_| ()),
        }
    }

    /// Drops the object's uploaded parts, if any; nothing was published.
    pub async fn abort(self) {
        if let State::Multipart(writer) = self.state {
            if let Err(e) = writer.abort().await {
                tracing::warn!(path = %self.path, error = %e, "could not abort a multipart upload; the store will expire its parts");
            }
        }
    }
}

/// `fut`, or a timeout error once `limit` passed.
async fn bounded<T>(
    limit: std::time::Duration,
    fut: impl std::future::Future<Output = object_store::Result<T>>,
) -> object_store::Result<T> {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| Err(object_store::Error::timed_out(limit)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn small_and_multipart_uploads_publish_the_same_bytes() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        for (name, part_size) in [("small", 1 << 20), ("multi", 64)] {
            let path = Path::from(name);
            let mut up = Upload::new(store.clone(), path.clone(), part_size, 2);
            let mut expected = Vec::new();
            for i in 0..50u8 {
                let chunk = vec![i; 10 + i as usize];
                expected.extend_from_slice(&chunk);
                up.write(chunk.into()).await.unwrap();
            }
            assert!(
                store.head(&path).await.is_err(),
                "{name}: visible before finish"
            );
            up.finish().await.unwrap();
            let got = store.get(&path).await.unwrap().bytes().await.unwrap();
            assert_eq!(&got[..], &expected[..], "{name}");
        }
    }

    #[tokio::test]
    async fn aborted_upload_publishes_nothing() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let path = Path::from("aborted");
        let mut up = Upload::new(store.clone(), path.clone(), 16, 2);
        up.write(vec![1; 100].into()).await.unwrap();
        up.abort().await;
        assert!(store.head(&path).await.is_err());
    }
}
