//! The active health checks as a background service that follows the running config: one
//! probe loop (`balance::checks`) per enabled backend with `health_check`, restarted on the
//! new snapshot at every reload.

use crate::balance::checks::probe_loop;
use crate::gateway::State;
use crate::reload::Current;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;

/// The probes of every enabled backend with a `health_check` in the running config. A reload
/// restarts them on the new snapshot; each starts from its backend's current verdict (kept
/// in the backend's state, which a reload carries over by name).
pub struct ActiveChecks(pub Arc<Current>);

#[async_trait]
impl BackgroundService for ActiveChecks {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut changed = self.0.subscribe();
        loop {
            let tasks = spawn_probes(self.0.load(), &shutdown);
            let stop = tokio::select! {
                _ = shutdown.changed() => true,
                r = changed.changed() => r.is_err(),
            };
            for t in &tasks {
                t.abort();
            }
            if stop {
                return;
            }
        }
    }
}

fn spawn_probes(st: Arc<State>, shutdown: &ShutdownWatch) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for (i, b) in st.backends.iter().enumerate() {
        if b.enabled && b.health_check.is_some() {
            let (st, shutdown) = (st.clone(), shutdown.clone());
            tasks.push(tokio::spawn(async move {
                let b = &st.backends[i];
                if let Some(spec) = &b.health_check {
                    probe_loop(st.balancer.backend(i), b, spec, shutdown).await;
                }
            }));
        }
    }
    tasks
}
