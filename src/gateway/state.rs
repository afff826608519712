//! The gateway's state: what lives as long as the process (`Runtime`), and the snapshot one
//! config builds (`State`), which a request holds start to end.

use crate::auth::KeyStore;
use crate::config::Config;
use crate::limits::alerts::Alerts;
use crate::observe::{AccessLog, Metrics};
use crate::providers::Backend;
use crate::route::Router;
use pingora::connectors::http::Connector;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

/// What lives as long as the process, whatever config is loaded: shared by every snapshot.
#[derive(Clone)]
pub struct Runtime {
    pub metrics: Arc<Metrics>,
    pub access_log: Arc<AccessLog>,
    pub connector: Arc<Connector>,
    pub counters: Arc<dyn crate::limits::counters::Counters>,
    pub ledger: Arc<crate::store::ledger::Ledger>,
    /// Budget notices, sent by a background service.
    pub alerts: Option<Arc<Alerts>>,
    /// Requests being handled now (a graceful stop waits for none).
    pub live: Arc<AtomicUsize>,
    /// Responses kept for the Responses API on translated routes.
    pub responses: Arc<dyn crate::store::responses::ResponseStore>,
    /// The certificates the TLS listeners serve (a reload swaps them).
    pub tls: Arc<crate::net::tls::Served>,
    /// The response cache (entries outlive reloads; a reload applies its bounds).
    pub cache: Arc<crate::cache::Cache>,
    /// The managed keys served now, and the store they are kept in (`[auth] managed_keys`).
    pub managed: Arc<crate::auth::ManagedKeys>,
    pub key_book: Arc<dyn crate::store::keys::KeyBook>,
}

/// Everything a request needs, built from one validated config (a snapshot: a reload builds
/// a new one, and a request keeps the one it started with). Runtime state inside it (the
/// balancer's health and load, the limit counters) is carried over by name.
pub struct State {
    pub router: Router,
    pub backends: Vec<Backend>,
    pub keys: KeyStore,
    /// Trusted JWT issuers (`[[auth.jwt]]`); their key sets carry over reloads.
    pub jwt: Option<crate::auth::jwt::Verifier>,
    pub max_body_bytes: usize,
    pub keepalive_seconds: u64,
    /// 414 past this request line, 431 past this head (bytes).
    pub max_request_line_bytes: usize,
    pub max_header_bytes: usize,
    pub client_read_timeout: std::time::Duration,
    pub metrics: Arc<Metrics>,
    pub access_log: Arc<AccessLog>,
    pub connector: Arc<Connector>,
    pub limiter: crate::limits::Limiter,
    pub alerts: Option<Arc<Alerts>>,
    pub identity: crate::config::IdentitySettings,
    pub ledger: Arc<crate::store::ledger::Ledger>,
    pub prices: crate::config::PriceTable,
    /// Target order per request, and each backend's load and health.
    pub balancer: Arc<crate::balance::Balancer>,
    /// How a request's region is known.
    pub balance: crate::config::BalanceSettings,
    pub live: Arc<AtomicUsize>,
    pub responses: Arc<dyn crate::store::responses::ResponseStore>,
    pub cache: Arc<crate::cache::Cache>,
    /// How long a request waits for an identical one in flight (`[cache]`).
    pub coalesce_timeout: std::time::Duration,
    /// Who may use the admin listener.
    pub admin: AdminAccess,
    /// Proxies whose `X-Forwarded-For` names the client; the client addresses the plain and
    /// the TLS listeners serve.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub addresses: crate::net::address::AddressRules,
    pub tls_addresses: crate::net::address::AddressRules,
    /// Reload the config when its files change (polled every `interval`).
    pub watch: Option<std::time::Duration>,
}

/// The admin listener's token, from the config (so a reload can rotate it).
#[derive(Clone, Default)]
pub struct AdminAccess {
    pub token: Option<crate::config::Secret>,
    /// Every endpoint but the probes needs the token.
    pub require_token: bool,
}

impl State {
    /// Builds a snapshot of `cfg`; `prev` is the running one, whose backends' health and
    /// load carry over to backends of the same name. Blocking (it may load a tokenizer): call
    /// it off the async runtime.
    pub fn new(cfg: &Config, rt: &Runtime, prev: Option<&State>) -> State {
        let backends: Vec<Backend> = cfg.backends.iter().map(Backend::new).collect();
        let router = Router::new(cfg, |i| backends.get(i).is_some_and(|b| b.enabled));
        let mut limiter = crate::limits::Limiter::new(
            cfg.limits.clone(),
            rt.counters.clone(),
            cfg.store.fail_open,
        )
        .with_metrics(rt.metrics.clone());
        if let Some(p) = prev {
            limiter.carry_health(&p.limiter);
        }
        if !limiter.is_empty() {
            // Limits estimate every prompt: load its tokenizer now, not on a request.
            let models = cfg.routes.iter().flat_map(|r| r.models.iter());
            crate::limits::estimate::warm(models.map(String::as_str));
        }
        if let Some(a) = &rt.alerts {
            limiter = limiter.with_alerts(a.clone());
        }
        rt.cache.resize(&cfg.cache);
        let balancer =
            crate::balance::Balancer::carried(cfg, &rt.metrics, prev.map(|p| &*p.balancer));
        State {
            router,
            backends,
            keys: KeyStore::new(&cfg.keys, cfg.auth.managed_keys.then(|| rt.managed.clone())),
            jwt: crate::auth::jwt::Verifier::new(
                &cfg.auth.jwt,
                &rt.connector,
                prev.and_then(|p| p.jwt.as_ref()),
            ),
            max_body_bytes: cfg.server.max_body_bytes,
            keepalive_seconds: cfg.server.keepalive_timeout_seconds,
            max_request_line_bytes: cfg.server.max_request_line_bytes,
            max_header_bytes: cfg.server.max_header_bytes,
            client_read_timeout: std::time::Duration::from_secs(
                cfg.server.client_read_timeout_seconds,
            ),
            metrics: rt.metrics.clone(),
            access_log: rt.access_log.clone(),
            connector: rt.connector.clone(),
            limiter,
            alerts: rt.alerts.clone(),
            identity: cfg.identity.clone(),
            ledger: rt.ledger.clone(),
            prices: cfg.prices.clone(),
            balancer: Arc::new(balancer),
            balance: cfg.balance.clone(),
            live: rt.live.clone(),
            responses: rt.responses.clone(),
            cache: rt.cache.clone(),
            coalesce_timeout: cfg.cache.coalesce_timeout,
            trusted_proxies: cfg.server.trusted_proxies.clone(),
            addresses: cfg.server.addresses.clone(),
            tls_addresses: (cfg.server.tls.as_ref())
                .and_then(|t| t.addresses.clone())
                .unwrap_or_else(|| cfg.server.addresses.clone()),
            admin: AdminAccess {
                token: cfg.server.admin_token.clone(),
                require_token: cfg.server.admin_require_token,
            },
            watch: cfg
                .server
                .watch_config
                .then_some(std::time::Duration::from_millis(
                    cfg.server.watch_interval_ms,
                )),
        }
    }
}

/// Where each request takes its config snapshot from (the reloader, above this layer).
pub trait Snapshots: Send + Sync {
    /// The running snapshot; a request keeps what it loaded, start to end.
    fn load(&self) -> Arc<State>;
}
