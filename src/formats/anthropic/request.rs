//! Requests from OpenAI chat clients to Anthropic's Messages API (`from_chat`); the other
//! direction is `to_chat.rs`. A field Anthropic cannot express is a 400 naming it.

use super::types::{OutBlock, OutRequest, OutSource, OutTurn};
use crate::error::ApiError;
use crate::formats::fields::{unsupported, Fields};
use crate::formats::openai::types::{self as chat, ChatRequest, Content, Part};
use crate::formats::pivot::media::data_url;
use crate::formats::pivot::messages::{
    assistant_text, call_arguments, no_messages, no_turns, text_only, tool_call_id, unknown_role,
};
use crate::formats::pivot::tools::{empty_object_schema, function_tools, ChatToolChoice};
use crate::formats::pivot::{self, claude_thinking};
use crate::formats::{ids, RequestOptions, Translated};
use serde_json::{json, Value};
use std::borrow::Cow;

pub use super::to_chat::to_chat;

const WHO: &str = "for this model's provider (Anthropic).";

/// An OpenAI chat request → an Anthropic Messages request, read from
/// the client's body or built by another client API's first hop.
pub fn from_chat(
    req: ChatRequest,
    opts: &RequestOptions<'_>,
    f: &Fields,
) -> Result<Translated, ApiError> {
    pivot::check_extras(&req.extra, &["top_k"], WHO, f)?;
    let messages = req.messages.as_deref().unwrap_or_default();
    if messages.is_empty() {
        return Err(no_messages());
    }
    let max_tokens = req
        .max_completion_tokens
        .or(req.max_tokens)
        .unwrap_or(u64::from(opts.default_max_tokens));
    let (system, turns) = convert_messages(messages, f)?;
    if turns.is_empty() {
        return Err(no_turns());
    }
    let mut out = OutRequest {
        model: opts.model,
        max_tokens,
        system,
        messages: turns,
        ..OutRequest::default()
    };
    sampling(&req, &mut out, f)?;
    if let Some(tools) = &req.tools {
        out.tools = Some(convert_tools(tools, f)?);
    }
    // Anthropic refuses a tool_choice without tools, so parallelism only matters with tools.
    let has_tools = req.tools.as_ref().is_some_and(|t| !t.is_empty());
    let parallel = req.parallel_tool_calls.filter(|_| has_tools);
    out.tool_choice = tool_choice(req.tool_choice.as_ref(), parallel)?;
    out.output_config =
        response_format(req.response_format.as_ref(), f)?.map(|rf| json!({ "format": rf }));
    out.thinking = claude_thinking(req.reasoning_effort.as_deref(), max_tokens, f)?;
    let stream = req.stream == Some(true);
    out.stream = stream.then_some(true);
    Ok(Translated::new(out.write(), stream, req.include_usage()))
}

fn sampling<'a>(
    req: &'a ChatRequest,
    out: &mut OutRequest<'a>,
    f: &Fields,
) -> Result<(), ApiError> {
    match req.temperature {
        Some(t) if !(0.0..=1.0).contains(&t) => f.unsupported(
            "temperature".into(),
            "must be between 0 and 1 for this model's provider (Anthropic).",
        )?,
        t => out.temperature = t,
    }
    out.top_k = pivot::top_k(&req.extra, WHO)?;
    out.top_p = req.top_p;
    out.stop_sequences = req.stop.as_ref().map(chat::Stop::strs);
    out.metadata = req.user.as_ref().map(|u| json!({ "user_id": u }));
    Ok(())
}

/// Collects system text and the alternating turns; adjacent same-role turns are merged
/// (tool results and the user's next words share one user turn).
type Converted<'a> = (Vec<OutBlock<'a>>, Vec<OutTurn<'a>>);

fn convert_messages<'a>(msgs: &'a [chat::Message], f: &Fields) -> Result<Converted<'a>, ApiError> {
    let mut system = Vec::new();
    let mut turns: Vec<OutTurn<'_>> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let p = ids::element("", "messages", i);
        f.unknown(&m.extra, &p)?;
        let (role, blocks) = match m.role.as_str() {
            "system" | "developer" => {
                let text = text_only(m.content.as_ref(), &p)?;
                // Anthropic rejects empty text blocks.
                if !text.is_empty() {
                    system.push(OutBlock::Text { text });
                }
                continue;
            }
            "user" => ("user", user_blocks(m.content.as_ref(), &p, f)?),
            "assistant" => ("assistant", assistant_blocks(m, &p, f)?),
            "tool" => ("user", vec![tool_result(m, &p)?]),
            _ => return Err(unknown_role(&m.role, &p)),
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(t) if t.role == role => t.content.extend(blocks),
            _ => turns.push(OutTurn {
                role,
                content: blocks,
            }),
        }
    }
    Ok((system, turns))
}

fn user_blocks<'a>(
    content: Option<&'a Content>,
    p: &str,
    f: &Fields,
) -> Result<Vec<OutBlock<'a>>, ApiError> {
    let parts = match content {
        None => return Ok(vec![]),
        Some(Content::Text(s)) => {
            return Ok(vec![OutBlock::Text {
                text: Cow::Borrowed(s),
            }])
        }
        Some(Content::Parts(parts)) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let pp = ids::element(p, "content", j);
        f.unknown(&part.extra, &pp)?;
        if let Some(b) = user_part(part, &pp, f)? {
            out.push(b);
        }
    }
    Ok(out)
}

