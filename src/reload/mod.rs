//! Config reload without a new process. The running snapshot sits behind `ArcSwap`: each
//! request loads it once and keeps it, so a reload never changes a request in flight. A
//! reload reads and validates the files, builds the new snapshot beside the old one (runtime
//! state carried over by name: backend health and load, limit counters, metrics, pools) and
//! swaps it in; an invalid config is rejected and the running one stays. Every applied
//! version is kept (the last `KEEP`) for rollback. Triggers are in `triggers.rs`.

mod diff;
pub mod tls;
pub mod triggers;

use crate::config::{Config, ConfigErrors};
use crate::gateway::{Runtime, State};
use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// How many applied versions are kept for rollback.
const KEEP: usize = 5;

pub struct Current {
    snap: ArcSwap<State>,
    runtime: Runtime,
    /// The main config file.
    path: String,
    /// The config the process started with: settings only a new process applies are
    /// compared against it.
    boot: Arc<Config>,
    /// Applied versions, oldest first; the last is the running one.
    history: Mutex<Vec<Version>>,
    /// The version the files had when last read (a watcher reloads when it changes).
    file_version: Mutex<String>,
    /// Counts swaps: background work that follows the snapshot (health checks, tokens)
    /// restarts on it.
    changed: watch::Sender<u64>,
    /// One reload at a time.
    reloading: Mutex<()>,
}

#[derive(Clone)]
struct Version {
    id: String,
    loaded_at: String,
    trigger: &'static str,
    config: Arc<Config>,
}

/// What a reload or rollback applied.
#[derive(Debug, serde::Serialize)]
pub struct Applied {
    pub version: String,
    pub previous: String,
    /// The files had the running version's content.
    pub unchanged: bool,
    /// Changed settings that wait for a restart or a binary upgrade.
    pub restart_required: Vec<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Invalid(ConfigErrors),
    #[error("no kept config version `{0}`")]
    UnknownVersion(String),
}

impl ReloadError {
    /// Each problem on its own line, located by file, line and key path.
    pub fn details(&self) -> Vec<String> {
        match self {
            ReloadError::Invalid(e) => e
                .errors
                .iter()
                .map(|x| format!("{}: {x}", e.file))
                .collect(),
            ReloadError::UnknownVersion(_) => vec![self.to_string()],
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Current {
    /// The process's first snapshot, from `cfg` (read from `path`, at `version`).
    pub fn new(path: &str, cfg: Config, version: String, runtime: Runtime) -> Arc<Current> {
        let cfg = Arc::new(cfg);
        let state = State::new(&cfg, &runtime, None);
        runtime
            .metrics
            .config
            .loaded(&version, crate::clock::unix_now());
        let first = Version {
            id: version.clone(),
            loaded_at: crate::clock::now_rfc3339(),
            trigger: "start",
            config: cfg.clone(),
        };
        Arc::new(Current {
            snap: ArcSwap::from_pointee(state),
            runtime,
            path: path.to_string(),
            boot: cfg,
            history: Mutex::new(vec![first]),
            file_version: Mutex::new(version),
            changed: watch::channel(0).0,
            reloading: Mutex::new(()),
        })
    }

    /// The running snapshot (a request keeps what it loaded).
    pub fn load(&self) -> Arc<State> {
        self.snap.load_full()
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Changes on every swap.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The version the config files had when last read.
    pub fn file_version(&self) -> String {
        lock(&self.file_version).clone()
    }

    /// Re-reads the files and applies them if valid. Blocking (file reads, snapshot build):
    /// call it off the async runtime.
    pub fn reload(&self, trigger: &'static str) -> Result<Applied, ReloadError> {
        let _one = lock(&self.reloading);
        let metrics = &self.runtime.metrics.config;
        match Config::load_versioned(&self.path) {
            Ok((cfg, id)) => {
                *lock(&self.file_version) = id.clone();
                let applied = self.apply(Arc::new(cfg), id, trigger);
                metrics.reload(true, trigger);
                Ok(applied)
            }
            Err(e) => {
                *lock(&self.file_version) = crate::config::current_version(&self.path);
                metrics.reload(false, trigger);
                log::error!("config reload ({trigger}) rejected; the running config stays: {e}");
                Err(ReloadError::Invalid(e))
            }
        }
    }

    /// Applies a kept version again.
    pub fn rollback(&self, id: &str) -> Result<Applied, ReloadError> {
        let _one = lock(&self.reloading);
        let found = lock(&self.history).iter().find(|v| v.id == id).cloned();
        let Some(v) = found else {
            self.runtime.metrics.config.reload(false, "rollback");
            return Err(ReloadError::UnknownVersion(id.to_string()));
        };
        let applied = self.apply(v.config, v.id, "rollback");
        self.runtime.metrics.config.reload(true, "rollback");
        Ok(applied)
    }

    /// Builds the snapshot of `cfg` beside the running one and swaps it in.
    fn apply(&self, cfg: Arc<Config>, id: String, trigger: &'static str) -> Applied {
        let old = self.load();
        if let Err(e) = tls::load(&self.runtime.tls, &cfg.server) {
            log::error!(
                "config {id}: a TLS certificate could not be read again; the one served stays: {e}"
            );
        }
        let state = State::new(&cfg, &self.runtime, Some(&old));
        for b in old.backends.iter() {
            if !state.backends.iter().any(|n| n.name == b.name) {
                self.runtime.metrics.selection.forget(&b.name);
            }
        }
        self.snap.store(Arc::new(state));
        self.changed.send_modify(|n| *n += 1);
        self.runtime
            .metrics
            .config
            .loaded(&id, crate::clock::unix_now());
        let restart_required = diff::restart_required(&self.boot, &cfg);
        let previous = {
            let mut h = lock(&self.history);
            let previous = h.last().map(|v| v.id.clone()).unwrap_or_default();
            h.retain(|v| v.id != id);
            h.push(Version {
                id: id.clone(),
                loaded_at: crate::clock::now_rfc3339(),
                trigger,
                config: cfg,
            });
            let extra = h.len().saturating_sub(KEEP);
            h.drain(..extra);
            previous
        };
        log::warn!("config {id} applied ({trigger}; was {previous})");
        if !restart_required.is_empty() {
            log::warn!(
                "config {id}: changed settings that need a restart or `systemctl reload` (binary upgrade), not applied: {}",
                restart_required.join(", ")
            );
        }
        Applied {
            unchanged: id == previous,
            version: id,
            previous,
            restart_required,
        }
    }

    /// The kept versions, newest first, as the admin listener's `GET /config` shows them.
    pub fn versions_json(&self) -> serde_json::Value {
        let h = lock(&self.history);
        let current = h.last().map(|v| v.id.clone()).unwrap_or_default();
        let versions: Vec<serde_json::Value> = h
            .iter()
            .rev()
            .map(|v| {
                serde_json::json!({
                    "version": v.id,
                    "loaded_at": v.loaded_at,
                    "trigger": v.trigger,
                })
            })
            .collect();
        serde_json::json!({
            "current": current,
            "file": self.path,
            "restart_required": diff::restart_required(&self.boot, &h.last().map_or_else(|| self.boot.clone(), |v| v.config.clone())),
            "versions": versions,
        })
    }
}

impl crate::gateway::Snapshots for Current {
    fn load(&self) -> Arc<State> {
        Current::load(self)
    }
}
