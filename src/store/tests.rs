use super::*;

async fn cas_suite(loc: &Location) {
    let path = loc.path("cas/doc.json");
    assert!(get_versioned(loc, &path).await.unwrap().is_none());
    let v1 = put_cas(loc, &path, Bytes::from_static(b"one"), None)
        .await
        .unwrap();
    assert!(matches!(
        put_cas(loc, &path, Bytes::from_static(b"again"), None).await,
        Err(CasError::Conflict)
    ));
    let (data, read_v1) = get_versioned(loc, &path).await.unwrap().unwrap();
    assert_eq!(&data[..], b"one");
    assert_eq!(read_v1.e_tag, v1.e_tag);
    let v2 = put_cas(loc, &path, Bytes::from_static(b"two"), Some(v1.clone()))
        .await
        .unwrap();
    assert!(matches!(
        put_cas(loc, &path, Bytes::from_static(b"stale"), Some(v1)).await,
        Err(CasError::Conflict)
    ));
    put_cas(loc, &path, Bytes::from_static(b"three"), Some(v2))
        .await
        .unwrap();
    let (data, _) = get_versioned(loc, &path).await.unwrap().unwrap();
    assert_eq!(&data[..], b"three");
}

/// Eight writers race to update the same version: exactly one wins.
async fn race(loc: &Location) {
    let path = loc.path("race/doc.json");
    let v = put_cas(loc, &path, Bytes::from_static(b"base"), None)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (loc, path, v) = (loc.clone(), path.clone(), v.clone());
        tasks.push(tokio::spawn(async move {
            put_cas(&loc, &path, Bytes::from(format!("writer {i}")), Some(v)).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(CasError::Conflict) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cas_on_memory() {
    let loc = Location::open("memory://", "--output").unwrap();
    cas_suite(&loc).await;
    race(&loc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cas_on_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let loc = Location::open(dir.path().to_str().unwrap(), "--output")
        .unwrap()
        .child("_checkpoints");
    cas_suite(&loc).await;
    race(&loc).await;
    assert!(dir.path().join("_checkpoints/cas/doc.json").exists());
}

#[test]
fn urls_are_checked_and_redacted() {
    let err = Location::open("ftp://host/x", "--output")
        .unwrap_err()
        .to_string();
    assert!(err.contains("s3://"), "{err}");
    let err = Location::open("az://container/p?sig=SECRET", "--output");
    if let Err(e) = err {
        assert!(!e.to_string().contains("SECRET"), "{e}");
    }
    assert_eq!(
        redact_url("https://u:pw@h/c?sv=1&sig=SECRET"),
        "https://h/c"
    );
    let file = tempfile::tempdir().unwrap();
    let url = format!("file://{}/sub", file.path().display());
    let loc = Location::open(&url, "--output").unwrap();
    assert!(file.path().join("sub").is_dir());
    assert_eq!(loc.path("a/b.avro").as_ref(), "a/b.avro");
}
