//! OpenAI chat completions: the pivot format. Wire types (`types`), what the gateway changes in
//! a request it passes through (`request`: asking streams for usage), the commonest request read
//! without serde (`simple`), the reply written for
//! OpenAI clients from other APIs (`response`), the stream decoder and encoder (`stream`), the
//! error shape (`error`), and embeddings for non-OpenAI backends (`embeddings`). A stream's
//! deltas make a complete pivot reply (`collect`) and a complete reply makes deltas again
//! (`replay`): how a stored reply is streamed to any client.

pub mod collect;
pub mod embeddings;
pub mod error;
pub mod replay;
pub mod request;
pub(crate) mod response;
pub(crate) mod simple;
pub mod stream;
pub(crate) mod template;
pub mod types;
