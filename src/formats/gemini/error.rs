//! Google's RPC error shape, `{"error":{"code","message","status","details"}}`, in a reply
//! body, inside a JSON array (what `streamGenerateContent` without `alt=sse` sends), or as a
//! stream event.

use crate::error::{ApiError, ErrorKind};
use crate::formats::openai::error::fallback_message;
use serde::Deserialize;
use std::borrow::Cow;

#[derive(Deserialize)]
struct WireOuter<'a> {
    #[serde(borrow)]
    error: WireInner<'a>,
}

#[derive(Deserialize)]
struct WireInner<'a> {
    #[serde(default)]
    code: Option<u16>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    details: Option<Vec<Detail<'a>>>,
}

#[derive(Deserialize)]
struct Detail<'a> {
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
}

/// The kind and HTTP status of a `google.rpc.Code` name.
fn of_status(s: &str) -> Option<(ErrorKind, u16)> {
    Some(match s {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => {
            (ErrorKind::InvalidRequest, 400)
        }
        "UNAUTHENTICATED" => (ErrorKind::Authentication, 401),
        "PERMISSION_DENIED" => (ErrorKind::Permission, 403),
        "NOT_FOUND" => (ErrorKind::NotFound, 404),
        "ALREADY_EXISTS" | "ABORTED" => (ErrorKind::InvalidRequest, 409),
        "RESOURCE_EXHAUSTED" => (ErrorKind::RateLimit, 429),
        "CANCELLED" => (ErrorKind::Server, 499),
        "UNAVAILABLE" => (ErrorKind::Overloaded, 503),
        "DEADLINE_EXCEEDED" => (ErrorKind::Timeout, 504),
        "INTERNAL" | "UNKNOWN" | "DATA_LOSS" | "UNIMPLEMENTED" => (ErrorKind::Server, 500),
        _ => return None,
    })
}

fn read(body: &[u8]) -> Option<WireOuter<'_>> {
    // Checked first: serde reads a struct from an array too (fields by position), which
    // would take `[{"error":…}]` for an error without fields.
    if body.trim_ascii_start().starts_with(b"[") {
        return serde_json::from_slice::<Vec<WireOuter<'_>>>(body)
            .ok()?
            .into_iter()
            .next();
    }
    serde_json::from_slice::<WireOuter<'_>>(body).ok()
}

/// Reads a Google error. The HTTP status wins when it is an error status; an in-stream error
/// (on a 200) takes the body's `code`, else its `status`'s. A bad API key is 400
/// `INVALID_ARGUMENT` at Google, but it is an authentication failure: 401, as OpenAI says it.
pub fn parse(status: u16, body: &[u8]) -> ApiError {
    let Some(w) = read(body) else {
        let status = if status < 400 { 502 } else { status };
        return ApiError::new(
            status,
            ErrorKind::of_status(status),
            None,
            fallback_message(status, body),
        );
    };
    let e = w.error;
    let named = e.status.as_deref().and_then(of_status);
    let status = if status >= 400 {
        status
    } else {
        e.code
            .filter(|c| (400..=599).contains(c))
            .or(named.map(|(_, s)| s))
            .unwrap_or(500)
    };
    let mut kind = named.map_or_else(|| ErrorKind::of_status(status), |(k, _)| k);
    let mut status = status;
    let key_invalid = e
        .details
        .iter()
        .flatten()
        .any(|d| d.reason.as_deref() == Some("API_KEY_INVALID"));
    let mut code = None;
    if key_invalid {
        (kind, status, code) = (ErrorKind::Authentication, 401, Some("invalid_api_key"));
    }
    ApiError::new(
        status,
        kind,
        code,
        e.message
            .filter(|m| !m.is_empty())
            .map(Cow::into_owned)
            .unwrap_or_else(|| format!("Upstream error {status}.")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map() {
        let e = parse(
            429,
            br#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#,
        );
        assert_eq!((e.status, e.kind), (429, ErrorKind::RateLimit));
        assert!(e.message.starts_with("Resource has been exhausted"));
        let e = parse(503, br#"{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}"#);
        assert_eq!(e.kind, ErrorKind::Overloaded);
        let e = parse(
            403,
            br#"{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Permission);
        let e = parse(
            401,
            br#"{"error":{"code":401,"message":"x","status":"UNAUTHENTICATED"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Authentication);
        let e = parse(
            400,
            br#"{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}"#,
        );
        assert_eq!((e.status, e.kind), (400, ErrorKind::InvalidRequest));
    }

    #[test]
    fn bad_api_key_is_authentication() {
        let body = br#"[{
  "error": {
    "code": 400,
    "message": "API key not valid. Please pass a valid API key.",
    "status": "INVALID_ARGUMENT",
    "details": [
      {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
       "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}},
      {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
       "message": "API key not valid. Please pass a valid API key."}
    ]
  }
}
]"#;
        let e = parse(400, body);
        assert_eq!((e.status, e.kind), (401, ErrorKind::Authentication));
        assert_eq!(e.code.as_deref(), Some("invalid_api_key"));
        assert_eq!(e.message, "API key not valid. Please pass a valid API key.");
    }

    #[test]
    fn in_stream_and_unreadable_errors() {
        let e = parse(
            200,
            br#"{"error":{"code":503,"message":"busy","status":"UNAVAILABLE"}}"#,
        );
        assert_eq!((e.status, e.kind), (503, ErrorKind::Overloaded));
        let e = parse(
            200,
            br#"{"error":{"message":"x","status":"DEADLINE_EXCEEDED"}}"#,
        );
        assert_eq!((e.status, e.kind), (504, ErrorKind::Timeout));
        let e = parse(502, b"<html>Bad Gateway</html>");
        assert_eq!(e.status, 502);
        assert!(e.message.contains("Bad Gateway"));
        let e = parse(404, b"[]");
        assert_eq!((e.status, e.kind), (404, ErrorKind::NotFound));
    }
}
