//! Anthropic Messages streams: [`EventDecoder`] reads an upstream's events (`message_start`,
//! `content_block_*`, `message_delta`, `message_stop`, `ping`, `error`) into pivot deltas;
//! [`EventEncoder`] writes deltas as those events for an Anthropic client. Usage follows
//! Anthropic's rules: input tokens from `message_start` (plus cache reads and writes), output
//! tokens cumulative in `message_delta`.

use super::error as ant_error;
use crate::error::ApiError;
use crate::formats::pivot::unreadable_event;
use crate::formats::{Delta, FinishReason, JsonStr, Str, Usage};
use bytes::BytesMut;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt::Write as _;

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

/// Anthropic's `usage`; every field optional because `message_delta` repeats only some.
#[derive(Deserialize, Default, Clone, Copy)]
pub struct WireUsage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_creation_input_tokens: Option<u64>,
    pub cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Folds this report into `u`: Anthropic's `input_tokens` excludes cache reads and writes,
    /// OpenAI's includes them.
    pub fn apply(&self, u: &mut Usage) {
        if self.input_tokens.is_some()
            || self.cache_read_input_tokens.is_some()
            || self.cache_creation_input_tokens.is_some()
        {
            let read = self.cache_read_input_tokens.unwrap_or(u.cached_input);
            let write = self.cache_creation_input_tokens.unwrap_or(u.cache_creation);
            let plain = self.input_tokens.unwrap_or_else(|| u.uncached_input());
            u.input = plain.saturating_add(read).saturating_add(write);
            u.cached_input = read;
            u.cache_creation = write;
        }
        if let Some(o) = self.output_tokens {
            u.output = o;
        }
    }
}

pub fn stop_reason(s: &str) -> FinishReason {
    match s {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        "stop_sequence" => FinishReason::StopSequence,
        _ => FinishReason::Stop,
    }
}

/// Most content blocks one reply may open; a bound on the block → tool index map.
const MAX_BLOCKS: u32 = 4096;

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
}

impl EventDecoder {
    /// Decodes one SSE event's data (the event name repeats the data's `type`).
    pub fn event<'a>(
        &mut self,
        data: &'a [u8],
        emit: &mut impl FnMut(Delta<'a>),
    ) -> Result<(), ApiError> {
        let ev: Event<'a> = serde_json::from_slice(data).map_err(unreadable_event)?;
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text,
    Thinking,
    Redacted,
    Tool,
}

/// Deltas → Anthropic events for an Anthropic client. `message_start` waits for the end of
/// the upstream chunk that began the reply ([`Self::flush`]) or its first content, so the input
/// tokens an upstream reports by then (Gemini's first chunk, a usage-per-chunk server) are in
/// it; otherwise they are 0 there and `message_delta` carries them, as Anthropic allows.
pub struct EventEncoder {
    model: String,
    /// The client's message id, once the reply began (`Delta::Start`).
    id: String,
    /// `message_start` was written.
    started: bool,
    open: Open,
    /// Index of the open (or last) block; the next block gets `blocks`.
    blocks: u32,
    /// Block index of each tool call, by tool-call index.
    tool_blocks: Vec<u32>,
    stop: Option<FinishReason>,
    usage: Usage,
    ended: bool,
}

impl EventEncoder {
    pub fn new(client_model: &str) -> EventEncoder {
        EventEncoder {
            model: JsonStr::encode(client_model).literal().to_string(),
            id: String::new(),
            started: false,
            open: Open::None,
            blocks: 0,
            tool_blocks: Vec::new(),
            stop: None,
            usage: Usage::default(),
            ended: false,
        }
    }

    pub fn write(&mut self, d: &Delta<'_>, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        match d {
            Delta::Start { id } => {
                if self.id.is_empty() {
                    self.id = crate::formats::ids::message(id);
                }
                return;
            }
            Delta::Usage(u) => {
                self.usage = *u;
                return;
            }
            Delta::Error(_) => {}
            _ if !self.started => self.start(out),
            _ => {}
        }
        match d {
            Delta::Start { .. } | Delta::Usage(_) => {}
            Delta::Text(t) => {
                self.ensure(Open::Text, out);
                self.delta(out, b"{\"type\":\"text_delta\",\"text\":", t);
            }
            Delta::Reasoning(t) => {
                self.ensure(Open::Thinking, out);
                self.delta(out, b"{\"type\":\"thinking_delta\",\"thinking\":", t);
            }
            Delta::ReasoningSignature(s) => {
                // A signature ends its thinking block: reasoning after it is a block of its own.
                self.ensure(Open::Thinking, out);
                self.delta(out, b"{\"type\":\"signature_delta\",\"signature\":", s);
                self.close(out);
            }
            Delta::RedactedReasoning(data) => {
                self.close(out);
                let parts: [&[u8]; 2] = [data.literal().as_bytes(), b"}"];
                self.block_start(b"{\"type\":\"redacted_thinking\",\"data\":", &parts, out);
                self.open = Open::Redacted;
                self.close(out);
            }
            Delta::ToolCall { index, id, name } => self.tool_start(*index, id, name, out),
            Delta::ToolArgs { index, json } => self.tool_args(*index, json, out),
            Delta::Finish(r) => {
                self.close(out);
                self.stop = Some(*r);
            }
            Delta::Error(e) => self.error(e, out),
            Delta::Done => self.done(out),
        }
    }

