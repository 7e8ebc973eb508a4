//! An Iceberg REST catalog (`--iceberg-catalog`): the 2026 standard interface of Polaris,
//! Lakekeeper, Unity, S3 Tables, Glue and Apache Iceberg's own server. hubcap writes the data
//! files, manifests and manifest lists as for a path table; the catalog keeps the table's
//! metadata JSON and takes each commit as a list of updates guarded by requirements (the table's
//! UUID, the `main` branch's snapshot), so two writers never both commit on one snapshot.
//!
//! Credentials come from the environment only and are never printed: a bearer token, or OAuth2
//! client credentials exchanged for a token (refreshed before it expires, and once more when the
//! catalog answers 401).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::metadata::TableMetadata;
use super::IcebergError;

/// How long one request to the catalog may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A token is fetched again this long before the catalog said it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// The OAuth2 scope asked for when none is given (Java's and pyiceberg's default).
pub const DEFAULT_SCOPE: &str = "catalog";

/// A value that is never printed: `Debug` shows `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How hubcap proves itself to the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    /// `HUBCAP_ICEBERG_TOKEN`: sent as `Authorization: Bearer …`.
    Token(Secret),
    /// `HUBCAP_ICEBERG_CREDENTIAL` (`client_id:client_secret`): exchanged for a token at
    /// `token_uri` (`HUBCAP_ICEBERG_OAUTH_URI`; the catalog's `v1/oauth/tokens` by default).
    ClientCredentials {
        id: String,
        secret: Secret,
        token_uri: Option<String>,
        scope: String,
    },
}

/// `--iceberg-catalog`, `--iceberg-warehouse` and `--iceberg-namespace`, the same for `run`,
/// `audit` and `inspect`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CatalogArgs {
    /// Keep (or, for audit and inspect, read) the Iceberg tables in this REST catalog
    /// (Polaris, Lakekeeper, Unity, Apache Iceberg's server), e.g. http://127.0.0.1:8181 or
    /// https://HOST/api/catalog, as table TOPIC of --iceberg-namespace; run needs --table
    /// iceberg. Credentials come from the environment only: HUBCAP_ICEBERG_TOKEN (a bearer
    /// token) or HUBCAP_ICEBERG_CREDENTIAL (CLIENT_ID:CLIENT_SECRET for OAuth2, with
    /// HUBCAP_ICEBERG_OAUTH_URI and HUBCAP_ICEBERG_SCOPE when the catalog needs them).
    #[arg(long, env = "HUBCAP_ICEBERG_CATALOG", value_name = "URL")]
    pub iceberg_catalog: Option<String>,

    /// The catalog's warehouse, if it asks for one (Polaris: the catalog's name; Lakekeeper: the
    /// warehouse's; S3 Tables: the table bucket's ARN).
    #[arg(long, env = "HUBCAP_ICEBERG_WAREHOUSE", value_name = "NAME")]
    pub iceberg_warehouse: Option<String>,

    /// The catalog namespace of the tables, created by run when missing; dots separate levels.
    #[arg(
        long,
        env = "HUBCAP_ICEBERG_NAMESPACE",
        default_value = "hubcap",
        value_name = "NAME"
    )]
    pub iceberg_namespace: String,
}

impl CatalogArgs {
    /// The catalog the flags name (`None` without `--iceberg-catalog`), with the credentials
    /// from the environment; an error names the flag or variable at fault.
    pub fn config(&self) -> Result<Option<CatalogConfig>, String> {
        self.iceberg_catalog
            .as_deref()
            .map(|uri| {
                CatalogConfig::from_flags(
                    uri,
                    self.iceberg_warehouse.as_deref(),
                    &self.iceberg_namespace,
                )
            })
            .transpose()
    }
}

/// `--iceberg-catalog` and its companions, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogConfig {
    /// The catalog's base URI, before `/v1` (`http://127.0.0.1:8181`,
    /// `https://host/api/catalog`).
    pub uri: String,
    /// Sent to `GET /v1/config` as `warehouse` (Polaris: the catalog's name; Lakekeeper: the
    /// warehouse; S3 Tables: the table bucket's ARN).
    pub warehouse: Option<String>,
    /// The namespace the tables are in, one entry per level.
    pub namespace: Vec<String>,
    pub auth: Auth,
}

