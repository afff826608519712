//! Anthropic Messages streams: [`EventDecoder`] reads an upstream's events (`message_start`,
//! `content_block_*`, `message_delta`, `message_stop`, `ping`, `error`) into pivot deltas;
//! [`EventEncoder`] writes deltas as those events for an Anthropic client. Usage follows
//! Anthropic's rules: input tokens from `message_start` (plus cache reads and writes), output
//! tokens cumulative in `message_delta`.
//!
//! `decode.rs` reads, `encode.rs` writes; the usage and stop reasons they share are here.

mod decode;
mod encode;

pub use decode::EventDecoder;
pub use encode::EventEncoder;

use crate::formats::{FinishReason, Usage};
use serde::Deserialize;

/// Most content blocks one reply may open; a bound on the block → tool index map.
const MAX_BLOCKS: u32 = 4096;

/// Anthropic's `usage`; every field optional because `message_delta` repeats only some.
#[derive(Deserialize, Default, Clone, Copy)]
pub struct WireUsage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_creation_input_tokens: Option<u64>,
    pub cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Folds this report into `u`: Anthropic's `input_tokens` excludes cache reads and writes,
    /// OpenAI's includes them.
    pub fn apply(&self, u: &mut Usage) {
        if self.input_tokens.is_some()
            || self.cache_read_input_tokens.is_some()
            || self.cache_creation_input_tokens.is_some()
        {
            let read = self.cache_read_input_tokens.unwrap_or(u.cached_input);
            let write = self.cache_creation_input_tokens.unwrap_or(u.cache_creation);
            let plain = self.input_tokens.unwrap_or_else(|| u.uncached_input());
            u.input = plain.saturating_add(read).saturating_add(write);
            u.cached_input = read;
            u.cache_creation = write;
        }
        if let Some(o) = self.output_tokens {
            u.output = o;
        }
    }
}

pub fn stop_reason(s: &str) -> FinishReason {
    match s {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        "stop_sequence" => FinishReason::StopSequence,
        _ => FinishReason::Stop,
    }
}
