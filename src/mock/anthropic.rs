//! The mock's Anthropic Messages API: `/v1/messages` (JSON, and SSE in Anthropic's exact event
//! order with `ping`, thinking, tool use, stop sequences and cache usage) and
//! `/v1/messages/count_tokens`, checking what Anthropic checks and in its order: `x-api-key`,
//! `anthropic-version`, a JSON body, `max_tokens`, `messages`.

use super::{
    header_str, key_ok, raw, reply, send_events, send_json, sse, tools, Behaviour, MockSettings,
    Obj, Request,
};
use base64::Engine;
use pingora::protocols::http::ServerSession;
use serde_json::value::RawValue;
use serde_json::Value;

const VERSION: &str = "2023-06-01";
/// Words of thinking text when the request enables thinking.
const THINKING_WORDS: usize = 4;
/// The text before tool calls, in the two deltas Anthropic's own streams start with.
const TOOL_PREAMBLE: [&str; 2] = ["I", "'ll use the tool."];
/// Output tokens of the preamble.
const TOOL_PREAMBLE_TOKENS: usize = 5;
/// Anthropic's `ping`, byte for byte (its JSON has a space the others lack).
const PING: &[u8] = b"event: ping\ndata: {\"type\": \"ping\"}\n\n";

pub(super) async fn handle(
    s: &mut ServerSession,
    mut req: Request,
    b: &Behaviour,
    set: &MockSettings,
) -> bool {
    let rid = format!("req_mock{:016x}", reply::seed(&req.body));
    req.common.push(("request-id", rid));
    let common = &req.common;
    if !key_ok(s, "x-api-key", "", set.expect_key.as_deref()) {
        return error(s, 401, "invalid x-api-key", common).await;
    }
    if let Err(msg) = check_version(header_str(s, "anthropic-version")) {
        return error(s, 400, &msg, common).await;
    }
    let count = match (req.path.as_str(), &req.method) {
        ("/v1/messages", &http::Method::POST) => false,
        ("/v1/messages/count_tokens", &http::Method::POST) => true,
        _ => return error(s, 404, "Not found", common).await,
    };
    messages(s, req, b, count).await
}

/// After the API's own checks (key, version, path; Claude on Vertex makes its own): faults,
/// the body's checks, and the reply or token count.
pub(super) async fn messages(
    s: &mut ServerSession,
    mut req: Request,
    b: &Behaviour,
    count: bool,
) -> bool {
    let common = &req.common;
    if let Some(code) = b.status.filter(|c| (300..=599).contains(c)) {
        return error(s, code, "mock fault", common).await;
    }
    // Claude on Vertex names the model in its path; Anthropic's own API, in the body.
    let model_in_body = req.path.starts_with("/v1/messages");
    let (body, max) = match check_body(&req.body, count, model_in_body) {
        Ok(checked) => checked,
        Err(msg) => return error(s, 400, msg, common).await,
    };
    if count {
        let v = obj! {"input_tokens": reply::request_prompt_tokens(&body)};
        return send_json(s, 200, &v, common, None, &[]).await;
    }
    let model = body["model"].as_str().unwrap_or("mock").to_string();
    req.common.push(("x-mock-model", model.clone()));
    let reply = Reply::new(&body, &model, max, b);
    if body["stream"].as_bool() == Some(true) {
        let err = obj! {"type": "error",
        "error": obj! {"type": "overloaded_error", "message": "Overloaded"}};
        let err = sse(Some("error"), &err);
        send_events(s, reply.events(), b, &err, &req.common, &[]).await
    } else {
        send_json(s, 200, &reply.message(), &req.common, b.drop_after, &[]).await
    }
}

/// Any dated version from the first (`2023-01-01`) on, as the SDKs send them; anything else
/// is refused as Anthropic refuses it.
fn check_version(v: Option<&str>) -> Result<(), String> {
    match v {
        None => Err("anthropic-version: header is required".into()),
        Some(v) if dated(v).is_some_and(|d| d >= FIRST_VERSION) => Ok(()),
        Some(other) => Err(format!(
            "anthropic-version: `{other}` is not a valid version (a date such as {VERSION})"
        )),
    }
}

/// The first API version.
const FIRST_VERSION: (u32, u32, u32) = (2023, 1, 1);

