//! Builds the Pingora server from a validated config: the client-facing proxy, the admin
//! listener, and (optionally) the built-in mock provider.

mod checks;
mod edge;
mod ready;
mod services;

use crate::admin::AdminApp;
use crate::config::Config;
use crate::gateway::{Gateway, Runtime};
use crate::limits::alerts::Alerts;
use crate::mock::{MockApp, MockSettings};
use crate::observe::{AccessLog, Metrics};
use crate::reload::triggers::{OnChange, OnSignal};
use crate::reload::Current;
use crate::store::responses::{MemoryResponses, ResponseStore};
use crate::store::responses_redis::RedisResponses;
use pingora::apps::HttpServerOptions;
use pingora::connectors::http::Connector;
use pingora::connectors::ConnectorOptions;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use services::{AlertSender, Background, Drain, LogReopener, Together, TokenKeeper};
use std::sync::Arc;
use std::time::Duration;

/// A client connection's read buffer. Pingora's default gives every connection 64 KiB, zeroed
/// as it is accepted, for as long as it stays open (1,000 open streams: 59.6 -> 53.7 MiB
/// without it, where the passthrough on the default takes 69.1). Plain HTTP/1 reads land in Pingora's own header and body buffers, which the read buffer
/// would only copy into, so plain connections have none (the write side keeps Pingora's
/// 1,460 bytes). Over TLS the buffer saves a system call per small read of the TLS layer:
/// one record's worth, 16 KiB (ARCHITECTURE.md, "A client connection's read buffer").
const PLAIN_READS: L4BufferSettings = L4BufferSettings {
    read: Some(0),
    write: None,
};
const TLS_READS: L4BufferSettings = L4BufferSettings {
    read: Some(16 * 1024),
    write: None,
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("store {0}: {1}")]
    Store(String, String),
    #[error("TLS: {0}")]
    Tls(String),
}

pub struct RunFlags {
    pub daemon: bool,
    pub upgrade: bool,
    /// The config file (reloads re-read it) and its version.
    pub path: String,
    pub version: String,
}

pub fn run(cfg: Config, flags: RunFlags) -> Result<(), StartError> {
    let mut server = pingora_server(&cfg, &flags);
    server.bootstrap();
    let runtime = runtime(&cfg, &server)?;
    crate::reload::tls::load(&runtime.tls, &cfg.server).map_err(StartError::Tls)?;
    warn_open(&cfg);
    let current = Current::new(&flags.path, cfg.clone(), flags.version, runtime.clone());
    let grace = Duration::from_secs(cfg.server.grace_period_seconds);
    let mut background = background(&current, &runtime, grace);
    add_listeners(&mut server, &cfg, &current, &runtime)?;
    let mut addrs = cfg.server.listen.clone();
    addrs.extend(cfg.server.tls.iter().flat_map(|t| t.listen.iter().copied()));
    addrs.extend(cfg.server.admin_listen);
    let ready = ready::Ready {
        addrs,
        pid_file: cfg.server.pid_file.clone(),
        parent: flags.daemon.then(std::process::id),
    };
    background.push(Arc::new(ready));
    server.add_service(background_service("background", Together(background)));
    let mut listen: Vec<String> = cfg.server.listen.iter().map(|a| a.to_string()).collect();
    let tls = cfg.server.tls.iter().flat_map(|t| t.listen.iter());
    listen.extend(tls.map(|a| format!("{a} (TLS)")));
    eprintln!(
        "tollgate {} listening on {} (admin {})",
        env!("CARGO_PKG_VERSION"),
        listen.join(", "),
        cfg.server
            .admin_listen
            .map_or("off".to_string(), |a| a.to_string())
    );
    server.run_forever()
}

