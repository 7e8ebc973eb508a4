//! `--config hubcap.toml`: the settings of `hubcap run` from a TOML file, and `hubcap config`,
//! which prints the settings in effect.
//!
//! The file is read from clap's own description of the `run` flags, so a new flag is a new file
//! key with no code here. A key is a flag's long name (`window-size`, or `window_size`); a
//! repeatable flag takes an array (`topic = ["a", "b"]`); a switch takes a boolean; the `-X`
//! librdkafka settings are a `[kafka]` table, since their names hold dots.
//!
//! Precedence is flags > environment > file > defaults. It is implemented by parsing twice: a
//! lenient first pass says which flags the command line or the environment set (a required
//! `--group` may well be in the file), then the file's values for every other flag are appended
//! to the command line as `--flag=value` words (the `=` form, so a value starting with `-` stays a
//! value) and clap parses the whole again, with every value parser and cross-flag rule as if the
//! values had been typed. One refinement: the file's `[kafka]` settings are merged key by key
//! under those of `-X` or `HUBCAP_KAFKA_CONFIG`, so `-X debug=all` does not drop the file's SASL
//! settings.
//!
//! Errors name the file and the key; an unknown key gets the closest valid one as a hint. Every
//! file value is checked with its flag's value parser before the second pass, whether or not a
//! flag overrides it, so a broken file fails the same way every time. The file may hold secrets
//! (that is how a connection string is kept out of the process list), so none is ever printed:
//! an invalid value is reported by its key and the form expected, never quoted (any value may be
//! a secret in the wrong place), TOML syntax errors give a line and column but not the line
//! itself, and `hubcap config` shows `<redacted>` for what the rule of `kafka::secrets` judges a
//! secret.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches};

use crate::cli::Cli;
use crate::kafka::is_secret_key;
use crate::layout::namespace_from_brokers;
use crate::state::table::TABLE_TEMPLATE;

/// The id of `--config`: not a key of the file itself.
const CONFIG_ID: &str = "config";
/// The id of `-X`, whose file form is the `[kafka]` table.
const KAFKA_ID: &str = "kafka";
/// What `hubcap config` prints instead of a secret.
pub const REDACTED: &str = "<redacted>";

mod effective;
mod values;
use effective::Setting;
pub use effective::{Effective, Origin};
use values::{check, env_error};

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The command line (with the file's values) is invalid; clap renders and exits.
    #[error(transparent)]
    Args(#[from] clap::Error),
    #[error("cannot read the configuration file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: not valid TOML: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: unknown key `{key}`{hint}", path.display())]
    UnknownKey {
        path: PathBuf,
        key: String,
        /// `; did you mean …?`, or empty.
        hint: String,
    },
    #[error("{}: `{key}`: {problem}", path.display())]
    Value {
        path: PathBuf,
        key: String,
        problem: String,
    },
    /// An environment variable's value is invalid: named, not quoted.
    #[error("{var} (--{flag}): {problem}")]
    Env {
        var: String,
        flag: String,
        problem: String,
    },
}

/// `--config PATH` [`HUBCAP_CONFIG`], an arg of `run` and `config` (not global: the other
/// subcommands read no file, and `HUBCAP_CONFIG` in their environment must not make them try).
pub fn config_arg() -> Arg {
    Arg::new(CONFIG_ID)
        .long("config")
        .env("HUBCAP_CONFIG")
        .value_name("PATH")
        .value_parser(clap::value_parser!(PathBuf))
        .help(
            "A TOML file of settings: keys are these flags' long names (window-size = \"10MiB\", \
             topic = [\"a\", \"b\"], once = true), -X settings go in a [kafka] table. Flags and \
             environment variables win over the file; unknown keys are errors. `hubcap config` \
             prints the result",
        )
}

/// How a flag's values look in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A switch (`--once`): a boolean; the action is `SetTrue` or `SetFalse`.
    Switch { on: bool },
    /// A counted flag (`-vvv`): an integer.
    Count,
    /// One value: a string or a number.
    One,
    /// A repeatable flag: an array (or one value).
    Many,
    /// `-X`: a table of librdkafka settings.
    Kafka,
}

