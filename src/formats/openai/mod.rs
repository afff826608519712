//! OpenAI chat completions: the pivot format. Wire types (`chat`), error shape (`error`) and
//! the stream decoder and encoder (`stream`).

pub mod chat;
pub mod error;
pub mod stream;
