//! Operator mistakes, end to end (issue 21): a secret given the Java client's way
//! (`-X sasl.jaas.config=…PlainLoginModule… password="Endpoint=…;SharedAccessKey=…"`) or as a bad
//! value in the configuration file is printed nowhere (stdout, stderr, JSON logs, metrics,
//! files); path pieces that would leave the output or hide files from readers are refused with
//! exit 2 naming the flag; a topic whose name starts with `_` is archived where readers look,
//! read back by pyarrow and DuckDB, and audited clean against the broker.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::*;

/// The planted secret: in a connection string, inside a JAAS configuration.
const SECRET: &str = "PLANTEDs3cretKEYq7Zx0vW9";

fn jaas() -> String {
    format!(
        "org.apache.kafka.common.security.plain.PlainLoginModule required \
         username=\"$ConnectionString\" \
         password=\"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey={SECRET}\";"
    )
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_hidden(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} shows the secret:\n{text}");
    assert!(!text.contains("panicked"), "{what}: a panic:\n{text}");
}

/// Every file under `dir`, bytes included: the secret is in none of them.
fn assert_no_file_holds_it(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files += 1;
                let bytes = std::fs::read(&p).unwrap();
                let found = bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
                assert!(!found, "{} holds the secret", p.display());
            }
        }
    }
    assert!(files > 0, "nothing was written under {}", dir.display());
}

