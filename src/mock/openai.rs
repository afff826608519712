//! The mock's OpenAI API (and Azure's deployment paths): chat, completions, embeddings,
//! models, with tool calls, cached and reasoning tokens in usage, and OpenAI's error bodies.
//! Keys come in OpenAI's order (`obj!`), so replies read like the real ones.

use super::openai_error::{error, invalid, send_error};
use super::{
    key_ok, raw, reply, send_events, send_json, tools, Behaviour, MockSettings, Obj, Request, EMPTY,
};
use base64::Engine;
use pingora::protocols::http::ServerSession;
use serde_json::value::RawValue;
use serde_json::Value;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Models,
    Chat,
    Completion,
    Embeddings,
    Responses,
}

/// `azure`: the deployment and the operation path (`/v1/chat/completions`) of an Azure path.
pub(super) async fn handle(
    s: &mut ServerSession,
    mut req: Request,
    b: &Behaviour,
    set: &MockSettings,
    azure: Option<(String, String)>,
) -> bool {
    let rid = format!("req_mock{:016x}", reply::seed(&req.body));
    req.common.push(("x-request-id", rid));
    let common = &req.common;
    let key = set.expect_key.as_deref();
    // Azure's Responses API is not per deployment: `/openai/responses?api-version=…`.
    let azure_responses = req.path.starts_with("/openai/responses");
    let authorised = match azure {
        _ if azure_responses => key_ok(s, "api-key", "", key),
        Some(_) => key_ok(s, "api-key", "", key),
        None => key_ok(s, "authorization", "Bearer ", key),
    };
    if !authorised {
        return error(s, 401, common).await;
    }
    if (azure.is_some() || azure_responses) && !has_api_version(s.req_header().uri.query()) {
        let msg = "Missing required query parameter: api-version.";
        return invalid(s, "api-version", "missing_required_parameter", msg, common).await;
    }
    if let Some(code) = b.status.filter(|c| (300..=599).contains(c)) {
        return error(s, code, common).await;
    }
    let path = azure
        .as_ref()
        .map_or(req.path.as_str(), |(_, op)| op.as_str());
    let stored = (path.strip_prefix("/v1/responses/"))
        .or_else(|| path.strip_prefix("/openai/responses/"))
        .filter(|rest| *rest != "input_tokens");
    if let Some(rest) = stored {
        let query = s.req_header().uri.query().map(str::to_string);
        return super::stored::handle(s, rest, &req.method, query.as_deref(), common).await;
    }
    let (method_ok, kind) = match path {
        "/v1/models" => (req.method == http::Method::GET, Kind::Models),
        "/v1/chat/completions" => (req.method == http::Method::POST, Kind::Chat),
        "/v1/completions" => (req.method == http::Method::POST, Kind::Completion),
        "/v1/embeddings" => (req.method == http::Method::POST, Kind::Embeddings),
        "/v1/responses" | "/v1/responses/input_tokens" | "/openai/responses" => {
            (req.method == http::Method::POST, Kind::Responses)
        }
        _ => return error(s, 404, common).await,
    };
    if !method_ok {
        return error(s, 405, common).await;
    }
    if kind == Kind::Models {
        return models(s, set, common).await;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return error(s, 400, common).await;
    };
    let create_response = kind == Kind::Responses && !path.ends_with("/input_tokens");
    if let Err((param, code, msg)) = check_body(kind, create_response, azure.is_none(), &body) {
        let e = ("invalid_request_error", code, param, msg.as_str());
        return send_error(s, 400, e, common).await;
    }
    // Azure: the deployment is the model (the body's `model` is ignored, as Azure does).
    let model = match &azure {
        Some((dep, _)) => {
            req.common.push(("x-ms-deployment-name", dep.clone()));
            dep.clone()
        }
        None => body["model"].as_str().unwrap_or("mock").to_string(),
    };
    req.common.push(("x-mock-model", model.clone()));
    match kind {
        Kind::Embeddings => embeddings(s, &body, &model, &req.common).await,
        Kind::Responses => super::responses::handle(s, &req, &body, &model, b).await,
        _ => completion(s, kind == Kind::Chat, &body, &model, b, &req.common).await,
    }
}

