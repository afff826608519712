//! Requests from OpenAI chat clients to Anthropic's Messages API (`from_chat`); the other
//! direction is `to_chat.rs`. A field Anthropic cannot express is a 400 naming it.

use crate::error::ApiError;
use crate::formats::openai::chat::{self, ChatRequest, Content, Part};
use crate::formats::{RequestOptions, Translated};
use serde_json::{json, Map, Value};

pub use super::to_chat::to_chat;

/// Parses a client body, naming what is wrong with it.
pub(crate) fn parse<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            ApiError::bad_request(format!("The request body is not valid for this API: {e}"))
        } else {
            ApiError::invalid_json(format!(
                "We could not parse the JSON body of your request: {e}"
            ))
        }
    })
}

pub(crate) fn unsupported(param: String, why: &str) -> ApiError {
    let msg = format!("`{param}` {why}");
    ApiError::unsupported(param, msg)
}

/// Rejects the first unknown field of an object at `path`. A `null` field is as good as
/// absent (SDKs that echo a reply back into history send `"audio": null` and the like).
pub(crate) fn no_extra(extra: &Map<String, Value>, path: &str) -> Result<(), ApiError> {
    match extra.iter().find(|(_, v)| !v.is_null()).map(|(k, _)| k) {
        Some(k) => Err(unsupported(
            join(path, k),
            "is not supported when this model is served by another API.",
        )),
        None => Ok(()),
    }
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// OpenAI fields that are fine at their neutral value, or have no effect on the reply.
fn check_chat_extras(extra: &Map<String, Value>) -> Result<(), ApiError> {
    const IGNORED: [&str; 6] = [
        "store",
        "metadata",
        "service_tier",
        "prompt_cache_key",
        "safety_identifier",
        "verbosity",
    ];
    for (k, v) in extra {
        let neutral = v.is_null()
            || IGNORED.contains(&k.as_str())
            || match k.as_str() {
                "n" => v.as_u64() == Some(1),
                "logprobs" => v == &json!(false),
                "top_logprobs" | "frequency_penalty" | "presence_penalty" => {
                    v.as_f64() == Some(0.0)
                }
                "logit_bias" => v.as_object().is_some_and(|o| o.is_empty()),
                "modalities" => v == &json!(["text"]),
                _ => false,
            };
        if !neutral {
            return Err(unsupported(
                k.clone(),
                "cannot be expressed for this model's provider (Anthropic).",
            ));
        }
    }
    Ok(())
}

/// An OpenAI chat request → an Anthropic Messages request.
pub fn from_chat(body: &[u8], opts: &RequestOptions<'_>) -> Result<Translated, ApiError> {
    let req: ChatRequest = parse(body)?;
    check_chat_extras(&req.extra)?;
    let messages = req.messages.as_deref().unwrap_or_default();
    if messages.is_empty() {
        return Err(ApiError::bad_request("`messages` must not be empty.").with_param("messages"));
    }
    let max_tokens = req
        .max_completion_tokens
        .or(req.max_tokens)
        .unwrap_or(u64::from(opts.default_max_tokens));
    let (system, turns) = convert_messages(messages)?;
    if turns.is_empty() {
        return Err(ApiError::bad_request(
            "`messages` needs at least one user, assistant or tool message.",
        )
        .with_param("messages"));
    }
    let mut out = Map::new();
    out.insert("model".into(), json!(opts.model));
    out.insert("max_tokens".into(), json!(max_tokens));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    out.insert("messages".into(), Value::Array(turns));
    sampling(&req, &mut out)?;
    if let Some(tools) = &req.tools {
        out.insert("tools".into(), convert_tools(tools)?);
    }
    if let Some(tc) = tool_choice(req.tool_choice.as_ref(), req.parallel_tool_calls)? {
        out.insert("tool_choice".into(), tc);
    }
    if let Some(f) = response_format(req.response_format.as_ref())? {
        out.insert("output_config".into(), json!({ "format": f }));
    }
    if let Some(t) = thinking(req.reasoning_effort.as_deref(), max_tokens)? {
        out.insert("thinking".into(), t);
    }
    let stream = req.stream == Some(true);
    if stream {
        out.insert("stream".into(), json!(true));
    }
    let include_usage = req
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    Ok(Translated {
        body: serde_json::to_vec(&out).map_err(|_| ApiError::internal())?,
        stream,
        include_usage,
    })
}

fn sampling(req: &ChatRequest, out: &mut Map<String, Value>) -> Result<(), ApiError> {
    if let Some(t) = req.temperature {
        if !(0.0..=1.0).contains(&t) {
            return Err(unsupported(
                "temperature".into(),
                "must be between 0 and 1 for this model's provider (Anthropic).",
            ));
        }
        out.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        out.insert("top_p".into(), json!(p));
    }
    if let Some(stop) = &req.stop {
        let v = match stop {
            chat::Stop::One(s) => vec![s.clone()],
            chat::Stop::Many(v) => v.clone(),
        };
        out.insert("stop_sequences".into(), json!(v));
    }
    if let Some(u) = &req.user {
        out.insert("metadata".into(), json!({ "user_id": u }));
    }
    Ok(())
}

/// Collects system text and the alternating turns; adjacent same-role turns are merged
/// (tool results and the user's next words share one user turn).
fn convert_messages(msgs: &[chat::Message]) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let p = format!("messages[{i}]");
        no_extra(&m.extra, &p)?;
        let (role, blocks) = match m.role.as_str() {
            "system" | "developer" => {
                let text = text_only(m.content.as_ref(), &p)?;
                // Anthropic rejects empty text blocks.
                if !text.is_empty() {
                    system.push(json!({"type": "text", "text": text}));
                }
                continue;
            }
            "user" => ("user", user_blocks(m.content.as_ref(), &p)?),
            "assistant" => ("assistant", assistant_blocks(m, &p)?),
            "tool" => ("user", vec![tool_result(m, &p)?]),
            _ => {
                return Err(ApiError::bad_request(format!("Unknown role `{}`.", m.role))
                    .with_param(format!("{p}.role")))
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((r, b)) if *r == role => b.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let turns = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    Ok((system, turns))
}

/// The text of a message that may only hold text (system, developer, tool).
fn text_only(content: Option<&Content>, p: &str) -> Result<String, ApiError> {
    match content {
        None => Ok(String::new()),
        Some(Content::Text(s)) => Ok(s.clone()),
        Some(Content::Parts(parts)) => {
            let mut s = String::new();
            for (j, part) in parts.iter().enumerate() {
                match (&*part.kind, &part.text) {
                    ("text", Some(t)) => s.push_str(t),
                    _ => {
                        return Err(unsupported(
                            format!("{p}.content[{j}].type"),
                            "must be text in this message.",
                        ))
                    }
                }
            }
            Ok(s)
        }
    }
}

fn user_blocks(content: Option<&Content>, p: &str) -> Result<Vec<Value>, ApiError> {
    let parts = match content {
        None => return Ok(vec![]),
        Some(Content::Text(s)) => return Ok(vec![json!({"type": "text", "text": s})]),
        Some(Content::Parts(parts)) => parts,
    };
    parts
        .iter()
        .enumerate()
        .map(|(j, part)| user_part(part, &format!("{p}.content[{j}]")))
        .collect()
}

fn user_part(part: &Part, p: &str) -> Result<Value, ApiError> {
    no_extra(&part.extra, p)?;
    match (&*part.kind, &part.text, &part.image_url, &part.file) {
        ("text", Some(t), _, _) => Ok(json!({"type": "text", "text": t})),
        ("image_url", _, Some(img), _) => {
            no_extra(&img.extra, &format!("{p}.image_url"))?;
            image_block(&img.url, &format!("{p}.image_url.url"))
        }
        ("file", _, _, Some(f)) => file_block(f, p),
        _ => Err(unsupported(
            format!("{p}.type"),
            "is not supported for this model's provider (Anthropic).",
        )),
    }
}

/// A `file` part → a PDF document block. Uploaded files (`file_id`) live in OpenAI's storage,
/// which Anthropic cannot read.
fn file_block(f: &chat::FilePart, p: &str) -> Result<Value, ApiError> {
    no_extra(&f.extra, &format!("{p}.file"))?;
    if f.file_id.is_some() {
        return Err(unsupported(
            format!("{p}.file.file_id"),
            "is not supported for this model's provider (Anthropic); send the PDF in `file_data`.",
        ));
    }
    let pdf = f
        .file_data
        .as_deref()
        .and_then(|d| d.strip_prefix("data:application/pdf;base64,"));
    match pdf {
        Some(data) => Ok(json!({"type": "document", "source":
            {"type": "base64", "media_type": "application/pdf", "data": data}})),
        None => Err(unsupported(
            format!("{p}.file.file_data"),
            "must be a PDF as a base64 data URL for this model's provider (Anthropic).",
        )),
    }
}

const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// An image URL → an Anthropic image block: `data:` URLs inline, http(s) by URL.
pub(crate) fn image_block(url: &str, p: &str) -> Result<Value, ApiError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let parsed = rest
            .split_once(',')
            .and_then(|(meta, data)| Some((meta.strip_suffix(";base64")?, data)));
        return match parsed {
            Some((mt, data)) if IMAGE_TYPES.contains(&mt) => Ok(json!({"type": "image",
                "source": {"type": "base64", "media_type": mt, "data": data}})),
            _ => Err(unsupported(
                p.to_string(),
                "must be a base64 data URL of a JPEG, PNG, GIF or WebP image.",
            )),
        };
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    Err(unsupported(
        p.to_string(),
        "must be an http(s) URL or a data URL.",
    ))
}

fn assistant_blocks(m: &chat::Message, p: &str) -> Result<Vec<Value>, ApiError> {
    let mut blocks = Vec::new();
    let text = match &m.content {
        None => String::new(),
        Some(Content::Text(s)) => s.clone(),
        Some(Content::Parts(parts)) => {
            let mut s = String::new();
            for (j, part) in parts.iter().enumerate() {
                match (&*part.kind, part.text.as_ref().or(part.refusal.as_ref())) {
                    ("text" | "refusal", Some(t)) => s.push_str(t),
                    _ => {
                        return Err(unsupported(
                            format!("{p}.content[{j}].type"),
                            "must be text or refusal in an assistant message.",
                        ))
                    }
                }
            }
            s
        }
    };
    if !text.is_empty() {
        blocks.push(json!({"type": "text", "text": text}));
    }
    for (j, call) in m.tool_calls.iter().flatten().enumerate() {
        no_extra(&call.extra, &format!("{p}.tool_calls[{j}]"))?;
        let input = arguments(&call.function.arguments).ok_or_else(|| {
            ApiError::bad_request("Tool call arguments must be a JSON object.")
                .with_param(format!("{p}.tool_calls[{j}].function.arguments"))
        })?;
        blocks.push(json!({"type": "tool_use", "id": call.id,
            "name": call.function.name, "input": input}));
    }
    Ok(blocks)
}

/// Tool-call arguments as an object: "" means none.
pub(crate) fn arguments(s: &str) -> Option<Value> {
    if s.trim().is_empty() {
        return Some(json!({}));
    }
    serde_json::from_str::<Value>(s)
        .ok()
        .filter(Value::is_object)
}

fn tool_result(m: &chat::Message, p: &str) -> Result<Value, ApiError> {
    let id = m.tool_call_id.as_deref().ok_or_else(|| {
        ApiError::bad_request("A tool message needs `tool_call_id`.")
            .with_param(format!("{p}.tool_call_id"))
    })?;
    let text = text_only(m.content.as_ref(), p)?;
    Ok(json!({"type": "tool_result", "tool_use_id": id, "content": text}))
}

fn convert_tools(tools: &[chat::Tool]) -> Result<Value, ApiError> {
    let mut out = Vec::with_capacity(tools.len());
    for (i, t) in tools.iter().enumerate() {
        let p = format!("tools[{i}]");
        let f = match (&*t.kind, &t.function) {
            ("function", Some(f)) => f,
            _ => {
                return Err(unsupported(
                    format!("{p}.type"),
                    "must be a function tool for this model's provider (Anthropic).",
                ))
            }
        };
        no_extra(&t.extra, &p)?;
        no_extra(&f.extra, &format!("{p}.function"))?;
        let mut tool = json!({"name": f.name, "input_schema": f.parameters.clone()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}))});
        if let Some(d) = &f.description {
            tool["description"] = json!(d);
        }
        out.push(tool);
    }
    Ok(Value::Array(out))
}

