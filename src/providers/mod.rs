//! Upstream providers. A provider is one file behind [`Provider`]: how to address a request
//! (path, query), how to authorise it (headers; signing goes last, over the final bytes), and
//! which wire format it speaks. The formats themselves live in `crate::formats`; the transport
//! (DNS, peer, TLS, headers) is `upstream.rs`.

mod anthropic;
mod azure;
pub mod google_auth;
mod openai;
pub mod presets;
mod upstream;

pub use upstream::{is_hop_by_hop_response_header, Backend, UpstreamSetupError};

use crate::config::{BackendSpec, ProviderKind};
use crate::formats::{Format, RequestOptions};
use pingora::http::RequestHeader;

/// What the upstream is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Chat,
    Completions,
    Embeddings,
    Messages,
    CountTokens,
}

impl Operation {
    /// The operation's path in the OpenAI/Anthropic `/v1` layout.
    pub fn v1_path(self) -> &'static str {
        match self {
            Operation::Chat => "/v1/chat/completions",
            Operation::Completions => "/v1/completions",
            Operation::Embeddings => "/v1/embeddings",
            Operation::Messages => "/v1/messages",
            Operation::CountTokens => "/v1/messages/count_tokens",
        }
    }
}

pub trait Provider: Send + Sync {
    /// The wire format of the provider's generation API.
    fn format(&self) -> Format;

    /// Whether the provider serves `op` natively.
    fn supports(&self, op: Operation) -> bool;

    /// Path and query for `op` on `model` under the backend's base path. `client_query` is the
    /// client's own query string, kept when its request passes through unchanged.
    fn path(&self, base: &str, op: Operation, model: &str, client_query: Option<&str>) -> String;

    /// Adds the provider's credentials and required headers to the final request.
    fn authorize(&self, req: &mut RequestHeader, body: &[u8]) -> pingora::Result<()>;

    /// How requests in another format are translated for this provider.
    fn request_options<'a>(&self, model: &'a str) -> RequestOptions<'a>;
}

/// The provider of a configured backend.
pub fn build(spec: &BackendSpec) -> Box<dyn Provider> {
    let key = spec.api_key.as_ref().map(|k| k.expose());
    match &spec.provider {
        ProviderKind::OpenAi { preset } => Box::new(openai::OpenAi::new(key, preset.is_some())),
        ProviderKind::Azure { api_version } => Box::new(azure::Azure::new(key, api_version)),
        ProviderKind::Anthropic {
            version,
            default_max_tokens,
        } => Box::new(anthropic::Anthropic::new(key, version, *default_max_tokens)),
    }
}

/// `base` + `v1_path`, where a base that already ends in `/v1` takes the path without its
/// `/v1` (`https://api.groq.com/openai/v1` + `/v1/chat/completions`).
pub(crate) fn join(base: &str, v1_path: &str, query: Option<&str>) -> String {
    let rest = if base.ends_with("/v1") {
        v1_path.strip_prefix("/v1").unwrap_or(v1_path)
    } else {
        v1_path
    };
    let mut p = String::with_capacity(base.len() + rest.len() + query.map_or(0, |q| q.len() + 1));
    p.push_str(base);
    p.push_str(rest);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        p.push('?');
        p.push_str(q);
    }
    p
}

/// A header value holding a secret (kept out of debug output by `http`).
pub(crate) fn secret_header(v: &str) -> Option<http::HeaderValue> {
    let mut h = http::HeaderValue::from_str(v).ok()?;
    h.set_sensitive(true);
    Some(h)
}
