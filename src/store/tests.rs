use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_conforms() {
    let loc = Location::open("memory://", "--output").unwrap();
    conformance::check(&loc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_directory_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let loc = Location::open(dir.path().to_str().unwrap(), "--output")
        .unwrap()
        .child("_checkpoints");
    conformance::check(&loc).await;
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
