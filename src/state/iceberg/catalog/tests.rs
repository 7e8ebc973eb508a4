use super::*;

#[test]
fn flags_that_cannot_be_used_are_refused_without_quoting_them() {
    for (uri, namespace, says) in [
        ("not a url", "hubcap", "is not a URL"),
        ("ftp://host/catalog", "hubcap", "http:// or https://"),
        (
            "https://user:pa55w0rd@host/api/catalog",
            "hubcap",
            "holds credentials",
        ),
        (
            "https://host/api/catalog?token=pa55w0rd",
            "hubcap",
            "holds credentials",
        ),
        (
            "https://host/api/catalog",
            "lake..events",
            "--iceberg-namespace",
        ),
        ("https://host/api/catalog", "", "--iceberg-namespace"),
    ] {
        let err = CatalogConfig::from_flags(uri, None, namespace).unwrap_err();
        assert!(err.contains(says), "{uri} {namespace:?}: {err}");
        assert!(!err.contains("pa55w0rd"), "{err}");
    }
    let ok = CatalogConfig::from_flags("https://host/api/catalog/", Some("lake"), "a.b").unwrap();
    assert_eq!(ok.uri, "https://host/api/catalog");
    assert_eq!(ok.namespace, ["a", "b"]);
    assert_eq!(ok.qualified("clicks"), "a.b.clicks");
}

#[test]
fn a_secret_is_never_in_debug_output() {
    let config = CatalogConfig {
        uri: "https://host".into(),
        warehouse: None,
        namespace: vec!["hubcap".into()],
        auth: Auth::ClientCredentials {
            id: "client".into(),
            secret: Secret("s3cr3t-value".into()),
            token_uri: None,
            scope: DEFAULT_SCOPE.into(),
        },
    };
    let shown = format!("{config:?}");
    assert!(!shown.contains("s3cr3t-value"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}

#[test]
fn rest_error_bodies_give_their_message() {
    let body = r#"{"error": {"message": "Table does not exist: lake.clicks", "type": "NoSuchTableException", "code": 404}}"#;
    assert_eq!(error_message(body), " (Table does not exist: lake.clicks)");
    assert_eq!(error_message(""), "");
    assert_eq!(error_message("<html>oops</html>"), " (<html>oops</html>)");
}

#[test]
fn path_segments_are_escaped() {
    // A namespace's levels are joined by 0x1F, which is escaped in the path.
    assert_eq!(encode("a\u{1f}b"), "a%1Fb");
    assert_eq!(encode("orders v2/x"), "orders%20v2%2Fx");
}
