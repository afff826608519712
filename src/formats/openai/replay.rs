//! A complete chat completion → the deltas a stream of it would have carried: a stored reply
//! (the pivot `collect` writes, or OpenAI's own) is served to a streaming client through the
//! same encoders as a live stream.

use super::stream::finish_reason;
use super::types::{ChatCompletion, ReplyMessage};
use crate::error::ApiError;
use crate::formats::pivot::unreadable_reply;
use crate::formats::{Delta, FinishReason, JsonStr};
use serde::de::Error as _;
use std::borrow::Cow;

/// Emits `pivot` as a stream would: start, reasoning (its signature, redacted blocks), text,
/// each tool call with its arguments, finish, usage, end. `id` names the reply, not the stored
/// one: every replay is a reply of its own. Nothing is emitted unless the whole body reads.
pub fn replay(pivot: &[u8], id: &str, emit: &mut impl FnMut(Delta<'_>)) -> Result<(), ApiError> {
    let c: ChatCompletion = serde_json::from_slice(pivot).map_err(unreadable_reply)?;
    let Some(choice) = c.choices.into_iter().next() else {
        return Err(unreadable_reply(serde_json::Error::custom(
            "it has no choices",
        )));
    };
    let usage = c.usage.map(|u| u.normalise());
    emit(Delta::Start {
        id: Cow::Borrowed(id),
    });
    // Reported at the start too, as Anthropic's `message_start` does: an Anthropic client's
    // `message_start` then has the input tokens.
    if let Some(u) = usage {
        emit(Delta::Usage(u));
    }
    let m = choice.message;
    let calls = m.tool_calls.as_ref().is_some_and(|c| !c.is_empty());
    content(&m, emit);
    for (index, tc) in (0u32..).zip(m.tool_calls.iter().flatten()) {
        emit(Delta::ToolCall {
            index,
            id: JsonStr::encode(&tc.id),
            name: JsonStr::encode(&tc.function.name),
        });
        if !tc.function.arguments.is_empty() {
            let json = JsonStr::encode(&tc.function.arguments);
            emit(Delta::ToolArgs { index, json });
        }
    }
    let finish = match choice.finish_reason.as_deref() {
        Some(r) => finish_reason(r),
        None if calls => FinishReason::ToolCalls,
        None => FinishReason::Stop,
    };
    emit(Delta::Finish(finish));
    if let Some(u) = usage {
        emit(Delta::Usage(u));
    }
    emit(Delta::Done);
    Ok(())
}

/// Reasoning with its signature and redacted blocks, then the text (a refusal is the only text
/// a refusing reply has, as the other APIs carry it).
fn content(m: &ReplyMessage, emit: &mut impl FnMut(Delta<'_>)) {
    let some = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(JsonStr::encode);
    if let Some(r) = some(&m.reasoning_content).or_else(|| some(&m.reasoning)) {
        emit(Delta::Reasoning(r));
    }
    if let Some(s) = some(&m.reasoning_signature) {
        emit(Delta::ReasoningSignature(s));
    }
    for r in m
        .redacted_reasoning
        .iter()
        .flatten()
        .filter(|r| !r.is_empty())
    {
        emit(Delta::RedactedReasoning(JsonStr::encode(r)));
    }
    if let Some(t) = some(&m.content).or_else(|| some(&m.refusal)) {
        emit(Delta::Text(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::openai::collect::Collect;
    use crate::formats::test_support::{value_of, CTX};
    use crate::formats::Usage;

    const TOOLS: &str = include_str!("../../../tests/golden/parallel_tools/chat.response.json");
    const THINKING: &str = include_str!("../../../tests/golden/thinking/chat.response.json");

    fn deltas(body: &str, id: &str) -> Vec<Delta<'static>> {
        let mut out = Vec::new();
        replay(body.as_bytes(), id, &mut |d| out.push(to_static(d))).unwrap();
        out
    }

    fn to_static(d: Delta<'_>) -> Delta<'static> {
        match d {
            Delta::Start { id } => Delta::Start {
                id: Cow::Owned(id.into_owned()),
            },
            Delta::Text(t) => Delta::Text(t.into_owned()),
            Delta::Reasoning(t) => Delta::Reasoning(t.into_owned()),
            Delta::ReasoningSignature(t) => Delta::ReasoningSignature(t.into_owned()),
            Delta::RedactedReasoning(t) => Delta::RedactedReasoning(t.into_owned()),
            Delta::ToolCall { index, id, name } => Delta::ToolCall {
                index,
                id: id.into_owned(),
                name: name.into_owned(),
            },
            Delta::ToolArgs { index, json } => Delta::ToolArgs {
                index,
                json: json.into_owned(),
            },
            Delta::Finish(r) => Delta::Finish(r),
            Delta::Usage(u) => Delta::Usage(u),
            Delta::Error(e) => Delta::Error(e),
            Delta::Done => Delta::Done,
        }
    }

    #[test]
    fn openai_completion_replays_in_stream_order() {
        let usage = Delta::Usage(Usage {
            input: 60,
            output: 20,
            ..Usage::default()
        });
        let call = |index, id, name| Delta::ToolCall {
            index,
            id: JsonStr::encode(id),
            name: JsonStr::encode(name),
        };
        let want = [
            Delta::Start { id: "fresh".into() },
            usage.clone(),
            call(0, "call_1", "get_weather"),
            Delta::ToolArgs {
                index: 0,
                json: JsonStr::encode("{\"city\":\"Paris\"}"),
            },
            // An empty argument string has no fragment.
            call(1, "call_2", "get_time"),
            Delta::Finish(FinishReason::ToolCalls),
            usage,
            Delta::Done,
        ];
        assert_eq!(deltas(TOOLS, "fresh"), want);
        let d = deltas(THINKING, "");
        assert_eq!(d[2], Delta::Reasoning(JsonStr::encode("Let me reason.")));
        assert_eq!(d[3], Delta::Text(JsonStr::encode("Proof: trivial.")));
        let Delta::Usage(u) = d[1] else {
            panic!("{d:?}")
        };
        assert_eq!((u.cached_input, u.reasoning), (70, 30));
    }

    #[test]
    fn a_collected_replay_is_the_same_reply() {
        let pivot = br#"{"id":"chatcmpl-S","choices":[{"message":{"content":"Hi \"x\"\n",
            "reasoning_content":"hmm","reasoning_signature":"sig","redacted_reasoning":["a","b"],
            "tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
            "finish_reason":"tool_calls"}],
            "usage":{"prompt_tokens":5,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":1,"cache_write_tokens":2}}}"#;
        let collect = |body: &[u8]| {
            let mut c = Collect::default();
            replay(body, "chatcmpl-S", &mut |d| c.see(&d)).unwrap();
            c.finish(&CTX).unwrap()
        };
        let once = collect(pivot);
        assert_eq!(collect(&once), once);
        let v = value_of(&once);
        let m = &v["choices"][0]["message"];
        assert_eq!(v["id"], "chatcmpl-S");
        assert_eq!(m["content"], "Hi \"x\"\n");
        assert_eq!(m["reasoning_signature"], "sig");
        assert_eq!(m["redacted_reasoning"], serde_json::json!(["a", "b"]));
        assert_eq!(m["tool_calls"][0]["function"]["arguments"], "{}");
        assert_eq!(v["usage"]["prompt_tokens_details"]["cache_write_tokens"], 2);
    }

    #[test]
    fn unreadable_replies_are_errors_and_emit_nothing() {
        for body in [
            &b"{"[..],
            br#"{"choices":[]}"#,
            br#"{"choices":[{}]}"#,
            b"[]",
        ] {
            let mut n = 0;
            let e = replay(body, "x", &mut |_| n += 1).unwrap_err();
            assert_eq!((e.status, n), (502, 0), "{e:?}");
        }
    }
}
