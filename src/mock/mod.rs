//! `tollgate mock`: an OpenAI-compatible provider for tests, benchmarks and demos.
//!
//! Replies are deterministic (seeded by the request body) with realistic `usage`; streams use
//! OpenAI's exact SSE chunk format. Behaviour is set per instance by flags and per request by
//! headers (`x-mock-status`, `x-mock-delay-ms`, `x-mock-chunk-delay-ms`, `x-mock-drop-after`,
//! `x-mock-words`). Every response reports what arrived (`x-mock-body-sha256`, `x-mock-body-len`,
//! `x-mock-model`, `x-mock-request-headers`) so tests can check what the gateway sent.

mod reply;

use async_trait::async_trait;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use pingora::apps::{HttpPersistentSettings, HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Per-instance behaviour (the `tollgate mock` flags); each can be overridden per request by
/// its header.
#[derive(Debug, Clone, Default, clap::Args)]
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
    /// Require `Authorization: Bearer KEY` (401 otherwise).
    #[arg(long)]
    pub expect_key: Option<String>,
    /// Models listed by GET /v1/models.
    #[arg(long, value_delimiter = ',', default_value = "mock-1")]
    pub models: Vec<String>,
}

pub struct MockApp {
    settings: MockSettings,
    options: HttpServerOptions,
}

impl MockApp {
    pub fn new(settings: MockSettings) -> MockApp {
        let mut options = HttpServerOptions::default();
        options.h2c = true;
        MockApp { settings, options }
    }
}

/// What to do for one request after overrides.
struct Behaviour {
    status: Option<u16>,
    delay: Duration,
    chunk_delay: Duration,
    drop_after: Option<usize>,
    words: usize,
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
    s.req_header()
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
        };
        let mut body = BytesMut::new();
        loop {
            match s.read_request_body().await {
                Ok(Some(c)) if body.len() + c.len() <= MAX_BODY => body.extend_from_slice(&c),
                Ok(Some(_)) | Err(_) => return false,
                Ok(None) => break,
            }
        }
        let body = body.freeze();
        let path = s.req_header().uri.path().to_string();
        let method = s.req_header().method.clone();
        let mut names: Vec<&str> = s.req_header().headers.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        let mut common = vec![
            ("x-mock-name", set.name.clone()),
            ("x-mock-body-len", body.len().to_string()),
            ("x-mock-body-sha256", hex::encode(Sha256::digest(&body))),
            ("x-mock-request-headers", names.join(",")),
        ];
        if !b.delay.is_zero() {
            tokio::time::sleep(b.delay).await;
        }
        if let Some(key) = &set.expect_key {
            let ok = s
                .req_header()
                .headers
                .get("authorization")
                .is_some_and(|v| v.as_bytes() == format!("Bearer {key}").as_bytes());
            if !ok {
                return error(s, 401, &common).await;
            }
        }
        if let Some(code) = b.status.filter(|c| (300..=599).contains(c)) {
            return error(s, code, &common).await;
        }
        let (method_ok, kind) = match path.as_str() {
            "/v1/models" => (method == http::Method::GET, Kind::Models),
            "/v1/chat/completions" => (method == http::Method::POST, Kind::Chat),
            "/v1/completions" => (method == http::Method::POST, Kind::Completion),
            "/v1/embeddings" => (method == http::Method::POST, Kind::Embeddings),
            _ => return error(s, 404, &common).await,
        };
        if !method_ok {
            return error(s, 405, &common).await;
        }
        if kind == Kind::Models {
            let data: Vec<Value> = set
                .models
                .iter()
                .map(|m| json!({"id": m, "object": "model", "created": 1_700_000_000u64, "owned_by": "tollgate-mock"}))
                .collect();
            return send_json(
                s,
                200,
                &json!({"object": "list", "data": data}),
                &common,
                None,
            )
            .await;
        }
        let Ok(req) = serde_json::from_slice::<Value>(&body) else {
            return error(s, 400, &common).await;
        };
        let model = req["model"].as_str().unwrap_or("mock").to_string();
        common.push(("x-mock-model", model.clone()));
        // Seeded by what is asked, not how: a streamed and a plain request get the same words.
        let seed =
            reply::seed(format!("{}|{}|{}", model, req["messages"], req["prompt"]).as_bytes());
        match kind {
            Kind::Embeddings => embeddings(s, &req, &model, &common).await,
            _ => completion(s, kind, &req, &model, seed, &b, &common).await,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Models,
    Chat,
    Completion,
    Embeddings,
}

