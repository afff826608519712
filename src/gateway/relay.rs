//! Relay: the chosen upstream response to the client. Same API on both sides: the body as it
//! arrives. Different APIs: a stream is translated event by event in the writer of the one
//! stream loop (`relay_streamed`), a complete reply is read whole and translated, an error
//! reply is rendered in the client's shape. Content type and framing come from the translator,
//! never from the upstream's `content-length`.

use super::ctx::{Ctx, RelayEnd};
use super::failure::Handled;
use super::handoff::Handoff;
use super::headers::Headers;
use super::reply::{EmbedReply, Reply, MAX_REPLY};
use super::respond::{own_headers, X_REQUEST_ID};
use super::state::State;
use super::writers::{BodyWriter, Passthrough, Translating};
use super::Session;
use crate::error::ApiError;
use crate::formats::{self, ReplyContext};
use crate::providers::{is_hop_by_hop_response_header, Backend};
use crate::stream::Translator;
use bytes::{Bytes, BytesMut};
use http::HeaderValue;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::protocols::http::client::HttpSession;
use pingora::protocols::http::ServerSession;
use std::time::Instant;

/// The chosen upstream response, and where its connection goes back when done.
pub(super) struct Upstream<'a> {
    pub session: Box<HttpSession>,
    pub peer: &'a HttpPeer,
    pub backend: &'a Backend,
    /// A stream's first chunk, read before the reply was chosen.
    pub first: Option<Bytes>,
    /// The backend's total timeout for the exchange.
    pub until: Option<tokio::time::Instant>,
}

impl Upstream<'_> {
    /// The next chunk of the body (the first one kept aside, if any), within the total timeout.
    async fn read(&mut self) -> Result<Option<Bytes>> {
        if let Some(first) = self.first.take() {
            return Ok(Some(first));
        }
        // Read to its end already: no further read (each is timed; a timer reads the clock).
        if self.session.response_done() {
            return Ok(None);
        }
        let Some(until) = self.until else {
            return self.session.read_response_body().await;
        };
        match tokio::time::timeout_at(until, self.session.read_response_body()).await {
            Ok(r) => r,
            Err(_) => Error::e_explain(
                ErrorType::ReadTimedout,
                "the backend's total_timeout_ms passed",
            ),
        }
    }

    /// Returns the connection to the pool (its body has been read to the end).
    async fn release(self, st: &State) {
        let idle = Some(self.backend.idle_timeout());
        // Pingora's release is a future of about 4 KiB: boxed, every relay's is that smaller.
        let (session, peer) = (self.session, self.peer);
        super::in_box(|| st.connector.release_http_session(*session, peer, idle)).await;
    }
}

/// Largest complete upstream reply translated in memory, and largest error body read.
const MAX_ERROR_BODY: usize = 1024 * 1024;

const X_UPSTREAM_REQUEST_ID: http::HeaderName =
    http::HeaderName::from_static("x-upstream-request-id");

/// How relaying a body ended.
enum Relayed {
    Done,
    ClientGone(Box<Error>),
    UpstreamFailed(Box<Error>),
    /// The upstream's stream could not be read or translated (bad event, cut short).
    Broken(ApiError),
}

/// Sends the upstream's response to the client.
pub(super) async fn relay(
    st: &State,
    session: &mut Session,
    ctx: &mut Ctx,
    mut up: Upstream<'_>,
    reply: &Reply,
) -> Result<(), Handled> {
    let Some(uh) = up.session.response_header() else {
        return Err(ApiError::upstream_unreachable("", ctx.attempts).into());
    };
    let status = uh.status.as_u16();
    ctx.status = status;
    let ctype = uh.headers.get(http::header::CONTENT_TYPE);
    let is_sse = ctype.is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    // Bedrock's ConverseStream: binary frames, translated like SSE.
    let is_event_stream = ctype.is_some_and(|v| {
        v.as_bytes()
            .starts_with(b"application/vnd.amazon.eventstream")
    });
    if reply.upstream == reply.client && status >= 400 {
        // Boxed: an error's relay is rare and larger than a reply's.
        return super::in_box(|| relay_error(st, session, ctx, up)).await;
    }
    // A miss on a cached route: the reply is recorded as it passes.
    let record = status == 200 && super::cached::records(ctx);
    if reply.upstream == reply.client {
        let hdr = Box::new(client_response_header(uh, ctx, None).map_err(Handled::Abort)?);
        let sized = hdr.headers.contains_key(http::header::CONTENT_LENGTH);
        let mut w = Passthrough::new(reply, is_sse);
        if record {
            w = w.record();
        }
        let out = send(st, session, ctx, up, hdr, &mut w, sized).await;
        return recorded(ctx, &mut w, reply, out);
    }
    if status >= 400 {
        let body = read_all(&mut up, MAX_ERROR_BODY, true)
            .await
            .unwrap_or_default();
        let masked = up.backend.mask(&body);
        let body = masked.as_deref().unwrap_or(&body);
        return Err(formats::parse_error(reply.upstream, status, body).into());
    }
    let rctx = reply_context(reply);
    if is_sse || is_event_stream {
        let sse = Some(("text/event-stream; charset=utf-8", None));
        let hdr = Box::new(client_response_header(uh, ctx, sse).map_err(Handled::Abort)?);
        let mut t = Translator::new(reply.upstream, reply.client, &rctx, reply.include_usage);
        if reply.keep.is_some() {
            t = t.keeping();
        }
        if record {
            t = t.collecting();
        }
        let mut w = Translating::new(t, reply.keep.clone());
        let out = send(st, session, ctx, up, hdr, &mut w, false).await;
        return recorded(ctx, &mut w, reply, out);
    }
    translate_whole(st, session, ctx, up, reply, &rctx).await
}

