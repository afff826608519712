//! Google service-account credentials: OAuth access tokens for Vertex AI.
//!
//! A [`TokenSource`] signs a JWT assertion with the account's RSA key (RS256, `jsonwebtoken`)
//! and exchanges it at the account's `token_uri` (or the backend's override) for an access
//! token. Security property: the private key, the assertion and the tokens never appear in a
//! log line, an error or `Debug` output.
//!
//! Freshness: a token is used until `margin` before it expires, where `margin` is a quarter of
//! its lifetime (at most five minutes). Inside the margin the current token is still returned
//! and one refresh runs in the background; a request waits only when no valid token exists,
//! and then concurrent requests share one fetch (and its failure, so a dead endpoint costs a
//! burst one timeout, not one each). A failed background refresh keeps the current token and
//! is retried after `RETRY_AFTER`. A token is not used in the last tenth of its life (at most
//! 10 s), for clock skew and travel time.

pub use crate::config::ServiceAccount;
use bytes::Bytes;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use pingora::connectors::http::Connector;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const GRANT: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";
/// Assertions live an hour, the most Google accepts.
const ASSERTION_LIFETIME: u64 = 3600;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);
/// After a failed background refresh, the next one waits this long.
const RETRY_AFTER: Duration = Duration::from_secs(5);
const MAX_REPLY: usize = 64 * 1024;

/// Why no token could be had. Never holds a secret; the backend's name is added by the caller
/// (the gateway's 503 names it, the source's log lines too).
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("the token endpoint {0} cannot be reached ({1})")]
    Unreachable(String, String),
    #[error("the token endpoint refused the service account (HTTP {0}){1}")]
    Refused(u16, Detail),
    #[error("the token endpoint's reply is unreadable")]
    BadReply,
    #[error("the assertion could not be signed")]
    Sign,
}

/// Google's `error_description` (or `error`), bounded; shown as `: text` when present.
#[derive(Debug, Clone, Default)]
pub struct Detail(String);

impl std::fmt::Display for Detail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.is_empty() {
            true => Ok(()),
            false => write!(f, ": {}", self.0),
        }
    }
}

impl Detail {
    fn new(text: &str) -> Detail {
        // The text comes from the network: keep it short and on one line.
        let one_line = text.chars().filter(|c| !c.is_control());
        Detail(one_line.take(300).collect())
    }
}

#[derive(Clone)]
struct Token {
    value: Arc<str>,
    /// Used until then; afterwards refreshed in the background while still valid.
    refresh_at: Instant,
    /// Not used after this (a little before the real expiry).
    valid_until: Instant,
}

impl Token {
    /// Refresh a quarter of the lifetime before expiry (at most five minutes before: a 1 h
    /// token is refreshed after 55 min, a 2 s one after 1.5 s); stop using it a tenth of the
    /// lifetime (at most 10 s) early, for clock skew and the request's own travel time.
    fn new(value: Arc<str>, started: Instant, life: Duration) -> Token {
        let margin = (life / 4).min(Duration::from_secs(300));
        let safety = (life / 10).min(Duration::from_secs(10));
        Token {
            value,
            refresh_at: started + life - margin,
            valid_until: started + life - safety,
        }
    }
}

/// OAuth access tokens for one service account, shared by all requests to a backend.
pub struct TokenSource {
    account: ServiceAccount,
    token_uri: String,
    backend: String,
    current: RwLock<Option<Token>>,
    /// A background refresh is running (at most one).
    refreshing: AtomicBool,
    /// One fetch at a time when requests must wait.
    fetch: tokio::sync::Mutex<()>,
    /// No background refresh before this (set after one failed).
    not_before: RwLock<Option<Instant>>,
    /// Fetches started, and fetches finished (so waiters can tell one ended while they waited).
    fetches: AtomicU64,
    finished: AtomicU64,
    last_error: RwLock<Option<TokenError>>,
    connector: Connector,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct Reply {
    access_token: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
}

impl TokenSource {
    /// `token_uri` overrides the account's own (tests point it at the mock).
    pub fn new(account: ServiceAccount, token_uri: Option<String>, backend: &str) -> TokenSource {
        TokenSource {
            token_uri: token_uri.unwrap_or_else(|| account.token_uri.clone()),
            account,
            backend: backend.to_string(),
            current: RwLock::new(None),
            refreshing: AtomicBool::new(false),
            fetch: tokio::sync::Mutex::new(()),
            not_before: RwLock::new(None),
            fetches: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            last_error: RwLock::new(None),
            connector: Connector::new(None),
        }
    }

