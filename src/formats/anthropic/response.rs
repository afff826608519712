//! Complete replies: Anthropic Message ⇄ OpenAI chat completion, usage normalised on the way.

use super::stream::stop_reason;
use crate::error::ApiError;
use crate::formats::openai::response::{self as reply, append, ToolCallOut};
use crate::formats::openai::stream::finish_reason;
use crate::formats::openai::types::ChatCompletion;
use crate::formats::pivot::unreadable_reply;
use crate::formats::{ids, FinishReason, ReplyContext, Str, Usage};
use serde_json::{json, Value};
use std::borrow::Cow;

/// A block's string field, borrowed from the upstream body ("" when absent).
fn field<'a>(f: &Option<Str<'a>>) -> Cow<'a, str> {
    f.as_ref().map_or(Cow::Borrowed(""), |t| t.0.clone())
}

/// An Anthropic Message → an OpenAI chat completion.
pub fn to_chat(body: &[u8], ctx: &ReplyContext<'_>) -> Result<(Vec<u8>, Usage), ApiError> {
    let r = reply(body)?;
    Ok((r.to_json(ctx).map_err(unreadable_reply)?, r.usage))
}

/// An Anthropic Message as the chat reply, borrowed from `body` where it can be.
pub(crate) fn reply(body: &[u8]) -> Result<reply::Reply<'_>, ApiError> {
    let r = super::message::read(body).map_err(unreadable_reply)?;
    let mut text = None;
    let mut reasoning = None;
    let mut tool_calls = Vec::new();
    for b in &r.content {
        match &*b.kind.0 {
            "text" => append(&mut text, field(&b.text)),
            "thinking" => append(&mut reasoning, field(&b.thinking)),
            "tool_use" => tool_calls.push(ToolCallOut::new(
                field(&b.id),
                field(&b.name),
                b.input
                    .as_ref()
                    .map_or_else(|| "{}".into(), Value::to_string),
            )),
            _ => {}
        }
    }
    let mut usage = Usage::default();
    r.usage.apply(&mut usage);
    let finish = match r.stop_reason.as_ref().map(|s| stop_reason(&s.0)) {
        Some(FinishReason::StopSequence) | None => FinishReason::Stop,
        Some(f) => f,
    };
    Ok(reply::Reply {
        id: ids::chat(r.id.as_ref().map_or("", |s| &s.0)),
        text,
        reasoning,
        reasoning_signature: None,
        redacted_reasoning: Vec::new(),
        tool_calls,
        finish,
        usage,
    })
}

/// An OpenAI chat completion → an Anthropic Message.
pub fn from_chat(body: &[u8], ctx: &ReplyContext<'_>) -> Result<(Vec<u8>, Usage), ApiError> {
    let r: ChatCompletion = serde_json::from_slice(body).map_err(unreadable_reply)?;
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
        let signature = m.reasoning_signature.unwrap_or_default();
        content.push(json!({"type": "thinking", "thinking": t, "signature": signature}));
    }
    for data in m.redacted_reasoning.into_iter().flatten() {
        content.push(json!({"type": "redacted_thinking", "data": data}));
    }
    // A refusal is the only text a refusing reply has; Anthropic carries it as text.
    let text = m.content.filter(|t| !t.is_empty()).or(m.refusal);
    if let Some(t) = text.filter(|t| !t.is_empty()) {
        content.push(json!({"type": "text", "text": t}));
    }
    for call in m.tool_calls.into_iter().flatten() {
        let input = crate::formats::pivot::messages::arguments(&call.function.arguments)
            .ok_or_else(|| {
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
        "usage": {"input_tokens": usage.uncached_input(),
            "cache_creation_input_tokens": usage.cache_creation,
            "cache_read_input_tokens": usage.cached_input,
            "output_tokens": usage.output}});
    Ok((serde_json::to_vec(&v).map_err(unreadable_reply)?, usage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_support::{reply, CTX};

    fn chat(body: Value) -> (Value, Usage) {
        reply(to_chat, &body, &CTX)
    }

    fn message(body: Value) -> (Value, Usage) {
        reply(from_chat, &body, &CTX)
    }

    #[test]
    fn anthropic_usage_adds_cache_tokens_to_the_prompt() {
        let (v, u) = chat(
            json!({"id": "msg_1", "content": [], "stop_reason": "max_tokens",
            "usage": {"input_tokens": 5, "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 20, "output_tokens": 7}}),
        );
        assert_eq!(
            u,
            Usage {
                input: 125,
                cached_input: 100,
                cache_creation: 20,
                output: 7,
                reasoning: 0
            }
        );
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 125, "completion_tokens": 7, "total_tokens": 132,
                "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 20},
                "completion_tokens_details": {"reasoning_tokens": 0}})
        );
        assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(v["choices"][0]["finish_reason"], "length");
    }

    #[test]
    fn openai_usage_takes_cache_tokens_out_of_the_input() {
        let (v, u) = message(json!({"id": "x", "choices": [{"message": {"content": "hi"},
            "finish_reason": "content_filter"}], "usage": {"prompt_tokens": 100,
            "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 60,
            "cache_write_tokens": 30}}}));
        assert_eq!((u.input, u.cached_input, u.cache_creation), (100, 60, 30));
        assert_eq!(
            v["usage"],
            json!({"input_tokens": 10, "cache_read_input_tokens": 60,
                "cache_creation_input_tokens": 30, "output_tokens": 3})
        );
        assert_eq!(v["stop_reason"], "refusal");
        // Inconsistent upstream numbers saturate rather than wrap.
        let (v, _) = message(
            json!({"id": "x", "choices": [{"message": {"content": "hi"}}],
            "usage": {"prompt_tokens": 1, "prompt_tokens_details": {"cached_tokens": u64::MAX,
            "cache_write_tokens": u64::MAX}}}),
        );
        assert_eq!(v["usage"]["input_tokens"], 0);
    }

    #[test]
    fn refusals_and_reasoning_become_blocks() {
        let (v, _) = message(json!({"id": "x", "choices": [{"message": {"content": null,
            "refusal": "I can't help with that.", "reasoning": "hmm"},
            "finish_reason": "stop"}]}));
        assert_eq!(
            v["content"],
            json!([{"type": "thinking", "thinking": "hmm", "signature": ""},
                {"type": "text", "text": "I can't help with that."}])
        );
        assert_eq!(v["stop_reason"], "end_turn");
        assert_eq!(v["usage"]["output_tokens"], 0);
    }

    #[test]
    fn unreadable_upstream_replies_are_502() {
        for body in [
            &b"not json"[..],
            br#"{"id":"x","choices":[]}"#,
            br#"{"id":"x","choices":[{"message":{"tool_calls":[{"id":"c","function":{"name":"f","arguments":"[1]"}}]}}]}"#,
        ] {
            assert_eq!(from_chat(body, &CTX).unwrap_err().status, 502);
        }
        for body in [
            &b"[1]"[..],
            br#"{"type":"error","error":{"type":"x","message":"y"}}"#,
        ] {
            assert_eq!(to_chat(body, &CTX).unwrap_err().status, 502);
        }
    }
}
