//! File and environment values checked with their flags' value parsers, and the errors about
//! them, which never quote the value: any value may be a secret in the wrong place.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, CommandFactory};

use super::ConfigFileError;
use crate::cli::Cli;

/// Runs a flag's value parser on one file value, in a command of that flag alone (the real
/// subcommand would also check required flags and conflicts, which are the second pass's).
pub(super) fn check(arg: &Arg, value: &str) -> Result<(), String> {
    let mut probe = Arg::new("value")
        .long("value")
        .action(ArgAction::Set)
        .value_parser(arg.get_value_parser().clone());
    if let Some(delimiter) = arg.get_value_delimiter() {
        probe = probe.value_delimiter(delimiter).action(ArgAction::Append);
    }
    let cmd = clap::Command::new("hubcap")
        .color(clap::ColorChoice::Never)
        .arg(probe);
    let Err(err) =
        cmd.try_get_matches_from([OsString::from("hubcap"), format!("--value={value}").into()])
    else {
        return Ok(());
    };
    Err(without_value(&clap_problem(&err), value))
}

/// What a value parser's error says, without clap's `--value` framing.
fn clap_problem(err: &clap::Error) -> String {
    match err.kind() {
        ErrorKind::ValueValidation => match std::error::Error::source(err) {
            Some(source) => source.to_string(),
            None => "not a valid value".into(),
        },
        ErrorKind::InvalidValue => match err.get(ContextKind::ValidValue) {
            Some(ContextValue::Strings(valid)) => format!("expected one of: {}", valid.join(", ")),
            _ => "not a valid value".into(),
        },
        _ => {
            let rendered = err.render().to_string();
            let first = rendered.lines().next().unwrap_or_default();
            first.trim_start_matches("error: ").to_string()
        }
    }
}

/// A value parser's complaint about a file value, without the value: the file may hold secrets,
/// and errors about it never quote one (`invalid size "…": use …` becomes `invalid size: use
/// …`). Should the value still be in the text, only a generic complaint is left.
pub(super) fn without_value(problem: &str, value: &str) -> String {
    const GENERIC: &str = "not a valid value (not shown); `hubcap run --help` says what it takes";
    if value.is_empty() {
        return problem.to_string();
    }
    let mut text = problem.to_string();
    for quoted in [
        format!("{value:?}"),
        format!("\"{value}\""),
        format!("'{value}'"),
    ] {
        text = text
            .replace(&format!(" {quoted}"), "")
            .replace(&quoted, "the value");
    }
    // A value of a few characters is no secret, and is found in any text ("1" in "1GiB").
    if value.chars().count() >= 4 && text.contains(value) {
        return GENERIC.into();
    }
    text
}

/// A clap error about a value from the environment (not typed on the command line, and the
/// file's were checked before) as one that names the variable and the form expected, without
/// the value; any other error as clap's.
pub(super) fn env_error(err: clap::Error, argv: &[OsString]) -> ConfigFileError {
    if !matches!(
        err.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return ConfigFileError::Args(err);
    }
    let (Some(ContextValue::String(value)), Some(ContextValue::String(arg))) = (
        err.get(ContextKind::InvalidValue),
        err.get(ContextKind::InvalidArg),
    ) else {
        return ConfigFileError::Args(err);
    };
    let typed = argv.iter().any(|w| {
        let w = w.to_string_lossy();
        w == value.as_str() || w.ends_with(&format!("={value}"))
    });
    // `--window-size <WINDOW_SIZE>`: the flag's long name.
    let long = arg
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_start_matches('-');
    let cmd = super::built(Cli::command());
    let var = cmd
        .get_subcommands()
        .flat_map(|s| s.get_arguments())
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env())
        .map(|v| v.to_string_lossy().into_owned())
        .filter(|v| std::env::var_os(v).is_some());
    match var {
        Some(var) if !typed => ConfigFileError::Env {
            problem: without_value(&clap_problem(&err), value),
            var,
            flag: long.to_string(),
        },
        _ => ConfigFileError::Args(err),
    }
}
