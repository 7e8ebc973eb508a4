//! What hubcap needs of a store, as one suite every backend runs: the memory and local stores in
//! the unit tests, Azurite and S3 (moto) in the end-to-end tests. Plain puts, reads and listings;
//! compare-and-swap (a create refused when the object exists, an update refused at a stale
//! version); racing writers, of whom exactly one wins each round; and writes whose answer is
//! lost, which [`put_cas`] must settle by reading back. Give each run a prefix of its own.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};

use super::faults::{Faults, FaultyStore};
use super::retry::RetryPolicy;
use super::{get_versioned, put_cas, CasError, Location};

/// Runs every check on `loc`; panics, naming the check, on the first that fails.
pub async fn check(loc: &Location) {
    objects(loc).await;
    compare_and_swap(loc).await;
    racing_writers(loc).await;
    lost_answers(loc).await;
}

async fn objects(loc: &Location) {
    let path = loc.path("objects/a.avro");
    loc.store
        .put(&path, Bytes::from_static(b"data").into())
        .await
        .expect("objects: put");
    let got = loc.store.get(&path).await.expect("objects: get");
    assert_eq!(got.meta.size, 4, "objects: size");
    assert_eq!(&got.bytes().await.unwrap()[..], b"data", "objects: bytes");
    let listed: Vec<_> = loc
        .store
        .list(Some(&loc.path("objects")))
        .try_collect()
        .await
        .expect("objects: list");
    assert_eq!(listed.len(), 1, "objects: list {listed:?}");
    assert_eq!(listed[0].location, path, "objects: listed name");
    assert!(
        matches!(
            loc.store.head(&loc.path("objects/missing")).await,
            Err(object_store::Error::NotFound { .. })
        ),
        "objects: a missing object is NotFound"
    );
}

async fn compare_and_swap(loc: &Location) {
    let path = loc.path("cas/doc.json");
    assert!(
        get_versioned(loc, &path).await.unwrap().is_none(),
        "cas: nothing yet"
    );
    let v1 = put_cas(loc, &path, Bytes::from_static(b"one"), None)
        .await
        .expect("cas: create");
    assert!(
        v1.e_tag.is_some() || v1.version.is_some(),
        "cas: the store returns a version to update from"
    );
    assert!(
        matches!(
            put_cas(loc, &path, Bytes::from_static(b"again"), None).await,
            Err(CasError::Conflict)
        ),
        "cas: a second create is refused"
    );
    let (data, read_v1) = get_versioned(loc, &path).await.unwrap().unwrap();
    assert_eq!(&data[..], b"one", "cas: read back");
    assert_eq!(
        read_v1.e_tag, v1.e_tag,
        "cas: the version read is the one written"
    );
    let v2 = put_cas(loc, &path, Bytes::from_static(b"two"), Some(v1.clone()))
        .await
        .expect("cas: update at the current version");
    assert!(
        matches!(
            put_cas(loc, &path, Bytes::from_static(b"stale"), Some(v1)).await,
            Err(CasError::Conflict)
        ),
        "cas: an update at a stale version is refused"
    );
    put_cas(loc, &path, Bytes::from_static(b"three"), Some(v2))
        .await
        .expect("cas: update again");
    let (data, _) = get_versioned(loc, &path).await.unwrap().unwrap();
    assert_eq!(&data[..], b"three", "cas: the last update is stored");
}

/// Eight writers race to move the same version forward, five rounds: exactly one wins each
/// round, and what it wrote is what is stored.
async fn racing_writers(loc: &Location) {
    let path = loc.path("race/doc.json");
    let mut version = put_cas(loc, &path, Bytes::from_static(b"base"), None)
        .await
        .expect("race: create");
    for round in 0..5 {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (loc, path, v) = (loc.clone(), path.clone(), version.clone());
                let data = Bytes::from(format!("round {round} writer {i}"));
                tokio::spawn(async move {
                    put_cas(&loc, &path, data.clone(), Some(v))
                        .await
                        .map(|v| (v, data))
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(won) => winners.push(won),
                Err(CasError::Conflict) => {}
                Err(e) => panic!("race: round {round}: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "race: round {round}: one winner");
        let (v, data) = winners.pop().unwrap();
        let (stored, _) = get_versioned(loc, &path).await.unwrap().unwrap();
        assert_eq!(
            stored, data,
            "race: round {round}: the winner's write is stored"
        );
        version = v;
    }
}

/// Every write is applied but its answer lost: the retry meets its own write and succeeds,
/// while another writer's change still fails it.
async fn lost_answers(loc: &Location) {
    let faulty = FaultyStore::new(
        loc.store.clone(),
        Faults {
            lost_answer: 1.0,
            ..Faults::default()
        },
    );
    let counts = faulty.counts();
    let lossy = Location {
        store: Arc::new(faulty),
        ..loc.clone()
    }
    .with_retry(RetryPolicy {
        give_up_after: Duration::from_secs(30),
        attempt_timeout: Duration::from_secs(10),
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
    });
    let path = lossy.path("lost/doc.json");
    let v1 = put_cas(&lossy, &path, Bytes::from_static(b"mine"), None)
        .await
        .expect("lost answers: a create whose answer was lost");
    let v2 = put_cas(
        &lossy,
        &path,
        Bytes::from_static(b"mine too"),
        Some(v1.clone()),
    )
    .await
    .expect("lost answers: an update whose answer was lost");
    assert!(
        counts.lost_answers.load(Ordering::Relaxed) >= 2,
        "lost answers: the faults were injected"
    );
    let (data, now) = get_versioned(loc, &path).await.unwrap().unwrap();
    assert_eq!(
        &data[..],
        b"mine too",
        "lost answers: stored once, as written"
    );
    assert_eq!(
        now.e_tag, v2.e_tag,
        "lost answers: the version settled is the stored one"
    );
    assert!(
        matches!(
            put_cas(&lossy, &path, Bytes::from_static(b"late"), Some(v1)).await,
            Err(CasError::Conflict)
        ),
        "lost answers: a stale update still fails"
    );
}
