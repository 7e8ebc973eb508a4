//! Retries with backoff for transient storage errors.
//!
//! Two layers retry a failing store. object_store's HTTP client retries each request a few times
//! (5xx, throttling, connection errors) within seconds; above it, every store operation hubcap
//! makes is retried here with exponential backoff and jitter, one log line per retry, until the
//! policy's `give_up_after` has passed since the operation began: that bounds all attempts
//! together, a hung one included. Each attempt is bounded by `attempt_timeout` (and by what is
//! left of the operation's time), so a hung request becomes a retry instead of a stall. Errors
//! that no retry fixes (missing credentials, permission denied, a read-only or full local disk, a
//! compare-and-swap conflict) are returned at once. An error the retries gave up on is marked
//! so ([`Transient::gave_up`]): the partition worker does not spend `--retry-for` on it again.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{error, warn};

pub use crate::observe::metrics::Operation;

/// How long and how often to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Stop retrying once this much time has passed since the operation began.
    pub give_up_after: Duration,
    /// Bound on one attempt; an attempt that takes longer counts as a failure.
    pub attempt_timeout: Duration,
    /// The first delay; each further delay doubles, up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            give_up_after: Duration::from_secs(300),
            attempt_timeout: Duration::from_secs(120),
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(15),
        }
    }
}

impl RetryPolicy {
    /// The default policy, giving up after `give_up_after`.
    pub fn giving_up_after(give_up_after: Duration) -> Self {
        RetryPolicy {
            give_up_after,
            ..Default::default()
        }
    }

    /// The delay before retry number `attempt` (1-based): exponential, capped, with ±25% jitter
    /// so that many partitions failing together do not retry in lockstep.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .first_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let base = exp.min(self.max_delay);
        base.mul_f64(rand::random_range(0.75..1.25))
    }
}

/// Whether a retry may help.
pub trait Transient {
    fn is_transient(&self) -> bool;
    /// The error for an attempt that took longer than `after`.
    fn timed_out(after: Duration) -> Self;
    /// The error in one line, for logs and messages.
    fn brief(&self) -> String;
    /// The error after the retries gave up on it: no longer transient, so that nothing above
    /// retries it for another `give_up_after`.
    fn gave_up(self, after: Duration) -> Self;
}

/// Whether a store error is one no retry fixes and a person must act on: refused credentials or
/// rights, or a local disk that refuses writes (permission denied, read-only, full). A full disk
/// is counted here: space is freed by a person, not by waiting, and `--retry-for` minutes of
/// retries only delay the message.
pub fn refused(e: &object_store::Error) -> bool {
    use object_store::Error as E;
    if matches!(e, E::PermissionDenied { .. } | E::Unauthenticated { .. }) {
        return true;
    }
    io_kind(e).is_some_and(|kind| {
        use std::io::ErrorKind as K;
        matches!(
            kind,
            K::PermissionDenied | K::ReadOnlyFilesystem | K::StorageFull | K::QuotaExceeded
        )
    })
}

/// The kind of the local I/O error inside a store error, if there is one (object_store's local
/// store and [`crate::store::local::LocalCas`] wrap them in `Generic`).
fn io_kind(e: &object_store::Error) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = s.source();
    }
    None
}

/// A transient error the retries gave up on, after `after`.
#[derive(Debug, thiserror::Error)]
#[error("{source} (retried for {after:?})")]
pub struct GaveUp {
    pub after: Duration,
    pub source: object_store::Error,
}

/// Whether `e` is one the retries already gave up on.
pub fn is_given_up(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::Generic { source, .. } if source.is::<GaveUp>())
}

