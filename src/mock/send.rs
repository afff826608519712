//! How the mock answers: headers, JSON bodies, errors and SSE events, each API's framing.

use super::{header_str, Behaviour};
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use serde::Serialize;
use std::sync::atomic::Ordering;

/// Whether the request carries `key` the way its API sends it (`None`: no key expected).
pub(crate) fn key_ok(s: &ServerSession, header: &str, prefix: &str, key: Option<&str>) -> bool {
    let Some(key) = key else { return true };
    header_str(s, header).is_some_and(|v| v.strip_prefix(prefix) == Some(key))
}

pub(crate) fn header(status: u16, common: &[(&str, String)]) -> Option<ResponseHeader> {
    let mut h = ResponseHeader::build(status, Some(common.len() + 4)).ok()?;
    for (k, v) in common {
        let _ = h.insert_header(k.to_string(), v.as_str());
    }
    Some(h)
}

/// An error reply in either API's shape; a 429 says when to retry, as both providers do.
pub(crate) async fn send_error(
    s: &mut ServerSession,
    status: u16,
    v: &impl Serialize,
    common: &[(&str, String)],
) -> bool {
    let extra: Vec<(&str, &str)> = retry_after(status, common).into_iter().collect();
    send_json(s, status, v, common, None, &extra).await
}

/// The `retry-after` header of an error reply: `1` on a 429, as the providers send; with
/// `--retry-after` (reported in `x-mock-retry-after`) that value, on every error status.
pub(crate) fn retry_after<'a>(
    status: u16,
    common: &'a [(&str, String)],
) -> Option<(&'static str, &'a str)> {
    let set = common.iter().find(|(k, _)| *k == "x-mock-retry-after");
    match (set, status) {
        (Some((_, v)), _) => Some(("retry-after", v.as_str())),
        (None, 429) => Some(("retry-after", "1")),
        _ => None,
    }
}

/// A JSON reply; with `drop_after` only half the body is sent before the connection closes.
pub(crate) async fn send_json(
    s: &mut ServerSession,
    status: u16,
    v: &impl Serialize,
    common: &[(&str, String)],
    drop_after: Option<usize>,
    extra: &[(&str, &str)],
) -> bool {
    let body = serde_json::to_vec(v).unwrap_or_default();
    let Some(mut h) = header(status, common) else {
        return false;
    };
    let _ = h.insert_header("content-type", "application/json");
    let _ = h.insert_header("content-length", body.len());
    for (k, v) in extra {
        let _ = h.insert_header(k.to_string(), *v);
    }
    if s.write_response_header(Box::new(h)).await.is_err() {
        return false;
    }
    if drop_after.is_some() {
        let half = Bytes::copy_from_slice(&body[..body.len() / 2]);
        let _ = s.write_response_body(half, false).await;
        return false;
    }
    s.write_response_body(Bytes::from(body), true).await.is_ok()
}

/// A stream of framed SSE events, with the faults applied: a pause between events, a dropped
/// connection after `drop_after` events, or `error` sent after `stream_error_after` events.
/// `events` is drawn one event at a time, each after the socket took the one before: a slow
/// reader holds the mock at one event, never the whole stream (backpressure).
pub(crate) async fn send_events<I>(
    s: &mut ServerSession,
    events: I,
    b: &Behaviour,
    error: &[u8],
    common: &[(&str, String)],
    extra: &[(&str, &str)],
) -> bool
where
    I: IntoIterator<Item = Vec<u8>>,
    I::IntoIter: Send,
{
    let Some(mut h) = header(200, common) else {
        return false;
    };
    let _ = h.insert_header("content-type", "text/event-stream; charset=utf-8");
    let _ = h.insert_header("cache-control", "no-cache");
    let _ = h.insert_header("transfer-encoding", "chunked");
    for (k, v) in extra {
        let _ = h.insert_header(k.to_string(), *v);
    }
    if s.write_response_header(Box::new(h)).await.is_err() {
        return false;
    }
    b.stats.streams_started.fetch_add(1, Ordering::Relaxed);
    if !b.first_event_delay.is_zero() {
        tokio::time::sleep(b.first_event_delay).await;
    }
    let sent = write_events(s, events.into_iter(), b, error).await;
    let counter = if sent {
        &b.stats.streams_completed
    } else {
        &b.stats.streams_cut
    };
    counter.fetch_add(1, Ordering::Relaxed);
    sent
}

async fn write_events(
    s: &mut ServerSession,
    events: impl Iterator<Item = Vec<u8>> + Send,
    b: &Behaviour,
    error: &[u8],
) -> bool {
    for (i, ev) in events.enumerate() {
        if b.drop_after.is_some_and(|d| i >= d) {
            // A provider dying mid-stream: close without the end of the stream.
            return false;
        }
        if b.stream_error_after.is_some_and(|n| i >= n) {
            let bytes = Bytes::copy_from_slice(error);
            return s.write_response_body(bytes, true).await.is_ok();
        }
        if i > 0 && !b.chunk_delay.is_zero() {
            tokio::time::sleep(b.chunk_delay).await;
        }
        if s.write_response_body(Bytes::from(ev), false).await.is_err() {
            return false;
        }
    }
    s.write_response_body(Bytes::new(), true).await.is_ok()
}

/// One framed SSE event: `event: NAME` (when named) and `data: JSON`.
pub(crate) fn sse(name: Option<&str>, data: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    if let Some(n) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(n.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    let _ = serde_json::to_writer(&mut out, data);
    out.extend_from_slice(b"\n\n");
    out
}