/// A complete reply in another API: read whole, translated, written with its length.
async fn translate_whole(
    st: &State,
    session: &mut Session,
    ctx: &mut Ctx,
    mut up: Upstream<'_>,
    reply: &Reply,
    rctx: &ReplyContext<'_>,
) -> Result<(), Handled> {
    let Some(uh) = up.session.response_header() else {
        return Err(ApiError::upstream_unreachable("", ctx.attempts).into());
    };
    // The length is set once the translated body is known.
    let mut hdr = client_response_header(uh, ctx, Some(("application/json", Some(0))))
        .map_err(Handled::Abort)?;
    let body = read_all(&mut up, MAX_REPLY, false).await.map_err(|e| {
        ApiError::bad_upstream(format!("The upstream reply could not be read: {e}"))
    })?;
    let (out, usage, ids) = match &reply.embed {
        Some(e) => embeddings(up.backend, &body, reply, e).map(|(o, u)| (o, u, None))?,
        None => formats::translate_response_kept(reply.upstream, reply.client, &body, rctx)?,
    };
    up.release(st).await;
    if let Some(k) = &reply.keep {
        k.put_with(&out, ids).await;
    }
    let out = Bytes::from(out);
    if let Some(c) = ctx.cache.as_deref_mut().filter(|c| c.fill.is_some()) {
        let pivot = (reply.embed.is_none())
            .then(|| formats::to_pivot(reply.upstream, &body, rctx))
            .flatten();
        c.recorded = Some(crate::cache::Reply {
            pivot,
            exact: Some(out.clone()),
            tool_names: reply.tool_names.clone(),
            ..Default::default()
        });
    }
    // The whole reply was generated and read: billed as reported, whatever the client does.
    ctx.tally.usage = Some(usage);
    ctx.relayed = Some(RelayEnd::Complete);
    hdr.insert_header(http::header::CONTENT_LENGTH, out.len())
        .map_err(Handled::Abort)?;
    let ds = &mut *session;
    ds.write_response_header(Box::new(hdr))
        .await
        .map_err(Handled::Abort)?;
    ds.write_response_body(out, true)
        .await
        .map_err(Handled::Abort)
}

/// Keeps what writer `w` recorded for the cache (see `cached::settle`), then passes `out` on.
fn recorded(
    ctx: &mut Ctx,
    w: &mut impl BodyWriter,
    reply: &Reply,
    out: Result<(), Handled>,
) -> Result<(), Handled> {
    if let Some(c) = ctx.cache.as_deref_mut().filter(|c| c.fill.is_some()) {
        c.recorded = w.recorded(&reply_context(reply)).map(|mut r| {
            r.tool_names = reply.tool_names.clone();
            r
        });
    }
    out
}

