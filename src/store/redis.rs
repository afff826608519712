//! Limit counters in one Redis shared by a fleet: a reservation is a Lua script that raises
//! every charge, all or nothing (Redis runs a script atomically, so nobody sees a raise that
//! is put back). Reservations and
//! settlements wait in one queue and go together, many requests' in one script call (group
//! commit): a busy gateway makes one round trip for many requests, and a request's settlement
//! rides with the next reservation instead of a call of its own. Each window is its own key
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

/// Many requests' settlements and reservations in one call. The settlements' adjustments go
/// first (a key that has expired is left alone and reads 0; none goes below 0), then the
/// reservations, each all or nothing, in order. KEYS: the adjusted counters, then every
/// request's counters in turn; ARGV: the number of adjustments and a delta for each, the number
/// of reservations, then for each its number of counters and limit, amount, ttl for each
/// counter (see [`reserve_ttl`]). Returns each adjusted counter's value, then, request after
/// request, `0` and each counter's value when every charge fit (and raises them), else the
/// index of the first that did not and its value.
///
/// Each counter is raised first and judged after (one command, not a read and then a write):
/// a request refused puts back what it raised, and a counter the call created (it has no
/// expiry yet: every counter gets one when created) is removed again, as is an expired one
/// that a settlement would have recreated.
const GROUP_CALL: &str = r"
local function created(key, v, by)
  return v == tonumber(by) and redis.call('TTL', key) == -1
end
local out, m = {}, tonumber(ARGV[1])
for i = 1, m do
  local v = tonumber(redis.call('INCRBYFLOAT', KEYS[i], ARGV[1+i]))
  if created(KEYS[i], v, ARGV[1+i]) then
    redis.call('DEL', KEYS[i]); v = 0
  elseif v < 0 then
    redis.call('SET', KEYS[i], '0', 'KEEPTTL'); v = 0
  end
  out[i] = tostring(v)
