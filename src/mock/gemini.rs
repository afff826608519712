//! The mock's Gemini API, on AI Studio's paths (`/v1beta/models/{m}:…`, `x-goog-api-key`) and
//! Vertex AI's (`/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:…`, bearer token).

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