#[test]
fn hubcap_config_and_file_errors_never_show_the_secret() {
    let jaas_flag = format!("sasl.jaas.config={}", jaas());
    let base = ["--brokers", "127.0.0.1:9", "--topic", "t", "--group", "g"];
    let out = hubcap()
        .arg("config")
        .args(base)
        .args(["-X", &jaas_flag])
        .output()
        .unwrap();
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert_hidden("hubcap config", &shown);
    assert!(
        shown.contains("\"sasl.jaas.config\" = \"<redacted>\""),
        "{shown}"
    );

    // The same from the environment, as the Java client's form of HUBCAP_KAFKA_CONFIG.
    let out = hubcap()
        .arg("config")
        .args(base)
        .env("HUBCAP_KAFKA_CONFIG", &jaas_flag)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_hidden("hubcap config (environment)", &text(&out));

    // A secret where a size belongs, in the file: the error names the file and the key.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hubcap.toml");
    std::fs::write(
        &file,
        format!(
            "window-size = \"{SECRET}\"\n[kafka]\n\"sasl.jaas.config\" = '{}'\n",
            jaas()
        ),
    )
    .unwrap();
    for command in ["config", "run"] {
        let out = hubcap()
            .arg(command)
            .args(base)
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap();
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(2), "{command}: {shown}");
        assert_hidden(command, &shown);
        assert!(
            shown.contains("hubcap.toml") && shown.contains("`window-size`: invalid size"),
            "{command}: {shown}"
        );
    }

    // The same in the environment: the variable is named, its value is not.
    for command in ["config", "run"] {
        let out = hubcap()
            .arg(command)
            .args(base)
            .env("HUBCAP_WINDOW_SIZE", SECRET)
            .output()
            .unwrap();
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(2), "{command}: {shown}");
        assert_hidden(command, &shown);
        assert!(
            shown.contains("HUBCAP_WINDOW_SIZE (--window-size): invalid size"),
            "{command}: {shown}"
        );
    }

    // A Java login module librdkafka has no counterpart for: refused, naming the fix.
    let oauth = format!(
        "sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientSecret=\"{SECRET}\";"
    );
    let out = hubcap()
        .arg("run")
        .args(base)
        .args(["-X", &oauth])
        .output()
        .unwrap();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert_hidden("an OAuth JAAS config", &shown);
    assert!(shown.contains("sasl.oauthbearer"), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_with_the_java_sasl_setting_print_and_write_no_secret() {
    let t = Kafka::shared();
    let topic = unique("jaas");
    t.create_topic(&topic, 2).await;
    let produced = produce(&t.brokers, &topic, 0, 200).await;
    wait_for_high_watermarks(&t.brokers, &topic, 2, 200);
    let jaas_flag = format!("sasl.jaas.config={}", jaas());

    // --once, text logs: the SASL settings the PLAINTEXT broker ignores are accepted.
    let out = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = run_once(
        &t.brokers,
        &topic,
        &unique("g"),
        out.path().to_str().unwrap(),
        &["-X", &jaas_flag],
    );
    assert!(ok, "{stderr}");
    assert_hidden("run --once", &format!("{stdout}{stderr}"));
    let starting = stderr
        .lines()
        .find(|l| l.contains("starting:"))
        .unwrap_or_else(|| panic!("no starting: line\n{stderr}"));
    assert!(
        starting.contains("sasl.username=$ConnectionString")
            && starting.contains("sasl.password=<redacted>"),
        "{starting}"
    );
    let a = audit(&read_local(out.path()), &topic, &produced);
    assert_eq!((a.events, a.duplicates, a.missing), (200, 0, 0));
    assert_no_file_holds_it(out.path());

    // Continuous, JSON logs, metrics scraped; then SIGTERM.
    let out = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = hubcap();
    cmd.args(["run", "--brokers", &t.brokers, "--topic", &topic])
        .args(["--group", &unique("g"), "--log-format", "json"])
        .args(["--output", out.path().to_str().unwrap()])
        .args(["--window-time", "1s", "-X", &jaas_flag])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")]);
    let mut hubcap = Instance::spawn("hubcap", cmd);
    hubcap.wait_for_line(0, "serving /metrics", Duration::from_secs(30));
    hubcap.wait_for_line(0, "partitions assigned", Duration::from_secs(60));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while read_local(out.path()).len() < 2 {
        assert!(std::time::Instant::now() < deadline, "{}", hubcap.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    let metrics = scrape(port);
    assert!(metrics.contains("hubcap_"), "{metrics}");
    assert_hidden("/metrics", &metrics);
    hubcap.signal(libc::SIGTERM);
    assert!(hubcap.wait_exit(Duration::from_secs(60)).success());
    let log = hubcap.lines().join("\n");
    assert!(
        hubcap
            .lines()
            .iter()
            .any(|l| l.starts_with('{') && l.contains("sasl.password=<redacted>")),
        "a JSON starting: line: {log}"
    );
    assert_hidden("JSON logs", &log);
    assert_no_file_holds_it(out.path());
}

fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn path_pieces_that_escape_or_hide_exit_2_naming_the_flag() {
    let base = ["--topic", "t", "--group", "g"];
    let cases: &[(&[&str], &str)] = &[
        (
            &["--path-format", "../{EventHub}/{PartitionId}"],
            "--path-format",
        ),
        (
            &["--path-format", "{EventHub}/./{PartitionId}"],
            "--path-format",
        ),
        (
            &["--path-format", "_archive/{EventHub}/{PartitionId}"],
            "--path-format",
        ),
        (
            &["--path-format", "{EventHub}/.p{PartitionId}"],
            "--path-format",
        ),
        (&["--namespace", "../.."], "--namespace"),
        (&["--namespace", ".."], "--namespace"),
        (&["--namespace", "_ns"], "--namespace"),
        (&["--namespace", ".ns"], "--namespace"),
        (&["--namespace", "a/b"], "--namespace"),
        (&["--brokers", "_kafka:9092"], "{Namespace}"),
        (
            &["--table", "delta", "--table-path", "_lake/{EventHub}"],
            "--table-path",
        ),
        (
            &["--table", "delta", "--table-path", "../{EventHub}"],
            "--table-path",
        ),
    ];
    for (flags, named) in cases {
        for command in ["run", "config"] {
            let brokers: &[&str] = if flags.contains(&"--brokers") {
                &[]
            } else {
                &["--brokers", "127.0.0.1:9"]
            };
            let out = hubcap()
                .arg(command)
                .args(base)
                .args(brokers)
                .args(*flags)
                .output()
                .unwrap();
            let shown = String::from_utf8_lossy(&out.stderr).into_owned();
            assert_eq!(out.status.code(), Some(2), "{command} {flags:?}: {shown}");
            assert!(
                shown.contains(named),
                "{command} {flags:?} names {named}: {shown}"
            );
        }
    }
    // The read side takes the same templates: `audit` and `repair` refuse them as usage too.
    let dir = tempfile::tempdir().unwrap();
    for command in ["audit", "repair"] {
        let out = hubcap()
            .args([command, "--output", dir.path().to_str().unwrap()])
            .args(["--brokers", "127.0.0.1:9"])
            .args(["--path-format", "_archive/{EventHub}/{PartitionId}"])
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{command}: {shown}");
        assert!(shown.contains("--path-format"), "{command}: {shown}");
    }
    // The namespace is checked only where it is used.
    let out = hubcap()
        .arg("config")
        .args(base)
        .args(["--brokers", "127.0.0.1:9"])
        .args([
            "--namespace",
            "_ns",
            "--path-format",
            "{EventHub}/{PartitionId}",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_topic_named_with_an_underscore_is_archived_where_readers_look() {
    let t = Kafka::shared();
    let topic = unique("_events");
    let group = unique("g");
    t.create_topic(&topic, 3).await;
    produce(&t.brokers, &topic, 0, 450).await;
    wait_for_high_watermarks(&t.brokers, &topic, 3, 450);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let (ok, _, stderr) = run_once(
        &t.brokers,
        &topic,
        &group,
        dir,
        &[
            "--format",
            "parquet",
            "--namespace",
            "ns",
            "--window-size",
            "16KiB",
        ],
    );
    assert!(ok, "{stderr}");
    let folder = out.path().join("ns").join(format!("@{topic}"));
    assert!(folder.is_dir(), "no {}", folder.display());
    assert!(!out.path().join("ns").join(&topic).exists());

    // Readers that skip `_` and `.` folders see every record.
    let script = r#"
import sys, duckdb, pyarrow.dataset as ds
root = sys.argv[1]
rows = ds.dataset(root, format="parquet").count_rows()
duck = duckdb.sql(f"select count(*) from read_parquet('{root}/**/*.parquet')").fetchone()[0]
print(rows, duck)
"#;
    let got = std::process::Command::new(python())
        .args(["-c", script, dir])
        .output()
        .unwrap();
    assert!(got.status.success(), "{}", text(&got));
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "450 450");

    // audit and inspect find the files under the topic's folder.
    let (clean, report) = audit_cli_with(out.path(), &group, &["--brokers", &t.brokers]);
    assert!(clean, "{report}");
    assert!(report.contains("450"), "{report}");
    let inspected = hubcap().args(["inspect", dir, "--stats"]).output().unwrap();
    assert!(inspected.status.success(), "{}", text(&inspected));
    assert!(
        String::from_utf8_lossy(&inspected.stdout).contains(&format!("@{topic}")),
        "{}",
        text(&inspected)
    );
}
