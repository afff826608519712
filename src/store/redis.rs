//! Limit counters in one Redis shared by a fleet: a reservation is one Lua script that checks
//! every charge and then raises all of them (Redis runs a script atomically), a settlement is
//! another, made for many requests at once (group commit). Each window is its own key
//! (`tollgate:{name}:{window start}`) that expires after its window, so a rolled-over window
//! is simply a different key.
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
use std::sync::OnceLock;
use tokio::sync::{mpsc, oneshot};

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
    /// Settlements waiting for the next group call (started on first use, in the runtime).
    settle: OnceLock<mpsc::Sender<Settle>>,
}

/// One request's settlement, answered with each counter's value afterwards.
struct Settle {
    adjustments: Vec<Adjustment>,
    reply: oneshot::Sender<Result<Vec<f64>, StoreError>>,
}

/// Settlements queued at most; past it a settlement makes its own call.
const SETTLE_QUEUE: usize = 4096;
/// Requests' settlements in one script call at most.
const SETTLE_GROUP: usize = 64;

impl RedisCounters {
    /// Counters in the Redis at `url`, each call waiting at most `budget`.
    pub fn new(url: &str, budget: std::time::Duration) -> Result<RedisCounters, String> {
        Ok(RedisCounters {
            link: Link::with_budget(url, budget)?,
            reserve: Script::new(RESERVE),
            adjust: Script::new(ADJUST),
            settle: OnceLock::new(),
        })
    }

    /// The queue of the task that settles in groups: while one group's call is out, the
    /// settlements that arrive wait and go together in the next (group commit), so a busy
    /// gateway makes one settlement call for many requests and an idle one waits for nothing.
    fn settler(&self) -> &mpsc::Sender<Settle> {
        self.settle.get_or_init(|| {
            let (tx, rx) = mpsc::channel(SETTLE_QUEUE);
            tokio::spawn(settle_in_groups(rx, self.link.clone(), self.adjust.clone()));
            tx
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
        let (reply, answer) = oneshot::channel();
        let queued = Settle {
            adjustments: adjustments.to_vec(),
            reply,
        };
        match self.settler().try_send(queued) {
            Ok(()) => answer
                .await
                .unwrap_or_else(|_| Err(StoreError("the settlement task ended".into()))),
            Err(_) => adjust_now(&self.link, &self.adjust, adjustments.iter()).await,
        }
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

/// One ADJUST call for `adjustments`; each counter's value afterwards.
async fn adjust_now<'a>(
    link: &Link,
    script: &Script,
    adjustments: impl Iterator<Item = &'a Adjustment>,
) -> Result<Vec<f64>, StoreError> {
    let down = |e: LinkError| StoreError(e.to_string());
    let mut conn = link.connection().await.map_err(down)?;
    let mut call = script.prepare_invoke();
    for a in adjustments {
        call.key(key(&a.name, a.window_start)).arg(a.delta);
    }
    let out: Vec<String> = link
        .within(call.invoke_async(&mut conn))
        .await
        .map_err(down)?;
    Ok(out.iter().map(|v| number(v)).collect())
}

/// Settles what is queued, a group per call, and answers each request with its own values.
async fn settle_in_groups(mut queue: mpsc::Receiver<Settle>, link: Link, script: Script) {
    let mut group = Vec::with_capacity(SETTLE_GROUP);
    while queue.recv_many(&mut group, SETTLE_GROUP).await > 0 {
        let all = group.iter().flat_map(|s| s.adjustments.iter());
        let result = adjust_now(&link, &script, all).await;
        let mut values = match &result {
            Ok(v) => v.iter(),
            Err(_) => [].iter(),
        };
        for s in group.drain(..) {
            let mine = match &result {
                Ok(_) => Ok(values.by_ref().take(s.adjustments.len()).copied().collect()),
                Err(e) => Err(StoreError(e.0.clone())),
            };
            let _ = s.reply.send(mine);
        }
    }
}
