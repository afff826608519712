//! The client listener's edge, before Pingora reads a byte: a cap on connections open at once
//! (in all and per client address; over it, a new connection is closed at once), and the
//! deadline for request heads (`gateway::head`): a connection that sends nothing, or sends its
//! head too slowly, is closed when the deadline passes. An h2 connection (its preface, or h2 by
//! ALPN) has no head deadline here: its streams' headers come in frames the h2 layer bounds,
//! and `h2_idle_timeout` closes it when idle.

use crate::gateway::head::HeadClock;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::{Stream, ALPN};
use pingora::server::ShutdownWatch;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub struct Edge<A> {
    pub inner: Arc<A>,
    pub head_timeout: Duration,
    pub slots: Arc<Slots>,
}

/// Connections open at once, in all and per client address.
pub struct Slots {
    max: u32,
    per_client: u32,
    open: AtomicU32,
    by_client: Mutex<HashMap<IpAddr, u32>>,
}

impl Slots {
    /// `0`: no cap.
    pub fn new(max: u32, per_client: u32) -> Arc<Slots> {
        Arc::new(Slots {
            max,
            per_client,
            open: AtomicU32::new(0),
            by_client: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a connection from `client`, held until it is dropped; `None`: over a cap.
    fn take(self: &Arc<Self>, client: Option<IpAddr>) -> Option<Slot> {
        let n = self.open.fetch_add(1, Ordering::AcqRel) + 1;
        let mut slot = Slot(self.clone(), None);
        if self.max > 0 && n > self.max {
            return None;
        }
        let (Some(ip), true) = (client, self.per_client > 0) else {
            return Some(slot);
        };
        let mut by = self.by_client.lock().unwrap_or_else(|p| p.into_inner());
        let count = by.entry(ip).or_insert(0);
        if *count >= self.per_client {
            return None;
        }
        *count += 1;
        slot.1 = Some(ip);
        Some(slot)
    }
}

/// One open connection's place in [`Slots`].
struct Slot(Arc<Slots>, Option<IpAddr>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        let Some(ip) = self.1 else { return };
        let mut by = self.0.by_client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = by.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                by.remove(&ip);
            }
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Edge<A> {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let client = (stream.get_socket_digest())
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        let _slot = self.slots.take(client)?;
        let due = Instant::now() + self.head_timeout;
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return self.inner.process_new(stream, shutdown).await;
        }
        if stream.get_ssl_digest().is_none() {
            // Nothing at all before the deadline: closed. (The peek waits for the preface's
            // length; Pingora's own would wait for good.)
            let mut first = [0u8; 24];
            match tokio::time::timeout_at(due, stream.try_peek(&mut first)).await {
                Ok(Ok(_)) if &first == H2_PREFACE => {
                    return self.inner.process_new(stream, shutdown).await;
                }
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
        let conn = self.inner.process_new(stream, shutdown);
        HeadClock::new(due).run(conn).await.flatten()
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}
