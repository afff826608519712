//! Anthropic Messages: wire types (`types`, the request written by `write`), translation to
//! and from the pivot (`request`, `response`, a Message read by `message`), error shape
//! (`error`), the stream decoder and encoder (`stream`), and the input-token estimate for
//! backends that cannot count (`count`).

pub mod count;
pub mod error;
mod message;
pub mod request;
pub mod response;
pub mod stream;
pub(crate) mod to_chat;
pub mod types;
mod write;
