//! Pivot deltas → Anthropic events for an Anthropic client.

use super::MAX_BLOCKS;
use crate::error::ApiError;
use crate::formats::anthropic::error as ant_error;
use crate::formats::{Delta, FinishReason, JsonStr, Usage};
use bytes::BytesMut;
use std::fmt::Write as _;

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
