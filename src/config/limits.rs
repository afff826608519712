//! The `[[limits]]`, `[store]` and `[identity]` sections.

use super::schema::{RawAlerts, RawCaps, RawIdentity, RawLimit, RawStore};
use super::Validator;
use super::{Cap, LimitSpec, Measure, Scope};
use crate::clock::Period;
use std::time::Duration;

/// Budget alerts: the webhook and when it is told (`[alerts]`).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSettings {
    pub webhook_url: String,
    /// Fractions of a budget, ascending (`[0.8, 1.0]`).
    pub thresholds: Vec<f64>,
    /// Tries after the first, with doubling back-off from one second.
    pub retries: u32,
    pub timeout: Duration,
}

/// Where counters and the ledger are kept.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreKind {
    /// Embedded SQLite at `path`.
    Sqlite { path: String },
    /// One Redis shared by every instance (the ledger stays in the local SQLite file).
    Redis { url: String, path: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoreSettings {
    pub kind: StoreKind,
    /// Admit requests when the store cannot be reached (`fail_open`) or refuse them.
    pub fail_open: bool,
    /// How often ledger rows and durable counters are written.
    pub flush_interval_ms: u64,
    /// Longest a request waits on one call to a shared store (Redis).
    pub timeout: Duration,
    /// The share of each limit a gateway leases from Redis in one round trip and counts
    /// itself (`limits::lease`); 0 makes every request a round trip.
    pub lease: f64,
}

/// A gateway leases a thousandth of a limit at a time from Redis: with ten gateways about 1% of
/// a limit (2% at most) is held unused at a window's end, and a limit of a million tokens a minute
/// still makes one round trip for every thousand tokens.
const DEFAULT_LEASE: f64 = 0.001;

/// Who the end user is when the key does not say: a header set by a trusted client.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdentitySettings {
    pub user_header: Option<http::HeaderName>,
}

impl StoreSettings {
    /// The SQLite file holding the ledger (with either kind).
    pub fn ledger_path(&self) -> &str {
        match &self.kind {
            StoreKind::Sqlite { path } | StoreKind::Redis { path, .. } => path,
        }
    }
}

/// Each cap a `[[limits]]` entry may set: its key, what it counts and over which period, in
/// the order of [`cap_values`].
const CAPS: [(&str, Measure, Period); 9] = [
    ("requests_per_second", Measure::Requests, Period::Second),
    ("requests_per_minute", Measure::Requests, Period::Minute),
    ("tokens_per_minute", Measure::Tokens, Period::Minute),
    ("tokens_per_hour", Measure::Tokens, Period::Hour),
    ("tokens_per_day", Measure::Tokens, Period::Day),
    ("tokens_per_month", Measure::Tokens, Period::Month),
    ("concurrent_requests", Measure::Concurrent, Period::Open),
    ("cost_per_day_usd", Measure::Cost, Period::Day),
    ("cost_per_month_usd", Measure::Cost, Period::Month),
];

fn cap_values(l: &RawLimit) -> [Option<f64>; 9] {
    [
        l.requests_per_second,
        l.requests_per_minute,
        l.tokens_per_minute,
        l.tokens_per_hour,
        l.tokens_per_day,
        l.tokens_per_month,
        l.concurrent_requests,
        l.cost_per_day_usd,
        l.cost_per_month_usd,
    ]
}

/// The caps among `values` (in [`CAPS`] order), and the names of those that are not numbers >= 0.
fn caps_from(values: [Option<f64>; 9]) -> (Vec<Cap>, Vec<&'static str>) {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (&(name, measure, period), value) in CAPS.iter().zip(values) {
        let Some(limit) = value else { continue };
        if !limit.is_finite() || limit < 0.0 {
            bad.push(name);
            continue;
        }
        out.push(Cap {
            measure,
            period,
            limit,
        });
    }
    (out, bad)
}