    /// Token fetches started so far (for tests and the admin view).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The backend this source serves.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    fn valid(&self, now: Instant) -> Option<Token> {
        let t = self.current.read().ok()?.clone()?;
        (now < t.valid_until).then_some(t)
    }

    /// A valid access token: the cached one with no I/O (a refresh starts in the background
    /// when it is due), or, when none is valid, a fresh one. Concurrent callers without a
    /// valid token share one fetch, and its failure.
    pub async fn token(self: &Arc<Self>) -> Result<Arc<str>, TokenError> {
        let now = Instant::now();
        if let Some(t) = self.valid(now) {
            if now >= t.refresh_at {
                self.refresh_in_background(now);
            }
            return Ok(t.value);
        }
        let seen = self.finished.load(Ordering::Acquire);
        let _one = self.fetch.lock().await;
        if let Some(t) = self.valid(Instant::now()) {
            return Ok(t.value);
        }
        if self.finished.load(Ordering::Acquire) != seen {
            // A fetch ended while this caller waited, and left no valid token: its failure.
            if let Some(e) = self.last_error.read().ok().and_then(|e| e.clone()) {
                return Err(e);
            }
        }
        self.refresh().await
    }

    /// Fetches a token now (at start-up), logging a failure rather than returning it.
    pub async fn warm(self: &Arc<Self>) {
        if let Err(e) = self.token().await {
            log::warn!("backend {}: no access token yet: {e}", self.backend);
        }
    }

