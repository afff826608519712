//! One deterministic Gemini reply, whole or as stream chunks: thought summaries when
//! `thinkingConfig.includeThoughts`, function calls when tools are declared (the rule in
//! `tools.rs`), text otherwise; `usageMetadata` with cached tokens (`x-mock-cached-tokens`) and
//! thoughts. Zero counts are left out, as proto JSON leaves them out.

use super::super::{raw, reply, tools, Behaviour, Obj};
use base64::Engine;
use serde_json::{json, Value};

/// Words of a thought summary, and the thinking tokens a thinking reply reports.
const THOUGHT_WORDS: usize = 4;
const THOUGHT_TOKENS: u64 = 24;
/// Prompt tokens Gemini counts per image.
const IMAGE_TOKENS: u64 = 258;

pub(in crate::mock) struct Reply {
    id: String,
    model: String,
    vertex: bool,
    thought: Option<String>,
    words: Vec<String>,
    calls: Vec<tools::Call>,
    signature: Option<String>,
    finish: &'static str,
    prompt: u64,
    cached: u64,
    thinking: u64,
}

/// Characters of text and number of media parts, for the prompt estimate.
fn walk(v: &Value, chars: &mut usize, media: &mut u64) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| walk(x, chars, media)),
        Value::Object(o) => {
            if o.contains_key("inlineData") || o.contains_key("fileData") {
                *media += 1;
            }
            if let Some(t) = o.get("text").and_then(Value::as_str) {
                *chars += t.len();
            }
            for k in ["functionCall", "functionResponse"] {
                if let Some(x) = o.get(k) {
                    *chars += x.to_string().len();
                }
            }
            if let Some(p) = o.get("parts") {
                walk(p, chars, media);
            }
        }
        _ => {}
    }
}

fn prompt_tokens(body: &Value) -> u64 {
    let (mut chars, mut media) = (0, 0);
    walk(&body["contents"], &mut chars, &mut media);
    walk(&body["systemInstruction"], &mut chars, &mut media);
    let n = body["contents"].as_array().map_or(1, Vec::len);
    reply::prompt_tokens(chars, n) + IMAGE_TOKENS * media
}

/// The calls `tools.rs` makes for the request, read as an OpenAI one: the same rule for all.
fn calls(body: &Value, seed: u64) -> Vec<tools::Call> {
    let last = body["contents"].as_array().and_then(|c| c.last());
    let own_words = last.is_some_and(|c| {
        c["role"].as_str().unwrap_or("user") == "user"
            && !(c["parts"].as_array().into_iter().flatten())
                .any(|p| p.get("functionResponse").is_some())
    });
    let decls = (body["tools"].as_array().into_iter().flatten())
        .flat_map(|t| t["functionDeclarations"].as_array().into_iter().flatten());
    let offered: Vec<Value> = decls
        .map(|d| {
            let schema = match d.get("parametersJsonSchema") {
                Some(s) => s.clone(),
                None => lower_types(&d["parameters"]),
            };
            json!({"type": "function", "function": {"name": d["name"], "parameters": schema}})
        })
        .collect();
    let fcc = &body["toolConfig"]["functionCallingConfig"];
    let allowed = fcc["allowedFunctionNames"].as_array();
    let choice = match (fcc["mode"].as_str(), allowed.map(Vec::as_slice)) {
        (Some("NONE"), _) => json!("none"),
        (Some("ANY" | "VALIDATED"), Some([name])) => {
            json!({"type": "function", "function": {"name": name}})
        }
        _ => json!("auto"),
    };
    let role = if own_words { "user" } else { "tool" };
    let words = last.map_or(Value::Null, |c| c["parts"].clone());
    let req = json!({"messages": [{"role": role, "content": words}], "tools": offered,
        "tool_choice": choice});
    tools::openai_calls(&req, seed)
}

/// Google's OpenAPI-subset schema (`"type": "STRING"`) in JSON Schema's lowercase.
fn lower_types(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| match (k.as_str(), x) {
                    ("type", Value::String(t)) => (k.clone(), json!(t.to_lowercase())),
                    _ => (k.clone(), lower_types(x)),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(lower_types).collect()),
        v => v.clone(),
    }
}

