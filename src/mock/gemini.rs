//! The mock's Gemini API, on AI Studio's paths (`/v1beta/models/{m}:…`, `x-goog-api-key` or
//! `?key=`) and Vertex AI's (`/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:…`
//! and `/v1beta1/…`, bearer token): `generateContent`, `streamGenerateContent` (SSE with
//! `alt=sse`, CRLF framed, no `[DONE]`; else a streamed JSON array), `countTokens`,
//! `batchEmbedContents` and `embedContent` (AI Studio), `predict` (Vertex embeddings).
//!
//! It checks what Google checks, in its order: the key (a missing one is 403, a wrong one 400
//! `API_KEY_INVALID`, as Google answers), then the body (JSON, known fields, `contents` with
//! roles `user`/`model` and non-empty parts). Errors use Google's RPC shape; complete bodies
//! are pretty-printed and SSE data uses Google's `"key": value` spacing, as the real API writes
//! them. `check.rs` holds the body checks, `reply.rs` the replies, `frame.rs`
//! the layouts and stream framing, `embed.rs` the embeddings.

mod check;
mod embed;
mod frame;
mod reply;

use super::{header_str, raw, send_json, Behaviour, MockSettings, Obj, Request};
use pingora::protocols::http::ServerSession;
use serde::Serialize;
use serde_json::value::RawValue;

/// Where a request went: the model and method from the URL, and which API's path it was.
struct Route {
    model: String,
    method: String,
    /// A Vertex AI project path (bearer auth); otherwise AI Studio (or Vertex express mode,
    /// which takes an API key).
    vertex: bool,
}

impl Route {
    fn of(path: &str) -> Option<Route> {
        let (_, rest) = path.rsplit_once("/models/")?;
        let (model, method) = rest.rsplit_once(':')?;
        if model.is_empty() || model.contains('/') {
            return None;
        }
        Some(Route {
            model: model.to_string(),
            method: method.to_string(),
            vertex: path.contains("/projects/"),
        })
    }
}

/// Vertex AI's bearer token: one the mock's token endpoint issued and still live.
fn bearer_ok(s: &ServerSession, set: &MockSettings) -> bool {
    super::vertex::bearer_ok(s, set)
}

/// AI Studio's key check: `Err((status, message, reason))` as Google answers it.
fn api_key(s: &ServerSession, set: &MockSettings) -> Result<(), (u16, &'static str, bool)> {
    let Some(want) = set.expect_key.as_deref() else {
        return Ok(());
    };
    let got = header_str(s, "x-goog-api-key")
        .or_else(|| super::query_param(s.req_header().uri.query(), "key"));
    match got {
        Some(k) if k == want => Ok(()),
        Some(_) => Err((400, "API key not valid. Please pass a valid API key.", true)),
        None => Err((
            403,
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
            false,
        )),
    }
}

pub(super) async fn handle(
    s: &mut ServerSession,
    mut req: Request,
    b: &Behaviour,
    set: &MockSettings,
) -> bool {
    let Some(route) = Route::of(&req.path) else {
        return error(s, 404, "Method not found.", &req.common).await;
    };
    req.common.push(("x-mock-model", route.model.clone()));
    let common = &req.common;
    if route.vertex {
        if !bearer_ok(s, set) {
            let msg = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
            return error(s, 401, msg, common).await;
        }
    } else if let Err((status, msg, key_invalid)) = api_key(s, set) {
        return match key_invalid {
            true => send_pretty(s, status, &key_invalid_body(), common, None).await,
            false => error(s, status, msg, common).await,
        };
    }
    if let Some(code) = b.status.filter(|c| (300..=599).contains(c)) {
        return error(s, code, canned(code), common).await;
    }
    if req.method != http::Method::POST {
        return error(s, 404, "Method not found.", common).await;
    }
    let sse = super::query_param(s.req_header().uri.query(), "alt") == Some("sse");
    let out = match (route.method.as_str(), route.vertex) {
        ("generateContent", _) => check::generate(&req.body).map(|body| {
            let r = reply::Reply::new(&body, &route.model, route.vertex, b);
            Answer::Json(raw(&r.whole()))
        }),
        ("streamGenerateContent", _) => check::generate(&req.body).map(|body| {
            let r = reply::Reply::new(&body, &route.model, route.vertex, b);
            Answer::Stream(r.chunks())
        }),
        ("countTokens", _) => check::count(&req.body)
            .map(|body| Answer::Json(raw(&reply::count(&body, route.vertex)))),
        ("batchEmbedContents", false) => embed::batch(&req.body, &route.model).map(Answer::Json),
        ("embedContent", false) => embed::single(&req.body).map(Answer::Json),
        ("predict", true) => embed::predict(&req.body).map(Answer::Json),
        _ => return error(s, 404, "Method not found.", common).await,
    };
    match out {
        Err(msg) => error(s, 400, &msg, common).await,
        Ok(Answer::Json(v)) => send_pretty(s, 200, &v, common, b.drop_after).await,
        Ok(Answer::Stream(chunks)) => frame::stream(s, &chunks, sse, b, common).await,
    }
}

