//! OpenAI's stored-response endpoints, as the mock keeps no responses: any id is "found".
//! `GET /v1/responses/{id}` (a completed response with that id), `DELETE` (deleted),
//! `POST …/cancel` (cancelled) and `GET …/input_items` (an empty list); Azure's under
//! `/openai/responses/`.

use super::send_json;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};

/// The reply for a stored-response path (`/{id}`, `/{id}/cancel`, `/{id}/input_items` under
/// the Responses path), or `None` for a path or method the API does not have.
pub(super) fn reply(rest: &str, method: &http::Method) -> Option<Value> {
    let (id, op) = match rest.split_once('/') {
        Some((id, op)) => (id, op),
        None => (rest, ""),
    };
    if id.is_empty() {
        return None;
    }
    let response = |status: &str| {
        json!({"id": id, "object": "response", "created_at": 1_700_000_000u64, "status": status,
            "model": "mock", "error": null, "incomplete_details": null,
            "output": [{"type": "message", "id": "msg_stored", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": "Stored.", "annotations": []}]}],
            "usage": {"input_tokens": 5, "output_tokens": 1, "total_tokens": 6}})
    };
    Some(match (method.as_str(), op) {
        ("GET", "") => response("completed"),
        ("DELETE", "") => json!({"id": id, "object": "response", "deleted": true}),
        ("POST", "cancel") => response("cancelled"),
        ("GET", "input_items") => {
            json!({"object": "list", "data": [], "first_id": null, "last_id": null, "has_more": false})
        }
        _ => return None,
    })
}

pub(super) async fn handle(
    s: &mut ServerSession,
    rest: &str,
    method: &http::Method,
    common: &[(&str, String)],
) -> bool {
    match reply(rest, method) {
        Some(v) => send_json(s, 200, &v, common, None, &[]).await,
        None => super::openai::error(s, 404, common).await,
    }
}
