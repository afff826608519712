//! Limit counters in one Redis shared by a fleet: a reservation is a Lua script that raises
//! every charge, all or nothing (Redis runs a script atomically, so nobody sees a raise that
//! is put back). Reservations and settlements wait in one queue and go together, many
//! requests' in one script call (group commit): a busy gateway makes one round trip for many
//! requests, and a request's settlement rides with the next reservation instead of a call of
//! its own. Each window is its own key (`tollgate:{name}:{window start}`) that expires after
//! its window, so a rolled-over window is simply a different key.
//!
//! No task sits between a request and Redis: whoever finds the connection ([`Line`]) free
//! takes what is queued, makes the call in its own task and answers the others; those who
//! queued meanwhile wait for the line in turn (the first of them makes the next call) or
//! for their answer, whichever comes first. An idle gateway's request thus makes its own
//! call with no hand-off at all. The line sits behind a circuit breaker (`line.rs`). One
//! Redis, not a cluster: a script's keys would span slots.

use super::line::{Held, Line};
pub use super::link::{Link, LinkError};
use super::resp::{Conn, Reply, RespError};
use crate::clock::Period;
use crate::limits::counters::{Adjustment, Charge, Counters, Standing, StoreError, Verdict};
use async_trait::async_trait;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{oneshot, Notify};

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
const GROUP_CALL: &str = include_str!("group_call.lua");

pub struct RedisCounters(Arc<Shared>);