/// `YYYY-MM-DD` as (year, month, day), when it is a plausible date.
fn dated(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('-');
    let mut part = |len: usize| {
        it.next()
            .filter(|p| p.len() == len && p.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|p| p.parse::<u32>().ok())
    };
    let (y, m, d) = (part(4)?, part(2)?, part(2)?);
    (it.next().is_none() && (1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

/// The body checks, in Anthropic's order; `count_tokens` takes no `max_tokens` (returned as 0);
/// `model_in_body`: a string `model` is required.
fn check_body(raw: &[u8], count: bool, model_in_body: bool) -> Result<(Value, u64), &'static str> {
    let body: Value = serde_json::from_slice(raw)
        .map_err(|_| "There was an issue with your request body: invalid JSON.")?;
    if !body.is_object() {
        return Err("Input should be a valid dictionary or object to extract fields from");
    }
    let max = if count {
        0
    } else {
        match (&body["max_tokens"], body["max_tokens"].as_i64()) {
            (Value::Null, _) => return Err("max_tokens: Field required"),
            (_, Some(n)) if n >= 1 => n as u64,
            (_, Some(_)) => return Err("max_tokens: Input should be greater than or equal to 1"),
            (_, None) => return Err("max_tokens: Input should be a valid integer"),
        }
    };
    match &body["messages"] {
        Value::Null => return Err("messages: Field required"),
        Value::Array(m) if m.is_empty() => {
            return Err("messages: at least one message is required")
        }
        Value::Array(_) => {}
        _ => return Err("messages: Input should be a valid list"),
    }
    match &body["model"] {
        _ if !model_in_body => Ok((body, max)),
        Value::Null => Err("model: Field required"),
        Value::String(_) => Ok((body, max)),
        _ => Err("model: Input should be a valid string"),
    }
}

/// Whether `key` appears anywhere in `v` (as `cache_control` may, on any block or tool).
fn mentions(v: &Value, key: &str) -> bool {
    match v {
        Value::Object(o) => o.contains_key(key) || o.values().any(|x| mentions(x, key)),
        Value::Array(a) => a.iter().any(|x| mentions(x, key)),
        _ => false,
    }
}

/// Token counts of a reply.
struct Usage {
    input: u64,
    cache_write: u64,
    cache_read: u64,
    output: usize,
}

impl Usage {
    /// Prompt `p` split as Anthropic reports it (`input_tokens` excludes the cached part):
    /// `x-mock-cached-tokens` reads that many from the cache, else any `cache_control` reads
    /// half the prompt and writes a quarter.
    fn new(body: &Value, b: &Behaviour, output: usize) -> Usage {
        let p = reply::request_prompt_tokens(body);
        let (cache_read, cache_write) = match b.cached_tokens {
            Some(n) => (n.min(p), 0),
            None if mentions(body, "cache_control") => (p / 2, p / 4),
            None => (0, 0),
        };
        Usage {
            input: p - cache_read - cache_write,
            cache_write,
            cache_read,
            output,
        }
    }

    /// The `Usage` of the current API: the cache write split by lifetime (`cache_creation`,
    /// all of it 5-minute entries), `service_tier` and `inference_geo`.
    fn render(&self, output: usize) -> Obj {
        let creation = obj! {"ephemeral_5m_input_tokens": self.cache_write,
        "ephemeral_1h_input_tokens": 0};
        obj! {"input_tokens": self.input, "cache_creation_input_tokens": self.cache_write,
        "cache_read_input_tokens": self.cache_read, "cache_creation": creation,
        "output_tokens": output, "service_tier": "standard", "inference_geo": "not_available"}
    }

    /// `message_delta`'s usage: cumulative, with the input figures repeated, as the current
    /// API sends it.
    fn render_delta(&self) -> Obj {
        obj! {"input_tokens": self.input, "cache_creation_input_tokens": self.cache_write,
        "cache_read_input_tokens": self.cache_read, "output_tokens": self.output}
    }
}

/// One deterministic reply, rendered whole or as events.
struct Reply {
    id: String,
    model: String,
    /// Words of the thinking block (none without `thinking` enabled).
    thinking: Vec<String>,
    /// The text block, as its deltas.
    text: Vec<String>,
    calls: Vec<tools::Call>,
    stop: &'static str,
    stop_sequence: Option<String>,
    usage: Usage,
    seed: u64,
}

/// A text reply: its words, stop reason, the stop sequence met (the reply ends before it; it
/// counts as one output token) and the output tokens.
fn text_reply(body: &Value, seed: u64, max: u64, words: usize) -> TextReply {
    let n = words.min(usize::try_from(max).unwrap_or(usize::MAX));
    let mut out = tools::structured_or(body, seed, || reply::words(seed, n));
    let stops: Vec<&str> = (body["stop_sequences"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    if let Some(i) = out.iter().position(|w| stops.contains(&w.trim())) {
        let seq = out[i].trim().to_string();
        out.truncate(i);
        return (out, "stop_sequence", Some(seq), i + 1);
    }
    let stop = if n < words { "max_tokens" } else { "end_turn" };
    (out, stop, None, n)
}

type TextReply = (Vec<String>, &'static str, Option<String>, usize);

impl Reply {
    fn new(body: &Value, model: &str, max: u64, b: &Behaviour) -> Reply {
        let seed = reply::request_seed(model, body);
        let calls = tools::anthropic_calls(body, seed);
        let thinking = if body["thinking"]["type"] == "enabled" {
            reply::words(seed ^ 0x5eed, THINKING_WORDS)
        } else {
            vec![]
        };
        let (text, stop, stop_sequence, tokens) = if calls.is_empty() {
            text_reply(body, seed, max, b.words)
        } else {
            let text = TOOL_PREAMBLE.map(String::from).to_vec();
            (
                text,
                "tool_use",
                None,
                TOOL_PREAMBLE_TOKENS + tools::tokens(&calls),
            )
        };
        Reply {
            id: format!("msg_mock{seed:016x}"),
            model: model.to_string(),
            usage: Usage::new(body, b, tokens + thinking.len()),
            thinking,
            text,
            calls,
            stop,
            stop_sequence,
            seed,
        }
    }

    fn tool_id(&self, i: usize) -> String {
        format!("toolu_mock{:012x}{i}", self.seed)
    }

    /// A thinking signature: opaque base64, as Anthropic's are.
    fn signature(&self) -> String {
        let mut rng = reply::Rng::new(self.seed ^ 0x51c0);
        let bytes: Vec<u8> = (0..8).flat_map(|_| rng.next().to_le_bytes()).collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn tool_block(&self, i: usize, input: &impl serde::Serialize) -> Obj {
        let c = &self.calls[i];
        obj! {"type": "tool_use", "id": self.tool_id(i), "name": c.name,
        "caller": obj! {"type": "direct"}, "input": input}
    }

    /// The `Message` around `content`: finished (stop reason set) or as `message_start` has it.
    fn envelope(&self, content: Box<RawValue>, finished: bool, output: usize) -> Obj {
        let (stop, seq) = if finished {
            (Some(self.stop), self.stop_sequence.as_deref())
        } else {
            (None, None)
        };
        obj! {"id": self.id, "type": "message", "role": "assistant", "model": self.model,
        "content": content, "stop_reason": stop, "stop_sequence": seq,
        "usage": self.usage.render(output)}
    }

    fn message(&self) -> Obj {
        let mut content = Vec::new();
        if !self.thinking.is_empty() {
            content.push(
                obj! {"type": "thinking", "thinking": self.thinking.concat(),
                "signature": self.signature()},
            );
        }
        content.push(obj! {"type": "text", "text": self.text.concat()});
        for (i, c) in self.calls.iter().enumerate() {
            content.push(self.tool_block(i, &c.args));
        }
        self.envelope(raw(&content), true, self.usage.output)
    }

    /// The stream: `message_start`, each block (a `ping` after the first block's start), then
    /// `message_delta` with the cumulative output tokens and `message_stop`; made one event at
    /// a time as the socket takes them.
    fn events(&self) -> impl Iterator<Item = Vec<u8>> + Send + '_ {
        let start = self.envelope(raw(&super::EMPTY), false, 1);
        let head = sse(
            Some("message_start"),
            &obj! {"type": "message_start", "message": start},
        );
        let mut blocks: Vec<Box<dyn Iterator<Item = Vec<u8>> + Send + '_>> = Vec::new();
        if !self.thinking.is_empty() {
            let mut deltas: Vec<Obj> = (self.thinking.iter())
                .map(|w| obj! {"type": "thinking_delta", "thinking": w})
                .collect();
            deltas.push(obj! {"type": "signature_delta", "signature": self.signature()});
            let start = obj! {"type": "thinking", "thinking": "", "signature": ""};
            blocks.push(Box::new(block(blocks.len(), start, deltas)));
        }
        let text = (self.text.iter()).map(|w| obj! {"type": "text_delta", "text": w});
        let start = obj! {"type": "text", "text": ""};
        blocks.push(Box::new(block(blocks.len(), start, text)));
        for (i, c) in self.calls.iter().enumerate() {
            // Anthropic's first input fragment is empty.
            let mut parts = vec![obj! {"type": "input_json_delta", "partial_json": ""}];
            parts.extend(
                tools::fragments(&c.args.to_string())
                    .into_iter()
                    .map(|f| obj! {"type": "input_json_delta", "partial_json": f}),
            );
            blocks.push(Box::new(block(
                blocks.len(),
                self.tool_block(i, &obj! {}),
                parts,
            )));
        }
        let delta = obj! {"stop_reason": self.stop, "stop_sequence": self.stop_sequence};
        let end = obj! {"type": "message_delta", "delta": delta,
        "usage": self.usage.render_delta()};
        let tail = [
            sse(Some("message_delta"), &end),
            sse(Some("message_stop"), &obj! {"type": "message_stop"}),
        ];
        std::iter::once(head)
            .chain(blocks.into_iter().flatten())
            .chain(tail)
    }
}

/// One content block's events; the first block's start is followed by a `ping`, as
/// Anthropic's streams have it.
fn block<'a>(
    index: usize,
    start: Obj,
    deltas: impl IntoIterator<Item = Obj, IntoIter: Send + 'a>,
) -> impl Iterator<Item = Vec<u8>> + Send + 'a {
    let start = obj! {"type": "content_block_start", "index": index, "content_block": start};
    let start = sse(Some("content_block_start"), &start);
    let ping = (index == 0).then(|| PING.to_vec());
    let deltas = deltas.into_iter().map(move |d| {
        let d = obj! {"type": "content_block_delta", "index": index, "delta": d};
        sse(Some("content_block_delta"), &d)
    });
    let stop = obj! {"type": "content_block_stop", "index": index};
    let stop = sse(Some("content_block_stop"), &stop);
    std::iter::once(start)
        .chain(ping)
        .chain(deltas)
        .chain(std::iter::once(stop))
}

/// Anthropic's error body for `status` (with this request's `request_id`, as recent API
/// versions send it); 429 adds `retry-after`.
pub(super) async fn error(
    s: &mut ServerSession,
    status: u16,
    msg: &str,
    common: &[(&str, String)],
) -> bool {
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
    let rid = common.iter().find(|(k, _)| *k == "request-id");
    let v = obj! {"type": "error", "error": obj! {"type": kind, "message": msg},
    "request_id": rid.map(|(_, v)| v)};
    super::send_error(s, status, &v, common).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_in_anthropics_order() {
        let check_body = |raw: &[u8], count: bool| check_body(raw, count, true);
        assert!(check_body(b"{", false).is_err());
        let no_max = json!({"messages": []}).to_string();
        assert_eq!(
            check_body(no_max.as_bytes(), false).err(),
            Some("max_tokens: Field required")
        );
        // count_tokens takes no max_tokens.
        assert_eq!(
            check_body(no_max.as_bytes(), true).err(),
            Some("messages: at least one message is required")
        );
        let zero = json!({"max_tokens": 0, "messages": [{}]}).to_string();
        assert!(check_body(zero.as_bytes(), false).is_err());
        let no_model = json!({"max_tokens": 8, "messages": [{}]}).to_string();
        assert_eq!(
            check_body(no_model.as_bytes(), false).err(),
            Some("model: Field required")
        );
        // Claude on Vertex names the model in the path.
        assert!(super::check_body(no_model.as_bytes(), false, false).is_ok());
        let text = json!({"model": "m", "max_tokens": 8, "messages": "Hi"}).to_string();
        assert_eq!(
            check_body(text.as_bytes(), false).err(),
            Some("messages: Input should be a valid list")
        );
        assert!(check_version(None).is_err());
        for ok in ["2023-06-01", "2023-01-01", "2025-11-20"] {
            assert!(check_version(Some(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "2022-12-31",
            "latest",
            "2023-6-1",
            "2023-13-01",
            "2023-06-01x",
        ] {
            assert!(check_version(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn stop_sequence_ends_the_reply_before_it() {
        let body = json!({"messages": [{"role": "user", "content": "Hi"}]});
        let (all, stop, _, n) = text_reply(&body, 7, 100, 12);
        assert_eq!((stop, n), ("end_turn", 12));
        let third = all[2].trim().to_string();
        let body = json!({"stop_sequences": [third.clone()]});
        let (words, stop, seq, n) = text_reply(&body, 7, 100, 12);
        let first = all.iter().position(|w| w.trim() == third).unwrap_or(2);
        assert_eq!(stop, "stop_sequence");
        assert_eq!(seq.as_deref(), Some(third.as_str()));
        assert_eq!((words.len(), n), (first, first + 1));
        assert_eq!(text_reply(&json!({}), 7, 1, 12).1, "max_tokens");
    }

    #[test]
    fn cache_control_found_anywhere() {
        let v = json!({"tools": [{"name": "a", "cache_control": {"type": "ephemeral"}}]});
        assert!(mentions(&v, "cache_control"));
        assert!(!mentions(
            &json!({"text": "cache_control"}),
            "cache_control"
        ));
    }
}
