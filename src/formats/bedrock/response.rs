//! A complete Converse reply → an OpenAI chat completion (`to_chat`).

use super::{stop_reason, WireUsage};
use crate::error::ApiError;
use crate::formats::anthropic::response::UsageOut;
use crate::formats::{FinishReason, ReplyContext, Usage};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply {
    output: Option<Output>,
    stop_reason: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
struct Output {
    message: Option<Message>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Vec<Block>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Block {
    text: Option<String>,
    tool_use: Option<ToolUse>,
    reasoning_content: Option<Reasoning>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUse {
    tool_use_id: String,
    name: String,
    #[serde(default)]
    input: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reasoning {
    reasoning_text: Option<ReasoningText>,
}

#[derive(Deserialize)]
struct ReasoningText {
    #[serde(default)]
    text: String,
}

fn unreadable(e: serde_json::Error) -> ApiError {
    ApiError::bad_upstream(format!("The upstream reply could not be read: {e}"))
}

/// Converse replies carry no id (it is in a header): a fresh one, as OpenAI's are unique.
fn fresh_id() -> String {
    format!(
        "chatcmpl-{:016x}{:016x}",
        fastrand::u64(..),
        fastrand::u64(..)
    )
}

pub fn to_chat(body: &[u8], ctx: &ReplyContext<'_>) -> Result<(Vec<u8>, Usage), ApiError> {
    let r: Reply = serde_json::from_slice(body).map_err(unreadable)?;
    let (mut text, mut reasoning, mut calls) = (None::<String>, String::new(), Vec::new());
    let blocks = r.output.and_then(|o| o.message).map(|m| m.content);
    for b in blocks.into_iter().flatten() {
        if let Some(t) = b.text {
            text.get_or_insert_with(String::new).push_str(&t);
        } else if let Some(u) = b.tool_use {
            let args = if u.input.is_null() {
                "{}".into()
            } else {
                u.input.to_string()
            };
            calls.push(json!({"id": u.tool_use_id, "type": "function",
                "function": {"name": u.name, "arguments": args}}));
        } else if let Some(t) = b.reasoning_content.and_then(|r| r.reasoning_text) {
            reasoning.push_str(&t.text);
        }
    }
    let finish = match r.stop_reason.as_deref().map(stop_reason) {
        _ if !calls.is_empty() => "tool_calls",
        Some(FinishReason::Length) => "length",
        Some(FinishReason::ToolCalls) => "tool_calls",
        Some(FinishReason::ContentFilter) => "content_filter",
        _ => "stop",
    };
    let usage = r.usage.normalise();
    let mut message = json!({"role": "assistant", "content": text, "refusal": null});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !reasoning.is_empty() {
        message["reasoning_content"] = json!(reasoning);
    }
    let out = json!({
        "id": fresh_id(),
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.client_model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": UsageOut::from(&usage),
    });
    Ok((serde_json::to_vec(&out).map_err(unreadable)?, usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: ReplyContext<'static> = ReplyContext {
        client_model: "client",
        created: 7,
    };

    fn chat(v: Value) -> (Value, Usage) {
        let (b, u) = to_chat(&serde_json::to_vec(&v).unwrap(), &CTX).unwrap();
        (serde_json::from_slice(&b).unwrap(), u)
    }

    #[test]
    fn text_tools_reasoning_and_cache_usage() {
        let (v, u) = chat(
            json!({"output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s"}}},
            {"text": "Let me check."},
            {"toolUse": {"toolUseId": "tooluse_1", "name": "w", "input": {"city": "Paris"}}}]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 45,
                      "cacheReadInputTokens": 20, "cacheWriteInputTokens": 10},
            "metrics": {"latencyMs": 5}}),
        );
        let m = &v["choices"][0]["message"];
        assert_eq!(m["content"], "Let me check.");
        assert_eq!(m["reasoning_content"], "hmm");
        assert_eq!(m["tool_calls"][0]["id"], "tooluse_1");
        assert_eq!(
            m["tool_calls"][0]["function"]["arguments"],
            r#"{"city":"Paris"}"#
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["model"], "client");
        assert_eq!(
            (u.input, u.cached_input, u.cache_creation, u.output),
            (40, 20, 10, 5)
        );
        assert_eq!(v["usage"]["prompt_tokens"], 40);
        assert_eq!(v["usage"]["total_tokens"], 45);
        assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 20);
    }

    #[test]
    fn stop_reasons_and_bad_bodies() {
        for (reason, finish) in [
            ("end_turn", "stop"),
            ("max_tokens", "length"),
            ("stop_sequence", "stop"),
            ("guardrail_intervened", "content_filter"),
            ("model_context_window_exceeded", "length"),
        ] {
            let (v, _) = chat(json!({"output": {"message": {"content": [{"text": "a"}]}},
                "stopReason": reason, "usage": {"inputTokens": 1, "outputTokens": 1}}));
            assert_eq!(v["choices"][0]["finish_reason"], finish, "{reason}");
        }
        assert_eq!(to_chat(b"nope", &CTX).unwrap_err().status, 502);
    }
}
