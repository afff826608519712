//! The commonest Responses request read without serde, straight into the chat request a second
//! hop reads: a model, `instructions`, an `input` that is a string or messages of a user,
//! system or developer role with string content, the token cap, the sampling settings,
//! `stream` and `store`. The general path (`to_chat::to_pivot`) parses into a serde struct,
//! builds a chat object of JSON values and converts that to the chat request: ~11k
//! instructions on the load bench's 1 KiB request, most of what a Responses request costs over
//! a chat one. Anything else (another field or role, parts, a repeated or escaped key, a value
//! of another type, no message but system ones): `None`, and the general path reads it (and
//! names what is wrong with it).

use crate::formats::openai::types::{ChatRequest, Content, Extra, Message, StreamOptions};
use crate::formats::scan::{self, once, Cursor};
use crate::formats::{MaxTokensField, RequestOptions};
use std::borrow::Cow;

/// The chat request for `body`, when it has that shape: what `to_pivot(..).request()` makes
/// of it.
pub(crate) fn chat_request(body: &[u8], opts: &RequestOptions<'_>) -> Option<ChatRequest> {
    let mut c = Cursor::new(body);
    let (mut system, mut input, mut cap, mut seen) = (None, Vec::new(), None, 0u8);
    let mut r = ChatRequest::default();
    scan::members(&mut c, |c, key| {
        let bit = match key {
            b"model" => 1,
            b"instructions" => 2,
            b"input" => 4,
            b"max_output_tokens" => 8,
            b"temperature" => 16,
            b"top_p" => 32,
            b"stream" => 64,
            b"store" => 128,
            _ => return None,
        };
        once(&mut seen, bit)?;
        match key {
            // Replaced by the target's model; kept by the gateway whatever the target.
            b"model" => drop(c.opt_text()?),
            b"store" => drop(c.boolean()?),
            b"instructions" => system = c.opt_text()?.filter(|i| !i.is_empty()),
            b"input" => input = items(c)?,
            b"max_output_tokens" => cap = c.uint()?,
            b"temperature" => r.temperature = c.float()?,
            b"top_p" => r.top_p = c.float()?,
            _ => r.stream = c.boolean()?.filter(|s| *s),
        }
        Some(())
    })?;
    if !c.at_end() || !input.iter().any(|m| m.role != "system") {
        return None;
    }
    let mut messages = Vec::with_capacity(input.len() + 1);
    messages.extend(system.map(|s| message("system", s)));
    messages.append(&mut input);
    r.messages = Some(messages);
    r.model = Some(opts.model.to_string());
    match opts.max_tokens_field {
        MaxTokensField::MaxTokens => r.max_tokens = cap,
        MaxTokensField::MaxCompletionTokens => r.max_completion_tokens = cap,
    }
    if r.stream.is_some() {
        // As `Pivot::new` asks: Tollgate counts the stream's usage.
        r.stream_options = Some(StreamOptions {
            include_usage: Some(true),
            extra: Extra::new(),
        });
    }
    Some(r)
}

/// `input`: a string (one user message), `null`, or a list of messages.
fn items(c: &mut Cursor<'_>) -> Option<Vec<Message>> {
    if c.peek() == Some(b'"') || c.peek() == Some(b'n') {
        return Some(
            c.opt_text()?
                .map(|s| message("user", s))
                .into_iter()
                .collect(),
        );
    }
    let mut out = Vec::new();
    scan::elements(c, |c| item(c).map(|m| out.push(m)))?;
    Some(out)
}

/// A message item: a role, string content and at most `"type": "message"`.
fn item(c: &mut Cursor<'_>) -> Option<Message> {
    let (mut role, mut content, mut seen) = (None, None, 0u8);
    scan::members(c, |c, key| {
        match key {
            b"role" => {
                once(&mut seen, 1)?;
                role = match c.opt_text()??.as_ref() {
                    "user" => Some("user"),
                    // `developer` is the newer name for `system` (as `input::items` reads it).
                    "system" | "developer" => Some("system"),
                    _ => return None,
                };
            }
            b"content" => {
                once(&mut seen, 2)?;
                content = Some(c.opt_text()??);
            }
            b"type" => {
                once(&mut seen, 4)?;
                (c.opt_text()?? == "message").then_some(())?;
            }
            _ => return None,
        }
        Some(())
    })?;
    Some(message(role?, content?))
}

fn message(role: &str, content: Cow<'_, str>) -> Message {
    Message::plain(role.to_string(), Some(Content::Text(content.into_owned())))
}

#[cfg(test)]
#[path = "simple_tests.rs"]
mod tests;
