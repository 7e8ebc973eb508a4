//! Tests of naming: templates, names read back, namespaces, topic folders.

use super::*;

#[test]
fn blob_names_lowercase_namespace_hub_and_group_only() {
    let cases = [
        (
            ("MyNs.ServiceBus.Windows.NET", "Clicks", "$Default", 0),
            "myns.servicebus.windows.net/clicks/$default/checkpoint/0",
        ),
        (
            (
                "ns.servicebus.windows.net",
                "orders.v2",
                "Billing-Team_1",
                31,
            ),
            "ns.servicebus.windows.net/orders.v2/billing-team_1/checkpoint/31",
        ),
        (("127.0.0.1", "T", "G", 7), "127.0.0.1/t/g/checkpoint/7"),
        // Unicode lowercasing, as .NET's ToLowerInvariant and Python's lower().
        (("NS", "hub", "GRÜPPE", 1), "ns/hub/grüppe/checkpoint/1"),
    ];
    for ((ns, hub, group, p), want) in cases {
        assert_eq!(sdk_checkpoint_blob(ns, hub, group, p), want);
    }
}

#[test]
fn the_default_sdk_namespace_is_the_first_broker_host() {
    let cases = [
        (
            "contoso.servicebus.windows.net:9093",
            "contoso.servicebus.windows.net",
        ),
        ("a.example:9092,b.example:9092", "a.example"),
        ("SASL_SSL://Host.Example:9093", "Host.Example"),
        ("[::1]:9092", "::1"),
        ("kafka", "kafka"),
    ];
    for (brokers, want) in cases {
        assert_eq!(fully_qualified_namespace(brokers), want, "{brokers}");
    }
}

#[test]
fn segments_the_sdks_cannot_split_are_refused() {
    assert_eq!(sdk_segment_problem("$Default"), None);
    assert_eq!(sdk_segment_problem("a/b"), Some("contains '/'"));
    assert_eq!(sdk_segment_problem(" "), Some("is empty"));
    assert_eq!(
        sdk_segment_problem(".."),
        Some("is a relative path segment")
    );
    assert!(sdk_segment_problem("a\nb").is_some());
}

use proptest::prelude::*;

fn parts(offset: i64, time: &str) -> NameParts<'static> {
    NameParts {
        namespace: "ns",
        topic: "events",
        partition: 3,
        first_offset: offset,
        time: DateTime::parse_from_rfc3339(time)
            .unwrap()
            .with_timezone(&Utc),
    }
}

#[test]
fn default_template_is_capture_layout_plus_offset() {
    let t = PathTemplate::parse(DEFAULT_TEMPLATE, "avro").unwrap();
    assert_eq!(
        t.render(&parts(42, "2017-12-08T03:03:17.5Z")),
        "ns/events/3/2017/12/08/03/03/17-00000000000000000042.avro"
    );
}

#[test]
fn custom_and_hive_templates() {
    let t = PathTemplate::parse(
        "{Namespace}/{EventHub}/p{PartitionId}--{Year}-{Month}-{Day}--{Hour}-{Minute}-{Second}",
        "avro",
    )
    .unwrap();
    assert_eq!(
        t.render(&parts(7, "2022-12-09T16:50:12Z")),
        "ns/events/p3--2022-12-09--16-50-12-00000000000000000007.avro"
    );
    let t = PathTemplate::parse(
        "{EventHub}/partition={PartitionId}/year={Year}/month={Month}/{Offset}",
        "avro",
    )
    .unwrap();
    assert_eq!(
        t.render(&parts(7, "2022-01-02T03:04:05Z")),
        "events/partition=3/year=2022/month=01/00000000000000000007.avro"
    );
}

#[test]
fn template_errors_name_the_fix() {
    let unknown = PathTemplate::parse("{EventHub}/{PartitionId}/{Yr}", "avro").unwrap_err();
    assert!(matches!(&unknown, PathError::UnknownToken { token, .. } if token == "Yr"));
    assert!(unknown.to_string().contains("{Year}"), "{unknown}");
    assert!(matches!(
        PathTemplate::parse("{EventHub}/{Year}", "avro"),
        Err(PathError::Missing {
            token: "PartitionId",
            ..
        })
    ));
    assert!(matches!(
        PathTemplate::parse("{PartitionId}/{Year}", "avro"),
        Err(PathError::Missing {
            token: "EventHub",
            ..
        })
    ));
    assert!(matches!(
        PathTemplate::parse("{EventHub}/{PartitionId", "avro"),
        Err(PathError::Unclosed { .. })
    ));
    assert!(matches!(
        PathTemplate::parse("/{EventHub}/{PartitionId}", "avro"),
        Err(PathError::EmptySegment { .. })
    ));
}

