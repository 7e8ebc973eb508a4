//! Storage locations: `--output` / `--checkpoints` URLs turned into an `ObjectStore` and a prefix,
//! and the compare-and-swap primitive checkpoints are written with.
//!
//! Cloud stores get their credentials from the standard environment variables of their
//! object_store builder (`AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`,
//! `AZURE_STORAGE_SAS_KEY`, `AZURE_STORAGE_USE_EMULATOR`, `AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT`,
//! `GOOGLE_SERVICE_ACCOUNT`, …).

pub mod conformance;
pub mod faults;
pub mod local;
pub mod retry;
pub mod upload;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    BackoffConfig, ObjectMeta, ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutMode, PutOptions,
    PutPayload, RetryConfig, UpdateVersion,
};
use url::Url;

use crate::store::local::LocalCas;
use crate::store::retry::{retry, Operation, RetryPolicy, Transient};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{flag} {url:?}: unsupported URL scheme; use a local path or a file://, az://, abfss://, s3://, gs:// or memory:// URL")]
    Scheme { flag: &'static str, url: String },
    #[error(
        "{flag} {url:?}: not a valid URL ({source}); use a local path or e.g. s3://bucket/prefix"
    )]
    Url {
        flag: &'static str,
        url: String,
        source: url::ParseError,
    },
    #[error("{flag} {url:?}: cannot create the local directory: {source}")]
    LocalDir {
        flag: &'static str,
        url: String,
        source: std::io::Error,
    },
    #[error("{flag} {url:?}: {source}")]
    Builder {
        flag: &'static str,
        url: String,
        source: object_store::Error,
    },
}

/// The kinds of store a location can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Local,
    Memory,
    S3,
    Azure,
    Gcs,
}

/// A place in a store: the store and the prefix every name is written under.
#[derive(Debug, Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Path,
    /// The URL as given, without query string or credentials, for messages.
    pub display: String,
    /// What kind of store it is: stores differ in the upload parts they take.
    pub kind: StoreKind,
    /// How operations on this location retry transient errors.
    pub retry: RetryPolicy,
}

impl Location {
    /// Opens `spec`, a local path or a URL. `flag` names the option in error messages.
    pub fn open(spec: &str, flag: &'static str) -> Result<Location, StoreError> {
        if !spec.contains("://") {
            return Self::local(PathBuf::from(spec), spec, flag);
        }
        let url = Url::parse(spec).map_err(|source| StoreError::Url {
            flag,
            url: redact_url(spec),
            source,
        })?;
        let display = redact_url(spec);
        if url.scheme() == "file" {
            let dir = url.to_file_path().map_err(|()| StoreError::Scheme {
                flag,
                url: display.clone(),
            })?;
            return Self::local(dir, spec, flag);
        }
        let (scheme, path) = ObjectStoreScheme::parse(&url).map_err(|_| StoreError::Scheme {
            flag,
            url: display.clone(),
        })?;
        let builder_err = |source| StoreError::Builder {
            flag,
            url: display.clone(),
            source,
        };
        let store: Arc<dyn ObjectStore> = match scheme {
            ObjectStoreScheme::Memory => Arc::new(InMemory::new()),
            ObjectStoreScheme::AmazonS3 => Arc::new(
                AmazonS3Builder::from_env()
                    .with_retry(http_retry())
                    .with_url(spec)
                    .build()
                    .map_err(builder_err)?,
            ),
            ObjectStoreScheme::MicrosoftAzure => Arc::new(
                MicrosoftAzureBuilder::from_env()
                    .with_retry(http_retry())
                    .with_url(spec)
                    .build()
                    .map_err(builder_err)?,
            ),
            ObjectStoreScheme::GoogleCloudStorage => Arc::new(
                GoogleCloudStorageBuilder::from_env()
                    .with_retry(http_retry())
                    .with_url(spec)
                    .build()
                    .map_err(builder_err)?,
            ),
            _ => return Err(StoreError::Scheme { flag, url: display }),
        };
        let prefix = Path::parse(path).map_err(|e| builder_err(e.into()))?;
        let kind = match scheme {
            ObjectStoreScheme::AmazonS3 => StoreKind::S3,
            ObjectStoreScheme::MicrosoftAzure => StoreKind::Azure,
            ObjectStoreScheme::GoogleCloudStorage => StoreKind::Gcs,
            _ => StoreKind::Memory,
        };
        Ok(Location {
            store,
            prefix,
            display,
            kind,
            retry: RetryPolicy::default(),
        })
    }

