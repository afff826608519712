//! Responses state for translated routes, the pure part: what a request refers to
//! (`previous_response_id`, `item_reference` items, whether it is stored), and the request with
//! those replaced by the items they name, as OpenAI does before the model sees them: the earlier
//! response's input and output come first, then the new input (its `instructions` are not
//! carried over). The gateway fetches what is referred to from the response store.

use crate::error::{ApiError, ErrorKind};
use crate::formats::ids;
use crate::formats::scan::{self, Cursor};
use crate::formats::write;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// A Responses request as far as its state is concerned.
pub struct Stateful {
    form: Form,
}

enum Form {
    /// A string `input` and no `previous_response_id` (a one-shot request): read by
    /// `formats::scan` without building the body, the input's literal kept as written (serde's
    /// map of the body, the input's message built and written again were ~15% of such a
    /// request's instructions with a 1 KiB prompt).
    Text {
        literal: Box<str>,
        instructions: Option<String>,
        stored: bool,
    },
    /// Any other request: the whole body, to rewrite when it refers to history.
    Full {
        body: Map<String, Value>,
        /// The request's input as items (a string input is one user message).
        input: Vec<Value>,
    },
}

/// A request's input items, as kept with its response.
#[derive(Debug)]
pub enum Input {
    /// One user message: the request's `input` string, its JSON literal as the client wrote it.
    Text(Box<str>),
    Items(Vec<Value>),
}

/// The request after expansion.
pub struct Expanded {
    /// The body to translate: the whole history in `input`, no `previous_response_id`; `None`
    /// when the request referred to nothing (its own body is the one to translate, and writing
    /// it again was ~2.5% of a Responses request's CPU).
    pub body: Option<Vec<u8>>,
    /// Its input items, kept with the response (`input_items`, the next turn's history).
    pub input: Input,
    pub instructions: Option<String>,
}

impl Stateful {
    pub fn parse(body: &[u8]) -> Result<Stateful, ApiError> {
        let form = match text_form(body) {
            Some(form) => form,
            None => full_form(body)?,
        };
        Ok(Stateful { form })
    }

    /// The response whose history comes first.
    pub fn previous(&self) -> Option<&str> {
        match &self.form {
            Form::Text { .. } => None,
            Form::Full { body, .. } => body.get("previous_response_id")?.as_str(),
        }
    }

    /// The reply is to be kept: `store` omitted or true.
    pub fn stored(&self) -> bool {
        match &self.form {
            Form::Text { stored, .. } => *stored,
            Form::Full { body, .. } => !matches!(body.get("store"), Some(Value::Bool(false))),
        }
    }

    /// The ids of the `item_reference` items in the input.
    pub fn references(&self) -> Vec<&str> {
        let Form::Full { input, .. } = &self.form else {
            return Vec::new();
        };
        (input.iter())
            .filter(|i| i["type"] == "item_reference")
            .filter_map(|i| i["id"].as_str())
            .collect()
    }

    /// The request with `history` (the previous response's input then output items) before
    /// its input and each reference replaced by its item from `items`. A request of the text
    /// form refers to nothing, so it has no history.
    pub fn expand(
        self,
        history: Vec<Value>,
        items: &HashMap<String, Value>,
    ) -> Result<Expanded, ApiError> {
        let expands = self.previous().is_some() || !self.references().is_empty();
        let (mut body, new_input) = match self.form {
            Form::Full { body, input } => (body, input),
            Form::Text {
                literal,
                instructions,
                ..
            } => {
                return Ok(Expanded {
                    body: None,
                    input: Input::Text(literal),
                    instructions,
                })
            }
        };
        let mut input = history;
        input.reserve(new_input.len());
        for (i, item) in new_input.into_iter().enumerate() {
            if item["type"] != "item_reference" {
                input.push(item);
                continue;
            }
            let id = item["id"].as_str().unwrap_or_default();
            match items.get(id) {
                Some(found) => input.push(found.clone()),
                None => return Err(item_not_found(id, i)),
            }
        }
        let instructions = body.get("instructions").and_then(Value::as_str);
        let instructions = instructions.map(str::to_string);
        if !expands {
            return Ok(Expanded {
                body: None,
                input: Input::Items(input),
                instructions,
            });
        }
        body.remove("previous_response_id");
        body.insert("input".into(), Value::Array(input));
        let text = write::object_text(&body).into_bytes();
        let Some(Value::Array(input)) = body.remove("input") else {
            return Err(ApiError::internal());
        };
        Ok(Expanded {
            body: Some(text),
            input: Input::Items(input),
            instructions,
        })
    }
}

