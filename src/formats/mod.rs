//! Wire formats and translation between them. Each format has typed structs that keep unknown
//! fields, and pure functions to and from the pivot: OpenAI chat completions. A request from an
//! Anthropic client to an OpenAI-style backend goes Anthropic → chat; one from an OpenAI client
//! to Anthropic goes chat → Anthropic. N fronts and M formats need N + M translators. They
//! read the pivot through one toolkit (`pivot`: tools, tool choice, `data:` URLs, message
//! text, the errors they share), and a format's folder imports only this root, `pivot`,
//! `framing`, `openai` (the pivot's wire types) and its own folder (`tests/format_folders.rs`).
//!
//! Streams pivot on [`Delta`]: a format's stream decoder turns upstream events into deltas and
//! the client's encoder turns deltas into its own events (`crate::stream::Translator` joins
//! them). Deltas borrow JSON string literals straight from the upstream bytes, so text is never
//! unescaped and re-escaped on its way through.

pub mod anthropic;
pub mod bedrock;
pub mod fields;
pub mod framing;
pub mod gemini;
pub mod ids;
pub mod openai;
pub mod pivot;
pub mod responses;
pub mod scan;
pub mod strict;
#[cfg(test)]
pub(crate) mod test_support;
pub mod write;

use crate::error::ApiError;
use fields::{FieldPolicy, Fields};
use std::borrow::Cow;

/// A wire format: what a front speaks to clients and what a provider speaks upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenAI chat completions (and the rest of OpenAI's API, passed through).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// AWS Bedrock Converse (upstream only).
    Bedrock,
    /// Google Gemini, on AI Studio or Vertex AI (upstream only).
    Gemini,
    /// OpenAI Responses (`/v1/responses`); errors are OpenAI's.
    Responses,
}

/// Token usage in OpenAI's meaning: `input` includes cached and cache-creation tokens,
/// `output` includes reasoning tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub cached_input: u64,
    pub cache_creation: u64,
    pub output: u64,
    pub reasoning: u64,
}

impl Usage {
    /// Input tokens that were neither read from nor written to a prompt cache (Anthropic's
    /// `input_tokens`).
    pub fn uncached_input(&self) -> u64 {
        self.input
            .saturating_sub(self.cached_input.saturating_add(self.cache_creation))
    }

    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }
}

/// Why generation stopped, in the pivot's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    /// A client stop sequence matched (Anthropic says so; OpenAI reports plain `stop`).
    StopSequence,
    Length,
    ToolCalls,
    ContentFilter,
}

/// A JSON string literal exactly as it appears on the wire, quotes included (`"a\nb"`).
/// Both sides of every translation are JSON, so a literal is copied, never re-escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStr<'a>(Cow<'a, str>);

impl<'a> JsonStr<'a> {
    /// Wraps a raw JSON value if it is a string literal.
    pub fn from_raw(raw: &'a serde_json::value::RawValue) -> Option<JsonStr<'a>> {
        let s = raw.get();
        s.starts_with('"').then_some(JsonStr(Cow::Borrowed(s)))
    }

    /// Encodes a plain string as a literal (by `write::string`: serde_json's escapes, with
    /// runs that need none found sixteen bytes a step and copied whole, not checked byte by byte).
    pub fn encode(s: &str) -> JsonStr<'static> {
        let mut out = String::with_capacity(s.len() + 2);
        write::string(&mut out, s);
        JsonStr(Cow::Owned(out))
    }

    /// The literal, quotes included.
    pub fn literal(&self) -> &str {
        &self.0
    }

    /// Wraps text that is a whole string literal, quotes included (its caller knows).
    pub(crate) fn from_literal(literal: &'a str) -> JsonStr<'a> {
        JsonStr(Cow::Borrowed(literal))
    }

    /// Whether the literal is the empty string `""`.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 2
    }

