//! `/v1/messages/count_tokens` for backends that cannot count.

use super::request::parse;
use super::types::{Block, Content, MessagesRequest};
use crate::error::ApiError;

/// Tokens an image or document is counted as.
const PER_IMAGE: u64 = 1600;

/// An estimate of a Messages request's input tokens: ceil(characters / 4) over all text
/// (system, message text, tool results, tool definitions and tool inputs as JSON), plus 3 per
/// message and 3 per request, plus 1,600 per image or document. About what OpenAI- and
/// Anthropic-style tokenisers give for English text; an estimate, not a count.
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
        chars += (t.name.len() + t.description.as_deref().map_or(0, str::len)) as u64;
        chars += t.input_schema.as_ref().map_or(0, |s| s.to_string().len()) as u64;
    }
    Ok(chars.div_ceil(4) + fixed)
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
            for t in [&b.text, &b.thinking].into_iter().flatten() {
                *chars += t.chars().count() as u64;
            }
            if let Some(i) = &b.input {
                *chars += i.to_string().len() as u64;
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
        assert!(estimate(b"{").is_err());
    }
}
