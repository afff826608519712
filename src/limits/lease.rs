//! Leases on a shared store's counters: an instance raises a counter in the store by a request's
//! amount plus a small share of the limit (the lease) and counts later requests against what it
//! holds, here, until it runs out; only then does a request make a round trip. The store counts
//! every leased unit as used, so the fleet never admits past a limit: what leasing costs is
//! precision, not safety. A request the lease cannot cover asks the store for the rest; one the
//! store refuses with a lease is asked again without one, so near a limit every unit can still
//! be used. A settlement that gives back (an estimate above what was used) stays in the lease;
//! one that takes more comes out of it, or goes to the store when the lease is short.
//!
//! What an instance holds and has not used (at most about twice its lease, per counter) is lost
//! to the fleet until the window ends, and the `used` it reports lags what other instances
//! counted since its last round trip. In-flight counters (`Period::Open`) are never leased: a
//! lease there would hold requests that are not in flight.

use super::counters::{Adjustment, Charge, Counters, Standing, StoreError, Verdict};
use crate::clock::Period;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Counters of a shared store, leased: see the module's comment.
pub struct Leased<C> {
    inner: Arc<C>,
    /// The share of a counter's limit one round trip leases (0: none).
    share: f64,
    leases: Mutex<HashMap<String, Lease>>,
}

/// What this instance holds of one counter's current window.
#[derive(Debug, Clone, Copy)]
struct Lease {
    start: i64,
    /// Leased and not yet used.
    left: f64,
    /// The counter's value in the store at the last round trip (with every unit held here).
    seen: f64,
    /// The lease's size: holding more than twice it, the rest goes back.
    size: f64,
    /// The store refused a lease in this window: ask for requests alone until it ends.
    dry: bool,
}

impl Lease {
    fn empty(start: i64) -> Lease {
        Lease {
            start,
            left: 0.0,
            seen: 0.0,
            size: 0.0,
            dry: false,
        }
    }

    fn used(&self) -> f64 {
        (self.seen - self.left).max(0.0)
    }

    /// What goes back to the store when this holds more than twice its size.
    fn trim(&mut self) -> Option<f64> {
        (self.left > 2.0 * self.size).then(|| {
            let excess = self.left - self.size;
            self.left = self.size;
            self.seen -= excess;
            excess
        })
    }
}

/// One charge the lease did not cover: its index, what the lease gave towards it, and the
/// lease asked for with it.
#[derive(Clone, Copy)]
struct Ask {
    index: usize,
    took: f64,
    extra: f64,
}

