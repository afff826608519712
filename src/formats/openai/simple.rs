//! The commonest chat request read without serde: a model, messages of a role and a text, a
//! token cap, the sampling settings and `stream`. serde's derive spent 7.5k instructions on
//! the load bench's 1 KiB request (each key through its visitor, `flatten`'s buffer, a byte
//! loop over the prompt); this cursor reads it in a fraction of that. Any other field, a
//! repeated key, an escaped key, a value of another type, anything serde would refuse:
//! `None`, and serde reads the body (and names what is wrong with it).

use super::types::{ChatRequest, Content, Message};
use crate::formats::scan::{self, once, Cursor};
use std::borrow::Cow;

/// The request, when it has that shape.
pub(crate) fn chat(body: &[u8]) -> Option<ChatRequest> {
    let mut c = Cursor::new(body);
    let mut r = ChatRequest::default();
    let mut seen = 0u8;
    scan::members(&mut c, |c, key| {
        let bit = match key {
            b"model" => 1,
            b"messages" => 2,
            b"max_tokens" => 4,
            b"max_completion_tokens" => 8,
            b"temperature" => 16,
            b"top_p" => 32,
            b"stream" => 64,
            _ => return None,
        };
        once(&mut seen, bit)?;
        match key {
            b"model" => r.model = text(c)?,
            b"messages" => r.messages = messages(c)?,
            b"max_tokens" => r.max_tokens = c.uint()?,
            b"max_completion_tokens" => r.max_completion_tokens = c.uint()?,
            b"temperature" => r.temperature = c.float()?,
            b"top_p" => r.top_p = c.float()?,
            _ => r.stream = c.boolean()?,
        }
        Some(())
    })?;
    c.at_end().then_some(r)
}

fn text(c: &mut Cursor<'_>) -> Option<Option<String>> {
    Some(c.opt_text()?.map(Cow::into_owned))
}

fn messages(c: &mut Cursor<'_>) -> Option<Option<Vec<Message>>> {
    if c.null() {
        return Some(None);
    }
    let mut out = Vec::new();
    scan::elements(c, |c| message(c).map(|m| out.push(m)))?;
    Some(Some(out))
}

/// A message of a `role` and a string (or null, or absent) `content`, nothing else.
fn message(c: &mut Cursor<'_>) -> Option<Message> {
    let (mut role, mut content, mut seen) = (None, None, 0u8);
    scan::members(c, |c, key| {
        match key {
            b"role" => {
                once(&mut seen, 1)?;
                // A role is a string; a null one serde refuses.
                role = Some(c.opt_text()??.into_owned());
            }
            b"content" => {
                once(&mut seen, 2)?;
                content = text(c)?.map(Content::Text);
            }
            _ => return None,
        }
        Some(())
    })?;
    Some(Message::plain(role?, content))
}

#[cfg(test)]
#[path = "simple_tests.rs"]
mod tests;