/// A store error in one line: the operation, the root cause (e.g. "Connection refused", which
/// object_store's own message leaves out) and, for refused credentials, what to check. Error
/// bodies a server sent (Azure's XML) are reduced to their `<Message>`.
pub fn describe(e: &object_store::Error) -> String {
    use object_store::Error as E;
    if let E::Generic { source, .. } = e {
        if let Some(g) = source.downcast_ref::<GaveUp>() {
            return format!(
                "{}; gave up after {:?} of retries",
                describe(&g.source),
                g.after
            );
        }
    }
    let text = one_line(&e.to_string());
    let mut root = None;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        root = Some(s.to_string());
        source = s.source();
    }
    let root = root
        .map(|r| one_line(&r))
        .filter(|r| !text.contains(r.as_str()));
    let mut out = match root {
        Some(r) => format!("{text} ({r})"),
        None => text,
    };
    if matches!(e, E::PermissionDenied { .. } | E::Unauthenticated { .. }) {
        out.push_str("; check the store's credentials (Azure: AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_KEY or a managed identity; S3: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; GCS: GOOGLE_SERVICE_ACCOUNT) and their rights on the container or bucket");
    } else if let Some(kind) = io_kind(e).filter(|_| refused(e)) {
        use std::io::ErrorKind as K;
        out.push_str(match kind {
            K::StorageFull | K::QuotaExceeded => "; the disk is full: free space, then run again",
            _ => "; hubcap may not write there: check the directory's owner, mode and mount",
        });
    } else if cannot_connect(e) {
        out.push_str("; cannot connect to the store: check the URL, its endpoint and the network");
    }
    out
}

/// Whether the request never reached the store: object_store's HTTP client says so in the
/// error it keeps as a source.
fn cannot_connect(e: &object_store::Error) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(http) = s.downcast_ref::<HttpError>() {
            return matches!(http.kind(), HttpErrorKind::Connect);
        }
        source = s.source();
    }
    false
}

/// The first line of `text`, with a server's XML error body replaced by its message.
fn one_line(text: &str) -> String {
    let message = text
        .split_once("<Message>")
        .and_then(|(_, rest)| rest.split_once("</Message>"))
        .map(|(m, _)| m.lines().next().unwrap_or_default().trim().to_string());
    let head = text.split("<?xml").next().unwrap_or_default();
    let head = head
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches([':', ' ']);
    let line = match message {
        Some(m) => format!("{head}: {m}"),
        None => head.to_string(),
    };
    without_queries(&line)
}

