//! Upstream providers. A provider is one file behind [`Provider`]: how to address a request
//! (path, query), how to authorise it (headers; signing goes last, over the final bytes), and
//! which wire format it speaks. The formats themselves live in `crate::formats`; the transport
//! (DNS, peer, TLS, headers) is `upstream.rs`.

mod anthropic;
mod azure;
mod bedrock;
mod gemini;
pub mod google_auth;
mod openai;
mod sigv4;
mod upstream;
mod vertex;
mod vertex_anthropic;

pub use upstream::{is_hop_by_hop_response_header, Backend, UpstreamSetupError};

use crate::config::{BackendSpec, ProviderKind};
use crate::error::ApiError;
use crate::formats::openai::embeddings::EmbeddingRequest;
use crate::formats::{Format, RequestOptions};
use google_auth::TokenSource;
use pingora::http::RequestHeader;
use std::sync::Arc;

/// What the upstream is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Chat,
    Completions,
    Embeddings,
    Messages,
    CountTokens,
    /// OpenAI's Responses API and its input-token count.
    Responses,
    ResponsesInputTokens,
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
            Operation::Responses => "/v1/responses",
            Operation::ResponsesInputTokens => "/v1/responses/input_tokens",
        }
    }
}

pub trait Provider: Send + Sync {
    /// The wire format of the provider's generation API.
    fn format(&self) -> Format;

    /// Whether the provider serves `op` natively.
    fn supports(&self, op: Operation) -> bool;

    /// Path and query for `op` on `model` under the backend's base path. `client_query` is the
    /// client's own query string, kept when its request passes through unchanged; `stream`:
    /// the reply is to be streamed (providers with a separate streaming method use it).
    fn path(
        &self,
        base: &str,
        op: Operation,
        model: &str,
        client_query: Option<&str>,
        stream: bool,
    ) -> String;

    /// Adds the provider's credentials and required headers to the final request. `token` is
    /// the access token from [`Provider::tokens`], when the provider has a token source.
    fn authorize(
        &self,
        req: &mut RequestHeader,
        body: &[u8],
        token: Option<&str>,
    ) -> pingora::Result<()>;

    /// How requests in another format are translated for this provider.
    fn request_options<'a>(&self, model: &'a str) -> RequestOptions<'a>;

    /// Where the provider's OAuth access tokens come from (refreshed in the background).
    fn tokens(&self) -> Option<&Arc<TokenSource>> {
        None
    }

    /// The body in the provider's own variant of its format, and whether it asks for a
    /// stream; `None` when the body goes as it is (Claude on Vertex moves `model` to the path).
    fn adapt_body(&self, _body: &[u8]) -> Option<Result<(Vec<u8>, bool), ApiError>> {
        None
    }

    /// An OpenAI embeddings request in the provider's own embeddings API (providers whose
    /// format is not OpenAI's).
    fn embed_request(&self, _req: &EmbeddingRequest<'_>, model: &str) -> Result<Vec<u8>, ApiError> {
        Err(ApiError::bad_request(format!(
            "Model `{model}` cannot embed: its provider has no embeddings API."
        )))
    }

    /// The provider's embeddings reply: one vector per input, and the input tokens if the
    /// provider counts them.
    fn embed_response(&self, _body: &[u8], _model: &str) -> Result<Embedded, ApiError> {
        Err(ApiError::internal())
    }
}

/// Embedding vectors in input order, and the input tokens when the provider reports them.
pub type Embedded = (Vec<Vec<f32>>, Option<u64>);

/// The provider of a configured backend.
pub fn build(spec: &BackendSpec) -> Box<dyn Provider> {
    let key = spec.api_key.as_ref().map(|k| k.expose());
    match &spec.provider {
        ProviderKind::OpenAi { preset, responses } => {
            Box::new(openai::OpenAi::new(key, preset.is_some(), *responses))
        }
        ProviderKind::Azure { api_version } => Box::new(azure::Azure::new(key, api_version)),
        ProviderKind::Anthropic {
            version,
            default_max_tokens,
        } => Box::new(anthropic::Anthropic::new(key, version, *default_max_tokens)),
        ProviderKind::Bedrock {
            region,
            auth,
            default_max_tokens,
        } => Box::new(bedrock::Bedrock::new(region, auth, *default_max_tokens)),
        ProviderKind::Gemini => Box::new(gemini::Gemini::new(key)),
        ProviderKind::Vertex {
            project,
            location,
            auth,
        } => Box::new(vertex::Vertex::new(
            vertex::Place::new(project, location, auth),
            vertex::token_source(&spec.name, auth),
            key,
        )),
        ProviderKind::VertexAnthropic {
            project,
            location,
            auth,
            version,
            default_max_tokens,
        } => Box::new(vertex_anthropic::VertexAnthropic::new(
            vertex::Place::new(project, location, auth),
            vertex::token_source(&spec.name, auth),
            version,
            *default_max_tokens,
        )),
    }
}

/// `s` as one URL path segment: every byte but the unreserved ones and `@` percent-encoded (a
/// model id `anthropic.claude-v2:1` becomes `anthropic.claude-v2%3A1`; Vertex's
/// `claude-sonnet-4-5@20250929` stays as it is).
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
    out
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
