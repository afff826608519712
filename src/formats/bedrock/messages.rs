//! Chat messages → Converse `system` blocks and alternating `messages`. Bedrock wants turns
//! to alternate, so adjacent turns of one role are merged and every tool result of an assistant
//! turn goes into one user turn of `toolResult` blocks. Texts stay borrowed from the chat
//! request ([`Block::Text`]) until `write` puts them in the body: built as JSON values, each
//! was copied and each block a map of its own (the Converse request's building and writing
//! were ~10k instructions for a 1 KiB prompt, Anthropic's typed writer's ~4k).

use super::WHO;
use crate::error::ApiError;
use crate::formats::fields::{join, unsupported, Fields};
use crate::formats::ids;
use crate::formats::openai::types::{Content, Message, Part};
use crate::formats::pivot::media::data_url;
use crate::formats::pivot::messages::{call_arguments, tool_call_id};
use serde_json::{json, Map, Value};

/// Converse's prompt-cache checkpoint: the prompt up to here may be cached.
pub(super) fn cache_point() -> Value {
    json!({"cachePoint": {"type": "default"}})
}

/// A Converse content block.
pub(super) enum Block<'a> {
    /// `{"text": ...}`, borrowed from the chat request.
    Text(&'a str),
    /// `{"cachePoint": {"type": "default"}}`.
    CachePoint,
    /// `{kind: value}`: `reasoningContent`, `toolUse`, `toolResult`, `image`, `document`.
    Other(&'static str, Value),
}

impl Block<'_> {
    fn is(&self, kind: &str) -> bool {
        matches!(self, Block::Other(k, _) if *k == kind)
    }
}

/// One turn of `messages`.
pub(super) struct Turn<'a> {
    pub role: &'static str,
    pub content: Vec<Block<'a>>,
}

/// Whether a chat object carries `cache_control` (an Anthropic client's mark kept through the
/// pivot, or an OpenAI client's in LiteLLM's style): a cache point after it. Other unknown
/// fields go by the field policy, but for the extensions in `known` that the caller reads.
pub(super) fn cache_mark(
    extra: &Map<String, Value>,
    p: &str,
    f: &Fields,
    known: &[&str],
) -> Result<bool, ApiError> {
    let mut marked = false;
    for k in extra.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k) {
        if k == "cache_control" {
            marked = true;
        } else if !known.contains(&k.as_str()) {
            f.unknown_field(join(p, k))?;
        }
    }
    Ok(marked)
}

/// `(system blocks, messages, whether any tool use or result is in the history)`. System
/// messages anywhere in the list join the system prompt, in order.
pub(super) fn convert<'a>(
    msgs: &'a [Message],
    f: &Fields,
) -> Result<(Vec<Block<'a>>, Vec<Turn<'a>>, bool), ApiError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn<'a>> = Vec::new();
    let mut tools_seen = false;
    for (i, m) in msgs.iter().enumerate() {
        let p = ids::element("", "messages", i);
        let cached = cache_mark(&m.extra, &p, f, &["is_error", "thinking_blocks"])?;
        let (role, mut blocks) = match m.role.as_str() {
            "system" | "developer" => {
                system.extend(text_blocks(m.content.as_ref(), &p)?);
                if cached {
                    system.push(Block::CachePoint);
                }
                continue;
            }
            "user" => ("user", user_blocks(m.content.as_ref(), &p, f)?),
            "assistant" => {
                tools_seen |= m.tool_calls.as_ref().is_some_and(|c| !c.is_empty());
                ("assistant", assistant_blocks(m, &p, f)?)
            }
            "tool" => {
                tools_seen = true;
                (
                    "user",
                    vec![Block::Other("toolResult", tool_result(m, &p)?)],
                )
            }
            other => {
                return Err(unsupported(
                    format!("{p}.role"),
                    &format!("`{other}` is not a role {WHO}"),
                ))
            }
        };
        if blocks.is_empty() {
            continue;
        }
        if cached {
            blocks.push(Block::CachePoint);
        }
        match turns.last_mut() {
            Some(t) if t.role == role => t.content.extend(blocks),
            _ => turns.push(Turn {
                role,
                content: blocks,
            }),
        }
    }
    Ok((system, turns, tools_seen))
}

