//! Uploads: one object per window, streamed as it is encoded and published atomically.
//!
//! Bytes collect up to `part_size`; a file that stays smaller is written with one `put` when it
//! closes, a bigger one becomes a multipart upload whose parts go out while the window is still
//! open. Either way the object appears only when [`Upload::finish`] completes, and no reader ever
//! sees a partial file. Memory per upload: the buffer plus `max_parts_in_flight` parts; waiting for
//! a free slot is the backpressure point on the partition worker.
//!
//! A finished file never replaces an object it did not write: a whole-object put is a create
//! (`PutMode::Create`), and a multipart upload checks the name is free just before it completes
//! (stores complete multipart uploads unconditionally). An object already at the name is
//! accepted only when it holds exactly these bytes (same size and CRC32C): a replay of the same
//! intent, or a former owner's late upload. Anything else is [`object_store::Error::AlreadyExists`]
//! and nothing is written. Between that check and a multipart completion a concurrent writer of
//! the same name can still slip in; two archivers never share names unless an operator points
//! them at one output, which the checkpoints of each group then show.
//!
//! Whole-object puts and starting a multipart upload are retried under the upload's
//! [`RetryPolicy`]; a failed part cannot be sent again (its bytes are gone once sent), so it
//! fails the upload and the partition worker starts the window over from its checkpoint. Every
//! wait is bounded by the policy's attempt timeout, so a hung store fails instead of stalling.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};

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
    /// Bytes written so far.
    written: u64,
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
            written: 0,
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
        self.written += data.len() as u64;
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

    /// Publishes the object. After `Ok(Finish::Written)`, the object is durable and complete:
    /// these bytes, whether this upload wrote them or found them there. An object with other
    /// bytes at the name is left as it is and the upload handed back ([`Finish::Taken`]): the
    /// caller decides whether it may replace it.
    pub async fn finish(self) -> object_store::Result<Finish> {
        let size = self.size();
        let crc = self.crc32c();
        let taken = match self.state {
            State::Buffer { parts, .. } => {
                let payload: PutPayload = parts.into_iter().collect();
                let what = format!("writing {}", self.path);
                let created = retry(&self.retry, Operation::Upload, &what, || async {
                    let opts = PutOptions {
                        mode: PutMode::Create,
                        ..Default::default()
                    };
                    match self.store.put_opts(&self.path, payload.clone(), opts).await {
                        Ok(_) => Ok(true),
                        // Here too when an earlier attempt landed but its answer was lost.
                        Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                        Err(e) => Err(e),
                    }
                })
                .await?;
                if created {
                    return Ok(Finish::Written);
                }
                Pending::Put(payload)
            }
            State::Multipart(writer) => {
                // Completing a multipart upload replaces whatever is at the name on every store,
                // so the name is checked just before.
                let what = format!("checking {}", self.path);
                let found = retry(&self.retry, Operation::Head, &what, || async {
                    match self.store.head(&self.path).await {
                        Ok(_) => Ok(true),
                        Err(object_store::Error::NotFound { .. }) => Ok(false),
                        Err(e) => Err(e),
                    }
                })
                .await;
                match found {
                    Ok(false) => {
                        return bounded(self.retry.attempt_timeout, writer.finish())
                            .await
                            .map(|_| Finish::Written)
                    }
                    Ok(true) => Pending::Multipart(writer),
                    Err(e) => {
                        let _ = writer.abort().await;
                        return Err(e);
                    }
                }
            }
        };
        let taken = Taken {
            store: self.store,
            path: self.path,
            retry: self.retry,
            pending: taken,
        };
        match same_or_taken(&taken.store, &taken.path, size, &crc, &taken.retry).await {
            Ok(()) => {
                taken.abort().await;
                Ok(Finish::Written)
            }
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Finish::Taken(Box::new(taken))),
            Err(e) => {
                taken.abort().await;
                Err(e)
            }
        }
    }

    /// Bytes written so far.
    fn size(&self) -> u64 {
        self.written
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

/// How [`Upload::finish`] ended.
#[must_use]
pub enum Finish {
    /// The object holds the upload's bytes.
    Written,
    /// Another object with other bytes is at the name: nothing was written yet.
    Taken(Box<Taken>),
}

/// An upload whose name another object holds, not completed: [`Taken::replace`] puts it over
/// that object, [`Taken::abort`] drops it.
pub struct Taken {
    store: Arc<dyn ObjectStore>,
    path: Path,
    retry: RetryPolicy,
    pending: Pending,
}

enum Pending {
    Put(PutPayload),
    Multipart(WriteMultipart),
}

impl Taken {
    /// Replaces the object at the name with the upload's bytes.
    pub async fn replace(self) -> object_store::Result<()> {
        match self.pending {
            Pending::Put(payload) => {
                let what = format!("writing {}", self.path);
                retry(&self.retry, Operation::Upload, &what, || async {
                    self.store
                        .put(&self.path, payload.clone())
                        .await
                        .map(|_| ())
                })
                .await
            }
            Pending::Multipart(writer) => bounded(self.retry.attempt_timeout, writer.finish())
                .await
                .map(|_| ()),
        }
    }

    /// Drops the upload; the object at the name stays as it is.
    pub async fn abort(self) {
        if let Pending::Multipart(writer) = self.pending {
            if let Err(e) = writer.abort().await {
                tracing::warn!(path = %self.path, error = %e, "could not abort a multipart upload; the store will expire its parts");
            }
        }
    }
}

/// `Ok` when the object at `path` holds exactly `size` bytes with CRC32C `crc` (the same file,
/// written by an earlier attempt or a former owner); `AlreadyExists` when it holds others.
pub async fn same_or_taken(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    size: u64,
    crc: &str,
    policy: &RetryPolicy,
) -> object_store::Result<()> {
    let what = format!("reading {path}");
    let found = retry(policy, Operation::Read, &what, || async {
        let got: object_store::GetResult = store.get(path).await?;
        if got.meta.size != size {
            return Ok::<_, object_store::Error>(Some(got.meta.size));
        }
        let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.try_next().await? {
            digest.update(&chunk);
        }
        Ok::<_, object_store::Error>((crc32c_text(digest.finalize()) != crc).then_some(size))
    })
    .await?;
    match found {
        None => {
            tracing::debug!(%path, "the file was already there with the same bytes");
            Ok(())
        }
        Some(theirs) => Err(object_store::Error::AlreadyExists {
            path: path.to_string(),
            source: format!(
                "another object is at this name ({theirs} bytes, not the {size} bytes written here, or other bytes of that size)"
            )
            .into(),
        }),
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
            assert!(matches!(up.finish().await.unwrap(), Finish::Written));
            let got = store.get(&path).await.unwrap().bytes().await.unwrap();
            assert_eq!(&got[..], &expected[..], "{name}");
        }
    }

    /// A finished file never replaces another object: the same bytes are accepted (a replay),
    /// other bytes fail with `AlreadyExists` and stay, on every store and upload kind.
    #[tokio::test]
    async fn uploads_create_and_never_replace_other_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let local = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let stores: [(&str, Arc<dyn ObjectStore>); 2] = [
            ("memory", Arc::new(InMemory::new())),
            ("local", Arc::new(crate::store::local::LocalCas::new(local))),
        ];
        for (kind, store) in stores {
            for (name, part_size) in [("small", 1 << 20), ("multi", 64)] {
                let upload = |bytes: Vec<u8>| {
                    let store = store.clone();
                    async move {
                        let mut up = Upload::new(store, Path::from(name), part_size, 2);
                        up.write(bytes.into()).await.unwrap();
                        match up.finish().await? {
                            Finish::Written => Ok(()),
                            Finish::Taken(taken) => {
                                taken.abort().await;
                                Err(object_store::Error::AlreadyExists {
                                    path: name.into(),
                                    source: "taken".into(),
                                })
                            }
                        }
                    }
                };
                let ours = vec![7u8; 500];
                upload(ours.clone()).await.unwrap();
                upload(ours.clone())
                    .await
                    .unwrap_or_else(|e| panic!("{kind}/{name}: the same bytes again: {e}"));
                for theirs in [vec![8u8; 500], vec![7u8; 501]] {
                    let err = upload(theirs).await.unwrap_err();
                    assert!(
                        matches!(err, object_store::Error::AlreadyExists { .. }),
                        "{kind}/{name}: {err}"
                    );
                }
                let got = store.get(&Path::from(name)).await.unwrap().bytes().await;
                assert_eq!(&got.unwrap()[..], &ours[..], "{kind}/{name}: replaced");
            }
        }
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["multi", "small"], "no lock or temporary files left");
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
