//! Responses state for translated routes, the pure part: what a request refers to
//! (`previous_response_id`, `item_reference` items, whether it is stored), and the request with
//! those replaced by the items they name, as OpenAI does before the model sees them: the earlier
//! response's input and output come first, then the new input (its `instructions` are not
//! carried over). The gateway fetches what is referred to from the response store.

use crate::error::{ApiError, ErrorKind};
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// A Responses request as far as its state is concerned.
pub struct Stateful {
    body: Map<String, Value>,
    /// The request's input as items (a string input is one user message).
    input: Vec<Value>,
}

/// The request after expansion.
pub struct Expanded {
    /// The body to translate: the whole history in `input`, no `previous_response_id`; `None`
    /// when the request referred to nothing (its own body is the one to translate, and writing
    /// it again was ~2.5% of a Responses request's CPU).
    pub body: Option<Vec<u8>>,
    /// Its input items, kept with the response (`input_items`, the next turn's history).
    pub input: Vec<Value>,
    pub instructions: Option<String>,
}

impl Stateful {
    pub fn parse(body: &[u8]) -> Result<Stateful, ApiError> {
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
        Ok(Stateful { body, input })
    }

    /// The response whose history comes first.
    pub fn previous(&self) -> Option<&str> {
        self.body.get("previous_response_id")?.as_str()
    }

    /// The reply is to be kept: `store` omitted or true.
    pub fn stored(&self) -> bool {
        !matches!(self.body.get("store"), Some(Value::Bool(false)))
    }

    /// The ids of the `item_reference` items in the input.
    pub fn references(&self) -> Vec<&str> {
        (self.input.iter())
            .filter(|i| i["type"] == "item_reference")
            .filter_map(|i| i["id"].as_str())
            .collect()
    }

    /// The request with `history` (the previous response's input then output items) before
    /// its input and each reference replaced by its item from `items`.
    pub fn expand(
        mut self,
        history: Vec<Value>,
        items: &HashMap<String, Value>,
    ) -> Result<Expanded, ApiError> {
        let expands = self.previous().is_some() || !self.references().is_empty();
        let mut input = history;
        input.reserve(self.input.len());
        for (i, item) in self.input.into_iter().enumerate() {
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
        let instructions = self.body.get("instructions").and_then(Value::as_str);
        let instructions = instructions.map(str::to_string);
        if !expands {
            return Ok(Expanded {
                body: None,
                input,
                instructions,
            });
        }
        self.body.remove("previous_response_id");
        self.body.insert("input".into(), Value::Array(input));
        let body = serde_json::to_vec(&self.body).map_err(|_| ApiError::internal())?;
        let Some(Value::Array(input)) = self.body.remove("input") else {
            return Err(ApiError::internal());
        };
        Ok(Expanded {
            body: Some(body),
            input,
            instructions,
        })
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
    let stem = response_id.strip_prefix("resp_").unwrap_or(response_id);
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
        Some(format!("{prefix}_{stem}_in{n}"))
    };
    items.iter().enumerate().filter_map(object).collect()
}

/// Input items written as kept: each object item with its id from [`input_ids`] (`ids`, one
/// per object item), without copying the items to set it (the copy, the change and the
/// write were ~3.5% of a Responses request's CPU). Keys come out in the order a
/// `serde_json::Map` holds them, so the text is what writing the changed items would give.
pub struct Kept<'a> {
    pub items: &'a [Value],
    pub ids: &'a [String],
}

impl Serialize for Kept<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.items.len()))?;
        let mut ids = self.ids.iter();
        for item in self.items {
            match (
                item.as_object(),
                item.get("id").is_some_and(Value::is_string),
            ) {
                (Some(map), false) => {
                    let id = ids.next().ok_or_else(|| S::Error::custom("an id short"))?;
                    seq.serialize_element(&WithId { map, id })?;
                }
                (Some(_), true) => {
                    ids.next();
                    seq.serialize_element(item)?;
                }
                (None, _) => seq.serialize_element(item)?,
            }
        }
        seq.end()
    }
}

/// An object item with `id` set (in key order, in place of any `id` it had).
struct WithId<'a> {
    map: &'a Map<String, Value>,
    id: &'a str,
}

impl Serialize for WithId<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let has = self.map.contains_key("id");
        let mut m = s.serialize_map(Some(self.map.len() + usize::from(!has)))?;
        let mut id = Some(self.id);
        for (k, v) in self.map {
            if k == "id" {
                continue;
            }
            if k.as_str() > "id" {
                if let Some(id) = id.take() {
                    m.serialize_entry("id", id)?;
                }
            }
            m.serialize_entry(k, v)?;
        }
        if let Some(id) = id {
            m.serialize_entry("id", id)?;
        }
        m.end()
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
