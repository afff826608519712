//! What a plan says about the upstream's reply, for the relay: which API it is in and which
//! the client speaks, and what the translation must add or keep.

use crate::formats::{self, Format};
use std::sync::Arc;

/// The largest complete reply read whole (to translate or keep it).
pub(super) const MAX_REPLY: usize = 64 * 1024 * 1024;

/// How the reply reaches the client.
pub(super) struct Reply {
    /// The client's API.
    pub client: Format,
    /// The upstream's format; equal to `client` when the body passes through.
    pub upstream: Format,
    /// OpenAI clients: the usage chunk was asked for.
    pub include_usage: bool,
    /// The model the client asked for; translated replies name it.
    pub client_model: Arc<str>,
    /// An embeddings request translated to the provider's embeddings API.
    pub embed: Option<EmbedReply>,
    /// A passthrough OpenAI stream: the gateway asked for the usage chunk, the client did not.
    pub strip_usage: bool,
    /// A Responses client's namespaced tools, flattened for the target: named back here.
    pub tool_names: Option<Arc<formats::responses::namespaces::ToolNames>>,
    /// A translated Responses reply to keep (module `kept`).
    pub keep: Option<Arc<super::kept::Keep>>,
}

/// What an embeddings reply in another API needs.
pub(super) struct EmbedReply {
    /// The client asked for base64 vectors.
    pub base64: bool,
    /// Input tokens to report when the provider counts none.
    pub estimate: u64,
    /// The model asked of the provider (its family decides the reply's shape on Bedrock).
    pub model: String,
}
