//! The external configuration format, as written in TOML. Kept apart from the validated model
//! (`mod.rs` and its sections) so the file format can evolve without touching the proxy.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Files or directories composed into this one (read by `include.rs`).
    #[serde(rename = "include")]
    pub _include: Option<serde_json::Value>,
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub backends: Vec<RawBackend>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    #[serde(default)]
    pub keys: Vec<RawKey>,
    #[serde(default)]
    pub teams: Vec<RawTeam>,
    #[serde(default)]
    pub auth: RawAuth,
    #[serde(default)]
    pub log: RawLog,
    pub mock: Option<RawMock>,
    #[serde(default)]
    pub limits: Vec<RawLimit>,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub identity: RawIdentity,
    pub alerts: Option<RawAlerts>,
    #[serde(default)]
    pub pricing: RawPricing,
    #[serde(default)]
    pub prices: Vec<RawPrice>,
    #[serde(default)]
    pub balance: RawBalance,
    #[serde(default)]
    pub responses: RawResponses,
    #[serde(default)]
    pub cache: RawCache,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: Vec<String>,
    pub admin_listen: Option<String>,
    pub max_body_bytes: u64,
    pub threads: Option<usize>,
    pub h2c: bool,
    pub keepalive_timeout_seconds: u64,
    pub client_read_timeout_seconds: u64,
    pub header_timeout_seconds: u64,
    pub max_request_line_bytes: usize,
    pub max_header_bytes: usize,
    pub max_connections: u32,
    pub max_connections_per_client: u32,
    pub grace_period_seconds: u64,
    pub graceful_shutdown_timeout_seconds: u64,
    pub pid_file: Option<String>,
    pub upgrade_sock: Option<String>,
    /// Bearer token for the admin listener's data endpoints (`/usage`).
    pub admin_token: Option<String>,
    /// Every admin endpoint but `/healthz` and `/readyz` needs the token (`/metrics` too).
    pub admin_require_token: bool,
    /// Reload the config when its files change.
    pub watch_config: bool,
    pub watch_interval_ms: u64,
    /// Serve clients without a key, on purpose (a config with no `[[keys]]` must say so).
    pub open: bool,
    /// Client listeners over TLS (`[server.tls]`).
    pub tls: Option<RawTls>,
    /// The admin listener over TLS, optionally with client certificates (`[server.admin_tls]`).
    pub admin_tls: Option<RawAdminTls>,
    /// Proxies whose `X-Forwarded-For` names the client (CIDRs).
    pub trusted_proxies: Vec<String>,
    /// Client addresses served on the plain listeners (CIDRs; none: all) and refused.
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub listen: Vec<String>,
    pub cert: String,
    pub key: String,
    /// The TLS listeners' own address rules (absent: `[server]`'s).
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdminTls {
    pub cert: String,
    pub key: String,
    pub client_ca: Option<String>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: vec!["127.0.0.1:8080".into()],
            admin_listen: Some("127.0.0.1:9091".into()),
            max_body_bytes: 32 * 1024 * 1024,
            threads: None,
            h2c: true,
            keepalive_timeout_seconds: 60,
            client_read_timeout_seconds: 60,
            header_timeout_seconds: 30,
            max_request_line_bytes: 8 * 1024,
            max_header_bytes: 32 * 1024,
            max_connections: 10_000,
            max_connections_per_client: 2_000,
            grace_period_seconds: 60,
            graceful_shutdown_timeout_seconds: 10,
            pid_file: None,
            upgrade_sock: None,
            admin_token: None,
            admin_require_token: false,
            watch_config: false,
            watch_interval_ms: 1000,
            open: false,
            tls: None,
            admin_tls: None,
            trusted_proxies: Vec::new(),
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackend {
    pub name: String,
    pub provider: String,
    pub url: Option<String>,
    pub api_key: Option<String>,
    pub anthropic_version: Option<String>,
    pub default_max_tokens: Option<u32>,
    pub api_version: Option<String>,
    /// OpenAI and its presets: the server has the Responses API (else Responses requests
    /// are translated to chat).
    pub responses: Option<bool>,
    pub ca_file: Option<String>,
    pub http2: Option<bool>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub connect_timeout_ms: Option<u64>,
    pub read_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub first_byte_timeout_ms: Option<u64>,
    pub total_timeout_ms: Option<u64>,
    pub max_concurrent: Option<u32>,
    pub eject_after_failures: Option<u32>,
    pub eject_base_ms: Option<u64>,
    pub eject_max_ms: Option<u64>,
    pub health_check: Option<RawHealthCheck>,
    /// Bedrock.
    pub region: Option<String>,
    pub aws_access_key_id: Option<String>,
    pub aws_secret_access_key: Option<String>,
    pub aws_session_token: Option<String>,
    pub aws_profile: Option<String>,
    pub bedrock_api_key: Option<String>,
    /// Vertex AI.
    pub project: Option<String>,
    pub location: Option<String>,
    pub service_account_file: Option<String>,
    pub token_uri: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: Option<String>,
    pub models: Vec<String>,
    pub targets: Vec<RawTarget>,
    /// Output tokens a request without `max_tokens` reserves against token limits.
    pub default_output_tokens: Option<u64>,
    pub strategy: Option<String>,
    /// `least-load` by `requests` (default) or `tokens`.
    pub by: Option<String>,
    /// `affinity`: `key`, `header:NAME` or `prompt`.
    pub affinity: Option<String>,
    pub affinity_prompt_bytes: Option<usize>,
    pub queue_timeout_ms: Option<u64>,
    pub retry: Option<RawRetry>,
    /// Translated requests: drop fields the target cannot honour instead of refusing them.
    pub drop_params: Option<bool>,
    /// Translated requests: `drop` (default) or `reject` fields Tollgate does not know.
    pub unknown_fields: Option<String>,
    /// `{ ttl_seconds, scope }`: replies cached (absent: none).
    pub cache: Option<RawRouteCache>,
}

/// A route's response caching.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteCache {
    pub ttl_seconds: u64,
    /// `key` (default) or `global`.
    pub scope: Option<String>,
}

