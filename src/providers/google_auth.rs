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
//! and then concurrent requests share one fetch.

use bytes::{Bytes, BytesMut};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;
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

/// A service-account key file's fields that matter here.
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    #[serde(rename = "type", default)]
    kind: String,
    pub client_email: String,
    private_key: String,
    #[serde(default)]
    pub private_key_id: String,
    pub token_uri: String,
    #[serde(default)]
    pub project_id: String,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("private_key", &"***")
            .finish()
    }
}

impl ServiceAccount {
    /// Reads a key file; the error names the problem, never the key.
    pub fn from_file(path: &str) -> Result<ServiceAccount, String> {
        let text = std::fs::read(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
        let sa: ServiceAccount = serde_json::from_slice(&text).map_err(|e| {
            format!(
                "`{path}` is not a service-account key file (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        if sa.kind != "service_account" {
            return Err(format!(
                "`{path}` is not a service-account key file (its type is `{}`)",
                sa.kind
            ));
        }
        EncodingKey::from_rsa_pem(sa.private_key.as_bytes())
            .map_err(|_| format!("`{path}`: private_key is not an RSA key in PEM"))?;
        Ok(sa)
    }
}

/// Why no token could be had. Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token endpoint {0} cannot be reached ({1})")]
    Unreachable(String, String),
    #[error("the token endpoint refused the service account: {0} {1}")]
    Refused(u16, String),
    #[error("the token endpoint's reply is unreadable")]
    BadReply,
    #[error("the assertion could not be signed")]
    Sign,
}

#[derive(Clone)]
struct Token {
    value: Arc<str>,
    /// Used until then; afterwards refreshed in the background while still valid.
    refresh_at: Instant,
    /// Not used after this (a little before the real expiry).
    valid_until: Instant,
}

pub struct TokenSource {
    account: ServiceAccount,
    token_uri: String,
    backend: String,
    current: RwLock<Option<Token>>,
    refreshing: AtomicBool,
    /// One fetch at a time when requests must wait.
    fetch: tokio::sync::Mutex<()>,
    not_before: RwLock<Option<Instant>>,
    fetches: AtomicU64,
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
            connector: Connector::new(None),
        }
    }