/// Characters of prompt text and number of messages, for the usage estimate.
fn prompt_size(req: &Value) -> (usize, usize) {
    fn text_len(v: &Value) -> usize {
        match v {
            Value::String(s) => s.len(),
            Value::Array(a) => a.iter().map(text_len).sum(),
            Value::Object(o) => o.get("text").map_or(0, text_len),
            _ => 0,
        }
    }
    if let Some(msgs) = req["messages"].as_array() {
        (
            msgs.iter().map(|m| text_len(&m["content"])).sum(),
            msgs.len(),
        )
    } else {
        (text_len(&req["prompt"]), 1)
    }
}

async fn completion(
    s: &mut ServerSession,
    kind: Kind,
    req: &Value,
    model: &str,
    seed: u64,
    b: &Behaviour,
    common: &[(&str, String)],
) -> bool {
    let cap = req["max_completion_tokens"]
        .as_u64()
        .or(req["max_tokens"].as_u64())
        .map_or(usize::MAX, |n| n as usize);
    let n = b.words.min(cap);
    let finish = if b.words > cap { "length" } else { "stop" };
    let words = reply::words(seed, n);
    let (chars, msgs) = prompt_size(req);
    let pt = reply::prompt_tokens(chars, msgs);
    let usage = json!({
        "prompt_tokens": pt, "completion_tokens": n, "total_tokens": pt + n as u64,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    });
    let created = now();
    let chat = kind == Kind::Chat;
    let id = if chat {
        format!("chatcmpl-mock{seed:016x}")
    } else {
        format!("cmpl-mock{seed:016x}")
    };
    if req["stream"].as_bool() != Some(true) {
        let text: String = words.concat();
        let v = if chat {
            json!({"id": id, "object": "chat.completion", "created": created, "model": model,
                "system_fingerprint": "fp_mock",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null},
                    "logprobs": null, "finish_reason": finish}],
                "usage": usage})
        } else {
            json!({"id": id, "object": "text_completion", "created": created, "model": model,
                "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}],
                "usage": usage})
        };
        return send_json(s, 200, &v, common, b.drop_after).await;
    }

    let include_usage = req["stream_options"]["include_usage"].as_bool() == Some(true);
    let chunk = |delta: Value, finish: Option<&str>| -> Value {
        let mut v = if chat {
            json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": "fp_mock",
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
        } else {
            json!({"id": id, "object": "text_completion", "created": created, "model": model,
                "choices": [{"text": delta.as_str().unwrap_or(""), "index": 0, "logprobs": null, "finish_reason": finish}]})
        };
        if include_usage {
            v["usage"] = Value::Null;
        }
        v
    };
    let mut events: Vec<Value> = Vec::with_capacity(n + 3);
    if chat {
        events.push(chunk(
            json!({"role": "assistant", "content": "", "refusal": null}),
            None,
        ));
    }
    for w in &words {
        events.push(if chat {
            chunk(json!({"content": w}), None)
        } else {
            chunk(json!(w), None)
        });
    }
    events.push(if chat {
        chunk(json!({}), Some(finish))
    } else {
        chunk(json!(""), Some(finish))
    });
    if include_usage {
        let mut last = chunk(json!({}), None);
        last["choices"] = json!([]);
        last["usage"] = usage;
        events.push(last);
    }

    let Some(mut h) = header(200, common) else {
        return false;
    };
    let _ = h.insert_header("content-type", "text/event-stream; charset=utf-8");
    let _ = h.insert_header("cache-control", "no-cache");
    let _ = h.insert_header("transfer-encoding", "chunked");
    if s.write_response_header(Box::new(h)).await.is_err() {
        return false;
    }
    for (i, ev) in events.iter().enumerate() {
        if b.drop_after.is_some_and(|d| i >= d) {
            // Simulate a provider dying mid-stream: close without the terminating chunk.
            return false;
        }
        if i > 0 && !b.chunk_delay.is_zero() {
            tokio::time::sleep(b.chunk_delay).await;
        }
        let mut line = Vec::with_capacity(256);
        line.extend_from_slice(b"data: ");
        let _ = serde_json::to_writer(&mut line, ev);
        line.extend_from_slice(b"\n\n");
        if s.write_response_body(Bytes::from(line), false)
            .await
            .is_err()
        {
            return false;
        }
    }
    if !b.chunk_delay.is_zero() {
        tokio::time::sleep(b.chunk_delay).await;
    }
    s.write_response_body(Bytes::from_static(b"data: [DONE]\n\n"), true)
        .await
        .is_ok()
}