#[test]
fn namespace_defaults() {
    assert_eq!(
        namespace_from_brokers("myns.servicebus.windows.net:9093"),
        "myns"
    );
    assert_eq!(
        namespace_from_brokers("127.0.0.1:9092,127.0.0.1:9093"),
        "127.0.0.1"
    );
    assert_eq!(namespace_from_brokers("localhost:9092"), "localhost");
    assert_eq!(namespace_from_brokers("tcp://kafka-1.prod:9092"), "kafka-1");
    assert_eq!(namespace_from_brokers("[::1]:9092"), "--1");
}

#[test]
fn name_time_prefers_the_record() {
    let opened = DateTime::from_timestamp(1_000, 0).unwrap();
    assert_eq!(
        name_time(Some(5_000), opened),
        DateTime::from_timestamp(5, 0).unwrap()
    );
    assert_eq!(name_time(None, opened), opened);
    assert_eq!(name_time(Some(-1), opened), opened);
}

fn parsed(topic: &str, partition: i32, first_offset: i64) -> Option<ParsedName> {
    Some(ParsedName {
        topic: topic.into(),
        partition,
        first_offset,
    })
}

#[test]
fn parse_name_reads_back_what_render_wrote() {
    let t = PathTemplate::parse(DEFAULT_TEMPLATE, "avro").unwrap();
    assert_eq!(
        t.parse_name("ns/events/3/2017/12/08/03/03/17-00000000000000000042.avro"),
        parsed("events", 3, 42)
    );
    // Another extension, a missing offset, a short time field, a stray segment: not ours.
    for name in [
        "ns/events/3/2017/12/08/03/03/17-00000000000000000042.parquet",
        "ns/events/3/2017/12/08/03/03/17.avro",
        "ns/events/3/2017/12/8/03/03/17-00000000000000000042.avro",
        "ns/events/3/2017/12/08/03/03/17-00000000000000000042/x.avro",
        "ns/events/3/2017/12/08/03/03/17-00000000000000000042.avro#1",
    ] {
        assert_eq!(t.parse_name(name), None, "{name}");
    }
    // Hive-style, offset as its own segment.
    let t = PathTemplate::parse("{EventHub}/partition={PartitionId}/{Offset}", "parquet").unwrap();
    assert_eq!(
        t.parse_name("a.b_c/partition=12/00000000000000000007.parquet"),
        parsed("a.b_c", 12, 7)
    );
    assert_eq!(
        t.parse_name("a/partition=x/00000000000000000007.parquet"),
        None
    );
}

#[test]
fn parse_name_backtracks_over_literals_inside_tokens() {
    // The topic holds the literal that separates it from the partition.
    let t = PathTemplate::parse("{Namespace}/{EventHub}-{PartitionId}", "avro").unwrap();
    assert_eq!(
        t.parse_name("my-ns/click-stream-v2-17-00000000000000000100.avro"),
        parsed("click-stream-v2", 17, 100)
    );
    // A token used twice must say the same both times.
    let t = PathTemplate::parse("{EventHub}/{PartitionId}/{EventHub}", "avro").unwrap();
    assert_eq!(
        t.parse_name("a/1/a-00000000000000000005.avro"),
        parsed("a", 1, 5)
    );
    assert_eq!(t.parse_name("a/1/b-00000000000000000005.avro"), None);
}

#[test]
fn capture_names_without_offsets_read_back_partition_and_time() {
    let capture = |topic: &str, partition, time: &str| {
        Some(CaptureName {
            topic: topic.into(),
            partition,
            time: time.into(),
        })
    };
    // Capture's native layout: the second is the last segment, no offset follows it.
    let t = PathTemplate::parse_capture(DEFAULT_TEMPLATE).unwrap();
    let name = "mynamespace/myeventhub/0/2017/12/08/03/03/17.avro";
    assert_eq!(
        t.parse_capture_name(name),
        capture("myeventhub", 0, "20171208030317")
    );
    assert_eq!(t.parse_name(name), None, "no offset to read");
    for name in [
        "ns/hub/0/2017/12/08/03/03/17-00000000000000000042.avro",
        "ns/hub/0/2017/12/08/03/03/17.parquet",
        "ns/hub/0/2017/12/8/03/03/17.avro",
    ] {
        assert_eq!(t.parse_capture_name(name), None, "{name}");
    }
    // The same template as hubcap reads it wants the offset it appends.
    let hubcap = PathTemplate::parse(DEFAULT_TEMPLATE, "avro").unwrap();
    assert_eq!(hubcap.parse_name(name), None);
    // A custom format (microsoft/metered-billing-accelerator's), and one with the time tokens
    // out of order: the time still reads year to second.
    let t = PathTemplate::parse_capture(
        "{Namespace}/{EventHub}/p{PartitionId}--{Year}-{Month}-{Day}--{Hour}-{Minute}-{Second}",
    )
    .unwrap();
    assert_eq!(
        t.parse_capture_name("ns/metering/p9--2022-12-09--16-50-12.avro"),
        capture("metering", 9, "20221209165012")
    );
    let t = PathTemplate::parse_capture(
        "{EventHub}/{Day}.{Month}.{Year}/{PartitionId}/{Second}{Minute}{Hour}-{Namespace}",
    )
    .unwrap();
    assert_eq!(
        t.parse_capture_name("hub/09.12.2022/3/120516-ns.avro"),
        capture("hub", 3, "20221209160512")
    );
    // Capture templates are checked like hubcap's.
    assert!(matches!(
        PathTemplate::parse_capture("{Namespace}/{Year}"),
        Err(PathError::Missing { .. })
    ));
}

