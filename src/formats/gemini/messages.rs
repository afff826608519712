//! OpenAI chat messages → Gemini `contents` and `systemInstruction`. Adjacent same-role
//! contents are merged (tool results and the user's next words share one user content).

use super::types::{Blob, Call, CallResult, FileRef, OutContent, OutPart};
use super::{wire, WHO};
use crate::error::ApiError;
use crate::formats::fields::{unsupported, Fields};
use crate::formats::ids;
use crate::formats::openai::types::{self as chat, Content, Part};
use crate::formats::pivot::media::data_url;
use crate::formats::pivot::messages::{
    assistant_text, call_arguments, text_only, tool_call_id, unknown_role,
};
use serde_json::{json, Value};
use std::borrow::Cow;

/// System text parts and the conversation.
pub(super) type Converted<'a> = (Vec<OutPart<'a>>, Vec<OutContent<'a>>);

/// System messages anywhere in the list join `systemInstruction`, in order.
pub(super) fn convert<'a>(
    msgs: &'a [chat::Message],
    f: &Fields,
) -> Result<Converted<'a>, ApiError> {
    let mut system = Vec::new();
    let mut contents: Vec<OutContent<'_>> = Vec::new();
    // tool_call id → function name, from the assistant turns so far (Gemini matches a
    // functionResponse to its call by name).
    let mut calls: Vec<(&str, &str)> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let p = ids::element("", "messages", i);
        // `thinking_blocks` (Claude's signed thinking, through the pivot) mean nothing to
        // Gemini, and earlier reasoning is not sent to it: left out, as the Anthropic front
        // leaves them out for OpenAI-style backends.
        f.unknown_except(&m.extra, &p, &["is_error", "thinking_blocks"])?;
        let (role, parts) = match m.role.as_str() {
            "system" | "developer" => {
                let text = text_only(m.content.as_ref(), &p)?;
                // Gemini rejects empty text parts.
                if !text.is_empty() {
                    system.push(OutPart::Text { text });
                }
                continue;
            }
            "user" => ("user", user_parts(m.content.as_ref(), &p, f)?),
            "assistant" => ("model", model_parts(m, &p, &mut calls, f)?),
            "tool" => ("user", vec![function_response(m, &p, &calls)?]),
            _ => return Err(unknown_role(&m.role, &p)),
        };
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some(c) if c.role == role => c.parts.extend(parts),
            _ => contents.push(OutContent { role, parts }),
        }
    }
    Ok((system, contents))
}

fn user_parts<'a>(
    content: Option<&'a Content>,
    p: &str,
    f: &Fields,
) -> Result<Vec<OutPart<'a>>, ApiError> {
    let parts = match content {
        None => return Ok(vec![]),
        Some(Content::Text(s)) if s.is_empty() => return Ok(vec![]),
        Some(Content::Text(s)) => {
            return Ok(vec![OutPart::Text {
                text: Cow::Borrowed(s),
            }])
        }
        Some(Content::Parts(parts)) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        if let Some(part) = user_part(part, &ids::element(p, "content", j), f)? {
            out.push(part);
        }
    }
    Ok(out)
}

fn user_part<'a>(part: &'a Part, p: &str, f: &Fields) -> Result<Option<OutPart<'a>>, ApiError> {
    f.unknown(&part.extra, p)?;
    let out = match (&*part.kind, &part.text, &part.image_url) {
        ("text", Some(t), _) if t.is_empty() => return Ok(None),
        ("text", Some(t), _) => OutPart::Text {
            text: Cow::Borrowed(t),
        },
        ("image_url", _, Some(img)) => {
            // `detail` has no per-part equivalent; like OpenAI's `auto`, Gemini picks.
            f.unknown(&img.extra, &format!("{p}.image_url"))?;
            image_part(&img.url, &format!("{p}.image_url.url"))?
        }
        ("file", _, _) if part.file.is_some() => file_part(part.file.as_ref(), p, f)?,
        ("input_audio", _, _) if part.input_audio.is_some() => {
            audio_part(part.input_audio.as_ref(), p)?
        }
        _ => {
            f.unsupported(format!("{p}.type"), &format!("is not supported {WHO}"))?;
            return Ok(None);
        }
    };
    Ok(Some(out))
}

/// A MIME type from a URL's file extension; JPEG when it has none Gemini knows (image
/// decoders read the bytes, the declared type only routes them).
fn image_mime(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "gif" => "image/gif",
        _ => "image/jpeg",
    }
}

