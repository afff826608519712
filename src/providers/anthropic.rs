//! Anthropic's Messages API: `x-api-key` and `anthropic-version` headers, `/v1/messages`.

use super::{join, secret_header, Operation, Provider};
use crate::formats::{Format, MaxTokensField, RequestOptions};
use http::HeaderValue;
use pingora::http::RequestHeader;

pub struct Anthropic {
    key: Option<HeaderValue>,
    version: HeaderValue,
    default_max_tokens: u32,
}

impl Anthropic {
    pub fn new(key: Option<&str>, version: &str, default_max_tokens: u32) -> Anthropic {
        Anthropic {
            key: key.and_then(secret_header),
            version: HeaderValue::from_str(version)
                .unwrap_or(HeaderValue::from_static("2023-06-01")),
            default_max_tokens,
        }
    }
}

impl Provider for Anthropic {
    fn format(&self) -> Format {
        Format::Anthropic
    }

    fn supports(&self, op: Operation) -> bool {
        matches!(op, Operation::Messages | Operation::CountTokens)
    }

    fn path(
        &self,
        base: &str,
        op: Operation,
        _model: &str,
        query: Option<&str>,
        _stream: bool,
    ) -> String {
        join(base, op.v1_path(), query)
    }

    /// The client's own `anthropic-version` (and `anthropic-beta`) are kept when its request
    /// passes through; a translated request gets the backend's version.
    fn authorize(
        &self,
        req: &mut RequestHeader,
        _body: &[u8],
        _token: Option<&str>,
    ) -> pingora::Result<()> {
        if let Some(k) = &self.key {
            req.insert_header("x-api-key", k.clone())?;
        }
        if req.headers.get("anthropic-version").is_none() {
            req.insert_header("anthropic-version", self.version.clone())?;
        }
        Ok(())
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
}