/// `body` read whole by serde.
fn full_form(body: &[u8]) -> Result<Form, ApiError> {
    let mut body: Map<String, Value> = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid_json(format!(
            "We could not parse the JSON body of your request: {e}"
        ))
    })?;
    let input = match body.remove("input") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![user_message(s)],
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(
                ApiError::bad_request("`input` must be a string or a list of items.")
                    .with_param("input"),
            )
        }
    };
    Ok(Form::Full { body, input })
}

/// The text form of `body` when it has one and the scan reads it as serde would; `None`
/// leaves the body to serde (which also says what is wrong with it).
fn text_form(body: &[u8]) -> Option<Form> {
    let mut c = Cursor::new(body);
    let (mut input, mut previous, mut store, mut instructions) = (None, None, None, None);
    // Whether a string input has an escape (until one is read, it may).
    let mut escaped = true;
    scan::members(&mut c, |c, key| {
        let slot = match key {
            b"input" if c.peek() == Some(b'"') => {
                let (literal, escape) = c.literal()?;
                (input, escaped) = (Some(literal), escape);
                return Some(());
            }
            b"input" => &mut input,
            b"previous_response_id" => &mut previous,
            b"store" => &mut store,
            b"instructions" => &mut instructions,
            k if k.contains(&b'\\') => return None,
            _ => return c.skip_value(),
        };
        // The last of a repeated key counts, as in serde's map of the body.
        *slot = Some(c.raw_value()?.trim_ascii_end());
        Some(())
    })?;
    c.at_end().then_some(())?;
    // A string `previous_response_id` refers to history (any other value is none).
    if previous.is_some_and(|p| p.starts_with(b"\"")) {
        return None;
    }
    let literal = string_literal(input?, escaped)?;
    let instructions = match instructions {
        Some(raw) if raw.starts_with(b"\"") => Some(serde_json::from_slice(raw).ok()?),
        _ => None,
    };
    Some(Form::Text {
        literal: literal.into(),
        instructions,
        stored: store != Some(b"false"),
    })
}

/// `raw` if it is a JSON string serde reads: UTF-8 throughout, escapes (`escaped`: it may
/// have some) that decode (a lone surrogate does not).
fn string_literal(raw: &[u8], escaped: bool) -> Option<&str> {
    let s = std::str::from_utf8(raw).ok()?;
    if !s.starts_with('"') {
        return None;
    }
    if escaped {
        serde_json::from_str::<String>(s).ok()?;
    }
    Some(s)
}

impl Input {
    /// The ids its items are kept under ([`input_ids`]).
    pub fn ids(&self, response_id: &str) -> Vec<String> {
        match self {
            Input::Text(_) => vec![minted_id("msg", response_id, 0)],
            Input::Items(items) => input_ids(items, response_id),
        }
    }