    /// The upstream chunk was read: a reply that began in it gets its `message_start` now.
    pub fn flush(&mut self, out: &mut BytesMut) {
        if !self.started && !self.ended && !self.id.is_empty() {
            self.start(out);
        }
    }

    fn start(&mut self, out: &mut BytesMut) {
        self.started = true;
        if self.id.is_empty() {
            self.id = crate::formats::ids::message("");
        }
        let u = &self.usage;
        let _ = write!(
            out,
            "event: message_start\ndata: {{\"type\":\"message_start\",\"message\":{{\"id\":{},\"type\":\"message\",\"role\":\"assistant\",\"model\":{},\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{{\"input_tokens\":{},\"cache_creation_input_tokens\":{},\"cache_read_input_tokens\":{},\"output_tokens\":0}}}}}}\n\nevent: ping\ndata: {{\"type\":\"ping\"}}\n\n",
            JsonStr::encode(&self.id).literal(),
            self.model,
            u.uncached_input(),
            u.cache_creation,
            u.cached_input,
        );
    }

    /// Opens a block of `kind` unless one is open already.
    fn ensure(&mut self, kind: Open, out: &mut BytesMut) {
        if self.open == kind {
            return;
        }
        self.close(out);
        let block: &[u8] = match kind {
            Open::Thinking => b"{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}",
            _ => b"{\"type\":\"text\",\"text\":\"\"}",
        };
        self.block_start(block, &[], out);
        self.open = kind;
    }

    fn block_start(&mut self, head: &[u8], rest: &[&[u8]], out: &mut BytesMut) {
        let _ = write!(
            out,
            "event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":{},\"content_block\":",
            self.blocks
        );
        out.extend_from_slice(head);
        for p in rest {
            out.extend_from_slice(p);
        }
        out.extend_from_slice(b"}\n\n");
    }

    fn close(&mut self, out: &mut BytesMut) {
        if self.open != Open::None {
            let _ = write!(
                out,
                "event: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":{}}}\n\n",
                self.blocks
            );
            self.open = Open::None;
            self.blocks += 1;
        }
    }

    fn delta_at(&self, block: u32, out: &mut BytesMut, head: &[u8], t: &JsonStr<'_>) {
        let _ = write!(
            out,
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":{block},\"delta\":"
        );
        out.extend_from_slice(head);
        out.extend_from_slice(t.literal().as_bytes());
        out.extend_from_slice(b"}}\n\n");
    }

    fn delta(&self, out: &mut BytesMut, head: &[u8], t: &JsonStr<'_>) {
        self.delta_at(self.blocks, out, head, t);
    }

    fn tool_start(&mut self, index: u32, id: &JsonStr<'_>, name: &JsonStr<'_>, out: &mut BytesMut) {
        self.close(out);
        let slot = index as usize;
        if slot >= MAX_BLOCKS as usize {
            return;
        }
        if self.tool_blocks.len() <= slot {
            self.tool_blocks.resize(slot + 1, u32::MAX);
        }
        self.tool_blocks[slot] = self.blocks;
        let parts: [&[u8]; 4] = [
            id.literal().as_bytes(),
            b",\"name\":",
            name.literal().as_bytes(),
            b",\"input\":{}}",
        ];
        self.block_start(b"{\"type\":\"tool_use\",\"id\":", &parts, out);
        self.open = Open::Tool;
    }

    fn tool_args(&mut self, index: u32, json: &JsonStr<'_>, out: &mut BytesMut) {
        let Some(&block) = self.tool_blocks.get(index as usize) else {
            return;
        };
        if block != u32::MAX {
            self.delta_at(
                block,
                out,
                b"{\"type\":\"input_json_delta\",\"partial_json\":",
                json,
            );
        }
    }

    fn done(&mut self, out: &mut BytesMut) {
        self.close(out);
        let reason = match self.stop {
            Some(FinishReason::Length) => "max_tokens",
            Some(FinishReason::ToolCalls) => "tool_use",
            Some(FinishReason::ContentFilter) => "refusal",
            Some(FinishReason::StopSequence) => "stop_sequence",
            Some(FinishReason::Stop) | None => "end_turn",
        };
        let u = &self.usage;
        let _ = write!(
            out,
            "event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"{reason}\",\"stop_sequence\":null}},\"usage\":{{\"input_tokens\":{},\"cache_creation_input_tokens\":{},\"cache_read_input_tokens\":{},\"output_tokens\":{}}}}}\n\nevent: message_stop\ndata: {{\"type\":\"message_stop\"}}\n\n",
            u.uncached_input(),
            u.cache_creation,
            u.cached_input,
            u.output,
        );
        self.ended = true;
    }

    /// Writes the error event (and nothing after it).
    pub fn error(&mut self, e: &ApiError, out: &mut BytesMut) {
        if !self.ended {
            ant_error::event(e, out);
            self.ended = true;
        }
    }

    pub fn ended(&self) -> bool {
        self.ended
    }
}
