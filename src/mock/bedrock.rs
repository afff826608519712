//! The mock's AWS Bedrock runtime API: Converse, ConverseStream (binary event stream) and
//! InvokeModel for embedding models, with SigV4 verification.

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
