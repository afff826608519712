//! Requests from Anthropic clients to OpenAI-style backends: Messages → chat completions.
//!
//! The chat request is either final (an OpenAI-style backend) or the pivot on the way to Bedrock
//! or Gemini (`pivot`). The pivot carries what those targets have and chat has not, as chat
//! extensions the next translator reads: `top_k`, a tool message's `is_error`, and an assistant
//! message's `thinking_blocks` (its `thinking` and `redacted_thinking` blocks, which Bedrock
//! needs back while thinking is on; OpenAI-style backends never get them).
//!
//! `system` messages inside `messages` (Claude Code sends them) stay in place; the next hop
//! folds them into its system prompt where it has one. `context_management` edits history that
//! is sent whole here (thinking history is not sent to OpenAI-style backends), so it is dropped
//! and named.

use super::types::{Block, Content, Message, MessagesRequest, Tool, ToolChoice};
use crate::error::ApiError;
use crate::formats::fields::{join, unsupported, Fields};
use crate::formats::ids;
use crate::formats::pivot::media::to_data_url;
use crate::formats::pivot::messages::unknown_role;
use crate::formats::pivot::parse;
use crate::formats::pivot::tools::{empty_object_schema, ChatToolChoice};
use crate::formats::{Pivot, RequestOptions, Translated};
use serde_json::{json, Map, Value};

const WHO: &str = "for this model's provider (OpenAI-style).";

/// Request fields of the Messages API that need Anthropic's own servers (MCP connectors, code
/// execution containers): beyond any other provider.
const ANTHROPIC_ONLY: [&str; 2] = ["mcp_servers", "container"];

/// Request fields without effect on a translated reply's content.
const NO_EFFECT: [&str; 3] = ["context_management", "service_tier", "inference_geo"];

/// An Anthropic Messages request → an OpenAI chat request; `pivot`: on the way to another
/// format (extensions allowed), rather than to an OpenAI-style backend.
pub fn to_chat(
    body: &[u8],
    opts: &RequestOptions<'_>,
    f: &Fields,
    pivot: bool,
) -> Result<Translated, ApiError> {
    to_pivot(body, opts, f, pivot)?.write()
}

/// The same, not yet written (a second hop reads it as it is).
pub(crate) fn to_pivot(
    body: &[u8],
    opts: &RequestOptions<'_>,
    f: &Fields,
    pivot: bool,
) -> Result<Pivot, ApiError> {
    let req: MessagesRequest = parse(body)?;
    top_level(&req, f)?;
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
        let text = text_of(system, "system", f)?;
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
    let cx = Cx { keep, pivot, f };
    for (i, m) in msgs.iter().enumerate() {
        convert_message(m, &ids::element("", "messages", i), &cx, &mut out_msgs)?;
    }
    let mut out = Map::new();
    out.insert("model".into(), json!(opts.model));
    out.insert("messages".into(), Value::Array(out_msgs));
    if let Some(n) = req.max_tokens {
        out.insert(opts.max_tokens_field.key().into(), json!(n));
    }
    if let Some(k) = req.top_k.as_ref().filter(|v| !v.is_null()) {
        if pivot {
            out.insert("top_k".into(), k.clone());
        } else {
            f.unsupported("top_k".into(), &format!("cannot be expressed {WHO}"))?;
        }
    }
    options(&req, &cx, &mut out)?;
    Ok(Pivot::new(out, req.stream == Some(true)))
}

/// What every message and block conversion needs to know.
struct Cx<'a> {
    /// Keep `cache_control` marks (a target with cache points).
    keep: bool,
    /// The chat request is the pivot to another format.
    pivot: bool,
    f: &'a Fields,
}

/// The policy for the request's own fields: Anthropic-only features refused, hints dropped.
fn top_level(req: &MessagesRequest, f: &Fields) -> Result<(), ApiError> {
    for k in req
        .extra
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, _)| k)
    {
        let k = k.as_str();
        if ANTHROPIC_ONLY.contains(&k) {
            f.unsupported(
                k.into(),
                &format!("needs Anthropic's own servers, not {WHO}"),
            )?;
        } else if NO_EFFECT.contains(&k) {
            f.ignore(k);
        } else {
            f.unknown_field(k.into())?;
        }
    }
    if req.service_tier.as_ref().is_some_and(|v| !v.is_null()) {
        f.ignore("service_tier");
    }
    if let Some(m) = &req.metadata {
        f.unknown(&m.extra, "metadata")?;
    }
    Ok(())
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
    cx: &Cx<'_>,
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
        out.insert("tools".into(), convert_tools(tools, cx)?);
    }
    if let Some(tc) = &req.tool_choice {
        tool_choice(tc, out)?;
    }
    if let Some(e) = effort(req, cx.f)? {
        out.insert("reasoning_effort".into(), json!(e));
    }
    if let Some(f) = output_format(req, cx.f)? {
        out.insert("response_format".into(), f);
    }
    Ok(())
}

