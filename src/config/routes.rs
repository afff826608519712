//! `[[routes]]` (targets, strategy, retry policy) and `[balance]` (the request's region).

use super::schema::{RawBalance, RawRetry, RawRoute};
use super::Validator;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub name: String,
    pub models: Vec<String>,
    pub targets: Vec<TargetSpec>,
    pub retry: RetryPolicy,
    /// Output tokens reserved for a request that sets no `max_tokens`.
    pub default_output_tokens: u64,
    pub strategy: Strategy,
    /// How long a request waits for a slot when every target is at its concurrency cap.
    pub queue_timeout: Duration,
    /// What translations do with fields they do not carry.
    pub fields: FieldRules,
    /// Replies cached for this long, per key or shared (`cache` table).
    pub cache: Option<super::RouteCache>,
}

/// The field policy a route or a key sets (README "Field policy"); `None`: not set here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldRules {
    /// Drop fields that change the reply and that the target cannot honour (`drop_params`).
    pub drop_params: Option<bool>,
    /// Refuse unknown fields (`unknown_fields = "reject"`) instead of dropping them.
    pub reject_unknown: Option<bool>,
}

impl FieldRules {
    /// These rules where set, else `under`'s (a key's rules over its route's).
    pub fn over(self, under: FieldRules) -> FieldRules {
        FieldRules {
            drop_params: self.drop_params.or(under.drop_params),
            reject_unknown: self.reject_unknown.or(under.reject_unknown),
        }
    }
}

/// How a route orders the targets of one priority tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Smooth weighted round robin.
    Weighted,
    /// Fewest requests in flight, ties by weight.
    LeastLoad,
    /// Fewest estimated tokens outstanding, ties by weight.
    LeastTokens,
    /// Power of two choices over a peak-EWMA of time to first byte.
    Latency,
    /// Cheapest by the configured prices.
    Cost,
    /// Rendezvous hash of a request key: the same key goes to the same target.
    Affinity(AffinityKey),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AffinityKey {
    /// The client's API key (by name).
    Key,
    /// A request header's value (a session or conversation id).
    Header(http::HeaderName),
    /// The first N bytes of the body (a shared system prompt hits the same prompt cache).
    Prompt(usize),
}

/// Which failures move a request to the next target, and how far it may go.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; each goes to a target not yet tried.
    pub attempts: u32,
    pub on_connect: bool,
    pub on_timeout: bool,
    pub statuses: Vec<u16>,
    /// Longest wait for one attempt's first byte (streams: the first event).
    pub per_try_timeout: Option<Duration>,
    /// Longest time from the first attempt until a reply starts to reach the client.
    pub deadline: Option<Duration>,
    /// Base of the exponential backoff between attempts (full jitter); zero for none.
    pub backoff: Duration,
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            on_connect: true,
            on_timeout: true,
            statuses: DEFAULT_RETRY_STATUSES.to_vec(),
            per_try_timeout: None,
            deadline: None,
            backoff: Duration::ZERO,
            backoff_max: Duration::from_secs(2),
        }
    }
}

pub const DEFAULT_RETRY_STATUSES: [u16; 5] = [429, 500, 502, 503, 504];

/// What a request without `max_tokens` reserves against token limits.
pub const DEFAULT_OUTPUT_TOKENS: u64 = 4096;

#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// Index into `Config::backends`.
    pub backend: usize,
    pub model: Option<String>,
    /// Share of traffic within its priority tier (default 1).
    pub weight: u32,
    /// Tier: 0 first; a later tier only when the earlier ones cannot serve (default 0).
    pub priority: u32,
    /// Where the target runs; requests from this region prefer it.
    pub region: Option<String>,
}

/// `[balance]`: how a request's region is known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BalanceSettings {
    pub region_header: Option<http::HeaderName>,
    /// The gateway's own region, for requests without the header.
    pub region: Option<std::sync::Arc<str>>,
}

const STRATEGIES: &str = "`weighted`, `least-load`, `latency`, `cost` or `affinity`";

impl Validator<'_, '_> {
    pub(super) fn routes(
        &mut self,
        raw: Vec<RawRoute>,
        names: &HashMap<String, usize>,
    ) -> Vec<RouteSpec> {
        let mut exact_seen: HashMap<String, usize> = HashMap::new();
        let mut routes = Vec::new();
        for (i, r) in raw.into_iter().enumerate() {
            let p = format!("routes[{i}]");
            self.route_models(&p, i, &r.models, &mut exact_seen);
            let targets = self.targets(&p, &r, names);
            let strategy = self.strategy(&p, &r);
            let retry = self.retry(&format!("{p}.retry"), r.retry.unwrap_or_default());
            routes.push(RouteSpec {
                name: r.name.unwrap_or_else(|| format!("route{i}")),
                models: r.models,
                targets,
                retry,
                default_output_tokens: r.default_output_tokens.unwrap_or(DEFAULT_OUTPUT_TOKENS),
                strategy,
                queue_timeout: Duration::from_millis(r.queue_timeout_ms.unwrap_or(0)),
                fields: self.field_rules(&p, r.drop_params, r.unknown_fields.as_deref()),
                cache: self.route_cache(&p, r.cache),
            });
        }
        routes
    }