/// A 400's `(param, code, message)`.
type Invalid = (Option<&'static str>, Option<&'static str>, String);

/// The checks OpenAI makes of a body's required fields, with its messages: chat needs `model`
/// (not on an Azure deployment path, whose deployment is the model) and a non-empty array of
/// `messages`; creating a Response needs `model`, and `input`, when given, is a string or an
/// array.
fn check_body(
    kind: Kind,
    create_response: bool,
    model_in_body: bool,
    body: &Value,
) -> Result<(), Invalid> {
    let missing = |p: &'static str| {
        let msg = format!("Missing required parameter: '{p}'.");
        Err((Some(p), Some("missing_required_parameter"), msg))
    };
    let mistyped = |p: &'static str, want: &str, v: &Value| {
        let msg = format!(
            "Invalid type for '{p}': expected {want}, but got {} instead.",
            type_name(v)
        );
        Err((Some(p), Some("invalid_type"), msg))
    };
    let model = &body["model"];
    let needs_model = model_in_body && (kind == Kind::Chat || create_response);
    match model {
        Value::Null if needs_model && kind == Kind::Chat => {
            let msg = "you must provide a model parameter".to_string();
            return Err((None, None, msg));
        }
        Value::Null if needs_model => return missing("model"),
        Value::String(_) | Value::Null => {}
        v if needs_model => return mistyped("model", "a string", v),
        _ => {}
    }
    if kind == Kind::Chat {
        return match &body["messages"] {
            Value::Null => missing("messages"),
            Value::Array(a) if a.is_empty() => Err((
                Some("messages"),
                Some("empty_array"),
                "Invalid 'messages': empty array. Expected an array with minimum length 1, \
                 but got an empty array instead."
                    .to_string(),
            )),
            Value::Array(_) => Ok(()),
            v => mistyped("messages", "an array of objects", v),
        };
    }
    if create_response {
        return match &body["input"] {
            Value::Null | Value::String(_) | Value::Array(_) => Ok(()),
            v => mistyped("input", "one of a string or array of input items", v),
        };
    }
    Ok(())
}

/// A JSON value's type as OpenAI's messages name it.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a decimal",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether the query has a non-empty `api-version`.
fn has_api_version(query: Option<&str>) -> bool {
    super::query_param(query, "api-version").is_some_and(|v| !v.is_empty())
}

async fn models(s: &mut ServerSession, set: &MockSettings, common: &[(&str, String)]) -> bool {
    let data: Vec<Obj> = set
        .models
        .iter()
        .map(|m| obj! {"id": m, "object": "model", "created": 1_700_000_000u64, "owned_by": "tollgate-mock"})
        .collect();
    send_json(
        s,
        200,
        &obj! {"object": "list", "data": data},
        common,
        None,
        &[],
    )
    .await
}

