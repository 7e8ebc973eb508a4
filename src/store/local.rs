//! Compare-and-swap on a local directory. object_store's local store cannot update an object
//! only if it is unchanged, so [`LocalCas`] adds that to it: a conditional put (create, or update
//! at a version) takes an exclusive lock on a sibling `.lock` file, compares the file's e-tag (the
//! local store's own, from inode, modification time and size) with the one expected, then writes
//! a temporary file, syncs it and renames it over the file. Every other call goes to the local
//! store unchanged. Being an `ObjectStore` itself, it is seen whole by what wraps it (a
//! `FaultyStore` in the tests).

use std::fmt;
use std::io::Write;
use std::ops::Range;
use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// A local directory with compare-and-swap.
#[derive(Debug)]
pub struct LocalCas {
    inner: LocalFileSystem,
}

impl LocalCas {
    pub fn new(inner: LocalFileSystem) -> Self {
        LocalCas { inner }
    }

    /// A conditional put: `expected` is `None` for a create, the version read for an update.
    async fn put_if(
        &self,
        location: &Path,
        payload: PutPayload,
        expected: Option<Option<String>>,
    ) -> Result<PutResult> {
        let file = self.inner.path_to_filesystem(location)?;
        let io = |source: std::io::Error| object_store::Error::Generic {
            store: "LocalCas",
            source: Box::new(source),
        };
        let locked = file.clone();
        let _lock = blocking(move || lock(&locked)).await.map_err(io)?;
        let current = match self.inner.head(location).await {
            Ok(meta) => Some(meta.e_tag),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        match (expected, current) {
            (None, Some(_)) => {
                return Err(object_store::Error::AlreadyExists {
                    path: location.to_string(),
                    source: "the file exists".into(),
                })
            }
            (Some(want), now) if now.as_ref() != Some(&want) => {
                return Err(object_store::Error::Precondition {
                    path: location.to_string(),
                    source: "the file changed since it was read".into(),
                })
            }
            _ => {}
        }
        let data: Vec<Bytes> = payload.iter().cloned().collect();
        blocking(move || replace(&file, &data)).await.map_err(io)?;
        let meta = self.inner.head(location).await?;
        Ok(PutResult {
            e_tag: meta.e_tag,
            version: None,
            extensions: Default::default(),
        })
    }
}

impl LocalCas {
    /// A create: written to a temporary file, synced, then hard-linked to its name, which fails
    /// if the name exists. Atomic without a lock file, so data files get no `.lock` beside them.
    async fn create(&self, location: &Path, payload: PutPayload) -> Result<PutResult> {
        let file = self.inner.path_to_filesystem(location)?;
        let data: Vec<Bytes> = payload.iter().cloned().collect();
        let created = blocking(move || create_new(&file, &data)).await;
        match created {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(object_store::Error::AlreadyExists {
                    path: location.to_string(),
                    source: "the file exists".into(),
                })
            }
            Err(source) => {
                return Err(object_store::Error::Generic {
                    store: "LocalCas",
                    source: Box::new(source),
                })
            }
        }
        let meta = self.inner.head(location).await?;
        Ok(PutResult {
            e_tag: meta.e_tag,
            version: None,
            extensions: Default::default(),
        })
    }
}

/// Writes `data` to a temporary file, syncs it and links it to `file` unless `file` exists.
fn create_new(file: &std::path::Path, data: &[Bytes]) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        for chunk in data {
            f.write_all(chunk)?;
        }
        f.sync_all()?;
        std::fs::hard_link(&tmp, file)
    })();
    let _ = std::fs::remove_file(&tmp);
    written?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)?
}

/// An exclusive lock on `file`'s sibling `.lock` file, held until the returned file is dropped.
fn lock(file: &std::path::Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut name = file.as_os_str().to_owned();
    name.push(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(name)?;
    lock.lock()?;
    Ok(lock)
}

/// Writes `data` to a temporary file, syncs it, renames it over `file` and syncs the directory.
fn replace(file: &std::path::Path, data: &[Bytes]) -> std::io::Result<()> {
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    for chunk in data {
        f.write_all(chunk)?;
    }
    f.sync_all()?;
    std::fs::rename(&tmp, file)?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl fmt::Display for LocalCas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalCas({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for LocalCas {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        match opts.mode {
            PutMode::Overwrite => self.inner.put_opts(location, payload, opts).await,
            PutMode::Create => self.create(location, payload).await,
            PutMode::Update(version) => self.put_if(location, payload, Some(version.e_tag)).await,
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
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