impl Kind {
    fn of(arg: &Arg) -> Option<Kind> {
        if arg.get_id() == KAFKA_ID {
            return Some(Kind::Kafka);
        }
        match arg.get_action() {
            ArgAction::SetTrue => Some(Kind::Switch { on: true }),
            ArgAction::SetFalse => Some(Kind::Switch { on: false }),
            ArgAction::Count => Some(Kind::Count),
            ArgAction::Set => Some(Kind::One),
            ArgAction::Append => Some(Kind::Many),
            // --help, --version: not settings.
            _ => None,
        }
    }
}

/// The parsed command line, the configuration file applied.
#[derive(Debug)]
pub struct Parsed {
    pub cli: Cli,
    pub effective: Effective,
}

/// Parses the command line (`argv[0]` first), reading the `--config` file of `run` and `config`.
pub fn parse<I, T>(argv: I) -> Result<Parsed, ConfigFileError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let plan = plan(&argv)?;
    let words = plan.words.iter().cloned();
    let matches = Cli::command()
        .try_get_matches_from(argv.iter().cloned().chain(words))
        .map_err(|e| env_error(e, &argv))?;
    let cli = Cli::from_arg_matches(&matches)?;
    let effective = plan.effective(&matches);
    Ok(Parsed { cli, effective })
}

/// What the first pass decided.
#[derive(Debug, Default)]
struct Plan {
    /// `run` or `config`; `None` for the other subcommands, which read no file.
    subcommand: Option<String>,
    file: Option<PathBuf>,
    /// The words that give flags the file's values, appended to the command line.
    words: Vec<OsString>,
    /// The ids of the flags whose values come from the file.
    from_file: BTreeSet<String>,
    /// When the file's `[kafka]` settings were merged under given ones: the origins of those
    /// given ones, which come first; the rest are the file's.
    kafka: Vec<Origin>,
}

/// The first pass: reads the file and decides which of its values apply.
fn plan(argv: &[OsString]) -> Result<Plan, ConfigFileError> {
    let cmd = built(Cli::command().ignore_errors(true));
    // A failed first pass is `--help`, `--version` or an error the second pass reports.
    let Ok(matches) = cmd.clone().try_get_matches_from(argv) else {
        return Ok(Plan::default());
    };
    let Some((name, m)) = matches.subcommand() else {
        return Ok(Plan::default());
    };
    let Some(sub) = cmd.find_subcommand(name) else {
        return Ok(Plan::default());
    };
    if !sub.get_arguments().any(|a| a.get_id() == CONFIG_ID) {
        return Ok(Plan::default());
    }
    let args = settings(sub);
    let mut plan = Plan {
        subcommand: Some(name.to_string()),
        file: m.get_one::<PathBuf>(CONFIG_ID).cloned(),
        ..Plan::default()
    };
    let mut file = match &plan.file {
        Some(path) => read(path, &args)?,
        None => BTreeMap::new(),
    };
    for arg in args {
        let id = arg.get_id().as_str();
        let Some(file_values) = file.remove(id) else {
            continue;
        };
        let (current, origin) = current(arg, m);
        let explicit = matches!(origin, Origin::Flag | Origin::Env(_));
        match Kind::of(arg) {
            Some(Kind::Kafka) => plan.merge_kafka(arg, current, origin, file_values),
            Some(kind) if !explicit => {
                plan.words.extend(inject(arg, kind, &file_values));
                plan.from_file.insert(id.to_string());
            }
            _ => {}
        }
    }
    Ok(plan)
}

/// A command with its global flags propagated into its subcommands.
fn built(mut cmd: clap::Command) -> clap::Command {
    cmd.build();
    cmd
}

/// The flags of `run` that are settings (not --help, not --config), global ones (--log-format)
/// included.
fn settings(sub: &clap::Command) -> Vec<&Arg> {
    sub.get_arguments()
        .filter(|a| a.get_id() != CONFIG_ID && Kind::of(a).is_some() && key_of(a).is_some())
        .collect()
}

