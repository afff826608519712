//! Chat completions wire types: the pivot's request and reply. Unknown fields are kept in
//! `extra`, so a translator can name what it cannot express instead of dropping it.

use super::stream::WireUsage;
use serde::Deserialize;
use serde_json::{Map, Value};

pub type Extra = Map<String, Value>;

/// OpenAI request fields with no effect on the reply's content (storage, billing, routing and
/// caching hints, reproducibility and latency hints, verbosity), dropped and named when the
/// request is translated to another API.
pub const NO_EFFECT_FIELDS: [&str; 9] = [
    "store",
    "metadata",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
    "verbosity",
    "seed",
    "prediction",
    "prompt_cache_retention",
];

/// Whether a field that changes the reply is at its neutral value (what the target does anyway):
/// SDKs send `n: 1`, zero penalties and the like as defaults.
fn neutral(k: &str, v: &Value) -> bool {
    match k {
        "n" => v.as_u64() == Some(1),
        "logprobs" => v == &Value::Bool(false),
        "top_logprobs" | "frequency_penalty" | "presence_penalty" => v.as_f64() == Some(0.0),
        "logit_bias" => v.as_object().is_some_and(|o| o.is_empty()),
        "modalities" => v.as_array().is_some_and(|m| m.len() == 1 && m[0] == "text"),
        _ => false,
    }
}

/// Chat fields that change the reply's meaning: a translation that cannot honour them refuses
/// them by name (or drops them under `drop_params`).
const MEANINGFUL: [&str; 12] = [
    "n",
    "logprobs",
    "top_logprobs",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "modalities",
    "audio",
    "web_search_options",
    "functions",
    "function_call",
    "top_k",
];

/// Applies the field policy to the chat fields kept in `extra`, but for those in `mapped`
/// (which the target's translator carries itself). `who` ends the refusal: "for this model's
/// provider (Bedrock).".
pub fn check_extras(
    extra: &Extra,
    mapped: &[&str],
    who: &str,
    f: &crate::formats::fields::Fields,
) -> Result<(), crate::error::ApiError> {
    for (k, v) in extra.iter().filter(|(_, v)| !v.is_null()) {
        let k = k.as_str();
        if mapped.contains(&k) || neutral(k, v) {
            continue;
        }
        if NO_EFFECT_FIELDS.contains(&k) {
            f.ignore(k);
        } else if MEANINGFUL.contains(&k) {
            let why = if k == "n" {
                "must be 1"
            } else {
                "cannot be expressed"
            };
            f.unsupported(k.to_string(), &format!("{why} {who}"))?;
        } else {
            f.unknown_field(k.to_string())?;
        }
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct ChatRequest {
    pub model: Option<String>,
    #[serde(default)]
    pub messages: Option<Vec<Message>>,
    pub max_tokens: Option<u64>,
    pub max_completion_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Option<Stop>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    pub tools: Option<Vec<Tool>>,
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    pub response_format: Option<Value>,
    pub reasoning_effort: Option<String>,
    pub user: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl ChatRequest {
    /// The client asked for the usage chunk at the end of a stream.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }
}

/// `top_k`, a chat extension (Anthropic's, Gemini's and Claude on Bedrock's sampling field), for
/// the translators whose target has it.
pub fn top_k(extra: &Extra, who: &str) -> Result<Option<u64>, crate::error::ApiError> {
    match extra.get("top_k") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            crate::formats::fields::unsupported(
                "top_k".into(),
                &format!("must be a positive integer {who}"),
            )
        }),
    }
}

/// A tool's function, when it is one: other tool types (OpenAI's `custom`, hosted tools) are
/// beyond the target, so they are refused by name (or dropped under `drop_params`: `None`).
pub fn function_tool<'a>(
    t: &'a Tool,
    p: &str,
    who: &str,
    f: &crate::formats::fields::Fields,
) -> Result<Option<&'a FunctionDef>, crate::error::ApiError> {
    match (&*t.kind, &t.function) {
        ("function", Some(func)) => {
            f.unknown(&func.extra, &format!("{p}.function"))?;
            Ok(Some(func))
        }
        _ => f
            .unsupported(
                format!("{p}.type"),
                &format!("must be a function tool {who}"),
            )
            .map(|()| None),
    }
}

#[derive(Deserialize)]
pub struct StreamOptions {
    pub include_usage: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
pub struct Message {
    pub role: String,
    pub content: Option<Content>,
    pub name: Option<String>,
    pub tool_calls: Option<Vec<ToolCall>>,
    pub tool_call_id: Option<String>,
    pub refusal: Option<String>,
    /// Reply metadata (URL citations) that SDKs echo back with an assistant message in
    /// history; it tells the model nothing, so it is accepted and ignored.
    pub annotations: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

/// A content part; which fields are set depends on `kind`.
#[derive(Deserialize)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
    pub refusal: Option<String>,
    pub image_url: Option<ImageUrl>,
    pub file: Option<FilePart>,
    pub input_audio: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
pub struct ImageUrl {
    pub url: String,
    pub detail: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
pub struct FilePart {
    pub file_data: Option<String>,
    pub file_id: Option<String>,
    pub filename: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
pub struct Tool {
    #[serde(rename = "type")]
    pub kind: String,
    pub function: Option<FunctionDef>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
pub struct FunctionDef {
    pub name: String,
    pub description: Option<String>,
    pub parameters: Option<Value>,
    pub strict: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub function: FunctionCall,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
pub struct FunctionCall {
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

/// A complete chat reply (only what translation reads).
#[derive(Deserialize)]
pub struct ChatCompletion {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub choices: Vec<Choice>,
    pub usage: Option<WireUsage>,
}

#[derive(Deserialize)]
pub struct Choice {
    pub message: ReplyMessage,
    pub finish_reason: Option<String>,
}

#[derive(Deserialize)]
pub struct ReplyMessage {
    pub content: Option<String>,
    pub refusal: Option<String>,
    pub reasoning_content: Option<String>,
    pub reasoning: Option<String>,
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Tollgate-internal (the pivot from Bedrock; never sent to clients): the reasoning's
    /// signature and encrypted reasoning blocks, for an Anthropic client's thinking blocks.
    pub reasoning_signature: Option<String>,
    pub redacted_reasoning: Option<Vec<String>>,
}