/// Pingora's server with the process settings of `[server]`.
fn pingora_server(cfg: &Config, flags: &RunFlags) -> Server {
    let opt = Opt {
        upgrade: flags.upgrade,
        daemon: flags.daemon,
        nocapture: false,
        test: false,
        conf: None,
    };
    let conf = ServerConf {
        threads: cfg.server.threads,
        grace_period_seconds: Some(cfg.server.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(cfg.server.graceful_shutdown_timeout_seconds),
        pid_file: cfg.server.pid_file.clone(),
        upgrade_sock: cfg.server.upgrade_sock.clone(),
        daemon: flags.daemon,
        // `run -d` returns once the daemon's listeners accept (signalled by `ready.rs`).
        daemon_wait_for_ready: flags.daemon,
        // A daemon stays in the directory it was started from (Pingora's default is `/`), so
        // relative paths (store, access log) mean the same before and after the fork.
        working_directory: std::env::current_dir().ok(),
        ..ServerConf::default()
    };
    Server::new_with_opt_and_conf(opt, conf)
}

/// What outlives every config snapshot: metrics, logs, the upstream connector, the stores.
fn runtime(cfg: &Config, server: &Server) -> Result<Runtime, StartError> {
    let connector = Connector::new(Some(ConnectorOptions::from_server_conf(
        &server.configuration,
    )));
    let (counters, ledger) = store(cfg)?;
    Ok(Runtime {
        metrics: Arc::new(Metrics::new()?),
        access_log: Arc::new(AccessLog::new(cfg.log.access_log.clone())),
        connector: Arc::new(connector),
        counters,
        ledger: Arc::new(ledger),
        alerts: cfg.alerts.clone().map(|a| Arc::new(Alerts::new(a))),
        live: Arc::default(),
        responses: responses(cfg)?,
        tls: Arc::default(),
        cache: Arc::new(crate::cache::Cache::new(&cfg.cache, cfg.store.timeout)),
        managed: Arc::default(),
        key_book: key_book(cfg)?,
    })
}

/// Where managed keys are kept: the fleet's Redis, else the SQLite file beside the ledger.
fn key_book(cfg: &Config) -> Result<Arc<dyn crate::store::keys::KeyBook>, StartError> {
    use crate::config::StoreKind;
    use crate::store::{keys::SqliteKeys, keys_redis::RedisKeys};
    match &cfg.store.kind {
        StoreKind::Sqlite { path } => SqliteKeys::open(std::path::Path::new(path))
            .map(|k| Arc::new(k) as _)
            .map_err(|e| StartError::Store(path.clone(), e.to_string())),
        StoreKind::Redis { url, .. } => RedisKeys::new(url, cfg.store.timeout)
            .map(|k| Arc::new(k) as _)
            .map_err(|e| StartError::Store("redis_url".into(), e)),
    }
}

/// The client listeners (the gateway, plain and TLS), the admin listener and the built-in mock.
fn add_listeners(
    server: &mut Server,
    cfg: &Config,
    current: &Arc<Current>,
    rt: &Runtime,
) -> Result<(), StartError> {
    let mut options = HttpServerOptions::default();
    options.h2c = cfg.server.h2c;
    // An h2 connection with no stream open is closed after the keep-alive timeout too (one
    // that sent only the preface would otherwise stay for good).
    let idle = cfg.server.keepalive_timeout_seconds.max(1);
    options.h2_idle_timeout = Some(Duration::from_secs(idle));
    let app = Gateway::new(current.clone(), options, server.configuration.threads);
    let s = &cfg.server;
    let edge = edge::Edge {
        inner: Arc::new(app),
        head_timeout: Duration::from_secs(s.header_timeout_seconds),
        slots: edge::Slots::new(s.max_connections, s.max_connections_per_client),
    };
    let mut proxy = Service::new("tollgate".into(), edge);
    for addr in &cfg.server.listen {
        proxy.add_listener(ListenerConfig::tcp(addr.to_string()).l4_buffer(PLAIN_READS));
    }
    for addr in cfg.server.tls.iter().flat_map(|t| t.listen.iter()) {
        let tls = tls_settings(&rt.tls.client, true, None)?;
        let listener = ListenerConfig::tcp(addr.to_string()).tls(tls);
        proxy.add_listener(listener.l4_buffer(TLS_READS));
    }
    server.add_service(proxy);

    if let Some(addr) = cfg.server.admin_listen {
        let mut admin = Service::new(
            "tollgate admin".into(),
            AdminApp {
                metrics: rt.metrics.clone(),
                ledger: cfg.store.ledger_path().into(),
                config: current.clone(),
            },
        );
        // Scrapes and operators' calls: one thread (what blocks goes to `spawn_blocking`),
        // not `threads` of them.
        admin.threads = Some(1);
        match &cfg.server.admin_tls {
            Some(t) => {
                let tls = tls_settings(&rt.tls.admin, false, t.client_ca.as_deref())?;
                admin.add_tls_with_settings(&addr.to_string(), None, tls);
            }
            None => admin.add_tcp(&addr.to_string()),
        }
        server.add_service(admin);
    }
    if let Some(addr) = cfg.mock_listen {
        let mut mock = Service::new("tollgate mock".into(), MockApp::new(demo_mock_settings()));
        mock.add_tcp(&addr.to_string());
        server.add_service(mock);
    }
    Ok(())
}

/// A TLS listener serving the pair `resolver` holds (swapped by reloads): h2 and HTTP/1.1 by
/// ALPN for clients, HTTP/1.1 for the admin listener; client certificates from `client_ca`.
fn tls_settings(
    resolver: &Arc<crate::net::tls::Resolver>,
    h2: bool,
    client_ca: Option<&str>,
) -> Result<TlsSettings, StartError> {
    let tls_err = |e: String| StartError::Tls(e);
    let mut s = TlsSettings::intermediate("", "").map_err(|e| tls_err(e.to_string()))?;
    s.set_cert_resolver(resolver.clone());
    if h2 {
        s.enable_h2();
    }
    if let Some(ca) = client_ca {
        s.set_client_cert_verifier(crate::net::tls::client_verifier(ca).map_err(tls_err)?);
    }
    Ok(s)
}

fn warn_open(cfg: &Config) {
    if cfg.server.open {
        eprintln!("tollgate: open: clients are served without a key ([server] open = true)");
    }
    for b in cfg.backends.iter().filter(|b| !b.enabled) {
        eprintln!(
            "tollgate: backend `{}` disabled: its api_key is empty (set the environment variable)",
            b.name
        );
    }
}

/// The services beside the listeners: log reopening, drain, reload triggers, budget alerts,
/// access tokens and active health checks (the last two follow the running snapshot).
fn background(current: &Arc<Current>, rt: &Runtime, grace: Duration) -> Vec<Background> {
    let mut v: Vec<Background> = vec![
        Arc::new(LogReopener(rt.clone())),
        Arc::new(Drain(rt.clone(), grace)),
        Arc::new(OnSignal(current.clone())),
        Arc::new(OnChange(current.clone())),
        Arc::new(TokenKeeper(current.clone())),
        Arc::new(checks::ActiveChecks(current.clone())),
        Arc::new(services::KeyFollower(current.clone())),
    ];
    if rt.alerts.is_some() {
        v.push(Arc::new(AlertSender(rt.clone())));
    }
    v
}

/// The limit counters (in memory, restored from SQLite; or in Redis) and the ledger writer
/// (always the local SQLite file).
fn store(
    cfg: &Config,
) -> Result<
    (
        Arc<dyn crate::limits::counters::Counters>,
        crate::store::ledger::Ledger,
    ),
    StartError,
> {
    use crate::config::StoreKind;
    use crate::limits::counters::Local;
    use crate::limits::lease::Leased;
    use crate::store::ledger::{load_counters, Ledger};
    let interval = Duration::from_millis(cfg.store.flush_interval_ms);
    match &cfg.store.kind {
        StoreKind::Sqlite { path } => {
            let path = std::path::Path::new(path);
            let restored = load_counters(path)
                .map_err(|e| StartError::Store(path.display().to_string(), e.to_string()))?;
            let counters = Arc::new(Local::with(restored));
            Ok((counters.clone(), Ledger::new(path, interval, counters)))
        }
        StoreKind::Redis { url, path } => {
            let redis = crate::store::redis::RedisCounters::new(url, cfg.store.timeout)
                .map_err(|e| StartError::Store("redis_url".into(), e))?;
            let redis = Leased::new(Arc::new(redis), cfg.store.lease);
            let none = Arc::new(Local::default());
            let ledger = Ledger::new(std::path::Path::new(path), interval, none);
            Ok((Arc::new(redis), ledger))
        }
    }
}

/// The kept responses: in the fleet's Redis when the limits are there, else in this process.
fn responses(cfg: &Config) -> Result<Arc<dyn ResponseStore>, StartError> {
    use crate::config::StoreKind;
    let ttl = cfg.responses.store_ttl;
    match &cfg.store.kind {
        StoreKind::Sqlite { .. } => Ok(Arc::new(MemoryResponses::new(
            ttl,
            cfg.responses.store_max_bytes,
        ))),
        StoreKind::Redis { url, .. } => RedisResponses::new(url, ttl)
            .map(|r| Arc::new(r) as Arc<dyn ResponseStore>)
            .map_err(|e| StartError::Store("redis_url".into(), e)),
    }
}

fn demo_mock_settings() -> MockSettings {
    MockSettings {
        name: "demo".into(),
        words: 16,
        models: vec!["demo".into()],
        ..MockSettings::default()
    }
}

/// Runs `tollgate mock` as its own server (HTTPS with h2 and HTTP/1.1 by ALPN under `--tls`).
pub fn run_mock(listen: &str, threads: usize, settings: MockSettings) -> Result<(), String> {
    let conf = ServerConf {
        threads,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let tls = if settings.tls {
        Some(crate::mock::tls::ensure(
            settings.tls_cert.as_deref(),
            settings.tls_key.as_deref(),
        )?)
    } else {
        None
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut mock = Service::new("tollgate mock".into(), MockApp::new(settings));
    match &tls {
        Some((cert, key)) => {
            let mut t = TlsSettings::intermediate(cert, key).map_err(|e| e.to_string())?;
            t.enable_h2();
            mock.add_tls_with_settings(listen, None, t);
            eprintln!("tollgate mock listening on https://{listen} (certificate {cert})");
        }
        None => {
            mock.add_tcp(listen);
            eprintln!("tollgate mock listening on {listen}");
        }
    }
    server.add_service(mock);
    server.run_forever()
}