/// An image URL: `data:` URLs inline, http(s) and `gs://` by reference (Gemini fetches them).
fn image_part<'a>(url: &'a str, p: &str) -> Result<OutPart<'a>, ApiError> {
    if url.starts_with("data:") {
        return match data_url(url) {
            Some(u) if u.media_type.starts_with("image/") => Ok(OutPart::InlineData {
                inline_data: Blob {
                    mime_type: Cow::Borrowed(u.media_type),
                    data: u.data,
                },
            }),
            _ => Err(unsupported(
                p.to_string(),
                "must be a base64 data URL of an image.",
            )),
        };
    }
    if ["https://", "http://", "gs://"]
        .iter()
        .any(|s| url.starts_with(s))
    {
        return Ok(OutPart::FileData {
            file_data: FileRef {
                mime_type: image_mime(url),
                file_uri: url,
            },
        });
    }
    Err(unsupported(
        p.to_string(),
        "must be an http(s) URL or a data URL.",
    ))
}

/// A `file` part: inline data of the type its data URL names. Uploaded files (`file_id`) live
/// in OpenAI's storage, which Gemini cannot read.
fn file_part<'a>(
    f: Option<&'a chat::FilePart>,
    p: &str,
    fields: &Fields,
) -> Result<OutPart<'a>, ApiError> {
    let Some(f) = f else {
        return Err(unsupported(format!("{p}.file"), "is missing."));
    };
    fields.unknown(&f.extra, &format!("{p}.file"))?;
    if f.file_id.is_some() {
        return Err(unsupported(
            format!("{p}.file.file_id"),
            &format!("is not supported {WHO} Send the file in `file_data`."),
        ));
    }
    match f.file_data.as_deref().and_then(data_url) {
        Some(u) if !u.media_type.is_empty() => Ok(OutPart::InlineData {
            inline_data: Blob {
                mime_type: Cow::Borrowed(u.media_type),
                data: u.data,
            },
        }),
        _ => Err(unsupported(
            format!("{p}.file.file_data"),
            "must be a base64 data URL.",
        )),
    }
}

/// `input_audio {data, format}` → inline WAV or MP3.
fn audio_part<'a>(a: Option<&'a Value>, p: &str) -> Result<OutPart<'a>, ApiError> {
    let a = a.unwrap_or(&Value::Null);
    let mime = match a["format"].as_str() {
        Some("wav") => "audio/wav",
        Some("mp3") => "audio/mp3",
        _ => {
            return Err(unsupported(
                format!("{p}.input_audio.format"),
                "must be wav or mp3.",
            ))
        }
    };
    let data = a["data"].as_str().ok_or_else(|| {
        ApiError::bad_request("`input_audio.data` must be base64 audio.")
            .with_param(format!("{p}.input_audio.data"))
    })?;
    Ok(OutPart::InlineData {
        inline_data: Blob {
            mime_type: Cow::Borrowed(mime),
            data,
        },
    })
}

/// An assistant message: its text, then a `functionCall` part per tool call (with the thought
/// signature its id carries).
fn model_parts<'a>(
    m: &'a chat::Message,
    p: &str,
    calls: &mut Vec<(&'a str, &'a str)>,
    f: &Fields,
) -> Result<Vec<OutPart<'a>>, ApiError> {
    let mut parts = Vec::new();
    let text = assistant_text(m, p)?;
    if !text.is_empty() {
        parts.push(OutPart::Text { text });
    }
    for (j, call) in m.tool_calls.iter().flatten().enumerate() {
        let q = format!("{p}.tool_calls[{j}]");
        f.unknown(&call.extra, &q)?;
        if call.kind.as_deref().is_some_and(|k| k != "function") {
            return Err(unsupported(format!("{q}.type"), "must be function."));
        }
        let args = call_arguments(call, &q)?;
        calls.push((&call.id, &call.function.name));
        parts.push(OutPart::FunctionCall {
            function_call: Call {
                name: &call.function.name,
                args,
            },
            thought_signature: wire::signature_of(&call.id),
        });
    }
    Ok(parts)
}

/// A tool message → `functionResponse {name, response}`: the content itself when it is a JSON
/// object, else `{"output": text}` (`response` must be an object).
fn function_response<'a>(
    m: &'a chat::Message,
    p: &str,
    calls: &[(&'a str, &'a str)],
) -> Result<OutPart<'a>, ApiError> {
    let id = tool_call_id(m, p)?;
    let name = calls
        .iter()
        .rev()
        .find(|(c, _)| *c == id)
        .map(|(_, n)| *n)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "`tool_call_id` `{id}` does not match a tool call of an earlier assistant message."
            ))
            .with_param(format!("{p}.tool_call_id"))
        })?;
    let text = text_only(m.content.as_ref(), p)?;
    // An Anthropic client's `is_error`, carried through the pivot: Gemini's convention for a
    // failed call is an `error` key.
    let response = match serde_json::from_str::<Value>(&text) {
        _ if m.extra.get("is_error") == Some(&json!(true)) => json!({ "error": text }),
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "output": text }),
    };
    Ok(OutPart::FunctionResponse {
        function_response: CallResult { name, response },
    })
}
