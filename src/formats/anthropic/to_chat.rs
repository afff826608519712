//! Requests from Anthropic clients to OpenAI-style backends: Messages → chat completions.

use super::request::{join, no_extra, parse, unsupported};
use super::types::{Block, Content, Message, MessagesRequest, Tool, ToolChoice};
use crate::error::ApiError;
use crate::formats::{RequestOptions, Translated};
use serde_json::{json, Map, Value};

/// An Anthropic Messages request → an OpenAI chat request.
pub fn to_chat(body: &[u8], opts: &RequestOptions<'_>) -> Result<Translated, ApiError> {
    let req: MessagesRequest = parse(body)?;
    no_extra(&req.extra, "")?;
    if req.top_k.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(unsupported(
            "top_k".into(),
            "cannot be expressed for this model's provider (OpenAI-style).",
        ));
    }
    let msgs = req.messages.as_deref().unwrap_or_default();
    if msgs.is_empty() {
        return Err(
            ApiError::bad_request("messages: at least one message is required")
                .with_param("messages"),
        );
    }
    let mut out_msgs = Vec::with_capacity(msgs.len() + 1);
    let keep = opts.cache_points;
    if let Some(system) = &req.system {
        let text = text_of(system, "system")?;
        let mut m = json!({"role": "system", "content": text});
        if let Content::Blocks(b) = system {
            mark(
                &mut m,
                keep,
                b.iter().rev().find_map(|b| b.cache_control.as_ref()),
            );
        }
        out_msgs.push(m);
    }
    for (i, m) in msgs.iter().enumerate() {
        convert_message(m, &format!("messages[{i}]"), keep, &mut out_msgs)?;
    }
    let mut out = Map::new();
    out.insert("model".into(), json!(opts.model));
    out.insert("messages".into(), Value::Array(out_msgs));
    if let Some(n) = req.max_tokens {
        out.insert(opts.max_tokens_field.key().into(), json!(n));
    }
    options(&req, keep, &mut out)?;
    Translated::chat(out, req.stream == Some(true))
}

/// Copies a block's `cache_control` onto its chat counterpart, for providers with cache points
/// (a chat extension, as LiteLLM's; never sent to OpenAI-style servers).
fn mark(v: &mut Value, keep: bool, cache_control: Option<&Value>) {
    if let (true, Some(c)) = (keep, cache_control.filter(|c| !c.is_null())) {
        v["cache_control"] = c.clone();
    }
}

fn options(
    req: &MessagesRequest,
    keep: bool,
    out: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    if let Some(t) = req.temperature {
        out.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        out.insert("top_p".into(), json!(p));
    }
    if let Some(s) = &req.stop_sequences {
        out.insert("stop".into(), json!(s));
    }
    if let Some(u) = req.metadata.as_ref().and_then(|m| m.user_id.as_ref()) {
        out.insert("user".into(), json!(u));
    }
    if let Some(tools) = &req.tools {
        out.insert("tools".into(), convert_tools(tools, keep)?);
    }
    if let Some(tc) = &req.tool_choice {
        tool_choice(tc, out)?;
    }
    if let Some(t) = &req.thinking {
        let effort = match (t.kind.as_str(), t.budget_tokens) {
            ("disabled", _) => None,
            ("enabled", Some(b)) if b < 4096 => Some("low"),
            ("enabled", Some(b)) if b < 16384 => Some("medium"),
            ("enabled", Some(_)) => Some("high"),
            ("enabled", None) => {
                return Err(
                    ApiError::bad_request("`thinking.budget_tokens` is required.")
                        .with_param("thinking.budget_tokens"),
                )
            }
            ("adaptive", _) => Some("medium"),
            _ => return Err(unsupported("thinking.type".into(), "has an unknown value.")),
        };
        if let Some(e) = effort {
            out.insert("reasoning_effort".into(), json!(e));
        }
    }
    if let Some(oc) = &req.output_config {
        no_extra(&oc.extra, "output_config")?;
        match &oc.format {
            None => {}
            Some(f) if f.kind == "json_schema" => {
                let schema = f
                    .schema
                    .clone()
                    .unwrap_or_else(|| json!({"type": "object"}));
                out.insert(
                    "response_format".into(),
                    json!({"type": "json_schema",
                    "json_schema": {"name": "output", "schema": schema}}),
                );
            }
            Some(_) => {
                return Err(unsupported(
                    "output_config.format.type".into(),
                    "has an unknown value.",
                ))
            }
        }
    }
    Ok(())
}

/// Text of a system prompt or tool result: a string, or text blocks joined by newlines.
fn text_of(c: &Content, p: &str) -> Result<String, ApiError> {
    match c {
        Content::Text(s) => Ok(s.clone()),
        Content::Blocks(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (j, b) in blocks.iter().enumerate() {
                let bp = format!("{p}[{j}]");
                no_extra(&b.extra, &bp)?;
                match (&*b.kind, &b.text) {
                    ("text", Some(t)) => parts.push(t.as_str()),
                    _ => {
                        return Err(unsupported(
                            format!("{bp}.type"),
                            "must be text here for this model's provider (OpenAI-style).",
                        ))
                    }
                }
            }
            Ok(parts.join("\n"))
        }
    }
}

