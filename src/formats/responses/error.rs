//! Errors in the Responses API's terms: the stream's `error` event, and the codes its spec
//! allows in a Response's `error.code`.

use crate::error::{ApiError, ErrorKind};
use crate::formats::JsonStr;
use bytes::BytesMut;

/// A failure after the stream began, as a Responses `error` event numbered `sequence`, flat as
/// OpenAI's spec has it (`ResponseErrorEvent`: `code`, `message`, `param`, `sequence_number`);
/// the `code` is one of the spec's [`code`]s.
pub fn event(e: &ApiError, sequence: u64, out: &mut BytesMut) {
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(b"event: error\ndata: {\"type\":\"error\",\"code\":\"");
    out.extend_from_slice(code(e).as_bytes());
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
pub fn code(e: &ApiError) -> &'static str {
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