/// An error reply in the client's own API: read whole (bounded), the backend's secrets masked
/// in it, and written with its length.
async fn relay_error(
    st: &State,
    session: &mut Session,
    ctx: &mut Ctx,
    mut up: Upstream<'_>,
) -> Result<(), Handled> {
    let Some(uh) = up.session.response_header() else {
        return Err(ApiError::upstream_unreachable("", ctx.attempts).into());
    };
    let mut hdr = client_response_header(uh, ctx, None).map_err(Handled::Abort)?;
    let body = read_all(&mut up, MAX_ERROR_BODY, true)
        .await
        .unwrap_or_default();
    let body = match up.backend.mask(&body) {
        Some(masked) => Bytes::from(masked),
        None => body,
    };
    up.release(st).await;
    hdr.remove_header(&http::header::TRANSFER_ENCODING);
    hdr.insert_header(http::header::CONTENT_LENGTH, body.len())
        .map_err(Handled::Abort)?;
    ctx.relayed = Some(RelayEnd::Complete);
    let ds = &mut *session;
    ds.write_response_header(Box::new(hdr))
        .await
        .map_err(Handled::Abort)?;
    ds.write_response_body(body, true)
        .await
        .map_err(Handled::Abort)
}

/// A provider's embeddings reply as OpenAI's.
fn embeddings(
    backend: &Backend,
    body: &[u8],
    reply: &Reply,
    e: &EmbedReply,
) -> Result<(Vec<u8>, formats::Usage), ApiError> {
    let (vectors, tokens) = backend.provider.embed_response(body, &e.model)?;
    let input = tokens.unwrap_or(e.estimate);
    let out = formats::openai::embeddings::response(&vectors, input, &reply.client_model, e.base64);
    let usage = formats::Usage {
        input,
        ..Default::default()
    };
    Ok((out, usage))
}

/// Writes the header, relays the body through `w`, and settles how it ended.
async fn send(
    st: &State,
    session: &mut Session,
    ctx: &mut Ctx,
    mut up: Upstream<'_>,
    hdr: Box<ResponseHeader>,
    w: &mut impl BodyWriter,
    sized: bool,
) -> Result<(), Handled> {
    let ds = &mut *session;
    // Boxed by the caller: unboxed, the header (232 bytes) stayed in every stream's future.
    ds.write_response_header(hdr)
        .await
        .map_err(Handled::Abort)?;
    let outcome = if sized {
        relay_sized(&mut up, ds, w).await
    } else {
        relay_streamed(&mut up, ds, w, &mut ctx.first_byte).await
    };
    ctx.tally = w.tally();
    ctx.relayed = Some(match outcome {
        Relayed::Done => RelayEnd::Complete,
        _ => RelayEnd::CutShort,
    });
    let (label, err) = match outcome {
        Relayed::Done => {
            ds.write_response_body(Bytes::new(), true)
                .await
                .map_err(Handled::Abort)?;
            up.release(st).await;
            return Ok(());
        }
        Relayed::ClientGone(e) => {
            ctx.error = Some("client_disconnected");
            return Err(Handled::Abort(e));
        }
        Relayed::UpstreamFailed(e) => {
            let label = match super::failure::Failure::of(&e) {
                super::failure::Failure::Timeout => "upstream_timeout_mid_response",
                _ => "upstream_failed_mid_response",
            };
            (label, e)
        }
        Relayed::Broken(e) => {
            let abort = Error::explain(ErrorType::InvalidHTTPHeader, e.message.clone());
            (e.label(), abort)
        }
    };
    // The client must see the failure: an error event in its API, then a cut connection.
    ctx.error = Some(label);
    if let Some(ev) = w.fail(&ApiError::stream_broken()) {
        let _ = ds.write_response_body(ev, false).await;
    }
    Err(Handled::Abort(err))
}

