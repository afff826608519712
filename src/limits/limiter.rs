//! Admission and settlement against the configured limits. A request reserves its estimate
//! on every counter that applies to it, atomically, before anything is sent; when it ends the
//! reservation is settled with what it actually used. So concurrent requests can overshoot a
//! limit by at most the one reservation that was admitted last, never by the requests in
//! flight.

use super::alerts::{Alerts, Notice};
use super::counters::{Adjustment, Charge, Counters, Standing, StoreError, Verdict};
use crate::clock::{self, Period};
pub use crate::config::{Cap, LimitSpec, Measure, Scope};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Who and what a request is, for limits. `None`: the request has no such attribute (a
/// `user` limit does not apply to a request without a user).
#[derive(Debug, Default, Clone, Copy)]
pub struct Subject<'a> {
    pub key: Option<&'a str>,
    pub user: Option<&'a str>,
    pub team: Option<&'a str>,
    pub model: Option<&'a str>,
    pub route: Option<&'a str>,
    pub backend: Option<&'a str>,
    /// The key's own limits (a managed key's), counted under the key's name.
    pub key_caps: &'a [Cap],
}

impl Subject<'_> {
    fn id(&self, scope: Scope) -> Option<&str> {
        match scope {
            Scope::Key => self.key,
            Scope::User => self.user,
            Scope::Team => self.team,
            Scope::Model => self.model,
            Scope::Route => self.route,
            Scope::Backend => self.backend,
            Scope::Global => Some("*"),
        }
    }
}

/// What a request is charged: its token and cost estimate (then its actual usage).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Demand {
    pub tokens: f64,
    pub cost: f64,
}

/// A held reservation, settled once when the request ends.
#[derive(Debug, Default)]
pub struct Reservation {
    held: Vec<Held>,
}

#[derive(Debug)]
struct Held {
    charge: Charge,
    measure: Measure,
    standing: Standing,
    scope: Scope,
    id: String,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub scope: Scope,
    pub id: String,
    pub cap: Cap,
    pub used: f64,
    pub requested: f64,
    /// Seconds until the window resets.
    pub retry_after: u64,
}

/// The limiter could not reach its store and the policy is `fail_closed`.
#[derive(Debug, Clone, PartialEq)]
pub enum Denied {
    Limit(Refusal),
    StoreDown,
}

pub struct Limiter {
    specs: Vec<LimitSpec>,
    counters: Arc<dyn Counters>,
    fail_open: bool,
    /// The store failed last time: log the outage once, and the recovery.
    down: AtomicBool,
    metrics: Option<Arc<crate::observe::Metrics>>,
    alerts: Option<Arc<Alerts>>,
}

impl Limiter {
    pub fn new(specs: Vec<LimitSpec>, counters: Arc<dyn Counters>, fail_open: bool) -> Limiter {
        Limiter {
            specs,
            counters,
            fail_open,
            down: AtomicBool::new(false),
            metrics: None,
            alerts: None,
        }
    }

    /// Sends budget notices through `alerts`.
    pub fn with_alerts(mut self, alerts: Arc<Alerts>) -> Limiter {
        self.alerts = Some(alerts);
        self
    }