impl Plan {
    /// `-X`: the file's settings for the keys that the command line or the environment do not
    /// set. As any `-X` on the command line hides `HUBCAP_KAFKA_CONFIG` from clap, the
    /// environment's settings are then given as words too.
    fn merge_kafka(&mut self, arg: &Arg, current: Vec<String>, origin: Origin, file: Vec<String>) {
        let setting_key = |s: &str| s.split_once('=').map(|(k, _)| k.trim().to_string());
        let explicit = matches!(origin, Origin::Flag | Origin::Env(_));
        let current = if explicit { current } else { Vec::new() };
        let given: BTreeSet<String> = current.iter().filter_map(|s| setting_key(s)).collect();
        let added: Vec<String> = file
            .into_iter()
            .filter(|s| setting_key(s).is_none_or(|k| !given.contains(&k)))
            .collect();
        if added.is_empty() {
            return;
        }
        if matches!(origin, Origin::Env(_)) {
            self.words
                .extend(current.iter().map(|v| value_word(arg, v)));
        }
        self.words.extend(added.iter().map(|v| value_word(arg, v)));
        if current.is_empty() {
            self.from_file.insert(arg.get_id().to_string());
        }
        self.kafka = vec![origin; current.len()];
    }

    /// The settings in effect, from the second pass's matches: what `hubcap config` prints is
    /// what `run` gets.
    fn effective(self, matches: &ArgMatches) -> Effective {
        let Some(name) = &self.subcommand else {
            return Effective::default();
        };
        let cmd = built(Cli::command());
        let (Some(sub), Some(m)) = (cmd.find_subcommand(name), matches.subcommand_matches(name))
        else {
            return Effective::default();
        };
        let mut settings_in_effect = Vec::new();
        for arg in settings(sub) {
            let (values, mut origin) = current(arg, m);
            if self.from_file.contains(arg.get_id().as_str()) {
                origin = Origin::File;
            }
            // A flag hidden from --help (a test knob) is shown only when set.
            if arg.is_hide_set() && origin == Origin::Default {
                continue;
            }
            let kind = Kind::of(arg).unwrap_or(Kind::One);
            let origins = self
                .kafka
                .iter()
                .cloned()
                .chain(std::iter::repeat(Origin::File));
            let values = if kind == Kind::Kafka && !self.kafka.is_empty() {
                values.into_iter().zip(origins).collect()
            } else {
                with_origin(values, &origin)
            };
            let key = key_of(arg).unwrap_or_default();
            settings_in_effect.push(Setting {
                secret: is_secret_arg(arg, &key),
                key,
                kind,
                values,
            });
        }
        derive_table_settings(&mut settings_in_effect);
        derive_eventhubs_settings(&mut settings_in_effect);
        Effective {
            file: self.file,
            settings: settings_in_effect,
        }
    }
}

/// Whether the setting `key` has a value that is not its default, as `run` sees it (an empty
/// `--brokers` is none).
fn given(key: &str, settings: &[Setting]) -> bool {
    settings.iter().find(|s| s.key == key).is_some_and(|s| {
        s.values
            .iter()
            .any(|(v, o)| *o != Origin::Default && !v.trim().is_empty())
    })
}

