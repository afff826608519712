//! OpenAI and OpenAI-compatible upstreams: requests and responses pass through unchanged (the
//! model override is spliced into the body by the gateway), auth is `Authorization: Bearer`.
//! Translation for other providers will live beside this module.

/// Whether this is a client API path routed by the body's `model`.
pub fn is_model_routed(path: &str) -> bool {
    matches!(
        path,
        "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings"
    )
}
