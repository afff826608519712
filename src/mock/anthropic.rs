//! The mock's Anthropic Messages API: `/v1/messages` (JSON and SSE in Anthropic's exact event
//! order, with `ping`, thinking, tool use and cache usage) and `/v1/messages/count_tokens`,
//! checking what Anthropic checks (`x-api-key`, `anthropic-version`, `max_tokens`).

use super::{key_ok, reply, send_events, send_json, sse, tools, Behaviour, MockSettings, Request};
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};

const VERSION: &str = "2023-06-01";
/// Words of thinking text when the request enables thinking.
const THINKING_WORDS: usize = 4;

pub(super) async fn handle(
    s: &mut ServerSession,
    mut req: Request,
    b: &Behaviour,
    set: &MockSettings,
) -> bool {
    let common = &req.common;
    if !key_ok(s, "x-api-key", "", set.expect_key.as_deref()) {
        return error(s, 401, "invalid x-api-key", common).await;
    }
    let version = s.req_header().headers.get("anthropic-version");
    if version.is_none_or(|v| v.as_bytes() != VERSION.as_bytes()) {
        let msg = "anthropic-version: header is required and must be a supported version";
        return error(s, 400, msg, common).await;
    }
    if let Some(code) = b.status.filter(|c| (300..=599).contains(c)) {
        return error(s, code, "mock fault", common).await;
    }
    let count = match (req.path.as_str(), &req.method) {
        ("/v1/messages", &http::Method::POST) => false,
        ("/v1/messages/count_tokens", &http::Method::POST) => true,
        _ => return error(s, 404, "Not found", common).await,
    };
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return error(s, 400, "invalid JSON body", common).await;
    };
    if body["messages"].as_array().is_none_or(Vec::is_empty) {
        return error(s, 400, "messages: Field required", common).await;
    }
    if count {
        let v = json!({"input_tokens": super::prompt_tokens(&body)});
        return send_json(s, 200, &v, common, None, &[]).await;
    }
    let Some(max) = body["max_tokens"].as_u64().filter(|&n| n >= 1) else {
        return error(s, 400, "max_tokens: Field required", common).await;
    };
    let model = body["model"].as_str().unwrap_or("mock").to_string();
    req.common.push(("x-mock-model", model.clone()));
    let reply = Reply::new(&body, &model, max, b);
    if body["stream"].as_bool() == Some(true) {
        let err = sse(
            Some("error"),
            &json!({"type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        );
        let rid = reply.request_id();
        send_events(
            s,
            &reply.events(),
            b,
            &err,
            &req.common,
            &[("request-id", &rid)],
        )
        .await
    } else {
        let rid = reply.request_id();
        let v = reply.message();
        send_json(
            s,
            200,
            &v,
            &req.common,
            b.drop_after,
            &[("request-id", &rid)],
        )
        .await
    }
}

/// One deterministic reply, rendered whole or as events.
struct Reply {
    id: String,
    model: String,
    thinking: Option<String>,
    text: Vec<String>,
    calls: Vec<tools::Call>,
    stop: &'static str,
    usage: Value,
    seed: u64,
}

impl Reply {
    fn new(body: &Value, model: &str, max: u64, b: &Behaviour) -> Reply {
        let seed = super::seed(model, body);
        let calls = tools::anthropic_calls(body, seed);
        let thinking = (body["thinking"]["type"] == "enabled")
            .then(|| reply::words(seed ^ 0x5eed, THINKING_WORDS).concat());
        let n = b.words.min(max as usize);
        let (text, stop) = if !calls.is_empty() {
            (vec!["I'll use the tool.".to_string()], "tool_use")
        } else if b.words > max as usize {
            (reply::words(seed, n), "max_tokens")
        } else {
            (reply::words(seed, n), "end_turn")
        };
        let output = if calls.is_empty() {
            n
        } else {
            5 + tools::tokens(&calls)
        } + thinking.as_ref().map_or(0, |_| THINKING_WORDS);
        let p = super::prompt_tokens(body);
        let (read, write) = if body.to_string().contains("\"cache_control\"") {
            (p / 2, p / 4)
        } else {
            (0, 0)
        };
        let usage = json!({"input_tokens": p - read - write, "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read, "output_tokens": output, "service_tier": "standard"});
        Reply {
            id: format!("msg_mock{seed:016x}"),
            model: model.to_string(),
            thinking,
            text,
            calls,
            stop,
            usage,
            seed,
        }
    }

    fn request_id(&self) -> String {
        format!("req_mock{:016x}", self.seed)
    }

    fn tool_id(&self, i: usize) -> String {
        format!("toolu_mock{:012x}{i}", self.seed)
    }

    fn message(&self) -> Value {
        let mut content = Vec::new();
        if let Some(t) = &self.thinking {
            content.push(json!({"type": "thinking", "thinking": t, "signature": "mocksig"}));
        }
        content.push(json!({"type": "text", "text": self.text.concat()}));
        for (i, c) in self.calls.iter().enumerate() {
            content.push(
                json!({"type": "tool_use", "id": self.tool_id(i), "name": c.name, "input": c.args}),
            );
        }
        json!({"id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": content, "stop_reason": self.stop, "stop_sequence": null, "usage": self.usage})
    }

    fn events(&self) -> Vec<Vec<u8>> {
        let mut start_usage = self.usage.clone();
        start_usage["output_tokens"] = json!(1);
        let mut ev = vec![sse(
            Some("message_start"),
            &json!({"type": "message_start", "message": {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": null, "stop_sequence": null, "usage": start_usage}}),
        )];
        let mut index = 0;
        if let Some(t) = &self.thinking {
            let deltas = vec![
                json!({"type": "thinking_delta", "thinking": t}),
                json!({"type": "signature_delta", "signature": "mocksig"}),
            ];
            block(
                &mut ev,
                index,
                json!({"type": "thinking", "thinking": "", "signature": ""}),
                deltas,
            );
            index += 1;
        }
        let texts = self
            .text
            .iter()
            .map(|w| json!({"type": "text_delta", "text": w}))
            .collect();
        block(&mut ev, index, json!({"type": "text", "text": ""}), texts);
        for (i, c) in self.calls.iter().enumerate() {
            index += 1;
            let mut parts = vec![json!({"type": "input_json_delta", "partial_json": ""})];
            parts.extend(
                tools::fragments(&c.args.to_string())
                    .into_iter()
                    .map(|f| json!({"type": "input_json_delta", "partial_json": f})),
            );
            block(
                &mut ev,
                index,
                json!({"type": "tool_use", "id": self.tool_id(i), "name": c.name, "input": {}}),
                parts,
            );
        }
        ev.push(sse(
            Some("message_delta"),
            &json!({"type": "message_delta",
            "delta": {"stop_reason": self.stop, "stop_sequence": null},
            "usage": {"output_tokens": self.usage["output_tokens"]}}),
        ));
        ev.push(sse(Some("message_stop"), &json!({"type": "message_stop"})));
        ev
    }
}

/// One content block's events; the first block is followed by a `ping`, as Anthropic does.
fn block(ev: &mut Vec<Vec<u8>>, index: usize, start: Value, deltas: Vec<Value>) {
    ev.push(sse(
        Some("content_block_start"),
        &json!({"type": "content_block_start", "index": index, "content_block": start}),
    ));
    if index == 0 {
        ev.push(sse(Some("ping"), &json!({"type": "ping"})));
    }
    for d in deltas {
        ev.push(sse(
            Some("content_block_delta"),
            &json!({"type": "content_block_delta", "index": index, "delta": d}),
        ));
    }
    ev.push(sse(
        Some("content_block_stop"),
        &json!({"type": "content_block_stop", "index": index}),
    ));
}

/// Anthropic's error body for `status`.
async fn error(s: &mut ServerSession, status: u16, msg: &str, common: &[(&str, String)]) -> bool {
    let (kind, msg) = match status {
        400 => ("invalid_request_error", msg),
        401 => ("authentication_error", msg),
        403 => ("permission_error", msg),
        404 => ("not_found_error", msg),
        429 => (
            "rate_limit_error",
            "Number of requests has exceeded your rate limit (mock).",
        ),
        529 => ("overloaded_error", "Overloaded"),
        _ => ("api_error", "Internal server error (mock)."),
    };
    let v = json!({"type": "error", "error": {"type": kind, "message": msg}, "request_id": "req_mock_error"});
    let retry: &[(&str, &str)] = if status == 429 {
        &[("retry-after", "1")]
    } else {
        &[]
    };
    send_json(s, status, &v, common, None, retry).await
}
