//! The upstream exchange: try the route's targets in the balancer's order, each planned for
//! its provider (`plan.rs`); move on, as the route's retry policy allows, on connect errors,
//! timeouts (a stream's first event included) and retryable statuses, before anything reaches
//! the client; then `relay` sends the chosen response. Each answer feeds the backend's health
//! (ejection, cool-downs, latency).

use super::ctx::Ctx;
use super::failure::{Failure, Handled};
use super::plan::{plan, Plan, Planned, Request};
use super::relay::{relay, Upstream};
use super::respond::write_json;
use super::state::State;
use super::Session;
use crate::balance::{cooldown, InFlight, Pick};
use crate::error::ApiError;
use crate::limits::Reservation;
use crate::providers::Backend;
use crate::route::{AffinityKey, RetryPolicy, Route, Strategy, Target};
use bytes::Bytes;
use pingora::prelude::*;
use pingora::protocols::http::client::HttpSession;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One request's exchange with its route's targets: what every step of it reads.
pub(super) struct Exchange<'a> {
    pub st: &'a State,
    pub session: &'a mut Session,
    pub ctx: &'a mut Ctx,
    pub route: &'a Route,
    pub req: Request,
}

/// What one target's turn came to.
enum Turn {
    /// The reply was relayed (or the gateway answered itself).
    Done,
    /// Try the next target.
    Next,
    /// No further target may be tried.
    Stop,
}

impl<'a> Exchange<'a> {
    #[allow(clippy::manual_async_fn)] // an `async fn` would keep `self` twice in the future
    pub(super) fn run(mut self) -> impl Future<Output = Result<(), Handled>> + Send + 'a {
        async move {
            let deadline = self.route.retry.deadline.map(|d| Instant::now() + d);
            let order = self.target_order().await?;
            let mut end = Ending::default();
            for (n, &ti) in order.iter().enumerate() {
                let last = n + 1 == order.len();
                match self.turn(ti, last, deadline, &mut end).await? {
                    Turn::Done => return Ok(()),
                    Turn::Next => continue,
                    Turn::Stop => break,
                }
            }
            Err(end.error(self.st, self.ctx))
        }
    }

    /// The order in which the request tries the route's targets (waiting if all are busy).
    async fn target_order(&mut self) -> Result<Vec<usize>, Handled> {
        let keys = PickKeys::new(self);
        let mut order = Vec::with_capacity(self.route.targets.len());
        let pick = keys.pick(&self.req);
        super::select::choose(self.st, self.ctx, self.route, &pick, &mut order).await?;
        Ok(order)
    }

    /// Target `ti`'s turn: plan, reserve, attempt; relay its reply, or say what comes next.
    async fn turn(
        &mut self,
        ti: usize,
        last: bool,
        deadline: Option<Instant>,
        end: &mut Ending,
    ) -> Result<Turn, Handled> {
        let (st, route) = (self.st, self.route);
        let t = &route.targets[ti];
        let backend = &st.backends[t.backend];
        let served = t
            .model
            .clone()
            .unwrap_or_else(|| self.req.client_model.clone());
        // A cheap estimate for the least-tokens strategy: body bytes ÷ 4 plus the output cap.
        let tokens = self.req.body.len() as u64 / 4 + self.req.max_tokens;
        // Counted in flight at this backend until the attempt fails or the relay ends.
        let Some(inflight) = st.balancer.backend(t.backend).acquire(&served, tokens) else {
            end.busy = true;
            return Ok(Turn::Next);
        };
        self.ctx.backend = Some(backend.name.clone());
        self.ctx.served_model = Some(served.clone());
        let Ready { plan, held, token } = match self.prepare(t, end).await? {
            Prepared::Ready(r) => *r,
            Prepared::Skip => return Ok(Turn::Next),
            Prepared::Answered => return Ok(Turn::Done),
        };
        let policy = &route.retry;
        if self.ctx.attempts > 0 {
            backoff(policy, self.ctx.attempts).await;
        }
        self.ctx.attempts += 1;
        st.balancer.selected(route, ti);
        let t0 = Instant::now();
        // Made once (large: every request's future holds it); timed only when bounded.
        let attempt = self.attempt(backend, &plan, token);
        let sent = match per_try_limit(policy, backend, self.req.stream, deadline) {
            Some(limit) => tokio::time::timeout(limit, attempt)
                .await
                .unwrap_or(Err(Failure::Timeout)),
            None => attempt.await,
        };
        // Whether another target may still follow (the deadline is checked after the attempt).
        let more = !last
            && self.ctx.attempts < policy.attempts
            && deadline.is_none_or(|d| Instant::now() < d);
        let got = match sent {
            Ok(got) => got,
            Err(f) => {
                inflight.failed();
                st.limiter.settle(held, Default::default()).await;
                st.metrics.upstream_failure(&backend.name, f.label());
                (self.ctx.error, end.last) = (Some(f.label()), Some(f));
                if !(more && retries(policy, f)) {
                    return Ok(Turn::Stop);
                }
                st.metrics.selection.retry(&route.name, f.label());
                return Ok(Turn::Next);
            }
        };
        let status = got.status();
        judge(&inflight, &got, status, &served, t0);
        if more && policy.statuses.contains(&status) {
            // The connection is dropped with its unread body; the next target gets the request.
            let label = status_label(status);
            st.metrics.upstream_failure(&backend.name, label);
            st.metrics.selection.retry(&route.name, label);
            st.limiter.settle(held, Default::default()).await;
            return Ok(Turn::Next);
        }
        super::limit::hold(st, self.ctx, Ok(held)).map_err(Handled::from)?;
        // Earlier failed attempts show in `attempts`; `error` is for how it ended.
        self.ctx.error = None;
        self.answer(got, backend, &plan, t0, inflight).await
    }

    /// Relays the chosen reply; its backend counts it in flight until the relay ends.
    async fn answer(
        &mut self,
        got: Sent,
        backend: &Backend,
        plan: &Plan,
        t0: Instant,
        inflight: InFlight,
    ) -> Result<Turn, Handled> {
        let up = Upstream {
            session: got.session,
            peer: &got.peer,
            backend,
            first: got.first,
            until: backend.total_timeout().map(|d| (t0 + d).into()),
        };
        let out = relay(self.st, self.session, self.ctx, up, &plan.reply).await;
        drop(inflight);
        out.map(|()| Turn::Done)
    }
}

