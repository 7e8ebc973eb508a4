//! Tests of the command line's parsing and validation.

use super::*;

fn parse(args: &[&str]) -> Result<RunArgs, clap::Error> {
    let mut full = vec!["hubcap", "run"];
    full.extend_from_slice(args);
    Cli::try_parse_from(full).map(|cli| match cli.command {
        Command::Run(a) => *a,
        _ => unreachable!(),
    })
}

const CONN: &str = "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=c2VjcmV0LWtleQ==;EntityPath=clicks";

#[test]
fn an_event_hubs_connection_string_sets_brokers_topic_namespace_and_sasl() {
    let cfg = parse(&["--group", "g", "--eventhubs-connection-string", CONN])
        .unwrap()
        .validate()
        .unwrap();
    assert_eq!(cfg.kafka.brokers, "contoso.servicebus.windows.net:9093");
    assert_eq!(cfg.kafka.topics, ["clicks"]);
    assert_eq!(cfg.namespace, "contoso");
    let get = |k: &str| {
        cfg.kafka
            .settings
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("security.protocol"), Some("SASL_SSL"));
    assert_eq!(get("sasl.mechanism"), Some("PLAIN"));
    assert_eq!(get("sasl.username"), Some("$ConnectionString"));
    assert_eq!(get("sasl.password"), Some(CONN));
    assert!(
        !format!("{cfg:?}").contains("c2VjcmV0"),
        "Debug shows the key"
    );

    // librdkafka accepts them: it is built with TLS (rdkafka's `ssl-vendored`) and has
    // SASL PLAIN built in. Without TLS, creating the consumer fails with "OpenSSL not
    // available at build time". The bootstrap is replaced so nothing is looked up.
    let mut kafka = cfg.client_config();
    kafka.set("bootstrap.servers", "127.0.0.1:9");
    if let Err(e) = kafka.create::<rdkafka::consumer::BaseConsumer>() {
        panic!("librdkafka refused the Event Hubs settings: {e}");
    }

    // Explicit flags win over what the string implies; -X comes after its settings.
    let cfg = parse(&[
        "--group",
        "g",
        "--eventhubs-connection-string",
        CONN,
        "--topic",
        "other",
        "--brokers",
        "10.0.0.1:9093",
        "-X",
        "session.timeout.ms=45000",
    ])
    .unwrap()
    .validate()
    .unwrap();
    assert_eq!(
        (cfg.kafka.brokers.as_str(), cfg.kafka.topics[0].as_str()),
        ("10.0.0.1:9093", "other")
    );
    assert_eq!(
        cfg.kafka
            .settings
            .iter()
            .rev()
            .find(|(k, _)| k == "session.timeout.ms")
            .unwrap()
            .1,
        "45000"
    );
}

#[test]
fn a_connection_string_without_a_hub_needs_a_topic_and_bad_strings_say_why() {
    let no_hub = CONN.replace(";EntityPath=clicks", "");
    let err = parse(&["--group", "g", "--eventhubs-connection-string", &no_hub])
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("EntityPath"), "{err}");
    let no_key = "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen";
    let err = parse(&[
        "--group",
        "g",
        "--topic",
        "t",
        "--eventhubs-connection-string",
        no_key,
    ])
    .unwrap()
    .validate()
    .unwrap_err()
    .to_string();
    assert!(err.contains("SharedAccessKey"), "{err}");
    assert!(
        parse(&["--group", "g", "--topic", "t"]).is_err(),
        "brokers or a connection string is required"
    );
}

#[test]
fn flags_parse_and_validate() {
    let a = parse(&[
        "--brokers",
        "127.0.0.1:9092",
        "--topic",
        "a",
        "--topic",
        "b",
        "--group",
        "g",
        "--window-size",
        "1MiB",
        "--window-time",
        "10s",
        "-X",
        "security.protocol=SASL_SSL",
        "-X",
        "sasl.password=Endpoint=sb://x/;Key=abc=",
    ])
    .unwrap();
    assert_eq!(a.topics, ["a", "b"]);
    let cfg = a.validate().unwrap();
    assert_eq!(
        cfg.kafka.settings[1],
        ("sasl.password".into(), "Endpoint=sb://x/;Key=abc=".into())
    );
    assert_eq!(cfg.namespace, "127.0.0.1");
    assert_eq!(cfg.policy.max_bytes, 1 << 20);
}

