//! Response-cache metrics: what lookups found, what was stored, evicted and saved.

use super::selection::counter;
use arc_swap::ArcSwap;
use prometheus::{CounterVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use std::collections::HashMap;

/// The counter families kept per route.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Lookups,
    Coalesced,
    Stored,
    SavedTokens,
}

/// Counters made so far, by route, then family and label. `with_label_values` hashes its
/// labels and takes its family's lock on every call (~0.12 µs natively, and a cached request
/// counts twice); a route's few series are made once and looked up here.
type Made = HashMap<String, Vec<(Family, &'static str, IntCounter)>, foldhash::fast::RandomState>;

pub struct CacheMetrics {
    lookups: IntCounterVec,
    coalesced: IntCounterVec,
    stored: IntCounterVec,
    saved_tokens: IntCounterVec,
    saved_cost: CounterVec,
    bytes: IntGauge,
    evictions: IntCounter,
    made: ArcSwap<Made>,
}

impl CacheMetrics {
    pub fn new(r: &Registry) -> prometheus::Result<CacheMetrics> {
        let lookups = counter(
            r,
            "tollgate_cache_lookups_total",
            "Requests on cached routes by route and result (hit, miss, refresh, bypass)",
            &["route", "result"],
        )?;
        let coalesced = counter(
            r,
            "tollgate_cache_coalesced_total",
            "Requests that waited for an identical one in flight, by route and whether they got its reply",
            &["route", "result"],
        )?;
        let stored = counter(
            r,
            "tollgate_cache_stores_total",
            "Replies offered to the cache, by route and result (stored, too_large, unshareable, unreachable)",
            &["route", "result"],
        )?;
        let saved_tokens = counter(
            r,
            "tollgate_cache_saved_tokens_total",
            "Tokens in replies served from the cache (not generated again), by route",
            &["route"],
        )?;
        let saved_cost = CounterVec::new(
            Opts::new(
                "tollgate_cache_saved_cost_usd_total",
                "What the replies served from the cache cost when first generated, by route",
            ),
            &["route"],
        )?;
        r.register(Box::new(saved_cost.clone()))?;
        let bytes = IntGauge::new("tollgate_cache_bytes", "Bytes held by the response cache")?;
        r.register(Box::new(bytes.clone()))?;
        let evictions = IntCounter::new(
            "tollgate_cache_evictions_total",
            "Entries evicted from the response cache to stay within max_bytes",
        )?;
        r.register(Box::new(evictions.clone()))?;
        Ok(CacheMetrics {
            lookups,
            coalesced,
            stored,
            saved_tokens,
            saved_cost,
            bytes,
            evictions,
            made: ArcSwap::from_pointee(Made::default()),
        })
    }

    /// Adds `n` to `route`'s series of `family` with `label` (no label for saved tokens),
    /// made on its first use.
    fn add(&self, family: Family, route: &str, label: &'static str, n: u64) {
        let made = self.made.load();
        let found = made
            .get(route)
            .and_then(|v| (v.iter()).find(|(f, l, _)| *f == family && *l == label));
        if let Some((_, _, c)) = found {
            return c.inc_by(n);
        }
        drop(made);
        let c = match family {
            Family::Lookups => self.lookups.with_label_values(&[route, label]),
            Family::Coalesced => self.coalesced.with_label_values(&[route, label]),
            Family::Stored => self.stored.with_label_values(&[route, label]),
            Family::SavedTokens => self.saved_tokens.with_label_values(&[route]),
        };
        c.inc_by(n);
        // Another thread may have made it meanwhile: the same series either way.
        self.made.rcu(|m| {
            let mut m = Made::clone(m);
            let v = m.entry(route.to_string()).or_default();
            if !v.iter().any(|(f, l, _)| *f == family && *l == label) {
                v.push((family, label, c.clone()));
            }
            m
        });
    }

    pub fn lookup(&self, route: &str, result: &'static str) {
        self.add(Family::Lookups, route, result, 1);
    }

    pub fn coalesced(&self, route: &str, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.add(Family::Coalesced, route, result, 1);
    }

    /// A reply offered to the cache: stored (`Ok`, with the entries evicted to make room),
    /// or why not (`too_large`, `unshareable`, `unreachable`).
    pub fn stored(&self, route: &str, result: Result<usize, &'static str>) {
        let label = result.err().unwrap_or("stored");
        self.add(Family::Stored, route, label, 1);
        self.evictions.inc_by(result.unwrap_or(0) as u64);
    }

    pub fn saved(&self, route: &str, tokens: u64, cost: Option<f64>) {
        self.add(Family::SavedTokens, route, "", tokens);
        if let Some(c) = cost.filter(|c| *c > 0.0) {
            self.saved_cost.with_label_values(&[route]).inc_by(c);
        }
    }

    /// Bytes the cache holds now.
    pub fn held(&self, bytes: usize) {
        self.bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(r: &Registry, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
        let families = r.gather();
        let f = families.iter().find(|f| f.name() == name)?;
        let m = f.get_metric().iter().find(|m| {
            labels
                .iter()
                .all(|(k, v)| (m.get_label().iter()).any(|l| l.name() == *k && l.value() == *v))
        })?;
        Some(m.get_counter().get_value() as u64)
    }

    #[test]
    fn each_route_and_label_counts_in_its_own_series() {
        let r = Registry::new();
        let m = CacheMetrics::new(&r).unwrap();
        for _ in 0..3 {
            m.lookup("a", "miss");
        }
        m.lookup("a", "hit");
        m.lookup("b", "miss");
        m.stored("a", Ok(2));
        m.stored("a", Err("too_large"));
        m.coalesced("b", true);
        m.saved("a", 40, None);
        m.saved("a", 2, None);
        let (lookups, stores) = (
            "tollgate_cache_lookups_total",
            "tollgate_cache_stores_total",
        );
        for (name, route, result, want) in [
            (lookups, "a", "miss", Some(3)),
            (lookups, "a", "hit", Some(1)),
            (lookups, "b", "miss", Some(1)),
            (lookups, "b", "hit", None),
            (stores, "a", "stored", Some(1)),
            (stores, "a", "too_large", Some(1)),
            ("tollgate_cache_coalesced_total", "b", "hit", Some(1)),
        ] {
            let got = value(&r, name, &[("route", route), ("result", result)]);
            assert_eq!(got, want, "{name} {route} {result}");
        }
        let saved = "tollgate_cache_saved_tokens_total";
        assert_eq!(value(&r, saved, &[("route", "a")]), Some(42));
        assert_eq!(m.evictions.get(), 2);
    }
}
