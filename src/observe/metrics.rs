use crate::formats::Usage;
use arc_swap::ArcSwap;
use prometheus::{
    Counter, CounterVec, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, Opts, Registry, TextEncoder,
};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Label values are bounded: `model` is a configured name or glob, `backend` a configured name,
/// `status` an HTTP status; never anything a client can mint.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    upstream_failures: IntCounterVec,
    genai: GenAi,
    limit_rejections: IntCounterVec,
    store_errors: IntCounterVec,
    store_up: prometheus::IntGauge,
    /// Registered on the first scrape that finds the kept Responses in this process.
    kept_bytes: prometheus::IntGauge,
    budget_alerts: IntCounterVec,
    pub selection: super::selection::SelectionMetrics,
    pub config: super::config::ConfigMetrics,
    pub cache: super::cache::CacheMetrics,
}

/// The OpenTelemetry GenAI metrics, Prometheus-style, plus token and cost counters.
struct GenAi {
    token_usage: HistogramVec,
    tokens: IntCounterVec,
    estimated: IntCounterVec,
    ttft: HistogramVec,
    per_output_token: HistogramVec,
    cost: CounterVec,
    /// The series of each model and backend, resolved once: one map lookup per request
    /// instead of a label hash for each of its twelve series; read without a lock or a
    /// reference count shared by the worker threads (a new pair copies the map).
    resolved: ArcSwap<Resolved>,
}

/// Hashed with foldhash, randomly seeded, not SipHash: looked up on every request.
type Resolved = HashMap<String, HashMap<String, Arc<Series>, Fold>, Fold>;
type Fold = foldhash::fast::RandomState;

/// One model and backend's series, each made on its first use (a pair whose requests never
/// generated a reply, such as cache hits, has no token series).
#[derive(Default)]
struct Series {
    /// The request counter and duration of status 200.
    ok: OnceLock<(IntCounter, Histogram)>,
    usage: OnceLock<UsageSeries>,
}

/// One model and backend's GenAI series.
struct UsageSeries {
    usage_in: Histogram,
    usage_out: Histogram,
    /// input, cached_input, cache_creation, output, reasoning.
    tokens: [IntCounter; 5],
    estimated: IntCounter,
    ttft: Histogram,
    per_output_token: Histogram,
    cost: Counter,
}

impl UsageSeries {
    /// Tokens, cost and stream timings of a request that got a reply.
    fn observe(&self, p: &Produced) {
        let u = &p.usage;
        self.usage_in.observe(u.input as f64);
        self.usage_out.observe(u.output as f64);
        let counts = [
            u.input,
            u.cached_input,
            u.cache_creation,
            u.output,
            u.reasoning,
        ];
        for (c, n) in self.tokens.iter().zip(counts) {
            if n > 0 {
                c.inc_by(n);
            }
        }
        if p.estimated {
            self.estimated.inc();
        }
        if let Some(c) = p.cost_usd.filter(|c| *c > 0.0) {
            self.cost.inc_by(c);
        }
        if let Some(t) = p.ttft {
            self.ttft.observe(t);
        }
        if let (Some(rest), true) = (p.after_first, u.output > 1) {
            self.per_output_token.observe(rest / (u.output - 1) as f64);
        }
    }
}

const TOKEN_TYPES: [&str; 5] = [
    "input",
    "cached_input",
    "cache_creation",
    "output",
    "reasoning",
];