/// Text content as `{"text"}` blocks (system prompts and tool results).
fn text_blocks<'a>(c: Option<&'a Content>, p: &str) -> Result<Vec<Block<'a>>, ApiError> {
    match c {
        None => Ok(Vec::new()),
        Some(Content::Text(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Content::Text(s)) => Ok(vec![Block::Text(s)]),
        Some(Content::Parts(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| match (&*part.kind, &part.text) {
                ("text", Some(t)) => Ok(Block::Text(t)),
                _ => Err(unsupported(
                    format!("{p}.content[{j}].type"),
                    &format!("must be text here {WHO}"),
                )),
            })
            .collect(),
    }
}

fn user_blocks<'a>(
    c: Option<&'a Content>,
    p: &str,
    f: &Fields,
) -> Result<Vec<Block<'a>>, ApiError> {
    let Some(Content::Parts(parts)) = c else {
        return text_blocks(c, p);
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let pp = ids::element(p, "content", j);
        let cached = cache_mark(&part.extra, &pp, f, &[])?;
        out.push(user_part(part, &pp, f)?);
        if cached {
            out.push(Block::CachePoint);
        }
    }
    Ok(out)
}

fn user_part<'a>(part: &'a Part, p: &str, f: &Fields) -> Result<Block<'a>, ApiError> {
    match (&*part.kind, &part.text, &part.image_url) {
        ("text", Some(t), _) => Ok(Block::Text(t)),
        ("image_url", _, Some(img)) => {
            f.unknown(&img.extra, &format!("{p}.image_url"))?;
            let image = image(&img.url, &format!("{p}.image_url.url"))?;
            Ok(Block::Other("image", image))
        }
        ("file", _, _) => Ok(Block::Other("document", document(part, p)?)),
        _ => Err(unsupported(
            format!("{p}.type"),
            &format!("must be text, image_url or file {WHO}"),
        )),
    }
}

/// `data:` URLs only: Converse takes image bytes (or S3), never a URL.
fn image(url: &str, p: &str) -> Result<Value, ApiError> {
    let image = data_url(url).and_then(|u| {
        let format = match u.media_type {
            "image/png" => "png",
            "image/jpeg" | "image/jpg" => "jpeg",
            "image/gif" => "gif",
            "image/webp" => "webp",
            _ => return None,
        };
        Some((format, u.data))
    });
    match image {
        Some((format, data)) => Ok(json!({"format": format, "source": {"bytes": data}})),
        None => Err(unsupported(
            p.to_string(),
            &format!("must be a base64 data URL of a PNG, JPEG, GIF or WebP image {WHO}"),
        )),
    }
}