    fn local(dir: PathBuf, spec: &str, flag: &'static str) -> Result<Location, StoreError> {
        let local_err = |source| StoreError::LocalDir {
            flag,
            url: spec.to_string(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(local_err)?;
        let dir = dir.canonicalize().map_err(local_err)?;
        let store =
            LocalFileSystem::new_with_prefix(&dir).map_err(|source| StoreError::Builder {
                flag,
                url: spec.to_string(),
                source,
            })?;
        Ok(Location {
            store: Arc::new(LocalCas::new(store)),
            prefix: Path::default(),
            display: dir.display().to_string(),
            kind: StoreKind::Local,
            retry: RetryPolicy::default(),
        })
    }

    /// The same store, at `relative` (one or more `/`-separated segments) under this location.
    pub fn child(&self, relative: &str) -> Location {
        Location {
            store: self.store.clone(),
            prefix: self.path(relative),
            display: format!("{}/{relative}", self.display.trim_end_matches('/')),
            kind: self.kind,
            retry: self.retry,
        }
    }

    /// Upload part size, at most: parts of this size stream out while a window is open, and
    /// each open file holds about three (one filling, two in flight).
    pub fn part_size(&self) -> usize {
        self.min_part_size().max(2 << 20)
    }

    /// The smallest upload part the store takes for a file of up to `file_size` bytes: S3 and
    /// GCS take parts of 5 MiB at least (and 10,000 parts at most); Azure blocks and local files
    /// have no minimum, so a tight memory budget can use small ones.
    pub fn min_part_size_for(&self, file_size: u64) -> usize {
        let most_parts = usize::try_from(file_size / 10_000).unwrap_or(usize::MAX);
        self.min_part_size().max(most_parts)
    }

    fn min_part_size(&self) -> usize {
        match self.kind {
            StoreKind::S3 | StoreKind::Gcs => 5 << 20,
            StoreKind::Azure | StoreKind::Local | StoreKind::Memory => 64 << 10,
        }
    }

    /// The same location with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Location {
        self.retry = retry;
        self
    }

    /// Object metadata, retrying transient errors; `NotFound` is returned as is.
    pub async fn head(&self, path: &Path) -> object_store::Result<ObjectMeta> {
        retry(
            &self.retry,
            Operation::Head,
            &format!("checking {path}"),
            || self.store.head(path),
        )
        .await
    }

    /// Writes a whole object, retrying transient errors (the same bytes each time).
    pub async fn put(&self, path: &Path, data: PutPayload) -> object_store::Result<()> {
        retry(
            &self.retry,
            Operation::Write,
            &format!("writing {path}"),
            || async { self.store.put(path, data.clone()).await.map(|_| ()) },
        )
        .await
    }

    /// The full object path of a name relative to this location.
    pub fn path(&self, relative: &str) -> Path {
        let mut full = self.prefix.clone();
        for part in relative.split('/') {
            full = full.join(part);
        }
        full
    }
}

/// A path segment as it was written: object paths percent-encode characters like `{` or `#`
/// (which a group id may hold), and a Delta log's add actions hold URI-encoded paths.
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// object_store's own per-request retries: a few quick ones, so that an outage reaches
/// [`retry`]'s logged, policy-bound retries within seconds.
fn http_retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(20),
    }
}

