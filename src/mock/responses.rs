//! The mock's Responses API (`/v1/responses`, `/v1/responses/input_tokens`; Azure's
//! `/openai/responses`): deterministic text, function calls (the same rule as chat's), a JSON
//! document for `text.format` `json_schema`, `max_output_tokens` (status `incomplete`),
//! reasoning tokens with `reasoning.effort`, and the typed event stream with its sequence
//! numbers, as OpenAI sends it.

use super::{reply, send_events, send_json, tools, Behaviour, Request};
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};

/// The request, answered as a Response (whole or streamed) or an input-token count.
pub(super) async fn handle(
    s: &mut ServerSession,
    req: &Request,
    body: &Value,
    model: &str,
    b: &Behaviour,
) -> bool {
    let common = &req.common;
    if req.path.ends_with("/input_tokens") {
        let n = input_tokens(body);
        let v = json!({"object": "response.input_tokens", "input_tokens": n});
        return send_json(s, 200, &v, common, None, &[]).await;
    }
    let r = Reply::new(body, model, b);
    if body["stream"].as_bool() != Some(true) {
        return send_json(s, 200, &r.whole(), common, b.drop_after, &[]).await;
    }
    // The error replaces the event numbered `stream_error_after`, so it takes that number and
    // `response.failed` the next: the numbers stay dense.
    let n = b.stream_error_after.unwrap_or(0);
    let mut err = super::sse(Some("error"), &r.error_event(n));
    err.extend(super::sse(Some("response.failed"), &r.failed(n + 1)));
    send_events(s, r.events(), b, &err, common, &[]).await
}

/// Input tokens: about four characters a token over the instructions and the input's texts,
/// plus three per item.
fn input_tokens(body: &Value) -> u64 {
    fn walk(v: &Value, chars: &mut usize) {
        match v {
            Value::String(s) => *chars += s.len(),
            Value::Array(a) => a.iter().for_each(|x| walk(x, chars)),
            Value::Object(o) => ["text", "content", "output", "arguments"]
                .iter()
                .filter_map(|k| o.get(*k))
                .for_each(|x| walk(x, chars)),
            _ => {}
        }
    }
    let mut chars = 0;
    walk(&body["instructions"], &mut chars);
    walk(&body["input"], &mut chars);
    let items = body["input"].as_array().map_or(1, Vec::len);
    reply::prompt_tokens(chars, items)
}

struct Reply<'a> {
    body: &'a Value,
    model: &'a str,
    id: String,
    seed: u64,
    created: u64,
    /// The message's words (empty when the reply calls tools).
    words: Vec<String>,
    calls: Vec<tools::Call>,
    incomplete: bool,
    usage: Value,
}

