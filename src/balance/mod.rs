//! Selection: the order in which a request tries its route's targets. Priority tiers come
//! first to last (0 first), so a later tier serves only when every target before it has
//! failed this request (or is disabled). Within a tier the route's strategy orders them:
//! `weighted` (default): smooth weighted round robin (nginx's algorithm: each target gains
//! its weight, the highest goes first and gives back the tier's total) picks who goes first,
//! the rest follow by weight; `least-load`: fewest requests in flight first, ties by weight.
//! Round-robin state is kept by route name, so it carries over a config reload.

use crate::route::{Route, Strategy, Target};
use prometheus::IntGauge;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Balancer {
    /// Per route: each target's current weight.
    current: Mutex<HashMap<Arc<str>, Vec<i64>>>,
    /// Requests in flight per backend (by index): the metric's gauges themselves.
    inflight: Vec<IntGauge>,
}

/// One request in flight at a backend, counted until dropped.
pub struct InFlight(IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Balancer {
    /// `inflight`: one gauge per backend, in backend order.
    pub fn new(inflight: Vec<IntGauge>) -> Balancer {
        Balancer {
            current: Mutex::default(),
            inflight,
        }
    }

    /// Counts a request at `backend` until the returned guard is dropped.
    pub fn start(&self, backend: usize) -> Option<InFlight> {
        let g = self.inflight.get(backend)?;
        g.inc();
        Some(InFlight(g.clone()))
    }

    fn load(&self, backend: usize) -> i64 {
        self.inflight.get(backend).map_or(0, IntGauge::get)
    }

    /// Fills `out` with the indices of `route`'s usable targets in the order to try them.
    pub fn order(&self, route: &Route, usable: impl Fn(&Target) -> bool, out: &mut Vec<usize>) {
        out.clear();
        let mut tiers: Vec<u32> = route.targets.iter().map(|t| t.priority).collect();
        tiers.sort_unstable();
        tiers.dedup();
        let mut map = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let current = map
            .entry(route.name.clone())
            .or_insert_with(|| vec![0; route.targets.len()]);
        if current.len() != route.targets.len() {
            *current = vec![0; route.targets.len()];
        }
        for tier in tiers {
            let start = out.len();
            out.extend(
                (0..route.targets.len())
                    .filter(|&i| route.targets[i].priority == tier && usable(&route.targets[i])),
            );
            match route.strategy {
                Strategy::Weighted => pick_first(route, current, &mut out[start..]),
                Strategy::LeastLoad => out[start..].sort_by_key(|&i| {
                    let t = &route.targets[i];
                    (self.load(t.backend), std::cmp::Reverse(t.weight), i)
                }),
            }
        }
    }
}

/// Smooth weighted round robin over `members`: the winner is moved to the front, the others
/// ordered by weight (heaviest first, then file order).
fn pick_first(route: &Route, current: &mut [i64], members: &mut [usize]) {
    if members.len() < 2 {
        return;
    }
    let weight = |i: usize| i64::from(route.targets[i].weight);
    let total: i64 = members.iter().map(|&i| weight(i)).sum();
    let mut best = members[0];
    for &i in members.iter() {
        current[i] += weight(i);
        if current[i] > current[best] {
            best = i;
        }
    }
    current[best] -= total;
    members.sort_by_key(|&i| (i != best, std::cmp::Reverse(weight(i)), i));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(targets: &[(u32, u32)]) -> Route {
        Route {
            name: Arc::from("r"),
            targets: targets
                .iter()
                .enumerate()
                .map(|(i, &(weight, priority))| Target {
                    backend: i,
                    model: None,
                    weight,
                    priority,
                })
                .collect(),
            failover_on_status: vec![],
            default_output_tokens: 1,
            strategy: Strategy::Weighted,
        }
    }

    #[test]
    fn least_load_prefers_the_idle_backend() {
        let mut r = route(&[(5, 0), (1, 0)]);
        r.strategy = Strategy::LeastLoad;
        let gauge = || IntGauge::new("g", "g").unwrap();
        let b = Balancer::new(vec![gauge(), gauge()]);
        let mut out = Vec::new();
        b.order(&r, |_| true, &mut out);
        assert_eq!(out, [0, 1]);
        let held = b.start(0);
        b.order(&r, |_| true, &mut out);
        assert_eq!(out, [1, 0]);
        drop(held);
        b.order(&r, |_| true, &mut out);
        assert_eq!(out, [0, 1]);
    }

    #[test]
    fn weights_are_honoured_and_interleaved() {
        let r = route(&[(5, 0), (1, 0), (1, 0)]);
        let b = Balancer::default();
        let mut out = Vec::new();
        let firsts: Vec<usize> = (0..7)
            .map(|_| {
                b.order(&r, |_| true, &mut out);
                assert_eq!(out.len(), 3);
                out[0]
            })
            .collect();
        // nginx's smooth sequence for 5:1:1.
        assert_eq!(firsts, [0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn tiers_follow_each_other_and_unusable_targets_are_left_out() {
        let r = route(&[(1, 1), (1, 0), (3, 0), (1, 2)]);
        let b = Balancer::default();
        let mut out = Vec::new();
        b.order(&r, |t| t.backend != 3, &mut out);
        assert_eq!(out.len(), 3);
        assert!(out[..2].contains(&1) && out[..2].contains(&2));
        assert_eq!(out[2], 0);
    }
}