/// What an attempt at a target needs.
struct Ready {
    plan: Plan,
    /// The backend's own limits, reserved.
    held: Reservation,
    token: Option<Arc<str>>,
}

enum Prepared {
    /// Boxed: the plan is large, and the other variants carry nothing.
    Ready(Box<Ready>),
    /// Not tried now (over its backend's limit, no access token): noted in the ending.
    Skip,
    /// Answered by the gateway itself.
    Answered,
}

impl Exchange<'_> {
    /// Plans the request for target `t`, reserves its backend's limits, gets its token.
    async fn prepare(&mut self, t: &Target, end: &mut Ending) -> Result<Prepared, Handled> {
        let (st, ctx) = (self.st, &mut *self.ctx);
        let backend = &st.backends[t.backend];
        let header = self.session.req_header();
        let mut plan = match plan(&self.req, header, backend, t.model.as_deref())? {
            Planned::Send(p) => p,
            Planned::Local(body) => {
                write_json(self.session, ctx, 200, body, false)
                    .await
                    .map_err(Handled::Abort)?;
                return Ok(Prepared::Answered);
            }
        };
        ctx.ignored_fields = std::mem::take(&mut plan.dropped);
        // A backend over its own limit is skipped like a busy one.
        let held = match super::limit::admit_backend(st, ctx, &backend.name).await {
            Ok(r) => r,
            Err(d) => {
                st.metrics.upstream_failure(&backend.name, "over_limit");
                end.over_limit = Some(d);
                return Ok(Prepared::Skip);
            }
        };
        match access_token(st, backend).await {
            Ok(token) => Ok(Prepared::Ready(Box::new(Ready { plan, held, token }))),
            // Not an attempt: nothing was sent. The next target is tried.
            Err(e) => {
                st.limiter.settle(held, Default::default()).await;
                ctx.error = Some(Failure::Credentials.label());
                (end.no_token, end.last) = (Some(e), Some(Failure::Credentials));
                Ok(Prepared::Skip)
            }
        }
    }
}