impl<'a> Reply<'a> {
    fn new(body: &'a Value, model: &'a str, b: &Behaviour) -> Reply<'a> {
        let seed =
            reply::seed(format!("{model}|{}|{}", body["input"], body["instructions"]).as_bytes());
        let calls = tools::responses_calls(body, seed);
        let cap = body["max_output_tokens"]
            .as_u64()
            .map_or(usize::MAX, |n| n as usize);
        let format = &body["text"]["format"];
        let (words, incomplete) = if !calls.is_empty() {
            (vec![], false)
        } else if format["type"] == "json_schema" {
            (tools::structured_or(body, seed, Vec::new), false)
        } else {
            (reply::words(seed, b.words.min(cap)), b.words > cap)
        };
        let out = if calls.is_empty() {
            words.len()
        } else {
            tools::tokens(&calls)
        };
        let input = input_tokens(body);
        let cached = b.cached_tokens.unwrap_or(0).min(input);
        let reasoning = match body["reasoning"]["effort"].as_str() {
            Some("low" | "medium" | "high") => out as u64 / 2,
            _ => 0,
        };
        let output = out as u64 + reasoning;
        let usage = json!({"input_tokens": input,
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input + output});
        Reply {
            body,
            model,
            id: format!("resp_mock{seed:016x}"),
            seed,
            created: super::now(),
            words,
            calls,
            incomplete,
            usage,
        }
    }

    fn message_id(&self) -> String {
        format!("msg_mock{:016x}", self.seed)
    }

    fn call_id(&self, i: usize) -> String {
        format!("fc_mock{:015x}{i}", self.seed)
    }

    /// The output items, complete.
    fn items(&self) -> Vec<Value> {
        if self.calls.is_empty() {
            return vec![self.message(self.words.concat(), "completed")];
        }
        (self.calls.iter().enumerate())
            .map(|(i, c)| self.call(i, c, c.args.to_string(), "completed"))
            .collect()
    }

    fn message(&self, text: String, status: &str) -> Value {
        let content = if status == "completed" {
            json!([{"type": "output_text", "annotations": [], "logprobs": [], "text": text}])
        } else {
            json!([])
        };
        json!({"id": self.message_id(), "type": "message", "status": status,
            "content": content, "role": "assistant"})
    }

    fn call(&self, i: usize, c: &tools::Call, arguments: String, status: &str) -> Value {
        json!({"id": self.call_id(i), "type": "function_call", "status": status,
            "arguments": arguments, "call_id": tools::openai_id(self.seed, i), "name": c.name})
    }

    /// The Response object; `done`: complete with its output and usage, else as it begins.
    fn response(&self, done: bool) -> Value {
        let b = self.body;
        let or = |v: &Value, d: Value| if v.is_null() { d } else { v.clone() };
        let status = match (done, self.incomplete) {
            (false, _) => "in_progress",
            (true, true) => "incomplete",
            (true, false) => "completed",
        };
        let details = (done && self.incomplete).then(|| json!({"reason": "max_output_tokens"}));
        let mut r = json!({"id": self.id, "object": "response", "created_at": self.created,
            "status": status,
            "completed_at": (done && !self.incomplete).then_some(self.created),
            "error": null, "incomplete_details": details,
            "instructions": b["instructions"], "max_output_tokens": b["max_output_tokens"],
            "model": self.model,
            "output": if done { Value::Array(self.items()) } else { json!([]) },
            "parallel_tool_calls": or(&b["parallel_tool_calls"], json!(true)),
            "previous_response_id": null,
            "reasoning": {"effort": b["reasoning"]["effort"], "summary": null},
            "temperature": or(&b["temperature"], json!(1.0)),
            "text": {"format": or(&b["text"]["format"], json!({"type": "text"}))},
            "tool_choice": or(&b["tool_choice"], json!("auto")),
            "tools": echo_tools(&b["tools"]),
            "top_p": or(&b["top_p"], json!(1.0)),
            "truncation": "disabled",
            "metadata": or(&b["metadata"], json!({}))});
        // `usage` is optional and not nullable: absent until the Response is complete.
        if done {
            r["usage"] = self.usage.clone();
        }
        r
    }

    fn whole(&self) -> Value {
        self.response(true)
    }

    /// The stream: created, in_progress, each item's events, then the terminal event; made one
    /// event at a time as the socket takes them, numbered densely from 0.
    fn events(&self) -> impl Iterator<Item = Vec<u8>> + Send + '_ {
        let head = [
            (
                "response.created",
                json!({"response": self.response(false)}),
            ),
            (
                "response.in_progress",
                json!({"response": self.response(false)}),
            ),
        ];
        let items: Box<dyn Iterator<Item = Event> + Send + '_> = if self.calls.is_empty() {
            Box::new(self.message_events())
        } else {
            Box::new((self.calls.iter().enumerate()).flat_map(|(i, c)| self.call_events(i, c)))
        };
        let last = if self.incomplete {
            "response.incomplete"
        } else {
            "response.completed"
        };
        // The final Response is made when the stream reaches it.
        let tail =
            std::iter::once(last).map(|last| (last, json!({"response": self.response(true)})));
        (head.into_iter().chain(items).chain(tail))
            .enumerate()
            .map(|(i, (kind, fields))| numbered(kind, i, fields))
    }

    /// The stream's `error` event: the flat fields of the spec's `ResponseErrorEvent`.
    fn error_event(&self, seq: usize) -> Value {
        let (code, message) = ("server_is_overloaded", "The server is overloaded (mock).");
        json!({"type": "error", "sequence_number": seq, "code": code, "message": message,
            "param": null})
    }

    /// `response.failed` after a stream error.
    fn failed(&self, seq: usize) -> Value {
        let mut response = self.response(false);
        response["status"] = json!("failed");
        response["error"] = json!({"code": "server_error",
            "message": "The server is overloaded (mock)."});
        json!({"type": "response.failed", "sequence_number": seq, "response": response})
    }

    fn message_events(&self) -> impl Iterator<Item = Event> + Send + '_ {
        let (id, text) = (self.message_id(), self.words.concat());
        let at = json!({"item_id": id, "output_index": 0, "content_index": 0});
        let part = |text: &str| json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text});
        let head = [
            (
                "response.output_item.added",
                json!({"output_index": 0,
                "item": self.message(String::new(), "in_progress")}),
            ),
            (
                "response.content_part.added",
                with(&at, json!({"part": part("")})),
            ),
        ];
        let at2 = at.clone();
        let deltas = self.words.iter().map(move |w| {
            (
                "response.output_text.delta",
                with(&at2, json!({"delta": w, "logprobs": []})),
            )
        });
        let tail = [
            (
                "response.output_text.done",
                with(&at, json!({"text": text, "logprobs": []})),
            ),
            (
                "response.content_part.done",
                with(&at, json!({"part": part(&text)})),
            ),
            (
                "response.output_item.done",
                json!({"output_index": 0,
                "item": self.message(text, "completed")}),
            ),
        ];
        head.into_iter().chain(deltas).chain(tail)
    }

    fn call_events(&self, i: usize, c: &tools::Call) -> Vec<Event> {
        let args = c.args.to_string();
        let at = json!({"item_id": self.call_id(i), "output_index": i});
        let mut out = vec![(
            "response.output_item.added",
            json!({"output_index": i,
            "item": self.call(i, c, String::new(), "in_progress")}),
        )];
        for f in tools::fragments(&args) {
            out.push((
                "response.function_call_arguments.delta",
                with(&at, json!({"delta": f})),
            ));
        }
        out.push((
            "response.function_call_arguments.done",
            with(&at, json!({"name": c.name, "arguments": args})),
        ));
        out.push((
            "response.output_item.done",
            json!({"output_index": i,
            "item": self.call(i, c, args, "completed")}),
        ));
        out
    }
}

