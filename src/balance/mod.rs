//! Selection: the order in which a request tries its route's targets. Priority tiers come
//! first to last (0 first), so a later tier serves only when every target before it has
//! failed this request (or is disabled). Within a tier, smooth weighted round robin (nginx's
//! algorithm: each target gains its weight, the highest goes first and gives back the tier's
//! total) picks who goes first, evenly interleaved; the rest follow by weight. The state is
//! kept by route name, so it carries over a config reload.

use crate::route::{Route, Target};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Balancer {
    /// Per route: each target's current weight.
    current: Mutex<HashMap<Arc<str>, Vec<i64>>>,
}

impl Balancer {
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
            pick_first(route, current, &mut out[start..]);
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
        }
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
