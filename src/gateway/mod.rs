//! The `ProxyHttp` implementation. Kept thin: each hook calls one pipeline stage.
//!
//! Pingora picks the upstream before it reads the body, and the model to route by is in the
//! body, so the whole exchange runs inside `request_filter` with Pingora's `Connector` (pools,
//! TLS, h2, timeouts) and returns `Ok(true)`. See ARCHITECTURE.md for the evidence.

mod admission;
mod exchange;
mod failure;
mod kept;
mod limit;
mod plan;
mod relay;
mod select;
mod settle;
mod stored;

pub use crate::error::ApiError;
pub use admission::{probe, with_model};

use crate::auth::KeyStore;
use crate::config::Config;
use crate::formats::Format;
use crate::fronts::Front;
use crate::limits::alerts::Alerts;
use crate::observe::{AccessLog, AccessRecord, Metrics};
use crate::providers::Backend;
use crate::route::Router;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::connectors::http::Connector;
use pingora::http::ResponseHeader;
use pingora::modules::http::HttpModules;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub(crate) const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// What lives as long as the process, whatever config is loaded: shared by every snapshot.
#[derive(Clone)]
pub struct Runtime {
    pub metrics: Arc<Metrics>,
    pub access_log: Arc<AccessLog>,
    pub connector: Arc<Connector>,
    pub counters: Arc<dyn crate::limits::counters::Counters>,
    pub ledger: Arc<crate::store::ledger::Ledger>,
    /// Budget notices, sent by a background service.
    pub alerts: Option<Arc<Alerts>>,
    /// Requests being handled now (a graceful stop waits for none).
    pub live: Arc<AtomicUsize>,
    /// Responses kept for the Responses API on translated routes.
    pub responses: Arc<dyn crate::store::responses::ResponseStore>,
}

/// Everything a request needs, built from one validated config (a snapshot: a reload builds
/// a new one, and a request keeps the one it started with). Runtime state inside it (the
/// balancer's health and load, the limit counters) is carried over by name.
pub struct State {
    pub router: Router,
    pub backends: Vec<Backend>,
    pub keys: KeyStore,
    pub max_body_bytes: usize,
    pub keepalive_seconds: u64,
    pub client_read_timeout: std::time::Duration,
    pub metrics: Arc<Metrics>,
    pub access_log: Arc<AccessLog>,
    pub connector: Arc<Connector>,
    pub limiter: crate::limits::Limiter,
    pub alerts: Option<Arc<Alerts>>,
    pub identity: crate::config::IdentitySettings,
    pub ledger: Arc<crate::store::ledger::Ledger>,
    pub prices: crate::config::PriceTable,
    /// Target order per request, and each backend's load and health.
    pub balancer: Arc<crate::balance::Balancer>,
    /// How a request's region is known.
    pub balance: crate::config::BalanceSettings,
    pub live: Arc<AtomicUsize>,
    pub responses: Arc<dyn crate::store::responses::ResponseStore>,
    /// Who may use the admin listener.
    pub admin: AdminAccess,
    /// Reload the config when its files change (polled every `interval`).
    pub watch: Option<std::time::Duration>,
}

/// The admin listener's token, from the config (so a reload can rotate it).
#[derive(Clone, Default)]
pub struct AdminAccess {
    pub token: Option<crate::config::Secret>,
    /// Every endpoint but the probes needs the token.
    pub require_token: bool,
}

/// Counts one request as live until its context is dropped (after `logging`).
struct Live(Arc<AtomicUsize>);

