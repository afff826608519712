//! A complete Converse reply, read: by `formats::scan`'s cursor when it is plain (text blocks
//! only), else by serde. serde's derive spent ~7.7k instructions on the load bench's reply
//! (each key through its visitor, unknown values through `ignored_any`). Whatever the cursor
//! does not read as serde would (a tool call or reasoning block, a key with an escape, a
//! repeated key, a value of another type, a null serde refuses) is left to serde, so errors
//! and edge cases stay serde's; values it skips are followed, not validated (as in
//! `anthropic/message.rs`).

use super::WireUsage;
use crate::formats::scan::{self, once, Cursor};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Reply {
    pub(super) output: Option<Output>,
    pub(super) stop_reason: Option<String>,
    #[serde(default)]
    pub(super) usage: WireUsage,
}

#[derive(Deserialize)]
pub(super) struct Output {
    pub(super) message: Option<Message>,
}

#[derive(Deserialize)]
pub(super) struct Message {
    #[serde(default)]
    pub(super) content: Vec<Block>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Block {
    pub(super) text: Option<String>,
    pub(super) tool_use: Option<ToolUse>,
    pub(super) reasoning_content: Option<Reasoning>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolUse {
    pub(super) tool_use_id: String,
    pub(super) name: String,
    #[serde(default)]
    pub(super) input: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Reasoning {
    pub(super) reasoning_text: Option<ReasoningText>,
    /// Encrypted reasoning (base64 in JSON).
    pub(super) redacted_content: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ReasoningText {
    #[serde(default)]
    pub(super) text: String,
    pub(super) signature: Option<String>,
}

/// The reply in `body`.
pub(super) fn read(body: &[u8]) -> serde_json::Result<Reply> {
    match reply(body) {
        Some(r) => Ok(r),
        None => serde_json::from_slice(body),
    }
}

/// The reply in `body`, or `None` to let serde read it.
pub(super) fn reply(body: &[u8]) -> Option<Reply> {
    let mut c = Cursor::new(body);
    let (mut output, mut stop_reason, mut usage, mut seen) = (None, None, None, 0u8);
    scan::members(&mut c, |c, key| match key {
        b"output" => {
            once(&mut seen, 1)?;
            output = nullable(c, out)?;
            Some(())
        }
        b"stopReason" => {
            once(&mut seen, 2)?;
            stop_reason = text(c)?;
            Some(())
        }
        b"usage" => {
            once(&mut seen, 4)?;
            usage = Some(wire_usage(c)?);
            Some(())
        }
        k if k.contains(&b'\\') => None,
        _ => c.skip_value(),
    })?;
    c.at_end().then_some(())?;
    Some(Reply {
        output,
        stop_reason,
        usage: usage.unwrap_or_default(),
    })
}

fn text(c: &mut Cursor<'_>) -> Option<Option<String>> {
    Some(c.opt_text()?.map(Cow::into_owned))
}

/// `null` (`None`), or what `read` makes of the value.
fn nullable<T>(c: &mut Cursor<'_>, read: fn(&mut Cursor<'_>) -> Option<T>) -> Option<Option<T>> {
    if c.null() {
        return Some(None);
    }
    read(c).map(Some)
}

fn out(c: &mut Cursor<'_>) -> Option<Output> {
    let (mut message, mut seen) = (None, 0u8);
    scan::members(c, |c, key| match key {
        b"message" => {
            once(&mut seen, 1)?;
            message = nullable(c, msg)?;
            Some(())
        }
        k if k.contains(&b'\\') => None,
        _ => c.skip_value(),
    })?;
    Some(Output { message })
}

fn msg(c: &mut Cursor<'_>) -> Option<Message> {
    let (mut content, mut seen) = (Vec::new(), 0u8);
    scan::members(c, |c, key| match key {
        b"content" => {
            once(&mut seen, 1)?;
            content = blocks(c)?;
            Some(())
        }
        k if k.contains(&b'\\') => None,
        _ => c.skip_value(),
    })?;
    Some(Message { content })
}

/// `content`: text blocks (any other kind: serde's).
fn blocks(c: &mut Cursor<'_>) -> Option<Vec<Block>> {
    let mut out = Vec::new();
    scan::elements(c, |c| {
        let (mut text_, mut seen) = (None, 0u8);
        scan::members(c, |c, key| match key {
            b"text" => {
                once(&mut seen, 1)?;
                text_ = text(c)?;
                Some(())
            }
            b"toolUse" | b"reasoningContent" => None,
            k if k.contains(&b'\\') => None,
            _ => c.skip_value(),
        })?;
        out.push(Block {
            text: text_,
            tool_use: None,
            reasoning_content: None,
        });
        Some(())
    })?;
    Some(out)
}

/// `usage`: whole numbers at the keys read (serde refuses a null for them).
fn wire_usage(c: &mut Cursor<'_>) -> Option<WireUsage> {
    let (mut u, mut seen) = (WireUsage::default(), 0u8);
    scan::members(c, |c, key| {
        let (bit, slot) = match key {
            b"inputTokens" => (1, &mut u.input_tokens),
            b"outputTokens" => (2, &mut u.output_tokens),
            b"cacheReadInputTokens" => (4, &mut u.cache_read_input_tokens),
            b"cacheWriteInputTokens" => (8, &mut u.cache_write_input_tokens),
            k if k.contains(&b'\\') => return None,
            _ => return c.skip_value(),
        };
        once(&mut seen, bit)?;
        *slot = c.uint()??;
        Some(())
    })?;
    Some(u)
}

#[cfg(test)]
#[path = "reply_tests.rs"]
mod tests;
