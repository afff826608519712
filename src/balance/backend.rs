//! One backend's runtime state: requests and estimated tokens in flight against its cap,
//! latency (peak EWMA of time to first byte), passive ejection with a single trial request,
//! the active check's verdict, and cool-downs per upstream model. The request path reads only
//! atomics unless a backend is ejected or cooling down.

use crate::config::Ejection;
use crate::observe::BackendSeries;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Milliseconds on a monotonic clock that starts with the process (never 0).
pub fn now_ms() -> u64 {
    ms_at(Instant::now())
}

/// `t` on [`now_ms`]'s clock (an instant read for something else: no second clock read).
fn ms_at(t: Instant) -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(t.saturating_duration_since(start).as_millis()).unwrap_or(u64::MAX) + 1
}

/// Why a backend can or cannot take a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Avail {
    Ready,
    /// Its ejection ran out: one trial request decides.
    Trial,
    /// At its concurrency cap.
    Busy,
    /// Asked to wait (Retry-After) until this time (`now_ms`).
    Cooling(u64),
    /// Ejected until this time, or waiting for its trial request.
    Ejected(u64),
    /// Its active check fails.
    Down,
    /// Its credentials are not set.
    Disabled,
}

impl Avail {
    pub fn usable(self) -> bool {
        matches!(self, Avail::Ready | Avail::Trial)
    }

    pub fn label(self) -> &'static str {
        match self {
            Avail::Ready => "ready",
            Avail::Trial => "trial",
            Avail::Busy => "busy",
            Avail::Cooling(_) => "cooling_down",
            Avail::Ejected(_) => "ejected",
            Avail::Down => "unhealthy",
            Avail::Disabled => "disabled",
        }
    }
}

pub struct BackendState {
    pub name: Arc<str>,
    pub enabled: bool,
    in_flight: AtomicI64,
    tokens: AtomicI64,
    cap: i64,
    series: BackendSeries,
    latency: Mutex<Ewma>,
    failures: AtomicU32,
    /// `now_ms` the ejection ends (0: not ejected).
    ejected_until: AtomicU64,
    ejections_in_a_row: AtomicU32,
    trial_out: AtomicBool,
    policy: Ejection,
    /// The active check says the backend is down.
    probe_down: AtomicBool,
    /// Latest end of any cool-down (0: none), so the common case reads one atomic.
    cool_max: AtomicU64,
    cooldowns: Mutex<Vec<(Arc<str>, u64)>>,
    freed: Arc<Notify>,
}

/// A request in flight at a backend, counted until dropped.
pub struct InFlight {
    backend: Arc<BackendState>,
    tokens: i64,
    trial: bool,
}

impl InFlight {
    /// A reply came (any status but a retryable 5xx).
    pub fn succeeded(&self) {
        self.backend.succeeded(self.trial);
    }

    /// A connect error, timeout or retryable 5xx.
    pub fn failed(&self) {
        self.backend.failed(self.trial);
    }

    pub fn backend(&self) -> &BackendState {
        &self.backend
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let b = &self.backend;
        b.in_flight.fetch_sub(1, Relaxed);
        b.series.in_flight.dec();
        if self.tokens != 0 {
            b.tokens.fetch_sub(self.tokens, Relaxed);
        }
        if self.trial {
            b.trial_out.store(false, Relaxed);
        }
        if b.cap != i64::MAX {
            b.freed.notify_waiters();
        }
    }
}

/// Peak EWMA: a slower sample counts at once, a faster one decays in over `TAU`.
#[derive(Default, Clone, Copy)]
struct Ewma {
    ms: f64,
    at: u64,
}

const TAU_MS: f64 = 10_000.0;

impl BackendState {
    pub fn new(
        name: Arc<str>,
        enabled: bool,
        cap: Option<u32>,
        policy: Ejection,
        series: BackendSeries,
        freed: Arc<Notify>,
    ) -> BackendState {
        BackendState {
            name,
            enabled,
            in_flight: AtomicI64::new(0),
            tokens: AtomicI64::new(0),
            cap: cap.map_or(i64::MAX, i64::from),
            series,
            latency: Mutex::default(),
            failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            ejections_in_a_row: AtomicU32::new(0),
            trial_out: AtomicBool::new(false),
            policy,
            probe_down: AtomicBool::new(false),
            cool_max: AtomicU64::new(0),
            cooldowns: Mutex::default(),
            freed,
        }
    }

