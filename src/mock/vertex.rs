//! The mock's Vertex AI specifics: the OAuth token endpoint (`POST /token`, JWT-bearer grant)
//! and Claude on Vertex (`publishers/anthropic/models/{m}:rawPredict` / `:streamRawPredict`).

use super::{Behaviour, MockSettings, Request};
use pingora::protocols::http::ServerSession;

pub(super) async fn handle(
    s: &mut ServerSession,
    req: Request,
    _b: &Behaviour,
    _set: &MockSettings,
) -> bool {
    let body = serde_json::json!({"message": "not implemented yet"});
    super::send_error(s, 404, &body, &req.common).await
}