/// A PDF as a `document` block (Converse needs a name for it).
fn document(part: &Part, p: &str) -> Result<Value, ApiError> {
    let f = part.file.as_ref();
    let data = f
        .and_then(|f| f.file_data.as_deref())
        .and_then(data_url)
        .filter(|u| u.media_type == "application/pdf")
        .map(|u| u.data);
    match data {
        Some(data) => {
            let name = f.and_then(|f| f.filename.as_deref()).unwrap_or("document");
            // Converse allows letters, digits, spaces, hyphens, parentheses and brackets.
            let name: String = name
                .chars()
                .map(|c| {
                    if c.is_alphanumeric() || " -()[]".contains(c) {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            Ok(json!({"format": "pdf", "name": name, "source": {"bytes": data}}))
        }
        None => Err(unsupported(
            format!("{p}.file"),
            &format!("must hold a base64 PDF data URL {WHO}"),
        )),
    }
}

/// An assistant message: its reasoning first (Claude wants the turn to start with it), then its
/// text, then its tool uses.
fn assistant_blocks<'a>(m: &'a Message, p: &str, f: &Fields) -> Result<Vec<Block<'a>>, ApiError> {
    let mut out: Vec<Block<'a>> = reasoning_blocks(m.extra.get("thinking_blocks"), p, f)?;
    let text = text_blocks(m.content.as_ref(), p)?;
    if text.is_empty() {
        if let Some(r) = m.refusal.as_deref().filter(|r| !r.is_empty()) {
            out.push(Block::Text(r));
        }
    }
    out.extend(text);
    for (j, call) in m.tool_calls.iter().flatten().enumerate() {
        let q = format!("{p}.tool_calls[{j}]");
        f.unknown(&call.extra, &q)?;
        let input = call_arguments(call, &q)?;
        out.push(Block::Other(
            "toolUse",
            json!({"toolUseId": call.id, "name": call.function.name, "input": input}),
        ));
    }
    Ok(out)
}

/// A `tool` message → a `toolResult` block's value: JSON objects as `json`, anything else as
/// text.
fn tool_result(m: &Message, p: &str) -> Result<Value, ApiError> {
    let id = tool_call_id(m, p)?;
    let texts = text_blocks(m.content.as_ref(), p)?;
    let object = match texts.as_slice() {
        [Block::Text(one)] => serde_json::from_str::<Value>(one).ok(),
        _ => None,
    };
    let mut content: Vec<Value> = match object.filter(Value::is_object) {
        Some(obj) => vec![json!({ "json": obj })],
        None => (texts.iter())
            .filter_map(|b| match b {
                Block::Text(t) => Some(json!({ "text": t })),
                _ => None,
            })
            .collect(),
    };
    if content.is_empty() {
        content.push(json!({"text": ""}));
    }
    // An Anthropic client's `is_error`, carried through the pivot.
    let status = if m.extra.get("is_error") == Some(&json!(true)) {
        "error"
    } else {
        "success"
    };
    Ok(json!({"toolUseId": id, "content": content, "status": status}))
}

/// `thinking_blocks` (an Anthropic client's thinking, through the pivot; LiteLLM's extension
/// for chat clients) → `reasoningContent` blocks, in order. A `thinking` block without its
/// signature (one another provider produced) is left out: Claude verifies each thinking block
/// it is given back and refuses an unsigned one. Entries of another shape are named.
fn reasoning_blocks(
    list: Option<&Value>,
    p: &str,
    f: &Fields,
) -> Result<Vec<Block<'static>>, ApiError> {
    let Some(list) = list.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Some(list) = list.as_array() else {
        f.unknown_field(join(p, "thinking_blocks"))?;
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(list.len());
    for (k, b) in list.iter().enumerate() {
        match reasoning(b) {
            Some(Some(r)) => out.push(Block::Other("reasoningContent", r)),
            Some(None) => {}
            None => f.unknown_field(format!("{p}.thinking_blocks[{k}]"))?,
        }
    }
    Ok(out)
}

/// One thinking block as a `reasoningContent` block's value; `Some(None)`: one that cannot be sent
/// (unsigned or empty); `None`: not a thinking block.
fn reasoning(b: &Value) -> Option<Option<Value>> {
    let given = |k: &str| b[k].as_str().filter(|s| !s.is_empty());
    match b["type"].as_str()? {
        "thinking" => {
            let text = b["thinking"].as_str()?;
            Some(
                given("signature")
                    .map(|sig| json!({"reasoningText": {"text": text, "signature": sig}})),
            )
        }
        "redacted_thinking" => Some(given("data").map(|d| json!({"redactedContent": d}))),
        _ => None,
    }
}

/// Whether Claude takes this history with thinking on. A tool-use loop is one assistant turn
/// (Anthropic, "Extended thinking", thinking with tool use): while thinking is enabled, the
/// turn in progress, which runs from the last user message that is not (only) tool results,
/// must start with a thinking block once it has used a tool, or the request is refused
/// ("Expected `thinking` or `redacted_thinking`, but found `tool_use`"). Later assistant
/// messages of the turn need none (without interleaved thinking Claude thinks once per turn),
/// and finished turns need none (Claude strips their thinking).
pub(super) fn thinking_fits(messages: &[Turn]) -> bool {
    let start = messages
        .iter()
        .rposition(|m| m.role == "user" && !has_block(m, "toolResult"))
        .map_or(0, |i| i + 1);
    let mut turn = messages[start..]
        .iter()
        .filter(|m| m.role == "assistant")
        .peekable();
    let starts_thinking = turn
        .peek()
        .is_some_and(|m| m.content.first().is_some_and(|b| b.is("reasoningContent")));
    starts_thinking || !turn.any(|m| has_block(m, "toolUse"))
}

fn has_block(m: &Turn, kind: &str) -> bool {
    m.content.iter().any(|b| b.is(kind))
}

/// The history without `reasoningContent` blocks, for a request with thinking off (Claude
/// wants none in a turn without thinking, and ignores those of finished turns). A turn left
/// empty goes, and turns of one role that then meet are merged, as Bedrock wants them to
/// alternate.
pub(super) fn without_reasoning(messages: Vec<Turn>) -> Vec<Turn> {
    let mut out: Vec<Turn> = Vec::with_capacity(messages.len());
    for mut m in messages {
        m.content.retain(|b| !b.is("reasoningContent"));
        if m.content.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.role == m.role => last.content.extend(m.content),
            _ => out.push(m),
        }
    }
    out
}
