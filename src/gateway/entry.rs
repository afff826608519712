//! The request's way in: the front it speaks, its key, the route for its model, admission
//! under the limits; then the exchange with the upstream.

use super::admission::probe;
use super::body::read_body;
use super::ctx::Ctx;
use super::failure::Handled;
use super::respond::write_json;
use super::state::State;
use super::Session;
use super::{address, exchange, limit, plan, stored};
use crate::error::ApiError;
use crate::formats::Format;
use crate::fronts::Front;
use std::sync::Arc;

/// Everything up to the exchange; the exchange answers the client itself.
pub(super) async fn handle(session: &mut Session, ctx: &mut Ctx) -> Result<(), Handled> {
    let snap = ctx.state.clone();
    let st = &*snap;
    let method = session.req_header().method.clone();
    let path = session.req_header().uri.path();
    let front = Front::of(path);
    ctx.api = Front::api(front, session.req_header());
    oversized(st, session)?;
    let path = session.req_header().uri.path();
    let Some(front) = front else {
        return Err(ApiError::unknown_url(method.as_str(), path).into());
    };
    unambiguous(session)?;

    identify(st, session, ctx).await?;
    if front == Front::Models {
        return models(st, session, ctx).await;
    }
    if !Front::allows(session.req_header().uri.path(), &method) {
        let path = session.req_header().uri.path();
        return Err(ApiError::method_not_allowed(method.as_str(), path).into());
    }
    if front == Front::StoredResponse {
        // Boxed: a rare path, and its future was the request path's largest.
        return super::in_box(|| stored::handle(st, session, ctx)).await;
    }
    let body = read_body(session, st.max_body_bytes).await?;
    let probe = probe(&body)?;
    if probe.model.len() > MAX_MODEL {
        // Never reflected: not in the reply, the access log or the ledger.
        let why = format!(
            "`model` is {} bytes; at most {MAX_MODEL} are accepted.",
            probe.model.len()
        );
        return Err(ApiError::bad_request(why).with_param("model").into());
    }
    if let Some(k) = ctx.key.as_deref().filter(|k| !k.allows(&probe.model)) {
        return Err(ApiError::model_not_allowed(&k.name, &probe.model).into());
    }
    let Some(m) = st.router.find(&probe.model) else {
        return Err(ApiError::model_not_found(&probe.model).into());
    };
    ctx.model_label = Some(m.model_label.clone());
    ctx.route = Some(m.route.name.clone());
    let client_model: Arc<str> = Arc::from(probe.model);
    ctx.model = Some(client_model.clone());
    let state = plan::responses_state(st, ctx, front, m.route, &client_model, &body).await?;
    // Estimates count the history a translated target is sent.
    let estimated = (state.as_ref().and_then(|s| s.body.clone())).unwrap_or(body.clone());
    ctx.body = Some(estimated.clone());
    let max_tokens = probe.max_tokens.unwrap_or(m.route.default_output_tokens);
    let priced_as = m.route.targets.first().and_then(|t| t.model.as_deref());
    let cap = (max_tokens, probe.max_tokens.is_some());
    limit::admit(st, ctx, &estimated, cap, priced_as).await?;
    let req = plan::Request {
        front,
        body,
        model_span: probe.model_span,
        client_model,
        stream: probe.stream,
        has_stream_options: probe.has_stream_options,
        include_usage: probe.include_usage,
        max_tokens,
        fields: plan::field_policy(ctx.key.as_deref(), m.route),
        state,
    };
    let route = m.route;
    if super::cached::lookup(st, session, ctx, route, &req).await? {
        return Ok(());
    }
    exchange::Exchange {
        st,
        session,
        ctx,
        route,
        req,
    }
    .run()
    .await
}

/// Who calls: its address (refused unless the listener's rules permit it), its key or JWT
/// (whose own address rules apply) and its end user.
async fn identify(st: &State, session: &mut Session, ctx: &mut Ctx) -> Result<(), Handled> {
    address::admit_listener(st, session, ctx)?;
    authenticate(st, session, ctx).await?;
    Ok(address::admit_key(ctx)?)
}

