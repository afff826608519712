//! The strategies that order one priority tier:
//! - `weighted`: smooth weighted round robin (nginx's: each target gains its weight, the
//!   highest goes first and gives back the tier's total); the rest follow by weight;
//! - `least-load`: fewest requests in flight (or estimated tokens outstanding), ties by weight;
//! - `latency`: power of two choices: of two random targets the one with the lower peak-EWMA
//!   time to first byte × (in flight + 1) goes first, the rest follow by that cost;
//! - `cost`: cheapest input + output price per token first (unpriced last), ties by weight;
//! - `affinity`: rendezvous hashing of the request's key, so a key keeps its target and only
//!   the keys of a target that leaves move (to each key's next target).

use super::{Balancer, Pick};
use crate::route::{Route, Strategy};
use std::cmp::Reverse;

impl Balancer {
    pub(super) fn sort_tier(&self, route: &Route, pick: &Pick<'_>, members: &mut [usize]) {
        let t = |i: usize| &route.targets[i];
        let b = |i: usize| &self.backends[t(i).backend];
        match &route.strategy {
            Strategy::Weighted => self.round_robin(route, members),
            Strategy::LeastLoad => {
                members.sort_by_key(|&i| (b(i).in_flight(), Reverse(t(i).weight), i));
            }
            Strategy::LeastTokens => {
                members.sort_by_key(|&i| (b(i).outstanding_tokens(), Reverse(t(i).weight), i));
            }
            Strategy::Latency => {
                let cost: Vec<f64> = members
                    .iter()
                    .map(|&i| b(i).latency_ms() * (b(i).in_flight() + 1) as f64)
                    .collect();
                two_choices(members, &cost);
            }
            Strategy::Cost => {
                let price = |i: usize| {
                    let model = Self::upstream_model(t(i), pick);
                    let p = self.prices.find(model);
                    // Per million tokens, in micro-dollars, so it sorts as an integer.
                    p.map_or(u64::MAX, |p| ((p.input + p.output) * 1e6) as u64)
                };
                members.sort_by_key(|&i| (price(i), Reverse(t(i).weight), i));
            }
            Strategy::Affinity(_) => match pick.affinity {
                Some(key) => members.sort_by(|&x, &y| {
                    let score =
                        |i: usize| rendezvous(key, &b(i).name, t(i).model.as_deref(), t(i).weight);
                    score(y).total_cmp(&score(x)).then(x.cmp(&y))
                }),
                None => self.round_robin(route, members),
            },
        }
    }

    fn round_robin(&self, route: &Route, members: &mut [usize]) {
        let Some(state) = self.routes.get(&route.name) else {
            return;
        };
        let mut current = state.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.len() != route.targets.len() {
            *current = vec![0; route.targets.len()];
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
        members.sort_by_key(|&i| (i != best, Reverse(weight(i)), i));
    }
}

/// Power of two choices: the cheaper of two random members first, the rest by cost.
fn two_choices(members: &mut [usize], cost: &[f64]) {
    let n = members.len();
    let a = fastrand::usize(..n);
    let mut b = fastrand::usize(..n - 1);
    if b >= a {
        b += 1;
    }
    let first = if cost[b] < cost[a] { b } else { a };
    let mut ranked: Vec<(usize, f64)> = members.iter().copied().zip(cost.iter().copied()).collect();
    let winner = ranked.remove(first);
    ranked.sort_by(|x, y| x.1.total_cmp(&y.1).then(x.0.cmp(&y.0)));
    members[0] = winner.0;
    for (slot, (i, _)) in members[1..].iter_mut().zip(ranked) {
        *slot = i;
    }
}

/// Weighted rendezvous score of a target for `key`: `weight / -ln(u)` with `u` uniform in
/// (0, 1) from a hash of the key and the target's identity (backend name and model), so a
/// target's score does not depend on which other targets exist.
fn rendezvous(key: &[u8], backend: &str, model: Option<&str>, weight: u32) -> f64 {
    let mut h = Fnv::default();
    h.write(key);
    h.write(&[0xff]);
    h.write(backend.as_bytes());
    h.write(&[0]);
    h.write(model.unwrap_or("").as_bytes());
    let x = mix(h.0);
    let u = ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    f64::from(weight) / -u.ln()
}

/// FNV-1a, 64-bit.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// splitmix64's finaliser: spreads FNV's low-entropy high bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