/// With an Event Hubs connection string, what `run` takes from it for the settings left unset
/// (see `RunArgs::validate`): the brokers, the topic (its `EntityPath`), `{Namespace}`, and the
/// SASL settings (an `-X` of the same key wins).
fn derive_eventhubs_settings(settings: &mut [Setting]) {
    const FROM: &str = "eventhubs-connection-string";
    let Some(secret) = settings
        .iter()
        .find(|s| s.key == FROM)
        .and_then(|s| s.values.first())
        .map(|(v, _)| crate::kafka::eventhubs::Secret(v.clone()))
    else {
        return;
    };
    // A string that does not parse is refused by `run`, with why; nothing is derived from it.
    let Ok(conn) = crate::kafka::eventhubs::parse(&secret.0) else {
        return;
    };
    // `{Namespace}` comes from the brokers, the connection string's unless others are given.
    let namespace =
        (!given("brokers", settings)).then(|| namespace_from_brokers(&conn.bootstrap_servers()));
    let derived = [
        ("brokers", Some(conn.bootstrap_servers())),
        ("topic", conn.entity_path.clone()),
        ("namespace", namespace),
    ];
    for (key, value) in derived {
        let Some(value) = value else { continue };
        if !given(key, settings) {
            if let Some(s) = settings.iter_mut().find(|s| s.key == key) {
                s.values = vec![(value, Origin::Derived(FROM))];
            }
        }
    }
    if let Some(kafka) = settings.iter_mut().find(|s| s.kind == Kind::Kafka) {
        let keys: BTreeSet<String> = kafka
            .values
            .iter()
            .filter_map(|(v, _)| v.split_once('=').map(|(k, _)| k.trim().to_string()))
            .collect();
        for (k, v) in crate::kafka::eventhubs::Connection::kafka_settings(&secret) {
            if !keys.contains(&k) {
                kafka
                    .values
                    .push((format!("{k}={v}"), Origin::Derived(FROM)));
            }
        }
    }
}

/// With `--table` (delta, iceberg or both), what `run` does with the settings left unset: Parquet files, named by
/// the table's template (see `RunArgs::config`).
fn derive_table_settings(settings: &mut [Setting]) {
    if !given("table", settings) {
        return;
    }
    let derived = [
        ("format", "parquet", given("format", settings)),
        (
            "path-format",
            TABLE_TEMPLATE,
            given("path-format", settings),
        ),
    ];
    for (key, value, given) in derived {
        if let (Some(s), false) = (settings.iter_mut().find(|s| s.key == key), given) {
            s.values = vec![(value.to_string(), Origin::Derived("table"))];
        }
    }
}

/// A flag's file key: its long name, or its id for a short-only flag (`-X` is `kafka`).
fn key_of(arg: &Arg) -> Option<String> {
    match (arg.get_long(), arg.get_short()) {
        (Some(long), _) => Some(long.to_string()),
        (None, Some(_)) => Some(arg.get_id().to_string()),
        (None, None) => None,
    }
}

/// How a flag is written on the command line: `--long`, or `-X`.
fn flag_word(arg: &Arg) -> String {
    match arg.get_long() {
        Some(long) => format!("--{long}"),
        None => format!("-{}", arg.get_short().unwrap_or('?')),
    }
}

/// A flag's value as one word; `=` keeps a value that starts with `-` a value.
fn value_word(arg: &Arg, value: &str) -> OsString {
    format!("{}={value}", flag_word(arg)).into()
}

/// Whether a flag's values are secrets: hidden from `--help`'s environment listing (the Event
/// Hubs connection string), or named like one. `-X` is redacted per setting instead.
fn is_secret_arg(arg: &Arg, key: &str) -> bool {
    arg.get_id() != KAFKA_ID
        && (arg.is_hide_env_values_set()
            || is_secret_key(key)
            || ["connection-string", "key", "sas", "credential"]
                .iter()
                .any(|needle| key.contains(needle)))
}

