//! Deltas → the complete pivot reply they make up: a stream recorded as it passes, so it can
//! be stored and later replayed (`replay`) to a client of any API. Only a stream that ended
//! properly (a finish, then its end, no error) makes a reply.

use super::response::{Reply, ToolCallOut};
use crate::formats::{ids, Delta, FinishReason, JsonStr, ReplyContext, Usage};
use std::borrow::Cow;

/// Most tool calls one reply may make (a bound on the index → call map, as the encoders have).
const MAX_CALLS: usize = 4096;

/// A JSON string's content as its literals arrive, escapes kept: pieces join as the literals
/// do, so an escape split across deltas (half a surrogate pair each) still decodes. It is
/// decoded once, at the end.
#[derive(Default)]
struct Lit(String);

impl Lit {
    fn of(s: &JsonStr<'_>) -> Lit {
        let mut l = Lit::default();
        l.push(s);
        l
    }

    fn push(&mut self, s: &JsonStr<'_>) {
        let lit = s.literal();
        let inner = lit.strip_prefix('"').and_then(|x| x.strip_suffix('"'));
        self.0.push_str(inner.unwrap_or_default());
    }

    /// The text; `None` if the joined literal does not decode (a lone surrogate).
    fn text(self) -> Option<String> {
        if !self.0.contains('\\') {
            return Some(self.0);
        }
        serde_json::from_str(&format!("\"{}\"", self.0)).ok()
    }

    /// The text, `None` when there is none (or it does not decode).
    fn non_empty(self) -> Option<String> {
        Some(self).filter(|l| !l.0.is_empty()).and_then(Lit::text)
    }
}

struct Call {
    id: Lit,
    name: Lit,
    args: Lit,
}

/// Collects one stream's deltas ([`Collect::see`]) into the pivot's chat completion
/// ([`Collect::finish`]).
#[derive(Default)]
pub struct Collect {
    /// The upstream's id from `Delta::Start` (plain text).
    id: Option<String>,
    text: Lit,
    reasoning: Lit,
    signature: Option<Lit>,
    redacted: Vec<Lit>,
    /// By tool-call index; an index no `ToolCall` opened stays `None`.
    calls: Vec<Option<Call>>,
    finish: Option<FinishReason>,
    usage: Usage,
    done: bool,
    /// An error in the stream, or more than it can keep: nothing to store.
    failed: bool,
}

impl Collect {
    pub fn see(&mut self, d: &Delta<'_>) {
        // After its end a stream has nothing more to say (the encoders ignore it too).
        if self.done || self.failed {
            return;
        }
        match d {
            Delta::Start { id } => {
                self.id.get_or_insert_with(|| id.to_string());
            }
            Delta::Text(t) => self.text.push(t),
            Delta::Reasoning(t) => self.reasoning.push(t),
            // The pivot has one signature; the last one closes the reasoning it carries.
            Delta::ReasoningSignature(s) => self.signature = Some(Lit::of(s)),
            Delta::RedactedReasoning(r) => self.redacted.push(Lit::of(r)),
            Delta::ToolCall { index, id, name } => self.call(*index as usize, id, name),
            Delta::ToolArgs { index, json } => {
                if let Some(Some(c)) = self.calls.get_mut(*index as usize) {
                    c.args.push(json);
                }
            }
            Delta::Finish(r) => self.finish = Some(*r),
            Delta::Usage(u) => self.usage = *u,
            Delta::Error(_) => self.failed = true,
            Delta::Done => self.done = true,
        }
    }

    fn call(&mut self, index: usize, id: &JsonStr<'_>, name: &JsonStr<'_>) {
        if index >= MAX_CALLS {
            self.failed = true;
            return;
        }
        if self.calls.len() <= index {
            self.calls.resize_with(index + 1, || None);
        }
        self.calls[index] = Some(Call {
            id: Lit::of(id),
            name: Lit::of(name),
            args: Lit::default(),
        });
    }

    /// The pivot chat completion (with the Tollgate-internal reasoning fields), if the stream
    /// ended properly: a finish and the end seen, no error.
    pub fn finish(self, ctx: &ReplyContext<'_>) -> Option<Vec<u8>> {
        self.finish_as(ctx, true)
    }

    /// The chat completion an OpenAI client gets (no Tollgate-internal fields).
    pub fn finish_for_client(self, ctx: &ReplyContext<'_>) -> Option<Vec<u8>> {
        self.finish_as(ctx, false)
    }