/// The reasoning effort: `thinking` turns reasoning on or off and gives its budget;
/// `output_config.effort`, where given, sets the level (Claude Code sends both).
fn effort(req: &MessagesRequest, f: &Fields) -> Result<Option<&'static str>, ApiError> {
    let from_budget = match req
        .thinking
        .as_ref()
        .map(|t| (t.kind.as_str(), t.budget_tokens))
    {
        None => None,
        Some(("disabled", _)) => return Ok(None),
        Some(("enabled", Some(b))) if b < 4096 => Some("low"),
        Some(("enabled", Some(b))) if b < 16384 => Some("medium"),
        Some(("enabled", Some(_))) => Some("high"),
        Some(("enabled", None)) => {
            return Err(
                ApiError::bad_request("`thinking.budget_tokens` is required.")
                    .with_param("thinking.budget_tokens"),
            )
        }
        Some(("adaptive", _)) => Some("medium"),
        Some(_) => return Err(unsupported("thinking.type".into(), "has an unknown value.")),
    };
    let Some(oc) = &req.output_config else {
        return Ok(from_budget);
    };
    f.unknown(&oc.extra, "output_config")?;
    Ok(match oc.effort.as_deref() {
        None => from_budget,
        Some("low") => Some("low"),
        Some("medium") => Some("medium"),
        // OpenAI's `xhigh` is not on every model; `high` is the most every one takes.
        Some("high" | "xhigh" | "max") => Some("high"),
        Some(_) => {
            return Err(unsupported(
                "output_config.effort".into(),
                "has an unknown value.",
            ))
        }
    })
}

/// `output_config.format` → chat's `response_format`.
fn output_format(req: &MessagesRequest, f: &Fields) -> Result<Option<Value>, ApiError> {
    match req.output_config.as_ref().and_then(|oc| oc.format.as_ref()) {
        None => Ok(None),
        Some(fmt) if fmt.kind == "json_schema" => {
            let schema = fmt
                .schema
                .clone()
                .unwrap_or_else(|| json!({"type": "object"}));
            Ok(Some(json!({"type": "json_schema",
                "json_schema": {"name": "output", "schema": schema}})))
        }
        Some(_) => f
            .unsupported("output_config.format.type".into(), "has an unknown value.")
            .map(|()| None),
    }
}

/// Text of a system prompt or tool result: a string, or text blocks joined by newlines.
fn text_of(c: &Content, p: &str, f: &Fields) -> Result<String, ApiError> {
    match c {
        Content::Text(s) => Ok(s.clone()),
        Content::Blocks(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (j, b) in blocks.iter().enumerate() {
                let bp = format!("{p}[{j}]");
                f.unknown(&b.extra, &bp)?;
                match (&*b.kind, &b.text) {
                    ("text", Some(t)) => parts.push(t.as_str()),
                    _ => {
                        return Err(unsupported(
                            format!("{bp}.type"),
                            &format!("must be text here {WHO}"),
                        ))
                    }
                }
            }
            Ok(parts.join("\n"))
        }
    }
}

