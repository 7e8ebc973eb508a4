//! Kafka: the client settings hubcap uses (its defaults, the user's `-X` settings, the ones it
//! relies on), client errors without secrets, topic metadata and watermarks (shared by `run` and
//! `audit`), Event Hubs connection strings, and the consumer that feeds the partition workers.

pub mod consumer;
pub mod eventhubs;
pub mod secrets;
pub mod topic_id;

pub use secrets::{is_secret_key, is_secret_setting, is_secret_value, redacted, shown, REDACTED};

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::ClientConfig;

/// How often librdkafka reports statistics (high watermarks) when they are wanted.
const STATISTICS_INTERVAL_MS: &str = "2000";

/// Where and as whom to consume.
#[derive(Clone)]
pub struct KafkaConfig {
    /// librdkafka's `bootstrap.servers`.
    pub brokers: String,
    pub group: String,
    pub topics: Vec<String>,
    /// librdkafka settings (`-X`, and those an Event Hubs connection string implies), in order:
    /// a later one wins.
    pub settings: Vec<(String, String)>,
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("brokers", &shown(&self.brokers))
            .field("group", &shown(&self.group))
            .field("topics", &self.topics)
            .field("settings", &redacted(&self.settings))
            .finish()
    }
}

/// The consumer's librdkafka settings: hubcap's defaults, then the user's settings, then the
/// settings hubcap relies on, which win. `prefetch_kbytes`: the prefetch queue of one topic's
/// consumer, its part of the memory budget. `statistics`: report high watermarks (for the lag
/// metrics).
pub fn client_config(
    kafka: &KafkaConfig,
    prefetch_kbytes: usize,
    statistics: bool,
) -> ClientConfig {
    let message_max = kafka
        .settings
        .iter()
        .find(|(k, _)| k == "message.max.bytes")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut c = ClientConfig::new();
    c.set("client.id", "hubcap")
        .set("auto.offset.reset", "earliest")
        // Committed records only, never aborted ones or those of open transactions; a
        // partition's end is then its last stable offset, so `--once` neither waits for open
        // transactions nor skips them (librdkafka's default too, stated because the archive's
        // contents depend on it). `-X isolation.level=read_uncommitted` archives everything.
        .set("isolation.level", "read_committed")
        // librdkafka's prefetch queue, one per topic's consumer: its part of --memory-limit.
        .set("queued.max.messages.kbytes", prefetch_kbytes.to_string())
        // A fetch response is kept whole while any record of it waits in the queue, and the
        // queue's bound is only checked before a fetch: one response (50 MB by default) would
        // overshoot it many times over. librdkafka wants it no smaller than
        // `message.max.bytes`, which `-X` may raise.
        .set(
            "fetch.max.bytes",
            (prefetch_kbytes * 1024).max(message_max).to_string(),
        )
        // When the prefetch queue is full, librdkafka postpones every partition's next fetch
        // by this long (default 1 s). A consumer that hands records on to workers fills its
        // queue often, and drains it (a thirty-second of the budget) in about 30 ms: a longer
        // pause leaves it idle (at 1 s, a third of the speed at 256 partitions; at 50 ms, 30 %
        // slower than at 2 ms).
        .set("fetch.queue.backoff.ms", "2")
        // A fetch asks only for partitions that are neither paused nor backed off; when those
        // are all at their end the broker holds it this long (default 500 ms), and no other
        // fetch leaves for that broker meanwhile. A partition resumed just after waits for it:
        // at 256 partitions a catch-up stalled for half a second once or twice a run (Avro/null
        // 3.6-5.3 s against 3.6-3.8 s at 100 ms). Idle, this is ten fetches a second.
        .set("fetch.wait.max.ms", "100");
    if statistics {
        // High watermarks for the lag metrics, read off the poll thread's statistics callback.
        c.set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
    }
    for (k, v) in &kafka.settings {
        c.set(k, v);
    }
    c.set("bootstrap.servers", &kafka.brokers)
        .set("group.id", &kafka.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true");
    c
}

/// A client error without the setting's value: librdkafka's config errors repeat the value
/// (`Invalid value "…" for configuration property "…"`), which may be a secret. The key and what
/// librdkafka expects stay.
pub fn client_error(e: &KafkaError) -> String {
    match e {
        KafkaError::ClientConfig(_, desc, key, value) => {
            let desc = if value.is_empty() {
                desc.clone()
            } else {
                desc.replace(value.as_str(), "…")
            };
            format!("-X {key}: {desc}")
        }
        other => other.to_string(),
    }
}

/// Why a topic's partitions or watermarks could not be read.
#[derive(Debug)]
pub enum MetadataError {
    /// Kafka did not answer within the timeout.
    Unreachable(KafkaError),
    /// Kafka answered: the topic does not exist (or has no partitions).
    UnknownTopic(String),
}

/// Each partition's (low, high) watermarks, by topic and partition.
pub type Watermarks = HashMap<(String, i32), (i64, i64)>;

/// Each topic's partition count and, with `watermarks`, each partition's watermarks. Blocks (the
/// client calls do): call it on a blocking thread.
pub fn topic_partitions(
    consumer: &BaseConsumer,
    topics: &[String],
    watermarks: bool,
    timeout: Duration,
) -> Result<(HashMap<String, i32>, Watermarks), MetadataError> {
    let mut counts = HashMap::new();
    let mut marks = Watermarks::new();
    for topic in topics {
        let md = consumer
            .fetch_metadata(Some(topic), timeout)
            .map_err(MetadataError::Unreachable)?;
        let partitions = md
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map_or(0, |t| {
                i32::try_from(t.partitions().len()).unwrap_or(i32::MAX)
            });
        if partitions == 0 {
            return Err(MetadataError::UnknownTopic(topic.clone()));
        }
        counts.insert(topic.clone(), partitions);
        if watermarks {
            for p in 0..partitions {
                let w = consumer
                    .fetch_watermarks(topic, p, timeout)
                    .map_err(MetadataError::Unreachable)?;
                marks.insert((topic.clone(), p), w);
            }
        }
    }
    Ok((counts, marks))
}

/// A `-X KEY=VALUE` librdkafka setting. Errors never quote the setting: the whole word may be a
/// secret given without its key.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        // librdkafka names are lowercase words with dots; anything else is likely a value given
        // without its key, such as a bare Event Hubs connection string (`Endpoint=sb://…`).
        Some((k, _))
            if !k
                .trim()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_') =>
        {
            Err(
                "a setting whose name (before the first '=') is not a librdkafka setting name \
             (lowercase words with dots, like security.protocol; not shown: it may be a secret); \
             an Event Hubs connection string goes in --eventhubs-connection-string"
                    .into(),
            )
        }
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(
            "a setting that is not KEY=VALUE (not shown: it may be a secret); give a librdkafka \
             setting, e.g. -X security.protocol=SASL_SSL"
                .into(),
        ),
    }
}

