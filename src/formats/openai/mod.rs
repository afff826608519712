//! OpenAI chat completions: the pivot format. Wire types (`types`), what the gateway changes in
//! a request it passes through (`request`: asking streams for usage), the reply written for
//! OpenAI clients from other APIs (`response`), the stream decoder and encoder (`stream`), the
//! error shape (`error`), and embeddings for non-OpenAI backends (`embeddings`).

pub mod embeddings;
pub mod error;
pub mod request;
pub(crate) mod response;
pub mod stream;
pub mod types;
