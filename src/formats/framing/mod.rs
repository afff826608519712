//! How a stream's bytes are cut into events, below any format: server-sent events (OpenAI,
//! Anthropic, Gemini, Responses) and AWS's binary event stream (Bedrock). Size-limited and
//! incremental: a chunk may end anywhere, even inside a UTF-8 character or a frame header.

pub mod eventstream;
pub mod sse;
