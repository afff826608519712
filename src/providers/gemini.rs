//! Gemini on Google AI Studio: `/v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent?alt=sse` and `:batchEmbedContents`, with `x-goog-api-key`.

use super::{secret_header, segment, Embedded, Operation, Provider};
use crate::error::ApiError;
use crate::formats::gemini::embeddings;
use crate::formats::openai::embeddings::EmbeddingRequest;
use crate::formats::{Format, MaxTokensField, RequestOptions};
use http::HeaderValue;
use pingora::http::RequestHeader;

pub struct Gemini {
    key: Option<HeaderValue>,
}

impl Gemini {
    pub fn new(key: Option<&str>) -> Gemini {
        Gemini {
            key: key.and_then(secret_header),
        }
    }
}

/// The method after `:` in Gemini's paths (shared with Vertex AI, which names the embedding
/// method differently).
pub(super) fn method(op: Operation, stream: bool, embed: &'static str) -> &'static str {
    match (op, stream) {
        (Operation::Embeddings, _) => embed,
        (_, true) => "streamGenerateContent?alt=sse",
        (_, false) => "generateContent",
    }
}

/// A model id as a path segment; `models/gemini-2.0-flash` is accepted for `gemini-2.0-flash`.
pub(super) fn model_segment(model: &str) -> String {
    segment(model.strip_prefix("models/").unwrap_or(model))
}

impl Provider for Gemini {
    fn format(&self) -> Format {
        Format::Gemini
    }

    fn supports(&self, op: Operation) -> bool {
        matches!(op, Operation::Chat | Operation::Embeddings)
    }

    fn path(
        &self,
        base: &str,
        op: Operation,
        model: &str,
        _query: Option<&str>,
        stream: bool,
    ) -> String {
        format!(
            "{base}/v1beta/models/{}:{}",
            model_segment(model),
            method(op, stream, "batchEmbedContents")
        )
    }

    fn authorize(
        &self,
        req: &mut RequestHeader,
        _body: &[u8],
        _token: Option<&str>,
    ) -> pingora::Result<()> {
        if let Some(k) = &self.key {
            req.insert_header("x-goog-api-key", k.clone())?;
        }
        Ok(())
    }

    fn embed_request(&self, req: &EmbeddingRequest<'_>, model: &str) -> Result<Vec<u8>, ApiError> {
        embeddings::request(req, model, false)
    }

    fn embed_response(&self, body: &[u8], _model: &str) -> Result<Embedded, ApiError> {
        embeddings::response(body, false)
    }

    fn request_options<'a>(&self, model: &'a str) -> RequestOptions<'a> {
        RequestOptions {
            model,
            default_max_tokens: 0,
            max_tokens_field: MaxTokensField::MaxCompletionTokens,
            cache_points: false,
            fields: crate::formats::fields::FieldPolicy::DEFAULT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_key() {
        let g = Gemini::new(Some("gk"));
        assert_eq!(
            g.path("", Operation::Chat, "models/gemini-2.0-flash", None, false),
            "/v1beta/models/gemini-2.0-flash:generateContent"
        );
        assert_eq!(
            g.path("/x", Operation::Chat, "gemini-2.5-pro", Some("q=1"), true),
            "/x/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            g.path("", Operation::Embeddings, "text-embedding-004", None, false),
            "/v1beta/models/text-embedding-004:batchEmbedContents"
        );
        let mut req = RequestHeader::build("POST", b"/", None).unwrap();
        g.authorize(&mut req, b"", None).unwrap();
        assert_eq!(req.headers["x-goog-api-key"], "gk");
        assert!(req.headers["x-goog-api-key"].is_sensitive());
    }
}