    fn refresh_in_background(self: &Arc<Self>, now: Instant) {
        let waiting = self.not_before.read().ok().and_then(|n| *n);
        if waiting.is_some_and(|n| now < n) || self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.refresh().await {
                log::warn!(
                    "backend {}: token refresh failed (the current token is kept): {e}",
                    me.backend
                );
                if let Ok(mut n) = me.not_before.write() {
                    *n = Some(Instant::now() + RETRY_AFTER);
                }
            }
            me.refreshing.store(false, Ordering::Release);
        });
    }

    /// Fetches a token and caches it; records the outcome for callers that waited on it.
    async fn refresh(&self) -> Result<Arc<str>, TokenError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let got = self.fetch_token().await;
        if let Ok(mut last) = self.last_error.write() {
            *last = got.as_ref().err().cloned();
        }
        let got = got.map(|(value, life)| {
            let token = Token::new(Arc::from(value), started, life);
            let value = token.value.clone();
            if let Ok(mut c) = self.current.write() {
                *c = Some(token);
            }
            value
        });
        self.finished.fetch_add(1, Ordering::Release);
        got
    }

    /// One exchange at the token endpoint: the token and its lifetime.
    async fn fetch_token(&self) -> Result<(String, Duration), TokenError> {
        let form = format!("grant_type={GRANT}&assertion={}", self.assertion()?);
        let (status, body) = tokio::time::timeout(TOTAL_TIMEOUT, self.post(Bytes::from(form)))
            .await
            .map_err(|_| TokenError::Unreachable(self.token_uri.clone(), "timed out".into()))??;
        let reply = serde_json::from_slice::<Reply>(&body).ok();
        if status != 200 {
            let why = reply.and_then(|r| r.error_description.or(r.error));
            return Err(TokenError::Refused(
                status,
                Detail::new(&why.unwrap_or_default()),
            ));
        }
        let reply = reply.ok_or(TokenError::BadReply)?;
        let value = reply
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::BadReply)?;
        let life = Duration::from_secs(reply.expires_in.unwrap_or(3600).max(1));
        Ok((value, life))
    }

    fn assertion(&self) -> Result<String, TokenError> {
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Claims {
            iss: &self.account.client_email,
            scope: SCOPE,
            aud: &self.token_uri,
            iat,
            exp: iat + ASSERTION_LIFETIME,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.account.private_key_id.clone());
        let key = EncodingKey::from_rsa_pem(self.account.private_key.as_bytes())
            .map_err(|_| TokenError::Sign)?;
        encode(&header, &claims, &key).map_err(|_| TokenError::Sign)
    }

    /// POSTs the form to the token URI; the status and body.
    async fn post(&self, form: Bytes) -> Result<(u16, Bytes), TokenError> {
        let post = crate::net::post::Post {
            url: &self.token_uri,
            content_type: "application/x-www-form-urlencoded",
            connect_timeout: CONNECT_TIMEOUT,
            timeout: TOTAL_TIMEOUT,
            max_reply: MAX_REPLY,
        };
        post.send(&self.connector, form).await.map_err(|e| match e {
            crate::net::post::PostError::Unreachable(why) => {
                TokenError::Unreachable(self.token_uri.clone(), why)
            }
            crate::net::post::PostError::TooLarge(_) => TokenError::BadReply,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, DecodingKey, Validation};

    const SA: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/vertex/service-account.json"
    );
    const PUBLIC: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/vertex/public.pem"
    );

    #[test]
    fn reads_the_key_file_and_hides_the_key() {
        let sa = ServiceAccount::from_file(SA).unwrap();
        assert_eq!(sa.project_id, "tollgate-test");
        let shown = format!("{sa:?}");
        assert!(
            !shown.contains("PRIVATE") && shown.contains("***"),
            "{shown}"
        );
        let e = ServiceAccount::from_file("/nonexistent.json").unwrap_err();
        assert!(e.contains("cannot read"));
        let e = ServiceAccount::from_file(PUBLIC).unwrap_err();
        assert!(e.contains("not a service-account key file"), "{e}");
    }

    #[test]
    fn the_assertion_is_signed_with_the_accounts_key() {
        let sa = ServiceAccount::from_file(SA).unwrap();
        let ts = TokenSource::new(sa, Some("http://127.0.0.1:9/token".into()), "v");
        let jwt = ts.assertion().unwrap();
        let key = DecodingKey::from_rsa_pem(&std::fs::read(PUBLIC).unwrap()).unwrap();
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&["http://127.0.0.1:9/token"]);
        let data = decode::<serde_json::Value>(&jwt, &key, &v).unwrap();
        assert_eq!(
            data.header.kid.as_deref(),
            Some("0123456789abcdef0123456789abcdef01234567")
        );
        assert_eq!(data.claims["scope"], SCOPE);
        assert_eq!(
            data.claims["iss"],
            "tollgate-test@tollgate-test.iam.gserviceaccount.com"
        );
        let life = data.claims["exp"].as_u64().unwrap() - data.claims["iat"].as_u64().unwrap();
        assert_eq!(life, 3600);
    }

    /// A token endpoint answering the n-th request with `replies[n]` (the last one again
    /// after that), each after `delay`; counts requests.
    async fn token_server(
        replies: Vec<(u16, &'static str)>,
        delay: Duration,
    ) -> (String, Arc<AtomicU64>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", l.local_addr().unwrap());
        let hits = Arc::new(AtomicU64::new(0));
        let h = hits.clone();
        tokio::spawn(async move {
            while let Ok((c, _)) = l.accept().await {
                let n = h.fetch_add(1, Ordering::Relaxed) as usize;
                let reply = replies[n.min(replies.len() - 1)];
                tokio::spawn(answer(c, reply, delay));
            }
        });
        (url, hits)
    }

    /// Reads one whole request (header and form), then answers.
    async fn answer(mut c: tokio::net::TcpStream, (status, body): (u16, &str), delay: Duration) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut got = Vec::new();
        let mut buf = [0; 4096];
        loop {
            let Ok(n @ 1..) = c.read(&mut buf).await else {
                return;
            };
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some((head, form)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if len.is_some_and(|len| form.len() >= len) {
                    assert!(form.starts_with("grant_type=urn%3Aietf%3A"), "{form}");
                    break;
                }
            }
        }
        tokio::time::sleep(delay).await;
        let resp = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = c.write_all(resp.as_bytes()).await;
    }

    fn source(url: String) -> Arc<TokenSource> {
        let sa = ServiceAccount::from_file(SA).unwrap();
        Arc::new(TokenSource::new(sa, Some(url), "vx"))
    }

    const OK_A: (u16, &str) = (
        200,
        r#"{"access_token":"ya29.a","expires_in":4,"token_type":"Bearer"}"#,
    );
    const OK_B: (u16, &str) = (
        200,
        r#"{"access_token":"ya29.b","expires_in":4,"token_type":"Bearer"}"#,
    );
    const REFUSED: (u16, &str) = (
        400,
        r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
    );

    #[test]
    fn refresh_window_is_a_quarter_of_the_life_at_most_five_minutes() {
        let t0 = Instant::now();
        let hour = Token::new(Arc::from("x"), t0, Duration::from_secs(3600));
        assert_eq!(hour.refresh_at - t0, Duration::from_secs(3300));
        assert_eq!(hour.valid_until - t0, Duration::from_secs(3590));
        let short = Token::new(Arc::from("x"), t0, Duration::from_secs(2));
        assert_eq!(short.refresh_at - t0, Duration::from_millis(1500));
        assert_eq!(short.valid_until - t0, Duration::from_millis(1800));
        let minute = Token::new(Arc::from("x"), t0, Duration::from_secs(60));
        assert_eq!(minute.refresh_at - t0, Duration::from_secs(45));
        assert_eq!(minute.valid_until - t0, Duration::from_secs(54));
    }

    #[tokio::test]
    async fn fetches_once_and_caches() {
        let long = (200, r#"{"access_token":"ya29.t","expires_in":3600}"#);
        let (url, hits) = token_server(vec![long], Duration::from_millis(100)).await;
        let ts = source(url);
        let burst: Vec<_> = (0..16)
            .map(|_| {
                let ts = ts.clone();
                tokio::spawn(async move { ts.token().await })
            })
            .collect();
        for b in burst {
            assert_eq!(&*b.await.unwrap().unwrap(), "ya29.t");
        }
        assert_eq!(&*ts.token().await.unwrap(), "ya29.t");
        assert_eq!((ts.fetches(), hits.load(Ordering::Relaxed)), (1, 1));
    }

    #[tokio::test]
    async fn a_burst_shares_one_failed_fetch() {
        let (url, hits) = token_server(vec![REFUSED], Duration::from_millis(100)).await;
        let ts = source(url);
        let burst: Vec<_> = (0..8)
            .map(|_| {
                let ts = ts.clone();
                tokio::spawn(async move { ts.token().await })
            })
            .collect();
        for b in burst {
            let e = b.await.unwrap().unwrap_err().to_string();
            assert!(e.contains("HTTP 400): Invalid JWT Signature."), "{e}");
        }
        assert_eq!(hits.load(Ordering::Relaxed), 1);
        // A later caller tries again.
        assert!(ts.token().await.is_err());
        assert_eq!(hits.load(Ordering::Relaxed), 2);
    }

    /// Waits until `ts` has finished `n` fetches.
    async fn finished(ts: &TokenSource, n: u64) {
        for _ in 0..200 {
            if ts.finished.load(Ordering::Acquire) >= n && !ts.refreshing.load(Ordering::Acquire) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fetch {n} did not finish");
    }

    #[tokio::test]
    async fn a_token_due_for_refresh_is_used_while_one_refresh_runs_behind() {
        let (url, hits) = token_server(vec![OK_A, OK_B], Duration::from_millis(200)).await;
        let ts = source(url);
        assert_eq!(&*ts.token().await.unwrap(), "ya29.a");
        tokio::time::sleep(Duration::from_millis(3000)).await;
        // In the refresh window (3 s to 3.6 s after the fetch started): no wait, old token.
        let asked = Instant::now();
        for _ in 0..5 {
            assert_eq!(&*ts.token().await.unwrap(), "ya29.a");
        }
        assert!(asked.elapsed() < Duration::from_millis(100));
        finished(&ts, 2).await;
        assert_eq!(&*ts.token().await.unwrap(), "ya29.b");
        assert_eq!((ts.fetches(), hits.load(Ordering::Relaxed)), (2, 2));
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_valid_token_then_fails_once_it_expires() {
        let (url, hits) = token_server(vec![OK_A, REFUSED], Duration::ZERO).await;
        let ts = source(url);
        ts.warm().await;
        tokio::time::sleep(Duration::from_millis(3150)).await;
        assert_eq!(&*ts.token().await.unwrap(), "ya29.a");
        finished(&ts, 2).await;
        // Still valid: kept, and no second refresh before RETRY_AFTER.
        assert_eq!(&*ts.token().await.unwrap(), "ya29.a");
        assert_eq!(hits.load(Ordering::Relaxed), 2);
        tokio::time::sleep(Duration::from_millis(600)).await;
        let e = ts.token().await.unwrap_err().to_string();
        assert!(e.starts_with("the token endpoint refused"), "{e}");
        assert_eq!(hits.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn bad_replies_and_unreachable_endpoints_are_errors_without_secrets() {
        let (url, _) = token_server(vec![(200, "<html>")], Duration::ZERO).await;
        let e = source(url).token().await.unwrap_err();
        assert!(matches!(e, TokenError::BadReply), "{e}");
        let (url, _) = token_server(vec![(503, "<html>")], Duration::ZERO).await;
        let e = source(url).token().await.unwrap_err().to_string();
        assert_eq!(
            e,
            "the token endpoint refused the service account (HTTP 503)"
        );
        let e = source("http://127.0.0.1:1/token".into()).token().await;
        let e = e.unwrap_err().to_string();
        assert!(e.contains("cannot be reached"), "{e}");
        assert!(!e.contains("PRIVATE") && !e.contains("eyJ"), "{e}");
    }
}
