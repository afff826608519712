//! One kept response, its strings in one allocation: a kept Response used to be eleven (its
//! id, owner, model, both JSON texts, instructions, the item id list and each id, the shared
//! struct and the map's id), and a full store frees a cold one at every put. The Response and
//! input JSON are the gateway's own serializer's output, kept as text without a parse to check
//! them (that parse was ~12k instructions a kept Response); a shared store checks them as it
//! writes them out, and reads them back as checked JSON.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// What [`StoredResponse::new`] copies into one allocation.
pub struct Parts<'a> {
    /// The `resp_…` the client was given.
    pub id: &'a str,
    /// The key that created it (`None`: an open gateway).
    pub owner: Option<&'a str>,
    /// The model the client asked for.
    pub model: &'a str,
    /// The Response object as sent to the client: JSON a serializer wrote.
    pub response: &'a str,
    /// The request's input items, after `previous_response_id` and references were expanded:
    /// JSON a serializer wrote.
    pub input: &'a str,
    pub instructions: Option<&'a str>,
    /// Ids of its items when the maker knows them; read from the JSON otherwise.
    pub item_ids: Option<&'a [String]>,
}

/// Where each field ends in [`StoredResponse`]'s text; its item ids follow.
const ID: usize = 0;
const OWNER: usize = 1;
const MODEL: usize = 2;
const RESPONSE: usize = 3;
const INPUT: usize = 4;
const INSTRUCTIONS: usize = 5;
const FIELDS: usize = 6;

/// One kept response.
#[derive(Debug)]
pub struct StoredResponse {
    /// Its id, owner, model, Response JSON, input JSON and instructions, then its item ids,
    /// one after another.
    text: Box<str>,
    /// Where each of those ends in `text`.
    ends: Box<[usize]>,
    /// Whether the owner and the instructions are set (an empty one is not an absent one).
    has_owner: bool,
    has_instructions: bool,
}

impl StoredResponse {
    pub fn new(p: Parts<'_>) -> StoredResponse {
        let read;
        let items: &[String] = match p.item_ids {
            Some(ids) => ids,
            None => {
                read = item_ids(p.input, p.response);
                &read
            }
        };
        let fields = [
            p.id,
            p.owner.unwrap_or(""),
            p.model,
            p.response,
            p.input,
            p.instructions.unwrap_or(""),
        ];
        let len = fields.iter().map(|f| f.len()).sum::<usize>()
            + items.iter().map(String::len).sum::<usize>();
        let mut text = String::with_capacity(len);
        let mut ends = Vec::with_capacity(FIELDS + items.len());
        for f in fields.into_iter().chain(items.iter().map(String::as_str)) {
            text.push_str(f);
            ends.push(text.len());
        }
        StoredResponse {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
            has_owner: p.owner.is_some(),
            has_instructions: p.instructions.is_some(),
        }
    }

    /// The `n`th string held.
    fn at(&self, n: usize) -> &str {
        let start = if n == 0 { 0 } else { self.ends[n - 1] };
        &self.text[start..self.ends[n]]
    }

    pub fn id(&self) -> &str {
        self.at(ID)
    }

    pub fn owner(&self) -> Option<&str> {
        self.has_owner.then(|| self.at(OWNER))
    }

    pub fn model(&self) -> &str {
        self.at(MODEL)
    }

    /// The Response object as sent to the client (JSON).
    pub fn response(&self) -> &str {
        self.at(RESPONSE)
    }

    /// The input items (a JSON array).
    pub fn input(&self) -> &str {
        self.at(INPUT)
    }

    pub fn instructions(&self) -> Option<&str> {
        self.has_instructions.then(|| self.at(INSTRUCTIONS))
    }

    /// Ids of its input and output items, for `item_reference` lookups.
    pub fn item_ids(&self) -> impl Iterator<Item = &str> {
        (FIELDS..self.ends.len()).map(|n| self.at(n))
    }

    /// Bytes it holds in a memory store besides what the store itself adds per response and
    /// per item (`responses::PER_RESPONSE`, `PER_ITEM`).
    pub fn held(&self) -> usize {
        self.text.len() + std::mem::size_of_val(&*self.ends)
    }

    /// How many item ids it holds.
    pub fn items(&self) -> usize {
        self.ends.len() - FIELDS
    }

    /// The response's output items (empty if it has none).
    pub fn output(&self) -> Vec<Value> {
        #[derive(Deserialize)]
        struct Out {
            #[serde(default)]
            output: Vec<Value>,
        }
        serde_json::from_str::<Out>(self.response()).map_or_else(|_| Vec::new(), |o| o.output)
    }

    /// The input items.
    pub fn input_items(&self) -> Vec<Value> {
        serde_json::from_str(self.input()).unwrap_or_default()
    }

    /// The input or output item with `item_id`.
    pub fn item(&self, item_id: &str) -> Option<Value> {
        let mut items = self.output().into_iter().chain(self.input_items());
        items.find(|i| i["id"] == item_id)
    }

    pub(super) fn owned_by(&self, owner: Option<&str>) -> bool {
        self.owner() == owner
    }
}

/// Ids of the input and output items, read without building the items: the string `id` of
/// each input item, then of each of the Response's `output` items.
fn item_ids(input: &str, response: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct Out<'a> {
        #[serde(default, borrow)]
        output: Vec<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Item {
        id: Option<Value>,
    }
    let input = serde_json::from_str::<Vec<&RawValue>>(input).unwrap_or_default();
    let output = serde_json::from_str::<Out>(response).map_or_else(|_| Vec::new(), |o| o.output);
    let id = |item: &RawValue| match serde_json::from_str::<Item>(item.get()) {
        Ok(Item {
            id: Some(Value::String(id)),
        }) => Some(id),
        _ => None,
    };
    input.into_iter().chain(output).filter_map(id).collect()
}

/// A shared store's form: the fields by name, the JSON texts as JSON (checked as written).
#[derive(Serialize)]
struct WireOut<'a> {
    id: &'a str,
    owner: Option<&'a str>,
    model: &'a str,
    response: &'a RawValue,
    input: &'a RawValue,
    instructions: Option<&'a str>,
}

#[derive(Deserialize)]
struct WireIn {
    id: String,
    owner: Option<String>,
    model: String,
    response: Box<RawValue>,
    input: Box<RawValue>,
    instructions: Option<String>,
}

impl Serialize for StoredResponse {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let json = |t| serde_json::from_str::<&RawValue>(t).map_err(S::Error::custom);
        WireOut {
            id: self.id(),
            owner: self.owner(),
            model: self.model(),
            response: json(self.response())?,
            input: json(self.input())?,
            instructions: self.instructions(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for StoredResponse {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StoredResponse, D::Error> {
        let w = WireIn::deserialize(d)?;
        Ok(StoredResponse::new(Parts {
            id: &w.id,
            owner: w.owner.as_deref(),
            model: &w.model,
            response: w.response.get(),
            input: w.input.get(),
            instructions: w.instructions.as_deref(),
            item_ids: None,
        }))
    }
}
