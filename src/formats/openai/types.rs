//! Chat completions wire types: the pivot's request and reply. Unknown fields are kept in
//! `extra`, so a translator can name what it cannot express instead of dropping it.

use crate::formats::Usage;
use serde::Deserialize;
use serde_json::{Map, Value};

pub type Extra = Map<String, Value>;

#[derive(Deserialize, Default)]
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

impl Stop {
    /// The stop sequences, borrowed, for a target that takes a list.
    pub fn strs(&self) -> Vec<&str> {
        match self {
            Stop::One(s) => vec![s.as_str()],
            Stop::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
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

impl Message {
    /// A message of a role and (maybe) content, nothing else: what the scan's readers make.
    pub(crate) fn plain(role: String, content: Option<Content>) -> Message {
        Message {
            role,
            content,
            name: None,
            tool_calls: None,
            tool_call_id: None,
            refusal: None,
            annotations: None,
            extra: Extra::new(),
        }
    }
}

/// A message's content: a string or a list of parts. Read by hand, not as an untagged enum,
/// which serde buffers before trying each variant: a loop parsing the load bench's 1 KiB chat
/// request took 0.95 µs instead of 1.25 (the instructions are about the same; the buffering's
/// memory traffic is not).
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Content, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = Content;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a list of content parts")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Content, E> {
                Ok(Content::Text(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Content, E> {
                Ok(Content::Text(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, a: A) -> Result<Content, A::Error> {
                let parts = serde::de::value::SeqAccessDeserializer::new(a);
                Vec::deserialize(parts).map(Content::Parts)
            }
        }
        d.deserialize_any(Either)
    }
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

/// OpenAI's `usage` object (also in complete replies).
#[derive(Deserialize, Default)]
pub struct WireUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize, Default)]
pub struct PromptDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
    #[serde(default)]
    pub cache_write_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
pub struct CompletionDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

impl WireUsage {
    pub fn normalise(&self) -> Usage {
        let p = self.prompt_tokens_details.as_ref();
        Usage {
            input: self.prompt_tokens,
            cached_input: p.and_then(|d| d.cached_tokens).unwrap_or(0),
            cache_creation: p.and_then(|d| d.cache_write_tokens).unwrap_or(0),
            output: self.completion_tokens,
            reasoning: self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_a_string_or_parts_and_nothing_else() {
        let m: Message = serde_json::from_str(r#"{"role":"user","content":"hi \u00e9"}"#).unwrap();
        assert!(matches!(m.content, Some(Content::Text(t)) if t == "hi é"));
        let parts = r#"{"role":"user","content":[{"type":"text","text":"a"}]}"#;
        let m: Message = serde_json::from_str(parts).unwrap();
        assert!(matches!(m.content, Some(Content::Parts(p)) if p[0].text.as_deref() == Some("a")));
        // From a tree of values too (the pivot's path), and null is no content.
        let v = serde_json::json!({"role": "user", "content": null});
        assert!(serde_json::from_value::<Message>(v)
            .unwrap()
            .content
            .is_none());
        let v = serde_json::json!({"role": "user", "content": "owned"});
        let m: Message = serde_json::from_value(v).unwrap();
        assert!(matches!(m.content, Some(Content::Text(t)) if t == "owned"));
        for bad in ["5", "{}", "true", r#"[{"text":"no type"}]"#] {
            let body = format!(r#"{{"role":"user","content":{bad}}}"#);
            assert!(serde_json::from_str::<Message>(&body).is_err(), "{bad}");
        }
    }
}
