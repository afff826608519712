use crate::queue::{self, Receiver, Sender};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::OnceLock;

use crate::config::AccessLogTarget;
use crate::formats::write::string;

/// One line of the access log. Never holds a secret: keys appear by their configured name.
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

impl AccessRecord<'_> {
    /// The line as one JSON object, fields in a fixed order. Written by hand: serde_json sent
    /// each of the ~30 keys and values through its escaping loop (a third of the line's cost)
    /// though the keys are constants.
    pub fn line(&self) -> String {
        let mut j = JsonLine(String::with_capacity(480));
        j.0.push('{');
        j.str("ts", &self.ts);
        j.str("request_id", self.request_id);
        j.str("method", self.method);
        j.str("path", self.path);
        j.opt_str("key", self.key);
        j.key("client");
        match self.client {
            Some(ip) => ip_string(&mut j.0, ip),
            None => j.0.push_str("null"),
        }
        j.opt_str("model", self.model);
        j.opt_str("route", self.route);
        j.opt_str("backend", self.backend);
        j.uint("status", self.status.into());
        j.float("duration_ms", self.duration_ms);
        j.uint("attempts", self.attempts.into());
        j.uint("bytes_sent", self.bytes_sent as u64);
        if let Some(e) = self.error {
            j.str("error", e);
        }
        if !self.ignored_fields.is_empty() {
            j.key("ignored_fields");
            for (i, f) in self.ignored_fields.iter().enumerate() {
                j.0.push(if i == 0 { '[' } else { ',' });
                string(&mut j.0, f);
            }
            j.0.push(']');
        }
        if let Some(c) = self.cache {
            j.str("cache", c);
        }
        if let Some(u) = &self.usage {
            u.inline(&mut j);
        }
        j.0.push('}');
        j.0
    }
}

/// `ip` as a JSON string. An IPv4 address (nearly every client's) is written octet by octet:
/// `Display` through the formatter was ~1k instructions a line.
fn ip_string(out: &mut String, ip: std::net::IpAddr) {
    out.push('"');
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(itoa::Buffer::new().format(o));
            }
        }
        std::net::IpAddr::V6(v6) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
    out.push('"');
}

/// A request's usage as the access log and the ledger name it.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageFields<'a> {
    pub served_model: Option<&'a str>,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub cache_creation_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    pub total_tokens: u64,
    pub estimated: bool,
    /// Left out when `None`.
    pub cost_usd: Option<f64>,
    /// Left out when `None`.
    pub ttft_ms: Option<f64>,
}

impl UsageFields<'_> {
    /// Its fields into the enclosing line.
    fn inline(&self, j: &mut JsonLine) {
        j.opt_str("served_model", self.served_model);
        j.uint("input_tokens", self.input_tokens);
        j.uint("cached_input_tokens", self.cached_input_tokens);
        j.uint("cache_creation_tokens", self.cache_creation_tokens);
        j.uint("output_tokens", self.output_tokens);
        j.uint("reasoning_tokens", self.reasoning_tokens);
        j.uint("total_tokens", self.total_tokens);
        j.key("estimated");
        j.0.push_str(if self.estimated { "true" } else { "false" });
        if let Some(c) = self.cost_usd {
            j.float("cost_usd", c);
        }
        if let Some(t) = self.ttft_ms {
            j.float("ttft_ms", t);
        }
    }
}

/// A JSON object being written; keys are constants that need no escaping.
struct JsonLine(String);

impl JsonLine {
    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push('"');
        self.0.push_str(k);
        self.0.push_str("\":");
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        string(&mut self.0, v);
    }

    fn opt_str(&mut self, k: &str, v: Option<&str>) {
        self.key(k);
        match v {
            Some(v) => string(&mut self.0, v),
            None => self.0.push_str("null"),
        }
    }

    fn uint(&mut self, k: &str, v: u64) {
        self.key(k);
        self.0.push_str(itoa::Buffer::new().format(v));
    }

    /// As serde_json writes an `f64`: shortest round-trip digits, `null` when not finite.
    fn float(&mut self, k: &str, v: f64) {
        self.key(k);
        if v.is_finite() {
            self.0.push_str(zmij::Buffer::new().format_finite(v));
        } else {
            self.0.push_str("null");
        }
    }
}

/// Lines go through a bounded queue (`crate::queue`) to a writer thread, so a slow disk or pipe never blocks
/// a request; when the channel is full the line is dropped and counted.
pub struct AccessLog {
    target: AccessLogTarget,
    // Started on first use: Pingora's daemon mode forks after config load, and threads started
    // before the fork would be lost.
    tx: OnceLock<Option<Sender<Msg>>>,
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
        let line = rec.line();
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

    fn start(&self) -> Option<Sender<Msg>> {
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
        let (tx, rx) = queue::bounded(QUEUE);
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
            let _ = out.write_all(line.as_bytes());
            let _ = out.write_all(b"\n");
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
        let line = rec.line();
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
        rec.client = None;
        rec.duration_ms = f64::NAN;
        let v: serde_json::Value = serde_json::from_str(&rec.line()).unwrap();
        assert_eq!(v["error"], "upstream_timeout");
        assert!(v["client"].is_null() && v["duration_ms"].is_null());
        assert!(v.get("input_tokens").is_none() && v.get("ttft_ms").is_none());
    }

    #[test]
    fn an_address_is_written_as_display_writes_it() {
        for ip in [
            "0.0.0.0",
            "10.0.0.7",
            "255.255.255.255",
            "192.168.100.9",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:10.0.0.1",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut out = String::new();
            ip_string(&mut out, ip);
            assert_eq!(out, format!("\"{ip}\""));
        }
    }

    #[test]
    fn strings_and_numbers_are_written_as_serde_json_writes_them() {
        let mut every_byte: String = (0u8..0x80).map(char::from).collect();
        every_byte.push_str("é 漢 🦀 \u{2028}");
        for s in [
            "",
            "plain",
            "a\"b\\c",
            "\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}",
            &every_byte,
        ] {
            let mut out = String::new();
            string(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
        for v in [0.0, 1.0, 1.5, 0.1, 1e-7, 123456789.125, 1e300, -2.5] {
            let mut j = JsonLine(String::from("{"));
            j.float("x", v);
            assert_eq!(
                j.0,
                format!("{{\"x\":{}", serde_json::to_string(&v).unwrap())
            );
        }
    }
}