impl CatalogConfig {
    /// `--iceberg-catalog URI`, `--iceberg-warehouse` and `--iceberg-namespace` (dots separate
    /// levels), with the credentials from the environment (`HUBCAP_ICEBERG_TOKEN`, or
    /// `HUBCAP_ICEBERG_CREDENTIAL` with `HUBCAP_ICEBERG_OAUTH_URI` and `HUBCAP_ICEBERG_SCOPE`).
    /// Errors name the flag or variable and the form expected, never a value.
    pub fn from_flags(
        uri: &str,
        warehouse: Option<&str>,
        namespace: &str,
    ) -> Result<CatalogConfig, String> {
        let url = url::Url::parse(uri).map_err(|_| {
            "--iceberg-catalog is not a URL; give the catalog's base URI, e.g. http://127.0.0.1:8181 or https://HOST/api/catalog".to_string()
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err("--iceberg-catalog must be an http:// or https:// URL, e.g. https://HOST/api/catalog".into());
        }
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
            return Err("--iceberg-catalog holds credentials or a query; give the catalog's base URI alone, and the credentials in HUBCAP_ICEBERG_TOKEN or HUBCAP_ICEBERG_CREDENTIAL".into());
        }
        let namespace: Vec<String> = namespace.split('.').map(str::to_string).collect();
        let bad = |level: &String| level.is_empty() || level.chars().any(char::is_control);
        if namespace.iter().any(bad) {
            return Err("--iceberg-namespace must be a name, or names joined by dots (one per level), e.g. hubcap or lake.events".into());
        }
        Ok(CatalogConfig {
            uri: uri.trim_end_matches('/').to_string(),
            warehouse: warehouse.filter(|w| !w.is_empty()).map(str::to_string),
            namespace,
            auth: auth_from_env()?,
        })
    }

    /// The catalog's URI for messages: no user info, no query.
    pub fn shown_uri(&self) -> String {
        crate::store::redact_url(&self.uri)
    }

    /// `ns.table`, as engines name the table.
    pub fn qualified(&self, table: &str) -> String {
        let mut parts = self.namespace.clone();
        parts.push(table.to_string());
        parts.join(".")
    }
}

/// The credentials in the environment.
fn auth_from_env() -> Result<Auth, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        var("HUBCAP_ICEBERG_TOKEN"),
        var("HUBCAP_ICEBERG_CREDENTIAL"),
    ) {
        (Some(_), Some(_)) => {
            Err("both HUBCAP_ICEBERG_TOKEN and HUBCAP_ICEBERG_CREDENTIAL are set; keep one".into())
        }
        (Some(token), None) => Ok(Auth::Token(Secret(token))),
        (None, Some(credential)) => {
            let Some((id, secret)) = credential.split_once(':') else {
                return Err(
                    "HUBCAP_ICEBERG_CREDENTIAL must be CLIENT_ID:CLIENT_SECRET (not shown)".into(),
                );
            };
            Ok(Auth::ClientCredentials {
                id: id.to_string(),
                secret: Secret(secret.to_string()),
                token_uri: var("HUBCAP_ICEBERG_OAUTH_URI"),
                scope: var("HUBCAP_ICEBERG_SCOPE").unwrap_or_else(|| DEFAULT_SCOPE.into()),
            })
        }
        (None, None) => Ok(Auth::None),
    }
}

/// A table as the catalog returns it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub metadata_location: String,
    pub metadata: TableMetadata,
}

/// A connected REST catalog.
pub struct RestCatalog {
    config: CatalogConfig,
    http: reqwest::Client,
    /// `{uri}/v1/{prefix}`: where the namespace and table routes start.
    base: String,
    token: tokio::sync::Mutex<Option<Token>>,
}

impl std::fmt::Debug for RestCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestCatalog")
            .field("uri", &self.config.shown_uri())
            .finish()
    }
}

#[derive(Clone)]
struct Token {
    value: String,
    /// When to fetch another (never, for a token given as is).
    renew_at: Option<Instant>,
}

/// What a request's answer said, before it is turned into an [`IcebergError`].
enum Answer {
    Ok(Value),
    Status(reqwest::StatusCode, String),
    /// No answer: the catalog could not be reached or did not answer in time.
    Unreachable(String),
}

