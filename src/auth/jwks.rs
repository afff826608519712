//! An issuer's JWKS (`[[auth.jwt]] jwks_url`): fetched when a token first needs it, fetched
//! again when a token names a key the set lacks (at most once per `min_refetch`, so a burst of
//! made-up key ids cannot flood the identity provider), and every `refresh` by a background
//! task that ends with the set. A failed fetch keeps the keys held.

use crate::config::{JwksSource, JwtKey};
use arc_swap::ArcSwap;
use pingora::connectors::http::Connector;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Per read; the whole fetch gets twice this. Requests that need the set wait for it.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A JWKS holds a few keys: a reply near this is not one.
const MAX_JWKS_BYTES: usize = 512 * 1024;
const MAX_KEYS: usize = 64;

pub(super) struct Jwks {
    source: JwksSource,
    connector: Arc<Connector>,
    keys: ArcSwap<Vec<JwtKey>>,
    /// A fetch has succeeded: from then on a missing key is the token's fault, not the network's.
    loaded: AtomicBool,
    /// When a fetch last started. Held through a fetch, so a burst of misses waits for one.
    last: tokio::sync::Mutex<Option<Instant>>,
    /// The background refresh was started (on first use: it needs the async runtime).
    refreshing: AtomicBool,
}

impl Jwks {
    pub(super) fn new(source: JwksSource, connector: Arc<Connector>) -> Arc<Jwks> {
        Arc::new(Jwks {
            source,
            connector,
            keys: ArcSwap::from_pointee(Vec::new()),
            loaded: AtomicBool::new(false),
            last: tokio::sync::Mutex::new(None),
            refreshing: AtomicBool::new(false),
        })
    }

    pub(super) fn source(&self) -> &JwksSource {
        &self.source
    }

    /// The keys held now.
    pub(super) fn keys(&self) -> Arc<Vec<JwtKey>> {
        self.keys.load_full()
    }

    pub(super) fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Fetches the set again, unless a fetch started within `min_refetch` (then at once: the
    /// caller looks again at what that fetch brought).
    pub(super) async fn refetch(self: &Arc<Self>) {
        self.start_refresh();
        let mut last = self.last.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.source.min_refetch) {
            return;
        }
        *last = Some(Instant::now());
        self.fetch().await;
    }

    /// Whether the set was fetched (else the keys held stay, and the failure is logged).
    async fn fetch(&self) -> bool {
        match self.get().await {
            Ok(keys) => {
                self.keys.store(Arc::new(keys));
                self.loaded.store(true, Ordering::Release);
                true
            }
            Err(e) => {
                log::warn!("JWKS at {}: {e}; the keys held stay", self.place());
                false
            }
        }
    }

    /// Where the set is fetched from, for the log: host, port and path (no user info).
    fn place(&self) -> String {
        match crate::net::url::parse_url(&self.source.url) {
            Ok(u) => format!("{}:{}{}", u.host, u.port, u.base_path),
            Err(_) => "an unreadable URL".into(),
        }
    }

    async fn get(&self) -> Result<Vec<JwtKey>, String> {
        let get = crate::net::post::Get {
            url: &self.source.url,
            accept: "application/json",
            connect_timeout: CONNECT_TIMEOUT,
            timeout: FETCH_TIMEOUT,
            max_reply: MAX_JWKS_BYTES,
        };
        let (status, body) = tokio::time::timeout(2 * FETCH_TIMEOUT, get.send(&self.connector))
            .await
            .map_err(|_| "the fetch timed out".to_string())?
            .map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("HTTP status {status}"));
        }
        parse(&body)
    }

    fn start_refresh(self: &Arc<Self>) {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(refresh(Arc::downgrade(self), self.source.refresh));
    }
}

/// Fetches the set every `every` (sooner after a failure) until the set is dropped.
async fn refresh(set: Weak<Jwks>, every: Duration) {
    let mut wait = every;
    loop {
        tokio::time::sleep(wait).await;
        let Some(jwks) = set.upgrade() else { return };
        let mut last = jwks.last.lock().await;
        *last = Some(Instant::now());
        wait = match jwks.fetch().await {
            true => every,
            false => every.min(jwks.source.min_refetch),
        };
        drop(last);
    }
}

/// The keys of a JWKS document this gateway can verify with; any other key (symmetric, for
/// encryption, an unknown curve) is skipped, not a failure of the set.
pub(super) fn parse(body: &[u8]) -> Result<Vec<JwtKey>, String> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_slice(body).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = Vec::new();
    for (i, k) in set.keys.into_iter().take(MAX_KEYS).enumerate() {
        match JwtKey::from_jwk(k) {
            Ok(k) => keys.push(k),
            Err(e) => log::debug!("JWKS key {i} skipped: {e}"),
        }
    }
    Ok(keys)
}
