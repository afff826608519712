//! A complete Message reply, read: by `formats::scan`'s cursor when the body is plain, else by
//! serde. serde's derive spent ~10k instructions on a 500-byte Message (each key through its
//! visitor, every unknown value through `ignored_any`); the cursor reads what the translators
//! use and skips the rest. Whenever it meets something it does not read the way serde would (a
//! key with an escape, a repeated key, a value of an unexpected type), it steps aside and serde
//! reads the body, so errors and edge cases stay serde's.

use super::stream::WireUsage;
use crate::formats::scan::{self, Cursor};
use crate::formats::Str;
use serde::Deserialize;
use serde_json::Value;

/// What a Message reply's blocks hold, borrowed from the upstream body where possible.
#[derive(Deserialize)]
pub(super) struct ReplyBlock<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Str<'a>,
    #[serde(borrow, default)]
    pub text: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub thinking: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    #[serde(default)]
    pub input: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct Message<'a> {
    #[serde(borrow, default)]
    pub id: Option<Str<'a>>,
    /// Required: a body without it is not a Message (an error body, say), not an empty reply.
    #[serde(borrow)]
    pub content: Vec<ReplyBlock<'a>>,
    #[serde(borrow, default)]
    pub stop_reason: Option<Str<'a>>,
    #[serde(default)]
    pub usage: WireUsage,
}

/// The Message in `body`.
pub(super) fn read(body: &[u8]) -> serde_json::Result<Message<'_>> {
    match scanned(body) {
        Some(m) => Ok(m),
        None => serde_json::from_slice(body),
    }
}

/// Sets a field met for the first time; `None` (serde's "duplicate field") the second time.
fn once<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    slot.is_none().then(|| *slot = Some(v))
}

fn text<'a>(c: &mut Cursor<'a>) -> Option<Option<Str<'a>>> {
    c.opt_text().map(|t| t.map(Str))
}

/// The Message read by the cursor, or `None` to let serde read it.
fn scanned(body: &[u8]) -> Option<Message<'_>> {
    let mut c = Cursor::new(body);
    let (mut id, mut content, mut stop, mut usage) = (None, None, None, None);
    scan::members(&mut c, |c, key| match key {
        b"id" => once(&mut id, text(c)?),
        b"content" => once(&mut content, blocks(c)?),
        b"stop_reason" => once(&mut stop, text(c)?),
        b"usage" => once(&mut usage, wire_usage(c)?),
        k if k.contains(&b'\\') => None,
        _ => c.skip_value(),
    })?;
    c.at_end().then_some(())?;
    Some(Message {
        id: id.flatten(),
        content: content?,
        stop_reason: stop.flatten(),
        usage: usage.unwrap_or_default(),
    })
}

/// `content`: an array of blocks, each an object.
fn blocks<'a>(c: &mut Cursor<'a>) -> Option<Vec<ReplyBlock<'a>>> {
    let mut out = Vec::new();
    scan::elements(c, |c| block(c).map(|b| out.push(b)))?;
    Some(out)
}

fn block<'a>(c: &mut Cursor<'a>) -> Option<ReplyBlock<'a>> {
    let (mut kind, mut text_, mut thinking, mut id, mut name, mut input) =
        (None, None, None, None, None, None);
    scan::members(c, |c, key| match key {
        b"type" => once(&mut kind, text(c)??),
        b"text" => once(&mut text_, text(c)?),
        b"thinking" => once(&mut thinking, text(c)?),
        b"id" => once(&mut id, text(c)?),
        b"name" => once(&mut name, text(c)?),
        b"input" => once(&mut input, serde_json::from_slice(c.raw_value()?).ok()?),
        k if k.contains(&b'\\') => None,
        _ => c.skip_value(),
    })?;
    Some(ReplyBlock {
        kind: kind?,
        text: text_.flatten(),
        thinking: thinking.flatten(),
        id: id.flatten(),
        name: name.flatten(),
        input: input.flatten(),
    })
}

/// `usage`: an object of whole numbers (or nulls) at the keys read.
fn wire_usage(c: &mut Cursor<'_>) -> Option<WireUsage> {
    let [input, output, written, read] = scan::integers_at(
        c,
        &[
            (b"", b"input_tokens"),
            (b"", b"output_tokens"),
            (b"", b"cache_creation_input_tokens"),
            (b"", b"cache_read_input_tokens"),
        ],
    )?;
    Some(WireUsage {
        input_tokens: input,
        output_tokens: output,
        cache_creation_input_tokens: written,
        cache_read_input_tokens: read,
    })
}

/// The cursor's reading, kept as serde's for comparison in tests.
#[cfg(test)]
fn seen(m: &Message<'_>) -> Value {
    let s = |v: &Option<Str<'_>>| v.as_ref().map(|s| s.0.to_string());
    let u = &m.usage;
    serde_json::json!({
        "id": s(&m.id), "stop": s(&m.stop_reason),
        "usage": [u.input_tokens, u.output_tokens, u.cache_creation_input_tokens,
                  u.cache_read_input_tokens],
        "content": m.content.iter().map(|b| serde_json::json!({
            "kind": b.kind.0, "text": s(&b.text), "thinking": s(&b.thinking), "id": s(&b.id),
            "name": s(&b.name), "input": b.input,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