/// One `-X` word as given; its `Debug` redacts it by the rule of [`crate::kafka::secrets`]
/// (`RunArgs` and `AuditArgs` are `Debug`).
#[derive(Clone)]
pub struct KafkaArg(pub String);

impl std::fmt::Debug for KafkaArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match parse_key_value(&self.0) {
            Ok((k, v)) => f.write_str(&redacted(&[(k, v)]).concat()),
            Err(_) => f.write_str("<not KEY=VALUE: not shown>"),
        }
    }
}

/// For clap: keeps the word as given (`validate` parses it, without echoing it).
pub fn kafka_arg(s: &str) -> Result<KafkaArg, String> {
    Ok(KafkaArg(s.to_string()))
}

/// The `-X` settings (of the command line, the environment or the file), parsed, with the Java
/// client's `sasl.jaas.config` translated (see [`from_jaas`]).
pub fn parse_settings<'a>(
    raw: impl IntoIterator<Item = &'a String>,
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for setting in raw.into_iter().filter(|s| !s.trim().is_empty()) {
        let (k, v) = parse_key_value(setting)?;
        if k == JAAS {
            out.extend(from_jaas(&v)?);
        } else {
            out.push((k, v));
        }
    }
    Ok(out)
}

/// The Java client's SASL setting, which Event Hubs' documentation gives.
const JAAS: &str = "sasl.jaas.config";

/// `sasl.jaas.config`: librdkafka has no such property (it refuses to start with one), but the
/// Java clients, and Event Hubs' documentation for them, give SASL PLAIN and SCRAM credentials
/// this way: `org.apache.kafka.common.security.plain.PlainLoginModule required
/// username="$ConnectionString" password="Endpoint=sb://…";`. The two options are what
/// librdkafka's `sasl.username` and `sasl.password` mean, so they are translated; the mechanism
/// is set by `sasl.mechanism`, in Java and in librdkafka alike. Other login modules (OAuth,
/// Kerberos) have settings of their own in librdkafka and are refused, naming them. No error
/// quotes the value: it holds the password.
pub fn from_jaas(value: &str) -> Result<Vec<(String, String)>, String> {
    let module = value.split_whitespace().next().unwrap_or_default();
    let supported = module.ends_with(".PlainLoginModule") || module.ends_with(".ScramLoginModule");
    if !supported {
        return Err(format!(
            "{JAAS}: librdkafka has no such setting; hubcap translates a PlainLoginModule or \
             ScramLoginModule one (username=\"…\" password=\"…\") to sasl.username and \
             sasl.password. For OAuth or Kerberos, give librdkafka's sasl.oauthbearer.* or \
             sasl.kerberos.* settings instead"
        ));
    }
    let option = |name: &str| jaas_option(value, name);
    match (option("username"), option("password")) {
        (Some(user), Some(password)) => Ok(vec![
            ("sasl.username".into(), user),
            ("sasl.password".into(), password),
        ]),
        _ => Err(format!(
            "{JAAS}: expected `{module} required username=\"…\" password=\"…\";` (both \
             options, values in double quotes); or give -X sasl.username=… -X sasl.password=…"
        )),
    }
}