    /// Token fetches so far (for tests and the admin view).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn valid(&self, now: Instant) -> Option<Token> {
        let t = self.current.read().ok()?.clone()?;
        (now < t.valid_until).then_some(t)
    }

    /// A valid access token: the cached one (refreshed in the background when due), or a fresh
    /// one when none is valid.
    pub async fn token(self: &Arc<Self>) -> Result<Arc<str>, TokenError> {
        let now = Instant::now();
        if let Some(t) = self.valid(now) {
            if now >= t.refresh_at {
                self.refresh_in_background(now);
            }
            return Ok(t.value);
        }
        let _one = self.fetch.lock().await;
        if let Some(t) = self.valid(Instant::now()) {
            return Ok(t.value);
        }
        self.refresh().await
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

    /// Fetches a token and caches it.
    async fn refresh(&self) -> Result<Arc<str>, TokenError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let form = format!("grant_type={GRANT}&assertion={}", self.assertion()?);
        let started = Instant::now();
        let (status, body) = tokio::time::timeout(TOTAL_TIMEOUT, self.post(Bytes::from(form)))
            .await
            .map_err(|_| TokenError::Unreachable(self.token_uri.clone(), "timed out".into()))??;
        let reply: Reply = serde_json::from_slice(&body).map_err(|_| TokenError::BadReply)?;
        let (Some(value), 200) = (reply.access_token, status) else {
            let why = reply.error_description.or(reply.error).unwrap_or_default();
            return Err(TokenError::Refused(status, why));
        };
        let life = Duration::from_secs(reply.expires_in.unwrap_or(3600).max(1));
        let margin = (life / 4).min(Duration::from_secs(300));
        let safety = (life / 10).min(Duration::from_secs(10));
        let token = Token {
            value: Arc::from(value),
            refresh_at: started + life - margin,
            valid_until: started + life - safety,
        };
        let value = token.value.clone();
        if let Ok(mut c) = self.current.write() {
            *c = Some(token);
        }
        Ok(value)
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

    /// POSTs the form to the token URI over Pingora's connector; the status and body.
    async fn post(&self, form: Bytes) -> Result<(u16, Bytes), TokenError> {
        let unreachable = |why: String| TokenError::Unreachable(self.token_uri.clone(), why);
        let url = crate::config::parse_url(&self.token_uri).map_err(unreachable)?;
        let addr = tokio::net::lookup_host((url.host.as_str(), url.port))
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .next()
            .ok_or_else(|| unreachable("no address".into()))?;
        let mut peer = HttpPeer::new(addr, url.tls, url.host.clone());
        peer.options.connection_timeout = Some(CONNECT_TIMEOUT);
        peer.options.read_timeout = Some(TOTAL_TIMEOUT);
        let path = if url.base_path.is_empty() {
            "/"
        } else {
            &url.base_path
        };
        let io = |e: Box<pingora::Error>| unreachable(e.etype().as_str().to_string());
        let mut req = RequestHeader::build("POST", path.as_bytes(), None).map_err(io)?;
        let host = if url.port == if url.tls { 443 } else { 80 } {
            url.host.clone()
        } else {
            format!("{}:{}", url.host, url.port)
        };
        req.insert_header("host", host).map_err(io)?;
        req.insert_header("content-type", "application/x-www-form-urlencoded")
            .map_err(io)?;
        req.insert_header("content-length", form.len())
            .map_err(io)?;
        let (mut s, _) = self.connector.get_http_session(&peer).await.map_err(io)?;
        s.set_read_timeout(Some(TOTAL_TIMEOUT));
        s.write_request_header(Box::new(req)).await.map_err(io)?;
        s.write_request_body(form, true).await.map_err(io)?;
        s.finish_request_body().await.map_err(io)?;
        s.read_response_header().await.map_err(io)?;
        let status = s.response_header().map_or(0, |h| h.status.as_u16());
        let mut body = BytesMut::new();
        while let Some(chunk) = s.read_response_body().await.map_err(io)? {
            if body.len() + chunk.len() > MAX_REPLY {
                return Err(TokenError::BadReply);
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body.freeze()))
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

    /// A one-shot HTTP server answering `reply` to each connection; counts requests.
    async fn token_server(reply: &'static str) -> (String, Arc<AtomicU64>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", l.local_addr().unwrap());
        let hits = Arc::new(AtomicU64::new(0));
        let h = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = l.accept().await {
                h.fetch_add(1, Ordering::Relaxed);
                let mut buf = vec![0; 8192];
                let _ = c.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = c.write_all(resp.as_bytes()).await;
            }
        });
        (url, hits)
    }

    #[tokio::test]
    async fn fetches_once_and_caches() {
        let (url, hits) =
            token_server(r#"{"access_token":"ya29.t","expires_in":3600,"token_type":"Bearer"}"#)
                .await;
        let ts = Arc::new(TokenSource::new(
            ServiceAccount::from_file(SA).unwrap(),
            Some(url),
            "v",
        ));
        let (a, b) = tokio::join!(ts.token(), ts.token());
        assert_eq!((&*a.unwrap(), &*b.unwrap()), ("ya29.t", "ya29.t"));
        assert_eq!(&*ts.token().await.unwrap(), "ya29.t");
        assert_eq!((ts.fetches(), hits.load(Ordering::Relaxed)), (1, 1));
    }

    #[tokio::test]
    async fn refused_and_unreachable_are_errors_without_secrets() {
        let (url, _) = token_server(
            r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
        )
        .await;
        let ts = Arc::new(TokenSource::new(
            ServiceAccount::from_file(SA).unwrap(),
            Some(url),
            "v",
        ));
        let e = ts.token().await.unwrap_err().to_string();
        assert!(e.contains("Invalid JWT Signature"), "{e}");
        let ts = TokenSource::new(
            ServiceAccount::from_file(SA).unwrap(),
            Some("http://127.0.0.1:1/token".into()),
            "v",
        );
        let e = Arc::new(ts).token().await.unwrap_err().to_string();
        assert!(
            e.contains("cannot be reached") && !e.contains("PRIVATE"),
            "{e}"
        );
    }
}