    /// `drop_params` and `unknown_fields` of a route or a key at `p`.
    pub(super) fn field_rules(
        &mut self,
        p: &str,
        drop_params: Option<bool>,
        unknown: Option<&str>,
    ) -> FieldRules {
        let reject_unknown = match unknown {
            None => None,
            Some("drop") => Some(false),
            Some("reject") => Some(true),
            Some(_) => {
                self.err(
                    format!("{p}.unknown_fields"),
                    "must be \"drop\" or \"reject\"",
                );
                None
            }
        };
        FieldRules {
            drop_params,
            reject_unknown,
        }
    }

    fn route_models(
        &mut self,
        p: &str,
        i: usize,
        models: &[String],
        exact_seen: &mut HashMap<String, usize>,
    ) {
        if models.is_empty() {
            self.err(
                format!("{p}.models"),
                "at least one model name or glob is required",
            );
        }
        for (j, m) in models.iter().enumerate() {
            if m.is_empty() {
                self.err(format!("{p}.models[{j}]"), "must not be empty");
            } else if !m.contains('*') {
                if let Some(prev) = exact_seen.insert(m.clone(), i) {
                    self.err(
                        format!("{p}.models[{j}]"),
                        format!("model `{m}` is already routed by routes[{prev}]"),
                    );
                }
            }
        }
    }

    fn targets(
        &mut self,
        p: &str,
        r: &RawRoute,
        names: &HashMap<String, usize>,
    ) -> Vec<TargetSpec> {
        if r.targets.is_empty() {
            self.err(format!("{p}.targets"), "at least one target is required");
        }
        let mut targets = Vec::new();
        for (j, t) in r.targets.iter().enumerate() {
            let Some(&backend) = names.get(&t.backend) else {
                self.err(
                    format!("{p}.targets[{j}].backend"),
                    format!("no backend named `{}`", t.backend),
                );
                continue;
            };
            if t.weight == Some(0) {
                self.err(format!("{p}.targets[{j}].weight"), "must be at least 1");
            }
            targets.push(TargetSpec {
                backend,
                model: t.model.clone().filter(|m| !m.is_empty()),
                weight: t.weight.unwrap_or(1).max(1),
                priority: t.priority.unwrap_or(0),
                region: t.region.clone().filter(|r| !r.is_empty()),
            });
        }
        targets
    }

    fn strategy(&mut self, p: &str, r: &RawRoute) -> Strategy {
        let name = r.strategy.as_deref().unwrap_or("weighted");
        if r.by.is_some() && name != "least-load" {
            self.err(
                format!("{p}.by"),
                "applies only to `strategy = \"least-load\"`",
            );
        }
        if r.affinity.is_some() && name != "affinity" {
            self.err(
                format!("{p}.affinity"),
                "applies only to `strategy = \"affinity\"`",
            );
        }
        match name {
            "weighted" => Strategy::Weighted,
            "least-load" => match r.by.as_deref() {
                None | Some("requests") => Strategy::LeastLoad,
                Some("tokens") => Strategy::LeastTokens,
                Some(other) => {
                    let msg =
                        format!("`{other}` is not a load measure: use `requests` or `tokens`");
                    self.err(format!("{p}.by"), msg);
                    Strategy::LeastLoad
                }
            },
            "latency" => Strategy::Latency,
            "cost" => Strategy::Cost,
            "affinity" => Strategy::Affinity(self.affinity(p, r)),
            other => {
                let msg = format!("`{other}` is not a strategy: use {STRATEGIES}");
                self.err(format!("{p}.strategy"), msg);
                Strategy::Weighted
            }
        }
    }

    fn affinity(&mut self, p: &str, r: &RawRoute) -> AffinityKey {
        let bytes = r.affinity_prompt_bytes.unwrap_or(1024);
        if bytes == 0 {
            self.err(
                format!("{p}.affinity_prompt_bytes"),
                "must be greater than 0",
            );
        }
        match r.affinity.as_deref() {
            None | Some("key") => AffinityKey::Key,
            Some("prompt") => AffinityKey::Prompt(bytes.max(1)),
            Some(h) if h.starts_with("header:") => {
                match http::HeaderName::from_bytes(h["header:".len()..].trim().as_bytes()) {
                    Ok(name) => AffinityKey::Header(name),
                    Err(_) => {
                        self.err(format!("{p}.affinity"), "not a valid header name");
                        AffinityKey::Key
                    }
                }
            }
            Some(other) => {
                let msg = format!("`{other}`: use `key`, `header:NAME` or `prompt`");
                self.err(format!("{p}.affinity"), msg);
                AffinityKey::Key
            }
        }
    }