end
local k, a = m, m + 3
for r = 1, tonumber(ARGV[m+2]) do
  local n = tonumber(ARGV[a]); a = a + 1
  local raised, refused = {}, 0
  for i = 1, n do
    raised[i] = redis.call('INCRBYFLOAT', KEYS[k+i], ARGV[a+3*i-2])
    if tonumber(raised[i]) > tonumber(ARGV[a+3*i-3]) then refused = i; break end
  end
  if refused > 0 then
    for i = 1, refused do
      local key, by = KEYS[k+i], ARGV[a+3*i-2]
      local before = tonumber(raised[i]) - tonumber(by)
      if created(key, tonumber(raised[i]), by) then
        redis.call('DEL', key)
      else
        redis.call('SET', key, tostring(before), 'KEEPTTL')
      end
      if i == refused then out[#out+1] = i; out[#out+1] = tostring(before) end
    end
  else
    out[#out+1] = 0
    for i = 1, n do
      out[#out+1] = raised[i]
      -- A window's counter gets its expiry when created, not on every raise; an in-flight
      -- counter's (a negative ttl) is renewed by every change.
      local ttl = tonumber(ARGV[a+3*i-1])
      if ttl < 0 then
        redis.call('EXPIRE', KEYS[k+i], -ttl)
      elseif created(KEYS[k+i], tonumber(raised[i]), ARGV[a+3*i-2]) then
        redis.call('EXPIRE', KEYS[k+i], ttl)
      end
    end
  end
  k = k + n; a = a + 3*n
end
return out
";

pub struct RedisCounters {
    link: Link,
    script: Script,
    /// Reservations and settlements waiting for the next group call (the task that makes it
    /// is started on first use, in the runtime).
    queue: OnceLock<mpsc::Sender<Job>>,
}

/// What waits in the queue.
enum Job {
    Reserve(Reserve),
    Settle(Settle),
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

/// Reservations and settlements queued at most; past it a request makes its own call.
const QUEUE: usize = 4096;
/// Requests' reservations and settlements in one script call at most.
const GROUP: usize = 64;
/// How long settlements wait for a reservation to go with.
const RIDE: std::time::Duration = std::time::Duration::from_millis(2);

impl RedisCounters {
    /// Counters in the Redis at `url`, each call waiting at most `budget`.
    pub fn new(url: &str, budget: std::time::Duration) -> Result<RedisCounters, String> {
        Ok(RedisCounters {
            link: Link::with_budget(url, budget)?,
            script: Script::new(GROUP_CALL),
            queue: OnceLock::new(),
        })
    }

    /// The queue of the task that makes the group calls: while one call is out, what arrives
    /// waits and goes together in the next, so an idle gateway waits for nothing.
    fn queue(&self) -> &mpsc::Sender<Job> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(run_groups(rx, self.link.clone(), self.script.clone()));
            tx
        })
    }

    /// Queues `job` (or, the queue full, makes its call alone) and waits for its answer.
    async fn queued<T>(
        &self,
        job: Job,
        answer: oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if let Err(full) = self.queue().try_send(job) {
            let (mut settles, mut reserves) = (Vec::new(), Vec::new());
            sort(vec![full.into_inner()], &mut settles, &mut reserves);
            call_group(&self.link, &self.script, &mut settles, &mut reserves).await;
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError("the Redis counters' task ended".into())))
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
        self.queued(Job::Reserve(queued), answer).await
    }

    /// Queued like a reservation: it usually goes in the call of the next one.
    async fn adjust(&self, adjustments: &[Adjustment]) -> Result<Vec<f64>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let queued = Settle {
            adjustments: adjustments.to_vec(),
            reply,
        };
        self.queued(Job::Settle(queued), answer).await
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

/// Takes what is queued, a group per call. Settlements with no reservation to ride with wait
/// up to [`RIDE`] for one: a gateway serving one request after another then makes one call a
/// request, not two (a settlement only gives back what was over-reserved; nobody waits on it).
async fn run_groups(mut queue: mpsc::Receiver<Job>, link: Link, script: Script) {
    let mut jobs = Vec::with_capacity(GROUP);
    let (mut settles, mut reserves) = (Vec::new(), Vec::new());
    while queue.recv_many(&mut jobs, GROUP).await > 0 {
        sort(jobs.drain(..), &mut settles, &mut reserves);
        let until = tokio::time::Instant::now() + RIDE;
        while reserves.is_empty() && settles.len() < GROUP {
            let more = queue.recv_many(&mut jobs, GROUP - settles.len());
            match tokio::time::timeout_at(until, more).await {
                Ok(n) if n > 0 => sort(jobs.drain(..), &mut settles, &mut reserves),
                _ => break,
            }
        }
        call_group(&link, &script, &mut settles, &mut reserves).await;
    }
}

/// Puts each job with its kind.
fn sort(
    jobs: impl IntoIterator<Item = Job>,
    settles: &mut Vec<Settle>,
    reserves: &mut Vec<Reserve>,
) {
    for job in jobs {
        match job {
            Job::Reserve(r) => reserves.push(r),
            Job::Settle(s) => settles.push(s),
        }
    }
}

/// One call for `settles` and `reserves` (drained), each request answered with its own part.
async fn call_group(
    link: &Link,
    script: &Script,
    settles: &mut Vec<Settle>,
    reserves: &mut Vec<Reserve>,
) {
    let result = group_call(link, script, settles, reserves).await;
    let mut out = match &result {
        Ok(v) => v.iter(),
        Err(_) => [].iter(),
    };
    let mut failed = result.as_ref().err().map(|e| e.0.clone());
    let bad = || StoreError("redis: unexpected script reply".into());
    for s in settles.drain(..) {
        let values = match &failed {
            None => {
                let v: Vec<f64> = out
                    .by_ref()
                    .take(s.adjustments.len())
                    .map(|v| number(v))
                    .collect();
                (v.len() == s.adjustments.len())
                    .then_some(v)
                    .ok_or_else(bad)
            }
            Some(why) => Err(StoreError(why.clone())),
        };
        if let Err(e) = &values {
            failed.get_or_insert_with(|| e.0.clone());
        }
        let _ = s.reply.send(values);
    }
    for r in reserves.drain(..) {
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

async fn group_call(
    link: &Link,
    script: &Script,
    settles: &[Settle],
    reserves: &[Reserve],
) -> Result<Vec<String>, StoreError> {
    let down = |e: LinkError| StoreError(e.to_string());
    let mut conn = link.connection().await.map_err(down)?;
    let mut call = script.prepare_invoke();
    let adjustments = settles.iter().flat_map(|s| &s.adjustments);
    call.arg(adjustments.clone().count());
    for a in adjustments {
        call.key(key(&a.name, a.window_start)).arg(a.delta);
    }
    call.arg(reserves.len());
    for r in reserves {
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