/// Drops the query string (SAS tokens live there) and any user info from a URL for messages.
pub fn redact_url(spec: &str) -> String {
    match Url::parse(spec) {
        Ok(mut url) => {
            url.set_query(None);
            let _ = url.set_password(None);
            let _ = url.set_username("");
            url.to_string()
        }
        Err(_) => spec.split('?').next().unwrap_or_default().to_string(),
    }
}

/// A compare-and-swap outcome other than success.
#[derive(Debug, thiserror::Error)]
pub enum CasError {
    /// The object changed (or appeared) since it was read: someone else wrote it.
    #[error("the object changed since it was read")]
    Conflict,
    #[error("{}", crate::store::retry::describe(.0))]
    Store(#[from] object_store::Error),
    /// The document could not be serialized.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Transient for CasError {
    fn is_transient(&self) -> bool {
        match self {
            CasError::Conflict => false,
            CasError::Store(e) => e.is_transient(),
            CasError::Io(_) => false,
        }
    }

    fn timed_out(after: Duration) -> Self {
        CasError::Store(object_store::Error::timed_out(after))
    }

    fn brief(&self) -> String {
        self.to_string()
    }

    fn gave_up(self, after: Duration) -> Self {
        match self {
            CasError::Store(e) => CasError::Store(e.gave_up(after)),
            other => other,
        }
    }
}

/// Reads `path` with the version to pass back to [`put_cas`], retrying transient errors.
pub async fn get_versioned(
    loc: &Location,
    path: &Path,
) -> Result<Option<(Bytes, UpdateVersion)>, CasError> {
    retry(
        &loc.retry,
        Operation::Read,
        &format!("reading {path}"),
        || get_versioned_once(loc, path),
    )
    .await
}

/// Writes `path` only if it is still at `expected` (or, with `None`, does not exist yet),
/// retrying transient errors.
///
/// A failed attempt may still have landed (the answer was lost, or the request timed out after
/// the store applied it), so a conflict after a failed attempt is checked: if the object now
/// holds exactly `data`, the write succeeded. Checkpoints carry their owner and a timestamp, so
/// another writer's document never equals ours.
pub async fn put_cas(
    loc: &Location,
    path: &Path,
    data: Bytes,
    expected: Option<UpdateVersion>,
) -> Result<UpdateVersion, CasError> {
    let failed_before = std::sync::atomic::AtomicBool::new(false);
    retry(
        &loc.retry,
        Operation::ConditionalWrite,
        &format!("writing {path}"),
        || async {
            match put_cas_once(loc, path, data.clone(), expected.clone()).await {
                Ok(v) => Ok(v),
                Err(CasError::Conflict) if failed_before.load(Ordering::Relaxed) => {
                    match get_versioned_once(loc, path).await? {
                        Some((now, v)) if now == data => Ok(v),
                        _ => Err(CasError::Conflict),
                    }
                }
                Err(e) => {
                    failed_before.store(true, Ordering::Relaxed);
                    Err(e)
                }
            }
        },
    )
    .await
}

async fn get_versioned_once(
    loc: &Location,
    path: &Path,
) -> Result<Option<(Bytes, UpdateVersion)>, CasError> {
    match loc.store.get(path).await {
        Ok(got) => {
            let version = UpdateVersion {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            Ok(Some((got.bytes().await?, version)))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn put_cas_once(
    loc: &Location,
    path: &Path,
    data: Bytes,
    expected: Option<UpdateVersion>,
) -> Result<UpdateVersion, CasError> {
    let mode = match expected {
        None => PutMode::Create,
        Some(v) => PutMode::Update(v),
    };
    let opts = PutOptions {
        mode,
        ..Default::default()
    };
    match loc.store.put_opts(path, data.into(), opts).await {
        Ok(r) => Ok(UpdateVersion {
            e_tag: r.e_tag,
            version: r.version,
        }),
        Err(
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
        ) => Err(CasError::Conflict),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests;
