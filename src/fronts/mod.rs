//! Client APIs: which API a request path speaks, what each front asks a provider to do, and
//! the API errors are rendered in. OpenAI's chat, completions, embeddings and models; Anthropic's
//! messages, count_tokens and models; OpenAI's Responses and its input-token count.

use crate::formats::Format;
use crate::providers::Operation;
use pingora::http::RequestHeader;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    Chat,
    Completions,
    Embeddings,
    Messages,
    CountTokens,
    Models,
    Responses,
    ResponsesInputTokens,
}

impl Front {
    pub fn of(path: &str) -> Option<Front> {
        Some(match path {
            "/v1/chat/completions" => Front::Chat,
            "/v1/completions" => Front::Completions,
            "/v1/embeddings" => Front::Embeddings,
            "/v1/messages" => Front::Messages,
            "/v1/messages/count_tokens" => Front::CountTokens,
            "/v1/models" => Front::Models,
            "/v1/responses" => Front::Responses,
            "/v1/responses/input_tokens" => Front::ResponsesInputTokens,
            _ => return None,
        })
    }

    /// The API a request speaks: its path's, and for paths both APIs share (or none), Anthropic
    /// when the client sends `anthropic-version`, as Anthropic's SDKs always do.
    pub fn api(front: Option<Front>, req: &RequestHeader) -> Format {
        match front {
            Some(Front::Messages | Front::CountTokens) => Format::Anthropic,
            Some(Front::Chat | Front::Completions | Front::Embeddings) => Format::OpenAi,
            Some(Front::Responses | Front::ResponsesInputTokens) => Format::Responses,
            Some(Front::Models) | None => {
                if req.headers.contains_key("anthropic-version") {
                    Format::Anthropic
                } else {
                    Format::OpenAi
                }
            }
        }
    }

    /// What to ask a provider that speaks `upstream`, or `None` when it cannot serve this front.
    pub fn operation(self, upstream: Format) -> Option<Operation> {
        match (self, upstream) {
            (Front::Chat | Front::Messages, Format::OpenAi) => Some(Operation::Chat),
            (Front::Chat | Front::Messages, Format::Anthropic) => Some(Operation::Messages),
            (Front::Chat | Front::Messages, Format::Bedrock | Format::Gemini) => {
                Some(Operation::Chat)
            }
            (Front::Completions, Format::OpenAi) => Some(Operation::Completions),
            (Front::Embeddings, Format::OpenAi | Format::Bedrock | Format::Gemini) => {
                Some(Operation::Embeddings)
            }
            (Front::CountTokens, Format::Anthropic) => Some(Operation::CountTokens),
            // Passed through where the backend serves it (else chat; see `fallback`), translated
            // through the pivot to the others.
            (Front::Responses, Format::OpenAi) => Some(Operation::Responses),
            (Front::Responses, Format::Anthropic) => Some(Operation::Messages),
            (Front::Responses, Format::Bedrock | Format::Gemini) => Some(Operation::Chat),
            (Front::ResponsesInputTokens, Format::OpenAi) => Some(Operation::ResponsesInputTokens),
            _ => None,
        }
    }

    /// What to ask instead when the provider does not support [`Self::operation`]'s answer: a
    /// chat-only OpenAI-style server gets Responses requests translated to chat.
    pub fn fallback(self) -> Option<Operation> {
        (self == Front::Responses).then_some(Operation::Chat)
    }

    pub fn path(self) -> &'static str {
        match self {
            Front::Chat => "/v1/chat/completions",
            Front::Completions => "/v1/completions",
            Front::Embeddings => "/v1/embeddings",
            Front::Messages => "/v1/messages",
            Front::CountTokens => "/v1/messages/count_tokens",
            Front::Models => "/v1/models",
            Front::Responses => "/v1/responses",
            Front::ResponsesInputTokens => "/v1/responses/input_tokens",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_by_path_then_header() {
        let mut r = RequestHeader::build("GET", b"/v1/models", None).unwrap();
        assert_eq!(Front::api(Front::of("/v1/models"), &r), Format::OpenAi);
        r.insert_header("anthropic-version", "2023-06-01").unwrap();
        assert_eq!(Front::api(Front::of("/v1/models"), &r), Format::Anthropic);
        assert_eq!(Front::api(Front::of("/nope"), &r), Format::Anthropic);
        assert_eq!(
            Front::api(Front::of("/v1/chat/completions"), &r),
            Format::OpenAi
        );
    }

    #[test]
    fn operations() {
        assert_eq!(
            Front::Messages.operation(Format::OpenAi),
            Some(Operation::Chat)
        );
        assert_eq!(Front::Embeddings.operation(Format::Anthropic), None);
        assert_eq!(Front::CountTokens.operation(Format::OpenAi), None);
    }
}