    /// Counts store errors and shows the store's state in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::observe::Metrics>) -> Limiter {
        metrics.store_up(true);
        self.metrics = Some(metrics);
        self
    }

    /// Notes how a store call went; logs only when the store goes down or comes back.
    fn store_result<T>(&self, op: &str, r: &Result<T, StoreError>) {
        let failed = r.is_err();
        if let (Err(e), Some(m)) = (r, &self.metrics) {
            m.store_error(op);
            log::debug!("limits: {op}: {e}");
        }
        if self.down.swap(failed, Ordering::Relaxed) != failed {
            if let Some(m) = &self.metrics {
                m.store_up(!failed);
            }
            match r {
                Err(e) => log::error!("limits: {e}; applying {} until it is back", self.policy()),
                Ok(_) => log::warn!("limits: the store is reachable again"),
            }
        }
    }

    /// Takes on what the running limiter knows of the store (a config reload).
    pub fn carry_health(&mut self, prev: &Limiter) {
        self.down.store(prev.store_down(), Ordering::Relaxed);
    }

    /// The store's last call failed (readiness).
    pub fn store_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Whether any limit has `scope` (`backend` limits are checked per target).
    pub fn has(&self, scope: Scope) -> bool {
        self.specs.iter().any(|s| s.scope == scope)
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Whether its counters are a round trip away (Redis).
    pub fn remote(&self) -> bool {
        self.counters.remote()
    }

    /// Whether any limit (of the backend scope or the others) applies to `who`: requests no
    /// limit concerns skip the estimate.
    pub fn applies(&self, who: &Subject<'_>, backend_only: bool) -> bool {
        let own = !backend_only && who.key.is_some() && !who.key_caps.is_empty();
        own || self.specs.iter().any(|spec| {
            (spec.scope == Scope::Backend) == backend_only
                && who
                    .id(spec.scope)
                    .is_some_and(|id| spec.matching.as_deref().is_none_or(|m| m == id))
        })
    }

    /// Reserves `demand` on every limit of the given scopes that applies to `who`.
    pub async fn admit(
        &self,
        who: &Subject<'_>,
        backend_only: bool,
        demand: Demand,
    ) -> Result<Reservation, Denied> {
        // The charges beside what they are for: they go to the store, then into the
        // reservation, without a copy of their names.
        let (mut charges, mut scopes) = (Vec::new(), Vec::new());
        for (scope, id, cap, own) in self.caps_for(who, backend_only) {
            let amount = match cap.measure {
                Measure::Requests | Measure::Concurrent => 1.0,
                Measure::Tokens => demand.tokens,
                Measure::Cost => demand.cost,
            };
            let mut name = counter_name(scope, id, cap);
            if own {
                // Apart from a `[[limits]] scope = "key"` counter of the same period.
                name.push_str(":own");
            }
            charges.push(Charge {
                name,
                period: cap.period,
                limit: cap.limit,
                amount,
            });
            scopes.push((scope, id, cap));
        }
        if charges.is_empty() {
            return Ok(Reservation::default());
        }
        let now = clock::now();
        let verdict = self.counters.reserve(now, &charges).await;
        self.store_result("reserve", &verdict);
        match verdict {
            Ok(Verdict::Admitted(standings)) => Ok(Reservation {
                held: (charges.into_iter().zip(&scopes).zip(standings))
                    .map(|((charge, &(scope, id, cap)), standing)| Held {
                        charge,
                        measure: cap.measure,
                        standing,
                        scope,
                        id: id.to_string(),
                    })
                    .collect(),
            }),
            Ok(Verdict::Refused { index, standing }) => {
                let (scope, id, cap) = scopes[index];
                Err(Denied::Limit(Refusal {
                    scope,
                    id: id.to_string(),
                    cap: cap.clone(),
                    used: standing.used,
                    requested: charges[index].amount,
                    retry_after: (standing.reset_at - now).max(1) as u64,
                }))
            }
            Err(_) => {
                if self.fail_open {
                    Ok(Reservation::default())
                } else {
                    Err(Denied::StoreDown)
                }
            }
        }
    }

    /// Every cap that counts `who`: the configured limits of the given scopes that match it,
    /// then (outside the backend pass) its key's own.
    fn caps_for<'s>(
        &'s self,
        who: &'s Subject<'s>,
        backend_only: bool,
    ) -> impl Iterator<Item = (Scope, &'s str, &'s Cap, bool)> {
        let configured = self.specs.iter().filter_map(move |spec| {
            let id = who.id(spec.scope)?;
            let fits = (spec.scope == Scope::Backend) == backend_only
                && spec.matching.as_deref().is_none_or(|m| m == id);
            fits.then_some((spec.scope, id, &spec.caps[..], false))
        });
        let own = who
            .key
            .filter(|_| !backend_only)
            .map(|k| (Scope::Key, k, who.key_caps, true));
        configured
            .chain(own)
            .flat_map(|(scope, id, caps, own)| caps.iter().map(move |c| (scope, id, c, own)))
    }

    fn policy(&self) -> &'static str {
        if self.fail_open {
            "fail_open"
        } else {
            "fail_closed"
        }
    }

    /// Settles `r` with what the request used (zero for a request that never got a reply),
    /// then checks the budgets it touched against the alert thresholds.
    pub async fn settle(&self, r: Reservation, actual: Demand) {
        let (adjustments, budgets) = self.adjustments(&r, actual);
        if adjustments.is_empty() {
            return;
        }
        let adjusted = self.counters.adjust(&adjustments).await;
        self.store_result("settle", &adjusted);
        if let (Ok(values), Some(alerts)) = (adjusted, &self.alerts) {
            for (i, h) in budgets {
                let spent = values.get(i).copied().unwrap_or(0.0);
                self.check_budget(alerts, &r.held[h], spent).await;
            }
        }
    }

    /// Settles `r` without waiting when nothing needs the counters' values (no budget alerts)
    /// and the store can take the adjustments for later (Redis: they go with its next call);
    /// else gives `r` back, to be settled with [`Limiter::settle`].
    pub fn settle_later(&self, r: Reservation, actual: Demand) -> Option<Reservation> {
        if self.alerts.is_some() {
            return Some(r);
        }
        let (adjustments, _) = self.adjustments(&r, actual);
        if adjustments.is_empty() {
            return None;
        }
        self.counters.adjust_later(adjustments).err().map(|_| r)
    }

    /// What settling `r` changes, and which of those changes are budgets (for the alerts: the
    /// adjustment's index and the held charge's).
    fn adjustments(
        &self,
        r: &Reservation,
        actual: Demand,
    ) -> (Vec<Adjustment>, Vec<(usize, usize)>) {
        let mut adjustments = Vec::new();
        let mut budgets = Vec::new();
        for (j, h) in r.held.iter().enumerate() {
            let delta = match h.measure {
                Measure::Requests => continue,
                Measure::Concurrent => -1.0,
                Measure::Tokens => actual.tokens - h.charge.amount,
                Measure::Cost => actual.cost - h.charge.amount,
            };
            if delta == 0.0 && h.measure != Measure::Cost {
                continue;
            }
            adjustments.push(Adjustment {
                name: h.charge.name.clone(),
                period: h.charge.period,
                window_start: h.standing.window_start,
                delta,
            });
            if h.measure == Measure::Cost {
                budgets.push((adjustments.len() - 1, j));
            }
        }
        (adjustments, budgets)
    }

    /// Sends a notice for each threshold `spent` has reached, once per period.
    async fn check_budget(&self, alerts: &Alerts, h: &Held, spent: f64) {
        let limit = h.charge.limit;
        for &t in &alerts.settings.thresholds {
            if limit <= 0.0 || spent < t * limit {
                continue;
            }
            let mark = format!("alert:{t}:{}", h.charge.name);
            let now = clock::now();
            if !matches!(
                self.counters.once(&mark, h.charge.period, now).await,
                Ok(true)
            ) {
                continue;
            }
            let budget = match h.charge.period {
                Period::Month => "cost_per_month_usd",
                _ => "cost_per_day_usd",
            };
            alerts.notify(Notice {
                kind: "budget_threshold",
                scope: h.scope.name(),
                id: h.id.clone(),
                budget,
                limit_usd: limit,
                spent_usd: spent,
                threshold: t,
                period_start: crate::clock::format_rfc3339_ms(h.standing.window_start * 1000),
                ts: crate::clock::now_rfc3339(),
            });
        }
    }
}

