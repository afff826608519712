//! Selection and upstream request: try the route's targets in order; for each, the provider
//! addresses the request and the body passes through (same API) or is translated (another
//! API); fail over on connection errors, timeouts and retryable statuses before anything
//! reaches the client; then `relay` sends the chosen response.

use super::relay::{relay, EmbedReply, Reply, Upstream};
use super::{ApiError, Ctx, Gateway, Handled, State};
use crate::formats::{self, Format};
use crate::fronts::Front;
use crate::providers::Backend;
use crate::route::Route;
use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::protocols::http::client::HttpSession;
use pingora::proxy::Session;
use std::ops::Range;
use std::sync::Arc;

/// What the exchange needs from admission.
pub(super) struct Request {
    pub front: Front,
    pub body: Bytes,
    /// Where `model` sits in `body`, for the override splice.
    pub model_span: Range<usize>,
    pub client_model: Arc<str>,
    pub stream: bool,
    /// OpenAI clients: `stream_options` is in the body, and whether it asks for usage.
    pub has_stream_options: bool,
    pub include_usage: bool,
}

/// One target's upstream request.
struct Plan {
    path: String,
    body: Bytes,
    translated: bool,
    reply: Reply,
}

enum Planned {
    Send(Plan),
    /// Answered by the gateway itself (a token estimate for a backend that cannot count).
    Local(Bytes),
}

/// Addresses the request for `backend` and passes the body through or translates it. A request
/// the provider cannot express is a 400 here, before anything is sent.
fn plan(
    req: &Request,
    client_hdr: &RequestHeader,
    backend: &Backend,
    target_model: Option<&str>,
) -> Result<Planned, ApiError> {
    let p = &*backend.provider;
    let client = Front::api(Some(req.front), client_hdr);
    let op = req.front.operation(p.format()).filter(|op| p.supports(*op));
    let Some(op) = op else {
        return unserved(req, backend);
    };
    let model = target_model.unwrap_or(&req.client_model);
    let reply = |upstream, include_usage| Reply {
        client,
        upstream,
        include_usage,
        client_model: req.client_model.clone(),
        embed: None,
        strip_usage: false,
    };
    let base = backend.base_path();
    if req.front == Front::Embeddings && p.format() != Format::OpenAi {
        let e = formats::openai::embeddings::parse(&req.body)?;
        let body = p.embed_request(&e, model)?;
        let mut r = reply(p.format(), false);
        r.embed = Some(EmbedReply {
            base64: e.base64,
            estimate: formats::anthropic::count::text_tokens(e.chars()),
            model: model.to_string(),
        });
        return Ok(Planned::Send(Plan {
            path: p.path(base, op, model, None, false),
            body: Bytes::from(body),
            translated: true,
            reply: r,
        }));
    }
    if p.format() == client {
        let mut body = match target_model {
            Some(m) => super::with_model(&req.body, &req.model_span, m),
            None => req.body.clone(),
        };
        let mut stream = false;
        if let Some(adapted) = p.adapt_body(&body) {
            let (b, s) = adapted?;
            (body, stream) = (Bytes::from(b), s);
        }
        let mut r = reply(client, false);
        if asks_for_usage(req, client) {
            // Billing needs the usage chunk; the client gets it only if it asked.
            if let Some(b) = formats::openai::usage::ask_for_usage(&body, req.has_stream_options) {
                (body, r.strip_usage) = (b, true);
            }
        }
        return Ok(Planned::Send(Plan {
            path: p.path(base, op, model, client_hdr.uri.query(), stream),
            body,
            translated: false,
            reply: r,
        }));
    }
    let t = formats::translate_request(client, p.format(), &req.body, &p.request_options(model))?;
    let body = match p.adapt_body(&t.body) {
        Some(adapted) => adapted?.0,
        None => t.body,
    };
    Ok(Planned::Send(Plan {
        path: p.path(base, op, model, None, t.stream),
        body: Bytes::from(body),
        translated: true,
        reply: reply(p.format(), t.include_usage),
    }))
}

/// An OpenAI stream passing through that did not ask for its usage chunk.
fn asks_for_usage(req: &Request, client: Format) -> bool {
    client == Format::OpenAi
        && req.stream
        && !req.include_usage
        && matches!(req.front, Front::Chat | Front::Completions)
}

/// A front the backend does not serve: token counts are estimated here, the rest is a 400.
fn unserved(req: &Request, backend: &Backend) -> Result<Planned, ApiError> {
    if req.front == Front::CountTokens {
        let n = formats::anthropic::count::estimate(&req.body)?;
        return Ok(Planned::Local(Bytes::from(format!(
            "{{\"input_tokens\":{n}}}"
        ))));
    }
    Err(ApiError::bad_request(format!(
        "{} is not available for model `{}`: its backend `{}` does not serve it.",
        req.front.path(),
        req.client_model,
        backend.name
    )))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    Connect,
    Timeout,
    Protocol,
    /// No access token for the backend (its OAuth refresh failed).
    Credentials,
}

