//! Response-cache metrics: what lookups found, what was stored, evicted and saved.

use super::selection::counter;
use prometheus::{CounterVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

pub struct CacheMetrics {
    lookups: IntCounterVec,
    coalesced: IntCounterVec,
    stored: IntCounterVec,
    saved_tokens: IntCounterVec,
    saved_cost: CounterVec,
    bytes: IntGauge,
    evictions: IntCounter,
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
        })
    }

    pub fn lookup(&self, route: &str, result: &str) {
        self.lookups.with_label_values(&[route, result]).inc();
    }

    pub fn coalesced(&self, route: &str, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.coalesced.with_label_values(&[route, result]).inc();
    }

    /// A reply offered to the cache: stored (`Ok`, with the entries evicted to make room),
    /// or why not (`too_large`, `unshareable`, `unreachable`).
    pub fn stored(&self, route: &str, result: Result<usize, &'static str>) {
        let label = result.err().unwrap_or("stored");
        self.stored.with_label_values(&[route, label]).inc();
        self.evictions.inc_by(result.unwrap_or(0) as u64);
    }

    pub fn saved(&self, route: &str, tokens: u64, cost: Option<f64>) {
        self.saved_tokens.with_label_values(&[route]).inc_by(tokens);
        if let Some(c) = cost.filter(|c| *c > 0.0) {
            self.saved_cost.with_label_values(&[route]).inc_by(c);
        }
    }

    /// Bytes the cache holds now.
    pub fn held(&self, bytes: usize) {
        self.bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}