/// Whether the policy moves on after `f` (a connection reset before the reply counts as a
/// connect error; a credentials failure sent nothing, so it always moves on).
fn retries(policy: &RetryPolicy, f: Failure) -> bool {
    match f {
        Failure::Connect | Failure::Protocol => policy.on_connect,
        Failure::Timeout => policy.on_timeout,
        Failure::Credentials => true,
    }
}

/// How the request ends when no target answered.
#[derive(Default)]
struct Ending {
    last: Option<Failure>,
    no_token: Option<ApiError>,
    over_limit: Option<crate::limits::Denied>,
    /// A target was at its concurrency cap when its turn came.
    busy: bool,
}

impl Ending {
    fn error(self, st: &State, ctx: &mut Ctx) -> Handled {
        let model = ctx.model.clone().unwrap_or_default();
        if ctx.attempts == 0 && self.no_token.is_none() {
            if let Some(d) = self.over_limit {
                return super::limit::denied(st, ctx, &d).into();
            }
            if self.busy {
                ctx.retry_after = Some(1);
                return ApiError::backends_busy(&model).into();
            }
        }
        match self.last {
            Some(Failure::Credentials) => self.no_token.unwrap_or_else(ApiError::internal),
            Some(Failure::Timeout) => ApiError::upstream_timeout(&model),
            Some(Failure::Protocol) => ApiError::upstream_lost(&model, ctx.attempts),
            _ => ApiError::upstream_unreachable(&model, ctx.attempts),
        }
        .into()
    }
}

/// What an answer says about its backend: a 5xx counts toward ejection, anything else is a
/// working backend (its time to first byte feeds the latency strategy); a 429 or 503 that
/// says when to come back cools the backend down for that model.
fn judge(inflight: &InFlight, got: &Sent, status: u16, served: &str, t0: Instant) {
    if status >= 500 {
        inflight.failed();
    } else {
        inflight.succeeded();
        if status < 400 {
            inflight.backend().observe_latency_since(t0);
        }
    }
    if matches!(status, 429 | 503) {
        if let Some(d) = got.session.response_header().and_then(cooldown::requested) {
            inflight.backend().cool_down(served, d);
        }
    }
}

/// The bound on one attempt until its first byte: the route's per-try timeout, a stream's
/// first-event timeout, and what is left of the deadline, whichever is shortest.
fn per_try_limit(
    policy: &RetryPolicy,
    backend: &Backend,
    stream: bool,
    deadline: Option<Instant>,
) -> Option<Duration> {
    let mut limit = policy.per_try_timeout;
    let mut tighten = |d: Duration| limit = Some(limit.map_or(d, |l| l.min(d)));
    if stream {
        tighten(backend.first_byte_timeout());
    }
    if let Some(d) = deadline {
        tighten(d.saturating_duration_since(Instant::now()));
    }
    limit
}

/// Exponential backoff with full jitter before attempt `n + 1`.
async fn backoff(policy: &RetryPolicy, n: u32) {
    if policy.backoff.is_zero() {
        return;
    }
    let cap = policy
        .backoff
        .saturating_mul(1 << (n - 1).min(16))
        .min(policy.backoff_max);
    let ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=ms))).await;
}

/// The selection keys of one request, copied before the session is borrowed again.
struct PickKeys {
    affinity: Option<Bytes>,
    region: Option<Arc<str>>,
}

impl PickKeys {
    fn new(x: &Exchange<'_>) -> PickKeys {
        let (st, ctx, route, req) = (x.st, &*x.ctx, x.route, &x.req);
        let session = &*x.session;
        let header = |n: &http::HeaderName| {
            session
                .req_header()
                .headers
                .get(n)
                .filter(|v| !v.is_empty())
                .map(|v| Bytes::copy_from_slice(v.as_bytes()))
        };
        let affinity = match &route.strategy {
            Strategy::Affinity(AffinityKey::Key) => ctx
                .key
                .as_ref()
                .map(|h| Bytes::copy_from_slice(h.name.as_bytes())),
            Strategy::Affinity(AffinityKey::Header(n)) => header(n),
            Strategy::Affinity(AffinityKey::Prompt(n)) => Some(prompt_prefix(&req.body, *n)),
            _ => None,
        };
        let b = &st.balance;
        let region = b
            .region_header
            .as_ref()
            .and_then(header)
            .and_then(|v| std::str::from_utf8(&v).ok().map(Arc::from))
            .or_else(|| b.region.clone());
        PickKeys { affinity, region }
    }

