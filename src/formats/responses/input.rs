//! Responses input items → chat messages: messages (text, images, files), function calls
//! (consecutive ones join one assistant message) and their outputs (tool messages). Reasoning
//! items are dropped: their `encrypted_content` only means something to OpenAI.

use super::namespaces::ToolNames;
use crate::error::ApiError;
use crate::formats::fields::unsupported;
use crate::formats::pivot::messages::unknown_role;
use serde_json::{json, Value};

/// Appends the chat messages for `items` to `out`; calls of namespaced tools take their flat
/// names from `names`.
pub(super) fn items(
    items: &[Value],
    names: &ToolNames,
    out: &mut Vec<Value>,
) -> Result<(), ApiError> {
    for (i, item) in items.iter().enumerate() {
        let p = format!("input[{i}]");
        let kind = match item["type"].as_str() {
            Some(k) => k,
            None if item.get("role").is_some() => "message",
            None => {
                return Err(ApiError::bad_request("An input item needs a `type`.")
                    .with_param(format!("{p}.type")))
            }
        };
        match kind {
            "message" => message(item, &p, out)?,
            "function_call" => function_call(item, &p, names, out)?,
            "function_call_output" => {
                let call_id = required_str(item, "call_id", &p)?;
                let content = tool_output(&item["output"], &format!("{p}.output"))?;
                out.push(json!({"role": "tool", "tool_call_id": call_id, "content": content}));
            }
            "reasoning" => {}
            "item_reference" => {
                return Err(unsupported(
                    format!("{p}.type"),
                    "refers to a stored item that was not resolved: send the item itself.",
                ))
            }
            _ => {
                return Err(unsupported(
                    format!("{p}.type"),
                    "is an input item this model's provider cannot take.",
                ))
            }
        }
    }
    Ok(())
}

fn required_str<'a>(item: &'a Value, key: &str, p: &str) -> Result<&'a str, ApiError> {
    item[key].as_str().ok_or_else(|| {
        ApiError::bad_request(format!("Missing required parameter: '{p}.{key}'."))
            .with_param(format!("{p}.{key}"))
    })
}

fn message(item: &Value, p: &str, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let role = item["role"].as_str().unwrap_or("");
    let content = &item["content"];
    let cp = format!("{p}.content");
    let msg = match role {
        // `developer` is the newer name for `system`; chat-only servers may not know it.
        "system" | "developer" => json!({"role": "system", "content": text_of(content, &cp)?}),
        "user" => match content {
            Value::String(s) => json!({"role": "user", "content": s}),
            Value::Array(parts) => {
                let mut out_parts = Vec::with_capacity(parts.len());
                for (j, part) in parts.iter().enumerate() {
                    out_parts.push(user_part(part, &format!("{cp}[{j}]"))?);
                }
                json!({"role": "user", "content": out_parts})
            }
            _ => return Err(bad_content(&cp)),
        },
        "assistant" => assistant(content, &cp)?,
        _ => return Err(unknown_role(role, p)),
    };
    out.push(msg);
    Ok(())
}

fn bad_content(p: &str) -> ApiError {
    ApiError::bad_request("`content` must be a string or a list of parts.")
        .with_param(p.to_string())
}

/// Text of a message that may only hold text: a string, or text parts joined by newlines.
fn text_of(content: &Value, p: &str) -> Result<String, ApiError> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut texts = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                match (part["type"].as_str(), part["text"].as_str()) {
                    (Some("input_text" | "output_text" | "text"), Some(t)) => texts.push(t),
                    _ => {
                        return Err(unsupported(
                            format!("{p}[{j}].type"),
                            "must be text here for this model's provider.",
                        ))
                    }
                }
            }
            Ok(texts.join("\n"))
        }
        _ => Err(bad_content(p)),
    }
}

fn user_part(part: &Value, p: &str) -> Result<Value, ApiError> {
    match part["type"].as_str() {
        Some("input_text") => {
            Ok(json!({"type": "text", "text": part["text"].as_str().unwrap_or("")}))
        }
        Some("input_image") => {
            let Some(url) = part["image_url"].as_str() else {
                return Err(unsupported(
                    format!("{p}.file_id"),
                    "refers to a file stored by OpenAI; send the image as `image_url` (a URL or a data: URL) for this model's provider.",
                ));
            };
            let mut image = json!({"url": url});
            if let Some(d @ ("low" | "high" | "auto")) = part["detail"].as_str() {
                image["detail"] = json!(d);
            }
            Ok(json!({"type": "image_url", "image_url": image}))
        }
        Some("input_file") => {
            if !part["file_url"].is_null() {
                return Err(unsupported(
                    format!("{p}.file_url"),
                    "cannot be fetched for this model's provider; send `file_data` instead.",
                ));
            }
            let mut file = json!({});
            for k in ["file_data", "file_id", "filename"] {
                if !part[k].is_null() {
                    file[k] = part[k].clone();
                }
            }
            Ok(json!({"type": "file", "file": file}))
        }
        _ => Err(unsupported(
            format!("{p}.type"),
            "is a content part this model's provider cannot take.",
        )),
    }
}

/// An assistant message from history: its text (and refusal) as one chat message.
fn assistant(content: &Value, p: &str) -> Result<Value, ApiError> {
    let mut text = String::new();
    let mut refusal = None;
    match content {
        Value::String(s) => text.push_str(s),
        Value::Array(parts) => {
            for (j, part) in parts.iter().enumerate() {
                match part["type"].as_str() {
                    Some("output_text" | "input_text") => {
                        text.push_str(part["text"].as_str().unwrap_or(""))
                    }
                    Some("refusal") => refusal = part["refusal"].as_str(),
                    _ => {
                        return Err(unsupported(
                            format!("{p}[{j}].type"),
                            "must be output_text or refusal in an assistant message.",
                        ))
                    }
                }
            }
        }
        _ => return Err(bad_content(p)),
    }
    let mut msg = json!({"role": "assistant", "content": text});
    if let Some(r) = refusal {
        msg["refusal"] = json!(r);
    }
    Ok(msg)
}

/// A function call joins the assistant message right before it (text or other calls), as chat
/// puts a turn's calls in one message.
fn function_call(
    item: &Value,
    p: &str,
    names: &ToolNames,
    out: &mut Vec<Value>,
) -> Result<(), ApiError> {
    let name = required_str(item, "name", p)?;
    let name = match item["namespace"].as_str() {
        Some(ns) => names.flat(ns, name),
        None => name.to_string(),
    };
    let call = json!({
        "id": required_str(item, "call_id", p)?,
        "type": "function",
        "function": {
            "name": name,
            "arguments": required_str(item, "arguments", p)?,
        },
    });
    match out.last_mut() {
        Some(m) if m["role"] == "assistant" => {
            if m["content"] == "" {
                m["content"] = Value::Null;
            }
            match m["tool_calls"].as_array_mut() {
                Some(calls) => calls.push(call),
                None => m["tool_calls"] = json!([call]),
            }
        }
        _ => out.push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
    }
    Ok(())
}

/// A function call's output: a string, or text parts (joined by newlines).
fn tool_output(output: &Value, p: &str) -> Result<String, ApiError> {
    match output {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        _ => text_of(output, p),
    }
}
