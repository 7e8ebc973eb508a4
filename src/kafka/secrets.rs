//! What may carry a credential, decided by a rule over a setting's key and value, never by a list
//! of the keys known to hold one: a new librdkafka setting, a Java client's setting given by
//! mistake, or a connection string pasted into the wrong flag is redacted all the same.
//!
//! A setting is secret when
//! - its value looks like a credential wherever it is given: an Event Hubs or Azure Storage
//!   connection string (`SharedAccessKey=`, `SharedAccessSignature`, `AccountKey=`,
//!   `Endpoint=sb://`), a SAS token (`sig=`), a JAAS configuration (`LoginModule`, `password=`),
//!   PEM key material (`-----BEGIN`); or
//! - its key names a credential: it contains `password`, `passphrase`, `secret`, `token`,
//!   `jaas`, `credential`, `connectionstring`, `sharedaccess` or `apikey`, or has a word
//!   `key`, `keys`, `keystore`, `pem`, `pwd`, `sas`, `sig` or `signature`, unless its last word
//!   is `location` (a path to the key file, not the key: `ssl.key.location`); or
//! - it is a SASL setting (`sasl.*`: passwords, OAuth client secrets and configs, Kerberos
//!   keytabs and commands), except those that choose a mechanism or name a user or a service
//!   (`sasl.mechanism(s)`, `sasl.oauthbearer.method`, `sasl.kerberos.service.name`,
//!   `sasl.kerberos.principal`, `sasl.username`: librdkafka does not count them sensitive
//!   either, and Event Hubs' user is the literal `$ConnectionString`). That list is of public
//!   settings: a SASL setting it does not name stays redacted, and a public one whose value
//!   looks like a credential is redacted by the value rule.

use std::borrow::Cow;

/// What is shown instead of a secret.
pub const REDACTED: &str = "<redacted>";

/// Parts of a value that only a credential has (compared lowercased).
const SECRET_VALUE_MARKS: &[&str] = &[
    "sharedaccesskey",
    "sharedaccesssignature",
    "accountkey=",
    "endpoint=sb://",
    "sig=",
    "loginmodule",
    "password=",
    "secret=",
    "token=",
    "-----begin",
];

/// Parts of a key (lowercased, without `.`, `_`, `-`) that name a credential.
const SECRET_KEY_PARTS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "jaas",
    "credential",
    "connectionstring",
    "sharedaccess",
    "apikey",
];

/// Whole words of a key (split on `.`, `_`, `-`) that name a credential: short ones that would
/// match inside other words (`sas` in `sasl`, `key` in `keepalive`).
const SECRET_KEY_WORDS: &[&str] = &[
    "key",
    "keys",
    "keystore",
    "pem",
    "pwd",
    "sas",
    "sig",
    "signature",
];

/// `sasl.*` settings that choose a mechanism or name a user or a service: public.
const PUBLIC_SASL: &[&str] = &[
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.oauthbearer.method",
    "sasl.kerberos.service.name",
    "sasl.kerberos.principal",
    "sasl.username",
];

/// Whether a setting may carry a credential, by its key or its value.
pub fn is_secret_setting(key: &str, value: &str) -> bool {
    is_secret_key(key) || is_secret_value(value)
}

/// Whether a value looks like a credential, whatever setting or flag it was given to.
pub fn is_secret_value(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    SECRET_VALUE_MARKS.iter().any(|mark| v.contains(mark))
}

/// Whether a setting's (or a flag's) name says it holds a credential.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.trim().to_ascii_lowercase();
    let words: Vec<&str> = k.split(['.', '_', '-']).filter(|w| !w.is_empty()).collect();
    let squashed: String = words.concat();
    let names_one = SECRET_KEY_PARTS.iter().any(|p| squashed.contains(p))
        || words.iter().any(|w| SECRET_KEY_WORDS.contains(w));
    let a_path = words.last() == Some(&"location");
    let sasl = words.first() == Some(&"sasl") && !PUBLIC_SASL.contains(&k.as_str());
    (names_one && !a_path) || sasl
}

/// A value as it may be shown: `<redacted>` when it looks like a credential.
pub fn shown(value: &str) -> Cow<'_, str> {
    if is_secret_value(value) {
        Cow::Borrowed(REDACTED)
    } else {
        Cow::Borrowed(value)
    }
}

/// The settings as `key=value`, secrets redacted.
pub fn redacted(settings: &[(String, String)]) -> Vec<String> {
    settings
        .iter()
        .map(|(k, v)| {
            if is_secret_setting(k, v) {
                format!("{k}={REDACTED}")
            } else {
                format!("{k}={v}")
            }
        })
        .collect()
}

/// `text` with every value of `settings` that is secret replaced by `<redacted>`: for messages
/// that may repeat one (librdkafka's).
pub fn scrub(text: &str, settings: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for (k, v) in settings {
        if !v.is_empty() && is_secret_setting(k, v) {
            out = out.replace(v.as_str(), REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_judged_by_rule() {
        let secret = [
            "sasl.password",
            "sasl.jaas.config",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.config",
            "sasl.kerberos.keytab",
            "sasl.oauthbearer.assertion.private.key.passphrase",
            "ssl.key.password",
            "ssl.key.pem",
            "ssl_key",
            "ssl.keystore.password",
            "ssl.certificate.pem",
            "some.future.api.token",
            "my.client-secret",
            "eventhubs-connection-string",
            "storage.sas",
            "SASL.PASSWORD",
        ];
        for k in secret {
            assert!(is_secret_key(k), "{k} holds a credential");
        }
        let public = [
            "security.protocol",
            "sasl.mechanism",
            "sasl.mechanisms",
            "sasl.kerberos.service.name",
            "sasl.oauthbearer.method",
            "sasl.username",
            "ssl.key.location",
            "ssl.keystore.location",
            "ssl.ca.location",
            "socket.keepalive.enable",
            "session.timeout.ms",
            "debug",
            "client.id",
            "partition.assignment.strategy",
        ];
        for k in public {
            assert!(!is_secret_key(k), "{k} is public");
        }
    }

    #[test]
    fn values_are_judged_by_rule_whatever_their_key() {
        let conn =
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=S3CRET";
        let jaas = format!(
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"$ConnectionString\" password=\"{conn}\";"
        );
        for v in [
            conn,
            &jaas,
            "SharedAccessSignature sr=x&sig=S3CRET",
            "DefaultEndpointsProtocol=https;AccountKey=S3CRET",
        ] {
            assert!(is_secret_value(v), "{v}");
            assert!(is_secret_setting("client.id", v));
            assert_eq!(shown(v), REDACTED);
            assert!(!redacted(&[("debug".into(), v.into())])[0].contains("S3CRET"));
        }
        assert!(!is_secret_value("SASL_SSL"));
        assert!(!is_secret_value("127.0.0.1:9092"));
    }

    #[test]
    fn scrub_removes_secret_values_from_a_message() {
        let settings = [
            ("sasl.password".to_string(), "hunter2hunter2".to_string()),
            ("debug".to_string(), "all".to_string()),
        ];
        assert_eq!(
            scrub(
                "Invalid value \"hunter2hunter2\" for \"sasl.password\"; debug=all",
                &settings
            ),
            "Invalid value \"<redacted>\" for \"sasl.password\"; debug=all"
        );
    }
}
