//! A request's context: what the stages learn as it passes (who, which route and backend,
//! what was reserved and relayed), and what settlement (`settle.rs`) reports.

use super::state::State;
use crate::formats::Format;
use bytes::Bytes;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Ctx {
    /// The config snapshot this request runs on, start to end.
    pub(super) state: Arc<State>,
    pub(super) start: Instant,
    /// Unix milliseconds at `start`: read once, for the key's expiry, the limits' headers, the
    /// ledger row and the access log's time stamp.
    pub(super) start_ms: i64,
    pub(super) request_id: String,
    pub(super) key: Option<Arc<crate::auth::Holder>>,
    /// The client's address (behind trusted proxies, the one they forwarded).
    pub(super) client: Option<std::net::IpAddr>,
    /// The end user: the trusted header's, else the key's.
    pub(super) user: Option<Arc<str>>,
    pub(super) model: Option<Arc<str>>,
    /// The client's API: errors are rendered in it.
    pub(super) api: Format,
    pub(super) model_label: Option<Arc<str>>,
    pub(super) route: Option<Arc<str>>,
    pub(super) backend: Option<Arc<str>>,
    pub(super) status: u16,
    pub(super) attempts: u32,
    pub(super) error: Option<&'static str>,
    /// The request body (shared, not copied), for estimates at settlement.
    pub(super) body: Option<Bytes>,
    /// The model asked of the provider.
    pub(super) served_model: Option<Arc<str>>,
    /// What the relay saw: usage reported, text generated.
    pub(super) tally: crate::stream::Tally,
    pub(super) relayed: Option<RelayEnd>,
    /// Nothing is generated (a stored response read back): billed as zero whatever it says.
    pub(super) unbilled: bool,
    /// When the first bytes of a streamed reply went to the client.
    pub(super) first_byte: Option<Instant>,
    /// Limits: what the request reserved, its estimate, and the headers they give.
    pub(super) reservation: Option<crate::limits::Reservation>,
    pub(super) demand: crate::limits::Demand,
    pub(super) rate: crate::limits::RateHeaders,
    pub(super) retry_after: Option<u64>,
    /// Client fields the translation dropped: the access log and a response header name them.
    pub(super) ignored_fields: Vec<String>,
    /// On a cached route: what the cache did, and a miss's right to store the reply.
    pub(super) cache: Option<Box<Cached>>,
    _live: Live,
}

impl Ctx {
    /// A request's context on `state`, counted as live until it is dropped.
    pub(super) fn new(state: Arc<State>) -> Ctx {
        let live = Live::new(&state.live);
        Ctx {
            state,
            start: Instant::now(),
            start_ms: crate::clock::now_ms(),
            request_id: String::new(),
            ignored_fields: Vec::new(),
            key: None,
            client: None,
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
            cache: None,
            _live: live,
        }
    }
}

/// Counts one request as live until its context is dropped (after settlement).
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

/// What the cache did for a request (RFC 9211 `Cache-Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CacheStatus {
    Hit {
        age: u64,
    },
    Miss,
    /// `Cache-Control: no-cache`: fetched fresh, stored again.
    Refresh,
    /// `Cache-Control: no-store`, or a body that is not a JSON object.
    Bypass,
}

impl CacheStatus {
    pub(super) fn label(self) -> &'static str {
        match self {
            CacheStatus::Hit { .. } => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Refresh => "refresh",
            CacheStatus::Bypass => "bypass",
        }
    }
}

/// A request's dealings with the cache, in its context.
pub(super) struct Cached {
    pub status: CacheStatus,
    /// A miss's right to store its reply (identical requests wait on it).
    pub fill: Option<crate::cache::Fill>,
    pub ttl: Duration,
    /// The reply as the relay recorded it, stored at settlement if it completed.
    pub recorded: Option<crate::cache::Reply>,
}

/// How the relay of a reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    Complete,
    CutShort,
}