    /// The items as kept, with `ids` (from [`Input::ids`]): for a text input, the user message
    /// serde would write for it (keys in a `serde_json::Map`'s order), around the literal.
    pub fn to_json(&self, ids: &[String]) -> serde_json::Result<String> {
        let literal = match self {
            Input::Items(items) => {
                return (Kept { items, ids }.write())
                    .ok_or_else(|| serde::ser::Error::custom("an id short"));
            }
            Input::Text(literal) => literal,
        };
        let mut out = String::with_capacity(literal.len() + 96);
        out.push_str(r#"[{"content":[{"text":"#);
        out.push_str(literal);
        out.push_str(r#","type":"input_text"}],"id":"#);
        write::string(&mut out, ids.first().map_or("", String::as_str));
        out.push_str(r#","role":"user","type":"message"}]"#);
        Ok(out)
    }
}

fn user_message(text: String) -> Value {
    json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
}

/// OpenAI's error for an unknown, expired or foreign `previous_response_id`.
pub fn previous_not_found(id: &str) -> ApiError {
    ApiError::new(
        400,
        ErrorKind::InvalidRequest,
        Some("previous_response_not_found"),
        format!("Previous response with id '{id}' not found."),
    )
    .with_param("previous_response_id")
}

/// OpenAI's error for a reference to an item no stored response of the key holds.
pub fn item_not_found(id: &str, index: usize) -> ApiError {
    ApiError::new(
        404,
        ErrorKind::NotFound,
        None,
        format!(
            "Item with id '{id}' not found. Items are not persisted when `store` is set to false."
        ),
    )
    .with_param(format!("input[{index}]"))
}

/// OpenAI's error for an unknown response id on the stored-response endpoints.
pub fn response_not_found(id: &str) -> ApiError {
    ApiError::new(
        404,
        ErrorKind::NotFound,
        None,
        format!("Response with id '{id}' not found."),
    )
}

/// The ids of input items as kept, in order, one per object item: its own string `id`, else
/// `{prefix}_{response stem}_in{n}` (`n` its index), so `input_items` pages by id and later
/// turns can refer to it. [`Kept`] writes the items with these ids.
pub fn input_ids(items: &[Value], response_id: &str) -> Vec<String> {
    let object = |(n, item): (usize, &Value)| {
        let map = item.as_object()?;
        if let Some(Value::String(id)) = map.get("id") {
            return Some(id.clone());
        }
        let prefix = match map.get("type").and_then(Value::as_str) {
            Some("function_call_output") => "fco",
            Some("function_call") => "fc",
            Some("reasoning") => "rs",
            _ => "msg",
        };
        Some(minted_id(prefix, response_id, n))
    };
    items.iter().enumerate().filter_map(object).collect()
}

/// The id input item `n` is kept under when it has none of its own.
fn minted_id(prefix: &str, response_id: &str, n: usize) -> String {
    let stem = response_id.strip_prefix("resp_").unwrap_or(response_id);
    ids::concat(&[prefix, "_", stem, "_in", itoa::Buffer::new().format(n)])
}

/// Input items written as kept: each object item with its id from [`input_ids`] (`ids`, one
/// per object item), without copying the items to set it (the copy, the change and the
/// write were ~3.5% of a Responses request's CPU). Keys come out in the order a
/// `serde_json::Map` holds them, so the text is what writing the changed items would give.
pub struct Kept<'a> {
    pub items: &'a [Value],
    pub ids: &'a [String],
}

impl Kept<'_> {
    /// The items as JSON text; `None` when `ids` is shorter than its object items.
    pub fn write(&self) -> Option<String> {
        let mut out = String::with_capacity(256);
        out.push('[');
        let mut ids = self.ids.iter();
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match (
                item.as_object(),
                item.get("id").is_some_and(Value::is_string),
            ) {
                (Some(map), false) => with_id(&mut out, map, ids.next()?),
                (Some(_), true) => {
                    ids.next();
                    write::value(&mut out, item);
                }
                (None, _) => write::value(&mut out, item),
            }
        }
        out.push(']');
        Some(out)
    }
}

/// An object item with `id` set (in key order, in place of any `id` it had).
fn with_id(out: &mut String, map: &Map<String, Value>, id: &str) {
    out.push('{');
    let mut id = Some(id);
    let mut first = true;
    let mut entry = |out: &mut String, k: &str| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        write::string(out, k);
        out.push(':');
    };
    for (k, v) in map {
        if k == "id" {
            continue;
        }
        if k.as_str() > "id" {
            if let Some(id) = id.take() {
                entry(out, "id");
                write::string(out, id);
            }
        }
        entry(out, k);
        write::value(out, v);
    }
    if let Some(id) = id {
        entry(out, "id");
        write::string(out, id);
    }
    out.push('}');
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
