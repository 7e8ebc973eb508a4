//! The deployment files under `deploy/` against the binary they deploy: the Kubernetes
//! manifests parse and their references resolve, every `HUBCAP_*` variable they or the systemd
//! env file set is one `hubcap run` reads, and the systemd units pass `systemd-analyze verify`
//! with the real binary in place of `/usr/local/bin/hubcap`. (The Dockerfile cannot be built
//! without a Docker daemon, so it is not checked here.)

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn deploy_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy"))
}

/// The variables `hubcap run` reads, as its `--help` lists them (`[env: NAME=…]`, or
/// `[env: NAME]` for a secret whose value is hidden).
fn run_env_names() -> BTreeSet<String> {
    let (ok, stdout, stderr) =
        run_with_timeout(hubcap().args(["run", "--help"]), Duration::from_secs(30));
    assert!(ok, "hubcap run --help: {stderr}");
    let names: BTreeSet<String> = stdout
        .split("[env: ")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        })
        .collect();
    assert!(names.contains("HUBCAP_TOPIC"), "{stdout}");
    names
}

#[test]
fn kubernetes_manifests_hang_together_and_use_real_variables() {
    let out = run_python(
        &script("check_deploy.py"),
        &[deploy_dir().to_str().unwrap()],
    );
    let doc: Value = serde_json::from_slice(&out).unwrap();
    let help = run_env_names();
    let names = doc["hubcap_env"].as_array().unwrap();
    assert!(names.len() >= 4, "{doc}");
    for name in names {
        let name = name.as_str().unwrap();
        assert!(
            help.contains(name),
            "deploy/k8s sets {name}, which hubcap run does not read"
        );
    }
    assert_eq!(doc["args"]["CronJob"], serde_json::json!(["run", "--once"]));
    let continuous = doc["args"]["Deployment"].as_array().unwrap();
    assert_eq!(continuous[0], "run");
    assert!(!continuous.contains(&"--once".into()), "{continuous:?}");
}

#[test]
fn systemd_env_file_sets_only_real_variables() {
    let help = run_env_names();
    let text = std::fs::read_to_string(deploy_dir().join("systemd/hubcap.env.example")).unwrap();
    let mut checked = 0;
    for line in text.lines() {
        // Commented-out settings count too: uncommenting one must work.
        let line = line.trim_start_matches(['#', ' ']);
        let Some((name, _)) = line.split_once('=') else {
            continue;
        };
        // HUBCAP_LOG is the log filter, read by main() rather than by a flag.
        if name.starts_with("HUBCAP_") && name != "HUBCAP_LOG" {
            assert!(
                help.contains(name),
                "hubcap.env.example sets {name}, which hubcap run does not read"
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} HUBCAP_ settings found");
}

#[test]
fn systemd_units_verify_with_the_real_binary() {
    let have_systemd = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_systemd {
        eprintln!("systemd-analyze is not installed: skipping the unit check");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let units = ["hubcap.service", "hubcap-once.service", "hubcap-once.timer"];
    for unit in units {
        let text = std::fs::read_to_string(deploy_dir().join("systemd").join(unit)).unwrap();
        assert!(
            unit.ends_with(".timer") || text.contains("ExecStart=/usr/local/bin/hubcap run"),
            "{unit}: ExecStart"
        );
        let text = text.replace("/usr/local/bin/hubcap", env!("CARGO_BIN_EXE_hubcap"));
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    let (ok, stdout, stderr) = run_with_timeout(
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .args(units)
            .current_dir(dir.path()),
        Duration::from_secs(60),
    );
    assert!(
        ok && stderr.trim().is_empty(),
        "systemd-analyze verify:\n{stdout}{stderr}"
    );
}
