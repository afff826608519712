//! OpenAI chat streams: [`ChunkDecoder`] reads an upstream's `chat.completion.chunk` events
//! into pivot deltas; [`ChunkEncoder`] writes deltas as chunks for an OpenAI client. Both are
//! pure state machines over complete SSE events; neither allocates per text delta.

use super::error as oai_error;
use super::template::{Hole, NullUsage, Template};
use super::types::WireUsage;
use crate::error::ApiError;
use crate::formats::pivot::unreadable_chunk;
use crate::formats::scan::{self, once, Cursor};
use crate::formats::{Delta, FinishReason, JsonStr, Str, Usage};
use bytes::BytesMut;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt::Write as _;

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    id: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "first_choice")]
    choices: Option<Choice<'a>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    delta: Option<ChoiceDelta<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct ChoiceDelta<'a> {
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    /// DeepSeek, vLLM and others stream reasoning here; OpenRouter and Ollama use `reasoning`.
    #[serde(borrow, default)]
    reasoning_content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    reasoning: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCallChunk<'a>>>,
}

#[derive(Deserialize)]
struct ToolCallChunk<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    function: Option<FunctionChunk<'a>>,
}

#[derive(Deserialize)]
struct FunctionChunk<'a> {
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
}

/// Keeps the first element of `choices` and skips the rest without allocating (only choice 0
/// is translated; fronts that translate never ask for more than one).
fn first_choice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Choice<'de>>, D::Error> {
    struct First;
    impl<'de> Visitor<'de> for First {
        type Value = Option<Choice<'de>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of choices")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let first = seq.next_element::<Choice<'de>>()?;
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(first)
        }
    }
    d.deserialize_any(First)
}

