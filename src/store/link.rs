//! The connection to one Redis, behind a circuit breaker. A call gets its budget
//! (`[store] timeout_ms`, [`DEFAULT_BUDGET`]); a
//! connection error, or [`TRIP_AFTER`] timeouts in a row, opens the breaker: the connection is
//! dropped, every call fails at once (so the `on_error` policy answers at full speed), and one
//! background probe reconnects with a growing back-off (100 ms to 2 s) and closes the breaker
//! when Redis answers `PING`. The first use waits for one connection attempt, so a gateway
//! that starts with Redis up never fails its first requests. Log lines never name the URL
//! (it may hold a password).

use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Longest a request waits on one Redis call by default (`[store] timeout_ms`).
pub const DEFAULT_BUDGET: Duration = Duration::from_millis(100);
/// Timeouts in a row that open the breaker (one slow call does not).
pub(super) const TRIP_AFTER: u32 = 3;
/// Connecting (and the probe's `PING`).
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Redis could not be reached or answered an error.
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct LinkError(pub String);

impl From<redis::RedisError> for LinkError {
    fn from(e: redis::RedisError) -> Self {
        LinkError(e.to_string())
    }
}

/// Cheap to clone: every clone shares the one connection and breaker.
#[derive(Clone)]
pub struct Link(Arc<Shared>);

struct Shared {
    client: redis::Client,
    /// Longest wait for one call.
    budget: Duration,
    /// `None` while the breaker is open (or before the first connection).
    conn: ArcSwapOption<MultiplexedConnection>,
    first: OnceCell<()>,
    probing: AtomicBool,
    timeouts: AtomicU32,
}

impl Link {
    pub fn new(url: &str) -> Result<Link, String> {
        Link::with_budget(url, DEFAULT_BUDGET)
    }

    /// A link whose calls wait at most `budget`.
    pub fn with_budget(url: &str, budget: Duration) -> Result<Link, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        Ok(Link(Arc::new(Shared {
            client,
            budget,
            conn: ArcSwapOption::empty(),
            first: OnceCell::new(),
            probing: AtomicBool::new(false),
            timeouts: AtomicU32::new(0),
        })))
    }

    /// The shared connection; `Err` at once while the breaker is open.
    pub async fn connection(&self) -> Result<MultiplexedConnection, LinkError> {
        let s = &self.0;
        if let Some(c) = s.conn.load_full() {
            return Ok((*c).clone());
        }
        if !s.first.initialized() {
            s.first
                .get_or_init(|| async {
                    match connect(&s.client).await {
                        Ok(c) => s.conn.store(Some(Arc::new(c))),
                        Err(e) => {
                            log::error!("redis: unreachable ({e}); retrying in the background")
                        }
                    }
                })
                .await;
            if let Some(c) = s.conn.load_full() {
                return Ok((*c).clone());
            }
        }
        probe(s);
        Err(LinkError(
            "not connected (reconnecting in the background)".into(),
        ))
    }

    /// Runs one call within the budget and judges its outcome for the breaker.
    pub async fn within<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, LinkError> {
        let s = &self.0;
        match tokio::time::timeout(s.budget, call).await {
            Ok(Ok(v)) => {
                s.timeouts.store(0, Ordering::Relaxed);
                Ok(v)
            }
            Ok(Err(e)) => {
                if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
                    trip(s, "connection lost");
                }
                Err(e.into())
            }
            Err(_) => {
                if s.timeouts.fetch_add(1, Ordering::Relaxed) + 1 >= TRIP_AFTER {
                    trip(s, "calls time out");
                }
                Err(LinkError(format!("no answer within {:?}", s.budget)))
            }
        }
    }
}

async fn connect(client: &redis::Client) -> redis::RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_response_timeout(CONNECT_TIMEOUT);
    let mut c = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    redis::cmd("PING").query_async::<()>(&mut c).await?;
    Ok(c)
}

/// Opens the breaker (once per outage) and starts the probe.
fn trip(s: &Arc<Shared>, why: &str) {
    if s.conn.swap(None).is_some() {
        log::error!("redis: {why}; calls fail at once while one probe reconnects");
    }
    probe(s);
}

/// Starts the one background reconnect unless it runs already.
fn probe(s: &Arc<Shared>) {
    if s.probing.swap(true, Ordering::AcqRel) {
        return;
    }
    let (s, made) = (s.clone(), s.clone());
    reconnect(
        move || {
            let s = s.clone();
            async move { connect(&s.client).await }
        },
        move |c| {
            made.timeouts.store(0, Ordering::Relaxed);
            made.conn.store(Some(Arc::new(c)));
            made.probing.store(false, Ordering::Release);
        },
    );
}

/// The breaker's probe: tries `connect` with a growing back-off (100 ms to 2 s) until it
/// succeeds, then hands the connection to `closed` and logs that the breaker is closed.
pub(super) fn reconnect<C, E, F>(
    connect: impl Fn() -> F + Send + 'static,
    closed: impl FnOnce(C) + Send + 'static,
) where
    F: Future<Output = Result<C, E>> + Send,
    C: Send + 'static,
{
    tokio::spawn(async move {
        let mut wait = BACKOFF_FIRST;
        loop {
            tokio::time::sleep(wait).await;
            if let Ok(c) = connect().await {
                closed(c);
                log::warn!("redis: reachable again; the breaker is closed");
                return;
            }
            wait = (wait * 2).min(BACKOFF_MAX);
        }
    });
}
