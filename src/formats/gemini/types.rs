//! A `GenerateContentRequest` as Tollgate writes it (camelCase, as the REST API takes it),
//! borrowing the client's text instead of copying it.

use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutRequest<'a> {
    pub contents: Vec<OutContent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<OutSystem<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<[OutTools<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<OutToolConfig<'a>>,
    #[serde(skip_serializing_if = "GenerationConfig::is_empty")]
    pub generation_config: GenerationConfig<'a>,
}

/// `systemInstruction`: a content without a role.
#[derive(Serialize)]
pub struct OutSystem<'a> {
    pub parts: Vec<OutPart<'a>>,
}

#[derive(Serialize, Debug)]
pub struct OutContent<'a> {
    /// `user` or `model`.
    pub role: &'static str,
    pub parts: Vec<OutPart<'a>>,
}

/// A part: exactly one kind of data per part.
#[derive(Serialize, Debug)]
#[serde(untagged)]
pub enum OutPart<'a> {
    Text {
        #[serde(serialize_with = "crate::formats::write::text")]
        text: Cow<'a, str>,
    },
    #[serde(rename_all = "camelCase")]
    InlineData { inline_data: Blob<'a> },
    #[serde(rename_all = "camelCase")]
    FileData { file_data: FileRef<'a> },
    #[serde(rename_all = "camelCase")]
    FunctionCall {
        function_call: Call<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        thought_signature: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    FunctionResponse { function_response: CallResult<'a> },
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Blob<'a> {
    pub mime_type: Cow<'a, str>,
    /// Base64, as the client sent it.
    pub data: &'a str,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct FileRef<'a> {
    pub mime_type: &'static str,
    pub file_uri: &'a str,
}

#[derive(Serialize, Debug)]
pub struct Call<'a> {
    pub name: &'a str,
    pub args: Value,
}

#[derive(Serialize, Debug)]
pub struct CallResult<'a> {
    pub name: &'a str,
    pub response: Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutTools<'a> {
    pub function_declarations: Vec<FunctionDecl<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionDecl<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    /// The OpenAI `parameters` as they are: standard JSON Schema, which this field takes
    /// (`parameters` would need Google's OpenAPI subset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters_json_schema: Option<&'a Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutToolConfig<'a> {
    pub function_calling_config: FunctionCallingConfig<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCallingConfig<'a> {
    /// `AUTO`, `ANY` or `NONE`.
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_function_names: Option<[&'a str; 1]>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_json_schema: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_config: Option<ThinkingConfig>,
}

impl GenerationConfig<'_> {
    pub fn is_empty(&self) -> bool {
        self.stop_sequences.is_none()
            && self.response_mime_type.is_none()
            && self.response_json_schema.is_none()
            && self.max_output_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.seed.is_none()
            && self.top_k.is_none()
            && self.presence_penalty.is_none()
            && self.frequency_penalty.is_none()
            && self.thinking_config.is_none()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThinkingConfig {
    pub thinking_budget: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_thoughts: Option<bool>,
}
