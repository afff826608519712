//! Deltas → a Responses event stream for a Responses client whose backend speaks another API
//! (the wire-formats reference §9.5, §9.8): `response.created` and `.in_progress` first; per item
//! `output_item.added`, its part, deltas, then the `…done` events carrying the full text;
//! `response.completed` (or `.incomplete`) last, with every item and the usage. Every event
//! has the next `sequence_number` from 0; `output_index` counts items in the order added.

use crate::error::ApiError;
use crate::formats::responses::namespaces::ToolNames;
use crate::formats::responses::output::{Head, Item, Kind, Status};
use crate::formats::{Delta, FinishReason, JsonStr, Usage};
use bytes::BytesMut;
use std::fmt::Write as _;
use std::sync::Arc;

/// Most tool calls one reply may make; a bound on the call → item map.
const MAX_CALLS: usize = 4096;

pub struct EventEncoder {
    head: Head,
    /// The Response's fresh id without `resp_`: item ids are `msg_{stem}_{n}` and so on.
    stem: String,
    seq: u64,
    started: bool,
    items: Vec<Item>,
    /// The open message or reasoning item (function calls stay open until the finish).
    open: Option<usize>,
    /// The item of each tool call, by the call's index.
    calls: Vec<u32>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    ended: bool,
    /// Namespaced tools flattened for the target: their calls are named back.
    tool_names: Option<Arc<ToolNames>>,
    /// Keep the final Response (the gateway stores it): `Some` once the stream completed.
    keep: bool,
    kept: Option<Vec<u8>>,
}

impl EventEncoder {
    pub fn with_tool_names(mut self, names: Option<Arc<ToolNames>>) -> EventEncoder {
        self.tool_names = names;
        self
    }

    /// Keeps the final Response of a completed (or incomplete) stream for [`Self::take_final`].
    pub fn keeping(mut self, keep: bool) -> EventEncoder {
        self.keep = keep;
        self
    }

    /// The Response of `response.completed` (or `.incomplete`), once; never a failed one.
    pub fn take_final(&mut self) -> Option<Vec<u8>> {
        self.kept.take()
    }

    pub fn new(client_model: &str, created: u64) -> EventEncoder {
        EventEncoder {
            head: Head {
                id: String::new(),
                model: JsonStr::encode(client_model).literal().to_string(),
                created,
            },
            stem: String::new(),
            seq: 0,
            started: false,
            items: Vec::new(),
            open: None,
            calls: Vec::new(),
            finish: None,
            usage: None,
            ended: false,
            tool_names: None,
            keep: false,
            kept: None,
        }
    }

