//! Upstream Anthropic events → pivot deltas.

use super::{stop_reason, WireUsage, MAX_BLOCKS};
use crate::error::ApiError;
use crate::formats::anthropic::error as ant_error;
use crate::formats::openai::template::{string_hole, Hole, Template};
use crate::formats::pivot::unreadable_event;
use crate::formats::{Delta, JsonStr, Str, Usage};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    message: Option<MessageStart<'a>>,
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow, default)]
    content_block: Option<Block<'a>>,
    #[serde(borrow, default)]
    delta: Option<EventDelta<'a>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct MessageStart<'a> {
    #[serde(borrow, default)]
    id: Option<Str<'a>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
    #[serde(borrow, default)]
    thinking: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct EventDelta<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Str<'a>>,
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
    #[serde(borrow, default)]
    partial_json: Option<&'a RawValue>,
    #[serde(borrow, default)]
    thinking: Option<&'a RawValue>,
    #[serde(borrow, default)]
    signature: Option<&'a RawValue>,
    #[serde(borrow, default)]
    stop_reason: Option<Str<'a>>,
}

fn string(raw: Option<&RawValue>) -> Option<JsonStr<'_>> {
    raw.and_then(JsonStr::from_raw).filter(|s| !s.is_empty())
}

/// Upstream Anthropic events → deltas.
#[derive(Default)]
pub struct EventDecoder {
    usage: Usage,
    /// Tool-call index of each content block that is a tool_use (`u32::MAX` otherwise).
    tool_of_block: Vec<u32>,
    tool_calls: u32,
    /// The last text delta serde read: the next ones are the same bytes around their text
    /// (module `openai::template`), read without serde.
    template: Template,
}

impl EventDecoder {
    /// Decodes one SSE event's data (the event name repeats the data's `type`).
    pub fn event<'a>(
        &mut self,
        data: &'a [u8],
        emit: &mut impl FnMut(Delta<'a>),
    ) -> Result<(), ApiError> {
        // A text delta that is the last one's bytes around other text.
        if let Some(t) = self.template.fit_literal(data) {
            if t.len() > 2 {
                emit(Delta::Text(JsonStr::from_literal(t)));
            }
            return Ok(());
        }
        let ev: Event<'a> = serde_json::from_slice(data).map_err(unreadable_event)?;
        if let Some(hole) = text_hole(data, &ev) {
            self.template.keep(data, hole, None);
        }
        match &*ev.kind {
            "message_start" => {
                let m = ev.message;
                if let Some(u) = m.as_ref().and_then(|m| m.usage) {
                    u.apply(&mut self.usage);
                }
                let id = m.and_then(|m| m.id).map_or(Cow::Borrowed(""), |s| s.0);
                emit(Delta::Start { id });
                emit(Delta::Usage(self.usage));
            }
            "content_block_start" => self.block_start(ev.index, ev.content_block, emit)?,
            "content_block_delta" => self.block_delta(ev.index, ev.delta, emit),
            "message_delta" => {
                if let Some(r) = ev.delta.and_then(|d| d.stop_reason) {
                    emit(Delta::Finish(stop_reason(&r.0)));
                }
                if let Some(u) = ev.usage {
                    u.apply(&mut self.usage);
                    emit(Delta::Usage(self.usage));
                }
            }
            "message_stop" => emit(Delta::Done),
            "error" => emit(Delta::Error(Box::new(ant_error::parse(200, data)))),
            // ping, content_block_stop, and event types newer than this decoder.
            _ => {}
        }
        Ok(())
    }

