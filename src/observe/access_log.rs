use serde::Serialize;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;

use crate::config::AccessLogTarget;

/// One line of the access log. Never holds a secret: keys appear by their configured name.
/// Serialized by hand (below): with `#[serde(flatten)]` for the usage, serde wrote every field
/// through its map machinery, the largest part of the line's cost.
pub struct AccessRecord<'a> {
    pub ts: String,
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub key: Option<&'a str>,
    /// The client's address (behind trusted proxies, the one they forwarded).
    pub client: Option<std::net::IpAddr>,
    pub model: Option<&'a str>,
    pub route: Option<&'a str>,
    pub backend: Option<&'a str>,
    pub status: u16,
    pub duration_ms: f64,
    pub attempts: u32,
    pub bytes_sent: usize,
    /// Left out when `None`.
    pub error: Option<&'a str>,
    /// Client fields a translation dropped (README "Field policy"); left out when empty.
    pub ignored_fields: &'a [String],
    /// On a cached route: `hit`, `miss`, `refresh` (asked `no-cache`) or `bypass`.
    pub cache: Option<&'a str>,
    /// Tokens and cost, for requests that got a reply (its fields inline in the line).
    pub usage: Option<UsageFields<'a>>,
}

impl Serialize for AccessRecord<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut m = s.serialize_struct("AccessRecord", 26)?;
        m.serialize_field("ts", &self.ts)?;
        m.serialize_field("request_id", self.request_id)?;
        m.serialize_field("method", self.method)?;
        m.serialize_field("path", self.path)?;
        m.serialize_field("key", &self.key)?;
        m.serialize_field("client", &self.client)?;
        m.serialize_field("model", &self.model)?;
        m.serialize_field("route", &self.route)?;
        m.serialize_field("backend", &self.backend)?;
        m.serialize_field("status", &self.status)?;
        m.serialize_field("duration_ms", &self.duration_ms)?;
        m.serialize_field("attempts", &self.attempts)?;
        m.serialize_field("bytes_sent", &self.bytes_sent)?;
        if let Some(e) = self.error {
            m.serialize_field("error", e)?;
        }
        if !self.ignored_fields.is_empty() {
            m.serialize_field("ignored_fields", self.ignored_fields)?;
        }
        if let Some(c) = self.cache {
            m.serialize_field("cache", c)?;
        }
        if let Some(u) = &self.usage {
            u.inline(&mut m)?;
        }
        m.end()
    }
}

/// A request's usage as the access log and the ledger name it.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct UsageFields<'a> {
    pub served_model: Option<&'a str>,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub cache_creation_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    pub total_tokens: u64,
    pub estimated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
}

impl UsageFields<'_> {
    /// Its fields into an enclosing struct (the access log line), as the derive writes them.
    fn inline<M: serde::ser::SerializeStruct>(&self, m: &mut M) -> Result<(), M::Error> {
        m.serialize_field("served_model", &self.served_model)?;
        m.serialize_field("input_tokens", &self.input_tokens)?;
        m.serialize_field("cached_input_tokens", &self.cached_input_tokens)?;
        m.serialize_field("cache_creation_tokens", &self.cache_creation_tokens)?;
        m.serialize_field("output_tokens", &self.output_tokens)?;
        m.serialize_field("reasoning_tokens", &self.reasoning_tokens)?;
        m.serialize_field("total_tokens", &self.total_tokens)?;
        m.serialize_field("estimated", &self.estimated)?;
        if let Some(c) = self.cost_usd {
            m.serialize_field("cost_usd", &c)?;
        }
        if let Some(t) = self.ttft_ms {
            m.serialize_field("ttft_ms", &t)?;
        }
        Ok(())
    }
}

/// Lines go through a bounded channel to a writer thread, so a slow disk or pipe never blocks
/// a request; when the channel is full the line is dropped and counted.
pub struct AccessLog {
    target: AccessLogTarget,
    // Started on first use: Pingora's daemon mode forks after config load, and threads started
    // before the fork would be lost.
    tx: OnceLock<Option<SyncSender<Msg>>>,
    dropped: AtomicU64,
}

/// What the writer thread is asked to do.
enum Msg {
    Line(String),
    /// Write out everything queued before this, then answer.
    Flush(SyncSender<()>),
    /// Reopen the file (after logrotate moved it away).
    Reopen,
}

const QUEUE: usize = 16 * 1024;

impl AccessLog {
    pub fn new(target: AccessLogTarget) -> AccessLog {
        AccessLog {
            target,
            tx: OnceLock::new(),
            dropped: AtomicU64::new(0),
        }
    }

