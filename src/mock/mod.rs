//! `tollgate mock`: a provider for tests, benchmarks and demos that speaks OpenAI's (chat,
//! Responses, embeddings), Azure OpenAI's, Anthropic's, Gemini's, Vertex AI's (Gemini and Claude)
//! and Bedrock's APIs byte for byte (their key order, event order and framing), over HTTP/1.1,
//! h2c or HTTPS (h2 and HTTP/1.1 by ALPN).
//!
//! Replies are deterministic (seeded by the request) with realistic usage, tool calls, thinking
//! and cache figures; streams use each API's exact SSE format. It checks what the real
//! providers check (each API's auth header, `anthropic-version`, `max_tokens`, Azure's
//! `api-version`). Behaviour is set per instance by flags and per request by headers
//! (`x-mock-status`, `x-mock-delay-ms`, `x-mock-chunk-delay-ms`, `x-mock-drop-after`,
//! `x-mock-words`, `x-mock-stream-error-after`, `x-mock-cached-tokens`). Every response reports
//! what arrived (`x-mock-body-sha256`, `x-mock-body-len`, `x-mock-model`, `x-mock-path`,
//! `x-mock-http-version`, `x-mock-anthropic-version`, `x-mock-request-headers`) so tests can
//! check what the gateway sent. `GET /mock/stats` counts requests and streams (completed, or
//! cut by the caller) and gives the last body's digest and the body itself (`last_body`, for
//! tests that read what a translation sent); `POST /mock/fault?status=N` makes every
//! later request (health checks too) answer N until `status=0`.
//!
//! `mod.rs` holds the app, the per-request behaviour and dispatch by API; `send.rs` the shared
//! senders; one file or folder per API (`openai.rs` with Azure's paths, `responses.rs` and
//! `stored.rs`, `anthropic.rs`, `gemini/`, `vertex.rs`, `bedrock/`); `tools.rs` the one
//! tool-call rule, `reply.rs` words and estimates, `tls.rs` certificates.

/// A JSON object with its keys in the order written, like `json!` (which sorts them): the
/// providers' own key order is part of speaking their formats byte for byte. Values are any
/// `Serialize` (nested `obj!`, `Value`, strings, numbers, `()` for null).
macro_rules! obj {
    ($($k:literal : $v:expr),* $(,)?) => {
        $crate::mock::Obj(vec![$(($k, $crate::mock::raw(&$v))),*])
    };
}

mod anthropic;
mod bedrock;
mod gemini;
mod openai;
mod openai_error;
mod reply;
mod responses;
mod send;
mod stored;
pub mod tls;
mod tools;
mod vertex;