impl RestCatalog {
    /// Connects: gets a token (with client credentials), then the catalog's configuration
    /// (`GET /v1/config`), whose `prefix` the table routes take.
    pub async fn connect(config: CatalogConfig) -> Result<RestCatalog, IcebergError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| IcebergError::Catalog {
                catalog: config.shown_uri(),
                reason: format!("cannot make an HTTP client: {e}"),
                transient: false,
            })?;
        let root = config.uri.trim_end_matches('/').to_string();
        let mut catalog = RestCatalog {
            base: format!("{root}/v1"),
            config,
            http,
            token: tokio::sync::Mutex::new(None),
        };
        let mut url = format!("{root}/v1/config");
        if let Some(w) = &catalog.config.warehouse {
            url = format!("{url}?warehouse={}", encode(w));
        }
        let answer = catalog.send(reqwest::Method::GET, &url, None).await;
        let config = catalog.expect_ok("GET /v1/config", answer)?;
        let setting = |key: &str| {
            config["overrides"][key]
                .as_str()
                .or_else(|| config["defaults"][key].as_str())
                .map(str::to_string)
        };
        if let Some(prefix) = setting("prefix").filter(|p| !p.is_empty()) {
            catalog.base = format!("{root}/v1/{}", prefix.trim_matches('/'));
        }
        Ok(catalog)
    }

    pub fn config(&self) -> &CatalogConfig {
        &self.config
    }

    fn namespace_url(&self) -> String {
        // Levels are joined by the unit separator (0x1F), escaped in the path.
        let joined = self.config.namespace.join("\u{1f}");
        format!("{}/namespaces/{}", self.base, encode(&joined))
    }

    fn table_url(&self, table: &str) -> String {
        format!("{}/tables/{}", self.namespace_url(), encode(table))
    }

    /// Creates the namespace unless it exists. Several instances starting together race to
    /// create it; a catalog may answer the losers 409 or fail them (a 500 from a SQLite
    /// backend): a namespace that exists afterwards is all that counts.
    pub async fn ensure_namespace(&self) -> Result<(), IcebergError> {
        let url = format!("{}/namespaces", self.base);
        let body = json!({"namespace": self.config.namespace, "properties": {}});
        let created = match self.send(reqwest::Method::POST, &url, Some(&body)).await {
            Answer::Status(s, _) if s == reqwest::StatusCode::CONFLICT => return Ok(()),
            answer => self.expect_ok("create the namespace", answer).map(drop),
        };
        match created {
            Err(e) if !e.is_refused() => {
                let exists = self
                    .send(reqwest::Method::GET, &self.namespace_url(), None)
                    .await;
                match exists {
                    Answer::Ok(_) => Ok(()),
                    _ => Err(e),
                }
            }
            other => other,
        }
    }

    /// The table `table` of the namespace, `None` when the catalog has none.
    pub async fn load_table(&self, table: &str) -> Result<Option<Loaded>, IcebergError> {
        let url = self.table_url(table);
        match self.send(reqwest::Method::GET, &url, None).await {
            Answer::Status(s, _) if s == reqwest::StatusCode::NOT_FOUND => Ok(None),
            answer => {
                let what = format!("load table {}", self.config.qualified(table));
                self.loaded(&what, self.expect_ok(&what, answer)?).map(Some)
            }
        }
    }

    /// Creates `table` as `metadata` describes it (its location, schema, partition spec and
    /// properties); when another writer created it first, that table is returned.
    pub async fn create_table(
        &self,
        table: &str,
        metadata: &TableMetadata,
    ) -> Result<Loaded, IcebergError> {
        let url = format!("{}/tables", self.namespace_url());
        let body = json!({
            "name": table,
            "location": metadata.location,
            "schema": metadata.current_schema(),
            "partition-spec": metadata.default_spec(),
            "write-order": {"order-id": 0, "fields": []},
            "stage-create": false,
            "properties": metadata.properties,
        });
        let what = format!("create table {}", self.config.qualified(table));
        match self.send(reqwest::Method::POST, &url, Some(&body)).await {
            Answer::Status(s, _) if s == reqwest::StatusCode::CONFLICT => self
                .load_table(table)
                .await?
                .ok_or_else(|| IcebergError::Catalog {
                    catalog: self.config.shown_uri(),
                    reason: format!("{what}: it exists, yet cannot be loaded"),
                    transient: true,
                }),
            answer => match self.expect_ok(&what, answer) {
                Ok(body) => self.loaded(&what, body),
                // Another instance's create may have failed this one (see `ensure_namespace`).
                Err(e) if !e.is_refused() => match self.load_table(table).await {
                    Ok(Some(loaded)) => Ok(loaded),
                    _ => Err(e),
                },
                Err(e) => Err(e),
            },
        }
    }

    /// Registers the table whose current metadata is `metadata_location` (a path table that
    /// moves into the catalog).
    pub async fn register_table(
        &self,
        table: &str,
        metadata_location: &str,
    ) -> Result<Loaded, IcebergError> {
        let url = format!("{}/register", self.namespace_url());
        let body = json!({"name": table, "metadata-location": metadata_location});
        let what = format!("register table {}", self.config.qualified(table));
        let answer = self.send(reqwest::Method::POST, &url, Some(&body)).await;
        self.loaded(&what, self.expect_ok(&what, answer)?)
    }

    /// Commits `updates` to `table` if `requirements` hold. A failed requirement (another writer
    /// committed first) is [`IcebergError::Conflict`]; no answer, or a server error, leaves the
    /// commit's fate unknown: a transient error, after which the table must be read again.
    pub async fn commit(
        &self,
        table: &str,
        requirements: Vec<Value>,
        updates: Vec<Value>,
    ) -> Result<Loaded, IcebergError> {
        let url = self.table_url(table);
        let body = json!({"requirements": requirements, "updates": updates});
        let what = format!("commit to table {}", self.config.qualified(table));
        match self.send(reqwest::Method::POST, &url, Some(&body)).await {
            Answer::Status(s, _) if s == reqwest::StatusCode::CONFLICT => {
                Err(IcebergError::Conflict {
                    table: self.config.qualified(table),
                    version: 0,
                })
            }
            answer => self.loaded(&what, self.expect_ok(&what, answer)?),
        }
    }

    fn loaded(&self, what: &str, body: Value) -> Result<Loaded, IcebergError> {
        let location = body["metadata-location"].as_str().unwrap_or_default();
        let metadata = serde_json::from_value(body["metadata"].clone()).map_err(|e| {
            IcebergError::Catalog {
                catalog: self.config.shown_uri(),
                reason: format!("{what}: the table metadata it returned cannot be used: {e}"),
                transient: false,
            }
        })?;
        Ok(Loaded {
            metadata_location: location.to_string(),
            metadata,
        })
    }

    /// The answer's body when it succeeded, else the error it means.
    fn expect_ok(&self, what: &str, answer: Answer) -> Result<Value, IcebergError> {
        let catalog = self.config.shown_uri();
        let (status, text) = match answer {
            Answer::Ok(body) => return Ok(body),
            Answer::Unreachable(reason) => {
                return Err(IcebergError::Catalog {
                    catalog,
                    reason: format!("{what}: {reason}"),
                    transient: true,
                })
            }
            Answer::Status(status, text) => (status, text),
        };
        let reason = format!("{what}: {status}{}", error_message(&text));
        Err(match status.as_u16() {
            401 | 403 | 419 => IcebergError::Refused {
                catalog,
                reason: format!(
                    "{reason}; check HUBCAP_ICEBERG_TOKEN or HUBCAP_ICEBERG_CREDENTIAL and the principal's grants on the namespace"
                ),
            },
            408 | 429 | 500..=599 => IcebergError::Catalog {
                catalog,
                reason,
                transient: true,
            },
            _ => IcebergError::Catalog {
                catalog,
                reason,
                transient: false,
            },
        })
    }

    /// Sends one request with the current token; a 401 with client credentials fetches a new
    /// token and sends it once more.
    async fn send(&self, method: reqwest::Method, url: &str, body: Option<&Value>) -> Answer {
        let mut renewed = false;
        loop {
            let token = match self.token(renewed).await {
                Ok(token) => token,
                Err(answer) => return answer,
            };
            // No `X-Iceberg-Access-Delegation`: hubcap writes with its own store credentials.
            let mut request = self.http.request(method.clone(), url);
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_string());
            }
            let answer = answer_of(request.send().await).await;
            let retry_auth = matches!(self.config.auth, Auth::ClientCredentials { .. })
                && !renewed
                && matches!(&answer, Answer::Status(s, _) if *s == reqwest::StatusCode::UNAUTHORIZED);
            if !retry_auth {
                return answer;
            }
            renewed = true;
        }
    }

    /// The token to send (`None` without credentials), fetched when there is none yet, when
    /// it is about to expire, or when `renew` says the catalog refused it.
    async fn token(&self, renew: bool) -> Result<Option<String>, Answer> {
        let (id, secret, token_uri, scope) = match &self.config.auth {
            Auth::None => return Ok(None),
            Auth::Token(t) => return Ok(Some(t.0.clone())),
            Auth::ClientCredentials {
                id,
                secret,
                token_uri,
                scope,
            } => (id, secret, token_uri, scope),
        };
        let mut held = self.token.lock().await;
        if let Some(t) = held.as_ref() {
            let fresh = t.renew_at.is_none_or(|at| Instant::now() < at);
            if fresh && !renew {
                return Ok(Some(t.value.clone()));
            }
        }
        let uri = token_uri.clone().unwrap_or_else(|| {
            format!("{}/v1/oauth/tokens", self.config.uri.trim_end_matches('/'))
        });
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.0.as_str()),
            ("scope", scope.as_str()),
        ];
        let form = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .http
            .post(&uri)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form);
        let body = match answer_of(request.send().await).await {
            Answer::Ok(body) => body,
            Answer::Status(status, text) => {
                // What a token endpoint refuses is the credential.
                let status = if status.is_client_error() {
                    reqwest::StatusCode::UNAUTHORIZED
                } else {
                    status
                };
                // An endpoint may echo what it was sent.
                let text = text.replace(secret.0.as_str(), "<redacted>");
                return Err(Answer::Status(
                    status,
                    format!(
                        "the OAuth2 token endpoint {}: {text}",
                        crate::store::redact_url(&uri)
                    ),
                ));
            }
            Answer::Unreachable(reason) => {
                return Err(Answer::Unreachable(format!(
                    "the OAuth2 token endpoint {}: {reason}",
                    crate::store::redact_url(&uri)
                )))
            }
        };
        let Some(value) = body["access_token"].as_str() else {
            return Err(Answer::Status(
                reqwest::StatusCode::UNAUTHORIZED,
                "the OAuth2 token endpoint's answer holds no access_token".into(),
            ));
        };
        let renew_at = body["expires_in"].as_u64().map(|s| {
            Instant::now()
                + Duration::from_secs(s)
                    .saturating_sub(TOKEN_MARGIN)
                    .max(Duration::from_secs(1))
        });
        let token = Token {
            value: value.to_string(),
            renew_at,
        };
        *held = Some(token.clone());
        Ok(Some(token.value))
    }
}

/// Reads a response: JSON on success, the body's text otherwise.
async fn answer_of(sent: Result<reqwest::Response, reqwest::Error>) -> Answer {
    let response = match sent {
        Ok(r) => r,
        // reqwest's error names the URL, never a header: no token in it.
        Err(e) => return Answer::Unreachable(describe(&e)),
    };
    let status = response.status();
    let text = match response.text().await {
        Ok(text) => text,
        Err(e) => return Answer::Unreachable(describe(&e)),
    };
    if !status.is_success() {
        return Answer::Status(status, text);
    }
    if text.trim().is_empty() {
        return Answer::Ok(Value::Null);
    }
    match serde_json::from_str(&text) {
        Ok(body) => Answer::Ok(body),
        Err(e) => Answer::Status(status, format!("not JSON ({e})")),
    }
}

/// A transport error in one line, with its causes (reqwest's own text says little).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "no answer in time".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// The message of an Iceberg REST error body (`{"error": {"message": …}}`), else the start of
/// the text.
fn error_message(text: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.chars().take(200).collect());
    if message.trim().is_empty() {
        String::new()
    } else {
        format!(" ({})", message.trim())
    }
}

/// Escapes a path segment or query value.
fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests;
