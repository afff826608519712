//! Configuration: TOML text → validated model. Every error names the key path and line;
//! secret values never appear in an error.

mod auth;
mod backends;
mod cache;
mod cloud;
mod health;
mod include;
mod jwt_key;
mod keys;
mod limit_spec;
mod limits;
mod load;
mod presets;
mod price_table;
mod prices;
mod responses;
mod routes;
mod server;

pub(crate) use crate::net::url::parse_url;
pub use crate::net::url::UpstreamUrl;
pub use cache::{CacheSettings, RouteCache};
pub use keys::{AuthSettings, KeySpec};
pub use limit_spec::{Cap, LimitSpec, Measure, Scope};
pub use limits::{AlertSettings, IdentitySettings, StoreKind, StoreSettings};
pub use price_table::{glob_match, Price, PriceTable};
pub use responses::ResponsesSettings;
pub use routes::{
    AffinityKey, BalanceSettings, FieldRules, RetryPolicy, RouteSpec, Strategy, TargetSpec,
    DEFAULT_OUTPUT_TOKENS,
};
pub use schema::RawCaps;
pub use server::{AdminTls, TlsFiles, TlsListen};
pub use service_account::ServiceAccount;

pub use auth::{JwksSource, JwtKeys, JwtSpec};
pub use cloud::{AwsAuth, GoogleAuth};
pub use health::{Ejection, HealthCheckSpec};
pub use jwt_key::{JwtKey, KeyKind};
mod schema;
mod service_account;

use schema::RawConfig;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One configuration problem, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The included file it is in (`None`: the file named on the command line).
    pub file: Option<String>,
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "(in {file}) ")?;
        }
        match (self.path.is_empty(), self.line) {
            (false, Some(l)) => write!(f, "line {l}: `{}`: {}", self.path, self.message),
            (false, None) => write!(f, "`{}`: {}", self.path, self.message),
            (true, Some(l)) => write!(f, "line {l}: {}", self.message),
            (true, None) => write!(f, "{}", self.message),
        }
    }
}

/// Every problem found in one file.
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors {
    pub file: String,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} error(s)", self.file, self.errors.len())?;
        for e in &self.errors {
            write!(f, "\n  {}: {e}", self.file)?;
        }
        Ok(())
    }
}

/// A secret string: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn for_tests(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    pub backends: Vec<BackendSpec>,
    pub routes: Vec<RouteSpec>,
    pub keys: Vec<KeySpec>,
    /// Callers identified besides `[[keys]]`.
    pub auth: AuthSettings,
    pub log: LogSettings,
    /// Address of the built-in mock provider to run inside the gateway process, if any.
    pub mock_listen: Option<SocketAddr>,
    pub limits: Vec<LimitSpec>,
    pub store: StoreSettings,
    pub identity: IdentitySettings,
    /// Budget threshold notices, when a webhook is configured.
    pub alerts: Option<AlertSettings>,
    /// Model prices: the `[[prices]]` entries, then the price file's.
    pub prices: PriceTable,
    /// Where a request comes from, for region-aware selection.
    pub balance: BalanceSettings,
    /// The Responses API's kept responses on translated routes.
    pub responses: ResponsesSettings,
    /// The response cache's store (routes opt in with their `cache` table).
    pub cache: CacheSettings,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: Vec<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub max_body_bytes: usize,
    pub threads: usize,
    pub h2c: bool,
    pub keepalive_timeout_seconds: u64,
    pub client_read_timeout_seconds: u64,
    /// A request head (the first one from the connection's start) must arrive whole within it.
    pub header_timeout_seconds: u64,
    /// 414 past this request line, 431 past this head, in bytes.
    pub max_request_line_bytes: usize,
    pub max_header_bytes: usize,
    /// Client connections open at once, in all and from one address (0: no cap).
    pub max_connections: u32,
    pub max_connections_per_client: u32,
    pub grace_period_seconds: u64,
    pub graceful_shutdown_timeout_seconds: u64,
    pub pid_file: String,
    pub upgrade_sock: String,
    /// `None`: the admin listener's `/usage` is off.
    pub admin_token: Option<Secret>,
    pub admin_require_token: bool,
    /// Reload when the config's files change, checked every `watch_interval_ms`.
    pub watch_config: bool,
    pub watch_interval_ms: u64,
    /// Clients are served without a key (`[server] open = true`): said on purpose, never
    /// implied by a config that lost its `[[keys]]`.
    pub open: bool,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Client addresses served on the plain listeners (and on TLS ones without their own).
    pub addresses: crate::net::address::AddressRules,
    /// Client listeners over TLS.
    pub tls: Option<TlsListen>,
    /// The admin listener (`admin_listen`) over TLS.
    pub admin_tls: Option<AdminTls>,
}