impl GenAi {
    fn new(r: &Registry) -> Result<GenAi, prometheus::Error> {
        let mb = ["model", "backend"];
        let token_usage = HistogramVec::new(
            HistogramOpts::new(
                "gen_ai_client_token_usage",
                "Tokens per request by token type (input, output), model and backend",
            )
            .buckets(prometheus::exponential_buckets(1.0, 4.0, 14)?),
            &["gen_ai_token_type", "model", "backend"],
        )?;
        let tokens = IntCounterVec::new(
            Opts::new(
                "tollgate_tokens_total",
                "Tokens billed by type (input, cached_input, cache_creation, output, reasoning)",
            ),
            &["type", "model", "backend"],
        )?;
        let estimated = IntCounterVec::new(
            Opts::new(
                "tollgate_estimated_usage_total",
                "Requests billed by the gateway's estimate (stream cut short, no usage reported)",
            ),
            &mb,
        )?;
        let ttft = HistogramVec::new(
            HistogramOpts::new(
                "gen_ai_server_time_to_first_token_seconds",
                "Time from request start to the first streamed bytes sent to the client",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                7.5, 10.0,
            ]),
            &mb,
        )?;
        let per_output_token = HistogramVec::new(
            HistogramOpts::new(
                "gen_ai_server_time_per_output_token_seconds",
                "Time per output token after the first, for streamed replies",
            )
            .buckets(vec![
                0.0001, 0.001, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0,
                2.5,
            ]),
            &mb,
        )?;
        let cost = CounterVec::new(
            Opts::new(
                "tollgate_cost_usd_total",
                "Spend in USD by model and backend",
            ),
            &mb,
        )?;
        r.register(Box::new(token_usage.clone()))?;
        r.register(Box::new(tokens.clone()))?;
        r.register(Box::new(estimated.clone()))?;
        r.register(Box::new(ttft.clone()))?;
        r.register(Box::new(per_output_token.clone()))?;
        r.register(Box::new(cost.clone()))?;
        Ok(GenAi {
            token_usage,
            tokens,
            estimated,
            ttft,
            per_output_token,
            cost,
            resolved: ArcSwap::from_pointee(HashMap::default()),
        })
    }

    /// Runs `f` on the series of `model` and `backend`, made on first use.
    fn with_series<R>(&self, model: &str, backend: &str, f: impl FnOnce(&Series) -> R) -> R {
        let map = self.resolved.load();
        if let Some(s) = map.get(model).and_then(|m| m.get(backend)) {
            return f(s);
        }
        drop(map);
        f(&self.resolve(model, backend))
    }

    fn usage(&self, model: &str, backend: &str) -> UsageSeries {
        let mb = [model, backend];
        UsageSeries {
            usage_in: self
                .token_usage
                .with_label_values(&["input", model, backend]),
            usage_out: self
                .token_usage
                .with_label_values(&["output", model, backend]),
            tokens: TOKEN_TYPES.map(|t| self.tokens.with_label_values(&[t, model, backend])),
            estimated: self.estimated.with_label_values(&mb),
            ttft: self.ttft.with_label_values(&mb),
            per_output_token: self.per_output_token.with_label_values(&mb),
            cost: self.cost.with_label_values(&mb),
        }
    }

    fn resolve(&self, model: &str, backend: &str) -> Arc<Series> {
        let series = Arc::new(Series::default());
        // Another thread may have made the pair meanwhile: the first one stays (the same
        // series either way: a label set is one series in its family).
        self.resolved.rcu(|m| {
            let mut m = Resolved::clone(m);
            m.entry(model.to_string())
                .or_default()
                .entry(backend.to_string())
                .or_insert_with(|| series.clone());
            m
        });
        series
    }
}