    /// Whether a request for upstream `model` may go here now.
    pub fn avail(&self, model: &str, now: u64) -> Avail {
        if !self.enabled {
            return Avail::Disabled;
        }
        if self.probe_down.load(Relaxed) {
            return Avail::Down;
        }
        let until = self.ejected_until.load(Relaxed);
        if until != 0 {
            if until > now || self.trial_out.load(Relaxed) {
                return Avail::Ejected(until);
            }
            return Avail::Trial;
        }
        if let Some(t) = self.cooling(model, now) {
            return Avail::Cooling(t);
        }
        if self.in_flight.load(Relaxed) >= self.cap {
            return Avail::Busy;
        }
        Avail::Ready
    }

    /// Whether `avail` needs the time: an ejection or a cool-down has been set. Otherwise any
    /// `now` gives the same answer, and callers pass 0 rather than read the clock (a read
    /// costs tens of nanoseconds in a VM, and this is every request).
    pub fn timed(&self) -> bool {
        self.ejected_until.load(Relaxed) != 0 || self.cool_max.load(Relaxed) != 0
    }

    fn cooling(&self, model: &str, now: u64) -> Option<u64> {
        if self.cool_max.load(Relaxed) <= now {
            return None;
        }
        let list = self.cooldowns.lock().unwrap_or_else(|p| p.into_inner());
        list.iter()
            .find(|(m, until)| &**m == model && *until > now)
            .map(|(_, until)| *until)
    }