    fn pick<'a>(&'a self, req: &'a Request) -> Pick<'a> {
        Pick {
            affinity: self.affinity.as_deref(),
            region: self.region.as_deref(),
            model: &req.client_model,
        }
    }
}

/// The first `n` bytes of the prompt: from the first prompt field in the body (so the model
/// name and options before it do not split a shared prompt), else from the start.
fn prompt_prefix(body: &Bytes, n: usize) -> Bytes {
    let head = &body[..body.len().min(4096)];
    let start = [
        &b"\"system\""[..],
        b"\"messages\"",
        b"\"input\"",
        b"\"contents\"",
        b"\"instructions\"",
    ]
    .iter()
    .filter_map(|k| memchr::memmem::find(head, k))
    .min()
    .unwrap_or(0);
    body.slice(start..body.len().min(start + n))
}

/// The backend's access token, when it has a token source (Vertex AI); a failure is logged and
/// counted, and is the client's error if no other target answers.
async fn access_token(st: &State, backend: &Backend) -> Result<Option<Arc<str>>, ApiError> {
    let Some(ts) = backend.provider.tokens() else {
        return Ok(None);
    };
    // Boxed: the token source's future is large, and only Vertex backends have one; inline it
    // would grow every request's future.
    Box::pin(ts.token()).await.map(Some).map_err(|e| {
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

/// Dead pooled connections an attempt passes over (the pool drops those closed while idle: these
/// are closes racing their reuse, as an upstream's idle timeout runs out under a burst).
const STALE_TRIES: u32 = 4;

/// An upstream that answered: its header, and for a stream its first chunk. Session and peer
/// (~1.2 KB) are boxed: every future they are moved through would keep a copy of its own.
struct Sent {
    session: Box<HttpSession>,
    peer: Box<HttpPeer>,
    first: Option<Bytes>,
}

impl Sent {
    fn status(&self) -> u16 {
        (self.session.response_header()).map_or(0, |h| h.status.as_u16())
    }
}

/// One target: connect (or reuse a pooled connection), send the request, read the response
/// header, and for a successful stream its first chunk (a stream silent before its first
/// event fails over like a timeout). A pooled connection that turns out dead (the upstream
/// closed it as it was reused) is dropped and the request sent again on the next pooled one or
/// a fresh one, up to [`STALE_TRIES`] dead ones in a row; a fresh connection's failure stands.
impl Exchange<'_> {
    async fn attempt(
        &self,
        backend: &Backend,
        plan: &Plan,
        token: Option<Arc<str>>,
    ) -> Result<Sent, Failure> {
        let (st, stream) = (self.st, self.req.stream);
        let client = self.session.req_header();
        let (request_id, token) = (&self.ctx.request_id, token.as_deref());
        let peer = Box::new(backend.peer().await.map_err(|e| {
            log::warn!("backend {}: {e}", backend.name);
            Failure::Connect
        })?);
        let mut stale = 0;
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
            // Pingora's connector future is about 9 KiB: boxed, this request's future is not.
            let connect = super::in_box(|| st.connector.get_http_session(&*peer));
            let (up, reused) = connect.await.map_err(|e| {
                log::debug!("backend {}: connect: {e}", backend.name);
                Failure::of(&e)
            })?;
            let sent: Result<(HttpSession, Option<Bytes>)> = async {
                let body = &plan.body;
                let mut up = crate::net::send::request(up, Box::new(header), body, &peer).await?;
                up.read_response_header().await?;
                let ok = up.response_header().is_some_and(|h| h.status.is_success());
                if stream && ok {
                    let first = up.read_response_body().await?;
                    return Ok((up, first));
                }
                Ok((up, None))
            }
            .await;
            match sent {
                Ok((up, first)) => {
                    return Ok(Sent {
                        session: Box::new(up),
                        peer,
                        first,
                    })
                }
                Err(e) => {
                    let f = Failure::of(&e);
                    if reused && stale < STALE_TRIES && f != Failure::Timeout {
                        stale += 1;
                        continue;
                    }
                    log::debug!("backend {}: exchange: {e}", backend.name);
                    return Err(f);
                }
            }
        }
    }
}