    fn retry(&mut self, p: &str, r: RawRetry) -> RetryPolicy {
        let mut policy = RetryPolicy::default();
        if let Some(n) = r.attempts {
            if n == 0 {
                self.err(format!("{p}.attempts"), "must be at least 1");
            }
            policy.attempts = n.max(1);
        }
        if let Some(on) = r.on {
            (policy.on_connect, policy.on_timeout) = (false, false);
            policy.statuses.clear();
            for (j, item) in on.iter().enumerate() {
                match item.as_str() {
                    "connect" => policy.on_connect = true,
                    "timeout" => policy.on_timeout = true,
                    "4xx" => policy.statuses.extend(400..500),
                    "5xx" => policy.statuses.extend(500..600),
                    s => match s.parse::<u16>() {
                        Ok(code) if (400..=599).contains(&code) => policy.statuses.push(code),
                        _ => self.err(
                            format!("{p}.on[{j}]"),
                            format!("`{s}`: use `connect`, `timeout`, an HTTP error status (\"503\") or `5xx`"),
                        ),
                    },
                }
            }
        }
        let ms = |v: Option<u64>| v.map(Duration::from_millis);
        for (field, v) in [
            ("per_try_timeout_ms", r.per_try_timeout_ms),
            ("deadline_ms", r.deadline_ms),
        ] {
            if v == Some(0) {
                self.err(format!("{p}.{field}"), "must be greater than 0");
            }
        }
        policy.per_try_timeout = ms(r.per_try_timeout_ms);
        policy.deadline = ms(r.deadline_ms);
        policy.backoff = ms(r.backoff_ms).unwrap_or(policy.backoff);
        policy.backoff_max = ms(r.backoff_max_ms).unwrap_or(policy.backoff_max);
        policy
    }

    pub(super) fn balance(&mut self, raw: RawBalance) -> BalanceSettings {
        let region_header = raw.region_header.as_deref().and_then(|h| {
            http::HeaderName::from_bytes(h.as_bytes())
                .map_err(|_| self.err("balance.region_header", "not a valid header name"))
                .ok()
        });
        BalanceSettings {
            region_header,
            region: raw.region.filter(|r| !r.is_empty()).map(Into::into),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{AffinityKey, Config, Strategy};
    use std::time::Duration;

    fn load(route_extra: &str) -> Result<Config, Vec<crate::config::ConfigError>> {
        let src = format!(
            "[[backends]]\nname=\"a\"\nprovider=\"openai\"\nurl=\"http://127.0.0.1:1\"\n\
             [[routes]]\nmodels=[\"m\"]\ntargets=[{{backend=\"a\"}}]\n{route_extra}"
        );
        Config::from_str_with_env(&src, &|_| None)
    }

    #[test]
    fn retry_policy_defaults_and_overrides() {
        let c = load("").unwrap();
        let r = &c.routes[0].retry;
        assert_eq!(r.attempts, 3);
        assert!(r.on_connect && r.on_timeout);
        assert_eq!(r.statuses, [429, 500, 502, 503, 504]);
        let c = load("[routes.retry]\nattempts=2\non=[\"timeout\",\"429\"]\ndeadline_ms=900\n")
            .unwrap();
        let r = &c.routes[0].retry;
        assert_eq!((r.attempts, r.on_connect, r.on_timeout), (2, false, true));
        assert_eq!(r.statuses, [429]);
        assert_eq!(r.deadline, Some(Duration::from_millis(900)));
    }

    #[test]
    fn strategies_and_their_errors_are_located() {
        let c = load("strategy=\"affinity\"\naffinity=\"header:x-session\"\n").unwrap();
        let want = Strategy::Affinity(AffinityKey::Header("x-session".parse().unwrap()));
        assert_eq!(c.routes[0].strategy, want);
        let c = load("strategy=\"least-load\"\nby=\"tokens\"\n").unwrap();
        assert_eq!(c.routes[0].strategy, Strategy::LeastTokens);
        let e = load("strategy=\"fastest\"\n").unwrap_err();
        assert_eq!(e[0].path, "routes[0].strategy");
        assert_eq!(e[0].line, Some(8));
        let e = load("[routes.retry]\non=[\"sometimes\"]\n").unwrap_err();
        assert_eq!(e[0].path, "routes[0].retry.on[0]");
        let e = load("by=\"tokens\"\n").unwrap_err();
        assert_eq!(e[0].path, "routes[0].by");
    }
}
