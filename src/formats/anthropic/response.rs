//! Complete replies: Anthropic Message ⇄ OpenAI chat completion, usage normalised on the way.

use super::stream::stop_reason;
use super::types::Reply;
use crate::error::ApiError;
use crate::formats::openai::chat::ChatCompletion;
use crate::formats::openai::stream::finish_reason;
use crate::formats::{ids, FinishReason, ReplyContext, Usage};
use serde_json::{json, Value};

fn unreadable(e: serde_json::Error) -> ApiError {
    ApiError::bad_upstream(format!("The upstream reply could not be read: {e}"))
}

/// An Anthropic Message → an OpenAI chat completion.
pub fn to_chat(body: &[u8], ctx: &ReplyContext<'_>) -> Result<(Vec<u8>, Usage), ApiError> {
    let r: Reply = serde_json::from_slice(body).map_err(unreadable)?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for b in &r.content {
        match b.kind.as_str() {
            "text" => text.push_str(b.text.as_deref().unwrap_or("")),
            "thinking" => reasoning.push_str(b.thinking.as_deref().unwrap_or("")),
            "tool_use" => {
                let args = b
                    .input
                    .as_ref()
                    .map_or_else(|| "{}".into(), Value::to_string);
                calls.push(
                    json!({"id": b.id.as_deref().unwrap_or(""), "type": "function",
                    "function": {"name": b.name.as_deref().unwrap_or(""), "arguments": args}}),
                );
            }
            _ => {}
        }
    }
    let mut usage = Usage::default();
    r.usage.apply(&mut usage);
    let finish = match r.stop_reason.as_deref().map(stop_reason) {
        Some(FinishReason::Length) => "length",
        Some(FinishReason::ToolCalls) => "tool_calls",
        Some(FinishReason::ContentFilter) => "content_filter",
        _ => "stop",
    };
    let mut message = json!({"role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) },
        "refusal": null});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !reasoning.is_empty() {
        message["reasoning_content"] = json!(reasoning);
    }
    let v = json!({"id": ids::chat(&r.id), "object": "chat.completion", "created": ctx.created,
        "model": ctx.client_model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": {"prompt_tokens": usage.input, "completion_tokens": usage.output,
            "total_tokens": usage.total(),
            "prompt_tokens_details": {"cached_tokens": usage.cached_input,
                "cache_write_tokens": usage.cache_creation},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning}}});
    Ok((serde_json::to_vec(&v).map_err(unreadable)?, usage))
}

/// An OpenAI chat completion → an Anthropic Message.
pub fn from_chat(body: &[u8], ctx: &ReplyContext<'_>) -> Result<(Vec<u8>, Usage), ApiError> {
    let r: ChatCompletion = serde_json::from_slice(body).map_err(unreadable)?;
    let choice = r
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::bad_upstream("The upstream reply has no choices."))?;
    let m = choice.message;
    let mut content = Vec::new();
    if let Some(t) = m
        .reasoning_content
        .or(m.reasoning)
        .filter(|t| !t.is_empty())
    {
        content.push(json!({"type": "thinking", "thinking": t, "signature": ""}));
    }
    if let Some(t) = m.content.filter(|t| !t.is_empty()) {
        content.push(json!({"type": "text", "text": t}));
    }
    for call in m.tool_calls.into_iter().flatten() {
        let input = super::request::arguments(&call.function.arguments).ok_or_else(|| {
            ApiError::bad_upstream(
                "The upstream returned tool call arguments that are not a JSON object.",
            )
        })?;
        content.push(
            json!({"type": "tool_use", "id": call.id, "name": call.function.name,
            "input": input}),
        );
    }
    let usage = r.usage.map(|u| u.normalise()).unwrap_or_default();
    let stop = match choice.finish_reason.as_deref().map(finish_reason) {
        Some(FinishReason::Length) => "max_tokens",
        Some(FinishReason::ToolCalls) => "tool_use",
        Some(FinishReason::ContentFilter) => "refusal",
        _ => "end_turn",
    };
    let v = json!({"id": ids::message(&r.id), "type": "message", "role": "assistant",
        "model": ctx.client_model, "content": content, "stop_reason": stop,
        "stop_sequence": null,
        "usage": {"input_tokens": usage.input.saturating_sub(usage.cached_input + usage.cache_creation),
            "cache_creation_input_tokens": usage.cache_creation,
            "cache_read_input_tokens": usage.cached_input,
            "output_tokens": usage.output}});
    Ok((serde_json::to_vec(&v).map_err(unreadable)?, usage))
}