/// Which API a backend speaks, with the provider's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI, or an OpenAI-compatible server; `preset` names a known one (`groq`, `vllm`...).
    /// `responses`: the server has the Responses API (default: OpenAI yes, presets no).
    OpenAi {
        preset: Option<&'static str>,
        responses: bool,
    },
    /// Azure OpenAI deployments: `/openai/deployments/{model}/...?api-version=...`, `api-key`.
    Azure { api_version: String },
    /// Anthropic Messages: `x-api-key`, `anthropic-version`.
    Anthropic {
        version: String,
        default_max_tokens: u32,
    },
    /// AWS Bedrock Converse, signed with SigV4 (or a Bedrock API key).
    Bedrock {
        region: String,
        auth: AwsAuth,
        default_max_tokens: u32,
    },
    /// Gemini on AI Studio: `x-goog-api-key`.
    Gemini,
    /// Gemini on Vertex AI.
    Vertex {
        project: String,
        location: String,
        auth: GoogleAuth,
    },
    /// Claude on Vertex AI (`rawPredict`, Anthropic's format).
    VertexAnthropic {
        project: String,
        location: String,
        auth: GoogleAuth,
        version: String,
        default_max_tokens: u32,
    },
}

#[derive(Debug, Clone)]
pub struct BackendSpec {
    pub name: String,
    pub provider: ProviderKind,
    pub url: UpstreamUrl,
    pub api_key: Option<Secret>,
    /// False when `api_key` is set but expanded to an empty string: the provider is off until
    /// its key is in the environment.
    pub enabled: bool,
    pub headers: Vec<(String, Secret)>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub idle_timeout: Duration,
    /// Longest wait for a streamed reply's first event (default: `read_timeout`).
    pub first_byte_timeout: Option<Duration>,
    /// Longest a whole exchange may take, relay included (default: none).
    pub total_timeout: Option<Duration>,
    /// Requests in flight at most; over it the backend is busy.
    pub max_concurrent: Option<u32>,
    pub ejection: Ejection,
    pub health_check: Option<HealthCheckSpec>,
    /// Extra trusted roots for this backend's TLS (DER), from `ca_file`.
    pub ca: Option<Vec<Vec<u8>>>,
    /// Offer h2 by ALPN on HTTPS (false: HTTP/1.1 only).
    pub http2: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    Stdout,
    Off,
    File(String),
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub access_log: AccessLogTarget,
    pub level: String,
}

impl Config {
    /// Reads and validates a file with the process environment; relative paths in it (the
    /// price file) are relative to its directory.
    pub fn load(path: &str) -> Result<Config, ConfigErrors> {
        Self::load_versioned(path).map(|(cfg, _)| cfg)
    }