    fn block_start<'a>(
        &mut self,
        index: Option<u32>,
        block: Option<Block<'a>>,
        emit: &mut impl FnMut(Delta<'a>),
    ) -> Result<(), ApiError> {
        let Some(b) = block else { return Ok(()) };
        match &*b.kind {
            "tool_use" => {
                let block = index.unwrap_or(0);
                if block >= MAX_BLOCKS {
                    return Err(ApiError::bad_upstream(
                        "Too many content blocks in one reply.",
                    ));
                }
                let k = self.tool_calls;
                self.tool_calls += 1;
                let slot = block as usize;
                if self.tool_of_block.len() <= slot {
                    self.tool_of_block.resize(slot + 1, u32::MAX);
                }
                self.tool_of_block[slot] = k;
                let id = b.id.and_then(JsonStr::from_raw);
                let name = b.name.and_then(JsonStr::from_raw);
                emit(Delta::ToolCall {
                    index: k,
                    id: id.unwrap_or(JsonStr::encode("")),
                    name: name.unwrap_or(JsonStr::encode("")),
                });
            }
            "text" => {
                if let Some(t) = string(b.text) {
                    emit(Delta::Text(t));
                }
            }
            "thinking" => {
                if let Some(t) = string(b.thinking) {
                    emit(Delta::Reasoning(t));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn block_delta<'a>(
        &mut self,
        index: Option<u32>,
        delta: Option<EventDelta<'a>>,
        emit: &mut impl FnMut(Delta<'a>),
    ) {
        let Some(d) = delta else { return };
        match d.kind.as_ref().map(|k| &*k.0) {
            Some("text_delta") => {
                if let Some(t) = string(d.text) {
                    emit(Delta::Text(t));
                }
            }
            Some("input_json_delta") => {
                let k = index
                    .and_then(|i| self.tool_of_block.get(i as usize).copied())
                    .filter(|&k| k != u32::MAX);
                if let (Some(index), Some(json)) = (k, string(d.partial_json)) {
                    emit(Delta::ToolArgs { index, json });
                }
            }
            Some("thinking_delta") => {
                if let Some(t) = string(d.thinking) {
                    emit(Delta::Reasoning(t));
                }
            }
            Some("signature_delta") => {
                if let Some(s) = string(d.signature) {
                    emit(Delta::ReasoningSignature(s));
                }
            }
            _ => {}
        }
    }
}

/// Where a text delta's text is in `data` (quotes excluded), for the template.
fn text_hole(data: &[u8], ev: &Event<'_>) -> Option<Hole> {
    let d = ev
        .delta
        .as_ref()
        .filter(|_| ev.kind == "content_block_delta")?;
    d.kind.as_ref().filter(|k| k.0 == "text_delta")?;
    string_hole(data, d.text?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(dec: &mut EventDecoder, events: &[&[u8]]) -> Result<Vec<String>, ApiError> {
        let mut out = Vec::new();
        for e in events {
            dec.event(e, &mut |d| {
                if let Delta::Text(t) = d {
                    out.push(t.literal().to_string())
                }
            })?;
        }
        Ok(out)
    }

    fn delta(text: &str) -> Vec<u8> {
        let d = r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"#;
        format!("{d}{text}}}}}").into_bytes()
    }

    #[test]
    fn text_deltas_after_the_first_are_read_against_it_as_serde_reads_them() {
        let events = [
            delta(r#""Hel""#),
            delta(r#""lo""#),
            delta(r#""""#),
            delta("\"caf\u{e9} \\\"q\\\"\""),
            delta(r#"" x""#),
            delta(r#""a""#),
            br#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"other"}}"#.to_vec(),
            br#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"t"}}"#.to_vec(),
            delta(r#""end""#),
        ];
        let refs: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
        let got = texts(&mut EventDecoder::default(), &refs).unwrap();
        // serde alone: a fresh decoder for every event never has a template.
        let mut alone = Vec::new();
        for e in &refs {
            alone.extend(texts(&mut EventDecoder::default(), &[e]).unwrap());
        }
        assert_eq!(got, alone);
        assert_eq!(got.len(), 7, "{got:?}");
    }

    #[test]
    fn text_that_is_not_utf8_is_refused_as_serde_refuses_it() {
        let mut dec = EventDecoder::default();
        texts(&mut dec, &[&delta(r#""ok""#)]).unwrap();
        let bad = [&delta(r#""ok""#)[..], b"{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\xff\"}}"];
        assert!(texts(&mut dec, &bad).is_err());
    }
}