pub(crate) use send::{key_ok, retry_after, send_error, send_events, send_json, sse};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::apps::{HttpPersistentSettings, HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The tool-call rule, for `tollgate mock --help`.
const TOOL_CALLS_HELP: &str = "Tool calls: when a request offers tools and its last turn is the \
user's own words (no tool result since the model last spoke), the reply calls the forced tool \
or the first one (and the second, when parallel calls are allowed), with arguments valid for \
the tool's JSON schema (enums, types, bounds, nested objects). The user's words can name the \
call instead: `mock:call NAME {JSON arguments}` anywhere in the last user message calls the \
offered tool NAME (or one named `..__NAME` or `..NAME` after a dot) with exactly those \
arguments, and no tool when none is offered by that name. After tool results the reply is text.";

/// An ordered JSON object; build it with `obj!`.
pub(crate) struct Obj(pub Vec<(&'static str, Box<RawValue>)>);

impl Serialize for Obj {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// `v` serialised once, to be embedded in an `Obj` (null if it cannot be serialised, which
/// the mock's own values never are).
pub(crate) fn raw<T: Serialize + ?Sized>(v: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(v).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// An empty JSON array (`[]` has no element type to infer).
pub(crate) const EMPTY: [(); 0] = [];

/// Per-instance behaviour (the `tollgate mock` flags); each can be overridden per request by
/// its header.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(after_help = TOOL_CALLS_HELP)]
pub struct MockSettings {
    /// Name reported in `x-mock-name`.
    #[arg(long, default_value = "mock")]
    pub name: String,
    /// Answer every request with this status and the provider's error body.
    #[arg(long)]
    pub status: Option<u16>,
    /// Delay before the response header, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub delay_ms: u64,
    /// Delay between stream events, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub chunk_delay_ms: u64,
    /// Close the connection after N stream events (half the body when not streaming).
    #[arg(long)]
    pub drop_after: Option<usize>,
    /// Completion length in words (one token each) when the request does not cap it lower.
    #[arg(long, default_value_t = 16)]
    pub words: usize,
    /// Require this key: `Authorization: Bearer` (OpenAI), `x-api-key` (Anthropic), `api-key` (Azure).
    #[arg(long)]
    pub expect_key: Option<String>,
    /// Models listed by GET /v1/models.
    #[arg(long, value_delimiter = ',', default_value = "mock-1")]
    pub models: Vec<String>,
    /// Serve HTTPS (h2 and HTTP/1.1 by ALPN) instead of HTTP/1.1 and h2c; without
    /// --tls-cert/--tls-key a self-signed certificate is generated into a temp dir.
    #[arg(long)]
    pub tls: bool,
    /// TLS certificate (PEM); when neither it nor the key exists, a self-signed certificate for
    /// localhost, 127.0.0.1 and ::1 is generated and written here.
    #[arg(long, requires = "tls")]
    pub tls_cert: Option<String>,
    /// TLS private key (PEM); generated with the certificate if missing.
    #[arg(long, requires = "tls")]
    pub tls_key: Option<String>,
    /// Bedrock: verify each request's SigV4 signature with this access key id and secret
    /// (403 in Bedrock's shape when it does not match); without them signatures are not checked.
    #[arg(long, requires = "aws_secret_access_key")]
    pub aws_access_key_id: Option<String>,
    #[arg(long, requires = "aws_access_key_id")]
    pub aws_secret_access_key: Option<String>,
    /// Vertex AI: the token endpoint (`POST /token`) verifies JWT assertions with this RSA
    /// public key (PEM); the Vertex paths then require a token it issued. Without it, Vertex
    /// paths accept any bearer token.
    #[arg(long)]
    pub vertex_public_key: Option<String>,
    /// Vertex AI: lifetime of the tokens `/token` issues, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub vertex_token_ttl: u64,
    /// Streams: pause after the response header, before the first event, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub first_event_delay_ms: u64,
    /// `Retry-After` on error replies (default: `1` on 429s, none otherwise).
    #[arg(long)]
    pub retry_after: Option<String>,
}

pub struct MockApp {
    settings: MockSettings,
    options: HttpServerOptions,
    stats: Arc<Stats>,
}

/// What the instance has seen, for `GET /mock/stats`, and the runtime fault.
#[derive(Default)]
pub(crate) struct Stats {
    requests: AtomicU64,
    streams_started: AtomicU64,
    streams_completed: AtomicU64,
    streams_cut: AtomicU64,
    last_body_sha256: Mutex<String>,
    /// The last request body (one, shared: nothing is copied).
    last_body: Mutex<Bytes>,
    fault: AtomicU16,
}

impl MockApp {
    pub fn new(settings: MockSettings) -> MockApp {
        let mut options = HttpServerOptions::default();
        options.h2c = true;
        MockApp {
            settings,
            options,
            stats: Arc::default(),
        }
    }
}

/// What to do for one request after overrides (`stream_error_after` and `cached_tokens` are
/// per request only).
pub(crate) struct Behaviour {
    pub status: Option<u16>,
    pub delay: Duration,
    pub chunk_delay: Duration,
    pub drop_after: Option<usize>,
    pub words: usize,
    pub stream_error_after: Option<usize>,
    pub cached_tokens: Option<u64>,
    pub first_event_delay: Duration,
    pub(crate) stats: Arc<Stats>,
}

const MAX_BODY: usize = 256 * 1024 * 1024;

#[async_trait]
impl HttpServerApp for MockApp {
    async fn process_new_http(
        self: &Arc<Self>,
        mut s: ServerSession,
        _shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        if !matches!(s.read_request().await, Ok(true)) {
            return None;
        }
        s.set_keepalive(Some(60));
        if !self.handle(&mut s).await {
            return None;
        }
        let ps = HttpPersistentSettings::for_session(&s);
        s.finish()
            .await
            .ok()
            .flatten()
            .map(|st| ReusedHttpStream::from_reusable_stream(st, ps))
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        Some(&self.options)
    }
}

fn header_num<T: std::str::FromStr>(s: &ServerSession, name: &str) -> Option<T> {
    header_str(s, name).and_then(|v| v.trim().parse().ok())
}

fn header_str<'s>(s: &'s ServerSession, name: &str) -> Option<&'s str> {
    s.req_header()
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Which API a request path belongs to.
enum Api {
    OpenAi,
    /// Azure's deployment path: the deployment and the operation after it.
    Azure(String, String),
    Anthropic,
    /// `/model/{id}/converse`, `/converse-stream`, `/invoke`.
    Bedrock,
    /// Gemini's `…/models/{model}:{method}`, on AI Studio's and Vertex AI's paths.
    Gemini,
    /// Vertex AI's token endpoint and Claude on Vertex (`publishers/anthropic`).
    Vertex,
}

fn api_of(path: &str) -> Api {
    if path.starts_with("/v1/messages") {
        return Api::Anthropic;
    }
    if path.starts_with("/model/") {
        return Api::Bedrock;
    }
    if path == "/token" || path.contains("/publishers/anthropic/") {
        return Api::Vertex;
    }
    if path.contains("/models/") && path.contains(':') {
        return Api::Gemini;
    }
    if let Some(rest) = path.strip_prefix("/openai/deployments/") {
        if let Some((dep, op)) = rest.split_once('/') {
            return Api::Azure(dep.to_string(), format!("/v1/{op}"));
        }
    }
    Api::OpenAi
}

/// The request as the handlers see it.
pub(crate) struct Request {
    pub path: String,
    pub method: http::Method,
    pub body: Bytes,
    pub common: Vec<(&'static str, String)>,
}

impl MockApp {
    /// Returns whether the connection may be reused.
    async fn handle(&self, s: &mut ServerSession) -> bool {
        let set = &self.settings;
        let b = Behaviour {
            status: header_num(s, "x-mock-status").or(set.status),
            delay: Duration::from_millis(header_num(s, "x-mock-delay-ms").unwrap_or(set.delay_ms)),
            chunk_delay: Duration::from_millis(
                header_num(s, "x-mock-chunk-delay-ms").unwrap_or(set.chunk_delay_ms),
            ),
            drop_after: header_num(s, "x-mock-drop-after").or(set.drop_after),
            words: header_num(s, "x-mock-words").unwrap_or(set.words),
            stream_error_after: header_num(s, "x-mock-stream-error-after"),
            cached_tokens: header_num(s, "x-mock-cached-tokens"),
            first_event_delay: Duration::from_millis(set.first_event_delay_ms),
            stats: self.stats.clone(),
        };
        let Some(body) = read_body(s).await else {
            return false;
        };
        if s.req_header().uri.path().starts_with("/mock/") {
            return self.control(s).await;
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let req = self.describe(s, body);
        if let Ok(mut last) = self.stats.last_body_sha256.lock() {
            last.clone_from(&req.common[2].1);
        }
        if let Ok(mut last) = self.stats.last_body.lock() {
            last.clone_from(&req.body);
        }
        let fault = self.stats.fault.load(Ordering::Relaxed);
        if fault != 0 {
            let v = obj!("error": obj!("message": "mock fault", "type": "server_error"));
            return send_error(s, fault, &v, &req.common).await;
        }
        if !b.delay.is_zero() {
            tokio::time::sleep(b.delay).await;
        }
        let path = s.req_header().uri.path().to_string();
        match api_of(&path) {
            Api::Anthropic => anthropic::handle(s, req, &b, set).await,
            Api::Bedrock => bedrock::handle(s, req, &b, set).await,
            Api::Gemini => gemini::handle(s, req, &b, set).await,
            Api::Vertex => vertex::handle(s, req, &b, set).await,
            Api::Azure(dep, op) => openai::handle(s, req, &b, set, Some((dep, op))).await,
            Api::OpenAi => openai::handle(s, req, &b, set, None).await,
        }
    }

    /// `GET /mock/stats` and `POST /mock/fault?status=N`.
    async fn control(&self, s: &mut ServerSession) -> bool {
        let st = &self.stats;
        let h = s.req_header();
        if h.uri.path() == "/mock/fault" {
            let status = h
                .uri
                .query()
                .and_then(|q| q.strip_prefix("status="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            st.fault.store(status, Ordering::Relaxed);
        }
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let last = st
            .last_body_sha256
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        let v = obj!(
            "requests": n(&st.requests),
            "streams_started": n(&st.streams_started),
            "streams_completed": n(&st.streams_completed),
            "streams_cut": n(&st.streams_cut),
            "last_body_sha256": last,
            "last_body": String::from_utf8_lossy(&st.last_body.lock().map(|b| b.clone()).unwrap_or_default()),
            "fault": st.fault.load(Ordering::Relaxed),
        );
        send_json(s, 200, &v, &[], None, &[]).await
    }

    /// What arrived, reported back in `x-mock-*` headers.
    fn describe(&self, s: &ServerSession, body: Bytes) -> Request {
        let h = s.req_header();
        let mut names: Vec<&str> = h.headers.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        let pq = h
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let version = if s.is_http2() { "2" } else { "1.1" };
        let mut common = vec![
            ("x-mock-name", self.settings.name.clone()),
            ("x-mock-body-len", body.len().to_string()),
            ("x-mock-body-sha256", hex::encode(Sha256::digest(&body))),
            ("x-mock-request-headers", names.join(",")),
            ("x-mock-path", pq),
            ("x-mock-http-version", version.to_string()),
        ];
        if let Some(v) = header_str(s, "anthropic-version") {
            common.push(("x-mock-anthropic-version", v.to_string()));
        }
        if let Some(v) = &self.settings.retry_after {
            common.push(("x-mock-retry-after", v.clone()));
        }
        Request {
            path: h.uri.path().to_string(),
            method: h.method.clone(),
            body,
            common,
        }
    }
}

async fn read_body(s: &mut ServerSession) -> Option<Bytes> {
    let mut body = BytesMut::new();
    loop {
        match s.read_request_body().await {
            Ok(Some(c)) if body.len() + c.len() <= MAX_BODY => body.extend_from_slice(&c),
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) => return Some(body.freeze()),
        }
    }
}

/// The value of `name` in a query string (as sent, not decoded).
fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?.split('&').find_map(|p| {
        p.split_once('=')
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v)
    })
}
