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

/// Many requests' reservations in one call, each all or nothing, in order. KEYS: every
/// request's counters in turn; ARGV: the number of requests, then for each its number of
/// counters and limit, amount, ttl for each counter (see [`reserve_ttl`]). Returns, request
/// after request, `0` and each counter's value when every charge fit (and raises them), else the index of the first
/// that did not and its value.
const RESERVE: &str = r"
local out, k, a = {}, 0, 2
for r = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[a]); a = a + 1
  local refused = 0
  for i = 1, n do
    local used = tonumber(redis.call('GET', KEYS[k+i]) or '0')
    if used + tonumber(ARGV[a+3*i-2]) > tonumber(ARGV[a+3*i-3]) then
      out[#out+1] = i; out[#out+1] = tostring(used); refused = i
      break
    end
  end
  if refused == 0 then
    out[#out+1] = 0
    for i = 1, n do
      local v = redis.call('INCRBYFLOAT', KEYS[k+i], ARGV[a+3*i-2])
      out[#out+1] = v
      -- A window's counter gets its expiry when created, not on every raise; an in-flight
      -- counter's (a negative ttl) is renewed by every change.
      local ttl = tonumber(ARGV[a+3*i-1])
      if ttl < 0 then
        redis.call('EXPIRE', KEYS[k+i], -ttl)
      elseif tonumber(v) == tonumber(ARGV[a+3*i-2]) then
        redis.call('EXPIRE', KEYS[k+i], ttl)
      end
    end
  end
  k = k + n; a = a + 3*n
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
    /// Reservations waiting for the next group call (started on first use, in the runtime).
    reservations: OnceLock<mpsc::Sender<Reserve>>,
    /// Settlements waiting for the next group call (likewise).
    settle: OnceLock<mpsc::Sender<Settle>>,
}

/// One request's reservation: its counters' keys with (limit, amount, ttl), their windows,
/// and where to answer.
struct Reserve {
    charges: Vec<(String, f64, f64, i64)>,
    windows: Vec<(i64, i64)>,
    reply: oneshot::Sender<Result<Verdict, StoreError>>,
}

/// One request's settlement, answered with each counter's value afterwards.
struct Settle {
    adjustments: Vec<Adjustment>,
    reply: oneshot::Sender<Result<Vec<f64>, StoreError>>,
}

/// Reservations or settlements queued at most; past it a request makes its own call.
const QUEUE: usize = 4096;
/// Requests' reservations or settlements in one script call at most.
const GROUP: usize = 64;

impl RedisCounters {
    /// Counters in the Redis at `url`, each call waiting at most `budget`.
    pub fn new(url: &str, budget: std::time::Duration) -> Result<RedisCounters, String> {
        Ok(RedisCounters {
            link: Link::with_budget(url, budget)?,
            reserve: Script::new(RESERVE),
            adjust: Script::new(ADJUST),
            reservations: OnceLock::new(),
            settle: OnceLock::new(),
        })
    }

    /// The queue of the task that reserves in groups, as [`Self::settler`] settles.
    fn reserver(&self) -> &mpsc::Sender<Reserve> {
        self.reservations.get_or_init(|| {
            let (tx, mut rx) = mpsc::channel(QUEUE);
            let (link, script) = (self.link.clone(), self.reserve.clone());
            tokio::spawn(async move {
                let mut group = Vec::with_capacity(GROUP);
                while rx.recv_many(&mut group, GROUP).await > 0 {
                    reserve_group(&link, &script, &mut group).await;
                }
            });
            tx
        })
    }

    /// The queue of the task that settles in groups: while one group's call is out, the
    /// settlements that arrive wait and go together in the next (group commit), so a busy
    /// gateway makes one settlement call for many requests and an idle one waits for nothing.
    fn settler(&self) -> &mpsc::Sender<Settle> {
        self.settle.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
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

/// The ttl argument of a reservation: a window's counter expires after its window (set when
/// created); an in-flight one, negative, an hour after each change.
fn reserve_ttl(period: Period, end: i64, now: i64) -> i64 {
    match period {
        Period::Open => -OPEN_TTL,
        _ => ttl(period, end, now),
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

    /// Queued for the next group call: while one group's call is out, the reservations that
    /// arrive wait and go together in the next, so a busy gateway makes one Redis round trip
    /// (and one script run) for many requests and an idle one waits for nothing.
    async fn reserve(&self, now: i64, charges: &[Charge]) -> Result<Verdict, StoreError> {
        let (reply, answer) = oneshot::channel();
        let windows: Vec<(i64, i64)> = charges.iter().map(|c| c.period.window(now)).collect();
        let queued = Reserve {
            charges: (charges.iter().zip(&windows))
                .map(|(c, &(start, end))| {
                    (
                        key(&c.name, start),
                        c.limit,
                        c.amount,
                        reserve_ttl(c.period, end, now),
                    )
                })
                .collect(),
            windows,
            reply,
        };
        if let Err(full) = self.reserver().try_send(queued) {
            let mut alone = vec![full.into_inner()];
            reserve_group(&self.link, &self.reserve, &mut alone).await;
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError("the reservation task ended".into())))
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

/// One RESERVE call for `group`, each request answered with its own verdict.
async fn reserve_group(link: &Link, script: &Script, group: &mut Vec<Reserve>) {
    let result = reserve_call(link, script, group).await;
    let mut out = match &result {
        Ok(v) => v.iter(),
        Err(_) => [].iter(),
    };
    let mut failed = result.as_ref().err().map(|e| e.0.clone());
    for r in group.drain(..) {
        let verdict = match &failed {
            None => r.verdict(&mut out),
            Some(why) => Err(StoreError(why.clone())),
        };
        // A reply out of step leaves every later request's part unreadable too.
        if let Err(e) = &verdict {
            failed.get_or_insert_with(|| e.0.clone());
        }
        let _ = r.reply.send(verdict);
    }
}

async fn reserve_call(
    link: &Link,
    script: &Script,
    group: &[Reserve],
) -> Result<Vec<String>, StoreError> {
    let down = |e: LinkError| StoreError(e.to_string());
    let mut conn = link.connection().await.map_err(down)?;
    let mut call = script.prepare_invoke();
    call.arg(group.len());
    for r in group {
        call.arg(r.charges.len());
        for (key, limit, amount, ttl) in &r.charges {
            call.key(key).arg(limit).arg(amount).arg(ttl);
        }
    }
    link.within(call.invoke_async(&mut conn))
        .await
        .map_err(down)
}

impl Reserve {
    /// This request's verdict, read from its part of a group's reply.
    fn verdict(&self, out: &mut std::slice::Iter<String>) -> Result<Verdict, StoreError> {
        let bad = || StoreError("redis: unexpected script reply".into());
        let standing = |i: usize, used: &String| Standing {
            used: number(used),
            window_start: self.windows[i].0,
            reset_at: self.windows[i].1,
        };
        match out.next().and_then(|s| s.parse::<usize>().ok()) {
            Some(0) => (0..self.windows.len())
                .map(|i| out.next().map(|v| standing(i, v)).ok_or_else(bad))
                .collect::<Result<_, _>>()
                .map(Verdict::Admitted),
            Some(i) if (1..=self.windows.len()).contains(&i) => {
                let used = out.next().ok_or_else(bad)?;
                Ok(Verdict::Refused {
                    index: i - 1,
                    standing: standing(i - 1, used),
                })
            }
            _ => Err(bad()),
        }
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
    let mut group = Vec::with_capacity(GROUP);
    while queue.recv_many(&mut group, GROUP).await > 0 {
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
