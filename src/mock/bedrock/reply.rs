//! One deterministic Converse reply, whole (`ConverseResponse` JSON) or as ConverseStream
//! frames: reasoning when `thinking` is enabled (signed as `thinking::signature`), text up to `maxTokens` or a stop sequence, tool
//! uses by the mock's one tool rule, usage with cache reads on request.

use super::super::{reply, tools, Behaviour, Obj};
use serde_json::{json, Value};

const THINKING_WORDS: usize = 4;

pub(in crate::mock) struct Reply {
    thinking: Vec<String>,
    text: Vec<String>,
    calls: Vec<tools::Call>,
    stop: &'static str,
    input: u64,
    cache_read: u64,
    cache_write: u64,
    output: u64,
}

/// Characters and messages of the prompt (text, tool inputs and results).
fn prompt_tokens(body: &Value) -> u64 {
    fn walk(v: &Value, chars: &mut usize) {
        match v {
            Value::String(s) => *chars += s.len(),
            Value::Array(a) => a.iter().for_each(|x| walk(x, chars)),
            Value::Object(o) => o.values().for_each(|x| walk(x, chars)),
            _ => {}
        }
    }
    let mut chars = 0;
    walk(&body["messages"], &mut chars);
    walk(&body["system"], &mut chars);
    let n = body["messages"].as_array().map_or(1, Vec::len);
    reply::prompt_tokens(chars, n)
}

/// The calls for this request, read as an OpenAI one (the mock's one tool rule).
fn calls(body: &Value, seed: u64) -> Vec<tools::Call> {
    let last = body["messages"].as_array().and_then(|m| m.last());
    // Tool results (even followed by a `cachePoint` or text) are answered with text.
    let own_words = last.is_some_and(|m| {
        m["role"] == "user"
            && !(m["content"].as_array().into_iter().flatten())
                .any(|b| b.get("toolResult").is_some())
    });
    let offered: Vec<Value> = (body["toolConfig"]["tools"].as_array().into_iter().flatten())
        .filter_map(|t| t.get("toolSpec"))
        .map(|s| json!({"type": "function", "function": {"name": s["name"], "parameters": s["inputSchema"]["json"]}}))
        .collect();
    let tc = &body["toolConfig"]["toolChoice"];
    let choice = match tc["tool"]["name"].as_str() {
        Some(name) => json!({"type": "function", "function": {"name": name}}),
        None => json!("auto"),
    };
    let role = if own_words { "user" } else { "tool" };
    let words = last.map_or(Value::Null, |m| m["content"].clone());
    let req = json!({"messages": [{"role": role, "content": words}], "tools": offered,
        "tool_choice": choice});
    tools::openai_calls(&req, seed)
}

impl Reply {
    pub(in crate::mock) fn new(body: &Value, model: &str, b: &Behaviour) -> Reply {
        let seed =
            reply::seed(format!("{model}|{}|{}", body["messages"], body["system"]).as_bytes());
        let calls = calls(body, seed);
        let thinking = if body["additionalModelRequestFields"]["thinking"]["type"] == "enabled" {
            reply::words(seed ^ 0x5eed, THINKING_WORDS)
        } else {
            vec![]
        };
        let cap = body["inferenceConfig"]["maxTokens"]
            .as_u64()
            .map_or(usize::MAX, |n| n as usize);
        let (text, stop, out) = if calls.is_empty() {
            let n = b.words.min(cap);
            let mut words = tools::structured_or(body, seed, || reply::words(seed, n));
            let stops: Vec<&str> = (body["inferenceConfig"]["stopSequences"].as_array())
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match words.iter().position(|w| stops.contains(&w.trim())) {
                Some(i) => {
                    words.truncate(i);
                    (words, "stop_sequence", i + 1)
                }
                None if n < b.words => (words, "max_tokens", n),
                None => (words, "end_turn", n),
            }
        } else {
            let text = vec!["I'll check.".to_string()];
            (text, "tool_use", 3 + tools::tokens(&calls))
        };
        let prompt = prompt_tokens(body);
        // As the Anthropic mock does for `cache_control`: cache points read half the prompt
        // from the cache and write a quarter; `x-mock-cached-tokens` reads that many.
        let (cache_read, cache_write) = match b.cached_tokens {
            Some(n) => (n.min(prompt), 0),
            None if body.to_string().contains("\"cachePoint\"") => (prompt / 2, prompt / 4),
            None => (0, 0),
        };
        Reply {
            output: (out + thinking.len()) as u64,
            thinking,
            text,
            calls,
            stop,
            input: prompt - cache_read - cache_write,
            cache_read,
            cache_write,
        }
    }

