//! Selection, upstream request and relay: try the route's targets in order with the same body;
//! fail over on connection errors, timeouts and retryable statuses before anything reaches the
//! client; then stream the chosen response to the client chunk by chunk.

use super::{ApiError, Ctx, Gateway, Handled, State, X_REQUEST_ID};
use crate::providers::{is_hop_by_hop_response_header, Backend};
use crate::route::Route;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::protocols::http::client::HttpSession;
use pingora::protocols::http::{HttpTask, ServerSession};
use pingora::proxy::Session;
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Connect,
    Timeout,
    Protocol,
}

impl Failure {
    fn of(e: &Error) -> Failure {
        match e.etype() {
            ErrorType::ConnectTimedout
            | ErrorType::ReadTimedout
            | ErrorType::WriteTimedout
            | ErrorType::TLSHandshakeTimedout => Failure::Timeout,
            ErrorType::ConnectRefused
            | ErrorType::ConnectNoRoute
            | ErrorType::ConnectError
            | ErrorType::ConnectProxyFailure
            | ErrorType::TLSHandshakeFailure
            | ErrorType::SocketError
            | ErrorType::BindError => Failure::Connect,
            _ => Failure::Protocol,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Failure::Connect => "connect_error",
            Failure::Timeout => "timeout",
            Failure::Protocol => "protocol_error",
        }
    }
}

pub(super) async fn run(
    gw: &Gateway,
    session: &mut Session,
    ctx: &mut Ctx,
    route: &Route,
    body: Bytes,
    model_span: Range<usize>,
) -> Result<(), Handled> {
    let st = &*gw.state;
    let enabled = |t: &&crate::route::Target| st.backends[t.backend].enabled;
    let total = route.targets.iter().filter(enabled).count();
    let model = |ctx: &Ctx| ctx.model.clone().unwrap_or_default();
    if total == 0 {
        return Err(ApiError::no_enabled_backend(&model(ctx)).into());
    }
    let mut last = Failure::Connect;
    for (i, t) in route.targets.iter().filter(enabled).enumerate() {
        let backend = &st.backends[t.backend];
        let is_last = i + 1 == total;
        let send = match &t.model {
            Some(m) => super::with_model(&body, &model_span, m),
            None => body.clone(),
        };
        ctx.attempts += 1;
        ctx.backend = Some(backend.name.clone());
        match attempt(st, session.req_header(), &ctx.request_id, backend, send).await {
            Ok((up, peer)) => {
                let status = up.response_header().map_or(0, |h| h.status.as_u16());
                if !is_last && route.failover_on_status.contains(&status) {
                    // The connection is dropped with its unread body; the next target gets
                    // the same request.
                    st.metrics
                        .upstream_failure(&backend.name, status_label(status));
                    continue;
                }
                // Earlier failed attempts show in `attempts`; `error` is for how it ended.
                ctx.error = None;
                return relay(st, session, ctx, up, &peer, backend).await;
            }
            Err(f) => {
                st.metrics.upstream_failure(&backend.name, f.label());
                ctx.error = Some(f.label());
                last = f;
            }
        }
    }
    Err(match last {
        Failure::Timeout => ApiError::upstream_timeout(&model(ctx)),
        _ => ApiError::upstream_unreachable(&model(ctx), ctx.attempts),
    }
    .into())
}

fn status_label(status: u16) -> &'static str {
    match status {
        429 => "status_429",
        500 => "status_500",
        502 => "status_502",
        503 => "status_503",
        504 => "status_504",
        s if s >= 500 => "status_5xx",
        _ => "status_4xx",
    }
}

/// One target: connect (or reuse a pooled connection), send the request, read the response
/// header. A pooled connection that turns out dead is retried once on a fresh one.
async fn attempt(
    st: &State,
    client: &RequestHeader,
    request_id: &str,
    backend: &Backend,
    body: Bytes,
) -> Result<(HttpSession, HttpPeer), Failure> {
    let peer = backend.peer().await.map_err(|e| {
        log::warn!("backend {}: {e}", backend.name);
        Failure::Connect
    })?;
    let mut fresh_retry = true;
    loop {
        let header = backend
            .request_header(client, body.len(), request_id)
            .map_err(|_| Failure::Protocol)?;
        let (mut up, reused) = st.connector.get_http_session(&peer).await.map_err(|e| {
            log::debug!("backend {}: connect: {e}", backend.name);
            Failure::of(&e)
        })?;
        // The connector leaves these to the caller (Pingora's proxy loop sets them per session).
        up.set_read_timeout(peer.options.read_timeout);
        up.set_write_timeout(peer.options.write_timeout);
        let sent: Result<()> = async {
            up.write_request_header(Box::new(header)).await?;
            up.write_request_body(body.clone(), true).await?;
            up.finish_request_body().await?;
            up.read_response_header().await
        }
        .await;
        match sent {
            Ok(()) => return Ok((up, peer)),
            Err(e) => {
                let f = Failure::of(&e);
                if reused && fresh_retry && f != Failure::Timeout {
                    fresh_retry = false;
                    continue;
                }
                log::debug!("backend {}: exchange: {e}", backend.name);
                return Err(f);
            }
        }
    }
}

const X_UPSTREAM_REQUEST_ID: http::HeaderName =
    http::HeaderName::from_static("x-upstream-request-id");

const SSE_STREAM_ERROR: &[u8] = b"data: {\"error\":{\"message\":\"The upstream connection failed during the response.\",\"type\":\"server_error\",\"param\":null,\"code\":\"upstream_stream_error\"}}\n\n";

