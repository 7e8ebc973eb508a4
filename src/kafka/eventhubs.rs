//! Azure Event Hubs connection strings, for the Kafka endpoint.
//!
//! `Endpoint=sb://NAMESPACE.servicebus.windows.net/;SharedAccessKeyName=…;SharedAccessKey=…`
//! with an optional `;EntityPath=HUB`. Parsed like the Azure SDKs do: `;`-separated pairs, keys
//! case-insensitive, each pair split on its first `=` (keys and values may hold more), unknown
//! keys ignored; `Endpoint` is required, with `SharedAccessKeyName` and `SharedAccessKey`, or
//! a `SharedAccessSignature`. The string is a secret: errors name what is missing, never a value.

use std::fmt;

/// A connection string, kept out of `Debug` output and logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// For clap: keeps the value as given.
pub fn secret(s: &str) -> Result<Secret, String> {
    Ok(Secret(s.to_string()))
}

/// What hubcap takes from a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The namespace host, e.g. `contoso.servicebus.windows.net`.
    pub host: String,
    /// The event hub (Kafka topic) an entity-scoped string names.
    pub entity_path: Option<String>,
}

impl Connection {
    /// The Kafka endpoint: the namespace host on port 9093.
    pub fn bootstrap_servers(&self) -> String {
        format!("{}:9093", self.host)
    }