fn tool_choice(tc: Option<&Value>, parallel: Option<bool>) -> Result<Option<Value>, ApiError> {
    let mut choice = match tc {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => json!({"type": "auto"}),
            "required" => json!({"type": "any"}),
            "none" => json!({"type": "none"}),
            _ => return Err(unsupported("tool_choice".into(), "has an unknown value.")),
        }),
        Some(v) => match (v["type"].as_str(), v["function"]["name"].as_str()) {
            (Some("function"), Some(name)) => Some(json!({"type": "tool", "name": name})),
            _ => {
                return Err(unsupported(
                    "tool_choice".into(),
                    "must be auto, required, none or a named function for this model's provider (Anthropic).",
                ))
            }
        },
    };
    if parallel == Some(false) {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if c["type"] != "none" {
            c["disable_parallel_tool_use"] = json!(true);
        }
    }
    Ok(choice)
}

fn response_format(rf: Option<&Value>) -> Result<Option<Value>, ApiError> {
    let Some(rf) = rf.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match rf["type"].as_str() {
        Some("text") => Ok(None),
        Some("json_schema") => {
            let schema = rf["json_schema"]["schema"].clone();
            let schema = if schema.is_null() { json!({"type": "object"}) } else { schema };
            Ok(Some(json!({"type": "json_schema", "schema": schema})))
        }
        _ => Err(unsupported(
            "response_format.type".into(),
            "must be text or json_schema for this model's provider (Anthropic); use json_schema for JSON output.",
        )),
    }
}

