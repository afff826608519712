//! Active health checks: the probe loop of one backend that has `health_check` (the server
//! runs one per such backend, however many routes use it). The probe itself is Pingora's
//! `HttpHealthCheck` (its `HealthCheck` trait: connect, send, validate the status, drain); the
//! loop, the thresholds and the verdict are ours, because Pingora's `LoadBalancer` keys
//! backends by socket address and our backends are named providers behind DNS names with
//! their own credentials.

use super::BackendState;
use crate::config::HealthCheckSpec;
use crate::providers::Backend;
use pingora::lb::health_check::{HealthCheck, HttpHealthCheck};
use pingora::prelude::*;
use pingora::server::ShutdownWatch;

/// One backend's probes until shutdown: its verdict flips after the configured run of passes
/// or failures, starting from the verdict the backend holds.
pub async fn probe_loop(
    state: &BackendState,
    backend: &Backend,
    spec: &HealthCheckSpec,
    mut shutdown: ShutdownWatch,
) {
    let (mut passes, mut fails) = (0u32, 0u32);
    let mut up = state.probe_up();
    loop {
        let ok = tokio::select! {
            _ = shutdown.changed() => return,
            r = probe(backend, spec) => r.map_err(|e| log::debug!("backend {}: health check: {e}", backend.name)).is_ok(),
        };
        (passes, fails) = if ok { (passes + 1, 0) } else { (0, fails + 1) };
        let flip = if up {
            !ok && fails >= spec.unhealthy_threshold
        } else {
            ok && passes >= spec.healthy_threshold
        };
        if flip {
            up = ok;
            state.set_probe(up);
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(spec.interval) => {}
        }
    }
}

/// One probe: the backend's address, TLS and credentials, the configured request.
async fn probe(backend: &Backend, spec: &HealthCheckSpec) -> Result<()> {
    let peer = backend
        .peer()
        .await
        .map_err(|e| Error::explain(ErrorType::ConnectError, e.to_string()))?;
    let token = match backend.provider.tokens() {
        Some(ts) => Some(
            ts.token()
                .await
                .map_err(|e| Error::explain(ErrorType::ConnectError, e.to_string()))?,
        ),
        None => None,
    };
    let mut check = HttpHealthCheck::new(backend.authority(), peer.is_tls());
    check.req = backend.probe_header(&spec.method, &spec.path, token.as_deref())?;
    check.peer_template = peer.clone();
    check.peer_template.options.connection_timeout = Some(spec.timeout);
    check.peer_template.options.total_connection_timeout = Some(spec.timeout);
    check.peer_template.options.read_timeout = Some(spec.timeout);
    check.peer_template.options.write_timeout = Some(spec.timeout);
    check.validator = Some(Box::new(|h| {
        if h.status.is_success() {
            Ok(())
        } else {
            Error::e_explain(
                ErrorType::HTTPStatus(h.status.as_u16()),
                "health check status",
            )
        }
    }));
    let target = pingora::lb::Backend {
        addr: peer._address.clone(),
        weight: 1,
        ext: Default::default(),
    };
    let run = check.check(&target);
    match tokio::time::timeout(spec.timeout * 2, run).await {
        Ok(r) => r,
        Err(_) => Error::e_explain(ErrorType::ReadTimedout, "health check timed out"),
    }
}
