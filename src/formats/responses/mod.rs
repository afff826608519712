//! OpenAI's Responses API (`/v1/responses`), OpenAI's second wire format: its usage, its typed
//! event stream (decoded for passthrough accounting), and translation through the chat pivot
//! for every backend without it (request, reply, event encoder). See the wire-formats reference §9.

pub mod count;
pub mod encode;
pub mod history;
mod input;
pub mod namespaces;
mod output;
pub mod reply;
pub mod request;
pub mod stored;
pub mod stream;

use super::{JsonStr, Usage};
use crate::error::{ApiError, ErrorKind};
use bytes::BytesMut;
use serde::Deserialize;

/// A failure after the stream began, as a Responses `error` event numbered `sequence`, flat as
/// OpenAI's spec has it (`ResponseErrorEvent`: `code`, `message`, `param`, `sequence_number`);
/// the `code` is one of the spec's [`response_error_code`]s.
pub fn error_event(e: &ApiError, sequence: u64, out: &mut BytesMut) {
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(b"event: error\ndata: {\"type\":\"error\",\"code\":\"");
    out.extend_from_slice(response_error_code(e).as_bytes());
    out.extend_from_slice(b"\",\"message\":");
    out.extend_from_slice(JsonStr::encode(&e.message).literal().as_bytes());
    out.extend_from_slice(b",\"param\":");
    match &e.param {
        Some(p) => out.extend_from_slice(JsonStr::encode(p).literal().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"sequence_number\":");
    out.extend_from_slice(n.format(sequence).as_bytes());
    out.extend_from_slice(b"}\n\n");
}

/// The codes OpenAI's spec allows in a Response's `error.code` (the `ResponseError` enum).
const RESPONSE_ERROR_CODES: [&str; 18] = [
    "server_error",
    "rate_limit_exceeded",
    "invalid_prompt",
    "vector_store_timeout",
    "invalid_image",
    "invalid_image_format",
    "invalid_base64_image",
    "invalid_image_url",
    "image_too_large",
    "image_too_small",
    "image_parse_error",
    "image_content_policy_violation",
    "invalid_image_mode",
    "image_file_too_large",
    "unsupported_image_media_type",
    "empty_image_file",
    "failed_to_download_image",
    "image_file_not_found",
];

/// `e`'s code in the spec's `ResponseError` enum: its own code when the enum has it, else the
/// nearest for its kind (strictly typed clients reject any other string).
pub fn response_error_code(e: &ApiError) -> &'static str {
    if let Some(c) = e.code.as_deref() {
        if let Some(known) = RESPONSE_ERROR_CODES.iter().find(|k| **k == c) {
            return known;
        }
    }
    match e.kind {
        ErrorKind::RateLimit | ErrorKind::Billing => "rate_limit_exceeded",
        ErrorKind::InvalidRequest | ErrorKind::TooLarge => "invalid_prompt",
        _ => "server_error",
    }
}

/// `usage` of a Response: `input_tokens` includes the cached ones, `output_tokens` the
/// reasoning ones (as in chat).
#[derive(Deserialize, Default)]
pub struct WireUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    pub output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize, Default)]
pub struct InputDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
    #[serde(default)]
    pub cache_write_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
pub struct OutputDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

impl WireUsage {
    pub fn normalise(&self) -> Usage {
        let i = self.input_tokens_details.as_ref();
        Usage {
            input: self.input_tokens,
            cached_input: i.and_then(|d| d.cached_tokens).unwrap_or(0),
            cache_creation: i.and_then(|d| d.cache_write_tokens).unwrap_or(0),
            output: self.output_tokens,
            reasoning: (self.output_tokens_details.as_ref())
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }
    }
}
