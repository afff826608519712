//! The mock's AWS Bedrock runtime API: `POST /model/{modelId}/converse` (JSON),
//! `/converse-stream` (`application/vnd.amazon.eventstream` binary frames with valid CRCs, in
//! ConverseStream's event order) and `/invoke` for the Titan and Cohere embedding models.
//!
//! With `--aws-access-key-id` and `--aws-secret-access-key` it verifies each request's SigV4
//! signature as AWS does (`bedrock/sigv4.rs`) and answers 403 in Bedrock's shape when it does
//! not match; with `--expect-key` it also takes a Bedrock API key (`Authorization: Bearer`).
//! Errors are rest-json `{"message"}` with the type in `x-amzn-ErrorType`; a fault in a stream
//! (`x-mock-stream-error-after`) is a `throttlingException` frame.

mod reply;
mod sigv4;
mod thinking;

use super::{header_str, reply as words, send_events, send_json, Behaviour, MockSettings, Request};
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use pingora::protocols::http::ServerSession;
use serde_json::Value;

pub(super) async fn handle(
    s: &mut ServerSession,
    mut req: Request,
    b: &Behaviour,
    set: &MockSettings,
) -> bool {
    let rid = format!("{:016x}-mock", words::seed(&req.body));
    req.common.push(("x-amzn-requestid", rid));
    if let Err((kind, msg)) = authorized(s, &req.body, set) {
        return error(s, 403, kind, &msg, &req.common).await;
    }
    if let Some(code) = b.status.filter(|c| (300..=599).contains(c)) {
        return error(s, code, fault_type(code), "mock fault", &req.common).await;
    }
    let Some((model, method)) = route(&req.path) else {
        return error(
            s,
            404,
            "UnknownOperationException",
            "Not found",
            &req.common,
        )
        .await;
    };
    req.common.push(("x-mock-model", model.clone()));
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            let msg = "Malformed input request, please reformat your input and try again.";
            return error(s, 400, "ValidationException", msg, &req.common).await;
        }
    };
    match method.as_str() {
        "invoke" => embed(s, &body, &model, &req.common).await,
        "converse" | "converse-stream" => {
            if let Err(msg) = check(&body).and_then(|()| thinking::check(&body)) {
                return error(s, 400, "ValidationException", &msg, &req.common).await;
            }
            let r = reply::Reply::new(&body, &model, b);
            if method == "converse" {
                send_json(s, 200, &r.whole(), &req.common, b.drop_after, &[]).await
            } else {
                stream(s, &r, b, &req.common).await
            }
        }
        _ => {
            error(
                s,
                404,
                "UnknownOperationException",
                "Not found",
                &req.common,
            )
            .await
        }
    }
}

/// A SigV4 signature, or a Bedrock API key when one is expected.
fn authorized(s: &ServerSession, body: &[u8], set: &MockSettings) -> Result<(), sigv4::Refusal> {
    if let (Some(key), Some(auth)) = (&set.expect_key, header_str(s, "authorization")) {
        if auth.strip_prefix("Bearer ") == Some(key) {
            return Ok(());
        }
    }
    sigv4::verify(s, body, set)
}

/// `/model/{id}/{method}` with the id percent-decoded (`%3A` → `:`).
fn route(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/model/")?;
    let (id, method) = rest.rsplit_once('/')?;
    let mut out = Vec::with_capacity(id.len());
    let bytes = id.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| id.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(c) => {
                out.push(c);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    Some((String::from_utf8(out).ok()?, method.to_string()))
}

/// What Converse validates: a `messages` array of user/assistant turns with content blocks
/// (and Claude, the thinking in them: `thinking`).
fn check(body: &Value) -> Result<(), String> {
    let Some(msgs) = body["messages"].as_array().filter(|m| !m.is_empty()) else {
        return Err("1 validation error detected: Value at 'messages' failed to satisfy constraint: Member must not be null".into());
    };
    for m in msgs {
        if !matches!(m["role"].as_str(), Some("user" | "assistant")) {
            return Err("1 validation error detected: Value at 'messages.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]".into());
        }
        if m["content"].as_array().is_none_or(|c| c.is_empty()) {
            return Err("The content field in the Message object is empty. Add a ContentBlock object to the content field and try again.".into());
        }
    }
    let windows = msgs.windows(2);
    if windows.into_iter().any(|w| w[0]["role"] == w[1]["role"]) {
        return Err("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.".into());
    }
    Ok(())
}

fn fault_type(code: u16) -> &'static str {
    match code {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

/// Bedrock's error shape: `{"message"}` and the type in `x-amzn-ErrorType`.
async fn error(
    s: &mut ServerSession,
    status: u16,
    kind: &str,
    msg: &str,
    common: &[(&str, String)],
) -> bool {
    let t = format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/");
    let mut extra = vec![("x-amzn-errortype", t.as_str())];
    extra.extend(super::retry_after(status, common));
    send_json(s, status, &obj! {"message": msg}, common, None, &extra).await
}

/// One binary event-stream message.
fn frame(kind: &'static str, payload: Vec<u8>, exception: bool) -> Vec<u8> {
    let (type_header, message_type) = if exception {
        (":exception-type", "exception")
    } else {
        (":event-type", "event")
    };
    let m = Message::new(payload)
        .add_header(Header::new(type_header, HeaderValue::String(kind.into())))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String(message_type.into()),
        ));
    let mut out = Vec::new();
    // Writing to a Vec fails only on a header over the format's limits, which these are not.
    let _ = write_message_to(&m, &mut out);
    out
}

