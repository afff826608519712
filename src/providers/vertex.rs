//! Gemini on Vertex AI: `/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:…` with
//! an OAuth access token from the backend's service account (refreshed in the background), or
//! an API key in express mode (`/v1/publishers/google/models/{m}:…`).

use super::gemini::{method, model_segment};
use super::google_auth::TokenSource;
use super::{secret_header, Embedded, Operation, Provider};
use crate::config::GoogleAuth;
use crate::error::ApiError;
use crate::formats::gemini::embeddings;
use crate::formats::openai::embeddings::EmbeddingRequest;
use crate::formats::{Format, MaxTokensField, RequestOptions};
use http::HeaderValue;
use pingora::http::RequestHeader;
use std::sync::Arc;

/// Where a Vertex AI backend's models live: the path up to `publishers/`.
pub struct Place {
    prefix: String,
}

impl Place {
    pub fn new(project: &str, location: &str, auth: &GoogleAuth) -> Place {
        let prefix = match auth {
            GoogleAuth::ApiKey if project.is_empty() => "/v1".to_string(),
            _ => format!("/v1/projects/{project}/locations/{location}"),
        };
        Place { prefix }
    }

    /// `{base}{prefix}/publishers/{publisher}/models/{model}:{method}`.
    pub fn path(&self, base: &str, publisher: &str, model: &str, method: &str) -> String {
        format!(
            "{base}{}/publishers/{publisher}/models/{}:{method}",
            self.prefix,
            model_segment(model)
        )
    }
}

/// The token source of a service-account backend.
pub fn token_source(backend: &str, auth: &GoogleAuth) -> Option<Arc<TokenSource>> {
    match auth {
        GoogleAuth::ServiceAccount {
            account, token_uri, ..
        } => Some(Arc::new(TokenSource::new(
            (**account).clone(),
            token_uri.clone(),
            backend,
        ))),
        GoogleAuth::ApiKey => None,
    }
}

/// `Authorization: Bearer {token}`, or the express-mode key.
pub(super) fn authorize(
    req: &mut RequestHeader,
    token: Option<&str>,
    key: Option<&HeaderValue>,
) -> pingora::Result<()> {
    if let Some(t) = token.and_then(|t| secret_header(&format!("Bearer {t}"))) {
        req.insert_header(http::header::AUTHORIZATION, t)?;
    } else if let Some(k) = key {
        req.insert_header("x-goog-api-key", k.clone())?;
    }
    Ok(())
}

pub struct Vertex {
    place: Place,
    tokens: Option<Arc<TokenSource>>,
    key: Option<HeaderValue>,
}

impl Vertex {
    pub fn new(place: Place, tokens: Option<Arc<TokenSource>>, key: Option<&str>) -> Vertex {
        Vertex {
            place,
            tokens,
            key: key.and_then(secret_header),
        }
    }
}

impl Provider for Vertex {
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
        self.place
            .path(base, "google", model, method(op, stream, "predict"))
    }

    fn authorize(
        &self,
        req: &mut RequestHeader,
        _body: &[u8],
        token: Option<&str>,
    ) -> pingora::Result<()> {
        authorize(req, token, self.key.as_ref())
    }

    fn embed_request(&self, req: &EmbeddingRequest<'_>, model: &str) -> Result<Vec<u8>, ApiError> {
        embeddings::request(req, model, true)
    }

    fn embed_response(&self, body: &[u8], _model: &str) -> Result<Embedded, ApiError> {
        embeddings::response(body, true)
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

    fn tokens(&self) -> Option<&Arc<TokenSource>> {
        self.tokens.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regional_and_express_paths() {
        let v = Vertex::new(
            Place::new("proj", "us-central1", &GoogleAuth::ApiKey),
            None,
            None,
        );
        assert_eq!(
            v.path("", Operation::Chat, "gemini-2.0-flash", None, true),
            "/v1/projects/proj/locations/us-central1/publishers/google/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            v.path("", Operation::Embeddings, "text-embedding-005", None, false),
            "/v1/projects/proj/locations/us-central1/publishers/google/models/text-embedding-005:predict"
        );
        let express = Vertex::new(
            Place::new("", "global", &GoogleAuth::ApiKey),
            None,
            Some("k"),
        );
        assert_eq!(
            express.path("", Operation::Chat, "gemini-2.0-flash", None, false),
            "/v1/publishers/google/models/gemini-2.0-flash:generateContent"
        );
        let mut req = RequestHeader::build("POST", b"/", None).unwrap();
        express.authorize(&mut req, b"", None).unwrap();
        assert_eq!(req.headers["x-goog-api-key"], "k");
        v.authorize(&mut req, b"", Some("ya29.t")).unwrap();
        assert_eq!(req.headers["authorization"], "Bearer ya29.t");
    }
}
