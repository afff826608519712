//! The deadline for a request head. A connection's first head must arrive whole within
//! `header_timeout_seconds` of the connection, a later one within the keep-alive timeout of
//! the previous reply (so this is also what closes an idle kept-alive connection: Pingora's
//! own keep-alive timer is off). Pingora times out each read, so a client sending a byte a
//! second (slowloris) would otherwise hold a connection for good. The server's edge
//! runs each HTTP/1 connection inside [`HeadClock::run`]; the gateway says when a head has been
//! read and when its reply is done, through a task-local, so no state is shared between
//! connections.
//!
//! Per request that is two relaxed stores to an atomic the connection's own task reads: the
//! watcher re-reads the deadline when its timer fires instead of being woken on each change.
//! Only a deadline earlier than the one it sleeps to wakes it (the first reply on a connection
//! whose keep-alive timeout is shorter than its head timeout), at most once a connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

tokio::task_local! {
    static CLOCK: Arc<HeadClock>;
}

/// How often the watcher looks again while no head is being read.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// When the head being read must be complete, in milliseconds after `base` (0: no head is
/// being read).
pub struct HeadClock {
    base: Instant,
    due_ms: AtomicU64,
    /// What the watcher sleeps until (milliseconds after `base`).
    armed_ms: AtomicU64,
    earlier: Notify,
}

impl HeadClock {
    pub fn new(due: Instant) -> Arc<HeadClock> {
        let c = HeadClock {
            base: Instant::now(),
            due_ms: AtomicU64::new(0),
            armed_ms: AtomicU64::new(u64::MAX),
            earlier: Notify::new(),
        };
        c.set(Some(due));
        Arc::new(c)
    }

    /// Runs `conn` (one connection's processing) until it ends or a head is late.
    pub async fn run<T>(self: Arc<Self>, conn: impl std::future::Future<Output = T>) -> Option<T> {
        let clock = self.clone();
        tokio::select! {
            out = CLOCK.scope(self, conn) => Some(out),
            _ = clock.late() => None,
        }
    }

    fn set(&self, due: Option<Instant>) {
        let ms = due.map_or(0, |d| self.ms(d).max(1));
        self.due_ms.store(ms, Ordering::Relaxed);
        if ms != 0 && ms < self.armed_ms.load(Ordering::Relaxed) {
            self.earlier.notify_one();
        }
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }

    fn due(&self) -> Option<Instant> {
        match self.due_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.base + Duration::from_millis(ms)),
        }
    }

    /// Completes once a head is due and not read in time.
    async fn late(&self) {
        loop {
            let at = match self.due() {
                Some(at) if Instant::now() >= at => return,
                Some(at) => at,
                None => Instant::now() + IDLE_CHECK,
            };
            self.armed_ms.store(self.ms(at), Ordering::Relaxed);
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = self.earlier.notified() => {}
            }
        }
    }
}

/// The request's head has been read: its connection's clock stops.
pub(super) fn head_read() {
    let _ = CLOCK.try_with(|c| c.set(None));
}

/// The reply is done: the next head on this connection is due after `wait`.
pub(super) fn reply_done(wait: Duration) {
    let _ = CLOCK.try_with(|c| c.set(Some(Instant::now() + wait)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_late_head_ends_the_connection_and_a_read_one_does_not() {
        let clock = HeadClock::new(Instant::now() + Duration::from_secs(5));
        let slow = clock.run(tokio::time::sleep(Duration::from_secs(60)));
        let t0 = Instant::now();
        assert_eq!(slow.await, None);
        assert!(t0.elapsed() >= Duration::from_secs(5) && t0.elapsed() < Duration::from_secs(7));

        let clock = HeadClock::new(Instant::now() + Duration::from_secs(5));
        let served = clock.run(async {
            head_read();
            // A long request: no head is due while it is handled.
            tokio::time::sleep(Duration::from_secs(30)).await;
            reply_done(Duration::from_secs(10));
            tokio::time::sleep(Duration::from_secs(3)).await;
            "kept"
        });
        assert_eq!(served.await, Some("kept"));

        let clock = HeadClock::new(Instant::now() + Duration::from_secs(5));
        let idle = clock.run(async {
            head_read();
            reply_done(Duration::from_secs(10));
            // The next head never comes.
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let t0 = Instant::now();
        assert_eq!(idle.await, None);
        assert!(t0.elapsed() >= Duration::from_secs(10) && t0.elapsed() < Duration::from_secs(12));
    }

    #[tokio::test(start_paused = true)]
    async fn a_keep_alive_shorter_than_the_first_head_deadline_closes_on_time() {
        // The watcher sleeps to the first head's deadline (30 s); the reply's (1 s) is earlier.
        let clock = HeadClock::new(Instant::now() + Duration::from_secs(30));
        let idle = clock.run(async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            head_read();
            reply_done(Duration::from_secs(1));
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let t0 = Instant::now();
        assert_eq!(idle.await, None);
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_millis(1100),
            "{took:?}"
        );
    }
}