enum Answer {
    Json(Box<RawValue>),
    /// The chunks of a stream, each a complete `GenerateContentResponse`.
    Stream(Vec<Obj>),
}

/// A JSON reply pretty-printed, as Google's REST front ends write them.
async fn send_pretty(
    s: &mut ServerSession,
    status: u16,
    v: &impl Serialize,
    common: &[(&str, String)],
    drop_after: Option<usize>,
) -> bool {
    let pretty = String::from_utf8(frame::pretty(v)).unwrap_or_default();
    let body = RawValue::from_string(pretty).unwrap_or_else(|_| RawValue::NULL.to_owned());
    let ct = ("content-type", "application/json; charset=UTF-8");
    // A 429 says when to retry, as `send_error` does for every API.
    let mut extra = vec![ct];
    extra.extend(super::retry_after(status, common));
    send_json(s, status, &body, common, drop_after, &extra).await
}

/// The `google.rpc.Code` name of an HTTP status.
fn status_name(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// Google's message for a fault status (`x-mock-status`).
fn canned(status: u16) -> &'static str {
    match status {
        400 => "Request contains an invalid argument.",
        401 => "Request is missing required authentication credential.",
        403 => "The caller does not have permission",
        404 => "Requested entity was not found.",
        429 => "Resource has been exhausted (e.g. check quota).",
        503 => "The model is overloaded. Please try again later.",
        504 => "Deadline expired before operation could complete.",
        _ => "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    }
}

/// `{"error":{"code","message","status"}}`.
pub(super) fn error_body(status: u16, msg: &str) -> Obj {
    obj! {"error": obj! {"code": status, "message": msg, "status": status_name(status)}}
}

/// What Google answers for a wrong API key: 400 with reason `API_KEY_INVALID`.
fn key_invalid_body() -> Obj {
    let msg = "API key not valid. Please pass a valid API key.";
    let info = obj! {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
    "reason": "API_KEY_INVALID", "domain": "googleapis.com",
    "metadata": obj! {"service": "generativelanguage.googleapis.com"}};
    let localized = obj! {"@type": "type.googleapis.com/google.rpc.LocalizedMessage",
    "locale": "en-US", "message": msg};
    obj! {"error": obj! {"code": 400, "message": msg, "status": "INVALID_ARGUMENT",
    "details": [info, localized]}}
}

/// An error in Google's shape.
async fn error(s: &mut ServerSession, status: u16, msg: &str, common: &[(&str, String)]) -> bool {
    send_pretty(s, status, &error_body(status, msg), common, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = Route::of("/v1beta/models/gemini-2.5-flash:streamGenerateContent").unwrap();
        assert_eq!(
            (r.model.as_str(), r.method.as_str(), r.vertex),
            ("gemini-2.5-flash", "streamGenerateContent", false)
        );
        let r = Route::of("/v1/projects/p/locations/us-central1/publishers/google/models/text-embedding-005:predict").unwrap();
        assert_eq!(
            (r.model.as_str(), r.method.as_str(), r.vertex),
            ("text-embedding-005", "predict", true)
        );
        let r = Route::of("/v1beta1/publishers/google/models/m:generateContent").unwrap();
        assert!(!r.vertex);
        assert!(Route::of("/v1beta/models/:generateContent").is_none());
        assert!(Route::of("/v1beta/models/m").is_none());
        assert_eq!(
            crate::mock::query_param(Some("alt=sse&key=k"), "key"),
            Some("k")
        );
        assert_eq!(crate::mock::query_param(Some("alt=sse"), "key"), None);
        assert_eq!(status_name(429), "RESOURCE_EXHAUSTED");
    }
}
