//! A complete Converse reply → an OpenAI chat completion (`to_chat`).

use super::stop_reason;
use crate::error::ApiError;
use crate::formats::openai::response::{self as reply, append, ToolCallOut};
use crate::formats::pivot::unreadable_reply;
use crate::formats::{ids, FinishReason, ReplyContext, Usage};

/// A Converse reply → an OpenAI chat completion for an OpenAI client.
pub fn to_chat(body: &[u8], ctx: &ReplyContext<'_>) -> Result<(Vec<u8>, Usage), ApiError> {
    let r = reply(body)?;
    Ok((r.to_json(ctx).map_err(unreadable_reply)?, r.usage))
}

/// A Converse reply → the chat pivot on its way to another client API, with the reasoning's
/// signature and redacted blocks in Tollgate-internal fields (`openai::response::Reply`).
pub fn to_pivot(body: &[u8], ctx: &ReplyContext<'_>) -> Result<(Vec<u8>, Usage), ApiError> {
    let r = reply(body)?;
    Ok((r.to_pivot_json(ctx).map_err(unreadable_reply)?, r.usage))
}

/// A Converse reply as the chat reply.
pub(crate) fn reply(body: &[u8]) -> Result<reply::Reply<'static>, ApiError> {
    let r = super::reply::read(body).map_err(unreadable_reply)?;
    let (mut text, mut reasoning, mut tool_calls) = (None, None, Vec::new());
    let (mut signature, mut redacted) = (None, Vec::new());
    let blocks = r.output.and_then(|o| o.message).map(|m| m.content);
    for b in blocks.into_iter().flatten() {
        if let Some(t) = b.text {
            append(&mut text, t.into());
        } else if let Some(u) = b.tool_use {
            let args = if u.input.is_null() {
                "{}".into()
            } else {
                u.input.to_string()
            };
            tool_calls.push(ToolCallOut::new(u.tool_use_id.into(), u.name.into(), args));
        } else if let Some(r) = b.reasoning_content {
            if let Some(t) = r.reasoning_text {
                append(&mut reasoning, t.text.into());
                // Claude gives one reasoning block per reply; were there more, the pivot's
                // one reasoning text could carry only the last signature.
                signature = t.signature.or(signature);
            }
            redacted.extend(r.redacted_content.map(Into::into));
        }
    }
    let finish = match r.stop_reason.as_deref().map(stop_reason) {
        _ if !tool_calls.is_empty() => FinishReason::ToolCalls,
        Some(FinishReason::StopSequence) | None => FinishReason::Stop,
        Some(f) => f,
    };
    Ok(reply::Reply {
        // Converse replies carry no id (it is in a header): a fresh one.
        id: ids::chat(""),
        text,
        reasoning,
        reasoning_signature: signature.map(Into::into),
        redacted_reasoning: redacted,
        tool_calls,
        finish,
        usage: r.usage.normalise(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_support::reply;
    use serde_json::{json, Value};

    const CTX: ReplyContext<'static> = ReplyContext {
        client_model: "client",
        created: 7,
        tool_names: None,
    };

    fn chat(v: Value) -> (Value, Usage) {
        reply(to_chat, &v, &CTX)
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
        // The signature is for Anthropic clients (through the pivot), never an OpenAI one's.
        assert!(m.get("reasoning_signature").is_none(), "{m}");
        assert!(!v.to_string().contains("\"s\""), "{v}");
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
    fn the_pivot_carries_signature_and_redacted_reasoning() {
        let body = json!({"output": {"message": {"content": [
            {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig"}}},
            {"reasoningContent": {"redactedContent": "cmVk"}},
            {"text": "ok"}]}}, "stopReason": "end_turn",
            "usage": {"inputTokens": 1, "outputTokens": 1}});
        let body = serde_json::to_vec(&body).unwrap();
        let (pivot, _) = to_pivot(&body, &CTX).unwrap();
        let v: Value = serde_json::from_slice(&pivot).unwrap();
        let m = &v["choices"][0]["message"];
        assert_eq!(m["reasoning_signature"], "sig");
        assert_eq!(m["redacted_reasoning"], json!(["cmVk"]));
        let (client, _) = to_chat(&body, &CTX).unwrap();
        let v: Value = serde_json::from_slice(&client).unwrap();
        let m = &v["choices"][0]["message"];
        assert!(m.get("reasoning_signature").is_none() && m.get("redacted_reasoning").is_none());
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