impl RawCaps {
    /// The caps of a key's or a team's `limits` table; `Err` names the first bad field.
    pub fn caps(&self) -> Result<Vec<Cap>, String> {
        let values = [
            self.requests_per_second,
            self.requests_per_minute,
            self.tokens_per_minute,
            self.tokens_per_hour,
            self.tokens_per_day,
            self.tokens_per_month,
            self.concurrent_requests,
            self.cost_per_day_usd,
            self.cost_per_month_usd,
        ];
        match caps_from(values) {
            (caps, bad) if bad.is_empty() => Ok(caps),
            (_, bad) => Err(format!("`{}` must be a number >= 0", bad[0])),
        }
    }
}

pub const DEFAULT_DB: &str = "tollgate.db";

impl Validator<'_, '_> {
    pub(super) fn limits(&mut self, raw: Vec<RawLimit>) -> Vec<LimitSpec> {
        raw.into_iter()
            .enumerate()
            .filter_map(|(i, l)| self.limit(&format!("limits[{i}]"), l))
            .collect()
    }

    fn limit(&mut self, p: &str, l: RawLimit) -> Option<LimitSpec> {
        let Some(scope) = Scope::from_name(&l.scope) else {
            self.err(
                format!("{p}.scope"),
                "must be one of key, user, team, model, route, backend, global",
            );
            return None;
        };
        let (out, bad) = caps_from(cap_values(&l));
        for name in bad {
            self.err(format!("{p}.{name}"), "must be a number >= 0");
        }
        if out.is_empty() {
            self.err(
                p.to_string(),
                "sets no limit (requests_per_minute, tokens_per_minute, cost_per_day_usd, ...)",
            );
        }
        if l.matching.as_deref() == Some("") {
            self.err(
                format!("{p}.match"),
                "must not be empty (leave it out to limit each one)",
            );
        }
        if scope == Scope::Global && l.matching.is_some() {
            self.err(format!("{p}.match"), "a global limit matches everything");
        }
        Some(LimitSpec {
            scope,
            matching: l.matching,
            caps: out,
        })
    }

    pub(super) fn store(&mut self, s: RawStore) -> StoreSettings {
        let fail_open = match s.on_error.as_deref() {
            None | Some("fail_open") => true,
            Some("fail_closed") => false,
            Some(_) => {
                self.err("store.on_error", "must be `fail_open` or `fail_closed`");
                true
            }
        };
        let path = s.path.unwrap_or_else(|| DEFAULT_DB.to_string());
        if path.is_empty() {
            self.err("store.path", "must not be empty");
        }
        let kind = match (s.kind.as_deref(), s.redis_url) {
            (None | Some("sqlite"), None) => StoreKind::Sqlite { path },
            (None | Some("sqlite"), Some(_)) => {
                self.err("store.redis_url", "is only for kind = \"redis\"");
                StoreKind::Sqlite { path }
            }
            (Some("redis"), Some(url))
                if url.starts_with("redis://") || url.starts_with("rediss://") =>
            {
                StoreKind::Redis { url, path }
            }
            (Some("redis"), _) => {
                self.err(
                    "store.redis_url",
                    "kind = \"redis\" needs redis_url = \"redis://host:port\"",
                );
                StoreKind::Sqlite { path }
            }
            (Some(_), _) => {
                self.err("store.kind", "must be `sqlite` or `redis`");
                StoreKind::Sqlite { path }
            }
        };
        let timeout_ms = s.timeout_ms.unwrap_or(100);
        if !(5..=5_000).contains(&timeout_ms) {
            self.err("store.timeout_ms", "must be between 5 and 5000");
        }
        let flush_interval_ms = s.flush_interval_ms.unwrap_or(1000);
        if !(10..=60_000).contains(&flush_interval_ms) {
            self.err("store.flush_interval_ms", "must be between 10 and 60000");
        }
        let lease = s.lease.unwrap_or(DEFAULT_LEASE);
        if !(0.0..=0.1).contains(&lease) {
            self.err(
                "store.lease",
                "must be a share of each limit between 0 and 0.1",
            );
        } else if s.lease.is_some() && !matches!(kind, StoreKind::Redis { .. }) {
            self.err(
                "store.lease",
                "is only for kind = \"redis\" (local counters are exact)",
            );
        }
        StoreSettings {
            kind,
            fail_open,
            flush_interval_ms,
            timeout: Duration::from_millis(timeout_ms),
            lease,
        }
    }