/// The words up to the output cap or a stop sequence, and the finish reason.
fn text(body: &Value, seed: u64, words: usize) -> (Vec<String>, &'static str) {
    let cfg = &body["generationConfig"];
    let cap = cfg["maxOutputTokens"]
        .as_u64()
        .map_or(usize::MAX, |n| n as usize);
    let mut out = tools::structured_or(body, seed, || reply::words(seed, words.min(cap)));
    let stops: Vec<&str> = (cfg["stopSequences"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    if let Some(i) = out.iter().position(|w| stops.contains(&w.trim())) {
        out.truncate(i);
        return (out, "STOP");
    }
    (out, if words > cap { "MAX_TOKENS" } else { "STOP" })
}

fn b64(seed: u64, n: usize, url: bool) -> String {
    let mut rng = reply::Rng::new(seed);
    let bytes: Vec<u8> = (0..n).flat_map(|_| rng.next().to_le_bytes()).collect();
    if url {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    } else {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
}

impl Reply {
    pub(in crate::mock) fn new(body: &Value, model: &str, vertex: bool, b: &Behaviour) -> Reply {
        let key = format!("{model}|{}|{}", body["contents"], body["systemInstruction"]);
        let seed = reply::seed(key.as_bytes());
        let tc = &body["generationConfig"]["thinkingConfig"];
        let thinks = tc.is_object() && tc["thinkingBudget"].as_i64() != Some(0);
        let calls = calls(body, seed);
        let (words, finish) = match calls.is_empty() {
            true => text(body, seed, b.words),
            false => (vec![], "STOP"),
        };
        let prompt = prompt_tokens(body);
        Reply {
            id: b64(seed ^ 0x1d, 2, true),
            model: model.to_string(),
            vertex,
            thought: (thinks && tc["includeThoughts"] == json!(true))
                .then(|| reply::words(seed ^ 0x5eed, THOUGHT_WORDS).concat()),
            words,
            signature: (thinks && !calls.is_empty()).then(|| b64(seed ^ 0x51c0, 6, false)),
            calls,
            finish,
            prompt,
            cached: b.cached_tokens.unwrap_or(0).min(prompt),
            thinking: if thinks { THOUGHT_TOKENS } else { 0 },
        }
    }

    /// `usageMetadata` after `candidates` output tokens, in Google's key order.
    fn usage(&self, candidates: u64) -> Obj {
        let mut u = obj! {"promptTokenCount": self.prompt};
        if candidates > 0 {
            u.0.push(("candidatesTokenCount", raw(&candidates)));
        }
        let total = self.prompt + candidates + self.thinking;
        u.0.push(("totalTokenCount", raw(&total)));
        if self.cached > 0 {
            u.0.push(("cachedContentTokenCount", raw(&self.cached)));
        }
        if self.vertex {
            u.0.push(("trafficType", raw("ON_DEMAND")));
        }
        let details = [obj! {"modality": "TEXT", "tokenCount": self.prompt}];
        u.0.push(("promptTokensDetails", raw(&details)));
        if self.cached > 0 {
            let c = [obj! {"modality": "TEXT", "tokenCount": self.cached}];
            u.0.push(("cacheTokensDetails", raw(&c)));
        }
        if self.thinking > 0 {
            u.0.push(("thoughtsTokenCount", raw(&self.thinking)));
        }
        u
    }

    fn output_tokens(&self) -> u64 {
        (self.words.len() + tools::tokens(&self.calls)) as u64
    }

    fn call_parts(&self) -> Vec<Obj> {
        let parts = self.calls.iter().enumerate();
        parts
            .map(|(i, c)| {
                let mut p = obj! {"functionCall": obj! {"name": c.name, "args": c.args}};
                if let (0, Some(sig)) = (i, &self.signature) {
                    p.0.push(("thoughtSignature", raw(sig)));
                }
                p
            })
            .collect()
    }

    /// A response around `parts`, finished or not, with usage after `out` output tokens.
    fn envelope(&self, parts: Vec<Obj>, finished: bool, out: u64) -> Obj {
        let mut cand = obj! {"content": obj! {"parts": parts, "role": "model"}};
        if finished {
            cand.0.push(("finishReason", raw(self.finish)));
        }
        if !self.vertex {
            cand.0.push(("index", raw(&0)));
        }
        let mut v = obj! {"candidates": [cand], "usageMetadata": self.usage(out),
        "modelVersion": self.model};
        if self.vertex {
            v.0.push(("createTime", raw("2025-01-01T00:00:00.000000Z")));
        }
        v.0.push(("responseId", raw(&self.id)));
        v
    }

    pub(in crate::mock) fn whole(&self) -> Obj {
        let mut parts = Vec::new();
        if let Some(t) = &self.thought {
            parts.push(obj! {"text": t, "thought": true});
        }
        if !self.words.is_empty() {
            parts.push(obj! {"text": self.words.concat()});
        }
        parts.extend(self.call_parts());
        self.envelope(parts, true, self.output_tokens())
    }

    /// The stream: the thought summary, a chunk per word, and the last chunk with the calls,
    /// `finishReason` and the final usage.
    pub(in crate::mock) fn chunks(&self) -> Vec<Obj> {
        let mut out = Vec::with_capacity(self.words.len() + 2);
        if let Some(t) = &self.thought {
            out.push(self.envelope(vec![obj! {"text": t, "thought": true}], false, 0));
        }
        let n = self.words.len();
        for (i, w) in self.words.iter().enumerate() {
            if i + 1 < n || !self.calls.is_empty() {
                out.push(self.envelope(vec![obj! {"text": w}], false, i as u64 + 1));
            }
        }
        let mut last = self.call_parts();
        if self.calls.is_empty() {
            let w = self.words.last().map_or("", String::as_str);
            last.insert(0, obj! {"text": w});
        }
        out.push(self.envelope(last, true, self.output_tokens()));
        out
    }
}

/// `countTokens`' reply.
pub(in crate::mock) fn count(body: &Value, vertex: bool) -> Obj {
    let n = prompt_tokens(body);
    let details = [obj! {"modality": "TEXT", "tokenCount": n}];
    if vertex {
        let (mut chars, mut media) = (0, 0);
        walk(&body["contents"], &mut chars, &mut media);
        return obj! {"totalTokens": n, "totalBillableCharacters": chars,
        "promptTokensDetails": details};
    }
    obj! {"totalTokens": n, "promptTokensDetails": details}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemini_schemas_offer_tools() {
        let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT",
                "properties": {"n": {"type": "NUMBER"}}}}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}}});
        let c = calls(&body, 1);
        assert_eq!((c.len(), c[0].args["n"].clone()), (1, json!(42)));
        let mut after = body.clone();
        after["contents"] = json!([{"role": "user", "parts": [
            {"functionResponse": {"name": "f", "response": {"output": 1}}}]}]);
        assert!(calls(&after, 1).is_empty());
        after["contents"] = body["contents"].clone();
        after["toolConfig"]["functionCallingConfig"]["mode"] = json!("NONE");
        assert!(calls(&after, 1).is_empty());
    }
}
