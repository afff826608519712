//! OpenAI's Responses API (`/v1/responses`), OpenAI's second wire format: its usage, its typed
//! event stream (decoded for passthrough accounting), and translation through the chat pivot
//! for every backend without it (`to_chat`, `response`, the stream's encoder). See the wire-formats reference §9.

pub mod count;
pub mod error;
pub mod history;
mod input;
pub mod namespaces;
mod output;
pub mod response;
pub(crate) mod simple;
pub mod stored;
pub mod stream;
pub mod to_chat;

use super::Usage;
use serde::Deserialize;

/// `usage` of a Response: `input_tokens` includes the cached ones, `output_tokens` the
/// reasoning ones (as in chat).
#[derive(Deserialize, Default)]
pub struct WireUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    pub output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize, Default)]
pub struct InputDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
    #[serde(default)]
    pub cache_write_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
pub struct OutputDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

impl WireUsage {
    pub fn normalise(&self) -> Usage {
        let i = self.input_tokens_details.as_ref();
        Usage {
            input: self.input_tokens,
            cached_input: i.and_then(|d| d.cached_tokens).unwrap_or(0),
            cache_creation: i.and_then(|d| d.cache_write_tokens).unwrap_or(0),
            output: self.output_tokens,
            reasoning: (self.output_tokens_details.as_ref())
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }
    }
}
