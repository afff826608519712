//! Google's Gemini API (AI Studio and Vertex AI share it): request translation from the pivot
//! (`request`, with `messages` and the output `types`), complete replies (`response`), the
//! stream decoder (`stream`), Google's RPC error shape (`error`) and the embeddings methods
//! (`embeddings`: AI Studio's `batchEmbedContents`, Vertex AI's `predict`). `wire` holds what
//! replies and streams share: usage, finish reasons and the tool-call ids Tollgate mints.
//!
//! The model and the method live in the URL (`…/models/{model}:generateContent`,
//! `:streamGenerateContent?alt=sse`), never in the body; the provider builds the path.

pub mod embeddings;
pub mod error;
mod messages;
pub mod request;
pub mod response;
pub mod stream;
pub mod types;
pub mod wire;

/// How a refusal names Gemini ("`n` must be 1 for this model's provider (Gemini).").
const WHO: &str = "for this model's provider (Gemini).";