/// The request's tools as a Response echoes them: each function tool with every field of the
/// spec's `FunctionTool` (`description` and `parameters` null when not given; `strict` true
/// unless the request said otherwise, the Responses API's default); other tools as given.
fn echo_tools(tools: &Value) -> Value {
    let Some(tools) = tools.as_array() else {
        return json!([]);
    };
    let echo = |t: &Value| {
        let mut t = t.clone();
        if let Some(m) = t.as_object_mut().filter(|m| m["type"] == "function") {
            for (k, d) in [("description", json!(null)), ("parameters", json!(null))] {
                m.entry(k).or_insert(d);
            }
            if !m.get("strict").is_some_and(Value::is_boolean) {
                m.insert("strict".into(), json!(true));
            }
        }
        t
    };
    Value::Array(tools.iter().map(echo).collect())
}

/// A stream event before its number: its type and fields.
type Event = (&'static str, Value);

/// `a`'s fields, then `b`'s.
fn with(a: &Value, b: Value) -> Value {
    let mut v = a.clone();
    if let (Some(m), Value::Object(rest)) = (v.as_object_mut(), b) {
        m.extend(rest);
    }
    v
}

/// One framed event: `type`, `sequence_number`, then its fields.
fn numbered(kind: &str, seq: usize, fields: Value) -> Vec<u8> {
    let mut v = json!({"type": kind, "sequence_number": seq});
    if let (Some(m), Value::Object(rest)) = (v.as_object_mut(), fields) {
        m.extend(rest);
    }
    super::sse(Some(kind), &v)
}
