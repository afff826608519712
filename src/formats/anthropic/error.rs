//! Anthropic's error shape: `{"type":"error","error":{"type","message"}}`, in a body or as an
//! `event: error` in a stream.

use crate::error::{ApiError, ErrorKind};
use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Anthropic's `error.type` for a kind.
fn type_of(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest => "invalid_request_error",
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::Billing => "billing_error",
        ErrorKind::Permission => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::TooLarge => "request_too_large",
        ErrorKind::RateLimit => "rate_limit_error",
        ErrorKind::Server | ErrorKind::Unavailable => "api_error",
        ErrorKind::Timeout => "timeout_error",
        ErrorKind::Overloaded => "overloaded_error",
    }
}

fn kind_of(t: &str) -> Option<ErrorKind> {
    Some(match t {
        "invalid_request_error" => ErrorKind::InvalidRequest,
        "authentication_error" => ErrorKind::Authentication,
        "billing_error" => ErrorKind::Billing,
        "permission_error" => ErrorKind::Permission,
        "not_found_error" => ErrorKind::NotFound,
        "request_too_large" => ErrorKind::TooLarge,
        "rate_limit_error" => ErrorKind::RateLimit,
        "api_error" => ErrorKind::Server,
        "timeout_error" => ErrorKind::Timeout,
        "overloaded_error" => ErrorKind::Overloaded,
        _ => return None,
    })
}

/// The status an Anthropic client sees: Anthropic answers overload with 529.
pub fn status(e: &ApiError) -> u16 {
    if e.kind == ErrorKind::Overloaded {
        529
    } else {
        e.status
    }
}

#[derive(Serialize)]
struct Inner<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct Outer<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: Inner<'a>,
}

fn outer(e: &ApiError) -> Outer<'_> {
    Outer {
        kind: "error",
        error: Inner {
            kind: type_of(e.kind),
            message: &e.message,
        },
    }
}

/// The JSON error body.
pub fn body(e: &ApiError) -> Bytes {
    Bytes::from(serde_json::to_vec(&outer(e)).unwrap_or_default())
}

/// The error as an SSE `event: error`.
pub fn event(e: &ApiError, out: &mut BytesMut) {
    out.extend_from_slice(b"event: error\ndata: ");
    let _ = serde_json::to_writer(bytes::BufMut::writer(&mut *out), &outer(e));
    out.extend_from_slice(b"\n\n");
}

#[derive(Deserialize)]
struct WireOuter<'a> {
    #[serde(borrow)]
    error: WireInner<'a>,
}

#[derive(Deserialize)]
struct WireInner<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

/// Reads an Anthropic error (a reply body, or the data of an in-stream `error` event). Anthropic
/// statuses map onto OpenAI's: 529 (overloaded) becomes 503.
pub fn parse(status: u16, body: &[u8]) -> ApiError {
    let status = if status == 529 { 503 } else { status };
    let Ok(w) = serde_json::from_slice::<WireOuter<'_>>(body) else {
        return ApiError::new(
            status,
            ErrorKind::of_status(status),
            None,
            crate::formats::openai::error::fallback_message(status, body),
        );
    };
    let kind = w
        .error
        .kind
        .as_deref()
        .and_then(kind_of)
        .unwrap_or_else(|| ErrorKind::of_status(status));
    // An in-stream error arrives on a 200: give it the status its kind has.
    let status = if status < 400 {
        status_of(kind)
    } else {
        status
    };
    ApiError::new(
        status,
        kind,
        None,
        w.error
            .message
            .map(Cow::into_owned)
            .unwrap_or_else(|| format!("Upstream error {status}.")),
    )
}

fn status_of(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::InvalidRequest => 400,
        ErrorKind::Authentication => 401,
        ErrorKind::Billing => 402,
        ErrorKind::Permission => 403,
        ErrorKind::NotFound => 404,
        ErrorKind::TooLarge => 413,
        ErrorKind::RateLimit => 429,
        ErrorKind::Server => 500,
        ErrorKind::Timeout => 504,
        ErrorKind::Overloaded | ErrorKind::Unavailable => 503,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overloaded_maps_both_ways() {
        let e = parse(
            529,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!((e.status, e.kind), (503, ErrorKind::Overloaded));
        assert_eq!(e.message, "Overloaded");
        assert_eq!(status(&e), 529);
        let v: serde_json::Value = serde_json::from_slice(&body(&e)).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "overloaded_error");
    }

    #[test]
    fn in_stream_error_gets_a_status() {
        let e = parse(
            200,
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#,
        );
        assert_eq!((e.status, e.kind), (429, ErrorKind::RateLimit));
        let mut out = BytesMut::new();
        event(&e, &mut out);
        assert!(out.starts_with(b"event: error\ndata: {\"type\":\"error\""));
    }

    #[test]
    fn gateway_errors_render() {
        let v: serde_json::Value =
            serde_json::from_slice(&body(&ApiError::model_not_found("m"))).unwrap();
        assert_eq!(v["error"]["type"], "not_found_error");
    }
}
