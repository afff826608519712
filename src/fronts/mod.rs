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
    /// OpenAI's stored-response endpoints: `GET`/`DELETE /v1/responses/{id}`,
    /// `POST …/{id}/cancel`, `GET …/{id}/input_items`.
    StoredResponse,
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
            p if stored_op(p).is_some() => Front::StoredResponse,
            _ => return None,
        })
    }

    /// The API a request speaks: its path's, and for paths both APIs share (or none), Anthropic
    /// when the client sends `anthropic-version`, as Anthropic's SDKs always do.
    pub fn api(front: Option<Front>, req: &RequestHeader) -> Format {
        match front {
            Some(Front::Messages | Front::CountTokens) => Format::Anthropic,
            Some(Front::Chat | Front::Completions | Front::Embeddings) => Format::OpenAi,
            Some(Front::Responses | Front::ResponsesInputTokens | Front::StoredResponse) => {
                Format::Responses
            }
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
            // Only where the responses are stored: the path is the Responses one plus the id.
            (Front::StoredResponse, Format::OpenAi) => Some(Operation::Responses),
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
            Front::StoredResponse => "/v1/responses/{id}",
        }
    }

    /// The methods a path takes (the `Allow` of a 405).
    pub fn allow(path: &str) -> &'static str {
        match (Front::of(path), stored_op(path)) {
            (Some(Front::Models), _) => "GET, HEAD",
            (_, Some("")) => "GET, DELETE",
            (_, Some("input_items")) => "GET",
            _ => "POST",
        }
    }

    /// Whether `method` is one the path takes.
    pub fn allows(path: &str, method: &http::Method) -> bool {
        Front::allow(path).split(", ").any(|m| m == method.as_str())
    }
}

/// A stored-response path's id and operation (`""`, `cancel`, `input_items`).
pub fn stored_response(path: &str) -> Option<(&str, &str)> {
    let op = stored_op(path)?;
    let rest = path.strip_prefix("/v1/responses/")?;
    Some((rest.split('/').next().unwrap_or_default(), op))
}

/// A stored-response path's operation after the id (`""`, `cancel`, `input_items`). Ids are
/// OpenAI's (`resp_…`): letters, digits, `_` and `-`; anything else is not a path to forward.
fn stored_op(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v1/responses/")?;
    let (id, op) = rest.split_once('/').unwrap_or((rest, ""));
    let id_ok = !id.is_empty()
        && id.len() <= 128
        && id != "input_tokens"
        && (id.bytes()).all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    (id_ok && matches!(op, "" | "cancel" | "input_items")).then_some(op)
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

    #[test]
    fn stored_response_paths() {
        let of = Front::of;
        assert_eq!(of("/v1/responses/resp_1A-b"), Some(Front::StoredResponse));
        assert_eq!(
            of("/v1/responses/resp_1/cancel"),
            Some(Front::StoredResponse)
        );
        assert_eq!(
            of("/v1/responses/resp_1/input_items"),
            Some(Front::StoredResponse)
        );
        assert_eq!(
            of("/v1/responses/input_tokens"),
            Some(Front::ResponsesInputTokens)
        );
        for bad in [
            "/v1/responses/",
            "/v1/responses/../files",
            "/v1/responses/a/../../files",
            "/v1/responses/a%2F..",
            "/v1/responses/a/b",
            "/v1/responses/input_tokens/cancel",
        ] {
            assert_eq!(of(bad), None, "{bad}");
        }
        assert_eq!(Front::allow("/v1/responses/r"), "GET, DELETE");
        assert!(Front::allows("/v1/responses/r/cancel", &http::Method::POST));
        assert!(!Front::allows(
            "/v1/responses/r/input_items",
            &http::Method::DELETE
        ));
        assert_eq!(Front::StoredResponse.operation(Format::Anthropic), None);
        assert_eq!(
            stored_response("/v1/responses/resp_1/input_items"),
            Some(("resp_1", "input_items"))
        );
        assert_eq!(stored_response("/v1/responses/r"), Some(("r", "")));
        assert_eq!(stored_response("/v1/responses/a/b"), None);
    }
}
