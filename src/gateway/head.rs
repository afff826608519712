//! The deadline for a request head. A connection's first head must arrive whole within
//! `header_timeout_seconds` of the connection (a later one within the keep-alive timeout
//! plus that, after the previous reply): Pingora times out each read, so a client sending a
//! byte a second (slowloris) would otherwise hold a connection for good. The server's edge
//! runs each HTTP/1 connection inside [`HeadClock::run`]; the gateway says when a head has been
//! read and when its reply is done, through a task-local, so no state is shared between
//! connections.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

tokio::task_local! {
    static CLOCK: Arc<HeadClock>;
}

/// When the head being read must be complete (`None`: no head is being read).
pub struct HeadClock {
    due: Mutex<Option<Instant>>,
    changed: Notify,
}

impl HeadClock {
    pub fn new(due: Instant) -> Arc<HeadClock> {
        Arc::new(HeadClock {
            due: Mutex::new(Some(due)),
            changed: Notify::new(),
        })
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
        *self.due.lock().unwrap_or_else(|p| p.into_inner()) = due;
        self.changed.notify_one();
    }

    /// Completes once a head is due and not read in time.
    async fn late(&self) {
        loop {
            let due = *self.due.lock().unwrap_or_else(|p| p.into_inner());
            match due {
                Some(at) => tokio::select! {
                    _ = tokio::time::sleep_until(at) => {
                        if *self.due.lock().unwrap_or_else(|p| p.into_inner()) == Some(at) {
                            return;
                        }
                    }
                    _ = self.changed.notified() => {}
                },
                None => self.changed.notified().await,
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