async fn embeddings(
    s: &mut ServerSession,
    req: &Value,
    model: &str,
    common: &[(&str, String)],
) -> bool {
    let dims = req["dimensions"].as_u64().unwrap_or(16).clamp(1, 4096) as usize;
    let inputs: Vec<String> = match &req["input"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(a) => a.iter().map(|v| v.to_string()).collect(),
        _ => return error(s, 400, common).await,
    };
    let base64 = req["encoding_format"].as_str() == Some("base64");
    let mut tokens = 0u64;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, inp)| {
            tokens += reply::prompt_tokens(inp.len(), 0) - 3;
            let v = reply::embedding(inp.as_bytes(), dims);
            let emb = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": emb})
        })
        .collect();
    let v = json!({"object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}});
    send_json(s, 200, &v, common, None).await
}

fn header(status: u16, common: &[(&str, String)]) -> Option<ResponseHeader> {
    let mut h = ResponseHeader::build(status, Some(common.len() + 4)).ok()?;
    for (k, v) in common {
        let _ = h.insert_header(k.to_string(), v.as_str());
    }
    Some(h)
}

async fn send_json(
    s: &mut ServerSession,
    status: u16,
    v: &Value,
    common: &[(&str, String)],
    drop_after: Option<usize>,
) -> bool {
    let body = serde_json::to_vec(v).unwrap_or_default();
    let Some(mut h) = header(status, common) else {
        return false;
    };
    let _ = h.insert_header("content-type", "application/json");
    let _ = h.insert_header("content-length", body.len());
    if s.write_response_header(Box::new(h)).await.is_err() {
        return false;
    }
    if drop_after.is_some() {
        let half = Bytes::copy_from_slice(&body[..body.len() / 2]);
        let _ = s.write_response_body(half, false).await;
        return false;
    }
    s.write_response_body(Bytes::from(body), true).await.is_ok()
}

/// The provider's error body for `status`, as OpenAI sends it.
async fn error(s: &mut ServerSession, status: u16, common: &[(&str, String)]) -> bool {
    let (kind, code, msg) = match status {
        400 => (
            "invalid_request_error",
            Some("invalid_json"),
            "We could not parse the JSON body of your request.",
        ),
        401 => (
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided.",
        ),
        404 => (
            "invalid_request_error",
            Some("unknown_url"),
            "Unknown request URL.",
        ),
        405 => ("invalid_request_error", None, "Method not allowed."),
        429 => (
            "requests",
            Some("rate_limit_exceeded"),
            "Rate limit reached for requests (mock).",
        ),
        503 => (
            "server_error",
            Some("server_is_overloaded"),
            "The server is overloaded (mock).",
        ),
        _ => (
            "server_error",
            None,
            "The server had an error while processing your request (mock).",
        ),
    };
    let v = json!({"error": {"message": msg, "type": kind, "param": null, "code": code}});
    let body = serde_json::to_vec(&v).unwrap_or_default();
    let Some(mut h) = header(status, common) else {
        return false;
    };
    let _ = h.insert_header("content-type", "application/json");
    let _ = h.insert_header("content-length", body.len());
    if status == 429 {
        let _ = h.insert_header("retry-after", "1");
    }
    if s.write_response_header(Box::new(h)).await.is_err() {
        return false;
    }
    s.write_response_body(Bytes::from(body), true).await.is_ok()
}
