//! `--config hubcap.toml` and `hubcap config`: precedence (flags > environment > file >
//! defaults), errors that name the key, and redaction.
//!
//! In-process tests parse with `hubcap::cli::file::parse`. Tests that need environment
//! variables run the binary with an environment of its own (`env_clear`), so no test changes
//! this process's environment and none races another.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hubcap::cli::file::{parse, ConfigFileError};
use hubcap::cli::{Command as Sub, RunArgs};

const BIN: &str = env!("CARGO_BIN_EXE_hubcap");

/// Every kind of value: scalars, a repeatable flag, switches and `-X` settings (bare dotted keys,
/// which TOML reads as nested tables, and a number).
const FILE: &str = r#"
brokers = "file:9092"
group = "file-group"
window-size = "2MiB"
topic = ["file-a", "file-b"]
once = true
empty_files = false

[kafka]
security.protocol = "SASL_SSL"
"session.timeout.ms" = 45000
"#;

/// Only what `run` requires.
const MINIMAL: &str = r#"
brokers = "file:9092"
group = "file-group"
topic = "file-a"
"#;

fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hubcap.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// `hubcap run --config PATH FLAGS…`: the parsed flags and `hubcap config`'s document.
fn parse_run(path: &Path, flags: &[&str]) -> Result<(RunArgs, String), ConfigFileError> {
    let mut argv: Vec<String> = vec!["hubcap".into(), "run".into(), "--config".into()];
    argv.push(path.display().to_string());
    argv.extend(flags.iter().map(|s| s.to_string()));
    let parsed = parse(argv)?;
    match parsed.cli.command {
        Sub::Run(args) => Ok((*args, parsed.effective.to_toml())),
        _ => unreachable!("parsed a run command"),
    }
}

/// `hubcap config --config PATH FLAGS…` with exactly this environment.
fn hubcap_config(path: &Path, env: &[(&str, &str)], flags: &[&str]) -> Output {
    Command::new(BIN)
        .arg("config")
        .arg("--config")
        .arg(path)
        .args(flags)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that a document has each of these lines.
fn assert_lines(doc: &str, lines: &[&str], case: &str) {
    for line in lines {
        assert!(
            doc.lines().any(|l| l == *line),
            "{case}: no line {line:?} in\n{doc}"
        );
    }
}

/// Reads one field of the parsed flags.
type Field = fn(&RunArgs) -> String;

/// (case, file, flags, field, its value, lines `hubcap config` prints)
type FileRow = (
    &'static str,
    &'static str,
    &'static [&'static str],
    Field,
    &'static str,
    &'static [&'static str],
);