/// Usage for `tokens` visible output tokens. Reasoning tokens (with `reasoning_effort`) are
/// half as many again and, as OpenAI counts them, included in `completion_tokens` though their
/// text is never sent.
fn usage(req: &Value, tokens: usize, b: &Behaviour) -> Obj {
    let pt = reply::request_prompt_tokens(req);
    let cached = b.cached_tokens.unwrap_or(0).min(pt);
    let reasoning = match req["reasoning_effort"].as_str() {
        Some("low" | "medium" | "high") => tokens as u64 / 2,
        _ => 0,
    };
    let ct = tokens as u64 + reasoning;
    obj! {
        "prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct,
        "prompt_tokens_details": obj! {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": obj! {"reasoning_tokens": reasoning, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    }
}

/// One deterministic completion, rendered whole or as chunks.
struct Completion<'a> {
    chat: bool,
    id: String,
    model: &'a str,
    created: u64,
    seed: u64,
    words: Vec<String>,
    calls: Vec<tools::Call>,
    finish: &'static str,
    usage: Box<RawValue>,
}

impl Completion<'_> {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.chat, chunk) {
            (true, false) => "chat.completion",
            (true, true) => "chat.completion.chunk",
            (false, _) => "text_completion",
        }
    }

    /// `id`, `object`, `created`, `model` and `rest`, in the order OpenAI writes them; chat
    /// adds `service_tier` and `system_fingerprint`, after `rest` in a whole reply and before
    /// it in a chunk.
    fn envelope(&self, chunk: bool, rest: Vec<(&'static str, Box<RawValue>)>) -> Obj {
        let mut v = obj! {"id": self.id, "object": self.object(chunk), "created": self.created,
        "model": self.model};
        let tier: &[_] = if self.chat {
            &[
                ("service_tier", "default"),
                ("system_fingerprint", "fp_mock"),
            ]
        } else {
            &[]
        };
        let tier = tier.iter().map(|(k, t)| (*k, raw(t)));
        if chunk {
            v.0.extend(tier);
            v.0.extend(rest);
        } else {
            v.0.extend(rest);
            v.0.extend(tier);
        }
        v
    }

    fn whole(&self) -> Obj {
        let text = self.words.concat();
        let choice = if !self.chat {
            obj! {"text": text, "index": 0, "logprobs": (), "finish_reason": self.finish}
        } else {
            let msg = if self.calls.is_empty() {
                obj! {"role": "assistant", "content": text, "refusal": (), "annotations": EMPTY}
            } else {
                let calls = tools::openai_message_calls(&self.calls, self.seed);
                obj! {"role": "assistant", "content": (), "tool_calls": calls, "refusal": (),
                "annotations": EMPTY}
            };
            obj! {"index": 0, "message": msg, "logprobs": (), "finish_reason": self.finish}
        };
        let rest = vec![("choices", raw(&[choice])), ("usage", self.usage.clone())];
        self.envelope(false, rest)
    }

    /// The one choice of each chunk, in order, made as the stream is written.
    fn choices(&self) -> Box<dyn Iterator<Item = Obj> + Send + '_> {
        let finish = self.finish;
        if !self.chat {
            let words = (self.words.iter())
                .map(|w| obj! {"text": w, "index": 0, "logprobs": (), "finish_reason": ()});
            let last = obj! {"text": "", "index": 0, "logprobs": (), "finish_reason": finish};
            return Box::new(words.chain(std::iter::once(last)));
        }
        let step =
            |delta: Obj| obj! {"index": 0, "delta": delta, "logprobs": (), "finish_reason": ()};
        let mut frags = tools::openai_stream_fragments(&self.calls, self.seed).into_iter();
        let (first, words): (Obj, &[String]) = match frags.next() {
            // A tool-call reply's first chunk carries the role and the first call's head.
            Some(first) => (
                step(
                    obj! {"role": "assistant", "content": (), "tool_calls": [first],
                    "refusal": ()},
                ),
                &[],
            ),
            None => (
                step(obj! {"role": "assistant", "content": "", "refusal": ()}),
                &self.words,
            ),
        };
        let last = obj! {"index": 0, "delta": obj! {}, "logprobs": (), "finish_reason": finish};
        Box::new(
            std::iter::once(first)
                .chain(words.iter().map(move |w| step(obj! {"content": w})))
                .chain(frags.map(move |f| step(obj! {"tool_calls": [f]})))
                .chain(std::iter::once(last)),
        )
    }

    /// The framed chunks, made one at a time; with `include_usage` every chunk has
    /// `"usage":null` and a last chunk with no choices carries the usage, as OpenAI sends them.
    fn events(&self, include_usage: bool) -> impl Iterator<Item = Vec<u8>> + Send + '_ {
        let chunk = move |choices: Box<RawValue>, usage: Option<Box<RawValue>>| {
            let mut rest = vec![("choices", choices)];
            rest.extend(usage.map(|u| ("usage", u)));
            super::sse(None, &self.envelope(true, rest))
        };
        let null = include_usage.then(|| RawValue::NULL.to_owned());
        let usage = include_usage.then(|| chunk(raw(&EMPTY), Some(self.usage.clone())));
        (self.choices().map(move |c| chunk(raw(&[c]), null.clone())))
            .chain(usage)
            .chain(std::iter::once(b"data: [DONE]\n\n".to_vec()))
    }
}