fn thinking(effort: Option<&str>, max_tokens: u64) -> Result<Option<Value>, ApiError> {
    let budget = match effort {
        None | Some("none" | "minimal") => return Ok(None),
        Some("low") => 1024,
        Some("medium") => 4096,
        Some("high") => 16384,
        Some(_) => {
            return Err(unsupported(
                "reasoning_effort".into(),
                "has an unknown value.",
            ))
        }
    };
    if max_tokens <= 1024 {
        return Err(unsupported(
            "reasoning_effort".into(),
            "needs more than 1024 max tokens for this model's provider (Anthropic thinking budgets start at 1024).",
        ));
    }
    let budget = u64::min(budget, max_tokens - 1);
    Ok(Some(json!({"type": "enabled", "budget_tokens": budget})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::MaxTokensField;

    const OPTS: RequestOptions<'static> = RequestOptions {
        model: "m",
        default_max_tokens: 4096,
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
    };

    fn param_of(body: Value) -> String {
        let e = from_chat(&serde_json::to_vec(&body).unwrap(), &OPTS).unwrap_err();
        assert_eq!(e.status, 400, "{e:?}");
        e.param.map(|p| p.into_owned()).unwrap_or_default()
    }

    fn user(extra: Value) -> Value {
        let mut v = json!({"model": "x", "messages": [{"role": "user", "content": "hi"}]});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    #[test]
    fn inexpressible_fields_are_named() {
        for (extra, param) in [
            (json!({"n": 2}), "n"),
            (json!({"logprobs": true}), "logprobs"),
            (json!({"seed": 7}), "seed"),
            (json!({"frequency_penalty": 0.5}), "frequency_penalty"),
            (json!({"temperature": 1.5}), "temperature"),
            (
                json!({"response_format": {"type": "json_object"}}),
                "response_format.type",
            ),
            (
                json!({"reasoning_effort": "high", "max_tokens": 1000}),
                "reasoning_effort",
            ),
            (
                json!({"tools": [{"type": "custom", "custom": {"name": "x"}}]}),
                "tools[0].type",
            ),
            (json!({"brand_new_field": 1}), "brand_new_field"),
        ] {
            assert_eq!(param_of(user(extra.clone())), param, "{extra}");
        }
    }

    #[test]
    fn neutral_and_ignored_fields_pass() {
        let body = user(
            json!({"n": 1, "logprobs": false, "seed": null, "store": true,
            "metadata": {"a": "b"}, "presence_penalty": 0, "modalities": ["text"]}),
        );
        assert!(from_chat(&serde_json::to_vec(&body).unwrap(), &OPTS).is_ok());
    }

    #[test]
    fn message_errors_are_located() {
        let bad_image = json!({"model": "x", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA"}}]}]});
        assert_eq!(param_of(bad_image), "messages[0].content[0].image_url.url");
        let ftp = json!({"model": "x", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "ftp://h/x.png"}}]}]});
        assert_eq!(param_of(ftp), "messages[0].content[0].image_url.url");
        let audio = json!({"model": "x", "messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]});
        assert_eq!(param_of(audio), "messages[0].content[0].type");
        let args = json!({"model": "x", "messages": [{"role": "assistant", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]});
        assert_eq!(
            param_of(args),
            "messages[0].tool_calls[0].function.arguments"
        );
        let role = json!({"model": "x", "messages": [{"role": "robot", "content": "x"}]});
        assert_eq!(param_of(role), "messages[0].role");
        assert_eq!(param_of(json!({"model": "x", "messages": []})), "messages");
        let e = from_chat(b"{nope", &OPTS).unwrap_err();
        assert_eq!(e.code.as_deref(), Some("invalid_json"));
    }

    fn anthropic(body: Value) -> Value {
        let t = from_chat(&serde_json::to_vec(&body).unwrap(), &OPTS).unwrap();
        serde_json::from_slice(&t.body).unwrap()
    }

    #[test]
    fn tool_messages_merge_into_one_user_turn() {
        let v = anthropic(json!({"model": "x", "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": ""}},
                {"id": "b", "type": "function", "function": {"name": "f", "arguments": "{\"k\":1}"}}]},
            {"role": "tool", "tool_call_id": "a", "content": "1"},
            {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "2"}]},
            {"role": "user", "content": "and?"},
            {"role": "user", "content": [{"type": "text", "text": "more"}]}]}));
        let turns = v["messages"].as_array().unwrap();
        assert_eq!(turns.len(), 3);
        assert_eq!(
            turns[1]["content"],
            json!([{"type": "tool_use", "id": "a", "name": "f", "input": {}},
                {"type": "tool_use", "id": "b", "name": "f", "input": {"k": 1}}])
        );
        assert_eq!(
            turns[2],
            json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "a", "content": "1"},
                {"type": "tool_result", "tool_use_id": "b", "content": "2"},
                {"type": "text", "text": "and?"}, {"type": "text", "text": "more"}]})
        );
    }

    #[test]
    fn image_urls_become_sources() {
        let p = "messages[0].content[0].image_url.url";
        assert_eq!(
            image_block("data:image/webp;base64,UklG", p).unwrap(),
            json!({"type": "image", "source":
                {"type": "base64", "media_type": "image/webp", "data": "UklG"}})
        );
        assert_eq!(
            image_block("http://h/x.png", p).unwrap()["source"],
            json!({"type": "url", "url": "http://h/x.png"})
        );
        for bad in [
            "data:image/png,AAAA",
            "data:image/svg+xml;base64,AA",
            "data:image/png;base64",
            "file:///etc/passwd",
        ] {
            let e = image_block(bad, p).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(p), "{bad}");
        }
    }

    #[test]
    fn part_and_call_errors_are_located() {
        let file = |f: Value| {
            json!({"model": "x", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "read"}, {"type": "file", "file": f}]}]})
        };
        assert_eq!(
            param_of(file(json!({"file_id": "file-1"}))),
            "messages[0].content[1].file.file_id"
        );
        assert_eq!(
            param_of(file(json!({"file_data": "data:text/plain;base64,AA"}))),
            "messages[0].content[1].file.file_data"
        );
        let pdf = anthropic(file(
            json!({"file_data": "data:application/pdf;base64,JVBE"}),
        ));
        assert_eq!(
            pdf["messages"][0]["content"][1]["source"],
            json!({"type": "base64", "media_type": "application/pdf", "data": "JVBE"})
        );
        let extra = json!({"model": "x", "messages": [{"role": "user", "content": "a"},
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "x": 1,
            "function": {"name": "f", "arguments": "{}"}}]}]});
        assert_eq!(param_of(extra), "messages[1].tool_calls[0].x");
        let system = json!({"model": "x", "messages": [{"role": "system", "content": [
            {"type": "image_url", "image_url": {"url": "https://h/i.png"}}]}]});
        assert_eq!(param_of(system), "messages[0].content[0].type");
        let unknown =
            json!({"model": "x", "messages": [{"role": "user", "content": "a", "foo": 1}]});
        assert_eq!(param_of(unknown), "messages[0].foo");
    }

    #[test]
    fn tool_choice_and_parallel_calls() {
        let base = |extra: Value| anthropic(user(extra))["tool_choice"].clone();
        assert_eq!(
            base(json!({"tool_choice": "required"})),
            json!({"type": "any"})
        );
        assert_eq!(
            base(json!({"tool_choice": "none", "parallel_tool_calls": false})),
            json!({"type": "none"})
        );
        assert_eq!(
            base(json!({"parallel_tool_calls": false})),
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );
        let v = anthropic(user(
            json!({"reasoning_effort": "minimal", "stop": ["a", "b"],
            "stream": true, "user": "u"}),
        ));
        assert!(v.get("thinking").is_none());
        assert_eq!(v["stop_sequences"], json!(["a", "b"]));
        assert_eq!(v["metadata"], json!({"user_id": "u"}));
    }

    #[test]
    fn thinking_budget_stays_below_max_tokens() {
        let body = user(json!({"reasoning_effort": "high", "max_tokens": 2000}));
        let t = from_chat(&serde_json::to_vec(&body).unwrap(), &OPTS).unwrap();
        let v: Value = serde_json::from_slice(&t.body).unwrap();
        assert_eq!(v["thinking"]["budget_tokens"], 1999);
    }

    #[test]
    fn anthropic_fields_openai_cannot_express() {
        let to = |v: Value| to_chat(&serde_json::to_vec(&v).unwrap(), &OPTS).unwrap_err();
        let base =
            json!({"model": "x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
        let mut v = base.clone();
        v["top_k"] = json!(5);
        assert_eq!(to(v).param.as_deref(), Some("top_k"));
        let mut v = base.clone();
        v["tools"] = json!([{"type": "web_search_20250305", "name": "web_search"}]);
        assert_eq!(to(v).param.as_deref(), Some("tools[0].type"));
        let mut v = base.clone();
        v["mcp_servers"] = json!([]);
        assert_eq!(to(v).param.as_deref(), Some("mcp_servers"));
        let mut v = base.clone();
        v["thinking"] = json!({"type": "enabled"});
        assert_eq!(to(v).param.as_deref(), Some("thinking.budget_tokens"));
        let mut v = base.clone();
        v["messages"][0]["content"] = json!([{"type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "x"}}]);
        assert_eq!(
            to(v).param.as_deref(),
            Some("messages[0].content[0].source")
        );
        let mut v = base;
        v["messages"][0]["content"] = json!([{"type": "tool_result", "tool_use_id": "t",
            "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA"}}]}]);
        assert_eq!(
            to(v).param.as_deref(),
            Some("messages[0].content[0].content[0].type")
        );
    }

    #[test]
    fn streams_always_ask_for_usage_upstream() {
        let body = json!({"model": "x", "max_tokens": 5, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]});
        let opts = RequestOptions {
            max_tokens_field: MaxTokensField::MaxTokens,
            ..OPTS
        };
        let t = to_chat(&serde_json::to_vec(&body).unwrap(), &opts).unwrap();
        let v: Value = serde_json::from_slice(&t.body).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["max_tokens"], 5);
        assert!(t.stream && !t.include_usage);
    }

    #[test]
    fn tool_results_become_tool_messages_first() {
        let body = json!({"model": "x", "max_tokens": 5, "thinking": {"type": "adaptive"},
            "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": true},
            "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a",
                "content": "1", "is_error": true}]},
            {"role": "user", "content": [
                {"type": "document", "source": {"type": "base64",
                    "media_type": "application/pdf", "data": "JVBE"}},
                {"type": "tool_result", "tool_use_id": "b"}]}]});
        let t = to_chat(&serde_json::to_vec(&body).unwrap(), &OPTS).unwrap();
        let v: Value = serde_json::from_slice(&t.body).unwrap();
        assert_eq!(
            v["messages"],
            json!([{"role": "tool", "tool_call_id": "a", "content": "1"},
                {"role": "tool", "tool_call_id": "b", "content": ""},
                {"role": "user", "content": [{"type": "file", "file": {
                    "filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBE"}}]}])
        );
        assert_eq!(v["reasoning_effort"], "medium");
        assert_eq!(
            v["tool_choice"],
            json!({"type": "function", "function": {"name": "f"}})
        );
        assert_eq!(v["parallel_tool_calls"], false);
    }
}
