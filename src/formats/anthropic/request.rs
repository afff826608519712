//! Requests: OpenAI chat ⇄ Anthropic Messages.

use crate::error::ApiError;
use crate::formats::{RequestOptions, Translated};

/// An OpenAI chat request → an Anthropic Messages request.
pub fn from_chat(_body: &[u8], _opts: &RequestOptions<'_>) -> Result<Translated, ApiError> {
    Err(ApiError::internal())
}

/// An Anthropic Messages request → an OpenAI chat request.
pub fn to_chat(_body: &[u8], _opts: &RequestOptions<'_>) -> Result<Translated, ApiError> {
    Err(ApiError::internal())
}
