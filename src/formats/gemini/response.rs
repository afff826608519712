//! Complete replies: a Gemini `GenerateContentResponse` → an OpenAI chat completion. Only the
//! first candidate is read (requests never ask for more). Thought parts become
//! `reasoning_content`; `functionCall` parts become tool calls with minted ids (see `wire`).
//!
//! A prompt blocked before generation (`promptFeedback.blockReason`, no candidates) becomes a
//! normal reply with `finish_reason: "content_filter"` and no content: OpenAI clients already
//! handle that finish reason, while an error would hide the usage Google still reports.

use super::wire::{self, UsageMetadata};
use crate::error::ApiError;
use crate::formats::openai::response::{self as reply, append, ToolCallOut};
use crate::formats::pivot::unreadable_reply;
use crate::formats::{ids, FinishReason, ReplyContext, Str, Usage};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply<'a> {
    #[serde(borrow, default)]
    candidates: Option<Vec<Candidate<'a>>>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(borrow, default)]
    prompt_feedback: Option<Feedback<'a>>,
    #[serde(borrow, default)]
    response_id: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(borrow, default)]
    parts: Vec<Part<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(borrow, default)]
    text: Option<Str<'a>>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(borrow, default)]
    function_call: Option<Call<'a>>,
    #[serde(borrow, default)]
    thought_signature: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Call<'a> {
    #[serde(borrow)]
    name: Str<'a>,
    #[serde(borrow, default)]
    args: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Feedback<'a> {
    #[serde(borrow, default)]
    block_reason: Option<Str<'a>>,
}

/// A Gemini `GenerateContentResponse` → an OpenAI chat completion.
pub fn to_chat(body: &[u8], ctx: &ReplyContext<'_>) -> Result<(Vec<u8>, Usage), ApiError> {
    let r: Reply<'_> = serde_json::from_slice(body).map_err(unreadable_reply)?;
    let blocked = r
        .prompt_feedback
        .as_ref()
        .is_some_and(|f| f.block_reason.is_some());
    if r.candidates.is_none() && !blocked {
        // An error body or something else that is not a reply.
        return Err(ApiError::bad_upstream(
            "The upstream reply has no candidates.",
        ));
    }
    // Without `responseId`, a fresh one: it names the reply and seeds tool-call ids.
    let response_id = r
        .response_id
        .as_ref()
        .map_or_else(|| Cow::Owned(ids::fresh()), |s| Cow::Borrowed(&*s.0));
    let response_id = &*response_id;
    let first = r.candidates.into_iter().flatten().next();
    let (mut text, mut reasoning, mut tool_calls) = (None, None, Vec::new());
    let mut reason = if blocked {
        FinishReason::ContentFilter
    } else {
        FinishReason::Stop
    };
    if let Some(c) = first {
        if let Some(f) = &c.finish_reason {
            reason = wire::finish_reason(&f.0);
        }
        for p in c.content.map(|c| c.parts).unwrap_or_default() {
            if let Some(call) = p.function_call {
                let args = call
                    .args
                    .map_or(Cow::Borrowed("{}"), |a| wire::compact(a.get()));
                let index = u32::try_from(tool_calls.len()).unwrap_or(u32::MAX);
                let sig = p.thought_signature.as_ref().map(|s| &*s.0);
                let id = wire::tool_call_id(response_id, index, &call.name.0, &args, sig);
                tool_calls.push(ToolCallOut::new(id.into(), call.name.0, args.into_owned()));
            } else if let Some(t) = p.text {
                let acc = if p.thought == Some(true) {
                    &mut reasoning
                } else {
                    &mut text
                };
                append(acc, t.0);
            }
        }
    }
    let reason = wire::final_reason(reason, !tool_calls.is_empty());
    let usage = r.usage_metadata.unwrap_or_default().normalise();
    let out = reply::Reply {
        id: ids::chat(response_id),
        text,
        reasoning,
        reasoning_signature: None,
        redacted_reasoning: Vec::new(),
        tool_calls,
        finish: reason,
        usage,
    };
    Ok((out.to_json(ctx).map_err(unreadable_reply)?, usage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_support::{reply, CTX};
    use serde_json::{json, Value};

    fn chat(body: Value) -> (Value, Usage) {
        reply(to_chat, &body, &CTX)
    }

    #[test]
    fn blocked_prompt_is_a_content_filter_reply() {
        let (v, u) = chat(
            json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}}),
        );
        assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(u.input, 9);
        assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    }

    #[test]
    fn replies_without_response_id_get_their_own_ids() {
        let body = json!({"candidates": [{"content": {"parts": [{"functionCall":
            {"name": "f", "args": {}}}]}, "finishReason": "STOP"}]});
        let (a, _) = chat(body.clone());
        let (b, _) = chat(body);
        assert_ne!(a["id"], b["id"]);
        assert!(!a["id"].as_str().unwrap().contains("tollgate"));
        let call = |v: &Value| v["choices"][0]["message"]["tool_calls"][0]["id"].clone();
        assert_ne!(call(&a), call(&b));
    }

    #[test]
    fn safety_stop_and_text_join() {
        let (v, _) = chat(
            json!({"responseId": "r", "candidates": [{"content": {"role": "model",
            "parts": [{"text": "a"}, {"text": "b\n"}]}, "finishReason": "RECITATION"}]}),
        );
        let m = &v["choices"][0];
        assert_eq!(m["message"]["content"], "ab\n");
        assert_eq!(m["finish_reason"], "content_filter");
        assert!(m["message"].get("tool_calls").is_none());
        // A candidate without content (a safety stop) still makes a reply.
        let (v, _) = chat(json!({"candidates": [{"finishReason": "SAFETY"}]}));
        assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
    }

    #[test]
    fn pretty_printed_args_are_compacted() {
        let body = b"{\n  \"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"f\",\n \"args\": {\n \"a\": \"x y\"\n }}}]}, \"finishReason\": \"STOP\"}]\n}";
        let (b, _) = to_chat(body, &CTX).unwrap();
        let v: Value = serde_json::from_slice(&b).unwrap();
        let call = &v["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["function"]["arguments"], r#"{"a":"x y"}"#);
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn unreadable_replies_are_502() {
        for body in [
            &b"not json"[..],
            b"[1]",
            br#"{"error":{"code":400,"message":"x","status":"INVALID_ARGUMENT"}}"#,
            br#"{"candidates":[{"content":{"parts":[{"functionCall":{}}]}}]}"#,
        ] {
            assert_eq!(to_chat(body, &CTX).unwrap_err().status, 502);
        }
    }
}