struct Shared {
    line: Line,
    /// The script's SHA-1, for `EVALSHA`.
    sha: String,
    /// Reservations and settlements waiting for the next group call.
    queue: Mutex<Vec<Job>>,
    /// Wakes the task that sends the settlements nobody waits for (see [`flush`]), started
    /// on first use; `flushing` while it is on its way.
    wake: Notify,
    started: OnceLock<()>,
    flushing: AtomicBool,
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

/// One request's settlement, answered with each counter's value afterwards (unless nobody
/// waits).
struct Settle {
    adjustments: Vec<Adjustment>,
    reply: Option<oneshot::Sender<Result<Vec<f64>, StoreError>>>,
}

/// Requests' reservations and settlements in one script call at most.
const GROUP: usize = 64;
/// How long a settlement waits for a reservation to go with.
const RIDE: std::time::Duration = std::time::Duration::from_millis(2);

impl RedisCounters {
    /// Counters in the Redis at `url`, each call waiting at most `budget`.
    pub fn new(url: &str, budget: std::time::Duration) -> Result<RedisCounters, String> {
        Ok(RedisCounters(Arc::new(Shared {
            line: Line::new(url, budget)?,
            sha: redis::Script::new(GROUP_CALL).get_hash().to_owned(),
            queue: Mutex::new(Vec::new()),
            wake: Notify::new(),
            started: OnceLock::new(),
            flushing: AtomicBool::new(false),
        })))
    }
}

impl Shared {
    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Job>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job` and waits for its answer or for the line, whichever comes first; with
    /// the line, makes the next group call. A settlement (`ride`) first waits [`RIDE`] for
    /// a reservation whose call takes it along: a gateway serving one request after another
    /// then makes one call a request, not two (nobody waits on a settlement).
    async fn queued<T>(
        &self,
        job: Job,
        mut answer: oneshot::Receiver<Result<T, StoreError>>,
        ride: bool,
    ) -> Result<T, StoreError> {
        let gone = || StoreError("redis: the call was abandoned".into());
        self.queue().push(job);
        if ride {
            tokio::select! {
                biased;
                a = &mut answer => return a.unwrap_or_else(|_| Err(gone())),
                _ = tokio::time::sleep(RIDE) => {}
            }
        }
        // The line free, lead at once: the answer, sent before it is awaited, wakes nobody
        // (a task woken while it runs is polled again for nothing, and wakes an idle worker).
        if let Some(mut held) = self.line.try_hold() {
            self.call_group(&mut held).await;
        }
        loop {
            if let Ok(a) = answer.try_recv() {
                return a;
            }
            tokio::select! {
                biased;
                a = &mut answer => return a.unwrap_or_else(|_| Err(gone())),
                mut held = self.line.hold() => self.call_group(&mut held).await,
            }
        }
    }

    /// Takes up to [`GROUP`] queued jobs (none: they were all served) and makes their call.
    /// Its leader's task aborted mid-call, the group's requests get an error, as on a timeout
    /// (putting them back could apply a script that ran twice); nothing on a request's path
    /// cancels a reservation.
    async fn call_group(&self, held: &mut Held) {
        let (mut settles, mut reserves) = (Vec::new(), Vec::new());
        {
            let mut queue = self.queue();
            let n = queue.len().min(GROUP);
            sort(queue.drain(..n), &mut settles, &mut reserves);
        }
        if settles.is_empty() && reserves.is_empty() {
            return;
        }
        let result = self.group_call(held, &settles, &reserves).await;
        answer(result, settles, reserves);
    }

    async fn group_call(
        &self,
        held: &mut Held,
        settles: &[Settle],
        reserves: &[Reserve],
    ) -> Result<Vec<Reply>, StoreError> {
        let mut r = held
            .call(|c| write_group(c, "EVALSHA", &self.sha, settles, reserves))
            .await;
        if matches!(&r, Err(RespError::Server(e)) if e.starts_with("NOSCRIPT")) {
            r = (held.call(|c| write_group(c, "EVAL", GROUP_CALL, settles, reserves))).await;
        }
        match r {
            Ok(Reply::Array(items)) => Ok(items),
            Ok(_) => Err(StoreError("redis: unexpected script reply".into())),
            Err(e) => Err(StoreError(format!("redis: {e}"))),
        }
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
        self.0.queued(Job::Reserve(queued), answer, false).await
    }

    /// Queued like a reservation: it usually goes in the call of the next one.
    async fn adjust(&self, adjustments: &[Adjustment]) -> Result<Vec<f64>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let queued = Settle {
            adjustments: adjustments.to_vec(),
            reply: Some(reply),
        };
        self.0.queued(Job::Settle(queued), answer, true).await
    }

    /// Queued for the next group call, a reservation's or, [`RIDE`] later, the flush task's.
    fn adjust_later(&self, adjustments: Vec<Adjustment>) -> Result<(), Vec<Adjustment>> {
        let s = &self.0;
        let settle = Settle {
            adjustments,
            reply: None,
        };
        s.queue().push(Job::Settle(settle));
        if !s.flushing.swap(true, Ordering::SeqCst) {
            s.started
                .get_or_init(|| drop(tokio::spawn(flush(s.clone()))));
            s.wake.notify_one();
        }
        Ok(())
    }

    async fn once(&self, name: &str, period: Period, now: i64) -> Result<bool, StoreError> {
        let (start, end) = period.window(now);
        let (key, ttl) = (key(name, start), ttl(period, end, now));
        let mut held = self.0.line.hold().await;
        let set = held.call(|c| {
            let set = c.command(6).arg("SET").arg(&key).arg("1");
            set.arg("NX").arg("EX").arg(ttl);
        });
        match set.await {
            Ok(reply) => Ok(reply != Reply::Bulk(None)),
            Err(e) => Err(StoreError(format!("redis: {e}"))),
        }
    }
}

/// Sends the settlements nobody waits for that no reservation took along: woken by the
/// first of them, it waits [`RIDE`] and makes a call if any is still queued, until none is.
/// A busy gateway's settlements go with reservations; this task wakes once per [`RIDE`] at
/// most.
async fn flush(s: Arc<Shared>) {
    let settling = |s: &Shared| s.queue().iter().any(|j| matches!(j, Job::Settle(_)));
    loop {
        s.wake.notified().await;
        loop {
            tokio::time::sleep(RIDE).await;
            if settling(&s) {
                let mut held = s.line.hold().await;
                s.call_group(&mut held).await;
                continue;
            }
            // One queued between the look and this is taken on (or, if its sender found
            // `flushing` already false, it woke this task again).
            s.flushing.swap(false, Ordering::SeqCst);
            if !settling(&s) || s.flushing.swap(true, Ordering::SeqCst) {
                break;
            }
        }
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

/// Answers each request with its own part of a group call's reply.
fn answer(result: Result<Vec<Reply>, StoreError>, settles: Vec<Settle>, reserves: Vec<Reserve>) {
    let mut out = match &result {
        Ok(v) => v.iter(),
        Err(_) => [].iter(),
    };
    let mut failed = result.as_ref().err().map(|e| e.0.clone());
    let bad = || StoreError("redis: unexpected script reply".into());
    for s in settles {
        let values = match &failed {
            None => {
                let v: Option<Vec<f64>> = (out.by_ref().take(s.adjustments.len()))
                    .map(Reply::number)
                    .collect();
                v.filter(|v| v.len() == s.adjustments.len()).ok_or_else(bad)
            }
            Some(why) => Err(StoreError(why.clone())),
        };
        if let Err(e) = &values {
            failed.get_or_insert_with(|| e.0.clone());
        }
        match s.reply {
            Some(reply) => drop(reply.send(values)),
            None => {
                if let Err(e) = values {
                    log::debug!("limits: settle: {e}");
                }
            }
        }
    }
    for r in reserves {
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

/// The group call's command (see [`GROUP_CALL`] for its keys and arguments): `EVALSHA` and
/// the script's hash, or `EVAL` and the script.
fn write_group(c: &mut Conn, verb: &str, script: &str, settles: &[Settle], reserves: &[Reserve]) {
    let adjustments = || settles.iter().flat_map(|s| &s.adjustments);
    let charges = || reserves.iter().flat_map(|r| &r.charges);
    let (m, n) = (adjustments().count(), charges().count());
    let keys = m + n;
    let args = 1 + m + 1 + reserves.len() + 3 * n;
    let mut cmd = c.command(3 + keys + args).arg(verb).arg(script).arg(keys);
    for a in adjustments() {
        let mut start = itoa::Buffer::new();
        let start = start.format(a.window_start).as_bytes();
        cmd = cmd.joined(&[b"tollgate:", a.name.as_bytes(), b":", start]);
    }
    for (key, ..) in charges() {
        cmd = cmd.arg(key);
    }
    cmd = cmd.arg(m);
    for a in adjustments() {
        cmd = cmd.arg(a.delta);
    }
    cmd = cmd.arg(reserves.len());
    for r in reserves {
        cmd = cmd.arg(r.charges.len());
        for (_, limit, amount, ttl) in &r.charges {
            cmd = cmd.arg(*limit).arg(*amount).arg(*ttl);
        }
    }
}

impl Reserve {
    /// This request's verdict, read from its part of a group's reply.
    fn verdict(&self, out: &mut std::slice::Iter<Reply>) -> Result<Verdict, StoreError> {
        let bad = || StoreError("redis: unexpected script reply".into());
        let standing = |i: usize, used: &Reply| {
            Some(Standing {
                used: used.number()?,
                window_start: self.windows[i].0,
                reset_at: self.windows[i].1,
            })
        };
        let n = self.windows.len();
        match out.next() {
            Some(Reply::Int(0)) => (0..n)
                .map(|i| out.next().and_then(|v| standing(i, v)).ok_or_else(bad))
                .collect::<Result<_, _>>()
                .map(Verdict::Admitted),
            Some(&Reply::Int(i)) if (1..=n as i64).contains(&i) => {
                let i = i as usize - 1;
                let standing = out.next().and_then(|v| standing(i, v)).ok_or_else(bad)?;
                Ok(Verdict::Refused { index: i, standing })
            }
            _ => Err(bad()),
        }
    }
}