/// `scope:id:measure:period`, the counter's stable name (built without `format!`: it is
/// made for every charge of every request).
fn counter_name(scope: Scope, id: &str, cap: &Cap) -> String {
    let parts = [scope.name(), id, cap.measure.name(), cap.period.name()];
    let mut name = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            name.push(':');
        }
        name.push_str(p);
    }
    name
}

/// OpenAI's rate-limit headers: the tightest request and token limits of a reservation.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RateHeaders {
    pub requests: Option<Remaining>,
    pub tokens: Option<Remaining>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Remaining {
    pub limit: f64,
    pub remaining: f64,
    pub reset_in: u64,
}

impl Reservation {
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The rate-limit headers this reservation's counters give (not quotas or concurrency).
    pub fn headers(&self, now: i64) -> RateHeaders {
        let tightest = |m: Measure| {
            self.held
                .iter()
                .filter(|h| h.measure == m && h.charge.period != Period::Open)
                .map(|h| Remaining {
                    limit: h.charge.limit,
                    remaining: (h.charge.limit - h.standing.used).max(0.0),
                    reset_in: (h.standing.reset_at - now).max(0) as u64,
                })
                .min_by(|a, b| a.remaining.total_cmp(&b.remaining))
        };
        RateHeaders {
            requests: tightest(Measure::Requests),
            tokens: tightest(Measure::Tokens),
        }
    }

