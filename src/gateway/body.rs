//! The client's request body: read whole, bounded by `max_body_bytes`, with `100-continue`.

use super::failure::Handled;
use super::Session;
use crate::error::ApiError;
use bytes::{Bytes, BytesMut};

/// Reads the whole request body, refusing it (413) past `limit` bytes. The limit is checked
/// against `Content-Length` first so an oversized upload is refused before it is read.
pub(super) async fn read_body(session: &mut Session, limit: usize) -> Result<Bytes, Handled> {
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let expects_continue = session
        .req_header()
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if declared.is_some_and(|n| n > limit) {
        if expects_continue {
            // The client waits for our answer before sending; it never sends this body.
            session.set_keepalive(None);
        } else {
            drain_rest(session, limit).await;
        }
        return Err(ApiError::too_large(limit).into());
    }
    if expects_continue {
        session
            .write_continue_response()
            .await
            .map_err(Handled::Abort)?;
    }
    let mut buf = BytesMut::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > limit {
                    drain_rest(session, limit).await;
                    return Err(ApiError::too_large(limit).into());
                }
                // Ended: no further read (each is timed, and a timer costs a clock read).
                let done = session.is_body_done();
                if done && buf.is_empty() {
                    return Ok(chunk); // the usual body: one chunk, kept as it is
                }
                if buf.is_empty() {
                    buf.reserve(declared.unwrap_or(4096).min(limit));
                }
                buf.extend_from_slice(&chunk);
                if done {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                // A truncated or malformed upload: answer 400 and close the connection.
                session.set_keepalive(None);
                return Err(ApiError::bad_request(format!(
                    "The request body could not be read: {}",
                    e.etype().as_str()
                ))
                .into());
            }
        }
    }
    Ok(buf.freeze())
}

/// Reads and discards the rest of an oversized upload (up to a bound) so the client, still
/// sending, gets the 413 instead of a broken pipe. Past the bound the connection is closed.
async fn drain_rest(session: &mut Session, limit: usize) {
    let bound = limit.saturating_mul(4).max(DRAIN_MIN);
    let mut drained = 0usize;
    while let Ok(Some(chunk)) = session.read_request_body().await {
        drained += chunk.len();
        if drained > bound {
            session.set_keepalive(None);
            return;
        }
    }
}

const DRAIN_MIN: usize = 8 * 1024 * 1024;
