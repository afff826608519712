//! `/v1/messages/count_tokens` for backends that cannot count.

use super::types::{Block, Content, MessagesRequest};
use crate::error::ApiError;
use crate::formats::pivot::parse;
use serde_json::{json, Value};

/// Tokens an image or document is counted as.
const PER_IMAGE: u64 = 1600;

/// An estimate of a Messages request's input tokens for backends that cannot count:
///
/// `ceil(chars / 4) + 3 × messages + 3 + 1600 × (image and document blocks)`
///
/// where `chars` counts the characters of all text: the system prompt, message text,
/// tool_result text, each tool definition serialised as JSON, and each tool_use input as JSON.
/// Four characters a token is about what OpenAI- and Anthropic-style tokenisers give for
/// English; 3 per message covers the role markers. Thinking blocks from earlier turns are not
/// counted (Anthropic drops them from the context). An estimate, not a count.
pub fn estimate(body: &[u8]) -> Result<u64, ApiError> {
    let req: MessagesRequest = parse(body)?;
    let mut chars = 0u64;
    let mut fixed = 3u64;
    if let Some(s) = &req.system {
        content(s, &mut chars, &mut fixed);
    }
    for m in req.messages.iter().flatten() {
        fixed += 3;
        content(&m.content, &mut chars, &mut fixed);
    }
    for t in req.tools.iter().flatten() {
        let mut def = json!({"name": t.name, "input_schema": t.input_schema});
        if let Some(d) = &t.description {
            def["description"] = json!(d);
        }
        chars += json_chars(&def);
    }
    Ok(chars.div_ceil(4) + fixed)
}

/// Characters of a value serialised as compact JSON.
fn json_chars(v: &Value) -> u64 {
    v.to_string().chars().count() as u64
}

fn content(c: &Content, chars: &mut u64, fixed: &mut u64) {
    match c {
        Content::Text(s) => *chars += s.chars().count() as u64,
        Content::Blocks(blocks) => blocks.iter().for_each(|b| block(b, chars, fixed)),
    }
}

fn block(b: &Block, chars: &mut u64, fixed: &mut u64) {
    match b.kind.as_str() {
        "image" | "document" => *fixed += PER_IMAGE,
        _ => {
            if let Some(t) = &b.text {
                *chars += t.chars().count() as u64;
            }
            if let Some(i) = &b.input {
                *chars += json_chars(i);
            }
            if let Some(c) = &b.content {
                content(c, chars, fixed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_text_messages_and_images() {
        let body = br#"{"model":"m","system":"abcd","messages":[{"role":"user","content":[
            {"type":"text","text":"abcdefgh"},
            {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}]}"#;
        // 12 characters → 3 tokens; 3 per request + 3 per message; one image.
        assert_eq!(estimate(body).unwrap(), 3 + 3 + 3 + 1600);
        let e = estimate(b"{").unwrap_err();
        assert_eq!(e.code.as_deref(), Some("invalid_json"));
    }

    #[test]
    fn counts_tools_as_json_and_skips_thinking() {
        let body = br#"{"model":"m","tools":[{"name":"f","input_schema":{}}],"messages":[
            {"role":"assistant","content":[{"type":"thinking","thinking":"long thoughts","signature":"s"},
                {"type":"tool_use","id":"t","name":"f","input":{"a":1}}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[
                {"type":"text","text":"abcd"},
                {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA"}}]}]}]}"#;
        // Tool definition `{"input_schema":{},"name":"f"}` is 30 characters, the input
        // `{"a":1}` 7, the result 4: 41 → 11 tokens; 3 + 2 × 3 fixed; one image.
        assert_eq!(estimate(body).unwrap(), 11 + 3 + 6 + 1600);
    }
}