    fn usage(&self) -> Obj {
        let total = self.input + self.cache_read + self.cache_write + self.output;
        if self.cache_read + self.cache_write > 0 {
            obj! {"inputTokens": self.input, "outputTokens": self.output, "totalTokens": total,
            "cacheReadInputTokens": self.cache_read, "cacheWriteInputTokens": self.cache_write}
        } else {
            obj! {"inputTokens": self.input, "outputTokens": self.output, "totalTokens": total}
        }
    }

    /// The `ConverseResponse`.
    pub(in crate::mock) fn whole(&self) -> Obj {
        let mut content: Vec<Obj> = Vec::new();
        if !self.thinking.is_empty() {
            let text = self.thinking.concat();
            let t = obj! {"signature": super::thinking::signature(&text), "text": text};
            content.push(obj! {"reasoningContent": obj! {"reasoningText": t}});
        }
        if !self.text.is_empty() {
            content.push(obj! {"text": self.text.concat()});
        }
        for (i, c) in self.calls.iter().enumerate() {
            let u = obj! {"toolUseId": tool_id(i), "name": c.name, "input": c.args};
            content.push(obj! {"toolUse": u});
        }
        let message = obj! {"role": "assistant", "content": content};
        obj! {"output": obj! {"message": message}, "stopReason": self.stop,
        "usage": self.usage(), "metrics": obj! {"latencyMs": 42}}
    }

    /// The stream's events, `(event type, payload)`, in ConverseStream's order (text blocks
    /// have no `contentBlockStart`; a `p` padding field on some events, as Bedrock adds).
    pub(in crate::mock) fn events(&self) -> Vec<(&'static str, Obj)> {
        let mut ev = vec![(
            "messageStart",
            obj! {"p": "abcdefghijk", "role": "assistant"},
        )];
        let mut block = 0u32;
        if !self.thinking.is_empty() {
            for w in &self.thinking {
                let d = obj! {"reasoningContent": obj! {"text": w}};
                ev.push((
                    "contentBlockDelta",
                    obj! {"contentBlockIndex": block, "delta": d},
                ));
            }
            let sig = super::thinking::signature(&self.thinking.concat());
            let d = obj! {"reasoningContent": obj! {"signature": sig}};
            ev.push((
                "contentBlockDelta",
                obj! {"contentBlockIndex": block, "delta": d},
            ));
            ev.push(("contentBlockStop", obj! {"contentBlockIndex": block}));
            block += 1;
        }
        if !self.text.is_empty() {
            for w in &self.text {
                let d = obj! {"text": w};
                ev.push((
                    "contentBlockDelta",
                    obj! {"contentBlockIndex": block, "delta": d, "p": "abcd"},
                ));
            }
            ev.push(("contentBlockStop", obj! {"contentBlockIndex": block}));
            block += 1;
        }
        for (i, c) in self.calls.iter().enumerate() {
            let start = obj! {"toolUse": obj! {"toolUseId": tool_id(i), "name": c.name}};
            ev.push((
                "contentBlockStart",
                obj! {"contentBlockIndex": block, "start": start},
            ));
            for piece in tools::fragments(&c.args.to_string()) {
                let d = obj! {"toolUse": obj! {"input": piece}};
                ev.push((
                    "contentBlockDelta",
                    obj! {"contentBlockIndex": block, "delta": d},
                ));
            }
            ev.push(("contentBlockStop", obj! {"contentBlockIndex": block}));
            block += 1;
        }
        ev.push(("messageStop", obj! {"stopReason": self.stop}));
        let metrics = obj! {"latencyMs": 42};
        ev.push(("metadata", obj! {"usage": self.usage(), "metrics": metrics}));
        ev
    }
}

fn tool_id(i: usize) -> String {
    format!("tooluse_mock{i:02}")
}