    /// As `load`, with the config's version: the hash of its text and its included files'.
    pub fn load_versioned(path: &str) -> Result<(Config, String), ConfigErrors> {
        let fail = |errors| ConfigErrors {
            file: path.to_string(),
            errors,
        };
        let composed = compose_file(path).map_err(|e| fail(vec![e]))?;
        let version = version_of(&composed.text);
        let base_dir = Path::new(path).parent();
        let env = |k: &str| std::env::var(k).ok();
        let cfg = Self::from_str_in(&composed.text, &env, base_dir).map_err(|mut errors| {
            if !composed.is_single() {
                for e in &mut errors {
                    if let Some(l) = e.line {
                        let (file, line) = composed.locate(l);
                        e.line = Some(line);
                        e.file = (file != path).then(|| file.to_string());
                    }
                }
            }
            fail(errors)
        })?;
        let closed = cfg.gate();
        if !closed.is_empty() {
            return Err(fail(closed));
        }
        Ok((cfg, version))
    }

    /// Validates `text`; relative paths in it are relative to the current directory.
    pub fn from_str_with_env(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Vec<ConfigError>> {
        Self::from_str_in(text, env, None)
    }

    /// Validates `text`, resolving relative paths in it against `base_dir` (the current
    /// directory when `None`).
    pub fn from_str_in(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        base_dir: Option<&Path>,
    ) -> Result<Config, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let Some((value, spans)) = load::parse(text, env, &mut errors) else {
            return Err(errors);
        };
        let Some(raw) = deserialize_located::<RawConfig>(value, &spans, &mut errors) else {
            return Err(errors);
        };
        let mut v = Validator {
            errors,
            spans: &spans,
            env,
            base_dir: base_dir.map(Path::to_path_buf),
        };
        let cfg = v.validate(raw);
        if v.errors.is_empty() {
            Ok(cfg)
        } else {
            Err(v.errors)
        }
    }
}

/// Reads `path` and the files it includes, as one text.
fn compose_file(path: &str) -> Result<include::Composed, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: None,
        path: String::new(),
        line: None,
        message: format!("cannot read file: {e}"),
    })?;
    include::compose(Path::new(path), &text)
}

/// A config's version: the first 12 hex digits of the SHA-256 of its composed text.
fn version_of(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(text.as_bytes())[..6])
}

/// What a config's files hold now, as a version (or the reason they cannot be read): a
/// watcher compares it with the last one it saw.
pub fn current_version(path: &str) -> String {
    match compose_file(path) {
        Ok(c) => version_of(&c.text),
        Err(e) => format!("unreadable: {}", e.message),
    }
}

/// Deserialises a parsed file; a failure is one error located by key path and line.
fn deserialize_located<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    spans: &load::Spans<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            errors.push(ConfigError {
                file: None,
                line: spans.line_of(&path),
                message: redact_serde_message(&e.inner().to_string()),
                path,
            });
        })
        .ok()
}

/// serde quotes offending string values; a value may be an expanded secret, so drop it.
fn redact_serde_message(msg: &str) -> String {
    for prefix in ["invalid type: string \"", "invalid value: string \""] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            if let Some(i) = rest.rfind("\", expected") {
                return format!("{}{}", &prefix[..prefix.len() - 2], &rest[i + 1..]);
            }
        }
    }
    msg.to_string()
}

struct Validator<'s, 'a> {
    errors: Vec<ConfigError>,
    spans: &'s load::Spans<'a>,
    /// The environment, for the providers' standard variables (`AWS_REGION`, ...).
    env: &'s dyn Fn(&str) -> Option<String>,
    /// The config file's directory, for relative paths in it (`None`: the current directory).
    base_dir: Option<PathBuf>,
}