impl Failure {
    pub(super) fn of(e: &Error) -> Failure {
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
            Failure::Credentials => "credentials_error",
        }
    }
}

pub(super) async fn run(
    gw: &Gateway,
    session: &mut Session,
    ctx: &mut Ctx,
    route: &Route,
    req: Request,
) -> Result<(), Handled> {
    let st = &*gw.state;
    let mut order = Vec::with_capacity(route.targets.len());
    st.balancer
        .order(route, |t| st.backends[t.backend].enabled, &mut order);
    let total = order.len();
    let model = |ctx: &Ctx| ctx.model.clone().unwrap_or_default();
    if total == 0 {
        return Err(ApiError::no_enabled_backend(&model(ctx)).into());
    }
    let mut last = Failure::Connect;
    let mut no_token = None;
    let mut over_limit = None;
    for (i, t) in order.iter().map(|&i| &route.targets[i]).enumerate() {
        let backend = &st.backends[t.backend];
        let is_last = i + 1 == total;
        // In flight at this backend until the attempt fails or the relay ends.
        let _inflight = st.balancer.start(t.backend);
        ctx.backend = Some(backend.name.clone());
        ctx.served_model = Some(
            t.model
                .as_deref()
                .map_or(req.client_model.clone(), Arc::from),
        );
        let plan = match plan(&req, session.req_header(), backend, t.model.as_deref())? {
            Planned::Send(p) => p,
            Planned::Local(body) => {
                return super::write_json(session, ctx, 200, body, false)
                    .await
                    .map_err(Handled::Abort);
            }
        };
        // A backend over its own limit is skipped like a busy one.
        let held = match super::limit::admit_backend(st, ctx, &backend.name).await {
            Ok(r) => r,
            Err(d) => {
                st.metrics.upstream_failure(&backend.name, "over_limit");
                over_limit = Some(d);
                continue;
            }
        };
        let token = match access_token(st, backend).await {
            Ok(t) => t,
            // Not an attempt: nothing was sent. The next target is tried.
            Err(e) => {
                st.limiter.settle(held, Default::default()).await;
                ctx.error = Some(Failure::Credentials.label());
                (no_token, last) = (Some(e), Failure::Credentials);
                continue;
            }
        };
        ctx.attempts += 1;
        let sent = attempt(
            st,
            session.req_header(),
            &ctx.request_id,
            backend,
            &plan,
            token.as_deref(),
        );
        match sent.await {
            Ok((up, peer)) => {
                let status = up.response_header().map_or(0, |h| h.status.as_u16());
                if !is_last && route.failover_on_status.contains(&status) {
                    // The connection is dropped with its unread body; the next target gets
                    // the same request.
                    st.metrics
                        .upstream_failure(&backend.name, status_label(status));
                    st.limiter.settle(held, Default::default()).await;
                    continue;
                }
                super::limit::hold(st, ctx, Ok(held)).map_err(Handled::from)?;
                // Earlier failed attempts show in `attempts`; `error` is for how it ended.
                ctx.error = None;
                let up = Upstream {
                    session: up,
                    peer: &peer,
                    backend,
                };
                return relay(st, session, ctx, up, &plan.reply).await;
            }
            Err(f) => {
                st.limiter.settle(held, Default::default()).await;
                st.metrics.upstream_failure(&backend.name, f.label());
                ctx.error = Some(f.label());
                last = f;
            }
        }
    }
    if ctx.attempts == 0 && no_token.is_none() {
        if let Some(d) = over_limit {
            return Err(super::limit::denied(st, ctx, &d).into());
        }
    }
    Err(match last {
        Failure::Credentials => no_token.unwrap_or_else(ApiError::internal),
        Failure::Timeout => ApiError::upstream_timeout(&model(ctx)),
        _ => ApiError::upstream_unreachable(&model(ctx), ctx.attempts),
    }
    .into())
}

/// The backend's access token, when it has a token source (Vertex AI); a failure is logged and
/// counted, and is the client's error if no other target answers.
async fn access_token(st: &State, backend: &Backend) -> Result<Option<Arc<str>>, ApiError> {
    let Some(ts) = backend.provider.tokens() else {
        return Ok(None);
    };
    ts.token().await.map(Some).map_err(|e| {
        log::warn!("backend {}: {e}", backend.name);
        let label = Failure::Credentials.label();
        st.metrics.upstream_failure(&backend.name, label);
        ApiError::credentials_unavailable(&backend.name, &e.to_string())
    })
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
    plan: &Plan,
    token: Option<&str>,
) -> Result<(HttpSession, HttpPeer), Failure> {
    let peer = backend.peer().await.map_err(|e| {
        log::warn!("backend {}: {e}", backend.name);
        Failure::Connect
    })?;
    let mut fresh_retry = true;
    loop {
        let header = backend
            .request_header(
                client,
                &plan.path,
                &plan.body,
                request_id,
                plan.translated,
                token,
            )
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
            up.write_request_body(plan.body.clone(), true).await?;
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