    pub(super) fn alerts(&mut self, raw: Option<RawAlerts>) -> Option<AlertSettings> {
        let a = raw?;
        if let Err(e) = super::parse_url(&a.webhook_url) {
            self.err("alerts.webhook_url", e);
        }
        let thresholds = a.thresholds.unwrap_or_else(|| vec![0.8, 1.0]);
        if thresholds.is_empty() {
            self.err("alerts.thresholds", "at least one fraction is required");
        }
        for (i, t) in thresholds.iter().enumerate() {
            if !(t.is_finite() && *t > 0.0 && *t <= 10.0) {
                self.err(
                    format!("alerts.thresholds[{i}]"),
                    "must be a fraction of the budget in (0, 10]",
                );
            }
        }
        let mut thresholds = thresholds;
        thresholds.sort_by(f64::total_cmp);
        Some(AlertSettings {
            webhook_url: a.webhook_url,
            thresholds,
            retries: a.retries.unwrap_or(3).min(10),
            timeout: Duration::from_millis(a.timeout_ms.unwrap_or(5000).clamp(100, 60_000)),
        })
    }

    pub(super) fn identity(&mut self, raw: RawIdentity) -> IdentitySettings {
        let user_header =
            raw.user_header.and_then(
                |h| match http::HeaderName::from_bytes(h.trim().as_bytes()) {
                    Ok(n) => Some(n),
                    Err(_) => {
                        self.err("identity.user_header", "is not a valid header name");
                        None
                    }
                },
            );
        IdentitySettings { user_header }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn load(extra: &str) -> Result<Config, Vec<crate::config::ConfigError>> {
        Config::from_str_with_env(extra, &|_| None)
    }

    #[test]
    fn limits_store_and_identity_load() {
        let c = load(
            "[store]\nkind = \"redis\"\nredis_url = \"redis://127.0.0.1:6379\"\non_error = \"fail_closed\"\n\
             [identity]\nuser_header = \"x-end-user\"\n\
             [alerts]\nwebhook_url = \"http://127.0.0.1:1/hook\"\nthresholds = [1.0, 0.5]\n\
             [[limits]]\nscope = \"key\"\nmatch = \"team-a\"\nrequests_per_minute = 600\ntokens_per_minute = 100000\n\
             cost_per_day_usd = 50\ncost_per_month_usd = 500\n",
        )
        .unwrap();
        assert_eq!(c.limits[0].caps.len(), 4);
        assert!(!c.store.fail_open);
        assert_eq!(
            c.identity.user_header.as_ref().unwrap().as_str(),
            "x-end-user"
        );
    }

    #[test]
    fn a_lease_is_a_small_share_and_only_for_redis() {
        let redis = "[store]\nkind = \"redis\"\nredis_url = \"redis://127.0.0.1:6379\"\n";
        assert_eq!(load(redis).unwrap().store.lease, 0.001);
        assert_eq!(
            load(&format!("{redis}lease = 0\n")).unwrap().store.lease,
            0.0
        );
        for bad in [
            format!("{redis}lease = 0.5\n"),
            "[store]\nlease = 0.01\n".into(),
        ] {
            let e = load(&bad).unwrap_err();
            assert_eq!(e[0].path, "store.lease", "{e:?}");
        }
    }

    #[test]
    fn errors_are_located() {
        let e = load(
            "[store]\nkind = \"redis\"\n[[limits]]\nscope = \"planet\"\n[[limits]]\nscope = \"key\"\ntokens_per_minute = -1\n",
        )
        .unwrap_err();
        let at: Vec<_> = e.iter().map(|e| (e.path.as_str(), e.line)).collect();
        assert!(at.contains(&("store.redis_url", Some(1))), "{e:?}");
        assert!(at.contains(&("limits[0].scope", Some(4))), "{e:?}");
        assert!(
            at.contains(&("limits[1].tokens_per_minute", Some(7))),
            "{e:?}"
        );
    }
}
