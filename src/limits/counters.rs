//! Where limit counters live. [`Local`] keeps them in this process (exact, one lock held for a
//! few map lookups); the Redis store shares them across a fleet. Both reserve all of a
//! request's charges atomically: every counter has room, and then all are raised, or none is.

use crate::clock::Period;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

/// One counter a request is charged to.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    /// A stable name (`key:alice:tokens:minute`): state survives a reload by name.
    pub name: String,
    pub period: Period,
    pub limit: f64,
    pub amount: f64,
}

/// A counter's state after a reservation: the value counted and when its window ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing {
    pub used: f64,
    pub window_start: i64,
    pub reset_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Every charge fit; the standings in charge order.
    Admitted(Vec<Standing>),
    /// `index` did not fit (its standing without this request's amount); nothing was raised.
    Refused { index: usize, standing: Standing },
}

/// A settled difference: `delta` added to `name`'s window starting at `window_start`, if that
/// window is still the current one (a window that has rolled over is left alone).
#[derive(Debug, Clone, PartialEq)]
pub struct Adjustment {
    pub name: String,
    pub period: Period,
    pub window_start: i64,
    pub delta: f64,
}

#[derive(Debug, thiserror::Error)]
#[error("the limit store is unavailable: {0}")]
pub struct StoreError(pub String);

#[async_trait]
pub trait Counters: Send + Sync {
    async fn reserve(&self, now: i64, charges: &[Charge]) -> Result<Verdict, StoreError>;
    /// Applies the adjustments; each counter's value afterwards (0 for a gone window).
    async fn adjust(&self, adjustments: &[Adjustment]) -> Result<Vec<f64>, StoreError>;
    /// True the first time `name` is marked in the window of `period` holding `now`, across
    /// restarts (a durable period) and, with Redis, across the fleet.
    async fn once(&self, name: &str, period: Period, now: i64) -> Result<bool, StoreError>;

    /// Whether a call is a network round trip (Redis), worth keeping off a request's path.
    fn remote(&self) -> bool {
        false
    }

    /// Takes adjustments to apply soon, nobody waiting for the values (a remote store sends
    /// them with its next call), or gives them back when this store cannot.
    fn adjust_later(&self, adjustments: Vec<Adjustment>) -> Result<(), Vec<Adjustment>> {
        Err(adjustments)
    }
}

/// A counter's current window.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: i64,
    pub value: f64,
}

/// Counters in this process's memory.
#[derive(Default)]
pub struct Local {
    /// foldhash, randomly seeded (not SipHash): two to four lookups a limited request.
    map: Mutex<HashMap<String, Window, foldhash::fast::RandomState>>,
}

impl Local {
    /// Counters restored from durable storage (current windows only).
    pub fn with(windows: impl IntoIterator<Item = (String, Window)>) -> Local {
        Local {
            map: Mutex::new(windows.into_iter().collect()),
        }
    }

    /// The current windows of every counter (for persisting and the admin view).
    pub fn snapshot(&self) -> Vec<(String, Window)> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, w)| (k.clone(), *w)).collect()
    }

    fn reserve_now(&self, now: i64, charges: &[Charge]) -> Verdict {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let mut standings = Vec::with_capacity(charges.len());
        for (index, c) in charges.iter().enumerate() {
            let (start, end) = c.period.window(now);
            let used = map
                .get(&c.name)
                .filter(|w| w.start == start)
                .map_or(0.0, |w| w.value);
            let standing = Standing {
                used,
                window_start: start,
                reset_at: end,
            };
            if used + c.amount > c.limit {
                return Verdict::Refused { index, standing };
            }
            standings.push(standing);
        }
        for (c, s) in charges.iter().zip(standings.iter_mut()) {
            s.used += c.amount;
            let w = Window {
                start: s.window_start,
                value: s.used,
            };
            // The name is copied only the first time a counter is raised.
            match map.get_mut(&c.name) {
                Some(held) => *held = w,
                None => drop(map.insert(c.name.clone(), w)),
            }
        }
        Verdict::Admitted(standings)
    }
}

#[async_trait]
impl Counters for Local {
    async fn reserve(&self, now: i64, charges: &[Charge]) -> Result<Verdict, StoreError> {
        Ok(self.reserve_now(now, charges))
    }

    async fn adjust(&self, adjustments: &[Adjustment]) -> Result<Vec<f64>, StoreError> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let values = adjustments
            .iter()
            .map(
                |a| match map.get_mut(&a.name).filter(|w| w.start == a.window_start) {
                    Some(w) => {
                        w.value = (w.value + a.delta).max(0.0);
                        w.value
                    }
                    None => 0.0,
                },
            )
            .collect();
        Ok(values)
    }

    async fn once(&self, name: &str, period: Period, now: i64) -> Result<bool, StoreError> {
        let start = period.window(now).0;
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(name).is_some_and(|w| w.start == start) {
            return Ok(false);
        }
        map.insert(name.to_string(), Window { start, value: 1.0 });
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(name: &str, limit: f64, amount: f64) -> Charge {
        Charge {
            name: name.into(),
            period: Period::Minute,
            limit,
            amount,
        }
    }

    #[tokio::test]
    async fn all_or_nothing() {
        let c = Local::default();
        let both = [charge("a", 10.0, 4.0), charge("b", 5.0, 4.0)];
        assert!(matches!(
            c.reserve(60, &both).await.unwrap(),
            Verdict::Admitted(_)
        ));
        // `b` has no room: `a` is not raised either.
        match c.reserve(61, &both).await.unwrap() {
            Verdict::Refused { index, standing } => {
                assert_eq!((index, standing.used, standing.reset_at), (1, 4.0, 120));
            }
            v => panic!("{v:?}"),
        }
        let a = c.snapshot().into_iter().find(|(k, _)| k == "a").unwrap().1;
        assert_eq!(a.value, 4.0);
        // A new window starts from zero.
        assert!(matches!(
            c.reserve(120, &both).await.unwrap(),
            Verdict::Admitted(_)
        ));
    }

    #[tokio::test]
    async fn settlement_adjusts_only_the_same_window() {
        let c = Local::default();
        let Verdict::Admitted(s) = c.reserve(60, &[charge("a", 100.0, 50.0)]).await.unwrap() else {
            panic!()
        };
        let adj = |start, delta| Adjustment {
            name: "a".into(),
            period: Period::Minute,
            window_start: start,
            delta,
        };
        assert_eq!(
            c.adjust(&[adj(s[0].window_start, -30.0)]).await.unwrap(),
            [20.0]
        );
        assert_eq!(c.adjust(&[adj(0, 1000.0)]).await.unwrap(), [0.0]);
        assert!(c.once("alert:x:day", Period::Day, 100).await.unwrap());
        assert!(!c.once("alert:x:day", Period::Day, 200).await.unwrap());
        assert!(c
            .once("alert:x:day", Period::Day, 86_400 + 5)
            .await
            .unwrap());
        let a = c.snapshot().into_iter().find(|(k, _)| k == "a").unwrap();
        assert_eq!(a.1.value, 20.0);
    }
}
