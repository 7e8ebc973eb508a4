//! A planted secret, in a setting whose key or value may carry a credential, among random
//! settings (given with `-X` or in the file's `[kafka]` table), through every output reachable
//! in process: `redacted`, `hubcap config`'s text, the
//! run's `starting:` line (`run::describe`), librdkafka's errors (`client_error`), validation
//! errors, and the `Debug` of the parsed command line and the configurations.

use proptest::prelude::*;
use rdkafka::consumer::BaseConsumer;

use crate::cli::file;
use crate::cli::Command;
use crate::kafka::{client_error, redacted};
use crate::store::Location;

/// A key that may carry a credential, by its name.
fn credential_key() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("password"),
        Just("secret"),
        Just("token"),
        Just("jaas"),
        Just("credentials"),
        Just("key"),
        Just("pem"),
        Just("passphrase"),
    ];
    ("[a-z]{1,6}", word, proptest::option::of("[a-z]{1,6}")).prop_map(|(head, word, tail)| {
        match tail {
            Some(tail) if tail != "location" => format!("{head}.{word}.{tail}"),
            _ => format!("{head}.{word}"),
        }
    })
}

/// Where the secret goes: (key, value) with the secret inside.
fn planted(secret: String) -> impl Strategy<Value = (String, String)> {
    let s = secret;
    let (a, b, c, d, e) = (s.clone(), s.clone(), s.clone(), s.clone(), s);
    prop_oneof![
        (credential_key(), "[ -~]{0,8}").prop_map(move |(k, pre)| (k, format!("{pre}{a}"))),
        ("[a-z]{1,6}(\\.[a-z]{1,6}){0,2}").prop_map(move |k| (
            k,
            format!("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey={b}")
        )),
        ("[a-z]{1,6}(\\.[a-z]{1,6}){0,2}").prop_map(move |k| (
            k,
            format!("SharedAccessSignature sr=ns&sig={c}&se=1&skn=k")
        )),
        Just(()).prop_map(move |()| (
            "sasl.jaas.config".to_string(),
            format!("org.apache.kafka.common.security.plain.PlainLoginModule required username=\"$ConnectionString\" password=\"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey={d}\";")
        )),
        ("[a-z]{1,8}").prop_map(move |rest| (format!("sasl.{rest}"), e.clone())),
    ]
}

/// Random settings around the planted one, in a random place.
fn settings() -> impl Strategy<Value = (String, Vec<(String, String)>)> {
    "Zq[A-Za-z0-9]{14}".prop_flat_map(|secret| {
        (
            Just(secret.clone()),
            proptest::collection::vec(
                ("[a-z]{1,8}(\\.[a-z]{1,8}){0,3}", "[A-Za-z0-9 ._:/-]{0,16}"),
                0..6,
            ),
            planted(secret),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(secret, mut all, planted, at)| {
                let at = at.index(all.len() + 1);
                all.insert(at, planted);
                (secret, all)
            })
    })
}

fn assert_hidden(what: &str, text: &str, secret: &str) -> Result<(), TestCaseError> {
    prop_assert!(!text.contains(secret), "{what} shows the secret:\n{text}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_planted_secret_never_appears(
        (secret, settings) in settings(),
        via_config in any::<bool>(),
        in_file in any::<bool>(),
    ) {
        assert_hidden("redacted()", &redacted(&settings).join(" "), &secret)?;

        let mut argv: Vec<String> = ["hubcap", if via_config { "config" } else { "run" }]
            .iter()
            .map(|s| s.to_string())
            .collect();
        argv.extend(
            ["--brokers", "127.0.0.1:9", "--topic", "t", "--group", "g", "--output", "memory://"]
                .iter()
                .map(|s| s.to_string()),
        );
        // On the command line, or in the file's [kafka] table.
        let dir = tempfile::tempdir().unwrap();
        if in_file {
            let path = dir.path().join("hubcap.toml");
            let mut toml = String::from("[kafka]\n");
            for (k, v) in &settings {
                let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
                toml.push_str(&format!("{} = {}\n", quote(k), quote(v)));
            }
            std::fs::write(&path, toml).unwrap();
            argv.extend(["--config".to_string(), path.display().to_string()]);
        } else {
            for (k, v) in &settings {
                argv.push("-X".into());
                argv.push(format!("{k}={v}"));
            }
        }
        let parsed = match file::parse(&argv) {
            Ok(parsed) => parsed,
            Err(e) => return assert_hidden("a parse error", &e.to_string(), &secret),
        };
        assert_hidden("hubcap config", &parsed.effective.to_toml(), &secret)?;
        assert_hidden("Debug of the command line", &format!("{parsed:?}"), &secret)?;
        let (Command::Run(args) | Command::Config(args)) = parsed.cli.command else {
            unreachable!("a run or config command");
        };
        let cfg = match args.validate() {
            Ok(cfg) => cfg,
            Err(e) => {
                assert_hidden("a validation error", &format!("{e} {e:?}"), &secret)?;
                return Ok(());
            }
        };
        assert_hidden("Debug of RunConfig", &format!("{cfg:?}"), &secret)?;
        let memory = Location::open("memory://", "--output").unwrap();
        assert_hidden("the starting: line", &crate::run::describe(&cfg, &memory, &memory), &secret)?;
        // librdkafka refuses most random settings, quoting values it cannot use.
        if let Err(e) = cfg.client_config().create::<BaseConsumer>() {
            assert_hidden("client_error", &client_error(&e), &secret)?;
        }
    }
}
