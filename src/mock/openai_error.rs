//! OpenAI's error bodies as the mock sends them: a canned error per status, and 400s naming
//! the parameter at fault.

use pingora::protocols::http::ServerSession;

/// OpenAI's `(type, code, message)` for a status.
fn canned(status: u16) -> (&'static str, Option<&'static str>, &'static str) {
    match status {
        400 => (
            "invalid_request_error",
            Some("invalid_json"),
            "We could not parse the JSON body of your request.",
        ),
        401 => (
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided.",
        ),
        403 => (
            "request_forbidden",
            Some("unsupported_country_region_territory"),
            "Country, region, or territory not supported (mock).",
        ),
        404 => (
            "invalid_request_error",
            Some("unknown_url"),
            "Unknown request URL.",
        ),
        405 => ("invalid_request_error", None, "Method not allowed."),
        429 => (
            "requests",
            Some("rate_limit_exceeded"),
            "Rate limit reached for requests (mock).",
        ),
        503 => (
            "server_error",
            Some("server_is_overloaded"),
            "The server is overloaded (mock).",
        ),
        _ => (
            "server_error",
            None,
            "The server had an error while processing your request (mock).",
        ),
    }
}

/// The provider's error body for `status`, as OpenAI sends it.
pub(super) async fn error(s: &mut ServerSession, status: u16, common: &[(&str, String)]) -> bool {
    let (kind, code, msg) = canned(status);
    send_error(s, status, (kind, code, None, msg), common).await
}

/// A 400 naming the parameter at fault.
pub(super) async fn invalid(
    s: &mut ServerSession,
    param: &str,
    code: &str,
    msg: &str,
    common: &[(&str, String)],
) -> bool {
    let e = ("invalid_request_error", Some(code), Some(param), msg);
    send_error(s, 400, e, common).await
}

/// `(type, code, param, message)` in OpenAI's error body; 429 adds `retry-after`.
pub(super) async fn send_error(
    s: &mut ServerSession,
    status: u16,
    (kind, code, param, msg): (&str, Option<&str>, Option<&str>, &str),
    common: &[(&str, String)],
) -> bool {
    let v = obj! {"error": obj! {"message": msg, "type": kind, "param": param, "code": code}};
    super::send_error(s, status, &v, common).await
}
