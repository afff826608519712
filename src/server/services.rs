//! The background services beside the listeners: graceful drain, log reopening, budget
//! alerts, access tokens and the managed keys, and the one service that runs them all.

use crate::gateway::Runtime;
use crate::reload::Current;
use pingora::connectors::http::Connector;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use std::time::Duration;

/// A background service, shared with the task that runs it.
pub(super) type Background = Arc<dyn BackgroundService + Send + Sync>;

/// Every background service as tasks of one: Pingora gives each service a thread and a runtime
/// of its own (nine threads, ~0.1 MiB resident each, for tasks that mostly sleep). What would
/// block (reloads, reports, file reads) already goes to `spawn_blocking`.
pub(super) struct Together(pub(super) Vec<Background>);

#[async_trait::async_trait]
impl BackgroundService for Together {
    async fn start(&self, shutdown: ShutdownWatch) {
        let tasks: Vec<_> = (self.0.iter())
            .map(|s| {
                let (s, shutdown) = (s.clone(), shutdown.clone());
                tokio::spawn(async move { s.start(shutdown).await })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// Delivers budget notices to the webhook.
pub(super) struct AlertSender(pub(super) Runtime);

#[async_trait::async_trait]
impl BackgroundService for AlertSender {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(alerts) = &self.0.alerts else { return };
        let connector = Connector::new(None);
        tokio::select! {
            _ = alerts.run(&connector, &self.0.metrics) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// A graceful stop (SIGTERM, or the old process of an upgrade): once Pingora stops accepting,
/// waits until no request is live (up to the grace period), flushes the ledger and the access
/// log, and exits 0 at once. Pingora's own grace period sleeps its whole length even when idle;
/// past it, Pingora shuts the runtimes down as before.
pub(super) struct Drain(pub(super) Runtime, pub(super) Duration);

#[async_trait::async_trait]
impl BackgroundService for Drain {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let _ = shutdown.changed().await;
        // A request on a connection accepted just before the stop is still admitted for a
        // moment (see `gateway/app.rs`): let it arrive and be counted.
        tokio::time::sleep(crate::gateway::SETTLE).await;
        let st = self.0.clone();
        let until = std::time::Instant::now() + self.1;
        while st.live.load(std::sync::atomic::Ordering::Relaxed) > 0
            && std::time::Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let idle = st.live.load(std::sync::atomic::Ordering::Relaxed) == 0;
        let flushed = st.clone();
        let _ = tokio::task::spawn_blocking(move || {
            flushed.ledger.flush();
            flushed.access_log.flush(Duration::from_secs(2));
        })
        .await;
        if idle {
            log::info!("drained: no request in flight; exiting");
            std::process::exit(0);
        }
    }
}

/// SIGUSR1 reopens the access log file (logrotate's `postrotate`).
pub(super) struct LogReopener(pub(super) Runtime);

#[async_trait::async_trait]
impl BackgroundService for LogReopener {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
            log::warn!("cannot listen for SIGUSR1; the access log will not be reopened");
            return;
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = usr1.recv() => self.0.access_log.reopen(),
            }
        }
    }
}

/// Keeps the OAuth access tokens of Vertex AI backends fresh: the first is fetched at start-up
/// (and after a reload), and asking again every few seconds makes a source refresh its token
/// in the background before it expires, so requests find a valid one even after an idle spell.
pub(super) struct TokenKeeper(pub(super) Arc<Current>);

#[async_trait::async_trait]
impl BackgroundService for TokenKeeper {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut changed = self.0.subscribe();
        loop {
            let snap = self.0.load();
            let sources = snap
                .backends
                .iter()
                .filter(|b| b.enabled)
                .filter_map(|b| b.provider.tokens());
            for ts in sources {
                // A failure is logged by the source; requests report it if it lasts.
                let _ = ts.token().await;
            }
            drop(snap);
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = changed.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}

/// Keeps the managed keys at the store's version while the config serves them
/// (`[auth] managed_keys`), so a change through any gateway of a fleet is effective here
/// within a poll.
pub(super) struct KeyFollower(pub(super) Arc<Current>);

#[async_trait::async_trait]
impl BackgroundService for KeyFollower {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use crate::store::keys::{sync, FOLLOW_EVERY};
        let rt = self.0.runtime();
        let mut failing = false;
        loop {
            if self.0.load().keys.manages() {
                match (sync(&*rt.key_book, &rt.managed).await, failing) {
                    (Err(e), false) => {
                        log::error!("managed keys: {e}; serving the last keys loaded");
                        failing = true;
                    }
                    (Ok(()), true) => {
                        log::warn!("managed keys: the store is reachable again");
                        failing = false;
                    }
                    _ => {}
                }
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(FOLLOW_EVERY) => {}
            }
        }
    }
}