impl Validator<'_, '_> {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        self.errors.push(ConfigError {
            file: None,
            line: self.spans.line_of(&path),
            path,
            message: message.into(),
        });
    }

    fn addr(&mut self, path: String, s: &str) -> Option<SocketAddr> {
        match s.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(path, format!("`{s}` is not an IP:port address"));
                None
            }
        }
    }

    fn validate(&mut self, raw: RawConfig) -> Config {
        let server = self.server(raw.server);
        let (backends, names) = self.backends(raw.backends);
        let routes = self.routes(raw.routes, &names);
        let keys = self.keys(raw.keys);
        let auth = self.auth(raw.auth, &server);
        let access_log = match raw.log.access_log.as_str() {
            "stdout" => AccessLogTarget::Stdout,
            "off" | "" => AccessLogTarget::Off,
            path => AccessLogTarget::File(path.to_string()),
        };
        if !matches!(
            raw.log.level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace" | "off"
        ) {
            self.err(
                "log.level",
                "must be one of error, warn, info, debug, trace, off",
            );
        }
        let mock_listen = raw
            .mock
            .and_then(|m| self.addr("mock.listen".into(), &m.listen));
        let mut limits = self.limits(raw.limits);
        limits.extend(self.teams(raw.teams));
        let store = self.store(raw.store);
        let identity = self.identity(raw.identity);
        let alerts = self.alerts(raw.alerts);
        let prices = self.prices(raw.pricing, raw.prices);
        let balance = self.balance(raw.balance);
        let responses = self.responses(raw.responses);
        let cache = self.cache(raw.cache);

        Config {
            server,
            backends,
            routes,
            keys,
            auth,
            log: LogSettings {
                access_log,
                level: raw.log.level,
            },
            mock_listen,
            limits,
            store,
            identity,
            alerts,
            prices,
            balance,
            responses,
            cache,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        (k == "KEY").then(|| "sk-secret-value".to_string())
    }

    fn errs(src: &str) -> Vec<ConfigError> {
        Config::from_str_with_env(src, &env).unwrap_err()
    }

    const GOOD: &str = r#"
[server]
listen = ["127.0.0.1:8080"]

[[backends]]
name = "openai"
provider = "openai"
url = "https://api.openai.com"
api_key = "${KEY}"

[[backends]]
name = "local"
provider = "openai"
url = "http://127.0.0.1:8000/v1/"

[[routes]]
models = ["gpt-4o-mini", "gpt-4o-*"]
targets = [{ backend = "openai" }, { backend = "local", model = "llama3" }]
"#;

    #[test]
    fn good_config_loads() {
        let c = Config::from_str_with_env(GOOD, &env).unwrap();
        assert_eq!(c.backends.len(), 2);
        assert!(c.backends[0].url.tls);
        assert_eq!(c.backends[0].url.port, 443);
        assert_eq!(c.backends[1].url.base_path, "/v1");
        assert_eq!(
            c.backends[0].api_key.as_ref().unwrap().expose(),
            "sk-secret-value"
        );
        assert_eq!(c.routes[0].targets[1].model.as_deref(), Some("llama3"));
        assert_eq!(c.server.max_body_bytes, 32 * 1024 * 1024);
    }

    #[test]
    fn unknown_key_names_path_and_line() {
        let e = errs("[server]\nlisten = [\"127.0.0.1:1\"]\nlisen = 3\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, Some(3), "{e:?}");
        assert!(e[0].message.contains("lisen"), "{e:?}");
    }

    #[test]
    fn missing_backend_and_unset_env_are_located() {
        let src = GOOD
            .replace("\"openai\" }", "\"nope\" }")
            .replace("${KEY}", "${NOT_SET}");
        let e = errs(&src);
        let paths: Vec<_> = e.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"backends[0].api_key"), "{e:?}");
        assert!(paths.contains(&"routes[0].targets[0].backend"), "{e:?}");
        let t = e.iter().find(|e| e.path.ends_with("backend")).unwrap();
        assert_eq!(t.line, Some(18));
    }

    #[test]
    fn secrets_never_in_errors() {
        let e = errs("[server]\nmax_body_bytes = \"${KEY}\"\n");
        let all = format!("{e:?}");
        assert!(!all.contains("sk-secret-value"), "{all}");
        assert!(all.contains("invalid type"), "{all}");
    }

    #[test]
    fn bad_values() {
        let e = errs(
            "[server]\nlisten = [\"nope\"]\n[[backends]]\nname=\"a\"\nprovider=\"x\"\nurl=\"ftp://h\"\n[[keys]]\nname=\"k\"\nsha256=\"zz\"\n",
        );
        assert_eq!(e.len(), 4, "{e:?}");
    }
}