    /// The decoded text (allocates only if the literal has escapes).
    pub fn decode(&self) -> Cow<'_, str> {
        let inner = &self.0[1..self.0.len().saturating_sub(1).max(1)];
        if inner.contains('\\') {
            Cow::Owned(serde_json::from_str(&self.0).unwrap_or_default())
        } else {
            Cow::Borrowed(inner)
        }
    }

    pub fn into_owned(self) -> JsonStr<'static> {
        JsonStr(Cow::Owned(self.0.into_owned()))
    }
}

/// A string borrowed from the input when it has no escapes. serde borrows a `Cow` field only
/// when it is the field's whole type; inside an `Option` it would allocate every time.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Str<'a>(#[serde(borrow)] pub Cow<'a, str>);

/// One step of a streamed reply, in the pivot's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta<'a> {
    /// The reply begins. `id` is the upstream's message id (plain text).
    Start {
        id: Cow<'a, str>,
    },
    Text(JsonStr<'a>),
    /// Reasoning ("thinking") text.
    Reasoning(JsonStr<'a>),
    /// The signature that closes a thinking block (Anthropic, Bedrock).
    ReasoningSignature(JsonStr<'a>),
    /// Reasoning the provider encrypted (Bedrock's `redactedContent`, base64): a block of its
    /// own, shown only to Anthropic clients (`redacted_thinking`), who send it back.
    RedactedReasoning(JsonStr<'a>),
    /// A tool call begins. `index` counts tool calls from 0 within the reply.
    ToolCall {
        index: u32,
        id: JsonStr<'a>,
        name: JsonStr<'a>,
    },
    /// A fragment of a tool call's JSON arguments.
    ToolArgs {
        index: u32,
        json: JsonStr<'a>,
    },
    Finish(FinishReason),
    /// Usage so far (each report replaces the previous one).
    Usage(Usage),
    /// The provider reported an error inside the stream.
    Error(Box<ApiError>),
    /// The upstream's stream ended properly.
    Done,
}

/// How to build an upstream request in another format.
#[derive(Debug, Clone)]
pub struct RequestOptions<'a> {
    /// The model name to send upstream (the target's override or the client's).
    pub model: &'a str,
    /// Anthropic: `max_tokens` to send when the client sets none.
    pub default_max_tokens: u32,
    /// OpenAI-style upstreams: which field carries the output cap.
    pub max_tokens_field: MaxTokensField,
    /// Anthropic clients' `cache_control` marks survive the pivot as chat `cache_control`
    /// fields, for a provider with prompt-cache points (Bedrock).
    pub cache_points: bool,
    /// What to do with fields the translation does not carry (the route's and key's policy).
    pub fields: FieldPolicy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxTokensField {
    /// OpenAI and Azure (`max_tokens` is rejected by reasoning models).
    MaxCompletionTokens,
    /// Most OpenAI-compatible servers.
    MaxTokens,
}

/// A request in the upstream's format, and what the reply must honour.
#[derive(Debug)]
pub struct Translated {
    pub body: Vec<u8>,
    /// The client asked for a stream.
    pub stream: bool,
    /// The client asked for a usage chunk at the end of an OpenAI stream.
    pub include_usage: bool,
    /// The client's fields the translation dropped (README "Field policy"), by name.
    pub dropped: Vec<String>,
    /// Responses clients' namespaced tools, flattened: how to name their calls in the reply.
    pub tool_names: Option<std::sync::Arc<responses::namespaces::ToolNames>>,
}

impl MaxTokensField {
    /// The chat request's field name.
    pub fn key(self) -> &'static str {
        match self {
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
            MaxTokensField::MaxTokens => "max_tokens",
        }
    }
}

impl Translated {
    /// A request built by a format's own translator (nothing dropped yet: the caller knows).
    pub(crate) fn new(body: Vec<u8>, stream: bool, include_usage: bool) -> Translated {
        Translated {
            body,
            stream,
            include_usage,
            dropped: Vec::new(),
            tool_names: None,
        }
    }
}

/// A chat (pivot) request built from another client API, not yet written: for an OpenAI
/// target it is written ([`Pivot::write`]); a second hop reads it as the chat request it is
/// ([`Pivot::request`]) instead of writing it and parsing the text back (~5k instructions a
/// request, the prompt escaped and unescaped once more).
pub(crate) struct Pivot {
    out: serde_json::Map<String, serde_json::Value>,
    stream: bool,
}

impl Pivot {
    /// Its stream always reports usage: Tollgate counts it, and the client's own API carries
    /// it whether or not it asked.
    pub(crate) fn new(mut out: serde_json::Map<String, serde_json::Value>, stream: bool) -> Pivot {
        if stream {
            out.insert("stream".into(), true.into());
            out.insert(
                "stream_options".into(),
                serde_json::json!({"include_usage": true}),
            );
        }
        Pivot { out, stream }
    }

    /// The chat request as an OpenAI target gets it.
    pub(crate) fn write(self) -> Result<Translated, ApiError> {
        let body = write::object_text(&self.out);
        Ok(Translated::new(body.into_bytes(), self.stream, false))
    }

    /// The chat request as the second hop reads it (what its text would parse to).
    pub(crate) fn request(self) -> Result<openai::types::ChatRequest, ApiError> {
        let out = serde_json::Value::Object(self.out);
        serde_json::from_value(out).map_err(|e| {
            ApiError::bad_request(format!("The request body is not valid for this API: {e}"))
        })
    }
}

/// A chat request (the client's, or a first hop's) → the target's request.
fn from_pivot(
    to: Format,
    req: openai::types::ChatRequest,
    opts: &RequestOptions<'_>,
    f: &Fields,
) -> Result<Translated, ApiError> {
    match to {
        Format::Anthropic => anthropic::request::from_chat(req, opts, f),
        Format::Bedrock => bedrock::request::from_chat(req, opts, f),
        Format::Gemini => gemini::request::from_chat(req, opts, f),
        _ => Err(ApiError::internal()),
    }
}

/// What a translated reply needs to know about the request.
#[derive(Debug, Clone, Copy)]
pub struct ReplyContext<'a> {
    /// The model name the client asked for; replies name it.
    pub client_model: &'a str,
    /// Unix seconds, for OpenAI's `created`.
    pub created: u64,
    /// A Responses client's namespaced tools, flattened for the target: calls are named back.
    pub tool_names: Option<&'a std::sync::Arc<responses::namespaces::ToolNames>>,
}

/// Translates a client's request body (`from`) into an upstream request (`to`), under the
/// field policy in `opts` (module `fields`): what it drops is named in `Translated::dropped`.
/// Anthropic and Responses clients reach the other formats through the pivot (two hops).
pub fn translate_request(
    from: Format,
    to: Format,
    body: &[u8],
    opts: &RequestOptions<'_>,
) -> Result<Translated, ApiError> {
    let f = Fields::new(opts.fields);
    let mut t = translate(from, to, body, opts, &f)?;
    t.dropped = f.take();
    Ok(t)
}

fn translate(
    from: Format,
    to: Format,
    body: &[u8],
    opts: &RequestOptions<'_>,
    f: &Fields,
) -> Result<Translated, ApiError> {
    match (from, to) {
        (Format::OpenAi, Format::Anthropic | Format::Bedrock | Format::Gemini) => {
            let req = openai::simple::chat(body).map_or_else(|| pivot::parse(body), Ok)?;
            from_pivot(to, req, opts, f)
        }
        (Format::Anthropic, Format::OpenAi) => anthropic::request::to_chat(body, opts, f, false),
        (Format::Anthropic, Format::Bedrock | Format::Gemini) => {
            let chat = anthropic::to_chat::to_pivot(body, opts, f, true)?;
            from_pivot(to, chat.request()?, opts, f)
        }
        (Format::Responses, Format::OpenAi) => responses::to_chat::to_chat(body, opts, f),
        (Format::Responses, Format::Anthropic | Format::Bedrock | Format::Gemini) => {
            if let Some(req) = responses::simple::chat_request(body, opts) {
                return from_pivot(to, req, opts, f)
                    .map_err(responses::to_chat::in_responses_terms);
            }
            let (chat, tool_names) = responses::to_chat::to_pivot(body, opts, f)?;
            let mut t = (chat.request())
                .and_then(|req| from_pivot(to, req, opts, f))
                .map_err(responses::to_chat::in_responses_terms)?;
            t.tool_names = tool_names;
            Ok(t)
        }
        _ => Err(ApiError::internal()),
    }
}

/// Translates a complete (non-streamed) upstream reply (`from`) into the client's format (`to`).
pub fn translate_response(
    from: Format,
    to: Format,
    body: &[u8],
    ctx: &ReplyContext<'_>,
) -> Result<(Vec<u8>, Usage), ApiError> {
    match (from, to) {
        (Format::Anthropic, Format::OpenAi) => anthropic::response::to_chat(body, ctx),
        (Format::OpenAi, Format::Anthropic) => anthropic::response::from_chat(body, ctx),
        (Format::Bedrock, Format::OpenAi) => bedrock::response::to_chat(body, ctx),
        (Format::Gemini, Format::OpenAi) => gemini::response::to_chat(body, ctx),
        (Format::Bedrock, Format::Anthropic) => {
            // The pivot carries the thinking's signature, which Anthropic clients send back.
            let (chat, usage) = bedrock::response::to_pivot(body, ctx)?;
            let (out, _) = anthropic::response::from_chat(&chat, ctx)?;
            Ok((out, usage))
        }
        (Format::Gemini, Format::Anthropic) => {
            let (chat, usage) = translate_response(from, Format::OpenAi, body, ctx)?;
            let (out, _) = anthropic::response::from_chat(&chat, ctx)?;
            Ok((out, usage))
        }
        (Format::OpenAi, Format::Responses) => responses::response::from_chat(body, ctx),
        (Format::Anthropic | Format::Bedrock, Format::Responses) => {
            reply_to_response(from, body, ctx).map(|(out, usage, _)| (out, usage))
        }
        (Format::Gemini, Format::Responses) => {
            let (chat, usage) = translate_response(from, Format::OpenAi, body, ctx)?;
            let (out, _) = responses::response::from_chat(&chat, ctx)?;
            Ok((out, usage))
        }
        _ => Err(ApiError::internal()),
    }
}

/// [`translate_response`] of a reply kept for a Responses client, with the ids it is kept
/// under when the translator wrote them (Anthropic's and Bedrock's replies), so they need not
/// be read back from the Response (~8k instructions a request).
pub fn translate_response_kept(
    from: Format,
    to: Format,
    body: &[u8],
    ctx: &ReplyContext<'_>,
) -> Result<(Vec<u8>, Usage, Option<responses::response::Ids>), ApiError> {
    match (from, to) {
        (Format::Anthropic | Format::Bedrock, Format::Responses) => {
            reply_to_response(from, body, ctx).map(|(out, usage, ids)| (out, usage, Some(ids)))
        }
        _ => translate_response(from, to, body, ctx).map(|(out, usage)| (out, usage, None)),
    }
}

/// An Anthropic or Bedrock reply → a Response, straight from the reply: no chat completion
/// written and read between.
fn reply_to_response(
    from: Format,
    body: &[u8],
    ctx: &ReplyContext<'_>,
) -> Result<(Vec<u8>, Usage, responses::response::Ids), ApiError> {
    let r = match from {
        Format::Anthropic => anthropic::response::reply(body)?,
        _ => bedrock::response::reply(body)?,
    };
    Ok(responses::response::from_reply(&r, ctx))
}

/// A complete reply in `from`'s API as the chat pivot, which the response cache replays
/// streams and other shapes from; `None` for the Responses API (no reply translation to chat)
/// and for a reply that cannot be read.
pub fn to_pivot(from: Format, body: &bytes::Bytes, ctx: &ReplyContext<'_>) -> Option<bytes::Bytes> {
    let out = match from {
        Format::OpenAi => return Some(body.clone()),
        Format::Bedrock => bedrock::response::to_pivot(body, ctx),
        Format::Anthropic | Format::Gemini => translate_response(from, Format::OpenAi, body, ctx),
        Format::Responses => return None,
    };
    out.ok().map(|(pivot, _)| pivot.into())
}

/// The usage in a complete reply that passed through in the client's API (OpenAI's or
/// Anthropic's); `None` when the body has none or cannot be read. Both APIs put `usage` after
/// the content, so the last `"usage":` key is found from the end and only its object is
/// read, by [`scan::integers`] (a quote inside a JSON string is escaped, so the pattern can
/// only be a key).
pub fn reply_usage(format: Format, body: &[u8]) -> Option<Usage> {
    let value = usage_value(body)?;
    match format {
        Format::OpenAi => five(
            value,
            &[
                (b"", b"prompt_tokens"),
                (b"prompt_tokens_details", b"cached_tokens"),
                (b"prompt_tokens_details", b"cache_write_tokens"),
                (b"", b"completion_tokens"),
                (b"completion_tokens_details", b"reasoning_tokens"),
            ],
        ),
        Format::Responses => five(
            value,
            &[
                (b"", b"input_tokens"),
                (b"input_tokens_details", b"cached_tokens"),
                (b"input_tokens_details", b"cache_write_tokens"),
                (b"", b"output_tokens"),
                (b"output_tokens_details", b"reasoning_tokens"),
            ],
        ),
        Format::Anthropic => {
            let [input, output, written, read] = scan::integers(
                value,
                &[
                    (b"", b"input_tokens"),
                    (b"", b"output_tokens"),
                    (b"", b"cache_creation_input_tokens"),
                    (b"", b"cache_read_input_tokens"),
                ],
            )?;
            // Its wire struct's rule: `input_tokens` there excludes cache reads and writes.
            let w = anthropic::stream::WireUsage {
                input_tokens: input,
                output_tokens: output,
                cache_creation_input_tokens: written,
                cache_read_input_tokens: read,
            };
            let mut u = Usage::default();
            w.apply(&mut u);
            Some(u)
        }
        _ => None,
    }
}

/// OpenAI's and the Responses API's usage: the same five counts (input, cached, written,
/// output, reasoning) under their own names, each 0 when absent.
fn five(value: &[u8], paths: &[scan::Path; 5]) -> Option<Usage> {
    let [input, cached_input, cache_creation, output, reasoning] =
        scan::integers(value, paths)?.map(|n| n.unwrap_or(0));
    Some(Usage {
        input,
        cached_input,
        cache_creation,
        output,
        reasoning,
    })
}

/// The bytes from the value of the last `"usage":` key on.
fn usage_value(body: &[u8]) -> Option<&[u8]> {
    let at = last_usage_key(body)?;
    let rest = body[at + USAGE_KEY.len()..].trim_ascii_start();
    rest.strip_prefix(b":").map(<[u8]>::trim_ascii_start)
}

const USAGE_KEY: &[u8] = b"\"usage\"";

/// Where the last `"usage"` starts. Found from each `u` back from the end (memchr's vector
/// search): the key sits near a reply's end, with few `u`s after it, where `memmem`'s reverse
/// search (Two-Way, one byte at a time) was ~1.2k instructions a reply.
fn last_usage_key(body: &[u8]) -> Option<usize> {
    memchr::memrchr_iter(b'u', body)
        .filter(|&i| i > 0)
        .map(|i| i - 1)
        .find(|&at| body[at..].starts_with(USAGE_KEY))
}

/// Reads a provider's error reply into a shape-neutral error.
pub fn parse_error(from: Format, status: u16, body: &[u8]) -> ApiError {
    match from {
        Format::OpenAi | Format::Responses => openai::error::parse(status, body),
        Format::Anthropic => anthropic::error::parse(status, body),
        Format::Bedrock => bedrock::error::parse(status, body),
        Format::Gemini => gemini::error::parse(status, body),
    }
}

/// Renders an error in a client's format: the status to send and the body.
pub fn render_error(to: Format, e: &ApiError) -> (u16, bytes::Bytes) {
    match to {
        Format::Anthropic => (anthropic::error::status(e), anthropic::error::body(e)),
        // Clients speak OpenAI's (chat or Responses) or Anthropic's API.
        _ => (e.status, openai::error::body(e)),
    }
}

/// Renders an error as the last event of a client's stream (`sequence`: a Responses event's
/// `sequence_number`; other formats have none).
pub fn render_error_event(to: Format, e: &ApiError, sequence: u64, out: &mut bytes::BytesMut) {
    match to {
        Format::Anthropic => anthropic::error::event(e, out),
        Format::Responses => responses::error::event(e, sequence, out),
        _ => openai::error::event(e, out),
    }
}

#[cfg(test)]
#[path = "pivot_hop_tests.rs"]
mod pivot_hop_tests;

#[cfg(test)]
mod usage_tests {
    use super::*;

    proptest::proptest! {
        /// The last `"usage"` is where `memmem`'s reverse search finds it, in any bytes.
        #[test]
        fn the_usage_key_is_found_where_memmem_finds_it(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b"\"usage\"".to_vec()),
                    proptest::strategy::Just(b"usage\"".to_vec()),
                    proptest::strategy::Just(b"\"usag".to_vec()),
                    proptest::strategy::Just(b"u".to_vec()),
                    proptest::strategy::Just(b"\"".to_vec()),
                    proptest::collection::vec(proptest::num::u8::ANY, 0..12),
                ],
                0..12,
            )
        ) {
            let body = parts.concat();
            proptest::prop_assert_eq!(
                last_usage_key(&body),
                memchr::memmem::rfind(&body, USAGE_KEY)
            );
        }
    }

    #[test]
    fn reply_usage_reads_the_last_usage_key() {
        let oai = br#"{"id":"c","choices":[{"message":{"content":"the \"usage\": {} text"}}],
            "usage" : {"prompt_tokens":9,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":3}}}"#;
        let u = reply_usage(Format::OpenAi, oai).unwrap();
        assert_eq!((u.input, u.cached_input, u.output), (9, 3, 2));
        let ant = br#"{"type":"message","content":[],"usage":{"input_tokens":5,"cache_read_input_tokens":4,"output_tokens":7}}"#;
        let u = reply_usage(Format::Anthropic, ant).unwrap();
        assert_eq!((u.input, u.cached_input, u.output), (9, 4, 7));
        let resp = br#"{"output":[],"usage": {
            "input_tokens": 30, "input_tokens_details": {"cached_tokens": 10},
            "output_tokens": 8, "output_tokens_details": {"reasoning_tokens": 5},
            "total_tokens": 38}}"#;
        let u = reply_usage(Format::Responses, resp).unwrap();
        assert_eq!(
            (u.input, u.cached_input, u.output, u.reasoning),
            (30, 10, 8, 5)
        );
        assert_eq!(
            reply_usage(Format::OpenAi, br#"{"usage":{"prompt_tokens":1.5}}"#),
            None
        );
        assert_eq!(reply_usage(Format::OpenAi, br#"{"id":"x"}"#), None);
        assert_eq!(reply_usage(Format::OpenAi, br#"{"usage":null}"#), None);
    }
}
