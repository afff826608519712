//! A backend's health settings: passive ejection, the active check, the concurrency cap.

use super::schema::{RawBackend, RawHealthCheck};
use super::Validator;
use std::time::Duration;

/// Passive ejection: after `after` consecutive failures a backend is left out for `base`,
/// doubling on each ejection in a row up to `max`; then one trial request decides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ejection {
    /// Consecutive failures that eject (0: never).
    pub after: u32,
    pub base: Duration,
    pub max: Duration,
}

/// An active probe, sent by a background task once per backend.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckSpec {
    pub method: http::Method,
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive passes that mark an unhealthy backend healthy.
    pub healthy_threshold: u32,
    /// Consecutive failures that mark a healthy backend unhealthy.
    pub unhealthy_threshold: u32,
}

impl Validator<'_, '_> {
    pub(super) fn ejection(&mut self, p: &str, b: &RawBackend) -> Ejection {
        let base = Duration::from_millis(b.eject_base_ms.unwrap_or(10_000));
        let max = Duration::from_millis(b.eject_max_ms.unwrap_or(300_000));
        if base.is_zero() {
            self.err(format!("{p}.eject_base_ms"), "must be greater than 0");
        }
        if max < base {
            self.err(
                format!("{p}.eject_max_ms"),
                "must be at least eject_base_ms",
            );
        }
        Ejection {
            after: b.eject_after_failures.unwrap_or(5),
            base,
            max,
        }
    }

    pub(super) fn health_check(&mut self, p: &str, h: &RawHealthCheck) -> HealthCheckSpec {
        let method = match h.method.as_deref().unwrap_or("GET") {
            "GET" => http::Method::GET,
            "HEAD" => http::Method::HEAD,
            other => {
                let msg = format!("`{other}`: use GET or HEAD");
                self.err(format!("{p}.health_check.method"), msg);
                http::Method::GET
            }
        };
        if !h.path.starts_with('/') || h.path.parse::<http::Uri>().is_err() {
            self.err(
                format!("{p}.health_check.path"),
                "must be a path starting with `/`",
            );
        }
        let interval = Duration::from_millis(h.interval_ms.unwrap_or(10_000));
        let timeout = Duration::from_millis(h.timeout_ms.unwrap_or(2_000));
        for (field, v) in [("interval_ms", interval), ("timeout_ms", timeout)] {
            if v.is_zero() {
                self.err(
                    format!("{p}.health_check.{field}"),
                    "must be greater than 0",
                );
            }
        }
        let threshold = |v: Option<u32>, d: u32| v.unwrap_or(d);
        let (up, down) = (
            threshold(h.healthy_threshold, 2),
            threshold(h.unhealthy_threshold, 3),
        );
        for (field, v) in [("healthy_threshold", up), ("unhealthy_threshold", down)] {
            if v == 0 {
                self.err(format!("{p}.health_check.{field}"), "must be at least 1");
            }
        }
        HealthCheckSpec {
            method,
            path: h.path.clone(),
            interval,
            timeout,
            healthy_threshold: up.max(1),
            unhealthy_threshold: down.max(1),
        }
    }
}
