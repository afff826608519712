//! OpenAI chat completions: the pivot format. Wire types (`chat`), error shape (`error`) and
//! the stream decoder and encoder (`stream`), and embeddings for non-OpenAI backends
//! (`embeddings`), and asking passthrough streams for usage (`usage`).

pub mod chat;
pub mod embeddings;
pub mod error;
pub(crate) mod reply;
pub mod stream;
pub mod usage;