#[test]
fn bad_flags_name_the_fix() {
    let err = parse(&[
        "--brokers",
        "b:1",
        "--topic",
        "t",
        "--group",
        "g",
        "--window-size",
        "big",
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("300MiB"), "{err}");
    let err = parse(&[
        "--brokers",
        "b:1",
        "--topic",
        "t",
        "--group",
        "g",
        "-X",
        "Endpoint-sb://secret-namespace",
    ])
    .unwrap()
    .validate()
    .unwrap_err()
    .to_string();
    assert!(err.contains("KEY=VALUE"), "{err}");
    assert!(!err.contains("secret-namespace"), "not echoed whole: {err}");
    let bad_template = parse(&[
        "--brokers",
        "b:1",
        "--topic",
        "t",
        "--group",
        "g",
        "--path-format",
        "{EventHub}/{Partition}",
    ])
    .unwrap()
    .validate()
    .unwrap_err()
    .to_string();
    assert!(bad_template.contains("{PartitionId}"), "{bad_template}");
    let bad_topic = parse(&["--brokers", "b:1", "--topic", "a/b", "--group", "g"])
        .unwrap()
        .validate()
        .unwrap_err();
    assert!(matches!(bad_topic, ConfigError::Topic(_)));
}

fn validated(extra: &[&str]) -> Result<RunConfig, ConfigError> {
    use clap::Parser;
    let base = ["hubcap", "run", "--group", "$Default", "--topic", "clicks"];
    let cli = Cli::try_parse_from(base.iter().chain(extra)).unwrap();
    match cli.command {
        Command::Run(args) => args.validate(),
        _ => unreachable!("a run command"),
    }
}

#[test]
fn flags_default_the_namespace_and_refuse_what_cannot_work() {
    let ns = |extra: &[&str]| {
        validated(extra)
            .unwrap()
            .sdk_checkpoints
            .map(|s| s.namespace)
    };
    let sdk = ["--azure-sdk-checkpoints", "az://cps"];
    let conn =
        "Endpoint=sb://Contoso.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=a2V5";
    assert_eq!(ns(&["--brokers", "b.example:9092"]), None, "off by default");
    assert_eq!(
        ns(&[&sdk[..], &["--brokers", "b.example:9092,c:1"]].concat()).as_deref(),
        Some("b.example")
    );
    assert_eq!(
        ns(&[
            &sdk[..],
            &[
                "--eventhubs-connection-string",
                conn,
                "--brokers",
                "proxy:9093"
            ]
        ]
        .concat())
        .as_deref(),
        Some("contoso.servicebus.windows.net"),
        "the connection string's host, even with other brokers"
    );
    assert_eq!(
        ns(&[
            &sdk[..],
            &["--brokers", "b:1", "--azure-sdk-namespace", "X.Y"]
        ]
        .concat())
        .as_deref(),
        Some("X.Y")
    );
    let refused = |extra: &[&str]| validated(extra).unwrap_err().to_string();
    let local = refused(&["--brokers", "b:1", "--azure-sdk-checkpoints", "/tmp/cps"]);
    assert!(local.contains("az://"), "{local}");
    let slash = refused(
        &[
            &sdk[..],
            &["--brokers", "b:1", "--azure-sdk-namespace", "a/b"],
        ]
        .concat(),
    );
    assert!(slash.contains("'/'"), "{slash}");

    // The consumer group defaults to --group; its own flag sets it apart from the Kafka one.
    let group = |extra: &[&str]| {
        validated(extra)
            .unwrap()
            .sdk_checkpoints
            .map(|s| s.consumer_group)
    };
    let brokers = ["--brokers", "b:1"];
    assert_eq!(group(&brokers), None, "off by default");
    assert_eq!(
        group(&[&sdk[..], &brokers[..]].concat()).as_deref(),
        Some("$Default")
    );
    let own = ["--azure-sdk-consumer-group", "Processors"];
    assert_eq!(
        group(&[&sdk[..], &brokers[..], &own[..]].concat()).as_deref(),
        Some("Processors")
    );
    let bad = ["--azure-sdk-consumer-group", "a/b"];
    let err = refused(&[&sdk[..], &brokers[..], &bad[..]].concat());
    assert!(err.contains("--azure-sdk-consumer-group"), "{err}");
}

#[test]
fn a_delta_table_writes_parquet_inside_its_folder_partitioned_by_the_hive_folders() {
    let run = |extra: &[&str]| {
        let mut args = vec!["--brokers", "b:1", "--topic", "t", "--group", "g"];
        args.extend_from_slice(extra);
        parse(&args).unwrap().validate()
    };
    let cfg = run(&["--table", "delta"]).unwrap();
    assert_eq!(
        cfg.format.name(),
        "parquet",
        "--table delta implies Parquet"
    );
    let table = cfg.table.unwrap();
    assert_eq!(table.path, "{EventHub}");
    assert_eq!(table.partition_columns, ["partition", "date"]);
    assert_eq!(
        table.partition_values("partition=3/date=2026-12-03/00000000000000000007.parquet"),
        [
            ("partition".to_string(), "3".to_string()),
            ("date".to_string(), "2026-12-03".to_string())
        ]
    );

    let avro = run(&["--table", "delta", "--format", "avro"]).unwrap_err();
    assert!(avro.to_string().contains("drop --format avro"), "{avro}");
    let outside = run(&[
        "--table",
        "delta",
        "--path-format",
        "x/{EventHub}/p={PartitionId}/{Offset}",
    ])
    .unwrap_err()
    .to_string();
    assert!(outside.contains("inside --table-path"), "{outside}");
    let flat = run(&[
        "--table",
        "delta",
        "--path-format",
        "{EventHub}/{PartitionId}-{Offset}",
    ])
    .unwrap_err()
    .to_string();
    assert!(flat.contains("key=value folders"), "{flat}");
    let shared = run(&["--table", "delta", "--table-path", "all"])
        .unwrap_err()
        .to_string();
    assert!(shared.contains("{EventHub}"), "{shared}");
    let custom = run(&[
        "--table",
        "delta",
        "--table-path",
        "lake/{EventHub}",
        "--path-format",
        "lake/{EventHub}/day={Year}{Month}{Day}/p={PartitionId}/{Offset}",
    ])
    .unwrap();
    assert_eq!(custom.table.unwrap().partition_columns, ["day", "p"]);
    assert!(run(&[]).unwrap().table.is_none());
    assert_eq!(run(&[]).unwrap().format.name(), "avro");
}

#[test]
fn an_iceberg_table_or_both_write_parquet_in_the_same_layout() {
    let run = |extra: &[&str]| {
        let mut args = vec!["--brokers", "b:1", "--topic", "t", "--group", "g"];
        args.extend_from_slice(extra);
        parse(&args).unwrap().validate()
    };
    let both = Formats {
        delta: true,
        iceberg: true,
    };
    let cases: [(&[&str], Formats); 4] = [
        (&["--table", "iceberg"], Formats::ICEBERG),
        (&["--table", "delta"], Formats::DELTA),
        (&["--table", "delta,iceberg"], both),
        (&["--table", "iceberg", "--table", "delta"], both),
    ];
    for (flags, formats) in cases {
        let cfg = run(flags).unwrap();
        assert_eq!(cfg.format.name(), "parquet", "{flags:?}");
        let table = cfg.table.unwrap();
        assert_eq!(table.formats, formats, "{flags:?}");
        assert_eq!(table.path, "{EventHub}");
        assert_eq!(table.partition_columns, ["partition", "date"]);
    }
    // A catalog keeps Iceberg tables only.
    let catalog = ["--iceberg-catalog", "http://127.0.0.1:8181"];
    let lone = run(&[&catalog[..], &["--table", "delta"]].concat()).unwrap_err();
    assert!(lone.to_string().contains("add --table iceberg"), "{lone}");
    let kept = run(&[
        &catalog[..],
        &["--table", "iceberg", "--iceberg-namespace", "a.b"],
    ]
    .concat())
    .unwrap()
    .table
    .unwrap()
    .catalog
    .unwrap();
    assert_eq!(
        (kept.uri.as_str(), kept.namespace),
        (
            "http://127.0.0.1:8181",
            vec!["a".to_string(), "b".to_string()]
        )
    );
    let avro = run(&["--table", "delta,iceberg", "--format", "avro"])
        .unwrap_err()
        .to_string();
    assert!(
        avro.contains("--table delta,iceberg writes Parquet")
            && avro.contains("drop --format avro"),
        "{avro}"
    );
    let outside = run(&[
        "--table",
        "iceberg",
        "--path-format",
        "{EventHub}/{PartitionId}-{Offset}",
    ])
    .unwrap_err()
    .to_string();
    assert!(outside.contains("key=value folders"), "{outside}");
    assert!(parse(&[
        "--brokers",
        "b:1",
        "--topic",
        "t",
        "--group",
        "g",
        "--table",
        "hudi"
    ])
    .is_err());
}

#[test]
fn a_credential_given_as_a_template_is_not_quoted() {
    let conn =
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=S3CRET";
    for flag in ["--path-format", "--table-path"] {
        let err = parse(&[
            "--brokers",
            "b:1",
            "--topic",
            "t",
            "--group",
            "g",
            "--table",
            "delta",
            flag,
            conn,
        ])
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains(flag) && !err.contains("S3CRET"), "{err}");
    }
}