fn convert_message(
    m: &Message,
    p: &str,
    cx: &Cx<'_>,
    out: &mut Vec<Value>,
) -> Result<(), ApiError> {
    cx.f.unknown(&m.extra, p)?;
    match m.role.as_str() {
        // In place: a chat target reads it there; the next hop folds it into its system prompt.
        "system" => {
            let text = text_of(&m.content, &join(p, "content"), cx.f)?;
            out.push(json!({"role": "system", "content": text}));
            return Ok(());
        }
        "user" | "assistant" => {}
        role => return Err(unknown_role(role, p)),
    }
    let blocks = match &m.content {
        Content::Text(s) => {
            out.push(json!({"role": m.role, "content": s}));
            return Ok(());
        }
        Content::Blocks(b) => b,
    };
    if m.role == "assistant" {
        return assistant(blocks, p, cx, out);
    }
    let mut parts = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let bp = ids::element(p, "content", j);
        cx.f.unknown(&b.extra, &bp)?;
        let cc = b.cache_control.as_ref();
        match b.kind.as_str() {
            "text" => {
                let mut part = json!({"type": "text", "text": b.text.as_deref().unwrap_or("")});
                mark(&mut part, cx.keep, cc);
                parts.push(part);
            }
            "image" | "document" => {
                let mut part = if b.kind == "image" {
                    image_part(b, &bp)?
                } else {
                    document_part(b, &bp)?
                };
                mark(&mut part, cx.keep, cc);
                parts.push(part);
            }
            "tool_result" => out.push(tool_result(b, &bp, cx)?),
            "thinking" | "redacted_thinking" => {}
            _ => {
                cx.f.unsupported(format!("{bp}.type"), &format!("is not supported {WHO}"))?
            }
        }
    }
    if !parts.is_empty() {
        out.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

/// A `tool_result` block → a tool message. `is_error` goes on as a pivot extension (Bedrock's
/// `status: "error"`); chat has no field for it (the content says what failed).
fn tool_result(b: &Block, bp: &str, cx: &Cx<'_>) -> Result<Value, ApiError> {
    let content = match &b.content {
        None => String::new(),
        Some(c) => text_of(c, &join(bp, "content"), cx.f)?,
    };
    let mut msg = json!({"role": "tool",
        "tool_call_id": b.tool_use_id.as_deref().unwrap_or(""), "content": content});
    if b.is_error == Some(true) {
        if cx.pivot {
            msg["is_error"] = json!(true);
        } else {
            cx.f.ignore(&join(bp, "is_error"));
        }
    }
    mark(&mut msg, cx.keep, b.cache_control.as_ref());
    Ok(msg)
}

fn assistant(blocks: &[Block], p: &str, cx: &Cx<'_>, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut thinking = Vec::new();
    let cc = blocks.iter().rev().find_map(|b| b.cache_control.as_ref());
    for (j, b) in blocks.iter().enumerate() {
        let bp = ids::element(p, "content", j);
        cx.f.unknown(&b.extra, &bp)?;
        match b.kind.as_str() {
            "text" => text.push_str(b.text.as_deref().unwrap_or("")),
            "tool_use" => calls.push(b.to_tool_call()),
            // The model's earlier reasoning: OpenAI-style backends have no field for it; the
            // pivot carries it for Bedrock, which needs it back while thinking is on.
            "thinking" | "redacted_thinking" if cx.pivot => thinking.push(thinking_block(b)),
            "thinking" | "redacted_thinking" => {}
            _ => {
                cx.f.unsupported(format!("{bp}.type"), &format!("is not supported {WHO}"))?
            }
        }
    }
    let mut msg = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    if !calls.is_empty() {
        msg["tool_calls"] = Value::Array(calls);
    }
    if !thinking.is_empty() {
        msg["thinking_blocks"] = Value::Array(thinking);
    }
    mark(&mut msg, cx.keep, cc);
    out.push(msg);
    Ok(())
}

/// A `thinking` or `redacted_thinking` block for the pivot's `thinking_blocks` (LiteLLM's
/// extension, in Anthropic's own shapes): a list, because a message may hold several, redacted
/// ones among them, and Claude wants them back unmodified and in order.
fn thinking_block(b: &Block) -> Value {
    if b.kind == "redacted_thinking" {
        json!({"type": "redacted_thinking", "data": b.data.as_deref().unwrap_or("")})
    } else {
        json!({"type": "thinking", "thinking": b.thinking.as_deref().unwrap_or(""),
            "signature": b.signature.as_deref().unwrap_or("")})
    }
}

fn image_part(b: &Block, p: &str) -> Result<Value, ApiError> {
    let url = match b.source.as_ref() {
        Some(s) if s.kind == "base64" => to_data_url(
            s.media_type.as_deref().unwrap_or("image/png"),
            s.data.as_deref().unwrap_or(""),
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
                "file_data": to_data_url("application/pdf", s.data.as_deref().unwrap_or(""))}}))
        }
        _ => Err(unsupported(
            format!("{p}.source"),
            &format!("must be a base64 PDF {WHO}"),
        )),
    }
}

/// Client tools → chat function tools. Server tools (web search, code execution, ...) run on
/// Anthropic's side only; their hints (`eager_input_streaming`, ...) are dropped and named.
fn convert_tools(tools: &[Tool], cx: &Cx<'_>) -> Result<Value, ApiError> {
    let mut out = Vec::with_capacity(tools.len());
    for (i, t) in tools.iter().enumerate() {
        let p = format!("tools[{i}]");
        // The type first: a server tool's own settings (`max_uses`...) are not the problem.
        if !matches!(t.kind.as_deref(), None | Some("custom")) {
            cx.f.unsupported(
                format!("{p}.type"),
                &format!("is a server tool, which is not run {WHO}"),
            )?;
            continue;
        }
        cx.f.unknown(&t.extra, &p)?;
        let params = t.input_schema.clone().unwrap_or_else(empty_object_schema);
        let mut f = json!({"name": t.name, "parameters": params});
        if let Some(d) = &t.description {
            f["description"] = json!(d);
        }
        let mut tool = json!({"type": "function", "function": f});
        mark(&mut tool, cx.keep, t.cache_control.as_ref());
        out.push(tool);
    }
    Ok(Value::Array(out))
}

fn tool_choice(tc: &ToolChoice, out: &mut Map<String, Value>) -> Result<(), ApiError> {
    let v = match (tc.kind.as_str(), &tc.name) {
        ("auto", _) => ChatToolChoice::Auto,
        ("any", _) => ChatToolChoice::Required,
        ("none", _) => ChatToolChoice::Off,
        ("tool", Some(n)) => ChatToolChoice::Function(n),
        _ => {
            return Err(unsupported(
                "tool_choice.type".into(),
                "has an unknown value.",
            ))
        }
    };
    out.insert("tool_choice".into(), v.to_chat());
    if tc.disable_parallel_tool_use == Some(true) {
        out.insert("parallel_tool_calls".into(), json!(false));
    }
    Ok(())
}
