//! Selection: the order in which a request tries its route's targets. Priority tiers come
//! first to last (0 first), so a later tier serves only when every target before it is
//! unusable (disabled, failing its active check, ejected, cooling down, busy) or has failed
//! this request. Within a tier the route's strategy orders the usable targets (see
//! `strategy.rs`), then targets in the request's region move to the front.
//!
//! Runtime state (round-robin weights per route, each backend's load, latency and health)
//! is kept by name, so a config reload can carry it over.

mod backend;
pub mod checks;
pub mod cooldown;
pub mod explain;
mod strategy;

pub use backend::{now_ms, Avail, BackendState, BackendView, InFlight};

use crate::config::Config;
use crate::config::PriceTable;
use crate::observe::Metrics;
use crate::route::{Route, Target};
use prometheus::IntCounter;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// What selection knows about one request.
#[derive(Default)]
pub struct Pick<'a> {
    /// The affinity strategy's key (client key name, header value or prompt prefix).
    pub affinity: Option<&'a [u8]>,
    /// The request's region.
    pub region: Option<&'a str>,
    /// The client's model: the upstream model of targets that do not rename it.
    pub model: &'a str,
}

struct RouteState {
    /// Smooth weighted round robin: each target's current weight.
    current: Mutex<Vec<i64>>,
    /// `tollgate_selections_total` per target.
    selected: Vec<IntCounter>,
}

pub struct Balancer {
    /// foldhash, randomly seeded (not SipHash): looked up on every request.
    routes: HashMap<Arc<str>, RouteState, foldhash::fast::RandomState>,
    backends: Vec<Arc<BackendState>>,
    /// Signalled when a slot frees at a backend with a concurrency cap.
    freed: Arc<Notify>,
    prices: PriceTable,
}

impl Balancer {
    pub fn new(cfg: &Config, metrics: &Metrics) -> Balancer {
        Self::carried(cfg, metrics, None)
    }

    /// Builds the balancer of `cfg`, carrying `prev`'s state over by name (a config reload):
    /// a backend whose settings did not change keeps its very state; one that changed keeps
    /// its health and cool-downs; a route with as many targets keeps its round-robin weights.
    pub fn carried(cfg: &Config, metrics: &Metrics, prev: Option<&Balancer>) -> Balancer {
        let freed = prev.map_or_else(|| Arc::new(Notify::new()), |p| p.freed.clone());
        let sel = &metrics.selection;
        let old = |name: &str| prev.and_then(|p| p.backends.iter().find(|b| &*b.name == name));
        let backends = cfg
            .backends
            .iter()
            .map(|b| match old(&b.name) {
                Some(o) if o.same_settings(b.enabled, b.max_concurrent, b.ejection) => o.clone(),
                o => {
                    let state = Arc::new(BackendState::new(
                        Arc::from(b.name.as_str()),
                        b.enabled,
                        b.max_concurrent,
                        b.ejection,
                        sel.backend(&b.name),
                        freed.clone(),
                    ));
                    if let Some(o) = o {
                        state.carry_from(o);
                    }
                    state
                }
            })
            .collect::<Vec<_>>();
        let routes = cfg
            .routes
            .iter()
            .map(|r| {
                let weights = prev
                    .and_then(|p| p.routes.get(r.name.as_str()))
                    .map(|s| s.current.lock().unwrap_or_else(|p| p.into_inner()).clone())
                    .filter(|w| w.len() == r.targets.len());
                let state = RouteState {
                    current: Mutex::new(weights.unwrap_or_else(|| vec![0; r.targets.len()])),
                    selected: r
                        .targets
                        .iter()
                        .map(|t| sel.selections(&r.name, &backends[t.backend].name))
                        .collect(),
                };
                (Arc::from(r.name.as_str()), state)
            })
            .collect();
        Balancer {
            routes,
            backends,
            freed,
            prices: cfg.prices.clone(),
        }
    }

    pub fn backend(&self, i: usize) -> &Arc<BackendState> {
        &self.backends[i]
    }

    pub fn backends(&self) -> &[Arc<BackendState>] {
        &self.backends
    }

    /// Resolves when a slot may have freed at a capped backend (register before checking).
    pub fn freed(&self) -> &Notify {
        &self.freed
    }

    /// How many of `route`'s targets could take a request now (for its own model names).
    pub fn usable_targets(&self, route: &Route) -> usize {
        let now = now_ms();
        route
            .targets
            .iter()
            .filter(|t| {
                let model = t.model.as_deref().unwrap_or("");
                self.backends[t.backend].avail(model, now).usable()
            })
            .count()
    }

    /// Every backend's live state as JSON (the admin listener's `/backends`).
    pub fn views_json(&self) -> Vec<u8> {
        let views: Vec<BackendView> = self.backends.iter().map(|b| b.view()).collect();
        serde_json::to_vec_pretty(&serde_json::json!({ "backends": views })).unwrap_or_default()
    }

    /// Counts an attempt at `route`'s target `i`.
    pub fn selected(&self, route: &Route, i: usize) {
        if let Some(c) = self.routes.get(&route.name).and_then(|r| r.selected.get(i)) {
            c.inc();
        }
    }

    pub(crate) fn upstream_model<'a>(t: &'a Target, pick: &Pick<'a>) -> &'a str {
        t.model.as_deref().unwrap_or(pick.model)
    }

    /// Each target's availability now, in file order.
    pub fn availability(&self, route: &Route, pick: &Pick<'_>) -> Vec<Avail> {
        let timed = route
            .targets
            .iter()
            .any(|t| self.backends[t.backend].timed());
        let now = if timed { now_ms() } else { 0 }; // see `BackendState::timed`
        route
            .targets
            .iter()
            .map(|t| self.backends[t.backend].avail(Self::upstream_model(t, pick), now))
            .collect()
    }

    /// Fills `out` with the indices of `route`'s usable targets in the order to try them;
    /// `avail` is each target's availability (see `availability`).
    pub fn order(&self, route: &Route, pick: &Pick<'_>, avail: &[Avail], out: &mut Vec<usize>) {
        out.clear();
        for &tier in &route.tiers {
            let start = out.len();
            out.extend(
                (0..route.targets.len())
                    .filter(|&i| route.targets[i].priority == tier && avail[i].usable()),
            );
            let members = &mut out[start..];
            if members.len() < 2 {
                continue;
            }
            self.sort_tier(route, pick, members);
            if let Some(region) = pick.region {
                // Stable: the strategy's order holds within each side.
                members.sort_by_key(|&i| route.targets[i].region.as_deref() != Some(region));
            }
        }
    }
}

#[cfg(test)]
mod tests;
