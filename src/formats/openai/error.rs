//! OpenAI's error shape: `{"error":{"message","type","param","code"}}` (all four keys present).

use crate::error::{ApiError, ErrorKind};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// OpenAI's `type` for a kind.
fn type_of(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::NotFound | ErrorKind::TooLarge => {
            "invalid_request_error"
        }
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::Billing => "insufficient_quota",
        ErrorKind::Permission => "permission_error",
        ErrorKind::RateLimit => "rate_limit_error",
        ErrorKind::Server | ErrorKind::Timeout => "server_error",
        ErrorKind::Overloaded | ErrorKind::Unavailable => "service_unavailable_error",
    }
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

#[derive(Serialize)]
struct Outer<'a> {
    error: Inner<'a>,
}

fn outer(e: &ApiError) -> Outer<'_> {
    let code = e.code.as_deref().or(match e.kind {
        ErrorKind::RateLimit => Some("rate_limit_exceeded"),
        ErrorKind::Overloaded => Some("server_is_overloaded"),
        _ => None,
    });
    Outer {
        error: Inner {
            message: &e.message,
            kind: type_of(e.kind),
            param: e.param.as_deref(),
            code,
        },
    }
}

/// The JSON error body.
pub fn body(e: &ApiError) -> Bytes {
    Bytes::from(serde_json::to_vec(&outer(e)).unwrap_or_default())
}

/// The error as an SSE event (`data: {"error":…}`), as the `openai` SDK expects mid-stream.
pub fn event(e: &ApiError, out: &mut bytes::BytesMut) {
    out.extend_from_slice(b"data: ");
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
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    param: Option<Cow<'a, str>>,
}

/// Reads an OpenAI-style error reply (also an in-stream `{"error":…}`). A body that is not in
/// the shape still gives an error of the status's kind.
pub fn parse(status: u16, body: &[u8]) -> ApiError {
    let mut kind = ErrorKind::of_status(status);
    let Ok(w) = serde_json::from_slice::<WireOuter<'_>>(body) else {
        return ApiError::new(status, kind, None, fallback_message(status, body));
    };
    let e = w.error;
    if status == 503 || e.code.as_deref() == Some("server_is_overloaded") {
        kind = ErrorKind::Overloaded;
    }
    if let (Some("insufficient_quota"), _) | (_, Some("insufficient_quota")) =
        (e.kind.as_deref(), e.code.as_deref())
    {
        kind = ErrorKind::Billing;
    }
    ApiError {
        status,
        kind,
        code: e.code.map(|c| Cow::Owned(c.into_owned())),
        param: e.param.map(|p| Cow::Owned(p.into_owned())),
        message: e
            .message
            .map(Cow::into_owned)
            .unwrap_or_else(|| fallback_message(status, body)),
    }
}

/// A message for an error body that is not in the expected shape: the start of the body if it
/// is text, else the status.
pub(crate) fn fallback_message(status: u16, body: &[u8]) -> String {
    match std::str::from_utf8(body) {
        Ok(s) if !s.trim().is_empty() => {
            let s = s.trim();
            let cut = s.char_indices().nth(200).map_or(s.len(), |(i, _)| i);
            format!("Upstream error {status}: {}", &s[..cut])
        }
        _ => format!("Upstream error {status}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_has_all_four_keys() {
        let v: serde_json::Value =
            serde_json::from_slice(&body(&ApiError::model_not_found("m"))).unwrap();
        let e = &v["error"];
        assert_eq!(e["type"], "invalid_request_error");
        assert_eq!(e["code"], "model_not_found");
        assert_eq!(e["param"], "model");
        assert!(e["message"].as_str().unwrap().contains("`m`"));
        let v: serde_json::Value = serde_json::from_slice(&body(&ApiError::internal())).unwrap();
        assert!(v["error"].as_object().unwrap().contains_key("param"));
        assert!(v["error"]["code"].is_null());
    }

    #[test]
    fn parses_provider_errors() {
        let e = parse(
            429,
            br#"{"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::RateLimit);
        assert_eq!(e.message, "slow down");
        assert_eq!(e.code.as_deref(), Some("rate_limit_exceeded"));
        let e = parse(503, b"<html>bad gateway</html>");
        assert_eq!(e.kind, ErrorKind::Overloaded);
        assert!(e.message.contains("bad gateway"));
        assert_eq!(parse(429, br#"{"error":{"message":"x","type":"insufficient_quota","code":"insufficient_quota"}}"#).kind, ErrorKind::Billing);
    }
}