impl Live {
    fn new(n: &Arc<AtomicUsize>) -> Live {
        n.fetch_add(1, Ordering::Relaxed);
        Live(n.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl State {
    /// Builds a snapshot of `cfg`; `prev` is the running one, whose backends' health and
    /// load carry over to backends of the same name. Blocking (it may load a tokenizer): call
    /// it off the async runtime.
    pub fn new(cfg: &Config, rt: &Runtime, prev: Option<&State>) -> State {
        let backends: Vec<Backend> = cfg.backends.iter().map(Backend::new).collect();
        let router = Router::new(cfg, |i| backends.get(i).is_some_and(|b| b.enabled));
        let mut limiter = crate::limits::Limiter::new(
            cfg.limits.clone(),
            rt.counters.clone(),
            cfg.store.fail_open,
        )
        .with_metrics(rt.metrics.clone());
        if let Some(p) = prev {
            limiter.carry_health(&p.limiter);
        }
        if !limiter.is_empty() {
            // Limits estimate every prompt: load its tokenizer now, not on a request.
            let models = cfg.routes.iter().flat_map(|r| r.models.iter());
            crate::limits::estimate::warm(models.map(String::as_str));
        }
        if let Some(a) = &rt.alerts {
            limiter = limiter.with_alerts(a.clone());
        }
        let balancer =
            crate::balance::Balancer::carried(cfg, &rt.metrics, prev.map(|p| &*p.balancer));
        State {
            router,
            backends,
            keys: KeyStore::new(&cfg.keys),
            max_body_bytes: cfg.server.max_body_bytes,
            keepalive_seconds: cfg.server.keepalive_timeout_seconds,
            client_read_timeout: std::time::Duration::from_secs(
                cfg.server.client_read_timeout_seconds,
            ),
            metrics: rt.metrics.clone(),
            access_log: rt.access_log.clone(),
            connector: rt.connector.clone(),
            limiter,
            alerts: rt.alerts.clone(),
            identity: cfg.identity.clone(),
            ledger: rt.ledger.clone(),
            prices: cfg.prices.clone(),
            balancer: Arc::new(balancer),
            balance: cfg.balance.clone(),
            live: rt.live.clone(),
            responses: rt.responses.clone(),
            admin: AdminAccess {
                token: cfg.server.admin_token.clone(),
                require_token: cfg.server.admin_require_token,
            },
            watch: cfg
                .server
                .watch_config
                .then_some(std::time::Duration::from_millis(
                    cfg.server.watch_interval_ms,
                )),
        }
    }
}

pub struct Gateway {
    pub config: Arc<dyn Snapshots>,
}

/// Where each request takes its config snapshot from (the reloader, above this layer).
pub trait Snapshots: Send + Sync {
    /// The running snapshot; a request keeps what it loaded, start to end.
    fn load(&self) -> Arc<State>;
}

/// Per-request context: what settlement (the `logging` hook) reports.
pub struct Ctx {
    /// The config snapshot this request runs on, start to end.
    state: Arc<State>,
    start: Instant,
    request_id: String,
    key: Option<Arc<crate::auth::Holder>>,
    /// The end user: the trusted header's, else the key's.
    user: Option<Arc<str>>,
    model: Option<Arc<str>>,
    /// The client's API: errors are rendered in it.
    api: Format,
    model_label: Option<Arc<str>>,
    route: Option<Arc<str>>,
    backend: Option<Arc<str>>,
    status: u16,
    attempts: u32,
    error: Option<&'static str>,
    /// The request body (shared, not copied), for estimates at settlement.
    body: Option<Bytes>,
    /// The model asked of the provider.
    served_model: Option<Arc<str>>,
    /// What the relay saw: usage reported, text generated.
    tally: crate::stream::Tally,
    relayed: Option<settle::RelayEnd>,
    /// Nothing is generated (a stored response read back): billed as zero whatever it says.
    unbilled: bool,
    /// When the first bytes of a streamed reply went to the client.
    first_byte: Option<Instant>,
    /// Limits: what the request reserved, its estimate, and the headers they give.
    reservation: Option<crate::limits::Reservation>,
    demand: crate::limits::Demand,
    rate: crate::limits::RateHeaders,
    retry_after: Option<u64>,
    /// Client fields the translation dropped: the access log and a response header name them.
    ignored_fields: Vec<String>,
    _live: Live,
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        let state = self.config.load();
        let live = Live::new(&state.live);
        Ctx {
            state,
            start: Instant::now(),
            request_id: String::new(),
            ignored_fields: Vec::new(),
            key: None,
            user: None,
            model: None,
            api: Format::OpenAi,
            model_label: None,
            route: None,
            backend: None,
            status: 0,
            attempts: 0,
            error: None,
            body: None,
            served_model: None,
            tally: Default::default(),
            relayed: None,
            unbilled: false,
            first_byte: None,
            reservation: None,
            demand: Default::default(),
            rate: Default::default(),
            retry_after: None,
            _live: live,
        }
    }

    /// No response compression module: bodies are relayed as the upstream sent them.
    fn init_downstream_modules(&self, _modules: &mut HttpModules) {}

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        // `ctx.start` was set by `new_ctx`, right after the request header was read.
        ctx.request_id = request_id(session);
        session.set_keepalive(Some(ctx.state.keepalive_seconds));
        // Bounds each read of the client's body, so a stalled upload cannot hold a request.
        session.set_read_timeout(Some(ctx.state.client_read_timeout));
        match self.handle(session, ctx).await {
            Ok(()) => Ok(true),
            Err(Handled::Respond(e)) => {
                respond_error(session, ctx, &e).await?;
                Ok(true)
            }
            Err(Handled::Abort(e)) => Err(e),
        }
    }

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut Ctx) -> Result<Box<HttpPeer>> {
        // Unreachable: every request is answered in `request_filter`.
        Error::e_explain(ErrorType::InternalError, "upstream_peer is not used")
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        // Mid-response failures abort the connection: the client must see a truncated body,
        // not a clean end. Only a request that has no response yet gets an error body.
        if session.response_written().is_none()
            && !matches!(
                e.etype(),
                ErrorType::WriteError | ErrorType::ConnectionClosed
            )
        {
            let _ = respond_error(session, ctx, &ApiError::internal()).await;
        }
        FailToProxy {
            error_code: 0,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _s: &Session, _c: &Ctx, _e: &Error) -> bool {
        // Each request is already reported once by the access log.
        true
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        let snap = ctx.state.clone();
        let st = &*snap;
        let status = match session.response_written() {
            Some(h) if ctx.status == 0 => h.status.as_u16(),
            _ => ctx.status,
        };
        let elapsed = ctx.start.elapsed();
        let model_label = ctx.model_label.as_deref().unwrap_or("-");
        let backend = ctx.backend.as_deref().unwrap_or("-");
        st.metrics
            .observe_request(model_label, backend, status, elapsed.as_secs_f64());
        let billed = settle::release(st, ctx, status).await;
        let usage = settle::report(st, ctx, billed, elapsed);
        if ctx.model.is_some() {
            st.ledger
                .record(settle::ledger_row(ctx, usage.as_ref(), status, elapsed));
        }
        let req = session.req_header();
        let error = ctx.error.or_else(|| e.map(|e| e.etype().as_str()));
        st.access_log.write(&AccessRecord {
            ts: crate::clock::now_rfc3339(),
            request_id: &ctx.request_id,
            method: req.method.as_str(),
            path: req.uri.path(),
            key: ctx.key.as_ref().map(|k| &*k.name),
            model: ctx.model.as_deref(),
            route: ctx.route.as_deref(),
            backend: ctx.backend.as_deref(),
            status,
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            attempts: ctx.attempts,
            bytes_sent: session.as_downstream().body_bytes_sent(),
            error,
            ignored_fields: &ctx.ignored_fields,
            usage,
        });
    }
}

/// How a request that did not complete normally ends.
enum Handled {
    /// Answer with this error (nothing has been written yet).
    Respond(ApiError),
    /// Close the connection: a response was already started.
    Abort(Box<Error>),
}

impl From<ApiError> for Handled {
    fn from(e: ApiError) -> Self {
        Handled::Respond(e)
    }
}

impl Gateway {
    async fn handle(&self, session: &mut Session, ctx: &mut Ctx) -> Result<(), Handled> {
        let snap = ctx.state.clone();
        let st = &*snap;
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path();
        let front = Front::of(path);
        ctx.api = Front::api(front, session.req_header());
        let Some(front) = front else {
            return Err(ApiError::unknown_url(method.as_str(), path).into());
        };

        let req = session.req_header();
        ctx.key = st
            .keys
            .authenticate(
                req.headers
                    .get(http::header::AUTHORIZATION)
                    .map(|v| v.as_bytes()),
                req.headers.get("x-api-key").map(|v| v.as_bytes()),
            )
            .map_err(|e| ApiError::unauthorized(e.to_string()))?;
        ctx.user = limit::user_from_header(st, session.req_header())
            .or_else(|| ctx.key.as_ref().and_then(|k| k.user.clone()));

        if front == Front::Models {
            if method != http::Method::GET && method != http::Method::HEAD {
                return Err(ApiError::method_not_allowed(method.as_str(), path).into());
            }
            let body = match ctx.api {
                Format::Anthropic => st.router.models_json_anthropic(),
                _ => st.router.models_json(),
            };
            write_json(
                session,
                ctx,
                200,
                body.clone(),
                method == http::Method::HEAD,
            )
            .await
            .map_err(Handled::Abort)?;
            return Ok(());
        }
        if !Front::allows(session.req_header().uri.path(), &method) {
            let path = session.req_header().uri.path();
            return Err(ApiError::method_not_allowed(method.as_str(), path).into());
        }
        if front == Front::StoredResponse {
            return stored::handle(st, session, ctx).await;
        }

        let body = read_body(session, st.max_body_bytes).await?;
        let probe = probe(&body)?;
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
        limit::admit(st, ctx, &estimated, max_tokens, priced_as).await?;
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
        exchange::run(st, session, ctx, m.route, req).await
    }
}

/// Reads the whole request body, refusing it (413) past `limit` bytes. The limit is checked
/// against `Content-Length` first so an oversized upload is refused before it is read.
async fn read_body(session: &mut Session, limit: usize) -> Result<Bytes, Handled> {
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
            .as_downstream_mut()
            .write_continue_response()
            .await
            .map_err(Handled::Abort)?;
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(4096).min(limit));
    loop {
        match session.as_downstream_mut().read_request_body().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > limit {
                    drain_rest(session, limit).await;
                    return Err(ApiError::too_large(limit).into());
                }
                buf.extend_from_slice(&chunk);
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
    while let Ok(Some(chunk)) = session.as_downstream_mut().read_request_body().await {
        drained += chunk.len();
        if drained > bound {
            session.set_keepalive(None);
            return;
        }
    }
}

const DRAIN_MIN: usize = 8 * 1024 * 1024;

/// Accepts a client's `x-request-id` if it is short and plain; otherwise makes one.
fn request_id(session: &Session) -> String {
    if let Some(v) = session.req_header().headers.get(X_REQUEST_ID) {
        let b = v.as_bytes();
        if !b.is_empty()
            && b.len() <= 128
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
        {
            if let Ok(s) = v.to_str() {
                return s.to_string();
            }
        }
    }
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

async fn respond_error(session: &mut Session, ctx: &mut Ctx, e: &ApiError) -> Result<()> {
    ctx.status = e.status;
    ctx.error = ctx.error.or(Some(e.label()));
    let (status, body) = crate::formats::render_error(ctx.api, e);
    let head_only = session.req_header().method == http::Method::HEAD;
    let mut hdr = json_header(status, body.len(), &ctx.request_id)?;
    limit::write_headers(ctx, &mut hdr)?;
    if e.status == 405 {
        let allow = Front::allow(session.req_header().uri.path());
        hdr.insert_header(http::header::ALLOW, allow)?;
    }
    if e.status == 401 {
        hdr.insert_header(http::header::WWW_AUTHENTICATE, "Bearer")?;
    }
    let ds = session.as_downstream_mut();
    ds.write_response_header(Box::new(hdr)).await?;
    ds.write_response_body(if head_only { Bytes::new() } else { body }, true)
        .await
}

pub(super) async fn write_json(
    session: &mut Session,
    ctx: &mut Ctx,
    status: u16,
    body: Bytes,
    head_only: bool,
) -> Result<()> {
    ctx.status = status;
    let mut hdr = json_header(status, body.len(), &ctx.request_id)?;
    limit::write_headers(ctx, &mut hdr)?;
    let ds = session.as_downstream_mut();
    ds.write_response_header(Box::new(hdr)).await?;
    ds.write_response_body(if head_only { Bytes::new() } else { body }, true)
        .await
}

fn json_header(status: u16, len: usize, request_id: &str) -> Result<ResponseHeader> {
    let mut h = ResponseHeader::build(status, Some(4))?;
    h.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    h.insert_header(http::header::CONTENT_LENGTH, len)?;
    h.insert_header(X_REQUEST_ID, request_id)?;
    Ok(h)
}
