//! The settings in effect and their origins, printed by `hubcap config` as a TOML file that
//! `--config` accepts, secrets redacted.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Kind, REDACTED};
use crate::kafka::{is_secret_setting, is_secret_value};

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag,
    /// The environment variable's name.
    Env(String),
    File,
    Default,
    /// Not set, and implied by another setting (named).
    Derived(&'static str),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag => f.write_str("flag"),
            Origin::Env(name) => write!(f, "env {name}"),
            Origin::File => f.write_str("file"),
            Origin::Default => f.write_str("default"),
            Origin::Derived(from) => write!(f, "derived from {from}"),
        }
    }
}

/// One setting in effect: its file key, its values and where each came from. `Debug` shows the
/// values as `hubcap config` does.
#[derive(Clone)]
pub(super) struct Setting {
    pub(super) key: String,
    pub(super) kind: Kind,
    pub(super) secret: bool,
    pub(super) values: Vec<(String, Origin)>,
}

impl Setting {
    /// A value as it may be shown: a secret flag's, a URL's query and password, a `-X`
    /// setting's value by the rule of `kafka::secrets`, and any value that looks like a
    /// credential, as `<redacted>`.
    fn shown(&self, value: &str) -> String {
        if self.kind == Kind::Kafka {
            return match value.split_once('=') {
                Some((k, v)) if is_secret_setting(k, v) => format!("{}={REDACTED}", k.trim()),
                Some(_) => value.to_string(),
                None => "<not KEY=VALUE: not shown>".into(),
            };
        }
        let value = redact_url(value);
        if self.secret || is_secret_value(&value) {
            REDACTED.into()
        } else {
            value
        }
    }
}

impl std::fmt::Debug for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let values: Vec<(String, &Origin)> = self
            .values
            .iter()
            .map(|(v, o)| (self.shown(v), o))
            .collect();
        f.debug_struct("Setting")
            .field("key", &self.key)
            .field("kind", &self.kind)
            .field("secret", &self.secret)
            .field("values", &values)
            .finish()
    }
}

/// The settings of `run` in effect, for `hubcap config`. Empty for other subcommands.
#[derive(Debug, Clone, Default)]
pub struct Effective {
    pub(super) file: Option<PathBuf>,
    pub(super) settings: Vec<Setting>,
}

impl Effective {
    /// The `--config` file, if one was read.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The settings as a TOML document that `--config` accepts, each value followed by where it
    /// came from, secrets (and URL query strings and passwords) shown as `<redacted>`.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        let file = match &self.file {
            Some(path) => path.display().to_string(),
            None => "none".into(),
        };
        let _ = writeln!(
            out,
            "# hubcap's effective configuration for `run`: flags > environment > file > defaults.\n\
             # Configuration file: {file}\n\
             # Secrets are shown as \"{REDACTED}\"; each value is followed by where it came from."
        );
        let mut kafka = None;
        for s in &self.settings {
            let origin = s.values.first().map(|(_, o)| o.to_string());
            let shown = |v: &str| quote(&s.shown(v));
            let value = match (s.kind, s.values.as_slice()) {
                (Kind::Kafka, [_, ..]) => {
                    kafka = Some(s);
                    continue;
                }
                (_, []) => {
                    let _ = writeln!(out, "# {}: not set", s.key);
                    continue;
                }
                (Kind::Switch { .. } | Kind::Count, [(v, _), ..]) => v.clone(),
                (Kind::Many, values) => {
                    let items: Vec<String> = values.iter().map(|(v, _)| shown(v)).collect();
                    format!("[{}]", items.join(", "))
                }
                (Kind::One, [(v, _), ..]) => shown(v),
            };
            let _ = writeln!(out, "{} = {value}  # {}", s.key, origin.unwrap_or_default());
        }
        // Last: a table ends the document's top-level keys.
        if let Some(s) = kafka {
            let _ = writeln!(out, "\n[{}]", s.key);
            for (setting, origin) in &s.values {
                match setting.split_once('=') {
                    Some((k, v)) => {
                        let v = if is_secret_setting(k, v) { REDACTED } else { v };
                        let _ = writeln!(out, "{} = {}  # {origin}", toml_key(k.trim()), quote(v));
                    }
                    None => {
                        let _ = writeln!(
                            out,
                            "# a setting that is not KEY=VALUE (not shown)  # {origin}"
                        );
                    }
                }
            }
        }
        out
    }
}

/// A key, quoted when it is not a bare key (librdkafka's have dots).
fn toml_key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        k.to_string()
    } else {
        quote(k)
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A URL with its query string (SAS tokens) and password replaced by `<redacted>`; anything
/// else unchanged.
fn redact_url(value: &str) -> String {
    let Ok(mut url) = url::Url::parse(value) else {
        return value.to_string();
    };
    let (query, password) = (url.query().is_some(), url.password().is_some());
    if !query && !password {
        return value.to_string();
    }
    // Markers set through `Url` would be percent-encoded; placeholders are replaced after.
    url.set_query(None);
    url.set_fragment(None);
    if password {
        let _ = url.set_password(Some("PASSWORD"));
    }
    let mut shown = url
        .to_string()
        .replacen(":PASSWORD@", &format!(":{REDACTED}@"), 1);
    if query {
        shown.push('?');
        shown.push_str(REDACTED);
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_query_and_password_and_other_values_are_kept() {
        let cases = [
            ("az://c/p?sv=2024&sig=abc", "az://c/p?<redacted>"),
            (
                "https://u:pw@host/x?sig=abc",
                "https://u:<redacted>@host/x?<redacted>",
            ),
            ("s3://bucket/prefix", "s3://bucket/prefix"),
            ("localhost:9092,b:9092", "localhost:9092,b:9092"),
            ("./capture", "./capture"),
            ("{EventHub}/{PartitionId}", "{EventHub}/{PartitionId}"),
        ];
        for (value, shown) in cases {
            assert_eq!(redact_url(value), shown, "{value}");
        }
    }

    #[test]
    fn keys_are_quoted_only_when_they_must_be() {
        assert_eq!(toml_key("debug"), "debug");
        assert_eq!(toml_key("sasl.password"), "\"sasl.password\"");
    }
}