    /// Merges another reservation (a backend's) into this one.
    pub fn absorb(&mut self, other: Reservation) {
        self.held.extend(other.held);
    }
}

/// A duration as OpenAI writes it in `x-ratelimit-reset-*`: `1s`, `6m0s`, `1h2m3s`.
pub fn reset_text(secs: u64) -> String {
    let mut out = String::with_capacity(12);
    write_reset(secs, &mut out);
    out
}

/// [`reset_text`] written into `out` (a response's header values share one buffer).
pub fn write_reset(secs: u64, out: &mut impl std::fmt::Write) {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut n = itoa::Buffer::new();
    // Writing to a String or a BytesMut cannot fail.
    if h > 0 {
        let _ = out.write_str(n.format(h));
        let _ = out.write_char('h');
    }
    if h > 0 || m > 0 {
        let _ = out.write_str(n.format(m));
        let _ = out.write_char('m');
    }
    let _ = out.write_str(n.format(s));
    let _ = out.write_char('s');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::counters::Local;

    fn rpm(limit: f64) -> Cap {
        Cap {
            measure: Measure::Requests,
            period: Period::Minute,
            limit,
        }
    }

    #[tokio::test]
    async fn a_keys_own_caps_count_apart_from_key_limits_of_the_same_period() {
        let spec = LimitSpec {
            scope: Scope::Key,
            matching: None,
            caps: vec![rpm(3.0)],
        };
        let limiter = Limiter::new(vec![spec], Arc::new(Local::default()), false);
        let own = [rpm(2.0)];
        let who = Subject {
            key: Some("ci"),
            key_caps: &own,
            ..Default::default()
        };
        let plain = Subject {
            key: Some("other"),
            ..Default::default()
        };
        assert!(limiter.applies(&who, false) && !limiter.applies(&who, true));
        let d = Demand::default();
        // Each admission counts once on each counter: the own cap (2) refuses the third.
        for _ in 0..2 {
            let r = limiter.admit(&who, false, d).await.unwrap();
            assert_eq!(r.held.len(), 2);
        }
        match limiter.admit(&who, false, d).await {
            Err(Denied::Limit(r)) => assert_eq!((r.scope, r.cap.limit), (Scope::Key, 2.0)),
            other => panic!("expected the own cap to refuse, got {other:?}"),
        }
        // A key without caps of its own has only the configured limit.
        for _ in 0..3 {
            assert!(limiter.admit(&plain, false, d).await.is_ok());
        }
        assert!(limiter.admit(&plain, false, d).await.is_err());
    }

    #[test]
    fn reset_text_reads_like_openais() {
        assert_eq!(super::reset_text(7), "7s");
        assert_eq!(super::reset_text(360), "6m0s");
        assert_eq!(super::reset_text(3723), "1h2m3s");
    }
}