    pub fn write(&mut self, d: &Delta<'_>, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        if !self.started {
            self.start(out);
        }
        match d {
            Delta::Start { .. } | Delta::ReasoningSignature(_) | Delta::RedactedReasoning(_) => {}
            Delta::Text(t) => {
                let i = self.ensure(Kind::Message, out);
                self.text_delta(i, "response.output_text.delta", "content_index", t, out);
            }
            Delta::Reasoning(t) => {
                let i = self.ensure(Kind::Reasoning, out);
                let kind = "response.reasoning_summary_text.delta";
                self.text_delta(i, kind, "summary_index", t, out);
            }
            Delta::ToolCall { index, id, name } => self.call_start(*index, id, name, out),
            Delta::ToolArgs { index, json } => self.call_args(*index, json, out),
            Delta::Finish(r) => {
                self.finish = Some(*r);
                self.close_all(out);
            }
            Delta::Usage(u) => self.usage = Some(*u),
            Delta::Error(e) => self.error(e, out),
            Delta::Done => self.done(out),
        }
    }

    /// Starts an event: its name line and the JSON up to the sequence number; the caller
    /// writes the rest and [`Self::end`].
    fn event(&mut self, kind: &str, out: &mut BytesMut) {
        let _ = write!(
            out,
            "event: {kind}\ndata: {{\"type\":\"{kind}\",\"sequence_number\":{}",
            self.seq
        );
        self.seq += 1;
    }

    fn end(out: &mut BytesMut) {
        out.extend_from_slice(b"}\n\n");
    }

    fn start(&mut self, out: &mut BytesMut) {
        self.started = true;
        self.stem = crate::formats::ids::fresh();
        self.head.id = format!("resp_{}", self.stem);
        for kind in ["response.created", "response.in_progress"] {
            self.event(kind, out);
            out.extend_from_slice(b",\"response\":");
            self.head.write(&Status::InProgress, &[], None, out);
            Self::end(out);
        }
    }

    /// The open item of `kind`, opening one (and closing another) if needed.
    fn ensure(&mut self, kind: Kind, out: &mut BytesMut) -> usize {
        if let Some(i) = self.open.filter(|&i| self.items[i].kind == kind) {
            return i;
        }
        self.close_open(out);
        let i = self.add(kind);
        self.added(i, out);
        let (event, index) = match kind {
            Kind::Reasoning => ("response.reasoning_summary_part.added", "summary_index"),
            _ => ("response.content_part.added", "content_index"),
        };
        self.event(event, out);
        self.item_ref(i, out);
        let _ = write!(out, ",\"{index}\":0,\"part\":");
        self.items[i].write_part_text("", out);
        Self::end(out);
        self.open = Some(i);
        i
    }

    /// Adds an item (the caller sends `output_item.added` once it is filled in).
    fn add(&mut self, kind: Kind) -> usize {
        let i = self.items.len();
        let prefix = match kind {
            Kind::Message | Kind::Refusal => "msg",
            Kind::FunctionCall => "fc",
            Kind::Reasoning => "rs",
        };
        self.items
            .push(Item::new(kind, format!("{prefix}_{}_{i}", self.stem)));
        i
    }

    fn added(&mut self, i: usize, out: &mut BytesMut) {
        self.event("response.output_item.added", out);
        let _ = write!(out, ",\"output_index\":{i},\"item\":");
        self.items[i].write(false, out);
        Self::end(out);
    }

    /// `"item_id":…,"output_index":…` after a comma.
    fn item_ref(&self, i: usize, out: &mut BytesMut) {
        let _ = write!(
            out,
            ",\"item_id\":\"{}\",\"output_index\":{i}",
            self.items[i].id
        );
    }

    fn text_delta(
        &mut self,
        i: usize,
        kind: &str,
        index: &str,
        t: &JsonStr<'_>,
        out: &mut BytesMut,
    ) {
        self.event(kind, out);
        self.item_ref(i, out);
        let _ = write!(out, ",\"{index}\":0,\"delta\":");
        out.extend_from_slice(t.literal().as_bytes());
        if index == "content_index" {
            out.extend_from_slice(b",\"logprobs\":[]");
        }
        Self::end(out);
        self.items[i].push_literal(t.literal());
    }

    fn call_start(&mut self, index: u32, id: &JsonStr<'_>, name: &JsonStr<'_>, out: &mut BytesMut) {
        let slot = index as usize;
        if slot >= MAX_CALLS {
            return;
        }
        self.close_open(out);
        let i = self.add(Kind::FunctionCall);
        let item = &mut self.items[i];
        item.call_id = id.literal().to_string();
        item.set_name(name, self.tool_names.as_deref());
        if self.calls.len() <= slot {
            self.calls.resize(slot + 1, u32::MAX);
        }
        self.calls[slot] = i as u32;
        self.added(i, out);
    }

    fn call_args(&mut self, index: u32, json: &JsonStr<'_>, out: &mut BytesMut) {
        let Some(i) = self.calls.get(index as usize).map(|&i| i as usize) else {
            return;
        };
        if self.items.get(i).is_none_or(|it| it.closed) {
            return;
        }
        self.event("response.function_call_arguments.delta", out);
        self.item_ref(i, out);
        out.extend_from_slice(b",\"delta\":");
        out.extend_from_slice(json.literal().as_bytes());
        Self::end(out);
        self.items[i].push_literal(json.literal());
    }

    fn close_open(&mut self, out: &mut BytesMut) {
        if let Some(i) = self.open.take() {
            self.close(i, out);
        }
    }

    fn close_all(&mut self, out: &mut BytesMut) {
        self.open = None;
        for i in 0..self.items.len() {
            self.close(i, out);
        }
    }

    /// Sends an item's done events, each with the full text.
    fn close(&mut self, i: usize, out: &mut BytesMut) {
        if self.items[i].closed {
            return;
        }
        self.items[i].closed = true;
        match self.items[i].kind {
            Kind::FunctionCall => {
                self.event("response.function_call_arguments.done", out);
                self.item_ref(i, out);
                let it = &self.items[i];
                let _ = write!(out, ",\"name\":{},\"arguments\":\"{}\"", it.name, it.text);
                Self::end(out);
            }
            kind => {
                let (text_done, part_done, index, logprobs) = match kind {
                    Kind::Reasoning => (
                        "response.reasoning_summary_text.done",
                        "response.reasoning_summary_part.done",
                        "summary_index",
                        "",
                    ),
                    _ => (
                        "response.output_text.done",
                        "response.content_part.done",
                        "content_index",
                        ",\"logprobs\":[]",
                    ),
                };
                self.event(text_done, out);
                self.item_ref(i, out);
                let text = &self.items[i].text;
                let _ = write!(out, ",\"{index}\":0,\"text\":\"{text}\"{logprobs}");
                Self::end(out);
                self.event(part_done, out);
                self.item_ref(i, out);
                let _ = write!(out, ",\"{index}\":0,\"part\":");
                self.items[i].write_part(out);
                Self::end(out);
            }
        }
        self.event("response.output_item.done", out);
        let _ = write!(out, ",\"output_index\":{i},\"item\":");
        self.items[i].write(true, out);
        Self::end(out);
    }

    fn done(&mut self, out: &mut BytesMut) {
        self.close_all(out);
        let kind = match self.finish {
            Some(FinishReason::Length | FinishReason::ContentFilter) => "response.incomplete",
            _ => "response.completed",
        };
        self.event(kind, out);
        out.extend_from_slice(b",\"response\":");
        let status = Status::Done(self.finish);
        let at = out.len();
        self.head
            .write(&status, &self.items, self.usage.as_ref(), out);
        if self.keep {
            self.kept = Some(out[at..].to_vec());
        }
        Self::end(out);
        self.ended = true;
    }

    /// Ends the stream with an `error` event and `response.failed`, as OpenAI does.
    pub fn error(&mut self, e: &ApiError, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        if !self.started {
            self.start(out);
        }
        crate::formats::responses::error::event(e, self.seq, out);
        self.seq += 1;
        self.event("response.failed", out);
        out.extend_from_slice(b",\"response\":");
        self.head
            .write(&Status::Failed(e), &self.items, self.usage.as_ref(), out);
        Self::end(out);
        self.ended = true;
    }

    pub fn ended(&self) -> bool {
        self.ended
    }
}