/// The caller: its key or JWT (when the gateway has either) and its end user.
async fn authenticate(st: &State, session: &mut Session, ctx: &mut Ctx) -> Result<(), Handled> {
    let req = session.req_header();
    let authorization = req.headers.get(http::header::AUTHORIZATION);
    let authorization = authorization.map(|v| v.as_bytes());
    let x_api_key = req.headers.get("x-api-key").map(|v| v.as_bytes());
    let jwt = match &st.jwt {
        Some(v) => v
            .token(authorization, x_api_key, !st.keys.is_open())
            .map_err(|e| e.to_api())?
            .map(|t| (v, t)),
        None => None,
    };
    ctx.key = match jwt {
        // Verified by its issuer's keys, which may have to be fetched first.
        // Boxed: verifying may fetch keys (an HTTP exchange of about 11 KiB of future).
        Some((v, token)) => {
            let verified = super::in_box(|| v.verify(&token)).await;
            Some(verified.map_err(|e| e.to_api())?)
        }
        None => st
            .keys
            .authenticate_at(authorization, x_api_key, ctx.start_ms)
            .map_err(|e| ApiError::unauthorized(e.to_string()))?,
    };
    let req = session.req_header();
    ctx.user =
        limit::user_from_header(st, req).or_else(|| ctx.key.as_ref().and_then(|k| k.user.clone()));
    Ok(())
}

/// `GET /v1/models`: the routes' models, in the client's API shape.
async fn models(st: &State, session: &mut Session, ctx: &mut Ctx) -> Result<(), Handled> {
    let method = &session.req_header().method;
    if method != http::Method::GET && method != http::Method::HEAD {
        let path = session.req_header().uri.path();
        return Err(ApiError::method_not_allowed(method.as_str(), path).into());
    }
    let head_only = method == http::Method::HEAD;
    let anthropic = ctx.api == Format::Anthropic;
    let body = match ctx.key.as_deref().filter(|k| k.models.is_some()) {
        // A key limited to some models lists only those.
        Some(k) => st.router.models_json_only(anthropic, |m| k.allows(m)),
        None if anthropic => st.router.models_json_anthropic().clone(),
        None => st.router.models_json().clone(),
    };
    write_json(session, ctx, 200, body, head_only)
        .await
        .map_err(Handled::Abort)
}

/// The longest model name accepted (real ones are under 100 bytes).
const MAX_MODEL: usize = 256;

/// A request whose framing is ambiguous is refused and its connection closed (RFC 9112 §6.1,
/// as nginx does).
fn unambiguous(session: &mut Session) -> Result<(), Handled> {
    if !smuggles(session) {
        return Ok(());
    }
    session.set_keepalive(None);
    let why = "A request may not carry both Content-Length and Transfer-Encoding.";
    Err(ApiError::bad_request(why).into())
}

/// An HTTP/1 request head with both `Transfer-Encoding` and `Content-Length` (Pingora drops the
/// length and reads the chunks; the raw head still shows both). Scanned only when
/// `Transfer-Encoding` is present.
fn smuggles(session: &Session) -> bool {
    let req = session.req_header();
    if !req.headers.contains_key(http::header::TRANSFER_ENCODING) {
        return false;
    }
    let Some(h1) = session.as_http1() else {
        return false;
    };
    let raw = h1.get_headers_raw_bytes();
    raw.split(|&b| b == b'\n').any(|line| {
        let line = line.trim_ascii_start();
        line.len() >= 15 && line[..15].eq_ignore_ascii_case(b"content-length:")
    })
}

/// 414 for a request line, 431 for a head, over the configured limits, in the client's API
/// shape (Pingora itself refuses only heads over 1 MiB, with a bare 400). Checked before the
/// path is looked at, so an oversized one is never reflected.
fn oversized(st: &State, session: &mut Session) -> Result<(), Handled> {
    let req = session.req_header();
    let line = req.method.as_str().len() + req.raw_path().len() + 10;
    let head = match session.as_http1() {
        Some(h1) => h1.get_headers_raw_bytes().len(),
        None => {
            line + req
                .headers
                .iter()
                .map(|(k, v)| k.as_str().len() + v.len() + 4)
                .sum::<usize>()
        }
    };
    let e = if line > st.max_request_line_bytes {
        ApiError::uri_too_long(st.max_request_line_bytes)
    } else if head > st.max_header_bytes {
        ApiError::head_too_large(st.max_header_bytes)
    } else {
        return Ok(());
    };
    session.set_keepalive(None);
    Err(e.into())
}
