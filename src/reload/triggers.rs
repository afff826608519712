//! What starts a reload besides the admin endpoint: SIGHUP, and a watch on the config's
//! files. The watch polls (reads and hashes the composed files every interval) rather than
//! using inotify: it sees editors' rename-on-save, symlink swaps (Kubernetes ConfigMaps) and
//! files in `conf.d/` alike, needs no watch descriptors, and costs one small read a second.
//! A change is applied once the files read the same on two polls in a row (debounced).

use super::Current;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use std::time::Duration;

/// Reloads on SIGHUP. Binds the signal at once so a SIGHUP never kills the process (its
/// default action) once the service runs.
pub struct OnSignal(pub Arc<Current>);

#[async_trait::async_trait]
impl BackgroundService for OnSignal {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            log::warn!("cannot listen for SIGHUP; reload through the admin endpoint");
            return;
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = hup.recv() => run(&self.0, "signal").await,
            }
        }
    }
}

/// Reloads when the files change, while `[server] watch_config` is on.
pub struct OnChange(pub Arc<Current>);

#[async_trait::async_trait]
impl BackgroundService for OnChange {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let current = &self.0;
        // A version seen once: applied if the next poll sees it again.
        let mut pending: Option<String> = None;
        loop {
            let every = current.load().watch;
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(every.unwrap_or(Duration::from_secs(1))) => {}
            }
            if every.is_none() {
                pending = None;
                continue;
            }
            let path = current.path().to_string();
            let Ok(seen) =
                tokio::task::spawn_blocking(move || crate::config::current_version(&path)).await
            else {
                continue;
            };
            if seen == current.file_version() {
                pending = None;
            } else if pending.as_deref() == Some(seen.as_str()) {
                pending = None;
                run(current, "watch").await;
            } else {
                pending = Some(seen);
            }
        }
    }
}

/// Runs a reload off the async runtime (its outcome is logged and counted by `Current`).
pub async fn run(current: &Arc<Current>, trigger: &'static str) {
    let c = current.clone();
    let _ = tokio::task::spawn_blocking(move || c.reload(trigger)).await;
}
