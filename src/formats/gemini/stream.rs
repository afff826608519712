//! Gemini streams (`streamGenerateContent?alt=sse`): each SSE event is a complete
//! `GenerateContentResponse` holding only the new parts. [`ChunkDecoder`] turns them into pivot
//! deltas. There is no closing event: the body ends after the chunk with `finishReason`, so
//! [`ChunkDecoder::end`] emits the finish, the last usage and `Done` when a finish was seen.
//!
//! Text is borrowed as the JSON literal it arrives as. The first parts of an event are held
//! inline (no vector per event), so a text event allocates nothing; function calls (which
//! arrive whole) allocate their id and arguments string.

use super::error as gemini_error;
use super::wire::{self, UsageMetadata};
use crate::error::ApiError;
use crate::formats::pivot::unreadable_chunk;
use crate::formats::{ids, Delta, FinishReason, JsonStr, Str, Usage};
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk<'a> {
    #[serde(borrow, default, deserialize_with = "first_candidate")]
    candidates: Option<Candidate<'a>>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(borrow, default)]
    prompt_feedback: Option<Feedback<'a>>,
    #[serde(borrow, default)]
    response_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
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
    parts: Parts<'a>,
}

/// A chunk's parts, the first few held inline: capturing `parts` as a raw value would make
/// serde_json allocate a nesting stack to skip over it, once per event.
#[derive(Default)]
struct Parts<'a> {
    inline: [Option<Part<'a>>; 4],
    more: Vec<Part<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Parts<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Collect<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Collect<'a> {
            type Value = Parts<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of parts")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Parts::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Parts::default();
                let mut i = 0;
                while let Some(p) = seq.next_element::<Part<'a>>()? {
                    match out.inline.get_mut(i) {
                        Some(slot) => *slot = Some(p),
                        None => out.more.push(p),
                    }
                    i += 1;
                }
                Ok(out)
            }
        }
        d.deserialize_any(Collect(std::marker::PhantomData))
    }
}

impl<'a> Parts<'a> {
    fn into_iter(self) -> impl Iterator<Item = Part<'a>> {
        self.inline.into_iter().flatten().chain(self.more)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(borrow, default)]
    function_call: Option<Call<'a>>,
    #[serde(borrow, default)]
    thought_signature: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Call<'a> {
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    args: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Feedback<'a> {
    #[serde(borrow, default)]
    block_reason: Option<Str<'a>>,
}

/// Keeps the first candidate and skips the rest without allocating.
fn first_candidate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Candidate<'de>>, D::Error> {
    struct First;
    impl<'de> Visitor<'de> for First {
        type Value = Option<Candidate<'de>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of candidates")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let first = seq.next_element::<Candidate<'de>>()?;
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(first)
        }
    }
    d.deserialize_any(First)
}

fn string(raw: Option<&RawValue>) -> Option<JsonStr<'_>> {
    raw.and_then(JsonStr::from_raw).filter(|s| !s.is_empty())
}

/// Upstream Gemini chunks → deltas.
#[derive(Default)]
pub struct ChunkDecoder {
    started: bool,
    tool_calls: u32,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    /// The reply's id, for minting tool-call ids.
    response_id: String,
}

impl ChunkDecoder {
    /// Decodes one SSE event's data.
    pub fn event<'a>(
        &mut self,
        data: &'a [u8],
        emit: &mut impl FnMut(Delta<'a>),
    ) -> Result<(), ApiError> {
        let c: Chunk<'a> = serde_json::from_slice(data).map_err(unreadable_chunk)?;
        if c.error.is_some() {
            emit(Delta::Error(Box::new(gemini_error::parse(200, data))));
            return Ok(());
        }
        if !self.started {
            self.started = true;
            // Without `responseId`, a fresh one: it names the reply and seeds tool-call ids.
            self.response_id = c.response_id.map_or_else(ids::fresh, |s| s.0.into_owned());
            emit(Delta::Start {
                id: Cow::Owned(self.response_id.clone()),
            });
        }
        if c.prompt_feedback.is_some_and(|f| f.block_reason.is_some()) {
            self.finish = Some(FinishReason::ContentFilter);
        }
        // Usage before the parts: the first chunk's prompt count then reaches an Anthropic
        // client's `message_start`, which the first text would otherwise open without it.
        if let Some(u) = c.usage_metadata {
            let u = u.normalise();
            self.usage = Some(u);
            emit(Delta::Usage(u));
        }
        if let Some(cand) = c.candidates {
            if let Some(content) = cand.content {
                self.parts(content.parts, emit);
            }
            if let Some(r) = cand.finish_reason {
                self.finish = Some(wire::finish_reason(&r.0));
            }
        }
        Ok(())
    }

    fn parts<'a>(&mut self, parts: Parts<'a>, emit: &mut impl FnMut(Delta<'a>)) {
        for p in parts.into_iter() {
            if let Some(call) = p.function_call {
                self.tool_call(call, p.thought_signature, emit);
            } else if let Some(t) = string(p.text) {
                emit(if p.thought == Some(true) {
                    Delta::Reasoning(t)
                } else {
                    Delta::Text(t)
                });
            }
        }
    }

    /// A function call arrives whole: its start and all its arguments at once.
    fn tool_call<'a>(
        &mut self,
        call: Call<'a>,
        signature: Option<Str<'a>>,
        emit: &mut impl FnMut(Delta<'a>),
    ) {
        let index = self.tool_calls;
        self.tool_calls = self.tool_calls.saturating_add(1);
        let name = call
            .name
            .and_then(JsonStr::from_raw)
            .unwrap_or(JsonStr::encode(""));
        let args = call
            .args
            .map_or(Cow::Borrowed("{}"), |a| wire::compact(a.get()));
        let sig = signature.as_ref().map(|s| &*s.0);
        let id = wire::tool_call_id(&self.response_id, index, &name.decode(), &args, sig);
        emit(Delta::ToolCall {
            index,
            id: JsonStr::encode(&id),
            name,
        });
        emit(Delta::ToolArgs {
            index,
            json: JsonStr::encode(&args),
        });
    }

    /// The body ended. With a finish seen: the finish, the last usage, `Done`; without one the
    /// stream was cut short and nothing is emitted (the caller reports a broken stream).
    pub fn end<'a>(&mut self, emit: &mut impl FnMut(Delta<'a>)) {
        let Some(f) = self.finish.take() else { return };
        emit(Delta::Finish(wire::final_reason(f, self.tool_calls > 0)));
        if let Some(u) = self.usage {
            emit(Delta::Usage(u));
        }
        emit(Delta::Done);
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
