//! OpenAI and OpenAI-compatible upstreams: requests and responses pass through unchanged (the
//! model override is spliced into the body by the gateway), auth is `Authorization: Bearer`.
//! Translation for other providers will live beside this module.

/// Client API paths this provider serves, and the operation name used in logs and metrics.
pub fn operation(path: &str) -> Option<&'static str> {
    match path {
        "/v1/chat/completions" => Some("chat"),
        "/v1/completions" => Some("text_completion"),
        "/v1/embeddings" => Some("embeddings"),
        _ => None,
    }
}
