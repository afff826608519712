//! Selection metrics: what the balancer chose, retried, ejected and cooled down.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

pub struct SelectionMetrics {
    in_flight: IntGaugeVec,
    healthy: IntGaugeVec,
    ejections: IntCounterVec,
    cooldowns: IntCounterVec,
    selections: IntCounterVec,
    retries: IntCounterVec,
}

/// One backend's series, resolved once when the balancer is built.
pub struct BackendSeries {
    pub in_flight: IntGauge,
    pub healthy: IntGauge,
    pub ejections: IntCounter,
    pub cooldowns: IntCounter,
}

/// A registered counter family (the cache's metrics use it too).
pub(super) fn counter(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), &["backend"])?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

impl SelectionMetrics {
    pub fn new(r: &Registry) -> prometheus::Result<SelectionMetrics> {
        Ok(SelectionMetrics {
            in_flight: gauge(
                r,
                "tollgate_backend_in_flight",
                "Requests in flight at each backend (attempt start to the end of its relay)",
            )?,
            healthy: gauge(
                r,
                "tollgate_backend_healthy",
                "1 when the backend is neither ejected nor failing its active check",
            )?,
            ejections: counter(
                r,
                "tollgate_backend_ejections_total",
                "Times a backend was ejected after consecutive failures",
                &["backend"],
            )?,
            cooldowns: counter(
                r,
                "tollgate_backend_cooldowns_total",
                "Cool-downs started by a backend's Retry-After or rate-limit reset",
                &["backend"],
            )?,
            selections: counter(
                r,
                "tollgate_selections_total",
                "Attempts sent, by route and backend",
                &["route", "backend"],
            )?,
            retries: counter(
                r,
                "tollgate_retries_total",
                "Requests moved to another target, by route and the failure that moved them",
                &["route", "reason"],
            )?,
        })
    }

    pub fn backend(&self, name: &str) -> BackendSeries {
        let healthy = self.healthy.with_label_values(&[name]);
        healthy.set(1);
        BackendSeries {
            in_flight: self.in_flight.with_label_values(&[name]),
            healthy,
            ejections: self.ejections.with_label_values(&[name]),
            cooldowns: self.cooldowns.with_label_values(&[name]),
        }
    }

    /// Drops the gauges of a backend a reload removed (its counters keep their totals).
    pub fn forget(&self, name: &str) {
        let _ = self.in_flight.remove_label_values(&[name]);
        let _ = self.healthy.remove_label_values(&[name]);
    }

    pub fn selections(&self, route: &str, backend: &str) -> IntCounter {
        self.selections.with_label_values(&[route, backend])
    }

    pub fn retry(&self, route: &str, reason: &str) {
        self.retries.with_label_values(&[route, reason]).inc();
    }
}
