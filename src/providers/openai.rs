//! OpenAI and OpenAI-compatible servers (and the named presets): `Authorization: Bearer`,
//! the `/v1` layout, the OpenAI chat format.

use super::{join, secret_header, Operation, Provider};
use crate::formats::{Format, MaxTokensField, RequestOptions};
use http::HeaderValue;
use pingora::http::RequestHeader;

pub struct OpenAi {
    auth: Option<HeaderValue>,
    /// OpenAI itself takes `max_completion_tokens` (reasoning models refuse `max_tokens`);
    /// most compatible servers know only `max_tokens`.
    max_tokens_field: MaxTokensField,
    /// The server has the Responses API (OpenAI does; presets say so with `responses = true`).
    responses: bool,
}

impl OpenAi {
    pub fn new(key: Option<&str>, compatible: bool, responses: bool) -> OpenAi {
        OpenAi {
            auth: key.and_then(|k| secret_header(&format!("Bearer {k}"))),
            max_tokens_field: if compatible {
                MaxTokensField::MaxTokens
            } else {
                MaxTokensField::MaxCompletionTokens
            },
            responses,
        }
    }
}

impl Provider for OpenAi {
    fn format(&self) -> Format {
        Format::OpenAi
    }

    fn supports(&self, op: Operation) -> bool {
        match op {
            Operation::Messages | Operation::CountTokens => false,
            Operation::Responses | Operation::ResponsesInputTokens => self.responses,
            _ => true,
        }
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

    fn authorize(
        &self,
        req: &mut RequestHeader,
        _body: &[u8],
        _token: Option<&str>,
    ) -> pingora::Result<()> {
        if let Some(a) = &self.auth {
            req.insert_header(http::header::AUTHORIZATION, a.clone())?;
        }
        Ok(())
    }

    fn request_options<'a>(&self, model: &'a str) -> RequestOptions<'a> {
        RequestOptions {
            model,
            default_max_tokens: 0,
            max_tokens_field: self.max_tokens_field,
            cache_points: false,
            fields: crate::formats::fields::FieldPolicy::DEFAULT,
        }
    }
}