    pub fn write(&self, rec: &AccessRecord<'_>) {
        let Some(tx) = self.tx.get_or_init(|| self.start()) else {
            return;
        };
        let Ok(line) = serde_json::to_string(rec) else {
            return;
        };
        if let Err(TrySendError::Full(_)) = tx.try_send(Msg::Line(line)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reopens the log file at its path (SIGUSR1, after logrotate moved it): lines queued before
    /// go to the old file, later ones to the new.
    pub fn reopen(&self) {
        if let Some(Some(tx)) = self.tx.get() {
            let _ = tx.send(Msg::Reopen);
        }
    }

    /// Blocks until every line queued so far is written (at most `wait`), for a clean exit.
    pub fn flush(&self, wait: std::time::Duration) {
        let Some(Some(tx)) = self.tx.get() else {
            return;
        };
        let (done_tx, done_rx) = sync_channel(1);
        if tx.send(Msg::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv_timeout(wait);
        }
    }

    fn start(&self) -> Option<SyncSender<Msg>> {
        let out: Box<dyn Write + Send> = match &self.target {
            AccessLogTarget::Off => return None,
            AccessLogTarget::Stdout => Box::new(std::io::stdout()),
            AccessLogTarget::File(p) => match open(p) {
                Ok(f) => Box::new(f),
                Err(e) => {
                    log::error!("access log {p}: {e}; access logging disabled");
                    return None;
                }
            },
        };
        let path = match &self.target {
            AccessLogTarget::File(p) => Some(p.clone()),
            _ => None,
        };
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer(rx, out, path))
            .ok()?;
        Some(tx)
    }
}

fn open(path: &str) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

type Out = std::io::BufWriter<Box<dyn Write + Send>>;

fn writer(rx: Receiver<Msg>, out: Box<dyn Write + Send>, path: Option<String>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    // Block while idle; under load, drain in batches every BATCH_PAUSE so senders never have
    // to wake this thread (a futex wake and a context switch per request otherwise).
    while let Ok(first) = rx.recv() {
        handle(first, &mut out, path.as_deref());
        loop {
            std::thread::sleep(BATCH_PAUSE);
            let mut wrote = 0usize;
            while let Ok(m) = rx.try_recv() {
                handle(m, &mut out, path.as_deref());
                wrote += 1;
            }
            let _ = out.flush();
            if wrote == 0 {
                break;
            }
        }
    }
    let _ = out.flush();
}

fn handle(m: Msg, out: &mut Out, path: Option<&str>) {
    match m {
        Msg::Line(line) => {
            let _ = writeln!(out, "{line}");
        }
        Msg::Flush(done) => {
            let _ = out.flush();
            let _ = done.try_send(());
        }
        Msg::Reopen => {
            let _ = out.flush();
            let Some(p) = path else { return };
            match open(p) {
                Ok(f) => *out = std::io::BufWriter::with_capacity(64 * 1024, Box::new(f)),
                Err(e) => {
                    log::error!("access log {p}: cannot reopen: {e}; still writing the old file")
                }
            }
        }
    }
}

const BATCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_line_has_every_field_once_and_leaves_out_the_unset_ones() {
        let ignored = vec!["top_k".to_string()];
        let mut rec = AccessRecord {
            ts: "2026-12-03T10:00:00.000Z".into(),
            request_id: "r1",
            method: "POST",
            path: "/v1/chat/completions",
            key: Some("team \"a\""),
            client: Some("10.0.0.7".parse().unwrap()),
            model: Some("m"),
            route: Some("route0"),
            backend: None,
            status: 200,
            duration_ms: 1.5,
            attempts: 1,
            bytes_sent: 10,
            error: None,
            ignored_fields: &ignored,
            cache: Some("miss"),
            usage: Some(UsageFields {
                served_model: Some("m-1"),
                input_tokens: 3,
                cached_input_tokens: 0,
                cache_creation_tokens: 0,
                output_tokens: 4,
                reasoning_tokens: 0,
                total_tokens: 7,
                estimated: false,
                cost_usd: Some(0.5),
                ttft_ms: None,
            }),
        };
        let line = serde_json::to_string(&rec).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            json!({"ts": "2026-12-03T10:00:00.000Z", "request_id": "r1", "method": "POST",
                "path": "/v1/chat/completions", "key": "team \"a\"", "client": "10.0.0.7",
                "model": "m", "route": "route0", "backend": null, "status": 200,
                "duration_ms": 1.5, "attempts": 1, "bytes_sent": 10, "ignored_fields": ["top_k"],
                "cache": "miss", "served_model": "m-1", "input_tokens": 3,
                "cached_input_tokens": 0, "cache_creation_tokens": 0, "output_tokens": 4,
                "reasoning_tokens": 0, "total_tokens": 7, "estimated": false, "cost_usd": 0.5})
        );
        rec.usage = None;
        rec.error = Some("upstream_timeout");
        let v: serde_json::Value = serde_json::to_value(&rec).unwrap();
        assert_eq!(v["error"], "upstream_timeout");
        assert!(v.get("input_tokens").is_none() && v.get("ttft_ms").is_none());
    }
}