/// `text` with the query string of every URL in it replaced by `?<redacted>`: an HTTP error
/// names the URL it requested, and a SAS token (Azure) or a presigned signature rides in its
/// query string.
fn without_queries(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, url) = rest.split_at(at);
        out.push_str(before);
        let end = url
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '>' | ','))
            .unwrap_or(url.len());
        let (url, after) = url.split_at(end);
        match url.split_once('?') {
            Some((base, _)) => {
                out.push_str(base);
                out.push_str("?<redacted>");
            }
            None => out.push_str(url),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A store request that did not finish in time.
#[derive(Debug, thiserror::Error)]
#[error("no answer from the store within {0:?}")]
pub struct TimedOut(pub Duration);

impl Transient for object_store::Error {
    fn is_transient(&self) -> bool {
        use object_store::Error as E;
        // `Generic` covers HTTP errors that outlived object_store's own retries and local I/O
        // errors (of which a refused or full disk is not transient). What remains are answers a
        // retry cannot change.
        !refused(self)
            && !is_given_up(self)
            && !matches!(
                self,
                E::NotFound { .. }
                    | E::AlreadyExists { .. }
                    | E::Precondition { .. }
                    | E::NotModified { .. }
                    | E::NotImplemented { .. }
                    | E::NotSupported { .. }
                    | E::InvalidPath { .. }
                    | E::PermissionDenied { .. }
                    | E::Unauthenticated { .. }
                    | E::UnknownConfigurationKey { .. }
            )
    }

    fn timed_out(after: Duration) -> Self {
        object_store::Error::Generic {
            store: "hubcap",
            source: Box::new(TimedOut(after)),
        }
    }

    fn brief(&self) -> String {
        describe(self)
    }

    fn gave_up(self, after: Duration) -> Self {
        object_store::Error::Generic {
            store: "hubcap",
            source: Box::new(GaveUp {
                after,
                source: self,
            }),
        }
    }
}

tokio::task_local! {
    /// A deadline over every retried operation of the task, set by [`within`].
    static DEADLINE: Instant;
}

/// Runs `fut` with every [`retry`] inside it giving up at `deadline` at the latest: a partition
/// worker that starts over after failures bounds all its operations by one `--retry-for`.
pub async fn within<T>(deadline: Instant, fut: impl Future<Output = T>) -> T {
    let deadline = DEADLINE
        .try_with(|outer| (*outer).min(deadline))
        .unwrap_or(deadline);
    DEADLINE.scope(deadline, fut).await
}

/// Runs `op` until it succeeds, fails with an error that is not transient, or `policy` gives up.
/// `what` names the operation in log lines ("writing checkpoint x/0.json"); each retry counts
/// in `hubcap_retries_total{operation=kind}`.
pub async fn retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    kind: Operation,
    what: &(dyn Display + Sync),
    mut op: F,
) -> Result<T, E>
where
    E: Transient + Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    // The whole operation, every attempt and wait included, ends by the deadline.
    let mut deadline = Instant::now() + policy.give_up_after;
    if let Ok(outer) = DEADLINE.try_with(|d| *d) {
        deadline = deadline.min(outer);
    }
    let mut attempt = 0u32;
    loop {
        let limit = policy
            .attempt_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        let result = match tokio::time::timeout(limit, op()).await {
            Ok(r) => r,
            Err(_) => Err(E::timed_out(limit)),
        };
        let e = match result {
            Ok(v) => return Ok(v),
            Err(e) if !e.is_transient() => return Err(e),
            Err(e) => e,
        };
        attempt += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            error!(attempts = attempt, error = %e.brief(), "{what} failed; giving up after {:?} of retries", policy.give_up_after);
            return Err(e.gave_up(policy.give_up_after));
        }
        // The last retry comes no later than the deadline, and is cut off at it.
        let delay = policy.delay(attempt).min(left);
        crate::observe::metrics::count_retry(kind);
        warn!(attempt, retry_in = ?delay, error = %e.brief(), "{what} failed; retrying");
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_in_store_errors_lose_their_query_strings() {
        let text = super::one_line(
            "error sending request for url (https://acct.blob.core.windows.net/c/x.avro?sv=2022&sig=S3CRET%3D&se=1): connection reset",
        );
        assert!(!text.contains("S3CRET"), "{text}");
        assert!(
            text.contains(
                "https://acct.blob.core.windows.net/c/x.avro?<redacted>): connection reset"
            ),
            "{text}"
        );
        assert_eq!(super::one_line("no url here"), "no url here");
    }

    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policy() -> RetryPolicy {
        RetryPolicy {
            give_up_after: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(1),
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }

    fn generic() -> object_store::Error {
        object_store::Error::Generic {
            store: "test",
            source: "503 Service Unavailable".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let counted = crate::observe::metrics::retries(Operation::Read);
        let got: Result<u32, object_store::Error> =
            retry(&policy(), Operation::Read, &"op", || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err(generic()),
                    n => Ok(n),
                }
            })
            .await;
        assert_eq!(got.unwrap(), 2);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Each retry counts (other tests may add theirs: the counters are process-wide).
        assert!(crate::observe::metrics::retries(Operation::Read) >= counted + 2);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let got: Result<(), object_store::Error> =
            retry(&policy(), Operation::Read, &"op", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(object_store::Error::PermissionDenied {
                    path: "x".into(),
                    source: "403".into(),
                })
            })
            .await;
        assert!(matches!(
            got,
            Err(object_store::Error::PermissionDenied { .. })
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_policy_and_bounds_hung_attempts() {
        let start = Instant::now();
        let calls = AtomicU32::new(0);
        let got: Result<(), object_store::Error> =
            retry(&policy(), Operation::Read, &"op", || async {
                if calls.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
                    std::future::pending::<()>().await; // hangs: only the timeout ends it
                }
                Err(generic())
            })
            .await;
        let err = got.unwrap_err();
        let took = start.elapsed();
        // Every other attempt hangs for its 1 s timeout; the whole operation, hung attempts
        // included, ends 10 s after it began (whatever the jitter).
        assert_eq!(took, Duration::from_secs(10), "{took:?}");
        assert!(calls.load(Ordering::SeqCst) > 4);
        let text = describe(&err);
        assert!(text.contains("503") || text.contains("no answer"), "{text}");
        assert!(text.contains("gave up after 10s"), "{text}");
        // Given up: nothing above retries it again.
        assert!(!err.is_transient());
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_hangs_past_the_deadline_is_cut_off_at_it() {
        let p = RetryPolicy {
            give_up_after: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(8),
            ..policy()
        };
        let start = Instant::now();
        let got: Result<(), object_store::Error> = retry(&p, Operation::Read, &"op", || async {
            std::future::pending::<()>().await;
            Ok(())
        })
        .await;
        assert!(got.is_err());
        // 8 s for the first attempt, then the second is cut off 2 s in: not 16 s.
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn within_bounds_every_retry_of_the_task_by_one_deadline() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(4);
        let got: Result<(), object_store::Error> = within(deadline, async {
            // The first operation fails for 3 s and then succeeds; the second has 1 s left.
            let mut calls = 0;
            retry(&policy(), Operation::Read, &"first", || {
                calls += 1;
                let ok = start.elapsed() >= Duration::from_secs(3);
                async move {
                    if ok {
                        Ok(())
                    } else {
                        Err(generic())
                    }
                }
            })
            .await?;
            assert!(calls > 1);
            retry(&policy(), Operation::Read, &"second", || async {
                Err(generic())
            })
            .await
        })
        .await;
        assert!(is_given_up(&got.unwrap_err()));
        let took = start.elapsed();
        assert!(took <= Duration::from_secs(4), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_disk_that_refuses_writes_is_not_retried() {
        use std::io::ErrorKind as K;
        for kind in [K::PermissionDenied, K::ReadOnlyFilesystem, K::StorageFull] {
            let calls = AtomicU32::new(0);
            let got: Result<(), object_store::Error> =
                retry(&policy(), Operation::Write, &"op", || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    // As object_store's local store wraps it: Generic, its own error, the io error.
                    let io = std::io::Error::from(kind);
                    Err(object_store::Error::Generic {
                        store: "LocalFileSystem",
                        source: Box::new(LocalError(io)),
                    })
                })
                .await;
            let err = got.unwrap_err();
            assert!(refused(&err), "{kind:?}");
            let text = describe(&err);
            assert!(
                text.contains("free space") || text.contains("may not write"),
                "{text}"
            );
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{kind:?}");
        }
        // Other local errors may pass (an NFS mount that did not answer).
        let io = object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(LocalError(std::io::Error::from(K::TimedOut))),
        };
        assert!(io.is_transient());
    }

    /// An error with an io error as its source, as object_store's local errors are.
    #[derive(Debug, thiserror::Error)]
    #[error("Unable to open file: {0}")]
    struct LocalError(#[source] std::io::Error);

    #[test]
    fn store_errors_are_described_in_one_line_with_their_cause_and_fix() {
        let forbidden = object_store::Error::PermissionDenied {
            path: "c/x.json".into(),
            source: "Error performing GET http://h/c/x.json - Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?>\n<Error>\n  <Code>AuthorizationFailure</Code>\n  <Message>Server failed to authenticate the request.\nRequestId:1</Message>\n</Error>".into(),
        };
        let text = describe(&forbidden);
        assert!(!text.contains('\n') && !text.contains("<?xml"), "{text}");
        assert!(
            text.contains("Server failed to authenticate the request"),
            "{text}"
        );
        assert!(text.contains("AZURE_STORAGE_ACCOUNT_KEY"), "{text}");
    }

    #[tokio::test]
    async fn a_store_that_cannot_be_reached_is_described_as_such() {
        use object_store::azure::MicrosoftAzureBuilder;
        use object_store::{ObjectStoreExt, RetryConfig};
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(); // closed again: nothing listens there
        let store = MicrosoftAzureBuilder::new()
            .with_account("devstoreaccount1")
            .with_access_key("a2V5")
            .with_container_name("c")
            .with_endpoint(format!("http://127.0.0.1:{port}/devstoreaccount1"))
            .with_allow_http(true)
            .with_retry(RetryConfig {
                max_retries: 0,
                ..Default::default()
            })
            .build()
            .unwrap();
        let err = store.get(&"x.json".into()).await.unwrap_err();
        let text = describe(&err);
        assert!(text.contains("cannot connect to the store"), "{text}");
        assert!(!text.contains('\n'), "{text}");
        let missing = object_store::Error::NotFound {
            path: "x".into(),
            source: "gone".into(),
        };
        assert!(!describe(&missing).contains("cannot connect"));
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let p = policy();
        let d1 = p.delay(1);
        assert!(d1 >= Duration::from_millis(75) && d1 <= Duration::from_millis(125));
        let d20 = p.delay(20);
        assert!(d20 >= Duration::from_millis(1500) && d20 <= Duration::from_millis(2500));
    }
}
