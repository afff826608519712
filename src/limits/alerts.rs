//! Budget alerts: when a budget's spend reaches a configured fraction of it, one JSON notice
//! is POSTed to the webhook, once per budget, period and threshold (the store remembers it,
//! so a restart or a second instance does not send it again). Spend is checked when a request
//! settles: the settled spend of the period plus what requests in flight have reserved.
//! Notices are queued and sent by a background task with retries; a request never waits.

use crate::net::post::Post;
use crate::observe::Metrics;
use bytes::Bytes;
use pingora::connectors::http::Connector;
use serde::Serialize;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;

pub use crate::config::AlertSettings;

/// What the webhook receives.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Notice {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub scope: &'static str,
    pub id: String,
    /// The budget's config key (`cost_per_day_usd`, `cost_per_month_usd`).
    pub budget: &'static str,
    pub limit_usd: f64,
    pub spent_usd: f64,
    pub threshold: f64,
    /// Start of the budget's period, RFC 3339 UTC.
    pub period_start: String,
    pub ts: String,
}

const QUEUE: usize = 1024;
const MAX_REPLY: usize = 64 * 1024;

pub struct Alerts {
    pub settings: AlertSettings,
    tx: mpsc::Sender<Notice>,
    rx: Mutex<Option<mpsc::Receiver<Notice>>>,
}

impl Alerts {
    pub fn new(settings: AlertSettings) -> Alerts {
        let (tx, rx) = mpsc::channel(QUEUE);
        Alerts {
            settings,
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }

    /// Queues a notice (dropped with a log line if the sender is far behind).
    pub fn notify(&self, n: Notice) {
        if self.tx.try_send(n).is_err() {
            log::warn!("budget alerts: queue full, a notice was dropped");
        }
    }

    /// Sends queued notices until the queue closes; run once, by a background service.
    pub async fn run(&self, connector: &Connector, metrics: &Metrics) {
        let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut rx) = rx else { return };
        while let Some(n) = rx.recv().await {
            let sent = self.deliver(connector, &n).await;
            metrics.budget_alert(sent);
        }
    }

    async fn deliver(&self, connector: &Connector, n: &Notice) -> bool {
        let Ok(body) = serde_json::to_vec(n) else {
            return false;
        };
        let body = Bytes::from(body);
        let post = Post {
            url: &self.settings.webhook_url,
            content_type: "application/json",
            connect_timeout: self.settings.timeout,
            timeout: self.settings.timeout,
            max_reply: MAX_REPLY,
        };
        let mut wait = Duration::from_secs(1);
        for attempt in 0..=self.settings.retries {
            match post.send(connector, body.clone()).await {
                Ok((200..=299, _)) => return true,
                Ok((status, _)) => log::warn!("budget alert: the webhook answered {status}"),
                Err(e) => log::warn!("budget alert: the webhook cannot be reached: {e}"),
            }
            if attempt < self.settings.retries {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        log::error!(
            "budget alert for {} `{}` at {} not delivered",
            n.scope,
            n.id,
            n.threshold
        );
        false
    }
}