    fn finish_as(self, ctx: &ReplyContext<'_>, pivot: bool) -> Option<Vec<u8>> {
        if !self.done || self.failed {
            return None;
        }
        let finish = self.finish?;
        let tool_calls = self
            .calls
            .into_iter()
            .flatten()
            .map(|c| {
                let (id, name) = (c.id.text()?, c.name.text()?);
                Some(ToolCallOut::new(id.into(), name.into(), c.args.text()?))
            })
            .collect::<Option<Vec<_>>>()?;
        let redacted = self.redacted.into_iter().map(|r| r.text().map(Cow::Owned));
        let reply = Reply {
            id: ids::chat(self.id.as_deref().unwrap_or_default()),
            text: self.text.non_empty().map(Cow::Owned),
            reasoning: self.reasoning.non_empty().map(Cow::Owned),
            reasoning_signature: self.signature.and_then(Lit::non_empty).map(Cow::Owned),
            redacted_reasoning: redacted.collect::<Option<Vec<_>>>()?,
            tool_calls,
            finish,
            usage: self.usage,
        };
        match pivot {
            true => reply.to_pivot_json(ctx).ok(),
            false => reply.to_json(ctx).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_support::{value_of, CTX};
    use crate::formats::JsonStr;
    use serde_json::json;

    fn lit(s: &str) -> JsonStr<'static> {
        JsonStr::encode(s)
    }

    /// A reply with reasoning, a signature, a redacted block, text and two calls (the second
    /// opened first), then the given ending.
    fn collect(ending: &[Delta<'static>]) -> Option<serde_json::Value> {
        let mut c = Collect::default();
        let raw = |s: &'static str| {
            let v: &'static serde_json::value::RawValue = serde_json::from_str(s).unwrap();
            JsonStr::from_raw(v).unwrap()
        };
        let deltas = [
            Delta::Start {
                id: "msg_01x".into(),
            },
            Delta::Usage(Usage {
                input: 9,
                ..Usage::default()
            }),
            Delta::Reasoning(lit("Let me ")),
            Delta::Reasoning(lit("think.")),
            Delta::ReasoningSignature(lit("sig==")),
            Delta::RedactedReasoning(lit("cmVk")),
            // An emoji's surrogate pair split across two deltas.
            Delta::Text(raw(r#""Hi \ud83d""#)),
            Delta::Text(raw(r#""\ude00 \"q\"""#)),
            Delta::ToolCall {
                index: 1,
                id: lit("call_b"),
                name: lit("get_time"),
            },
            Delta::ToolCall {
                index: 0,
                id: lit("call_a"),
                name: lit("get_weather"),
            },
            Delta::ToolArgs {
                index: 0,
                json: lit("{\"city\":"),
            },
            Delta::ToolArgs {
                index: 0,
                json: lit("\"Paris\"}"),
            },
            Delta::ToolArgs {
                index: 7,
                json: lit("lost"),
            },
        ];
        for d in deltas.iter().chain(ending) {
            c.see(d);
        }
        c.finish(&CTX).map(|b| value_of(&b))
    }

    fn usage(output: u64) -> Delta<'static> {
        Delta::Usage(Usage {
            input: 9,
            cached_input: 4,
            cache_creation: 0,
            output,
            reasoning: 3,
        })
    }

    #[test]
    fn a_complete_stream_is_one_pivot_reply() {
        let end = [
            Delta::Finish(FinishReason::ToolCalls),
            usage(5),
            usage(7),
            Delta::Done,
            Delta::Text(lit("after the end")),
        ];
        let v = collect(&end).unwrap();
        assert_eq!(v["id"], "chatcmpl-01x");
        assert_eq!(v["model"], "c");
        let m = &v["choices"][0]["message"];
        assert_eq!(m["content"], "Hi \u{1F600} \"q\"");
        assert_eq!(m["reasoning_content"], "Let me think.");
        assert_eq!(m["reasoning_signature"], "sig==");
        assert_eq!(m["redacted_reasoning"], json!(["cmVk"]));
        let calls = m["tool_calls"].as_array().unwrap();
        assert_eq!(calls[0]["id"], "call_a");
        assert_eq!(calls[0]["function"]["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(calls[1]["function"]["name"], "get_time");
        assert_eq!(calls[1]["function"]["arguments"], "");
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["usage"]["completion_tokens"], 7, "the last report wins");
        assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
        assert_eq!(
            v["usage"]["completion_tokens_details"]["reasoning_tokens"],
            3
        );
    }

    #[test]
    fn an_unfinished_or_failed_stream_is_nothing() {
        let stop = Delta::Finish(FinishReason::Stop);
        let err = Delta::Error(Box::new(crate::error::ApiError::stream_broken()));
        assert!(collect(std::slice::from_ref(&stop)).is_none(), "no end");
        assert!(collect(&[Delta::Done]).is_none(), "no finish");
        assert!(collect(&[stop.clone(), err, Delta::Done]).is_none());
        let far = Delta::ToolCall {
            index: MAX_CALLS as u32,
            id: lit("x"),
            name: lit("y"),
        };
        assert!(collect(&[far, stop, Delta::Done]).is_none());
    }

    #[test]
    fn no_start_id_is_a_fresh_one() {
        let mut c = Collect::default();
        for d in [Delta::Finish(FinishReason::Stop), Delta::Done] {
            c.see(&d);
        }
        let v = value_of(&c.finish(&CTX).unwrap());
        let id = v["id"].as_str().unwrap();
        assert_eq!(id.len(), "chatcmpl-".len() + 32, "{id}");
        assert!(v["choices"][0]["message"]["content"].is_null());
        assert!(v["choices"][0]["message"]
            .get("reasoning_content")
            .is_none());
    }
}