/// How relaying a body ended.
enum Relayed {
    Done,
    ClientGone(Box<Error>),
    UpstreamFailed(Box<Error>),
}

/// Sends the upstream's response to the client as it arrives.
async fn relay(
    st: &State,
    session: &mut Session,
    ctx: &mut Ctx,
    mut up: HttpSession,
    peer: &HttpPeer,
    backend: &Backend,
) -> Result<(), Handled> {
    let hdr = {
        let Some(uh) = up.response_header() else {
            return Err(ApiError::upstream_unreachable("", ctx.attempts).into());
        };
        ctx.status = uh.status.as_u16();
        client_response_header(uh, &ctx.request_id).map_err(Handled::Abort)?
    };
    let is_sse = hdr
        .headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let has_length = hdr.headers.contains_key(http::header::CONTENT_LENGTH);
    let ds = session.as_downstream_mut();
    ds.write_response_header(Box::new(hdr))
        .await
        .map_err(Handled::Abort)?;
    let outcome = if has_length {
        relay_sized(&mut up, ds).await
    } else {
        relay_streamed(&mut up, ds).await
    };
    match outcome {
        Relayed::Done => {
            ds.write_response_body(Bytes::new(), true)
                .await
                .map_err(Handled::Abort)?;
            st.connector
                .release_http_session(up, peer, Some(backend.idle_timeout()))
                .await;
            Ok(())
        }
        Relayed::ClientGone(e) => {
            ctx.error = Some("client_disconnected");
            Err(Handled::Abort(e))
        }
        Relayed::UpstreamFailed(e) => {
            ctx.error = Some(match Failure::of(&e) {
                Failure::Timeout => "upstream_timeout_mid_response",
                _ => "upstream_failed_mid_response",
            });
            if is_sse {
                let _ = ds
                    .write_response_body(Bytes::from_static(SSE_STREAM_ERROR), false)
                    .await;
            }
            Err(Handled::Abort(e))
        }
    }
}

/// A body with a known length (a JSON reply): read and write in turn; the writer flushes once.
async fn relay_sized(up: &mut HttpSession, ds: &mut ServerSession) -> Relayed {
    loop {
        match up.read_response_body().await {
            Ok(Some(chunk)) => {
                if let Err(e) = ds.write_response_body(chunk, false).await {
                    return Relayed::ClientGone(e);
                }
            }
            Ok(None) => return Relayed::Done,
            Err(e) => return Relayed::UpstreamFailed(e),
        }
    }
}

/// Chunks waiting between the upstream reader and the client writer.
const STREAM_QUEUE: usize = 64;

/// A streamed body (SSE): the upstream is read while the client is written, as Pingora's own
/// proxy loop does. Whatever has arrived by the time the client is writable goes out in one
/// write and one flush; nothing waits for more.
async fn relay_streamed(up: &mut HttpSession, ds: &mut ServerSession) -> Relayed {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Option<Bytes>>>(STREAM_QUEUE);
    let reader = async move {
        loop {
            let r = up.read_response_body().await;
            let last = !matches!(r, Ok(Some(_)));
            if tx.send(r).await.is_err() || last {
                return;
            }
        }
    };
    let writer = async {
        let mut tasks = Vec::with_capacity(8);
        while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            let mut end = None;
            while let Some(item) = next.take() {
                match item {
                    Ok(Some(chunk)) => tasks.push(HttpTask::Body(Some(chunk), false)),
                    Ok(None) => end = Some(Relayed::Done),
                    Err(e) => end = Some(Relayed::UpstreamFailed(e)),
                }
                if end.is_none() {
                    next = rx.try_recv().ok();
                }
            }
            if !tasks.is_empty() {
                if let Err(e) = ds.response_duplex_vec(std::mem::take(&mut tasks)).await {
                    return Relayed::ClientGone(e);
                }
            }
            if let Some(end) = end {
                return end;
            }
        }
        Relayed::Done
    };
    tokio::pin!(reader, writer);
    // The reader is polled first, so every chunk already received is queued before the writer
    // takes a batch. If the client goes away the reader is dropped with the upstream
    // connection; if the upstream finishes first the writer drains what is queued.
    tokio::select! {
        biased;
        _ = &mut reader => writer.await,
        out = &mut writer => out,
    }
}

/// The upstream's header minus hop-by-hop fields, with the gateway's request id. The upstream's
/// own id is kept as `x-upstream-request-id`.
fn client_response_header(uh: &ResponseHeader, request_id: &str) -> Result<ResponseHeader> {
    // No case map (see `Backend::request_header`): names reach the client in lowercase.
    let mut h = ResponseHeader::build_no_case(uh.status, Some(uh.headers.len() + 2))?;
    let mut length = None;
    for (k, v) in uh.headers.iter() {
        if k == http::header::CONTENT_LENGTH {
            length = Some(v.clone());
        } else if k == X_REQUEST_ID {
            h.append_header(X_UPSTREAM_REQUEST_ID, v.clone())?;
        } else if !is_hop_by_hop_response_header(k) {
            h.append_header(k.clone(), v.clone())?;
        }
    }
    match length {
        Some(l) => h.insert_header(http::header::CONTENT_LENGTH, l)?,
        // Chunked on HTTP/1.1 (Pingora drops it for h2 clients), so each chunk is flushed.
        None => h.insert_header(http::header::TRANSFER_ENCODING, "chunked")?,
    }
    h.insert_header(X_REQUEST_ID, request_id)?;
    Ok(h)
}