/// A JAAS option's value, `name="value"` (quoted; JAAS values may hold `;` and `=`, not `"`).
fn jaas_option(config: &str, name: &str) -> Option<String> {
    let mut rest = config;
    while let Some(at) = rest.find(name) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + name.len()..].trim_start();
        rest = &rest[at + name.len()..];
        if before.is_some_and(|c| !c.is_whitespace()) {
            continue;
        }
        let Some(quoted) = after.strip_prefix('=').map(str::trim_start) else {
            continue;
        };
        let inner = quoted.strip_prefix('"')?;
        return inner.find('"').map(|end| inner[..end].to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAAS_CONFIG: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"$ConnectionString\" password=\"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=S3CRET=\";";

    #[test]
    fn a_java_jaas_config_becomes_username_and_password() {
        let raw = vec![
            "security.protocol=SASL_SSL".to_string(),
            format!("sasl.jaas.config={JAAS_CONFIG}"),
        ];
        let settings = parse_settings(&raw).unwrap();
        assert_eq!(
            settings[1..],
            [
                ("sasl.username".to_string(), "$ConnectionString".to_string()),
                (
                    "sasl.password".to_string(),
                    "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=S3CRET=".to_string()
                )
            ]
        );
        let scram = "org.apache.kafka.common.security.scram.ScramLoginModule required\n  username=\"u\"\n  password=\"p w\";";
        assert_eq!(
            from_jaas(scram).unwrap()[1],
            ("sasl.password".to_string(), "p w".to_string())
        );
        for bad in [
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientSecret=\"S3CRET\";",
            "org.apache.kafka.common.security.plain.PlainLoginModule required password=\"S3CRET\";",
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=u password=S3CRET;",
        ] {
            let err = from_jaas(bad).unwrap_err();
            assert!(err.contains("sasl.jaas.config") && !err.contains("S3CRET"), "{err}");
        }
    }

    proptest::proptest! {
        /// Random `-X` words never panic the parsers, and no error quotes any of the word.
        #[test]
        fn setting_parsers_never_panic_nor_quote(
            head in "[ -~]{0,30}",
            secret in "Zq[A-Za-z0-9]{10}",
            tail in "[ -~\n]{0,30}",
        ) {
            let word = format!("{head}{secret}{tail}");
            for err in [
                parse_key_value(&word).err(),
                parse_settings(&vec![word.clone()]).err(),
                parse_settings(&vec![format!("{JAAS}={word}")]).err(),
                from_jaas(&word).err(),
            ]
            .into_iter()
            .flatten()
            {
                proptest::prop_assert!(!err.contains(&secret), "{err}");
            }
        }
    }

    #[test]
    fn kafka_args_debug_redacted() {
        let shown = format!(
            "{:?}",
            [
                KafkaArg("security.protocol=SSL".into()),
                KafkaArg("sasl.password=S3CRET".into()),
                KafkaArg(format!("{JAAS}={JAAS_CONFIG}")),
                KafkaArg("S3CRET".into()),
            ]
        );
        assert!(shown.contains("security.protocol=SSL"), "{shown}");
        assert!(!shown.contains("S3CRET"), "{shown}");
    }

    #[test]
    fn malformed_settings_are_not_quoted() {
        for bad in [
            "=S3CRET",
            "S3CRET",
            "Endpoint=sb://S3CRET",
            "Password=S3CRET",
        ] {
            let err = parse_key_value(bad).unwrap_err();
            assert!(!err.contains("S3CRET"), "{err}");
        }
    }

    #[test]
    fn client_errors_do_not_repeat_the_value() {
        let e = KafkaError::ClientConfig(
            rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value \"S3CRET\" for configuration property \"ssl.key.pem\"".into(),
            "ssl.key.pem".into(),
            "S3CRET".into(),
        );
        let text = client_error(&e);
        assert!(text.starts_with("-X ssl.key.pem: Invalid value"), "{text}");
        assert!(!text.contains("S3CRET"), "{text}");
    }
}