/// `[cache]`: the response cache's store.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    pub max_bytes: Option<u64>,
    pub max_entry_bytes: Option<u64>,
    pub coalesce_timeout_ms: Option<u64>,
    /// A Redis shared by a fleet's gateways, behind each one's memory.
    pub redis_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub attempts: Option<u32>,
    /// `connect`, `timeout`, a status (`"503"`) or a class (`"5xx"`).
    pub on: Option<Vec<String>>,
    pub per_try_timeout_ms: Option<u64>,
    pub deadline_ms: Option<u64>,
    pub backoff_ms: Option<u64>,
    pub backoff_max_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    pub path: String,
    pub method: Option<String>,
    pub interval_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub healthy_threshold: Option<u32>,
    pub unhealthy_threshold: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBalance {
    /// The request header naming the client's region (set by the edge in front).
    pub region_header: Option<String>,
    /// This gateway's region, for requests without the header.
    pub region: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub backend: String,
    pub model: Option<String>,
    pub weight: Option<u32>,
    pub priority: Option<u32>,
    pub region: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    pub name: String,
    pub sha256: String,
    pub user: Option<String>,
    pub team: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// As the route's; set here, it wins over the route's for this key's requests.
    pub drop_params: Option<bool>,
    pub unknown_fields: Option<String>,
    /// Models (exact names and `*` globs) the key may use; absent: every routed model.
    pub models: Option<Vec<String>>,
    /// RFC 3339: refused from then on.
    pub expires_at: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    /// Client addresses the key may be used from (CIDRs; none: any) and may not.
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    pub scope: String,
    #[serde(rename = "match")]
    pub matching: Option<String>,
    pub requests_per_second: Option<f64>,
    pub requests_per_minute: Option<f64>,
    pub tokens_per_minute: Option<f64>,
    pub tokens_per_hour: Option<f64>,
    pub tokens_per_day: Option<f64>,
    pub tokens_per_month: Option<f64>,
    pub concurrent_requests: Option<f64>,
    pub cost_per_day_usd: Option<f64>,
    pub cost_per_month_usd: Option<f64>,
}

/// A key's or a team's own limits (`limits = { ... }`): the caps of `[[limits]]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCaps {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_hour: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_month: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrent_requests: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_per_day_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_per_month_usd: Option<f64>,
}

/// `[auth]`: how callers are identified besides `[[keys]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Keys issued through the admin API and kept in the store.
    #[serde(default)]
    pub managed_keys: bool,
    /// Identity providers whose signed tokens are credentials (`[[auth.jwt]]`).
    #[serde(default)]
    pub jwt: Vec<RawJwt>,
}

/// `[[teams]]`: a team's budgets, capping the sum of its keys' use.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTeam {
    pub name: String,
    pub limits: RawCaps,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub kind: Option<String>,
    pub path: Option<String>,
    pub redis_url: Option<String>,
    pub on_error: Option<String>,
    pub flush_interval_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub lease: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    pub webhook_url: String,
    pub thresholds: Option<Vec<f64>>,
    pub retries: Option<u32>,
    pub timeout_ms: Option<u64>,
}

/// `[responses]`: how long and how much the Responses API's kept responses are held.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResponses {
    pub store_ttl_seconds: Option<u64>,
    pub store_max_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    pub user_header: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub access_log: String,
    pub level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            access_log: "stdout".into(),
            level: "warn".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMock {
    pub listen: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPricing {
    /// A price file (`[[prices]]` entries), relative to the config file's directory.
    pub file: Option<String>,
}

/// One `[[prices]]` entry: USD per 1M tokens for a model name or glob.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    pub model: String,
    pub input: f64,
    pub cached_input: Option<f64>,
    pub cache_write: Option<f64>,
    pub output: f64,
}

/// A price file: the same `[[prices]]` array and the date its prices were taken.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPriceFile {
    pub updated: Option<String>,
    #[serde(default)]
    pub prices: Vec<RawPrice>,
}

/// One `[[auth.jwt]]` issuer (validated in `auth.rs`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    pub issuer: String,
    #[serde(default)]
    pub audiences: Vec<String>,
    pub jwks_url: Option<String>,
    pub public_key_file: Option<String>,
    pub subject_claim: Option<String>,
    pub team_claim: Option<String>,
    pub models_claim: Option<String>,
    pub leeway_seconds: Option<u64>,
    pub jwks_refresh_seconds: Option<u64>,
    pub jwks_min_refetch_seconds: Option<u64>,
}
