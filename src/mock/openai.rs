//! The mock's OpenAI API (and Azure's deployment paths): chat, completions, embeddings,
//! models, with tool calls, cached and reasoning tokens in usage, and OpenAI's error bodies.

use super::{key_ok, reply, send_events, send_json, tools, Behaviour, MockSettings, Request};
use base64::Engine;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Models,
    Chat,
    Completion,
    Embeddings,
}

/// `azure`: the deployment and the operation path (`/v1/chat/completions`) of an Azure path.
pub(super) async fn handle(
    s: &mut ServerSession,
    mut req: Request,
    b: &Behaviour,
    set: &MockSettings,
    azure: Option<(String, String)>,
) -> bool {
    let common = &req.common;
    let key = set.expect_key.as_deref();
    let authorised = match azure {
        Some(_) => key_ok(s, "api-key", "", key),
        None => key_ok(s, "authorization", "Bearer ", key),
    };
    if !authorised {
        return error(s, 401, common).await;
    }
    if azure.is_some()
        && !s
            .req_header()
            .uri
            .query()
            .unwrap_or("")
            .contains("api-version=")
    {
        return error(s, 400, common).await;
    }
    if let Some(code) = b.status.filter(|c| (300..=599).contains(c)) {
        return error(s, code, common).await;
    }
    let path = azure
        .as_ref()
        .map_or(req.path.as_str(), |(_, op)| op.as_str());
    let (method_ok, kind) = match path {
        "/v1/models" => (req.method == http::Method::GET, Kind::Models),
        "/v1/chat/completions" => (req.method == http::Method::POST, Kind::Chat),
        "/v1/completions" => (req.method == http::Method::POST, Kind::Completion),
        "/v1/embeddings" => (req.method == http::Method::POST, Kind::Embeddings),
        _ => return error(s, 404, common).await,
    };
    if !method_ok {
        return error(s, 405, common).await;
    }
    if kind == Kind::Models {
        let data: Vec<Value> = set.models.iter()
            .map(|m| json!({"id": m, "object": "model", "created": 1_700_000_000u64, "owned_by": "tollgate-mock"}))
            .collect();
        let v = json!({"object": "list", "data": data});
        return send_json(s, 200, &v, common, None, &[]).await;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return error(s, 400, common).await;
    };
    // Azure: the deployment is the model.
    let model = match &azure {
        Some((dep, _)) => dep.clone(),
        None => body["model"].as_str().unwrap_or("mock").to_string(),
    };
    req.common.push(("x-mock-model", model.clone()));
    match kind {
        Kind::Embeddings => embeddings(s, &body, &model, &req.common).await,
        _ => completion(s, kind == Kind::Chat, &body, &model, b, &req.common).await,
    }
}

fn usage(req: &Value, n: usize, b: &Behaviour) -> Value {
    let pt = super::prompt_tokens(req);
    let cached = b.cached_tokens.unwrap_or(0).min(pt);
    let reasoning = match req["reasoning_effort"].as_str() {
        Some("low" | "medium" | "high") => n as u64 / 2,
        _ => 0,
    };
    json!({
        "prompt_tokens": pt, "completion_tokens": n, "total_tokens": pt + n as u64,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    })
}

async fn completion(
    s: &mut ServerSession,
    chat: bool,
    req: &Value,
    model: &str,
    b: &Behaviour,
    common: &[(&str, String)],
) -> bool {
    let seed = super::seed(model, req);
    let calls = if chat {
        tools::openai_calls(req, seed)
    } else {
        vec![]
    };
    let cap = req["max_completion_tokens"]
        .as_u64()
        .or(req["max_tokens"].as_u64())
        .map_or(usize::MAX, |n| n as usize);
    let n = b.words.min(cap);
    let words = reply::words(seed, n);
    let (finish, n) = if !calls.is_empty() {
        ("tool_calls", tools::tokens(&calls))
    } else if b.words > cap {
        ("length", n)
    } else {
        ("stop", n)
    };
    let usage = usage(req, n, b);
    let created = super::now();
    let id = if chat {
        format!("chatcmpl-mock{seed:016x}")
    } else {
        format!("cmpl-mock{seed:016x}")
    };
    let head =
        |object: &str| json!({"id": id, "object": object, "created": created, "model": model});
    if req["stream"].as_bool() != Some(true) {
        let mut v = head(if chat {
            "chat.completion"
        } else {
            "text_completion"
        });
        let text: String = words.concat();
        v["choices"] = if chat {
            let mut msg = json!({"role": "assistant", "content": text, "refusal": null});
            if !calls.is_empty() {
                msg["content"] = Value::Null;
                msg["tool_calls"] = tools::openai_message_calls(&calls, seed);
            }
            json!([{"index": 0, "message": msg, "logprobs": null, "finish_reason": finish}])
        } else {
            json!([{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}])
        };
        v["usage"] = usage;
        if chat {
            v["system_fingerprint"] = json!("fp_mock");
        }
        return send_json(s, 200, &v, common, b.drop_after, &[]).await;
    }
    let include_usage = req["stream_options"]["include_usage"].as_bool() == Some(true);
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let chunk = |choice: Value| {
        let mut v = head(object);
        v["choices"] = json!([choice]);
        if include_usage {
            v["usage"] = Value::Null;
        }
        super::sse(None, &v)
    };
    let mut events = Vec::with_capacity(n + 4);
    if chat {
        events.push(chunk(json!({"index": 0, "delta": {"role": "assistant", "content": "", "refusal": null}, "logprobs": null, "finish_reason": null})));
        if calls.is_empty() {
            for w in &words {
                events.push(chunk(json!({"index": 0, "delta": {"content": w}, "logprobs": null, "finish_reason": null})));
            }
        }
        for delta in tools::openai_stream_deltas(&calls, seed) {
            events.push(chunk(
                json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}),
            ));
        }
        events.push(chunk(
            json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish}),
        ));
    } else {
        for w in &words {
            events.push(chunk(
                json!({"text": w, "index": 0, "logprobs": null, "finish_reason": null}),
            ));
        }
        events.push(chunk(
            json!({"text": "", "index": 0, "logprobs": null, "finish_reason": finish}),
        ));
    }
    if include_usage {
        let mut last = head(object);
        last["choices"] = json!([]);
        last["usage"] = usage;
        events.push(super::sse(None, &last));
    }
    events.push(b"data: [DONE]\n\n".to_vec());
    let err = json!({"error": {"message": "The server is overloaded (mock).", "type": "server_error", "param": null, "code": "server_is_overloaded"}});
    send_events(s, &events, b, &super::sse(None, &err), common, &[]).await
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
    send_json(s, 200, &v, common, None, &[]).await
}

/// The provider's error body for `status`, as OpenAI sends it.
pub(super) async fn error(s: &mut ServerSession, status: u16, common: &[(&str, String)]) -> bool {
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
    let retry: &[(&str, &str)] = if status == 429 {
        &[("retry-after", "1")]
    } else {
        &[]
    };
    send_json(s, status, &v, common, None, retry).await
}