/// The values the first pass found for a flag (from the command line, the environment or the
/// default) and where they came from.
fn current(arg: &Arg, m: &ArgMatches) -> (Vec<String>, Origin) {
    let id = arg.get_id().as_str();
    let origin = match m.value_source(id) {
        Some(ValueSource::CommandLine) => Origin::Flag,
        Some(ValueSource::EnvVariable) => Origin::Env(
            arg.get_env()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
        _ => Origin::Default,
    };
    // Typed where the raw word would mislead (`HUBCAP_ONCE=1` is `true`).
    let values = match Kind::of(arg) {
        Some(Kind::Switch { .. }) => match m.try_get_one::<bool>(id) {
            Ok(Some(b)) => vec![b.to_string()],
            _ => Vec::new(),
        },
        Some(Kind::Count) => match m.try_get_one::<u8>(id) {
            Ok(Some(n)) => vec![n.to_string()],
            _ => Vec::new(),
        },
        _ => m
            .get_raw(id)
            .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default(),
    };
    (values, origin)
}

fn with_origin(values: Vec<String>, origin: &Origin) -> Vec<(String, Origin)> {
    values.into_iter().map(|v| (v, origin.clone())).collect()
}

/// The words that give a flag the file's values.
fn inject(arg: &Arg, kind: Kind, values: &[String]) -> Vec<OsString> {
    match kind {
        Kind::Switch { on } => values
            .iter()
            .filter(|v| **v == on.to_string())
            .map(|_| flag_word(arg).into())
            .collect(),
        Kind::Count => {
            let n: usize = values.first().and_then(|v| v.parse().ok()).unwrap_or(0);
            vec![flag_word(arg).into(); n]
        }
        Kind::One | Kind::Many | Kind::Kafka => values.iter().map(|v| value_word(arg, v)).collect(),
    }
}

/// Reads the file: each key's values by flag id, checked.
fn read(path: &Path, args: &[&Arg]) -> Result<BTreeMap<String, Vec<String>>, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    // Not toml's Display: it quotes the offending line, which may hold a secret.
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let (line, column) = line_column(&text, e.span().map_or(0, |s| s.start));
        ConfigFileError::Syntax {
            path: path.to_owned(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })?;
    let value_error = |key: &str, problem: String| ConfigFileError::Value {
        path: path.to_owned(),
        key: key.to_string(),
        problem,
    };
    let mut out = BTreeMap::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in &table {
        let normal = key.replace('_', "-");
        if normal == CONFIG_ID {
            let problem =
                "a configuration file cannot name another; give --config on the command line";
            return Err(value_error(key, problem.into()));
        }
        let Some(arg) = args
            .iter()
            .find(|a| key_of(a).is_some_and(|k| k.replace('_', "-") == normal))
        else {
            return Err(ConfigFileError::UnknownKey {
                path: path.to_owned(),
                key: key.clone(),
                hint: hint(&normal, args),
            });
        };
        let id = arg.get_id().to_string();
        if let Some(first) = seen.insert(id.clone(), key.clone()) {
            return Err(value_error(key, format!("given twice, also as `{first}`")));
        }
        let values = file_values(arg, value).map_err(|problem| value_error(key, problem))?;
        out.insert(id, values);
    }
    Ok(out)
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// `; did you mean `window-size`?` for the closest valid key, if one is close.
fn hint(key: &str, args: &[&Arg]) -> String {
    let best = args
        .iter()
        .filter_map(|a| key_of(a))
        .map(|k| (strsim::jaro(key, &k), k))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((score, k)) if score > 0.8 => format!("; did you mean `{k}`?"),
        _ => String::new(),
    }
}

/// A file value as the words clap would get, checked against the flag's value parser.
fn file_values(arg: &Arg, value: &toml::Value) -> Result<Vec<String>, String> {
    let got = a_type(value);
    let values = match Kind::of(arg).unwrap_or(Kind::One) {
        Kind::Switch { .. } => match value {
            toml::Value::Boolean(b) => vec![b.to_string()],
            _ => return Err(format!("expected true or false, got {got}")),
        },
        Kind::Count => match value {
            toml::Value::Integer(n) if (0..=255).contains(n) => vec![n.to_string()],
            _ => return Err(format!("expected a count from 0 to 255, got {got}")),
        },
        Kind::One => match scalar(value) {
            Some(s) => vec![s],
            None => {
                return Err(format!(
                    "expected one value (a string or a number), got {got}"
                ))
            }
        },
        Kind::Many => match value {
            toml::Value::Array(items) => items
                .iter()
                .map(scalar)
                .collect::<Option<Vec<_>>>()
                .ok_or("expected an array of strings or numbers")?,
            _ => match scalar(value) {
                Some(s) => vec![s],
                None => return Err(format!("expected an array of strings, got {got}")),
            },
        },
        // Checked, without being echoed, by `RunArgs::validate`.
        Kind::Kafka => return kafka_values(value),
    };
    if matches!(Kind::of(arg), Some(Kind::One | Kind::Many)) {
        for v in &values {
            check(arg, v)?;
        }
    }
    Ok(values)
}

