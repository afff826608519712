//! AWS Bedrock's Converse API: requests from the pivot (`request`, with `messages`), complete
//! replies (`response`), ConverseStream's events (`stream`, over the binary frames of
//! `crate::formats::framing::eventstream`), Bedrock's errors and stream exceptions (`error`), and
//! InvokeModel for the Titan and Cohere embedding models (`embeddings`).
//!
//! The model id lives in the URL (`/model/{id}/converse`), never in the body; the provider
//! builds the path and signs the request.

pub mod embeddings;
pub mod error;
mod messages;
mod reply;
pub mod request;
pub mod response;
pub mod stream;
mod write;

/// How a refusal names Bedrock ("`n` must be 1 for this model's provider (Bedrock).").
const WHO: &str = "for this model's provider (Bedrock).";

/// Converse usage: `inputTokens` excludes cache reads and writes, which come apart.
#[derive(serde::Deserialize, Default, Clone, Copy, Debug)]
#[serde(rename_all = "camelCase")]
pub struct WireUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    #[serde(default)]
    pub cache_write_input_tokens: u64,
}

impl WireUsage {
    /// In OpenAI's meaning: input includes cache reads and writes.
    pub fn normalise(&self) -> crate::formats::Usage {
        crate::formats::Usage {
            input: self
                .input_tokens
                .saturating_add(self.cache_read_input_tokens)
                .saturating_add(self.cache_write_input_tokens),
            cached_input: self.cache_read_input_tokens,
            cache_creation: self.cache_write_input_tokens,
            output: self.output_tokens,
            reasoning: 0,
        }
    }
}

/// Converse's `stopReason` in the pivot's terms.
pub fn stop_reason(s: &str) -> crate::formats::FinishReason {
    use crate::formats::FinishReason;
    match s {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "stop_sequence" => FinishReason::StopSequence,
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        // end_turn, and malformed_* (the model ended; nothing usable follows).
        _ => FinishReason::Stop,
    }
}
