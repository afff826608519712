//! OpenAI's stored-response endpoints, as the mock keeps no responses: any id is "found".
//! `GET /v1/responses/{id}` (a completed response with that id), `DELETE` (deleted),
//! `POST …/cancel` (cancelled) and `GET …/input_items` (three user messages, paginated by
//! `limit`, `after` and `order` as OpenAI's list is); Azure's under `/openai/responses/`.

use super::send_json;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};

/// The reply for a stored-response path (`/{id}`, `/{id}/cancel`, `/{id}/input_items` under
/// the Responses path), or `None` for a path or method the API does not have.
pub(super) fn reply(rest: &str, method: &http::Method, query: Option<&str>) -> Option<Value> {
    let (id, op) = match rest.split_once('/') {
        Some((id, op)) => (id, op),
        None => (rest, ""),
    };
    if id.is_empty() {
        return None;
    }
    // Every field the spec's `Response` requires, as a created one has them.
    let response = |status: &str| {
        json!({"id": id, "object": "response", "created_at": 1_700_000_000u64, "status": status,
            "completed_at": (status == "completed").then_some(1_700_000_000u64),
            "error": null, "incomplete_details": null, "instructions": null,
            "max_output_tokens": null, "model": "mock",
            "output": [{"type": "message", "id": "msg_stored", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": "Stored.", "annotations": [],
                    "logprobs": []}]}],
            "parallel_tool_calls": true, "previous_response_id": null,
            "reasoning": {"effort": null, "summary": null}, "temperature": 1.0,
            "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [],
            "top_p": 1.0, "truncation": "disabled",
            "usage": {"input_tokens": 5,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": 1, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 6},
            "metadata": {}})
    };
    Some(match (method.as_str(), op) {
        ("GET", "") => response("completed"),
        ("DELETE", "") => json!({"id": id, "object": "response", "deleted": true}),
        ("POST", "cancel") => response("cancelled"),
        ("GET", "input_items") => input_items(query),
        _ => return None,
    })
}

/// A page of the stored input items `msg_in_1`..`msg_in_3` (newest first unless `order=asc`).
fn input_items(query: Option<&str>) -> Value {
    let param = |name| super::query_param(query, name);
    let limit = param("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(20usize);
    let mut ids: Vec<u32> = vec![3, 2, 1];
    if param("order") == Some("asc") {
        ids.reverse();
    }
    if let Some(after) = param("after") {
        let at = ids.iter().position(|n| format!("msg_in_{n}") == after);
        ids.drain(..at.map_or(ids.len(), |i| i + 1));
    }
    let has_more = ids.len() > limit;
    ids.truncate(limit);
    let data: Vec<Value> = ids
        .iter()
        .map(|n| {
            json!({"type": "message", "id": format!("msg_in_{n}"), "status": "completed",
                "role": "user", "content": [{"type": "input_text", "text": format!("Item {n}")}]})
        })
        .collect();
    json!({"object": "list", "first_id": data.first().map(|d| d["id"].clone()),
        "last_id": data.last().map(|d| d["id"].clone()), "has_more": has_more, "data": data})
}

pub(super) async fn handle(
    s: &mut ServerSession,
    rest: &str,
    method: &http::Method,
    query: Option<&str>,
    common: &[(&str, String)],
) -> bool {
    match reply(rest, method, query) {
        Some(v) => send_json(s, 200, &v, common, None, &[]).await,
        None => super::openai_error::error(s, 404, common).await,
    }
}