/// A body with a known length (a JSON reply): read and write in turn; the writer flushes once.
async fn relay_sized(
    up: &mut Upstream<'_>,
    ds: &mut ServerSession,
    w: &mut impl BodyWriter,
) -> Relayed {
    loop {
        match up.read().await {
            Ok(Some(chunk)) => {
                w.keep(&chunk);
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
/// proxy loop does. Whatever has arrived by the time the client is writable goes through the
/// writer `w` and out in one write and one flush; nothing waits for more.
async fn relay_streamed(
    up: &mut Upstream<'_>,
    ds: &mut ServerSession,
    w: &mut impl BodyWriter,
    first_byte: &mut Option<Instant>,
) -> Relayed {
    let queue = Handoff::<Result<Option<Bytes>>>::new(STREAM_QUEUE);
    let reader = async {
        loop {
            let r = up.read().await;
            let last = !matches!(r, Ok(Some(_)));
            queue.send(r).await;
            if last {
                return;
            }
        }
    };
    let writer = async {
        let mut tasks = Vec::with_capacity(8);
        loop {
            let mut next = Some(queue.recv().await);
            let mut end = None;
            while let Some(item) = next.take() {
                let r = match item {
                    Ok(Some(chunk)) => w.chunk(chunk, &mut tasks),
                    Ok(None) => w.end(&mut tasks).map(|()| end = Some(Relayed::Done)),
                    Err(e) => {
                        end = Some(Relayed::UpstreamFailed(e));
                        Ok(())
                    }
                };
                if let Err(e) = r {
                    end = Some(Relayed::Broken(e));
                }
                if end.is_none() {
                    next = queue.try_recv();
                }
            }
            // Kept before the client sees the end, so its next turn finds it.
            if let Some((response, keep)) = w.take_final() {
                keep.put(&response).await;
            }
            if !tasks.is_empty() {
                if let Err(e) = ds.response_duplex_vec(std::mem::take(&mut tasks)).await {
                    return Relayed::ClientGone(e);
                }
                first_byte.get_or_insert_with(Instant::now);
            }
            if let Some(end) = end {
                return end;
            }
        }
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

/// Reads a whole body up to `limit` bytes. With `truncate`, a longer body is cut at the
/// limit (error bodies); otherwise it is an error.
async fn read_all(up: &mut Upstream<'_>, limit: usize, truncate: bool) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = up.read().await? {
        if buf.len() + chunk.len() > limit {
            if truncate {
                buf.extend_from_slice(&chunk[..limit - buf.len()]);
                break;
            }
            return Error::e_explain(ErrorType::InvalidHTTPHeader, "reply too large");
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// What a translated reply names: the client's model, now, the client's tool names.
fn reply_context(reply: &Reply) -> ReplyContext<'_> {
    ReplyContext {
        client_model: &reply.client_model,
        created: crate::clock::now().max(0) as u64,
        tool_names: reply.tool_names.as_ref(),
    }
}

/// Names the client's fields a translation dropped (README "Field policy").
fn write_ignored(ctx: &Ctx, h: &mut http::HeaderMap) -> Result<()> {
    const IGNORED: http::HeaderName = http::HeaderName::from_static("x-tollgate-ignored-fields");
    if !ctx.ignored_fields.is_empty() {
        let v = formats::fields::header_value(&ctx.ignored_fields);
        let v = http::HeaderValue::try_from(v).or_err(InvalidHTTPHeader, "ignored fields")?;
        h.put(&IGNORED, v)?;
    }
    Ok(())
}

/// The upstream's header minus hop-by-hop fields, with the gateway's request id and own
/// headers; the upstream's own id is kept as `x-upstream-request-id`. `body` replaces the
/// content type and framing for a translated body (a length, or chunked), which also names
/// the fields the translation ignored.
fn client_response_header(
    uh: &ResponseHeader,
    ctx: &Ctx,
    body: Option<(&'static str, Option<usize>)>,
) -> Result<ResponseHeader> {
    // No case map (see `Backend::request_header`): names reach the client in lowercase, and
    // go straight into the map.
    let mut parts = http::Response::new(()).into_parts().0;
    parts.status = uh.status;
    let h = &mut parts.headers;
    h.reserve(uh.headers.len() + 2);
    let mut length = None;
    let too_many = |_| Error::explain(InvalidHTTPHeader, "too many response headers");
    for (k, v) in uh.headers.iter() {
        if k == http::header::CONTENT_LENGTH {
            length = Some(v.clone());
        } else if k == X_REQUEST_ID || (body.is_some() && k == "request-id") {
            h.try_append(X_UPSTREAM_REQUEST_ID, v.clone())
                .map_err(too_many)?;
        } else if body.is_some()
            && (k == http::header::CONTENT_TYPE || k == http::header::CONTENT_ENCODING)
        {
            continue;
        } else if !is_hop_by_hop_response_header(k) {
            h.try_append(k.clone(), v.clone()).map_err(too_many)?;
        }
    }
    own_headers(ctx, parts.status.as_u16(), h)?;
    if body.is_some() {
        write_ignored(ctx, h)?;
    }
    if let Some((ctype, len)) = body {
        h.put(&http::header::CONTENT_TYPE, HeaderValue::from_static(ctype))?;
        length = len.map(HeaderValue::from);
    }
    match length {
        Some(l) => h.put(&http::header::CONTENT_LENGTH, l)?,
        // Chunked on HTTP/1.1 (Pingora drops it for h2 clients), so each chunk is flushed.
        None => h.put(
            &http::header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        )?,
    }
    let id = HeaderValue::from_str(&ctx.request_id);
    h.put(&X_REQUEST_ID, id.or_err(InvalidHTTPHeader, "request id")?)?;
    Ok(ResponseHeader::from(parts))
}