/// A user content part as a block; `None` when the policy dropped it.
fn user_part<'a>(part: &'a Part, p: &str, f: &Fields) -> Result<Option<OutBlock<'a>>, ApiError> {
    match (&*part.kind, &part.text, &part.image_url, &part.file) {
        ("text", Some(t), _, _) => Ok(Some(OutBlock::Text {
            text: Cow::Borrowed(t),
        })),
        ("image_url", _, Some(img), _) => {
            f.unknown(&img.extra, &format!("{p}.image_url"))?;
            image_block(&img.url, &format!("{p}.image_url.url")).map(Some)
        }
        ("file", _, _, Some(file)) => {
            f.unknown(&file.extra, &format!("{p}.file"))?;
            file_block(file, p).map(Some)
        }
        _ => f
            .unsupported(format!("{p}.type"), &format!("is not supported {WHO}"))
            .map(|()| None),
    }
}

/// A `file` part → a PDF document block. Uploaded files (`file_id`) live in OpenAI's storage,
/// which Anthropic cannot read.
fn file_block<'a>(f: &'a chat::FilePart, p: &str) -> Result<OutBlock<'a>, ApiError> {
    if f.file_id.is_some() {
        return Err(unsupported(
            format!("{p}.file.file_id"),
            "is not supported for this model's provider (Anthropic); send the PDF in `file_data`.",
        ));
    }
    let pdf = f
        .file_data
        .as_deref()
        .and_then(data_url)
        .filter(|u| u.media_type == "application/pdf");
    match pdf {
        Some(u) => Ok(OutBlock::Document {
            source: OutSource::Base64 {
                media_type: "application/pdf",
                data: u.data,
            },
        }),
        None => Err(unsupported(
            format!("{p}.file.file_data"),
            "must be a PDF as a base64 data URL for this model's provider (Anthropic).",
        )),
    }
}

const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// An image URL → an Anthropic image block: `data:` URLs inline, http(s) by URL.
fn image_block<'a>(url: &'a str, p: &str) -> Result<OutBlock<'a>, ApiError> {
    if url.starts_with("data:") {
        return match data_url(url) {
            Some(u) if IMAGE_TYPES.contains(&u.media_type) => Ok(OutBlock::Image {
                source: OutSource::Base64 {
                    media_type: u.media_type,
                    data: u.data,
                },
            }),
            _ => Err(unsupported(
                p.to_string(),
                "must be a base64 data URL of a JPEG, PNG, GIF or WebP image.",
            )),
        };
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(OutBlock::Image {
            source: OutSource::Url { url },
        });
    }
    Err(unsupported(
        p.to_string(),
        "must be an http(s) URL or a data URL.",
    ))
}

fn assistant_blocks<'a>(
    m: &'a chat::Message,
    p: &str,
    f: &Fields,
) -> Result<Vec<OutBlock<'a>>, ApiError> {
    let mut blocks = Vec::new();
    let text = assistant_text(m, p)?;
    if !text.is_empty() {
        blocks.push(OutBlock::Text { text });
    }
    for (j, call) in m.tool_calls.iter().flatten().enumerate() {
        let q = format!("{p}.tool_calls[{j}]");
        f.unknown(&call.extra, &q)?;
        let input = call_arguments(call, &q)?;
        blocks.push(OutBlock::ToolUse {
            id: &call.id,
            name: &call.function.name,
            input,
        });
    }
    Ok(blocks)
}

fn tool_result<'a>(m: &'a chat::Message, p: &str) -> Result<OutBlock<'a>, ApiError> {
    let id = tool_call_id(m, p)?;
    let content = text_only(m.content.as_ref(), p)?;
    Ok(OutBlock::ToolResult {
        tool_use_id: id,
        content,
    })
}

fn convert_tools(tools: &[chat::Tool], fields: &Fields) -> Result<Value, ApiError> {
    let mut out = Vec::with_capacity(tools.len());
    for t in function_tools(tools, WHO, fields) {
        let t = t?;
        fields.unknown(t.extra, &t.path)?;
        let mut tool = json!({"name": t.name,
            "input_schema": t.parameters.cloned().unwrap_or_else(empty_object_schema)});
        if let Some(d) = t.description {
            tool["description"] = json!(d);
        }
        out.push(tool);
    }
    Ok(Value::Array(out))
}

fn tool_choice(tc: Option<&Value>, parallel: Option<bool>) -> Result<Option<Value>, ApiError> {
    let mut choice = ChatToolChoice::read(tc, WHO)?.map(|c| match c {
        ChatToolChoice::Auto => json!({"type": "auto"}),
        ChatToolChoice::Required => json!({"type": "any"}),
        ChatToolChoice::Off => json!({"type": "none"}),
        ChatToolChoice::Function(name) => json!({"type": "tool", "name": name}),
    });
    if parallel == Some(false) {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if c["type"] != "none" {
            c["disable_parallel_tool_use"] = json!(true);
        }
    }
    Ok(choice)
}

fn response_format(rf: Option<&Value>, f: &Fields) -> Result<Option<Value>, ApiError> {
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
        _ => f
            .unsupported(
                "response_format.type".into(),
                "must be text or json_schema for this model's provider (Anthropic); use json_schema for JSON output.",
            )
            .map(|()| None),
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