    /// Counts a request here if the backend still can take it (its cap, its one trial).
    pub fn acquire(self: &Arc<Self>, model: &str, tokens: u64) -> Option<InFlight> {
        let now = if self.timed() { now_ms() } else { 0 };
        let trial = match self.avail(model, now) {
            Avail::Ready | Avail::Busy => false,
            Avail::Trial => true,
            _ => return None,
        };
        if trial && self.trial_out.swap(true, Relaxed) {
            return None;
        }
        if self.in_flight.fetch_add(1, Relaxed) >= self.cap {
            self.in_flight.fetch_sub(1, Relaxed);
            if trial {
                self.trial_out.store(false, Relaxed);
            }
            return None;
        }
        self.series.in_flight.inc();
        let tokens = i64::try_from(tokens).unwrap_or(i64::MAX / 2);
        if tokens != 0 {
            self.tokens.fetch_add(tokens, Relaxed);
        }
        Some(InFlight {
            backend: self.clone(),
            tokens,
            trial,
        })
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Relaxed)
    }

    pub fn outstanding_tokens(&self) -> i64 {
        self.tokens.load(Relaxed)
    }

    /// The latency estimate in milliseconds (0 until measured).
    pub fn latency_ms(&self) -> f64 {
        let e = *self.latency.lock().unwrap_or_else(|p| p.into_inner());
        e.ms
    }

    /// Time to the first byte of a reply that came.
    pub fn observe_latency(&self, d: Duration) {
        self.observe_latency_at(d, now_ms());
    }

    /// A sample from `start` to now: one clock read for the sample and its time.
    pub fn observe_latency_since(&self, start: Instant) {
        let end = Instant::now();
        self.observe_latency_at(end - start, ms_at(end));
    }

    /// [`Self::observe_latency`] of a sample that ended at `now` (see [`ms_at`]).
    fn observe_latency_at(&self, d: Duration, now: u64) {
        let sample = d.as_secs_f64() * 1000.0;
        let mut e = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        if e.at == 0 || sample > e.ms {
            e.ms = sample;
        } else {
            // Another thread may have stored a later `at` since `now` was read.
            let w = (-(now.saturating_sub(e.at) as f64) / TAU_MS).exp();
            e.ms = e.ms * w + sample * (1.0 - w);
        }
        e.at = e.at.max(now);
    }

    /// Failures are forgotten; a passed trial brings an ejected backend back.
    fn succeeded(&self, trial: bool) {
        if self.failures.load(Relaxed) != 0 {
            self.failures.store(0, Relaxed);
        }
        if trial && self.ejected_until.load(Relaxed) != 0 {
            self.ejected_until.store(0, Relaxed);
            self.ejections_in_a_row.store(0, Relaxed);
            self.set_healthy();
            log::warn!(
                "backend {}: trial request succeeded; back in service",
                self.name
            );
        }
    }

    /// Counts toward ejection; a failed trial ejects again for twice as long. Requests that
    /// were in flight when the backend was ejected do not count.
    fn failed(&self, trial: bool) {
        let ejected = self.ejected_until.load(Relaxed) != 0;
        if ejected && !trial {
            return;
        }
        let n = self.failures.fetch_add(1, Relaxed) + 1;
        let trips = self.policy.after != 0 && n >= self.policy.after;
        if !(trial || trips) {
            return;
        }
        let k = self.ejections_in_a_row.fetch_add(1, Relaxed).min(20);
        let span = self.policy.base.saturating_mul(1 << k).min(self.policy.max);
        let span_ms = u64::try_from(span.as_millis()).unwrap_or(u64::MAX / 2);
        self.ejected_until.store(now_ms() + span_ms, Relaxed);
        self.failures.store(0, Relaxed);
        self.series.ejections.inc();
        self.set_healthy();
        log::warn!(
            "backend {}: ejected for {} ms after {} consecutive failures",
            self.name,
            span_ms,
            if trial { 1 } else { n }
        );
    }

    /// The backend asked to be left alone for `d` for `model` (429/503 with Retry-After).
    pub fn cool_down(&self, model: &str, d: Duration) {
        let now = now_ms();
        let until = now + u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2);
        let mut list = self.cooldowns.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|(m, t)| *t > now && &**m != model);
        list.push((Arc::from(model), until));
        self.cool_max.fetch_max(until, Relaxed);
        self.series.cooldowns.inc();
    }

    /// The active check's verdict (after its thresholds).
    pub fn set_probe(&self, up: bool) {
        if self.probe_down.swap(!up, Relaxed) == up {
            log::warn!(
                "backend {}: active health check {}",
                self.name,
                if up {
                    "passes again"
                } else {
                    "fails; marked down"
                }
            );
        }
        self.set_healthy();
    }

    fn set_healthy(&self) {
        let ok = !self.probe_down.load(Relaxed) && self.ejected_until.load(Relaxed) == 0;
        self.series.healthy.set(i64::from(ok));
    }

    /// Whether this state can serve a backend with these settings as it is (a reload that
    /// left them alone keeps the very same state, in-flight counts included).
    pub fn same_settings(&self, enabled: bool, cap: Option<u32>, policy: Ejection) -> bool {
        self.enabled == enabled
            && self.cap == cap.map_or(i64::MAX, i64::from)
            && self.policy == policy
    }

    /// Takes on the health a backend of the same name had under the previous config (a reload
    /// that changed its settings): failures, ejection, the active check's verdict, cool-downs,
    /// latency. Requests in flight stay counted where they started.
    pub fn carry_from(&self, old: &BackendState) {
        let lat = *old.latency.lock().unwrap_or_else(|p| p.into_inner());
        *self.latency.lock().unwrap_or_else(|p| p.into_inner()) = lat;
        self.failures.store(old.failures.load(Relaxed), Relaxed);
        self.ejected_until
            .store(old.ejected_until.load(Relaxed), Relaxed);
        self.ejections_in_a_row
            .store(old.ejections_in_a_row.load(Relaxed), Relaxed);
        self.probe_down.store(old.probe_down.load(Relaxed), Relaxed);
        let cooling = old
            .cooldowns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.cool_max.store(old.cool_max.load(Relaxed), Relaxed);
        *self.cooldowns.lock().unwrap_or_else(|p| p.into_inner()) = cooling;
        self.set_healthy();
    }

    /// The active check's current verdict (a restarted probe loop starts from it).
    pub fn probe_up(&self) -> bool {
        !self.probe_down.load(Relaxed)
    }

    /// Takes on another process's state (`tollgate route` showing a running gateway's).
    pub fn restore(&self, v: &BackendView) {
        let now = now_ms();
        self.in_flight.store(v.in_flight, Relaxed);
        self.tokens.store(v.outstanding_tokens, Relaxed);
        *self.latency.lock().unwrap_or_else(|p| p.into_inner()) = Ewma {
            ms: v.latency_ms,
            at: now,
        };
        let until = v.ejected_for_ms.map_or(0, |ms| now + ms);
        self.ejected_until.store(until, Relaxed);
        self.probe_down.store(v.active_check == "down", Relaxed);
        for c in &v.cooldowns {
            self.cool_down(&c.model, Duration::from_millis(c.remaining_ms));
        }
    }

    /// The live state, for the admin listener and `tollgate route`.
    pub fn view(&self) -> BackendView {
        let now = now_ms();
        let left = |t: u64| t.saturating_sub(now);
        let cooldowns = self
            .cooldowns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, t)| *t > now)
            .map(|(m, t)| Cooldown {
                model: m.to_string(),
                remaining_ms: left(*t),
            })
            .collect();
        let until = self.ejected_until.load(Relaxed);
        BackendView {
            name: self.name.to_string(),
            state: self.avail("", now).label().into(),
            in_flight: self.in_flight(),
            max_concurrent: (self.cap != i64::MAX).then_some(self.cap),
            outstanding_tokens: self.outstanding_tokens(),
            latency_ms: (self.latency_ms() * 10.0).round() / 10.0,
            consecutive_failures: self.failures.load(Relaxed),
            ejected_for_ms: (until != 0).then(|| left(until)),
            ejections_in_a_row: self.ejections_in_a_row.load(Relaxed),
            active_check: if self.probe_down.load(Relaxed) {
                "down"
            } else {
                "up"
            }
            .into(),
            cooldowns,
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct BackendView {
    pub name: String,
    pub state: String,
    pub in_flight: i64,
    pub max_concurrent: Option<i64>,
    pub outstanding_tokens: i64,
    pub latency_ms: f64,
    pub consecutive_failures: u32,
    pub ejected_for_ms: Option<u64>,
    pub ejections_in_a_row: u32,
    pub active_check: String,
    pub cooldowns: Vec<Cooldown>,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Cooldown {
    pub model: String,
    pub remaining_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(cap: Option<u32>, after: u32) -> Arc<BackendState> {
        let m = crate::observe::Metrics::new().unwrap();
        let policy = Ejection {
            after,
            base: Duration::from_millis(40),
            max: Duration::from_millis(1000),
        };
        let series = m.selection.backend("b");
        Arc::new(BackendState::new(
            Arc::from("b"),
            true,
            cap,
            policy,
            series,
            Arc::default(),
        ))
    }

    #[test]
    fn the_cap_is_held_and_released() {
        let b = state(Some(1), 5);
        let one = b.acquire("m", 10).unwrap();
        assert_eq!(b.avail("m", now_ms()), Avail::Busy);
        assert!(b.acquire("m", 10).is_none());
        assert_eq!(b.outstanding_tokens(), 10);
        drop(one);
        assert_eq!((b.in_flight(), b.outstanding_tokens()), (0, 0));
        assert!(b.acquire("m", 0).is_some());
    }

    #[test]
    fn ejection_then_a_single_trial_then_back() {
        let b = state(None, 2);
        b.acquire("m", 0).unwrap().failed();
        assert_eq!(b.avail("m", now_ms()), Avail::Ready);
        b.acquire("m", 0).unwrap().failed();
        assert!(matches!(b.avail("m", now_ms()), Avail::Ejected(_)));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.avail("m", now_ms()), Avail::Trial);
        let trial = b.acquire("m", 0).unwrap();
        assert!(b.acquire("m", 0).is_none(), "only one trial at a time");
        // The trial fails: ejected again, for twice as long.
        trial.failed();
        drop(trial);
        std::thread::sleep(Duration::from_millis(50));
        assert!(matches!(b.avail("m", now_ms()), Avail::Ejected(_)));
        std::thread::sleep(Duration::from_millis(50));
        let trial = b.acquire("m", 0).unwrap();
        trial.succeeded();
        drop(trial);
        assert_eq!(b.avail("m", now_ms()), Avail::Ready);
    }

    #[test]
    fn cool_downs_are_per_model() {
        let b = state(None, 5);
        b.cool_down("m1", Duration::from_secs(5));
        assert!(matches!(b.avail("m1", now_ms()), Avail::Cooling(_)));
        assert_eq!(b.avail("m2", now_ms()), Avail::Ready);
    }

    #[test]
    fn the_clock_is_read_only_once_something_is_timed() {
        // Untimed, any `now` (the request path's 0) gives the answer the clock would.
        let b = state(None, 1);
        assert!(!b.timed());
        assert_eq!(b.avail("m", 0), b.avail("m", now_ms()));
        // A cool-down or an ejection makes it timed, and `acquire` (which reads the clock
        // only then) refuses as `avail` does.
        b.cool_down("m", Duration::from_secs(5));
        assert!(b.timed());
        assert!(b.acquire("m", 0).is_none());
        assert!(b.acquire("other", 0).is_some());
        let e = state(None, 1);
        e.acquire("m", 0).unwrap().failed();
        assert!(e.timed() && e.acquire("m", 0).is_none());
        let ahead = ms_at(Instant::now() + Duration::from_secs(1)) - now_ms();
        assert!((999..=1000).contains(&ahead), "{ahead}");
    }

    #[test]
    fn peak_ewma_jumps_up_and_decays_down() {
        let b = state(None, 5);
        b.observe_latency(Duration::from_millis(100));
        b.observe_latency(Duration::from_millis(300));
        assert_eq!(b.latency_ms(), 300.0);
        b.observe_latency(Duration::from_millis(10));
        assert!(b.latency_ms() > 250.0, "a fast sample decays in slowly");
    }

    #[test]
    fn a_sample_older_than_the_estimate_has_no_weight_and_no_overflow() {
        // Another thread stored its sample between this one's clock read and its lock.
        let b = state(None, 5);
        b.observe_latency(Duration::from_millis(100));
        b.latency.lock().unwrap().at = u64::MAX;
        b.observe_latency(Duration::from_millis(10));
        assert_eq!(b.latency_ms(), 100.0);
        assert_eq!(b.latency.lock().unwrap().at, u64::MAX);
    }
}