fn convert_message(m: &Message, p: &str, keep: bool, out: &mut Vec<Value>) -> Result<(), ApiError> {
    no_extra(&m.extra, p)?;
    let blocks = match &m.content {
        Content::Text(s) => {
            out.push(json!({"role": m.role, "content": s}));
            return check_role(&m.role, p);
        }
        Content::Blocks(b) => b,
    };
    check_role(&m.role, p)?;
    if m.role == "assistant" {
        return assistant(blocks, p, keep, out);
    }
    let mut parts = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let bp = format!("{p}.content[{j}]");
        no_extra(&b.extra, &bp)?;
        let cc = b.cache_control.as_ref();
        match b.kind.as_str() {
            "text" => {
                let mut part = json!({"type": "text", "text": b.text.as_deref().unwrap_or("")});
                mark(&mut part, keep, cc);
                parts.push(part);
            }
            "image" | "document" => {
                let mut part = if b.kind == "image" {
                    image_part(b, &bp)?
                } else {
                    document_part(b, &bp)?
                };
                mark(&mut part, keep, cc);
                parts.push(part);
            }
            "tool_result" => {
                let content = match &b.content {
                    None => String::new(),
                    Some(c) => text_of(c, &join(&bp, "content"))?,
                };
                let mut msg = json!({"role": "tool",
                    "tool_call_id": b.tool_use_id.as_deref().unwrap_or(""), "content": content});
                mark(&mut msg, keep, cc);
                out.push(msg);
            }
            "thinking" | "redacted_thinking" => {}
            _ => {
                return Err(unsupported(
                    format!("{bp}.type"),
                    "is not supported for this model's provider (OpenAI-style).",
                ))
            }
        }
    }
    if !parts.is_empty() {
        out.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

fn check_role(role: &str, p: &str) -> Result<(), ApiError> {
    match role {
        "user" | "assistant" => Ok(()),
        _ => Err(ApiError::bad_request(format!("Unknown role `{role}`."))
            .with_param(format!("{p}.role"))),
    }
}

fn assistant(blocks: &[Block], p: &str, keep: bool, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let mut text = String::new();
    let mut calls = Vec::new();
    let cc = blocks.iter().rev().find_map(|b| b.cache_control.as_ref());
    for (j, b) in blocks.iter().enumerate() {
        let bp = format!("{p}.content[{j}]");
        no_extra(&b.extra, &bp)?;
        match b.kind.as_str() {
            "text" => text.push_str(b.text.as_deref().unwrap_or("")),
            "tool_use" => calls.push(b.to_tool_call()),
            // The model's earlier reasoning: OpenAI-style backends have no field for it.
            "thinking" | "redacted_thinking" => {}
            _ => {
                return Err(unsupported(
                    format!("{bp}.type"),
                    "is not supported for this model's provider (OpenAI-style).",
                ))
            }
        }
    }
    let mut msg = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    if !calls.is_empty() {
        msg["tool_calls"] = Value::Array(calls);
    }
    mark(&mut msg, keep, cc);
    out.push(msg);
    Ok(())
}

fn image_part(b: &Block, p: &str) -> Result<Value, ApiError> {
    let url = match b.source.as_ref() {
        Some(s) if s.kind == "base64" => format!(
            "data:{};base64,{}",
            s.media_type.as_deref().unwrap_or("image/png"),
            s.data.as_deref().unwrap_or("")
        ),
        Some(s) if s.kind == "url" => s.url.clone().unwrap_or_default(),
        _ => return Err(unsupported(format!("{p}.source"), "must be base64 or url.")),
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

fn document_part(b: &Block, p: &str) -> Result<Value, ApiError> {
    match b.source.as_ref() {
        Some(s) if s.kind == "base64" && s.media_type.as_deref() == Some("application/pdf") => {
            Ok(json!({"type": "file", "file": {"filename": "document.pdf",
                "file_data": format!("data:application/pdf;base64,{}", s.data.as_deref().unwrap_or(""))}}))
        }
        _ => Err(unsupported(
            format!("{p}.source"),
            "must be a base64 PDF for this model's provider (OpenAI-style).",
        )),
    }
}

fn convert_tools(tools: &[Tool], keep: bool) -> Result<Value, ApiError> {
    let mut out = Vec::with_capacity(tools.len());
    for (i, t) in tools.iter().enumerate() {
        let p = format!("tools[{i}]");
        // The type first: a server tool's own settings (`max_uses`...) are not the problem.
        if !matches!(t.kind.as_deref(), None | Some("custom")) {
            return Err(unsupported(
                format!("{p}.type"),
                "is a server tool, which this model's provider (OpenAI-style) does not run.",
            ));
        }
        no_extra(&t.extra, &p)?;
        let params = t
            .input_schema
            .clone()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        let mut f = json!({"name": t.name, "parameters": params});
        if let Some(d) = &t.description {
            f["description"] = json!(d);
        }
        let mut tool = json!({"type": "function", "function": f});
        mark(&mut tool, keep, t.cache_control.as_ref());
        out.push(tool);
    }
    Ok(Value::Array(out))
}

fn tool_choice(tc: &ToolChoice, out: &mut Map<String, Value>) -> Result<(), ApiError> {
    let v = match (tc.kind.as_str(), &tc.name) {
        ("auto", _) => json!("auto"),
        ("any", _) => json!("required"),
        ("none", _) => json!("none"),
        ("tool", Some(n)) => json!({"type": "function", "function": {"name": n}}),
        _ => {
            return Err(unsupported(
                "tool_choice.type".into(),
                "has an unknown value.",
            ))
        }
    };
    out.insert("tool_choice".into(), v);
    if tc.disable_parallel_tool_use == Some(true) {
        out.insert("parallel_tool_calls".into(), json!(false));
    }
    Ok(())
}
