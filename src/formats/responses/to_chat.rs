//! Requests from Responses clients to backends without the Responses API: a Responses request
//! → a chat completions request (the pivot). The gateway keeps responses itself and expands
//! `previous_response_id` and item references before this (module `history`); state it does not
//! keep (`background`, `conversation`, stored prompts) is a 400 naming the field, never
//! ignored; the rest goes by the field policy (`formats::fields`). Mapping: the wire-formats reference §9.8.

use super::input;
use super::namespaces::{plain_names, ToolNames};
use crate::error::ApiError;
use crate::formats::fields::{unsupported, Fields};
use crate::formats::pivot::parse;
use crate::formats::pivot::tools::{empty_object_schema, ChatToolChoice};
use crate::formats::{Pivot, RequestOptions, Translated};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

#[derive(Deserialize)]
struct CreateResponse {
    /// Replaced by the target's model.
    #[allow(dead_code)]
    model: Option<Value>,
    input: Option<Value>,
    instructions: Option<String>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    parallel_tool_calls: Option<bool>,
    text: Option<TextOptions>,
    max_output_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    reasoning: Option<Reasoning>,
    stream: Option<bool>,
    /// `include_obfuscation` only: padding the gateway's events never carry.
    #[allow(dead_code)]
    stream_options: Option<Value>,
    /// Kept by the gateway (module `history`), whatever the target.
    #[allow(dead_code)]
    store: Option<bool>,
    background: Option<bool>,
    include: Option<Vec<String>>,
    truncation: Option<String>,
    top_logprobs: Option<u64>,
    user: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
struct TextOptions {
    format: Option<Value>,
    verbosity: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
struct Reasoning {
    effort: Option<String>,
    /// Thinking text comes back as a reasoning summary wherever the provider returns it.
    #[allow(dead_code)]
    summary: Option<String>,
    #[allow(dead_code)]
    generate_summary: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// Fields that need state Tollgate does not keep (conversations, stored prompts), refused by
/// name; `previous_response_id` is expanded by the gateway before translation, so one that
/// reaches here had nothing to expand it.
const STATEFUL: [&str; 3] = ["previous_response_id", "conversation", "prompt"];

/// Fields without effect on the reply's content: client metadata (Codex's `client_metadata`),
/// server-side compaction of a context that is sent whole, moderation and caching settings.
const NO_EFFECT: [&str; 4] = [
    "client_metadata",
    "context_management",
    "prompt_cache_retention",
    "moderation",
];

/// Fields that change the reply and that a chat target cannot honour.
const MEANINGFUL: [&str; 1] = ["max_tool_calls"];

/// Fields copied to chat under the same name (routing, billing and caching hints).
const SAME_NAME: [&str; 4] = [
    "metadata",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
];

/// A Responses request → an OpenAI chat request.
pub fn to_chat(body: &[u8], opts: &RequestOptions<'_>, f: &Fields) -> Result<Translated, ApiError> {
    let (chat, tool_names) = to_pivot(body, opts, f)?;
    let mut t = chat.write()?;
    t.tool_names = tool_names;
    Ok(t)
}

/// The same, not yet written (a second hop reads it as it is), and how to name namespaced
/// tools' calls back.
pub(crate) fn to_pivot(
    body: &[u8],
    opts: &RequestOptions<'_>,
    f: &Fields,
) -> Result<(Pivot, Option<Arc<ToolNames>>), ApiError> {
    let mut req: CreateResponse = parse(body)?;
    stateless(&req)?;
    let mut names = ToolNames::default();
    let tools = match &req.tools {
        Some(tools) => Some(tools_to_chat(tools, &mut names, f)?),
        None => None,
    };
    let mut out = Map::new();
    out.insert("model".into(), json!(opts.model));
    let mut messages = Vec::new();
    // Moved, not copied: read nowhere else, and a prompt is kilobytes.
    if let Some(i) = req.instructions.take().filter(|i| !i.is_empty()) {
        messages.push(message("system", i));
    }
    match req.input.take() {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => messages.push(message("user", s)),
        Some(Value::Array(items)) => input::items(&items, &names, &mut messages)?,
        Some(_) => {
            return Err(
                ApiError::bad_request("`input` must be a string or a list of items.")
                    .with_param("input"),
            )
        }
    }
    if !messages.iter().any(|m| m["role"] != "system") {
        return Err(
            ApiError::bad_request("`input` must hold at least one item.").with_param("input"),
        );
    }
    out.insert("messages".into(), Value::Array(messages));
    if let Some(n) = req.max_output_tokens {
        out.insert(opts.max_tokens_field.key().into(), json!(n));
    }
    if let Some(tools) = tools {
        out.insert("tools".into(), tools);
    }
    options(&req, &mut out, f)?;
    let names = (!names.is_empty()).then(|| Arc::new(names));
    Ok((Pivot::new(out, req.stream == Some(true)), names))
}

/// A chat message holding `content` itself (`json!` would copy it).
fn message(role: &str, content: String) -> Value {
    let mut m = Map::with_capacity(2);
    m.insert("role".into(), role.into());
    m.insert("content".into(), Value::String(content));
    Value::Object(m)
}

fn stateful(param: &str, why: &str) -> ApiError {
    unsupported(
        param.to_string(),
        &format!(
            "{why} This model's provider has no Responses API and Tollgate does not keep this \
             state: send the whole conversation in `input` instead."
        ),
    )
}

/// Refuses what only a stored-response backend can honour.
fn stateless(req: &CreateResponse) -> Result<(), ApiError> {
    for key in STATEFUL {
        if req.extra.get(key).is_some_and(|v| !v.is_null()) {
            return Err(stateful(key, "refers to state kept by OpenAI."));
        }
    }
    if req.background == Some(true) {
        return Err(stateful(
            "background",
            "asks for a stored, polled response.",
        ));
    }
    Ok(())
}

fn options(req: &CreateResponse, out: &mut Map<String, Value>, f: &Fields) -> Result<(), ApiError> {
    for (k, v) in req.extra.iter().filter(|(_, v)| !v.is_null()) {
        let k = k.as_str();
        if SAME_NAME.contains(&k) {
            out.insert(k.into(), v.clone());
        } else if NO_EFFECT.contains(&k) {
            f.ignore(k);
        } else if MEANINGFUL.contains(&k) {
            f.unsupported(
                k.into(),
                "is not supported when this model is served by another API.",
            )?;
        } else if !STATEFUL.contains(&k) {
            f.unknown_field(k.into())?;
        }
    }
    if let Some(t) = req.temperature {
        out.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        out.insert("top_p".into(), json!(p));
    }
    if let Some(u) = &req.user {
        out.insert("user".into(), json!(u));
    }
    if let Some(p) = req.parallel_tool_calls {
        out.insert("parallel_tool_calls".into(), json!(p));
    }
    if let Some(tc) = req.tool_choice.as_ref().filter(|v| !v.is_null()) {
        out.insert("tool_choice".into(), tool_choice(tc)?);
    }
    if let Some(t) = &req.text {
        f.unknown(&t.extra, "text")?;
        if let Some(rf) = text_format(t.format.as_ref())? {
            out.insert("response_format".into(), rf);
        }
        if let Some(v) = &t.verbosity {
            out.insert("verbosity".into(), json!(v));
        }
    }
    if let Some(r) = &req.reasoning {
        f.unknown(&r.extra, "reasoning")?;
        if let Some(e) = &r.effort {
            out.insert("reasoning_effort".into(), json!(e));
        }
    }
    settings(req, f)
}

/// Request settings that are fine at their neutral value only.
fn settings(req: &CreateResponse, f: &Fields) -> Result<(), ApiError> {
    // Thinking is returned wherever the provider has it, so asking for it changes nothing.
    let include_ok = |i: &String| i == "reasoning.encrypted_content";
    if let Some(i) = req
        .include
        .as_ref()
        .and_then(|v| v.iter().find(|i| !include_ok(i)))
    {
        f.unsupported(
            "include".into(),
            &format!("asks for `{i}`, which this model's provider cannot return."),
        )?;
    }
    // `auto` drops input items only when the context overflows; the target then refuses
    // instead, which never changes a reply silently.
    if req.truncation.as_deref().is_some_and(|t| t != "disabled") {
        f.ignore("truncation");
    }
    if req.top_logprobs.is_some_and(|n| n > 0) {
        f.unsupported(
            "top_logprobs".into(),
            "is not supported when this model is served by another API.",
        )?;
    }
    Ok(())
}

/// Flat Responses function tools → chat's nested ones; a namespace's functions are flattened
/// (module `namespaces`); hosted tools go by the field policy (refused, or dropped).
fn tools_to_chat(tools: &[Value], names: &mut ToolNames, f: &Fields) -> Result<Value, ApiError> {
    let plain = plain_names(tools);
    let mut out = Vec::with_capacity(tools.len());
    for (i, t) in tools.iter().enumerate() {
        let p = format!("tools[{i}]");
        match t["type"].as_str() {
            Some("function") => out.push(function(t, None, &p)?),
            Some("namespace") => {
                let ns = t["name"].as_str().unwrap_or_default();
                for (j, inner) in t["tools"].as_array().into_iter().flatten().enumerate() {
                    let q = format!("{p}.tools[{j}]");
                    if inner["type"] != "function" {
                        f.unsupported(
                            format!("{q}.type"),
                            "must be a function tool for this model's provider.",
                        )?;
                        continue;
                    }
                    let name = inner["name"].as_str().unwrap_or_default();
                    let flat = names.add(ns, name, &plain);
                    out.push(function(inner, Some(&flat), &q)?);
                }
            }
            _ => f.unsupported(
                format!("{p}.type"),
                "is a hosted tool, which this model's provider does not run; only function tools are translated.",
            )?,
        }
    }
    Ok(Value::Array(out))
}

/// One function tool in chat's shape, under `flat` when it came from a namespace.
fn function(t: &Value, flat: Option<&str>, p: &str) -> Result<Value, ApiError> {
    let Some(name) = flat.or(t["name"].as_str()).filter(|n| !n.is_empty()) else {
        return Err(ApiError::bad_request("A function tool needs a `name`.")
            .with_param(format!("{p}.name")));
    };
    let mut f = json!({"name": name});
    let params = &t["parameters"];
    f["parameters"] = if params.is_null() {
        empty_object_schema()
    } else {
        params.clone()
    };
    for k in ["description", "strict"] {
        if !t[k].is_null() {
            f[k] = t[k].clone();
        }
    }
    Ok(json!({"type": "function", "function": f}))
}

fn tool_choice(tc: &Value) -> Result<Value, ApiError> {
    if let Some(s) = tc.as_str() {
        return match s {
            "auto" => Ok(ChatToolChoice::Auto.to_chat()),
            "none" => Ok(ChatToolChoice::Off.to_chat()),
            "required" => Ok(ChatToolChoice::Required.to_chat()),
            _ => Err(unsupported("tool_choice".into(), "has an unknown value.")),
        };
    }
    match (tc["type"].as_str(), tc["name"].as_str()) {
        (Some("function"), Some(name)) => Ok(ChatToolChoice::Function(name).to_chat()),
        (Some("allowed_tools"), _) => {
            let mode = tc["mode"].as_str().unwrap_or("auto");
            let mut names = Vec::new();
            for (i, t) in tc["tools"].as_array().into_iter().flatten().enumerate() {
                match (t["type"].as_str(), t["name"].as_str()) {
                    (Some("function"), Some(n)) => names.push(n),
                    _ => {
                        return Err(unsupported(
                            format!("tool_choice.tools[{i}]"),
                            "must be a function for this model's provider.",
                        ))
                    }
                }
            }
            allowed_tools(mode, &names)
        }
        _ => Err(unsupported(
            "tool_choice".into(),
            "must be auto, none, required, a function or allowed function tools for this model's provider.",
        )),
    }
}

/// `allowed_tools` with one tool is that tool (or auto among one); other subsets have no
/// form every provider takes.
fn allowed_tools(mode: &str, names: &[&str]) -> Result<Value, ApiError> {
    match (mode, names) {
        ("required", [one]) => Ok(ChatToolChoice::Function(one).to_chat()),
        ("auto" | "required", _) if !names.is_empty() => Err(unsupported(
            "tool_choice".into(),
            "restricts the tools to a subset, which this model's provider cannot express: send only the allowed tools in `tools`.",
        )),
        _ => Err(unsupported("tool_choice.mode".into(), "has an unknown value.")),
    }
}

/// `text.format` → chat's `response_format` (flat → nested `json_schema`).
fn text_format(f: Option<&Value>) -> Result<Option<Value>, ApiError> {
    let Some(f) = f.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match f["type"].as_str() {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut js = json!({"name": f["name"].as_str().unwrap_or("output")});
            js["schema"] = match &f["schema"] {
                Value::Null => json!({"type": "object"}),
                s => s.clone(),
            };
            for k in ["strict", "description"] {
                if !f[k].is_null() {
                    js[k] = f[k].clone();
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": js})))
        }
        _ => Err(unsupported(
            "text.format.type".into(),
            "has an unknown value.",
        )),
    }
}

/// An error of the second hop (chat → the provider's API) named in the client's terms: the
/// chat fields the Responses ones became.
pub fn in_responses_terms(mut e: ApiError) -> ApiError {
    const NAMES: [(&str, &str); 5] = [
        ("reasoning_effort", "reasoning.effort"),
        ("response_format", "text.format"),
        ("max_completion_tokens", "max_output_tokens"),
        ("max_tokens", "max_output_tokens"),
        ("messages", "input"),
    ];
    let Some(param) = e.param.clone() else {
        return e;
    };
    for (chat, ours) in NAMES {
        if param.starts_with(chat) {
            // Message indexes shift (instructions, joined calls): name the input as a whole.
            let renamed = if chat == "messages" {
                ours.to_string()
            } else {
                param.replacen(chat, ours, 1)
            };
            e.message = e
                .message
                .replace(&format!("`{param}`"), &format!("`{renamed}`"));
            e.param = Some(renamed.into());
            break;
        }
    }
    e
}

#[cfg(test)]
#[path = "to_chat_tests.rs"]
mod tests;
