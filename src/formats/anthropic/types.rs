//! Messages API wire types (request and reply). Unknown fields are kept in `extra`, so the
//! translator can name what it cannot express.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;

pub type Extra = Map<String, Value>;

#[derive(Deserialize)]
pub struct MessagesRequest {
    pub model: Option<String>,
    pub messages: Option<Vec<Message>>,
    pub max_tokens: Option<u64>,
    pub system: Option<Content>,
    pub stop_sequences: Option<Vec<String>>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<Value>,
    pub stream: Option<bool>,
    pub tools: Option<Vec<Tool>>,
    pub tool_choice: Option<ToolChoice>,
    pub thinking: Option<Thinking>,
    pub metadata: Option<Metadata>,
    pub output_config: Option<OutputConfig>,
    pub service_tier: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
pub struct Message {
    pub role: String,
    pub content: Content,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

/// A content block; which fields are set depends on `kind`.
#[derive(Deserialize)]
pub struct Block {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
    pub source: Option<Source>,
    pub id: Option<String>,
    pub name: Option<String>,
    pub input: Option<Value>,
    pub tool_use_id: Option<String>,
    pub content: Option<Content>,
    pub is_error: Option<bool>,
    pub thinking: Option<String>,
    pub signature: Option<String>,
    pub data: Option<String>,
    /// Prompt-caching hints and reply metadata that have no effect on a translated request.
    pub cache_control: Option<Value>,
    pub citations: Option<Value>,
    pub caller: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Block {
    /// A `tool_use` block as an OpenAI tool call (arguments are the input serialised).
    pub fn to_tool_call(&self) -> Value {
        let args = self
            .input
            .as_ref()
            .map_or_else(|| "{}".to_string(), Value::to_string);
        serde_json::json!({"id": self.id.as_deref().unwrap_or(""), "type": "function",
            "function": {"name": self.name.as_deref().unwrap_or(""), "arguments": args}})
    }
}

#[derive(Deserialize)]
pub struct Source {
    #[serde(rename = "type")]
    pub kind: String,
    pub media_type: Option<String>,
    pub data: Option<String>,
    pub url: Option<String>,
}

#[derive(Deserialize)]
pub struct Tool {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub input_schema: Option<Value>,
    pub cache_control: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
pub struct ToolChoice {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    pub disable_parallel_tool_use: Option<bool>,
}

#[derive(Deserialize)]
pub struct Thinking {
    #[serde(rename = "type")]
    pub kind: String,
    pub budget_tokens: Option<u64>,
}

#[derive(Deserialize)]
pub struct Metadata {
    pub user_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
pub struct OutputConfig {
    pub format: Option<OutputFormat>,
    /// How much effort (tokens, thinking) the model spends: `low` to `max`.
    pub effort: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
pub struct OutputFormat {
    #[serde(rename = "type")]
    pub kind: String,
    pub schema: Option<Value>,
}

/// A Messages request as Tollgate writes it, borrowing the client's text instead of copying.
#[derive(Serialize, Default)]
pub struct OutRequest<'a> {
    pub model: &'a str,
    pub max_tokens: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<OutBlock<'a>>,
    pub messages: Vec<OutTurn<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_config: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
}

#[derive(Serialize)]
pub struct OutTurn<'a> {
    pub role: &'static str,
    pub content: Vec<OutBlock<'a>>,
}

/// A content block as Tollgate writes it.
#[derive(Serialize, Debug)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutBlock<'a> {
    Text {
        #[serde(serialize_with = "crate::formats::write::text")]
        text: Cow<'a, str>,
    },
    Image {
        source: OutSource<'a>,
    },
    Document {
        source: OutSource<'a>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        #[serde(serialize_with = "crate::formats::write::text")]
        content: Cow<'a, str>,
    },
}

#[derive(Serialize, Debug)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutSource<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}
