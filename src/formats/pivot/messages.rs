//! Reading chat messages: text that must be text, an assistant turn's text, tool calls'
//! arguments and tool messages' ids, and the refusals of a message list every reader shares.

use crate::error::ApiError;
use crate::formats::fields::unsupported;
use crate::formats::openai::types::{Content, Message, ToolCall};
use serde_json::{json, Value};
use std::borrow::Cow;

/// The text of a message that may only hold text (system, developer, tool).
pub(crate) fn text_only<'a>(
    content: Option<&'a Content>,
    p: &str,
) -> Result<Cow<'a, str>, ApiError> {
    match content {
        None => Ok(Cow::Borrowed("")),
        Some(Content::Text(s)) => Ok(Cow::Borrowed(s)),
        Some(Content::Parts(parts)) => {
            let mut s = Cow::Borrowed("");
            for (j, part) in parts.iter().enumerate() {
                match (&*part.kind, &part.text) {
                    ("text", Some(t)) if s.is_empty() => s = Cow::Borrowed(t),
                    ("text", Some(t)) => s.to_mut().push_str(t),
                    _ => {
                        return Err(unsupported(
                            format!("{p}.content[{j}].type"),
                            "must be text in this message.",
                        ))
                    }
                }
            }
            Ok(s)
        }
    }
}

/// An assistant message's text: its text and refusal parts, joined; or, when that is empty,
/// its `refusal` (a refused turn in history has only that; it is what the model said).
pub(crate) fn assistant_text<'a>(m: &'a Message, p: &str) -> Result<Cow<'a, str>, ApiError> {
    let text: Cow<'a, str> = match &m.content {
        None => Cow::Borrowed(""),
        Some(Content::Text(s)) => Cow::Borrowed(s),
        Some(Content::Parts(parts)) => {
            let mut s = String::new();
            for (j, part) in parts.iter().enumerate() {
                match (&*part.kind, part.text.as_ref().or(part.refusal.as_ref())) {
                    ("text" | "refusal", Some(t)) => s.push_str(t),
                    _ => {
                        return Err(unsupported(
                            format!("{p}.content[{j}].type"),
                            "must be text or refusal in an assistant message.",
                        ))
                    }
                }
            }
            Cow::Owned(s)
        }
    };
    Ok(match m.refusal.as_deref() {
        Some(r) if text.is_empty() => Cow::Borrowed(r),
        _ => text,
    })
}

/// Tool-call arguments as an object: "" means none.
pub(crate) fn arguments(s: &str) -> Option<Value> {
    if s.trim().is_empty() {
        return Some(json!({}));
    }
    serde_json::from_str::<Value>(s)
        .ok()
        .filter(Value::is_object)
}

/// A tool call's arguments as an object; `q` is the call's path (`messages[i].tool_calls[j]`).
pub(crate) fn call_arguments(call: &ToolCall, q: &str) -> Result<Value, ApiError> {
    arguments(&call.function.arguments).ok_or_else(|| {
        ApiError::bad_request("Tool call arguments must be a JSON object.")
            .with_param(format!("{q}.function.arguments"))
    })
}

/// A tool message's `tool_call_id`, which every target needs to pair the result with its call.
pub(crate) fn tool_call_id<'a>(m: &'a Message, p: &str) -> Result<&'a str, ApiError> {
    m.tool_call_id.as_deref().ok_or_else(|| {
        ApiError::bad_request("A tool message needs `tool_call_id`.")
            .with_param(format!("{p}.tool_call_id"))
    })
}

/// A message whose role the reader does not know (chat's, Anthropic's, Responses').
pub(crate) fn unknown_role(role: &str, p: &str) -> ApiError {
    ApiError::bad_request(format!("Unknown role `{role}`.")).with_param(format!("{p}.role"))
}

/// A request without messages.
pub(crate) fn no_messages() -> ApiError {
    ApiError::bad_request("`messages` must not be empty.").with_param("messages")
}

/// A request whose messages are all system text: the target needs a turn to answer.
pub(crate) fn no_turns() -> ApiError {
    ApiError::bad_request("`messages` needs at least one user, assistant or tool message.")
        .with_param("messages")
}