/// What one request produced, for the GenAI metrics.
pub struct Produced {
    pub usage: Usage,
    pub estimated: bool,
    pub cost_usd: Option<f64>,
    /// Streams: time to the first bytes, and from then to the end.
    pub ttft: Option<f64>,
    pub after_first: Option<f64>,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "tollgate_requests_total",
                "Client requests by model, backend and status",
            ),
            &["model", "backend", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "tollgate_request_duration_seconds",
                "Time from request start to the last byte sent, by model, backend and status",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0, 120.0, 300.0,
            ]),
            &["model", "backend", "status"],
        )?;
        let upstream_failures = IntCounterVec::new(
            Opts::new(
                "tollgate_upstream_failures_total",
                "Failed upstream attempts (connect error, timeout, retryable status), by backend and reason",
            ),
            &["backend", "reason"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(upstream_failures.clone()))?;
        let genai = GenAi::new(&registry)?;
        use super::selection::counter;
        let limit_rejections = counter(
            &registry,
            "tollgate_limit_rejections_total",
            "Requests refused by a limit, by scope (key, user, ..., store) and measure",
            &["scope", "measure"],
        )?;
        let store_errors = counter(
            &registry,
            "tollgate_store_errors_total",
            "Failed calls to the limit store, by operation (reserve, settle)",
            &["op"],
        )?;
        let store_up = prometheus::IntGauge::new(
            "tollgate_store_up",
            "1 when the limit store answered its last call, 0 when it failed",
        )?;
        registry.register(Box::new(store_up.clone()))?;
        let kept_bytes = prometheus::IntGauge::new(
            "tollgate_responses_kept_bytes",
            "Bytes this process holds for kept Responses (absent when Redis keeps them)",
        )?;
        let budget_alerts = counter(
            &registry,
            "tollgate_budget_alerts_total",
            "Budget threshold notices, by result (sent, failed)",
            &["result"],
        )?;
        let selection = super::selection::SelectionMetrics::new(&registry)?;
        let config = super::config::ConfigMetrics::new(&registry)?;
        let cache = super::cache::CacheMetrics::new(&registry)?;
        Ok(Metrics {
            registry,
            requests,
            duration,
            upstream_failures,
            genai,
            limit_rejections,
            store_errors,
            store_up,
            kept_bytes,
            budget_alerts,
            selection,
            config,
            cache,
        })
    }

    /// A finished request: its count and duration by status, and, when it got a reply that
    /// was generated (not a cache hit), its tokens, cost and stream timings.
    pub fn observe(
        &self,
        (model, backend): (&str, &str),
        status: u16,
        seconds: f64,
        produced: Option<&Produced>,
    ) {
        self.genai.with_series(model, backend, |s| {
            let (count, duration) = match status {
                200 => s.ok.get_or_init(|| self.by_status(model, backend, status)),
                _ => &self.by_status(model, backend, status),
            };
            count.inc();
            duration.observe(seconds);
            if let Some(p) = produced {
                let usage = s.usage.get_or_init(|| self.genai.usage(model, backend));
                usage.observe(p);
            }
        });
    }

    fn by_status(&self, model: &str, backend: &str, status: u16) -> (IntCounter, Histogram) {
        let mut digits = itoa::Buffer::new();
        let labels = [model, backend, digits.format(status)];
        let count = self.requests.with_label_values(&labels);
        (count, self.duration.with_label_values(&labels))
    }

    pub fn budget_alert(&self, sent: bool) {
        let result = if sent { "sent" } else { "failed" };
        self.budget_alerts.with_label_values(&[result]).inc();
    }

    pub fn store_error(&self, op: &str) {
        self.store_errors.with_label_values(&[op]).inc();
    }

    pub fn store_up(&self, up: bool) {
        self.store_up.set(i64::from(up));
    }

    pub fn limit_rejection(&self, scope: &str, measure: &str) {
        self.limit_rejections
            .with_label_values(&[scope, measure])
            .inc();
    }

    pub fn upstream_failure(&self, backend: &str, reason: &str) {
        self.upstream_failures
            .with_label_values(&[backend, reason])
            .inc();
    }

    /// What the kept Responses hold in this process now (`None`: another store keeps them,
    /// and the gauge is not shown).
    pub fn kept_responses(&self, bytes: Option<usize>) {
        let Some(b) = bytes else { return };
        self.kept_bytes.set(i64::try_from(b).unwrap_or(i64::MAX));
        // Registered once; a second registration is refused (AlreadyReg) and changes nothing.
        let _ = self.registry.register(Box::new(self.kept_bytes.clone()));
    }

    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        // Encoding into a Vec cannot fail on I/O; a failure would only drop the scrape body.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(m: &Metrics, prefix: &str) -> String {
        let text = String::from_utf8(m.render()).unwrap();
        let found = text.lines().find(|l| l.starts_with(prefix));
        found
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .to_string()
    }

    #[test]
    fn kept_responses_bytes_show_only_when_this_process_keeps_them() {
        let m = Metrics::new().unwrap();
        m.kept_responses(None);
        let text = String::from_utf8(m.render()).unwrap();
        assert!(!text.contains("tollgate_responses_kept_bytes"), "{text}");
        m.kept_responses(Some(1234));
        m.kept_responses(Some(2048));
        assert_eq!(
            line(&m, "tollgate_responses_kept_bytes"),
            "tollgate_responses_kept_bytes 2048"
        );
    }

    #[test]
    fn one_observation_counts_the_request_and_what_it_generated() {
        let m = Metrics::new().unwrap();
        let produced = |input| Produced {
            usage: Usage {
                input,
                output: 5,
                ..Usage::default()
            },
            estimated: false,
            cost_usd: Some(0.5),
            ttft: None,
            after_first: None,
        };
        let mb = ("gpt", "b1");
        m.observe(mb, 200, 0.01, Some(&produced(7)));
        m.observe(mb, 200, 0.02, Some(&produced(3)));
        m.observe(mb, 502, 0.03, None);
        // A reply not generated (a cache hit): counted as a request, its tokens not.
        m.observe(("gpt", "b2"), 200, 0.01, None);
        let req = "tollgate_requests_total{backend=\"b1\",model=\"gpt\",status=";
        assert!(line(&m, &format!("{req}\"200\"}}")).ends_with(" 2"));
        assert!(line(&m, &format!("{req}\"502\"}}")).ends_with(" 1"));
        let dur =
            "tollgate_request_duration_seconds_count{backend=\"b1\",model=\"gpt\",status=\"200\"}";
        assert!(line(&m, dur).ends_with(" 2"));
        let input = "tollgate_tokens_total{backend=\"b1\",model=\"gpt\",type=\"input\"}";
        assert!(line(&m, input).ends_with(" 10"));
        let b2 = "tollgate_requests_total{backend=\"b2\",model=\"gpt\",status=\"200\"}";
        assert!(line(&m, b2).ends_with(" 1"));
        let text = String::from_utf8(m.render()).unwrap();
        assert!(
            !text.contains("tollgate_tokens_total{backend=\"b2\""),
            "{text}"
        );
    }
}