proptest! {
    /// Names are a function of their parts, and distinct first offsets give distinct names
    /// even within one second.
    #[test]
    fn names_are_deterministic_and_unique(a in 0i64..i64::MAX, b in 0i64..i64::MAX, ms in 0i64..4_000_000_000_000) {
        let t = PathTemplate::parse(DEFAULT_TEMPLATE, "avro").unwrap();
        let time = DateTime::from_timestamp_millis(ms).unwrap();
        let p = |o| NameParts { namespace: "ns", topic: "t", partition: 0, first_offset: o, time };
        prop_assert_eq!(t.render(&p(a)), t.render(&p(a)));
        if a != b {
            prop_assert_ne!(t.render(&p(a)), t.render(&p(b)));
        }
        // Zero-padded offsets sort like numbers.
        prop_assert_eq!(t.render(&p(a)) < t.render(&p(b)), a < b);
    }

    /// `parse_name` inverts `render` for any topic, partition, offset and time, with each
    /// template shape: Capture's, Hive-style, and tokens run together with dashes.
    #[test]
    fn parse_name_inverts_render(
        topic in "[A-Za-z0-9._-]{1,40}",
        namespace in "[a-z0-9][a-z0-9.-]{0,19}",
        partition in 0i32..i32::MAX,
        offset in 0i64..i64::MAX,
        ms in 0i64..4_000_000_000_000,
        which in 0usize..3,
    ) {
        let template = [
            DEFAULT_TEMPLATE,
            "{EventHub}/partition={PartitionId}/date={Year}-{Month}-{Day}/hour={Hour}/{Offset}",
            "{Namespace}-{EventHub}-{PartitionId}-{Year}{Month}{Day}{Hour}{Minute}{Second}",
        ][which];
        let t = PathTemplate::parse(template, "avro").unwrap();
        let name = t.render(&NameParts {
            namespace: &namespace,
            topic: &topic,
            partition,
            first_offset: offset,
            time: DateTime::from_timestamp_millis(ms).unwrap(),
        });
        let got = t.parse_name(&name);
        // A namespace and a topic that both hold dashes can split two ways; the partition
        // and offset are unambiguous all the same.
        if which == 2 && (namespace.contains('-') || topic.contains('-') || namespace.is_empty()) {
            let got = got.unwrap();
            prop_assert_eq!((got.partition, got.first_offset), (partition, offset));
        } else {
            prop_assert_eq!(got, parsed(&topic, partition, offset));
        }
    }
}

#[test]
fn segments_readers_skip_or_that_escape_are_refused() {
    for template in [
        "../{EventHub}/{PartitionId}",
        "{EventHub}/../{PartitionId}",
        "{EventHub}/./{PartitionId}",
        "_archive/{EventHub}/{PartitionId}",
        ".hidden/{EventHub}/{PartitionId}",
        "{EventHub}/_p{PartitionId}",
        "{EventHub}/{PartitionId}/.{Offset}",
        "{EventHub}/{PartitionId}/a%2F{Offset}",
        "{EventHub}/{PartitionId}/a}b",
        "{EventHub}/{PartitionId}/a\\b",
    ] {
        let err = PathTemplate::parse(template, "avro").unwrap_err();
        assert!(
            matches!(err, PathError::Segment { .. }),
            "{template}: {err}"
        );
        assert!(err.to_string().contains("{EventHub}/partition="), "{err}");
    }
    // Dots and underscores inside a segment, or after a token, are fine.
    for template in [
        "{EventHub}/p_{PartitionId}/{Year}.{Month}/{Offset}",
        "{Namespace}.{EventHub}/{PartitionId}_x",
        "v1.2/{EventHub}/{PartitionId}",
    ] {
        PathTemplate::parse(template, "avro").unwrap();
    }
}