#[test]
fn flags_win_over_the_file_and_the_file_over_defaults() {
    let window: Field = |a| a.window_size.to_string();
    let topics: Field = |a| a.topics.join(",");
    let once: Field = |a| a.once.to_string();
    let empty: Field = |a| a.empty_files.to_string();
    let kafka: Field = |a| {
        let mut k: Vec<String> = a.kafka.iter().map(|s| s.0.clone()).collect();
        k.sort();
        k.join(" ")
    };
    #[rustfmt::skip]
    let cases: &[FileRow] = &[
        ("scalar: file", FILE, &[], window, "2MiB", &[r#"window-size = "2MiB"  # file"#]),
        ("scalar: flag", FILE, &["--window-size", "1MiB"], window, "1MiB", &[r#"window-size = "1MiB"  # flag"#]),
        ("scalar: default", MINIMAL, &[], window, "300MiB", &[r#"window-size = "300MiB"  # default"#]),
        ("repeatable: file", FILE, &[], topics, "file-a,file-b", &[r#"topic = ["file-a", "file-b"]  # file"#]),
        ("repeatable: a flag replaces the list", FILE, &["--topic", "x"], topics, "x", &[r#"topic = ["x"]  # flag"#]),
        ("repeatable: one value for a list", MINIMAL, &[], topics, "file-a", &[r#"topic = ["file-a"]  # file"#]),
        ("switch: file", FILE, &[], once, "true", &["once = true  # file"]),
        ("switch: flag", FILE, &["--empty-files"], empty, "true", &["empty-files = true  # flag"]),
        ("switch: false in the file", FILE, &[], empty, "false", &["empty-files = false  # file"]),
        ("switch: default", MINIMAL, &[], once, "false", &["once = false  # default"]),
        ("-X: file", FILE, &[], kafka, "security.protocol=SASL_SSL session.timeout.ms=45000",
            &[r#""security.protocol" = "SASL_SSL"  # file"#, r#""session.timeout.ms" = "45000"  # file"#]),
        ("-X: a flag overrides its key only", FILE, &["-X", "session.timeout.ms=10000"], kafka,
            "security.protocol=SASL_SSL session.timeout.ms=10000",
            &[r#""session.timeout.ms" = "10000"  # flag"#, r#""security.protocol" = "SASL_SSL"  # file"#]),
        ("-X: default", MINIMAL, &[], kafka, "", &["# kafka: not set"]),
    ];
    for (case, text, flags, field, value, lines) in cases {
        let (_dir, path) = write(text);
        let (args, doc) = parse_run(&path, flags).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(field(&args), *value, "{case}");
        assert_lines(&doc, lines, case);
        args.validate().unwrap_or_else(|e| panic!("{case}: {e}"));
    }
}

/// (case, environment, flags, lines `hubcap config` prints)
type EnvRow = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
    &'static [&'static str],
);

#[test]
fn the_environment_wins_over_the_file_and_flags_over_the_environment() {
    let (_dir, path) = write(FILE);
    let kafka_env: &[(&str, &str)] =
        &[("HUBCAP_KAFKA_CONFIG", "session.timeout.ms=20000\ndebug=all")];
    #[rustfmt::skip]
    let cases: &[EnvRow] = &[
        ("scalar: env", &[("HUBCAP_WINDOW_SIZE", "3MiB")], &[], &[r#"window-size = "3MiB"  # env HUBCAP_WINDOW_SIZE"#]),
        ("scalar: flag", &[("HUBCAP_WINDOW_SIZE", "3MiB")], &["--window-size", "1MiB"], &[r#"window-size = "1MiB"  # flag"#]),
        ("repeatable: env", &[("HUBCAP_TOPIC", "e1,e2")], &[], &[r#"topic = ["e1", "e2"]  # env HUBCAP_TOPIC"#]),
        ("repeatable: flag", &[("HUBCAP_TOPIC", "e1,e2")], &["--topic", "f"], &[r#"topic = ["f"]  # flag"#]),
        ("switch: env false beats file true", &[("HUBCAP_ONCE", "false")], &[], &["once = false  # env HUBCAP_ONCE"]),
        ("switch: flag", &[("HUBCAP_ONCE", "false")], &["--once"], &["once = true  # flag"]),
        ("-X: env overrides its keys only", kafka_env, &[], &[
            r#""session.timeout.ms" = "20000"  # env HUBCAP_KAFKA_CONFIG"#,
            r#"debug = "all"  # env HUBCAP_KAFKA_CONFIG"#,
            r#""security.protocol" = "SASL_SSL"  # file"#,
        ]),
        ("-X: a flag hides the env, not the file", kafka_env, &["-X", "session.timeout.ms=10000"], &[
            r#""session.timeout.ms" = "10000"  # flag"#,
            r#""security.protocol" = "SASL_SSL"  # file"#,
        ]),
        ("global flag: env", &[("HUBCAP_LOG_FORMAT", "json")], &[], &[r#"log-format = "json"  # env HUBCAP_LOG_FORMAT"#]),
    ];
    for (case, env, flags, lines) in cases {
        let out = hubcap_config(&path, env, flags);
        assert!(out.status.success(), "{case}: {}", stderr(&out));
        assert_lines(&stdout(&out), lines, case);
    }
    // HUBCAP_KAFKA_CONFIG beside a -X flag: clap takes the flag's settings only, as without a file.
    let out = hubcap_config(&path, kafka_env, &["-X", "session.timeout.ms=1"]);
    assert!(!stdout(&out).contains("debug"), "{}", stdout(&out));
}

#[test]
fn hubcap_config_names_the_file_from_the_environment_and_other_commands_ignore_it() {
    let (dir, path) = write(MINIMAL);
    let out = Command::new(BIN)
        .arg("config")
        .env_clear()
        .env("HUBCAP_CONFIG", &path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = stdout(&out);
    assert!(
        doc.contains(&format!("# Configuration file: {}", path.display())),
        "{doc}"
    );
    assert_lines(&doc, &[r#"group = "file-group"  # file"#], "HUBCAP_CONFIG");

    // `inspect` reads no configuration file, even a missing one.
    let out = Command::new(BIN)
        .args(["inspect", "--stats"])
        .arg(dir.path())
        .env_clear()
        .env("HUBCAP_CONFIG", dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert!(
        !stderr(&out).contains("configuration file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn hubcap_config_redacts_secrets_wherever_they_come_from() {
    let conn = "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=S3CRET-CONN;EntityPath=clicks";
    let (_dir, path) = write(&format!(
        r#"
group = "g"
eventhubs-connection-string = "{conn}"
output = "az://capture/archive?sv=2024&sig=S3CRET-SAS"
checkpoints = "s3://user:S3CRET-PASSWORD@bucket/checkpoints"

[kafka]
sasl.password = "S3CRET-FILE"
"#
    ));
    let env = [("HUBCAP_KAFKA_CONFIG", "sasl.oauthbearer.config=S3CRET-ENV")];
    let out = hubcap_config(&path, &env, &[]);
    let (doc, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{err}");
    assert!(
        !doc.contains("S3CRET") && !err.contains("S3CRET"),
        "{doc}\n{err}"
    );
    assert_lines(
        &doc,
        &[
            r#"eventhubs-connection-string = "<redacted>"  # file"#,
            r#"output = "az://capture/archive?<redacted>"  # file"#,
            r#"checkpoints = "s3://user:<redacted>@bucket/checkpoints"  # file"#,
            r#""sasl.oauthbearer.config" = "<redacted>"  # env HUBCAP_KAFKA_CONFIG"#,
            r#""sasl.password" = "<redacted>"  # file"#,
        ],
        "redaction",
    );
    let out = hubcap_config(&path, &[], &["-X", "ssl.key.password=S3CRET-FLAG"]);
    let (doc, err) = (stdout(&out), stderr(&out));
    assert!(
        !doc.contains("S3CRET") && !err.contains("S3CRET"),
        "{doc}\n{err}"
    );
    assert_lines(
        &doc,
        &[r#""ssl.key.password" = "<redacted>"  # flag"#],
        "flag",
    );

    // Given as the wrong type, a secret is not echoed either.
    let (_dir, path) = write(&format!("eventhubs-connection-string = [\"{conn}\"]"));
    let err = parse_run(&path, &[]).unwrap_err().to_string();
    assert!(err.contains("`eventhubs-connection-string`"), "{err}");
    assert!(!err.contains("S3CRET"), "{err}");
}

#[test]
fn toml_syntax_errors_give_the_line_but_not_its_secret() {
    let (_dir, path) = write("group = \"g\"\n[kafka]\nsasl.password = \"S3CRET\n");
    let err = parse_run(&path, &[]).unwrap_err().to_string();
    assert!(err.contains("hubcap.toml:3:"), "{err}");
    assert!(err.contains("not valid TOML"), "{err}");
    assert!(!err.contains("S3CRET"), "{err}");
}

#[test]
fn unknown_keys_and_bad_values_name_the_key_and_the_file() {
    // (file, what the error says)
    let cases: &[(&str, &[&str])] = &[
        (
            "windw-size = \"1MiB\"",
            &[
                "hubcap.toml",
                "unknown key `windw-size`",
                "did you mean `window-size`?",
            ],
        ),
        ("[run]\ngroup = \"g\"", &["unknown key `run`"]),
        ("window-size = \"big\"", &["`window-size`", "300MiB"]),
        (
            "window-size = [\"1MiB\"]",
            &["`window-size`", "expected one value", "got an array"],
        ),
        ("format = \"xml\"", &["`format`", "avro, parquet"]),
        (
            "once = \"yes\"",
            &["`once`", "expected true or false, got a string"],
        ),
        ("topic = [\"a\", [\"b\"]]", &["`topic`", "array of strings"]),
        ("kafka = \"debug=all\"", &["`kafka`", "[kafka] table"]),
        (
            "window_size = \"1MiB\"\nwindow-size = \"2MiB\"",
            &["given twice"],
        ),
        (
            "config = \"other.toml\"",
            &["`config`", "cannot name another"],
        ),
    ];
    for (text, says) in cases {
        let (_dir, path) = write(&format!("brokers = \"b:1\"\ngroup = \"g\"\n{text}"));
        let err = parse_run(&path, &["--topic", "t"])
            .expect_err(text)
            .to_string();
        for s in *says {
            assert!(err.contains(s), "{text:?}: {err:?} does not say {s:?}");
        }
        // A value's error is the same when a flag overrides it: the file is checked whole.
        assert!(parse_run(&path, &["--window-size", "1MiB", "--format", "avro"]).is_err());
    }
    let missing = Path::new("/nonexistent/hubcap.toml");
    let err = parse_run(missing, &[]).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/hubcap.toml"), "{err}");
}

#[test]
fn file_values_are_values_even_when_they_look_like_flags_and_underscores_work() {
    let (_dir, path) = write(
        "brokers = \"b:1\"\ntopic = \"t\"\ngroup = \"--group\"\nshutdown_timeout = \"1m\"\nrow-group-size = \"1MiB\"",
    );
    let (args, _) = parse_run(&path, &[]).unwrap();
    assert_eq!(args.group, "--group");
    assert_eq!(args.shutdown_timeout.0.as_secs(), 60);
    assert_eq!(args.row_group_size.map(|s| s.0), Some(1 << 20));
}

#[test]
fn hubcap_configs_output_is_accepted_as_a_config_file() {
    let (dir, path) = write(FILE);
    let first = hubcap_config(&path, &[("HUBCAP_WINDOW_TIME", "7m")], &["--topic", "x"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let again = dir.path().join("again.toml");
    std::fs::write(&again, &first.stdout).unwrap();
    let second = hubcap_config(&again, &[], &[]);
    assert!(second.status.success(), "{}", stderr(&second));
    let settings = |doc: &str| -> Vec<String> {
        doc.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split("  # ").next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(settings(&stdout(&first)), settings(&stdout(&second)));
}

#[test]
fn hubcap_config_prints_an_invalid_config_then_the_error_and_fails() {
    let (_dir, path) = write(&format!(
        "{MINIMAL}\nwindow-time = \"0s\"\nlog-format = \"json\""
    ));
    let out = hubcap_config(&path, &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_lines(&stdout(&out), &[r#"window-time = "0s"  # file"#], "invalid");
    // The file's log-format applies: the error is a JSON log line.
    let err = stderr(&out);
    assert!(
        err.contains("window-time must be greater than zero"),
        "{err}"
    );
    assert!(err.trim_start().starts_with('{'), "{err}");

    // What clap refuses (no --group anywhere) is clap's error, exit code 2.
    let (_dir, path) = write("brokers = \"b:1\"\ntopic = \"t\"");
    let out = hubcap_config(&path, &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--group"), "{}", stderr(&out));
}

#[test]
fn the_example_file_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hubcap.toml");
    let (args, doc) = parse_run(&path, &[]).unwrap();
    let cfg = args.validate().unwrap();
    assert!(!cfg.kafka.topics.is_empty());
    assert!(doc.contains("# file"), "{doc}");
}

#[test]
fn with_a_table_hubcap_config_shows_the_format_and_names_it_implies() {
    let (_dir, path) =
        write("brokers = \"b:9092\"\ntopic = [\"t\"]\ngroup = \"g\"\ntable = \"delta\"\n");
    let (_, doc) = parse_run(&path, &[]).unwrap();
    assert_lines(
        &doc,
        &[
            r#"format = "parquet"  # derived from table"#,
            r#"path-format = "{EventHub}/partition={PartitionId}/date={Year}-{Month}-{Day}/{Offset}"  # derived from table"#,
        ],
        "table from the file",
    );
    // What is given stays as given.
    let flags = ["--path-format", "{EventHub}/p={PartitionId}/{Offset}"];
    let (args, doc) = parse_run(&path, &flags).unwrap();
    assert_lines(
        &doc,
        &[r#"path-format = "{EventHub}/p={PartitionId}/{Offset}"  # flag"#],
        "path-format given",
    );
    assert_eq!(args.path_format, "{EventHub}/p={PartitionId}/{Offset}");
    // Without a table, nothing is derived.
    let (_dir, plain) = write("brokers = \"b:9092\"\ntopic = [\"t\"]\ngroup = \"g\"\n");
    let (_, doc) = parse_run(&plain, &[]).unwrap();
    assert!(!doc.contains("derived"), "{doc}");
}

/// `--table` is a list: `delta,iceberg` in a flag or `HUBCAP_TABLE`, an array (or one value)
/// in the file; both tables imply what one does.
#[test]
fn tables_are_a_list_in_the_file_the_environment_and_flags() {
    let (_dir, path) = write(
        "brokers = \"b:9092\"\ntopic = [\"t\"]\ngroup = \"g\"\ntable = [\"delta\", \"iceberg\"]\n",
    );
    let (args, doc) = parse_run(&path, &[]).unwrap();
    assert_lines(
        &doc,
        &[
            r#"table = ["delta", "iceberg"]  # file"#,
            r#"format = "parquet"  # derived from table"#,
        ],
        "both tables from the file",
    );
    let table = args.validate().unwrap().table.unwrap();
    assert!(table.formats.delta && table.formats.iceberg);
    let (args, _) = parse_run(&path, &["--table", "iceberg"]).unwrap();
    let table = args.validate().unwrap().table.unwrap();
    assert!(
        !table.formats.delta && table.formats.iceberg,
        "a flag replaces the list"
    );
    let out = hubcap_config(&path, &[("HUBCAP_TABLE", "iceberg,delta")], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_lines(
        &stdout(&out),
        &[r#"table = ["iceberg", "delta"]  # env HUBCAP_TABLE"#],
        "both tables from the environment",
    );
}

#[test]
fn with_a_connection_string_hubcap_config_shows_what_it_implies_and_no_secret() {
    let (_dir, path) = write("group = \"g\"\n");
    let string = "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=c2VjcmV0;EntityPath=clicks";
    let out = hubcap_config(
        &path,
        &[("HUBCAP_EVENTHUBS_CONNECTION_STRING", string)],
        &["-X", "session.timeout.ms=45000"],
    );
    let doc = stdout(&out);
    let derived = "# derived from eventhubs-connection-string";
    assert_lines(
        &doc,
        &[
            &format!(r#"brokers = "contoso.servicebus.windows.net:9093"  {derived}"#),
            &format!(r#"topic = ["clicks"]  {derived}"#),
            &format!(r#"namespace = "contoso"  {derived}"#),
            &format!(r#""security.protocol" = "SASL_SSL"  {derived}"#),
            &format!(r#""sasl.username" = "$ConnectionString"  {derived}"#),
            &format!(r#""sasl.password" = "<redacted>"  {derived}"#),
            // An explicit -X wins over the preset.
            r#""session.timeout.ms" = "45000"  # flag"#,
        ],
        "connection string",
    );
    assert!(!doc.contains("c2VjcmV0"), "{doc}");
    assert_eq!(doc.matches("session.timeout.ms").count(), 1, "{doc}");
    // Given settings stay as given.
    let out = hubcap_config(
        &path,
        &[("HUBCAP_EVENTHUBS_CONNECTION_STRING", string)],
        &["--topic", "other", "--brokers", "127.0.0.1:9092"],
    );
    assert_lines(
        &stdout(&out),
        &[
            r#"topic = ["other"]  # flag"#,
            r#"brokers = "127.0.0.1:9092"  # flag"#,
        ],
        "given",
    );
}
