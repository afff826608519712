//! Limit counters in one Redis shared by a fleet: a reservation is one Lua script that checks
//! every charge and then raises all of them (Redis runs a script atomically), a settlement is
//! another. Each window is its own key (`tollgate:{name}:{window start}`) that expires after
//! its window, so a rolled-over window is simply a different key.
//!
//! The connection ([`Link`], the kept responses' store has its own) sits behind a circuit
//! breaker: a call waits at most `[store] timeout_ms` (100 ms), and during an outage calls fail at once while one
//! probe reconnects, so the `on_error` policy answers at full speed and recovery needs nobody.
//! One Redis, not a cluster: a script's keys would span slots.

pub use super::link::{Link, LinkError};
use crate::clock::Period;
use crate::limits::counters::{Adjustment, Charge, Counters, Standing, StoreError, Verdict};
use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::Script;

/// How long an in-flight counter outlives its last change (a crashed instance's requests).
const OPEN_TTL: i64 = 3600;

/// KEYS: the counters; ARGV: limit, amount, ttl for each. Returns `{0, used...}` when every
/// charge fit (and raises them), else `{index, used}` of the first that did not.
const RESERVE: &str = r"
for i = 1, #KEYS do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used + tonumber(ARGV[3*i-1]) > tonumber(ARGV[3*i-2]) then
    return {i, tostring(used)}
  end
end
local out = {0}
for i = 1, #KEYS do
  out[i+1] = redis.call('INCRBYFLOAT', KEYS[i], ARGV[3*i-1])
  redis.call('EXPIRE', KEYS[i], ARGV[3*i])
end
return out
";

/// KEYS: the counters; ARGV: a delta for each. A key that has expired is left alone.
/// Returns each value afterwards.
const ADJUST: &str = r"
local out = {}
for i = 1, #KEYS do
  out[i] = '0'
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local v = tonumber(redis.call('INCRBYFLOAT', KEYS[i], ARGV[i]))
    if v < 0 then redis.call('SET', KEYS[i], '0', 'KEEPTTL'); v = 0 end
    out[i] = tostring(v)
  end
end
return out
";

pub struct RedisCounters {
    link: Link,
    reserve: Script,
    adjust: Script,
}

impl RedisCounters {
    /// Counters in the Redis at `url`, each call waiting at most `budget`.
    pub fn new(url: &str, budget: std::time::Duration) -> Result<RedisCounters, String> {
        Ok(RedisCounters {
            link: Link::with_budget(url, budget)?,
            reserve: Script::new(RESERVE),
            adjust: Script::new(ADJUST),
        })
    }

    async fn connection(&self) -> Result<MultiplexedConnection, StoreError> {
        self.link
            .connection()
            .await
            .map_err(|e| StoreError(e.to_string()))
    }
}

fn key(name: &str, start: i64) -> String {
    format!("tollgate:{name}:{start}")
}

fn ttl(period: Period, end: i64, now: i64) -> i64 {
    match period {
        Period::Open => OPEN_TTL,
        // A little past the window's end, for clocks a second apart.
        _ => (end - now).max(1) + 5,
    }
}

fn number(s: &str) -> f64 {
    s.parse().unwrap_or(0.0)
}

#[async_trait]
impl Counters for RedisCounters {
    fn remote(&self) -> bool {
        true
    }

    async fn reserve(&self, now: i64, charges: &[Charge]) -> Result<Verdict, StoreError> {
        let mut conn = self.connection().await?;
        let windows: Vec<(i64, i64)> = charges.iter().map(|c| c.period.window(now)).collect();
        let mut call = self.reserve.prepare_invoke();
        for (c, (start, end)) in charges.iter().zip(&windows) {
            call.key(key(&c.name, *start))
                .arg(c.limit)
                .arg(c.amount)
                .arg(ttl(c.period, *end, now));
        }
        let out: Vec<String> = (self.link)
            .within(call.invoke_async(&mut conn))
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        let standing = |i: usize, used: f64| Standing {
            used,
            window_start: windows[i].0,
            reset_at: windows[i].1,
        };
        match out.first().map(|s| s.parse::<usize>().unwrap_or(0)) {
            Some(0) => Ok(Verdict::Admitted(
                out[1..]
                    .iter()
                    .enumerate()
                    .map(|(i, v)| standing(i, number(v)))
                    .collect(),
            )),
            Some(i) if i <= charges.len() => {
                let used = out.get(1).map_or(0.0, |v| number(v));
                Ok(Verdict::Refused {
                    index: i - 1,
                    standing: standing(i - 1, used),
                })
            }
            _ => Err(StoreError("redis: unexpected script reply".into())),
        }
    }

    async fn adjust(&self, adjustments: &[Adjustment]) -> Result<Vec<f64>, StoreError> {
        let mut conn = self.connection().await?;
        let mut call = self.adjust.prepare_invoke();
        for a in adjustments {
            call.key(key(&a.name, a.window_start)).arg(a.delta);
        }
        let out: Vec<String> = (self.link)
            .within(call.invoke_async(&mut conn))
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(out.iter().map(|v| number(v)).collect())
    }

    async fn once(&self, name: &str, period: Period, now: i64) -> Result<bool, StoreError> {
        let mut conn = self.connection().await?;
        let (start, end) = period.window(now);
        let mut set_nx = redis::cmd("SET");
        set_nx.arg(key(name, start)).arg(1).arg("NX").arg("EX");
        set_nx.arg(ttl(period, end, now));
        let set: Option<String> = (self.link)
            .within(set_nx.query_async(&mut conn))
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(set.is_some())
    }
}
