//! The limit counters' own Redis connection, held by one caller at a time (the request that
//! leads a group call, see `redis.rs`), behind the same circuit breaker as [`super::link`]:
//! a call waits at most its budget; a lost connection, or [`TRIP_AFTER`] timeouts in a row,
//! opens the breaker (calls fail at once) while one background probe reconnects with a
//! growing back-off and closes it when Redis answers. The first use waits for one attempt.
//! Log lines never name the URL (it may hold a password).

use super::link::{reconnect, CONNECT_TIMEOUT, TRIP_AFTER};
use super::resp::{Conn, Reply, RespError};
use redis::ConnectionInfo;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The connection and its breaker; [`Line::hold`] waits for a turn.
pub struct Line(tokio::sync::Mutex<Held>);

/// What the probe shares with the holder.
struct Probe {
    info: ConnectionInfo,
    /// A connection the probe made, taken by the next holder.
    made: Mutex<Option<Conn>>,
    running: AtomicBool,
}

/// The connection while held.
pub struct Held {
    /// `None` while the breaker is open (or before the first connection).
    conn: Option<Conn>,
    tried: bool,
    timeouts: u32,
    budget: Duration,
    /// The budget's timer, made on first use (in the runtime).
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    probe: Arc<Probe>,
}

impl Line {
    /// A line to the Redis at `url` whose calls wait at most `budget`.
    pub fn new(url: &str, budget: Duration) -> Result<Line, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let probe = Probe {
            info: client.get_connection_info().clone(),
            made: Mutex::new(None),
            running: AtomicBool::new(false),
        };
        Ok(Line(tokio::sync::Mutex::new(Held {
            conn: None,
            tried: false,
            timeouts: 0,
            budget,
            timer: None,
            probe: Arc::new(probe),
        })))
    }

    /// Waits for the line (callers get it in the order they asked).
    pub async fn hold(&self) -> tokio::sync::MutexGuard<'_, Held> {
        self.0.lock().await
    }

    /// The line, if nobody holds it or waits for it.
    pub fn try_hold(&self) -> Option<tokio::sync::MutexGuard<'_, Held>> {
        self.0.try_lock().ok()
    }
}

impl Held {
    /// Writes a command with `build` and reads its reply within the budget, and judges the
    /// outcome for the breaker. `Err` at once while the breaker is open.
    pub async fn call(&mut self, build: impl FnOnce(&mut Conn)) -> Result<Reply, RespError> {
        let budget = self.budget;
        build(self.connection().await?);
        // One timer, moved on by every call: a new one each call would wake the runtime's
        // driver to register it whenever no other timer is pending.
        let deadline = tokio::time::Instant::now() + budget;
        let timer =
            (self.timer).get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        timer.as_mut().reset(deadline);
        let Some(conn) = &mut self.conn else {
            return Err(RespError::Unavailable("not connected".into()));
        };
        let result = tokio::select! {
            biased;
            r = conn.call() => Some(r),
            _ = timer.as_mut() => None,
        };
        let usable = conn.usable();
        match result {
            Some(Ok(reply)) => {
                self.timeouts = 0;
                Ok(reply)
            }
            Some(Err(e)) => {
                if !usable {
                    self.trip("connection lost");
                }
                Err(e)
            }
            None => {
                self.timeouts += 1;
                if self.timeouts >= TRIP_AFTER || !usable {
                    self.trip("calls time out");
                }
                Err(RespError::Unavailable(format!(
                    "no answer within {budget:?}"
                )))
            }
        }
    }

    async fn connection(&mut self) -> Result<&mut Conn, RespError> {
        if self.conn.is_none() {
            self.conn = self
                .probe
                .made
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
        }
        if self.conn.is_none() && !self.tried {
            self.tried = true;
            match connect(&self.probe.info).await {
                Ok(c) => self.conn = Some(c),
                Err(e) => log::error!("redis: unreachable ({e}); retrying in the background"),
            }
        }
        match &mut self.conn {
            Some(c) => Ok(c),
            None => {
                probe(&self.probe);
                Err(RespError::Unavailable(
                    "not connected (reconnecting in the background)".into(),
                ))
            }
        }
    }

    /// Opens the breaker and starts the probe.
    fn trip(&mut self, why: &str) {
        if self.conn.take().is_some() {
            log::error!("redis: {why}; calls fail at once while one probe reconnects");
        }
        self.timeouts = 0;
        probe(&self.probe);
    }
}

async fn connect(info: &ConnectionInfo) -> Result<Conn, RespError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, Conn::connect(info)).await {
        Ok(c) => c,
        Err(_) => Err(RespError::Unavailable(format!(
            "no answer within {CONNECT_TIMEOUT:?}"
        ))),
    }
}

/// Starts the one background reconnect unless it runs already.
fn probe(p: &Arc<Probe>) {
    if p.running.swap(true, Ordering::AcqRel) {
        return;
    }
    let (p, made) = (p.clone(), p.clone());
    reconnect(
        move || {
            let p = p.clone();
            async move { connect(&p.info).await }
        },
        move |c| {
            *made.made.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
            made.running.store(false, Ordering::Release);
        },
    );
}
