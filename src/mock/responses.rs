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
    let events = r.events();
    let err = json!({"type": "error", "sequence_number": events.len(),
        "error": {"type": "server_error", "code": "server_is_overloaded",
        "message": "The server is overloaded (mock).", "param": null}});
    send_events(s, &events, b, &super::sse(Some("error"), &err), common, &[]).await
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
            "input_tokens_details": {"cached_tokens": cached},
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
        json!({"id": self.id, "object": "response", "created_at": self.created,
            "status": status,
            "completed_at": (done && !self.incomplete).then_some(self.created),
            "error": null, "incomplete_details": details,
            "instructions": b["instructions"], "max_output_tokens": b["max_output_tokens"],
            "model": self.model,
            "output": if done { Value::Array(self.items()) } else { json!([]) },
            "parallel_tool_calls": or(&b["parallel_tool_calls"], json!(true)),
            "previous_response_id": null,
            "reasoning": {"effort": b["reasoning"]["effort"], "summary": null},
            "store": or(&b["store"], json!(true)),
            "temperature": or(&b["temperature"], json!(1.0)),
            "text": {"format": or(&b["text"]["format"], json!({"type": "text"}))},
            "tool_choice": or(&b["tool_choice"], json!("auto")),
            "tools": or(&b["tools"], json!([])),
            "top_p": or(&b["top_p"], json!(1.0)),
            "truncation": "disabled",
            "usage": if done { self.usage.clone() } else { Value::Null },
            "metadata": or(&b["metadata"], json!({}))})
    }

    fn whole(&self) -> Value {
        self.response(true)
    }

    /// The stream: created, in_progress, each item's events, then the terminal event.
    fn events(&self) -> Vec<Vec<u8>> {
        let mut out = Events(Vec::new());
        out.push(
            "response.created",
            json!({"response": self.response(false)}),
        );
        out.push(
            "response.in_progress",
            json!({"response": self.response(false)}),
        );
        if self.calls.is_empty() {
            self.message_events(&mut out);
        }
        for (i, c) in self.calls.iter().enumerate() {
            self.call_events(&mut out, i, c);
        }
        let last = if self.incomplete {
            "response.incomplete"
        } else {
            "response.completed"
        };
        out.push(last, json!({"response": self.response(true)}));
        out.0
    }

    fn message_events(&self, out: &mut Events) {
        let (id, text) = (self.message_id(), self.words.concat());
        let at = json!({"item_id": id, "output_index": 0, "content_index": 0});
        let part = |text: &str| json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text});
        out.push(
            "response.output_item.added",
            json!({"output_index": 0,
            "item": self.message(String::new(), "in_progress")}),
        );
        out.push(
            "response.content_part.added",
            with(&at, json!({"part": part("")})),
        );
        for w in &self.words {
            out.push(
                "response.output_text.delta",
                with(&at, json!({"delta": w, "logprobs": []})),
            );
        }
        out.push(
            "response.output_text.done",
            with(&at, json!({"text": text, "logprobs": []})),
        );
        out.push(
            "response.content_part.done",
            with(&at, json!({"part": part(&text)})),
        );
        out.push(
            "response.output_item.done",
            json!({"output_index": 0,
            "item": self.message(text, "completed")}),
        );
    }

    fn call_events(&self, out: &mut Events, i: usize, c: &tools::Call) {
        let args = c.args.to_string();
        let at = json!({"item_id": self.call_id(i), "output_index": i});
        out.push(
            "response.output_item.added",
            json!({"output_index": i,
            "item": self.call(i, c, String::new(), "in_progress")}),
        );
        for f in tools::fragments(&args) {
            out.push(
                "response.function_call_arguments.delta",
                with(&at, json!({"delta": f})),
            );
        }
        out.push(
            "response.function_call_arguments.done",
            with(&at, json!({"name": c.name, "arguments": args})),
        );
        out.push(
            "response.output_item.done",
            json!({"output_index": i,
            "item": self.call(i, c, args, "completed")}),
        );
    }
}

/// `a`'s fields, then `b`'s.
fn with(a: &Value, b: Value) -> Value {
    let mut v = a.clone();
    if let (Some(m), Value::Object(rest)) = (v.as_object_mut(), b) {
        m.extend(rest);
    }
    v
}

/// Framed events, numbered from 0 in order.
struct Events(Vec<Vec<u8>>);

impl Events {
    fn push(&mut self, kind: &str, fields: Value) {
        let mut v = json!({"type": kind, "sequence_number": self.0.len()});
        if let (Some(m), Value::Object(rest)) = (v.as_object_mut(), fields) {
            m.extend(rest);
        }
        self.0.push(super::sse(Some(kind), &v));
    }
}
