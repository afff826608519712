use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// Label values are bounded: `model` is a configured name or glob, `backend` a configured name,
/// `status` an HTTP status; never anything a client can mint.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    upstream_failures: IntCounterVec,
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
        Ok(Metrics {
            registry,
            requests,
            duration,
            upstream_failures,
        })
    }

    pub fn observe_request(&self, model: &str, backend: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [model, backend, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.duration.with_label_values(&labels).observe(seconds);
    }

    pub fn upstream_failure(&self, backend: &str, reason: &str) {
        self.upstream_failures
            .with_label_values(&[backend, reason])
            .inc();
    }

    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        // Encoding into a Vec cannot fail on I/O; a failure would only drop the scrape body.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}