impl<C: Counters + 'static> Leased<C> {
    /// `inner` leased by `share` of each limit a round trip (0 leases nothing).
    pub fn new(inner: Arc<C>, share: f64) -> Leased<C> {
        Leased {
            inner,
            share,
            leases: Mutex::new(HashMap::new()),
        }
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, HashMap<String, Lease>> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lease a round trip for `c` asks for: none for an in-flight counter, or when the
    /// share of the limit would not cover one more request like this one.
    fn size(&self, c: &Charge) -> f64 {
        let size = c.limit * self.share;
        let leasable = c.period != Period::Open && size > 0.0 && size >= c.amount;
        if leasable {
            size
        } else {
            0.0
        }
    }

    /// Takes what the leases cover: the standings of the charges fully covered (`None` for
    /// the others), and for each of the others what its lease gave and what to ask for.
    fn take(&self, now: i64, charges: &[Charge]) -> (Vec<Option<Standing>>, Vec<Ask>) {
        let mut leases = self.leases();
        let mut standings = Vec::with_capacity(charges.len());
        let mut asks = Vec::new();
        for (index, c) in charges.iter().enumerate() {
            let (start, end) = c.period.window(now);
            let lease = leases.get_mut(&c.name).filter(|l| l.start == start);
            match lease {
                // Nothing held covers nothing, a zero amount included: the store judges a
                // counter already over its limit.
                Some(l) if c.period != Period::Open && l.left > 0.0 && l.left >= c.amount => {
                    l.left -= c.amount;
                    standings.push(Some(Standing {
                        used: l.used(),
                        window_start: start,
                        reset_at: end,
                    }));
                }
                lease => {
                    let dry = lease.as_ref().is_some_and(|l| l.dry);
                    let took = lease.map_or(0.0, |l| std::mem::take(&mut l.left));
                    let extra = if dry { 0.0 } else { self.size(c) };
                    asks.push(Ask { index, took, extra });
                    standings.push(None);
                }
            }
        }
        (standings, asks)
    }

    /// Puts back what [`take`](Self::take) took, the request not admitted.
    fn put_back(&self, now: i64, charges: &[Charge], standings: &[Option<Standing>], asks: &[Ask]) {
        let mut leases = self.leases();
        let mut give = |c: &Charge, amount: f64| {
            let start = c.period.window(now).0;
            if let Some(l) = leases.get_mut(&c.name).filter(|l| l.start == start) {
                l.left += amount;
            }
        };
        for (c, s) in charges.iter().zip(standings) {
            if s.is_some() {
                give(c, c.amount);
            }
        }
        for a in asks {
            give(&charges[a.index], a.took);
        }
    }

    /// Asks the store for what the leases did not cover, with a lease each, then (refused)
    /// without.
    async fn ask(&self, now: i64, charges: &[Charge], asks: &[Ask]) -> Result<Verdict, StoreError> {
        let asked = |lease: bool| -> Vec<Charge> {
            (asks.iter())
                .map(|a| {
                    let c = &charges[a.index];
                    let extra = if lease { a.extra } else { 0.0 };
                    let amount = c.amount - a.took + extra;
                    Charge {
                        amount,
                        ..c.clone()
                    }
                })
                .collect()
        };
        let verdict = self.inner.reserve(now, &asked(true)).await?;
        match verdict {
            // Refused where it asked for a lease: asked again alone. (A counter asked alone
            // would be refused again.)
            Verdict::Refused { index, .. } if asks[index].extra > 0.0 => {
                self.dry(now, &charges[asks[index].index]);
                let exact = self.inner.reserve(now, &asked(false)).await?;
                Ok(self.record(charges, asks, exact, false))
            }
            v => Ok(self.record(charges, asks, v, true)),
        }
    }

    /// Marks `c`'s counter as having no room for a lease in this window.
    fn dry(&self, now: i64, c: &Charge) {
        let start = c.period.window(now).0;
        current(&mut self.leases(), &c.name, start).dry = true;
    }

    /// Records a round trip's leases; the verdict with its standings as this instance sees
    /// them (every unit it holds not counted as used), its index the request's own.
    fn record(&self, charges: &[Charge], asks: &[Ask], v: Verdict, leased: bool) -> Verdict {
        let standings = match v {
            Verdict::Refused { index, standing } => {
                let index = asks[index].index;
                return Verdict::Refused { index, standing };
            }
            Verdict::Admitted(s) => s,
        };
        let mut back = Vec::new();
        let mut leases = self.leases();
        let out = (asks.iter().zip(standings))
            .map(|(a, mut s)| {
                let c = &charges[a.index];
                let extra = if leased { a.extra } else { 0.0 };
                let held = (leases.get(&c.name)).is_some_and(|l| l.start == s.window_start);
                if !held && extra == 0.0 {
                    // Nothing held of this window, nothing leased now: nothing to record.
                    return s;
                }
                let l = current(&mut leases, &c.name, s.window_start);
                l.left += extra;
                l.seen = s.used;
                l.size = l.size.max(extra);
                if let Some(excess) = l.trim() {
                    back.push(back_adjustment(c, l.start, excess));
                }
                s.used = l.used();
                s
            })
            .collect();
        drop(leases);
        self.give_back(back);
        Verdict::Admitted(out)
    }

    /// Sends what a lease holds beyond its bound back to the store, nobody waiting.
    fn give_back(&self, back: Vec<Adjustment>) {
        if back.is_empty() {
            return;
        }
        if let Err(back) = self.inner.adjust_later(back) {
            let inner = self.inner.clone();
            tokio::spawn(async move {
                if let Err(e) = inner.adjust(&back).await {
                    log::debug!("limits: lease give-back: {e}");
                }
            });
        }
    }

    /// Settles what the leases can: a counter's value for each adjustment settled here, the
    /// others (and what goes back to the store) to send.
    fn settle_here(&self, adjustments: &[Adjustment]) -> (Vec<Option<f64>>, Vec<Adjustment>) {
        let mut leases = self.leases();
        let mut back = Vec::new();
        let values = (adjustments.iter())
            .map(|a| {
                let l = (leases.get_mut(&a.name))
                    .filter(|l| l.start == a.window_start && a.period != Period::Open)?;
                if a.delta > l.left {
                    // The store counts it; so does what this instance has seen.
                    l.seen += a.delta;
                    return None;
                }
                l.left -= a.delta;
                if let Some(excess) = l.trim() {
                    back.push(Adjustment {
                        delta: -excess,
                        ..a.clone()
                    });
                }
                Some(l.used())
            })
            .collect();
        (values, back)
    }
}