async fn completion(
    s: &mut ServerSession,
    chat: bool,
    req: &Value,
    model: &str,
    b: &Behaviour,
    common: &[(&str, String)],
) -> bool {
    let seed = reply::request_seed(model, req);
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
    let (finish, tokens) = if !calls.is_empty() {
        ("tool_calls", tools::tokens(&calls))
    } else if b.words > cap {
        ("length", n)
    } else {
        ("stop", n)
    };
    let c = Completion {
        chat,
        id: format!("{}-mock{seed:016x}", if chat { "chatcmpl" } else { "cmpl" }),
        model,
        created: super::now(),
        seed,
        words: tools::structured_or(req, seed, || reply::words(seed, n)),
        calls,
        finish,
        usage: raw(&usage(req, tokens, b)),
    };
    if req["stream"].as_bool() != Some(true) {
        return send_json(s, 200, &c.whole(), common, b.drop_after, &[]).await;
    }
    let include_usage = req["stream_options"]["include_usage"].as_bool() == Some(true);
    let err = obj! {"error": obj! {"message": "The server is overloaded (mock).",
    "type": "server_error", "param": (), "code": "server_is_overloaded"}};
    send_events(
        s,
        c.events(include_usage),
        b,
        &super::sse(None, &err),
        common,
        &[],
    )
    .await
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
        _ => {
            let msg = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.";
            return invalid(s, "input", "invalid_value", msg, common).await;
        }
    };
    let base64 = req["encoding_format"].as_str() == Some("base64");
    let mut tokens = 0u64;
    let data: Vec<Obj> = inputs
        .iter()
        .enumerate()
        .map(|(i, inp)| {
            tokens += reply::prompt_tokens(inp.len(), 0) - 3;
            let v = reply::embedding(inp.as_bytes(), dims);
            let emb = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                raw(&base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                raw(&v)
            };
            obj! {"object": "embedding", "index": i, "embedding": emb}
        })
        .collect();
    let v = obj! {"object": "list", "data": data, "model": model,
    "usage": obj! {"prompt_tokens": tokens, "total_tokens": tokens}};
    send_json(s, 200, &v, common, None, &[]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_fields_as_openai_checks_them() {
        use serde_json::json;
        let chat = |v: Value| check_body(Kind::Chat, false, true, &v).err();
        let resp = |v: Value| check_body(Kind::Responses, true, true, &v).err();
        let msgs = json!([{"role": "user", "content": "Hi"}]);
        assert!(chat(json!({"model": "m", "messages": msgs})).is_none());
        let e = chat(json!({"model": "m"})).unwrap();
        assert_eq!(
            (e.0, e.1),
            (Some("messages"), Some("missing_required_parameter"))
        );
        let e = chat(json!({"model": "m", "messages": []})).unwrap();
        assert_eq!(e.1, Some("empty_array"));
        let e = chat(json!({"model": "m", "messages": "Hi"})).unwrap();
        assert_eq!(e.1, Some("invalid_type"));
        assert!(e.2.contains("got a string"), "{}", e.2);
        assert_eq!(chat(json!({"messages": msgs})).unwrap().0, None);
        // An Azure deployment path names the model.
        assert!(check_body(Kind::Chat, false, false, &json!({"messages": msgs})).is_ok());
        assert!(resp(json!({"model": "m", "input": "Hi"})).is_none());
        assert!(resp(json!({"model": "m", "input": [], "store": false})).is_none());
        assert!(resp(json!({"model": "m", "previous_response_id": "r"})).is_none());
        let e = resp(json!({"model": "m", "input": 42})).unwrap();
        assert_eq!((e.0, e.1), (Some("input"), Some("invalid_type")));
        assert!(e.2.contains("got an integer"), "{}", e.2);
        assert_eq!(resp(json!({"input": "Hi"})).unwrap().0, Some("model"));
        assert_eq!(
            resp(json!({"model": 7, "input": "Hi"})).unwrap().1,
            Some("invalid_type")
        );
        // Counting input tokens needs neither.
        assert!(check_body(Kind::Responses, false, true, &json!({"input": "Hi"})).is_ok());
    }

    #[test]
    fn api_version_is_a_query_parameter() {
        assert!(has_api_version(Some("api-version=2024-10-21")));
        assert!(has_api_version(Some("a=1&api-version=1")));
        assert!(!has_api_version(Some("xapi-version=1")));
        assert!(!has_api_version(Some("api-version=")));
        assert!(!has_api_version(None));
    }
}