pub fn finish_reason(s: &str) -> FinishReason {
    match s {
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// `choices` for [`ChunkDecoder::plain_text_len`]: the first element read, the rest skipped;
/// `text`: where its delta's one counted string lies, if it has one.
fn choices(
    c: &mut Cursor<'_>,
    has_choice: &mut bool,
    len: &mut usize,
    text: &mut Option<Hole>,
) -> Option<()> {
    if !c.eat(b'[') {
        return None;
    }
    if c.eat(b']') {
        return Some(());
    }
    c.ws();
    *has_choice = true;
    let mut seen = 0u8;
    scan::members(c, |c, key| match key {
        b"delta" => {
            once(&mut seen, 1)?;
            if c.null() {
                return Some(());
            }
            (*len, *text) = delta_text_len(c)?;
            Some(())
        }
        b"finish_reason" => {
            once(&mut seen, 2)?;
            c.opt_text().map(drop)
        }
        k if k.contains(&b'\\') => None,
        _ => c.skip_value(),
    })?;
    while c.eat(b',') {
        c.ws();
        c.skip_value()?;
    }
    c.eat(b']').then_some(())
}

/// A delta's text and reasoning, as raw string lengths (`reasoning_content` before
/// `reasoning`, as `choice` reads them); tool calls are left to serde. With where the string
/// counted lies when it is the only string of the three: the length is then its length
/// whatever it holds (the chunk's template, module `template`).
fn delta_text_len(c: &mut Cursor<'_>) -> Option<(usize, Option<Hole>)> {
    let (mut seen, mut text, mut reasoning_content, mut reasoning) = (0u8, 0, 0, 0);
    let (mut strings, mut hole) = (0, None);
    scan::members(c, |c, key| {
        let (bit, slot) = match key {
            b"content" => (1, &mut text),
            b"reasoning_content" => (2, &mut reasoning_content),
            b"reasoning" => (4, &mut reasoning),
            b"tool_calls" => return once(&mut seen, 8).filter(|()| c.null()),
            k if k.contains(&b'\\') => return None,
            _ => return c.skip_value(),
        };
        once(&mut seen, bit)?;
        let (at, string) = (c.pos(), c.peek() == Some(b'"'));
        *slot = c.raw_string_len()?;
        if string {
            strings += 1;
            hole = Some((at + 1, c.pos() - 1));
        }
        Some(())
    })?;
    let reasoning = if reasoning_content > 0 {
        reasoning_content
    } else {
        reasoning
    };
    Some((text + reasoning, hole.filter(|_| strings == 1)))
}

fn string(raw: Option<&RawValue>) -> Option<JsonStr<'_>> {
    raw.and_then(JsonStr::from_raw).filter(|s| !s.is_empty())
}

/// Upstream OpenAI-style chunks → deltas.
#[derive(Default)]
pub struct ChunkDecoder {
    started: bool,
    tool_calls: u32,
    /// The last plain chunk [`Self::plain_text_len`] scanned.
    template: Template,
}

impl ChunkDecoder {
    /// Decodes one SSE event's data.
    pub fn event<'a>(
        &mut self,
        data: &'a [u8],
        emit: &mut impl FnMut(Delta<'a>),
    ) -> Result<(), ApiError> {
        if data == b"[DONE]" {
            emit(Delta::Done);
            return Ok(());
        }
        let c: Chunk<'a> = serde_json::from_slice(data).map_err(unreadable_chunk)?;
        if c.error.is_some() {
            let mut e = oai_error::parse(500, data);
            if e.kind == crate::error::ErrorKind::Overloaded {
                e.status = 503;
            }
            emit(Delta::Error(Box::new(e)));
            return Ok(());
        }
        if !self.started {
            // Azure opens with a chunk that has no id and no choices (content-filter results).
            if c.choices.is_some() || c.id.as_ref().is_some_and(|i| !i.0.is_empty()) {
                self.started = true;
                emit(Delta::Start {
                    id: c.id.map_or(Cow::Borrowed(""), |s| s.0),
                });
            }
        }
        if let Some(ch) = c.choices {
            self.choice(ch, emit);
        }
        if let Some(u) = c.usage {
            emit(Delta::Usage(u.normalise()));
        }
        Ok(())
    }

    /// A plain content chunk read without serde, for a meter: the raw length of the text and
    /// reasoning it carries (what [`Self::event`]'s deltas would add to a `Tally`), and the
    /// decoder's state moved as `event` would move it. `None` when the chunk is not that
    /// plain (usage, an error, tool calls, `[DONE]`, an escaped or repeated key, a value of
    /// another type): read it with `event`. About a fifth of serde's cost on a content chunk.
    /// With where the chunk's `,"usage":null` is, known when it was read against the
    /// stream's last plain chunk (module `template`).
    pub fn plain_text_len(&mut self, data: &[u8]) -> Option<(usize, NullUsage)> {
        // The same chunk as the last one around other text: nothing else to move.
        if let Some(f) = self.template.fit(data) {
            return Some((f.text_len(), NullUsage::Known(f.null_usage)));
        }
        let mut c = Cursor::new(data);
        let (mut seen, mut id_set, mut has_choice, mut len) = (0u8, false, false, 0);
        let (mut text, mut pad) = (None, None);
        scan::members(&mut c, |c, key| match key {
            b"id" => {
                once(&mut seen, 1)?;
                id_set = c.opt_text()?.is_some_and(|t| !t.is_empty());
                Some(())
            }
            b"choices" => {
                once(&mut seen, 2)?;
                if c.null() {
                    return Some(());
                }
                choices(c, &mut has_choice, &mut len, &mut text)
            }
            b"usage" => once(&mut seen, 4).filter(|()| c.null()),
            // OpenAI's random padding, different in every chunk.
            b"obfuscation" if c.peek() == Some(b'"') => {
                let at = c.pos();
                c.literal()?;
                pad = Some((at + 1, c.pos() - 1));
                Some(())
            }
            b"error" => None,
            k if k.contains(&b'\\') => None,
            _ => c.skip_value(),
        })?;
        c.at_end().then_some(())?;
        self.started |= has_choice || id_set;
        if let Some(text) = text {
            self.template.keep(data, text, pad);
        }
        Some((len, NullUsage::Unknown))
    }

    fn choice<'a>(&mut self, ch: Choice<'a>, emit: &mut impl FnMut(Delta<'a>)) {
        if let Some(d) = ch.delta {
            if let Some(t) = string(d.reasoning_content).or_else(|| string(d.reasoning)) {
                emit(Delta::Reasoning(t));
            }
            if let Some(t) = string(d.content) {
                emit(Delta::Text(t));
            }
            for tc in d.tool_calls.into_iter().flatten() {
                self.tool_call(tc, emit);
            }
        }
        if let Some(r) = ch.finish_reason {
            emit(Delta::Finish(finish_reason(&r.0)));
        }
    }

    fn tool_call<'a>(&mut self, tc: ToolCallChunk<'a>, emit: &mut impl FnMut(Delta<'a>)) {
        let (name, args) = match tc.function {
            Some(f) => (f.name, f.arguments),
            None => (None, None),
        };
        let id = tc.id.and_then(JsonStr::from_raw);
        let index = match (tc.index, &id) {
            (Some(i), _) => i,
            // Servers that omit the index send each call whole, id first.
            (None, Some(_)) => self.tool_calls,
            (None, None) => self.tool_calls.saturating_sub(1),
        };
        if let Some(id) = id {
            self.tool_calls = self.tool_calls.max(index + 1);
            let name = name
                .and_then(JsonStr::from_raw)
                .unwrap_or(JsonStr::encode(""));
            emit(Delta::ToolCall { index, id, name });
        }
        if let Some(json) = string(args) {
            emit(Delta::ToolArgs { index, json });
        }
    }
}

/// Deltas → `chat.completion.chunk` events for an OpenAI client.
pub struct ChunkEncoder {
    /// `data: {"id":…,"model":…,"choices":[` (set at the start).
    head: Vec<u8>,
    model: String,
    created: u64,
    include_usage: bool,
    usage: Option<Usage>,
    ended: bool,
}

const CHOICE_HEAD: &[u8] = b"{\"index\":0,\"delta\":";
const NOT_FINISHED: &[u8] = b",\"logprobs\":null,\"finish_reason\":null}";

impl ChunkEncoder {
    /// `client_model` names the model in every chunk; `include_usage` is the client's
    /// `stream_options.include_usage`.
    pub fn new(client_model: &str, created: u64, include_usage: bool) -> ChunkEncoder {
        ChunkEncoder {
            head: Vec::new(),
            model: JsonStr::encode(client_model).literal().to_string(),
            created,
            include_usage,
            usage: None,
            ended: false,
        }
    }

    fn start(&mut self, upstream_id: &str) {
        let id = JsonStr::encode(&crate::formats::ids::chat(upstream_id));
        let mut h = String::with_capacity(128);
        let _ = write!(
            h,
            "data: {{\"id\":{},\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":{},\"choices\":[",
            id.literal(),
            self.created,
            self.model
        );
        self.head = h.into_bytes();
    }

    fn tail(&self) -> &'static [u8] {
        if self.include_usage {
            b"],\"usage\":null}\n\n"
        } else {
            b"]}\n\n"
        }
    }

    /// One chunk with a single choice whose delta is `parts` concatenated.
    fn chunk(&mut self, out: &mut BytesMut, parts: &[&[u8]], finish: &[u8]) {
        if self.head.is_empty() {
            self.start("");
        }
        out.extend_from_slice(&self.head);
        out.extend_from_slice(CHOICE_HEAD);
        for p in parts {
            out.extend_from_slice(p);
        }
        out.extend_from_slice(finish);
        out.extend_from_slice(self.tail());
    }

    pub fn write(&mut self, d: &Delta<'_>, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        match d {
            Delta::Start { id } => {
                self.start(id);
                self.chunk(
                    out,
                    &[b"{\"role\":\"assistant\",\"content\":\"\"}"],
                    NOT_FINISHED,
                );
            }
            Delta::Text(t) => self.delta(out, b"{\"content\":", t),
            Delta::Reasoning(t) => self.delta(out, b"{\"reasoning_content\":", t),
            // Signatures and encrypted reasoning mean nothing to an OpenAI client.
            Delta::ReasoningSignature(_) | Delta::RedactedReasoning(_) => {}
            Delta::ToolCall { index, id, name } => {
                let mut buf = itoa::Buffer::new();
                let parts: [&[u8]; 7] = [
                    b"{\"tool_calls\":[{\"index\":",
                    buf.format(*index).as_bytes(),
                    b",\"id\":",
                    id.literal().as_bytes(),
                    b",\"type\":\"function\",\"function\":{\"name\":",
                    name.literal().as_bytes(),
                    b",\"arguments\":\"\"}}]}",
                ];
                self.chunk(out, &parts, NOT_FINISHED);
            }
            Delta::ToolArgs { index, json } => {
                let mut buf = itoa::Buffer::new();
                let parts: [&[u8]; 5] = [
                    b"{\"tool_calls\":[{\"index\":",
                    buf.format(*index).as_bytes(),
                    b",\"function\":{\"arguments\":",
                    json.literal().as_bytes(),
                    b"}}]}",
                ];
                self.chunk(out, &parts, NOT_FINISHED);
            }
            Delta::Finish(r) => {
                let finish: &[u8] = match r {
                    FinishReason::Stop | FinishReason::StopSequence => {
                        b",\"logprobs\":null,\"finish_reason\":\"stop\"}"
                    }
                    FinishReason::Length => b",\"logprobs\":null,\"finish_reason\":\"length\"}",
                    FinishReason::ToolCalls => {
                        b",\"logprobs\":null,\"finish_reason\":\"tool_calls\"}"
                    }
                    FinishReason::ContentFilter => {
                        b",\"logprobs\":null,\"finish_reason\":\"content_filter\"}"
                    }
                };
                self.chunk(out, &[b"{}"], finish);
            }
            Delta::Usage(u) => self.usage = Some(*u),
            Delta::Error(e) => self.error(e, out),
            Delta::Done => self.done(out),
        }
    }

    fn delta(&mut self, out: &mut BytesMut, field: &[u8], t: &JsonStr<'_>) {
        self.chunk(out, &[field, t.literal().as_bytes(), b"}"], NOT_FINISHED);
    }

    fn done(&mut self, out: &mut BytesMut) {
        if let (true, Some(u)) = (self.include_usage, self.usage) {
            if self.head.is_empty() {
                self.start("");
            }
            out.extend_from_slice(&self.head);
            out.extend_from_slice(b"],\"usage\":");
            write_usage(&u, out);
            out.extend_from_slice(b"}\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.ended = true;
    }

    /// Writes the error event (and nothing after it).
    pub fn error(&mut self, e: &ApiError, out: &mut BytesMut) {
        if !self.ended {
            oai_error::event(e, out);
            self.ended = true;
        }
    }

    /// Whether the stream reached its end (done or an error event).
    pub fn ended(&self) -> bool {
        self.ended
    }
}

/// OpenAI's `usage` object for normalised usage.
pub fn write_usage(u: &Usage, out: &mut BytesMut) {
    let _ = write!(
        out,
        "{{\"prompt_tokens\":{},\"completion_tokens\":{},\"total_tokens\":{},\"prompt_tokens_details\":{{\"cached_tokens\":{},\"cache_write_tokens\":{}}},\"completion_tokens_details\":{{\"reasoning_tokens\":{}}}}}",
        u.input,
        u.output,
        u.total(),
        u.cached_input,
        u.cache_creation,
        u.reasoning
    );
}