/// `name`'s lease of the window starting at `start`: the one held, else a new one in place of
/// none or of the last window's (gone with it).
fn current<'m>(leases: &'m mut HashMap<String, Lease>, name: &str, start: i64) -> &'m mut Lease {
    let l = leases
        .entry(name.to_string())
        .or_insert(Lease::empty(start));
    if l.start != start {
        *l = Lease::empty(start);
    }
    l
}

fn back_adjustment(c: &Charge, start: i64, excess: f64) -> Adjustment {
    Adjustment {
        name: c.name.clone(),
        period: c.period,
        window_start: start,
        delta: -excess,
    }
}

#[async_trait]
impl<C: Counters + 'static> Counters for Leased<C> {
    async fn reserve(&self, now: i64, charges: &[Charge]) -> Result<Verdict, StoreError> {
        let (standings, asks) = self.take(now, charges);
        if asks.is_empty() {
            return Ok(Verdict::Admitted(standings.into_iter().flatten().collect()));
        }
        let verdict = self.ask(now, charges, &asks).await;
        let asked = match verdict {
            Ok(Verdict::Admitted(s)) => s,
            refused_or_failed => {
                self.put_back(now, charges, &standings, &asks);
                return refused_or_failed;
            }
        };
        let mut asked = asked.into_iter();
        let all = standings
            .into_iter()
            .map(|s| s.or_else(|| asked.next()))
            .collect::<Option<Vec<_>>>();
        all.map(Verdict::Admitted)
            .ok_or_else(|| StoreError("the store answered for fewer counters".into()))
    }

    async fn adjust(&self, adjustments: &[Adjustment]) -> Result<Vec<f64>, StoreError> {
        let (mut values, back) = self.settle_here(adjustments);
        self.give_back(back);
        let rest: Vec<Adjustment> = (adjustments.iter().zip(&values))
            .filter(|(_, v)| v.is_none())
            .map(|(a, _)| a.clone())
            .collect();
        if !rest.is_empty() {
            let mut sent = self.inner.adjust(&rest).await?.into_iter();
            for v in values.iter_mut().filter(|v| v.is_none()) {
                *v = Some(sent.next().unwrap_or(0.0));
            }
        }
        Ok(values.into_iter().map(|v| v.unwrap_or(0.0)).collect())
    }

    async fn once(&self, name: &str, period: Period, now: i64) -> Result<bool, StoreError> {
        self.inner.once(name, period, now).await
    }

    fn remote(&self) -> bool {
        self.inner.remote()
    }

    fn adjust_later(&self, adjustments: Vec<Adjustment>) -> Result<(), Vec<Adjustment>> {
        let (values, mut back) = self.settle_here(&adjustments);
        let rest = (adjustments.into_iter().zip(values)).filter(|(_, v)| v.is_none());
        back.extend(rest.map(|(a, _)| a));
        self.give_back(back);
        Ok(())
    }
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
