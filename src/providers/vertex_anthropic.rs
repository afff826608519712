//! Claude on Vertex AI: Anthropic's Messages format at
//! `…/publishers/anthropic/models/{model}:rawPredict` (`:streamRawPredict` for streams), with
//! the model in the path and `anthropic_version` in the body instead of a header.

use super::google_auth::TokenSource;
use super::vertex::{authorize, Place};
use super::{Operation, Provider};
use crate::error::ApiError;
use crate::formats::{Format, MaxTokensField, RequestOptions};
use pingora::http::RequestHeader;
use serde_json::{Map, Value};
use std::sync::Arc;

pub struct VertexAnthropic {
    place: Place,
    tokens: Option<Arc<TokenSource>>,
    version: String,
    default_max_tokens: u32,
}

impl VertexAnthropic {
    pub fn new(
        place: Place,
        tokens: Option<Arc<TokenSource>>,
        version: &str,
        default_max_tokens: u32,
    ) -> VertexAnthropic {
        VertexAnthropic {
            place,
            tokens,
            version: version.to_string(),
            default_max_tokens,
        }
    }
}

impl Provider for VertexAnthropic {
    fn format(&self) -> Format {
        Format::Anthropic
    }

    fn supports(&self, op: Operation) -> bool {
        op == Operation::Messages
    }

    fn path(
        &self,
        base: &str,
        _op: Operation,
        model: &str,
        _query: Option<&str>,
        stream: bool,
    ) -> String {
        let method = if stream {
            "streamRawPredict"
        } else {
            "rawPredict"
        };
        self.place.path(base, "anthropic", model, method)
    }

    fn authorize(
        &self,
        req: &mut RequestHeader,
        _body: &[u8],
        token: Option<&str>,
    ) -> pingora::Result<()> {
        // Vertex takes the version in the body; a client's header would only confuse it.
        req.remove_header("anthropic-version");
        authorize(req, token, None)
    }

    fn request_options<'a>(&self, model: &'a str) -> RequestOptions<'a> {
        RequestOptions {
            model,
            default_max_tokens: self.default_max_tokens,
            max_tokens_field: MaxTokensField::MaxCompletionTokens,
            cache_points: false,
            fields: crate::formats::fields::FieldPolicy::DEFAULT,
        }
    }

    fn tokens(&self) -> Option<&Arc<TokenSource>> {
        self.tokens.as_ref()
    }

    fn adapt_body(&self, body: &[u8]) -> Option<Result<(Vec<u8>, bool), ApiError>> {
        Some(adapt(body, &self.version))
    }
}

/// Drops `model` (it is in the path) and sets `anthropic_version`.
fn adapt(body: &[u8], version: &str) -> Result<(Vec<u8>, bool), ApiError> {
    let mut m: Map<String, Value> = crate::formats::pivot::parse(body)?;
    m.remove("model");
    m.insert("anthropic_version".into(), Value::String(version.into()));
    let stream = m.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let out = serde_json::to_vec(&m).map_err(|_| ApiError::internal())?;
    Ok((out, stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GoogleAuth;

    #[test]
    fn body_and_paths() {
        let v = VertexAnthropic::new(
            Place::new("p", "us-east5", &GoogleAuth::ApiKey),
            None,
            "vertex-2023-10-16",
            4096,
        );
        let (body, stream) = v
            .adapt_body(
                br#"{"model":"claude-sonnet-4-5","max_tokens":5,"stream":true,"messages":[]}"#,
            )
            .unwrap()
            .unwrap();
        let b: Value = serde_json::from_slice(&body).unwrap();
        assert!(stream);
        assert!(b.get("model").is_none());
        assert_eq!(b["anthropic_version"], "vertex-2023-10-16");
        assert_eq!(
            v.path("", Operation::Messages, "claude-sonnet-4-5@20250929", None, stream),
            "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"
        );
        assert!(v.adapt_body(b"[1]").unwrap().is_err());
    }
}