#[test]
fn namespaces_must_be_one_visible_segment() {
    for ns in [
        "", " ", ".", "..", "../..", "a/b", "_ns", ".ns", "a%b", "a\nb",
    ] {
        assert!(namespace_problem(ns).is_some(), "{ns:?}");
    }
    for ns in ["mynamespace", "127.0.0.1", "--1", "ns_1", "a.b"] {
        assert_eq!(namespace_problem(ns), None, "{ns:?}");
    }
}

#[test]
fn hidden_topics_get_a_visible_folder_and_names_read_back() {
    let cases = [
        ("_events", "@_events"),
        (".events", "@.events"),
        ("__consumer_offsets", "@__consumer_offsets"),
        ("events", "events"),
        ("a_b.c-d", "a_b.c-d"),
    ];
    for (topic, folder) in cases {
        assert_eq!(topic_folder(topic), folder);
        assert_eq!(topic_from_folder(folder), Some(topic));
    }
    for not_ours in ["_events", ".events", "@events", "@", ""] {
        assert_eq!(topic_from_folder(not_ours), None, "{not_ours}");
    }
    let t = PathTemplate::parse(DEFAULT_TEMPLATE, "avro").unwrap();
    let name = t.render(&NameParts {
        topic: "_events",
        ..parts(5, "2026-01-02T03:04:05Z")
    });
    assert_eq!(
        name,
        "ns/@_events/3/2026/01/02/03/04/05-00000000000000000005.avro"
    );
    assert_eq!(t.parse_name(&name), parsed("_events", 3, 5));
    // A folder hubcap never writes is not a topic's.
    assert_eq!(
        t.parse_name("ns/_events/3/2026/01/02/03/04/05-00000000000000000005.avro"),
        None
    );
}

#[test]
fn contained_names() {
    for name in ["a", "a/b.avro", "ns/@_e/0/x.avro"] {
        assert!(is_contained(name), "{name}");
    }
    for name in ["", "/a", "a/", "a//b", "../a", "a/./b", "a/..", "a\\..\\b"] {
        assert!(!is_contained(name), "{name}");
    }
}

/// Pieces a random template is made of: tokens, and literals meant to find holes.
fn template_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{EventHub}".to_string()),
        Just("{PartitionId}".to_string()),
        Just("{Namespace}".to_string()),
        Just("{Offset}".to_string()),
        Just("{Year}".to_string()),
        Just("{Second}".to_string()),
        Just("/".to_string()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just("_".to_string()),
        Just("=".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        "[a-z]{1,3}",
        ".{0,3}",
    ]
}

/// Any string: a Kafka topic (legal or not, `_` and `.` first included), or junk.
fn topic() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Za-z0-9._-]{1,40}", "[_.][A-Za-z0-9._-]{0,10}"]
}

proptest! {
    /// Random templates never panic the parser; any template it accepts, with any namespace it
    /// accepts and any topic, partition, offset and time, names a file inside the output that
    /// readers see: no empty, `.` or `..` segment, none starting with `_` or `.`.
    #[test]
    fn accepted_templates_name_visible_files_inside_the_output(
        pieces in proptest::collection::vec(template_piece(), 0..12),
        junk in ".{0,40}",
        use_junk in any::<bool>(),
        namespace in ".{0,12}",
        topic in topic(),
        partition in 0i32..i32::MAX,
        offset in 0i64..i64::MAX,
        ms in 0i64..4_000_000_000_000,
    ) {
        let template = if use_junk { junk } else { pieces.concat() };
        let _ = check_segments(&template);
        let Ok(t) = PathTemplate::parse(&template, "avro") else {
            return Ok(());
        };
        if t.uses_namespace() && namespace_problem(&namespace).is_some() {
            return Ok(());
        }
        let name = t.render(&NameParts {
            namespace: &namespace,
            topic: &topic,
            partition,
            first_offset: offset,
            time: DateTime::from_timestamp_millis(ms).unwrap(),
        });
        prop_assert!(is_contained(&name), "{template} → {name}");
        for segment in name.split('/') {
            prop_assert!(!segment.starts_with(['_', '.']), "{template} → {name}");
        }
        // What a store would encode, the name does not hold (but `{Namespace}`'s own checks).
        prop_assert!(!name.chars().any(|c| c.is_control() || "\\{}^%`[]\"<>~#|*?".contains(c)), "{name}");
    }

    /// The topic folder mapping is one-to-one and reversible, and never hidden.
    #[test]
    fn topic_folders_are_one_to_one(a in topic(), b in topic()) {
        let (fa, fb) = (topic_folder(&a), topic_folder(&b));
        prop_assert!(!fa.starts_with(['_', '.']));
        prop_assert_eq!(topic_from_folder(&fa), Some(a.as_str()));
        if a != b {
            prop_assert_ne!(fa, fb);
        }
    }
}