async fn stream(
    s: &mut ServerSession,
    r: &reply::Reply,
    b: &Behaviour,
    common: &[(&str, String)],
) -> bool {
    let frames: Vec<Vec<u8>> = r
        .events()
        .into_iter()
        .map(|(kind, payload)| {
            frame(
                kind,
                serde_json::to_vec(&payload).unwrap_or_default(),
                false,
            )
        })
        .collect();
    let msg = br#"{"message":"Too many requests, please wait before trying again."}"#.to_vec();
    let err = frame("throttlingException", msg, true);
    let ct = [("content-type", "application/vnd.amazon.eventstream")];
    send_events(s, frames, b, &err, common, &ct).await
}

/// Titan (`inputText` → `embedding`, `inputTextTokenCount`) and Cohere (`texts` →
/// `embeddings`) with vectors derived from the text.
async fn embed(
    s: &mut ServerSession,
    body: &Value,
    model: &str,
    common: &[(&str, String)],
) -> bool {
    if model.contains("titan-embed") {
        let Some(text) = body["inputText"].as_str() else {
            let msg = "Malformed input request: #: required key [inputText] not found";
            return error(s, 400, "ValidationException", msg, common).await;
        };
        let dims = body["dimensions"].as_u64().map_or(8, |d| d as usize);
        let v = words::embedding(text.as_bytes(), dims);
        let tokens = words::prompt_tokens(text.len(), 0);
        let out = obj! {"embedding": v, "inputTextTokenCount": tokens};
        return send_json(s, 200, &out, common, None, &[]).await;
    }
    if model.contains("cohere.embed") {
        let texts: Vec<&str> = (body["texts"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        if texts.is_empty() {
            let msg = "Malformed input request: #: required key [texts] not found";
            return error(s, 400, "ValidationException", msg, common).await;
        }
        let vectors: Vec<Vec<f32>> = texts
            .iter()
            .map(|t| words::embedding(t.as_bytes(), 8))
            .collect();
        let out = obj! {"embeddings": vectors, "id": "mock-embed", "response_type": "embeddings_floats", "texts": texts};
        return send_json(s, 200, &out, common, None, &[]).await;
    }
    let msg = "The provided model identifier is invalid.";
    error(s, 400, "ValidationException", msg, common).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_decode_the_model_id() {
        assert_eq!(
            route("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream"),
            Some((
                "anthropic.claude-3-haiku-20240307-v1:0".into(),
                "converse-stream".into()
            ))
        );
        assert_eq!(
            route("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ax%2Fy/converse").map(|r| r.0),
            Some("arn:aws:bedrock:us-east-1:1:x/y".into())
        );
        assert!(route("/v1/messages").is_none());
    }

    #[test]
    fn converse_checks() {
        let ok = serde_json::json!({"messages": [{"role": "user", "content": [{"text": "x"}]}]});
        assert!(check(&ok).is_ok());
        let twice = serde_json::json!({"messages": [
            {"role": "user", "content": [{"text": "x"}]}, {"role": "user", "content": [{"text": "y"}]}]});
        assert!(check(&twice).unwrap_err().contains("alternate"));
        assert!(check(&serde_json::json!({})).is_err());
    }
}
