//! Complete replies: Anthropic Message ⇄ OpenAI chat completion.

use crate::error::ApiError;
use crate::formats::{ReplyContext, Usage};

/// An Anthropic Message → an OpenAI chat completion.
pub fn to_chat(_body: &[u8], _ctx: &ReplyContext<'_>) -> Result<(Vec<u8>, Usage), ApiError> {
    Err(ApiError::internal())
}

/// An OpenAI chat completion → an Anthropic Message.
pub fn from_chat(_body: &[u8], _ctx: &ReplyContext<'_>) -> Result<(Vec<u8>, Usage), ApiError> {
    Err(ApiError::internal())
}
