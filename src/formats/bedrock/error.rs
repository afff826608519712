//! Bedrock's errors: rest-json bodies `{"message": "…"}` (the type in the `x-amzn-ErrorType`
//! header, or `__type`/`code` in the body) and, inside a ConverseStream, exception frames
//! whose `:exception-type` names the error.

use crate::error::{ApiError, ErrorKind};
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct Wire {
    #[serde(alias = "Message")]
    message: Option<String>,
    #[serde(rename = "__type", alias = "code")]
    kind: Option<String>,
}

/// Reads a Bedrock error reply. The status decides the kind (Bedrock's table maps one to one:
/// 400 validation, 403 access denied or a bad signature, 429 throttling, 424 a model error).
pub fn parse(status: u16, body: &[u8]) -> ApiError {
    let w: Wire = serde_json::from_slice(body).unwrap_or_default();
    let status = if status < 400 { 502 } else { status };
    let message = match (w.message, w.kind) {
        (Some(m), _) if !m.is_empty() => m,
        (_, Some(k)) => format!("The provider answered {status} ({k})."),
        _ => format!("The provider answered {status}."),
    };
    // A model's own failure (424) is the provider's fault, not the client's.
    let (status, kind) = match status {
        424 => (502, ErrorKind::Server),
        s => (s, ErrorKind::of_status(s)),
    };
    ApiError::new(status, kind, None, message)
}

/// An exception frame of a ConverseStream (`:exception-type`, payload `{"message": …}`).
pub fn exception(kind: &str, payload: &[u8]) -> ApiError {
    let status = match kind {
        "throttlingException" | "ModelNotReadyException" => 429,
        "validationException" => 400,
        "serviceUnavailableException" => 503,
        "modelTimeoutException" => 504,
        "accessDeniedException" => 403,
        _ => 500,
    };
    let w: Wire = serde_json::from_slice(payload).unwrap_or_default();
    let message = w
        .message
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("The provider's stream failed ({kind})."));
    ApiError::new(status, ErrorKind::of_status(status), None, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_messages() {
        let e = parse(
            403,
            br#"{"message":"The request signature we calculated does not match"}"#,
        );
        assert_eq!((e.status, e.kind), (403, ErrorKind::Permission));
        assert!(e.message.contains("signature"));
        let e = parse(429, br#"{"message":"Too many requests"}"#);
        assert_eq!(e.kind, ErrorKind::RateLimit);
        let e = parse(424, br#"{"Message":"model failed"}"#);
        assert_eq!((e.status, e.message.as_str()), (502, "model failed"));
        let e = parse(400, b"<html>");
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
        let e = exception("throttlingException", br#"{"message":"slow down"}"#);
        assert_eq!((e.status, e.kind), (429, ErrorKind::RateLimit));
        let e = exception("modelStreamErrorException", b"");
        assert_eq!(e.status, 500);
        assert!(e.message.contains("modelStreamErrorException"));
    }
}
