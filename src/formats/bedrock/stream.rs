//! ConverseStream events → pivot deltas. Each binary frame (`crate::formats::framing::eventstream`) names
//! its event in `:event-type`; the payload is that event's JSON, unwrapped. Text blocks have no
//! `contentBlockStart` (they begin with their first delta); tool-use blocks do, and their input
//! arrives as string fragments. `messageStop` carries the stop reason, then `metadata` the
//! usage; the body then ends (no closing event), so `metadata` is where the stream is complete.
//! Exception frames (`throttlingException`, `modelStreamErrorException`, ...) become the
//! client's error event.

use super::{error, stop_reason, WireUsage};
use crate::error::ApiError;
use crate::formats::framing::eventstream::Frame;
use crate::formats::openai::template::{string_hole, Hole, Template};
use crate::formats::pivot::unreadable_event;
use crate::formats::{Delta, JsonStr};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    #[serde(default)]
    content_block_index: Option<u32>,
    #[serde(borrow, default)]
    start: Option<Start<'a>>,
    #[serde(borrow, default)]
    delta: Option<BlockDelta<'a>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    /// Bedrock's random padding, different in every event.
    #[serde(borrow, default)]
    p: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Start<'a> {
    #[serde(borrow, default)]
    tool_use: Option<ToolStart<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolStart<'a> {
    #[serde(borrow)]
    tool_use_id: &'a RawValue,
    #[serde(borrow)]
    name: &'a RawValue,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDelta<'a> {
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tool_use: Option<ToolDelta<'a>>,
    #[serde(borrow, default)]
    reasoning_content: Option<ReasoningDelta<'a>>,
}

#[derive(Deserialize)]
struct ToolDelta<'a> {
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReasoningDelta<'a> {
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
    #[serde(borrow, default)]
    signature: Option<&'a RawValue>,
    #[serde(borrow, default)]
    redacted_content: Option<&'a RawValue>,
}

/// Upstream ConverseStream frames → deltas.
#[derive(Default)]
pub struct EventDecoder {
    started: bool,
    /// Tool-call index of each content block that is a tool use (`u32::MAX` otherwise).
    tool_of_block: Vec<u32>,
    tool_calls: u32,
    stopped: bool,
    done: bool,
    /// The last text delta serde read: the next ones are the same bytes around their text and
    /// padding (module `openai::template`), read without serde.
    template: Template,
}

/// Blocks past this index are not tracked as tool calls (a hostile stream cannot make the
/// table grow without bound).
const MAX_BLOCKS: u32 = 1024;

/// Where a delta of text only has its text in `data` (quotes excluded), for the template.
fn text_hole(data: &[u8], ev: &Event<'_>) -> Option<Hole> {
    let d = ev.delta.as_ref()?;
    if d.tool_use.is_some() || d.reasoning_content.is_some() {
        return None;
    }
    string_hole(data, d.text?)
}

fn literal(raw: Option<&RawValue>) -> Option<JsonStr<'_>> {
    raw.and_then(JsonStr::from_raw).filter(|s| !s.is_empty())
}

impl EventDecoder {
    /// Decodes one frame.
    pub fn frame<'a>(
        &mut self,
        f: &Frame<'a>,
        emit: &mut impl FnMut(Delta<'a>),
    ) -> Result<(), ApiError> {
        match f.message_type {
            "exception" => {
                emit(Delta::Error(Box::new(error::exception(f.kind, f.payload))));
                return Ok(());
            }
            "error" => {
                let msg = f.error_message.unwrap_or("The provider's stream failed.");
                let e = ApiError::bad_upstream(format!("{}: {msg}", f.kind));
                emit(Delta::Error(Box::new(e)));
                return Ok(());
            }
            _ => {}
        }
        let text_delta = f.kind == "contentBlockDelta";
        if let Some(t) = text_delta
            .then(|| self.template.fit_literal(f.payload))
            .flatten()
        {
            if t.len() > 2 {
                emit(Delta::Text(JsonStr::from_literal(t)));
            }
            return Ok(());
        }
        let ev: Event<'a> = serde_json::from_slice(f.payload).map_err(unreadable_event)?;
        if let Some(hole) = text_hole(f.payload, &ev).filter(|_| text_delta) {
            let pad = ev.p.and_then(|p| string_hole(f.payload, p));
            self.template.keep(f.payload, hole, pad);
        }
        if !self.started {
            self.started = true;
            emit(Delta::Start {
                id: Cow::Borrowed(""),
            });
        }
        match f.kind {
            "contentBlockStart" => self.block_start(ev, emit),
            "contentBlockDelta" => self.block_delta(ev, emit),
            "messageStop" => {
                self.stopped = true;
                let reason = ev.stop_reason.as_deref().unwrap_or("end_turn");
                emit(Delta::Finish(stop_reason(reason)));
            }
            "metadata" => {
                if let Some(u) = ev.usage {
                    emit(Delta::Usage(u.normalise()));
                }
                self.done = true;
                emit(Delta::Done);
            }
            // messageStart, contentBlockStop, and events newer than this decoder.
            _ => {}
        }
        Ok(())
    }

    fn block_start<'a>(&mut self, ev: Event<'a>, emit: &mut impl FnMut(Delta<'a>)) {
        let (Some(block), Some(tool)) = (
            ev.content_block_index.filter(|b| *b < MAX_BLOCKS),
            ev.start.and_then(|s| s.tool_use),
        ) else {
            return;
        };
        let (Some(id), Some(name)) = (
            JsonStr::from_raw(tool.tool_use_id),
            JsonStr::from_raw(tool.name),
        ) else {
            return;
        };
        let slot = block as usize;
        if self.tool_of_block.len() <= slot {
            self.tool_of_block.resize(slot + 1, u32::MAX);
        }
        let index = self.tool_calls;
        self.tool_of_block[slot] = index;
        self.tool_calls += 1;
        emit(Delta::ToolCall { index, id, name });
    }

    fn block_delta<'a>(&mut self, ev: Event<'a>, emit: &mut impl FnMut(Delta<'a>)) {
        let Some(d) = ev.delta else { return };
        if let Some(t) = literal(d.text) {
            emit(Delta::Text(t));
        } else if let Some(input) = d.tool_use.and_then(|t| literal(t.input)) {
            let tool = ev
                .content_block_index
                .and_then(|b| self.tool_of_block.get(b as usize).copied())
                .filter(|t| *t != u32::MAX);
            if let Some(index) = tool {
                emit(Delta::ToolArgs { index, json: input });
            }
        } else if let Some(r) = d.reasoning_content {
            if let Some(t) = literal(r.text) {
                emit(Delta::Reasoning(t));
            } else if let Some(s) = literal(r.signature) {
                emit(Delta::ReasoningSignature(s));
            } else if let Some(data) = literal(r.redacted_content) {
                emit(Delta::RedactedReasoning(data));
            }
        }
    }

    /// The body ended. A stream that stopped but sent no `metadata` is complete without usage;
    /// one that did not stop was cut short (nothing is emitted; the caller reports it).
    pub fn end<'a>(&mut self, emit: &mut impl FnMut(Delta<'a>)) {
        if self.stopped && !self.done {
            self.done = true;
            emit(Delta::Done);
        }
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