    /// librdkafka settings for the endpoint: SASL_SSL with PLAIN, user `$ConnectionString` and
    /// the whole string as password; plus the session timeout Microsoft recommends. (Its
    /// `request.timeout.ms=60000` is a producer setting: a consumer warns that it ignores it.)
    pub fn kafka_settings(secret: &Secret) -> Vec<(String, String)> {
        [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "$ConnectionString"),
            ("sasl.password", secret.0.as_str()),
            ("session.timeout.ms", "30000"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConnectionStringError {
    #[error("the Event Hubs connection string has no Endpoint=sb://NAMESPACE.servicebus.windows.net/; copy it from the namespace's \"Shared access policies\" in the Azure portal")]
    NoEndpoint,
    #[error("the Event Hubs connection string's Endpoint is not an sb:// URL with a host, like sb://NAMESPACE.servicebus.windows.net/")]
    BadEndpoint,
    #[error("the Event Hubs connection string has no key: it needs SharedAccessKeyName and SharedAccessKey (or SharedAccessSignature)")]
    NoKey,
}

/// Parses a connection string; see the module documentation for the rules.
pub fn parse(s: &str) -> Result<Connection, ConnectionStringError> {
    let mut endpoint = None;
    let (mut key_name, mut key, mut signature, mut entity) = (false, false, false, None);
    for pair in s.split(';') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "endpoint" => endpoint = Some(v),
            "sharedaccesskeyname" => key_name = !v.is_empty(),
            "sharedaccesskey" => key = !v.is_empty(),
            "sharedaccesssignature" => signature = !v.is_empty(),
            "entitypath" if !v.is_empty() => entity = Some(v.to_string()),
            _ => {}
        }
    }
    let endpoint = endpoint
        .filter(|e| !e.is_empty())
        .ok_or(ConnectionStringError::NoEndpoint)?;
    let url = url::Url::parse(endpoint).map_err(|_| ConnectionStringError::BadEndpoint)?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty() && url.scheme().eq_ignore_ascii_case("sb"))
        .ok_or(ConnectionStringError::BadEndpoint)?;
    if !(signature || (key_name && key)) {
        return Err(ConnectionStringError::NoKey);
    }
    Ok(Connection {
        host: host.to_ascii_lowercase(),
        entity_path: entity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::config::RDKafkaLogLevel;
    use rdkafka::consumer::Consumer;

    const KEY: &str = "c2VjcmV0LWtleS13aXRoLWVxdWFscz09"; // ends in '=' like real keys

    /// Records librdkafka's warnings about its configuration (`CONFWARN`); not the failures to
    /// connect to the address nothing listens on.
    #[derive(Default)]
    struct Logs(std::sync::Mutex<Vec<String>>);

    impl rdkafka::ClientContext for Logs {
        fn log(&self, _: RDKafkaLogLevel, fac: &str, message: &str) {
            if fac == "CONFWARN" {
                self.0.lock().unwrap().push(format!("{fac}: {message}"));
            }
        }
    }

    impl rdkafka::consumer::ConsumerContext for Logs {}

    #[test]
    fn the_preset_makes_a_consumer_without_warnings() {
        let secret = Secret(format!(
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey={KEY}"
        ));
        let mut config = rdkafka::ClientConfig::new();
        config
            .set("bootstrap.servers", "127.0.0.1:9")
            .set("group.id", "g")
            .set_log_level(RDKafkaLogLevel::Warning);
        for (k, v) in Connection::kafka_settings(&secret) {
            config.set(k, v);
        }
        let consumer: rdkafka::consumer::BaseConsumer<Logs> =
            config.create_with_context(Logs::default()).unwrap();
        // Warnings about the configuration are delivered on the first polls.
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(500) {
            let _ = consumer.poll(std::time::Duration::from_millis(50));
        }
        let logs = consumer.context().0.lock().unwrap().clone();
        assert!(logs.is_empty(), "{logs:?}");
    }

    #[test]
    fn table() {
        let ok = |host: &str, hub: Option<&str>| {
            Ok(Connection {
                host: host.into(),
                entity_path: hub.map(str::to_string),
            })
        };
        let cases: Vec<(String, Result<Connection, ConnectionStringError>)> = vec![
            (
                format!("Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={KEY}="),
                ok("contoso.servicebus.windows.net", None),
            ),
            (
                format!("Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey={KEY};EntityPath=clicks"),
                ok("contoso.servicebus.windows.net", Some("clicks")),
            ),
            (
                // Odd casing, spaces, a trailing ';', unknown keys.
                format!(" endpoint = sb://Contoso.ServiceBus.Windows.Net/ ; SHAREDACCESSKEYNAME=k;sharedaccesskey={KEY};TransportType=AmqpWebSockets;"),
                ok("contoso.servicebus.windows.net", None),
            ),
            (
                "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessSignature=SharedAccessSignature sr=x&sig=y=&se=1&skn=k".into(),
                ok("ns.servicebus.windows.net", None),
            ),
            (
                format!("SharedAccessKeyName=k;SharedAccessKey={KEY}"),
                Err(ConnectionStringError::NoEndpoint),
            ),
            (
                format!("Endpoint=;SharedAccessKeyName=k;SharedAccessKey={KEY}"),
                Err(ConnectionStringError::NoEndpoint),
            ),
            (
                format!("Endpoint=contoso.servicebus.windows.net;SharedAccessKeyName=k;SharedAccessKey={KEY}"),
                Err(ConnectionStringError::BadEndpoint),
            ),
            (
                format!("Endpoint=https://contoso.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey={KEY}"),
                Err(ConnectionStringError::BadEndpoint),
            ),
            (
                "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=k".into(),
                Err(ConnectionStringError::NoKey),
            ),
            (
                format!("Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKey={KEY}"),
                Err(ConnectionStringError::NoKey),
            ),
            ("".into(), Err(ConnectionStringError::NoEndpoint)),
        ];
        for (s, want) in cases {
            let got = parse(&s);
            assert_eq!(got, want, "{s}");
            if let Err(e) = got {
                assert!(!e.to_string().contains(KEY), "{e}");
            }
        }
    }

    #[test]
    fn settings_and_redaction() {
        let c = parse(&format!(
            "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey={KEY}"
        ))
        .unwrap();
        assert_eq!(c.bootstrap_servers(), "contoso.servicebus.windows.net:9093");
        let secret = Secret(format!("Endpoint=…;SharedAccessKey={KEY}"));
        assert_eq!(format!("{secret:?}"), "<redacted>");
        let settings = Connection::kafka_settings(&secret);
        assert!(settings.contains(&("sasl.username".into(), "$ConnectionString".into())));
        assert!(settings.contains(&("sasl.password".into(), secret.0.clone())));
        assert!(settings.contains(&("security.protocol".into(), "SASL_SSL".into())));
    }
}