/// A value's TOML type with its article, for errors (never the value: it may be a secret).
fn a_type(value: &toml::Value) -> String {
    let t = value.type_str();
    let article = if t.starts_with(['a', 'i']) { "an" } else { "a" };
    format!("{article} {t}")
}

/// A string, number, boolean or date as the word clap would get.
fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(_)
        | toml::Value::Float(_)
        | toml::Value::Boolean(_)
        | toml::Value::Datetime(_) => Some(value.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

/// The `[kafka]` table as `key=value` settings. Dotted keys written bare
/// (`security.protocol = "SASL_SSL"`) are nested tables to TOML; they are joined back.
fn kafka_values(value: &toml::Value) -> Result<Vec<String>, String> {
    fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<String>) -> Result<(), String> {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(inner) => flatten(&key, inner, out)?,
                _ => match scalar(v) {
                    Some(s) => out.push(format!("{key}={s}")),
                    None => return Err(format!("`{key}`: expected a string, got an array")),
                },
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    match value {
        toml::Value::Table(table) => flatten("", table, &mut out)?,
        // The command line's form, `["security.protocol=SASL_SSL"]`, is accepted too.
        toml::Value::Array(items) => {
            for item in items {
                out.push(scalar(item).ok_or("expected an array of KEY=VALUE strings")?);
            }
        }
        _ => {
            return Err(format!(
                "expected a [kafka] table of librdkafka settings, like security.protocol = \"SASL_SSL\", got {}",
                a_type(value)
            ))
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::values::without_value;
    use super::*;

    /// Kinds `run` has no flag of yet, so the file tests cannot reach them.
    #[test]
    fn counted_and_negative_switches_become_repeated_flags() {
        let verbose = Arg::new("verbose").short('v').action(ArgAction::Count);
        let values = file_values(&verbose, &toml::Value::Integer(3)).unwrap();
        assert_eq!(inject(&verbose, Kind::Count, &values), ["-v", "-v", "-v"]);
        assert!(file_values(&verbose, &toml::Value::Integer(-1)).is_err());

        let no_color = Arg::new("no_color")
            .long("no-color")
            .action(ArgAction::SetFalse);
        let kind = Kind::of(&no_color).unwrap();
        let off = file_values(&no_color, &toml::Value::Boolean(false)).unwrap();
        assert_eq!(inject(&no_color, kind, &off), ["--no-color"]);
        let on = file_values(&no_color, &toml::Value::Boolean(true)).unwrap();
        assert!(inject(&no_color, kind, &on).is_empty());
    }

    #[test]
    fn value_errors_do_not_quote_the_value() {
        let size = Arg::new("window_size")
            .long("window-size")
            .action(ArgAction::Set)
            .value_parser(clap::value_parser!(crate::units::ByteSize));
        let err = check(&size, "S3CRET-S3CRET").unwrap_err();
        assert_eq!(
            err,
            "invalid size: use a number with a unit, like 300MiB, 10MB, 512KiB or 1GiB"
        );
        let format = Arg::new("format")
            .long("format")
            .action(ArgAction::Set)
            .value_parser(["avro", "parquet"]);
        let err = check(&format, "S3CRET-S3CRET").unwrap_err();
        assert!(err.contains("avro") && !err.contains("S3CRET"), "{err}");
        assert_eq!(
            without_value("bad: S3CRET-S3CRET is not S3CRET-S3CRET", "S3CRET-S3CRET"),
            "not a valid value (not shown); `hubcap run --help` says what it takes"
        );
    }

    #[test]
    fn syntax_errors_point_at_a_line_and_column() {
        assert_eq!(line_column("a = 1\nb = \"x", 10), (2, 5));
        assert_eq!(line_column("", 0), (1, 1));
    }
}
