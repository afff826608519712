//! A configured backend: where it lives and how to reach it (async-resolved address, Pingora
//! peer options, TLS trust), and the upstream request header (Host, the client's end-to-end
//! headers minus its credentials, the provider's auth).

use super::Provider;
use crate::config::BackendSpec;
use http::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::{parse_x509, WrappedX509};
use pingora::{ErrorType::InvalidHTTPHeader, OrErr};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How long a DNS answer is used before it is looked up again.
const DNS_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum UpstreamSetupError {
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
}

pub struct Backend {
    pub name: Arc<str>,
    pub enabled: bool,
    tls: bool,
    host: String,
    port: u16,
    /// `Host` header value (and h2 `:authority`).
    authority: HeaderValue,
    base_path: String,
    pub provider: Box<dyn Provider>,
    extra_headers: Vec<(HeaderName, HeaderValue)>,
    connect_timeout: Duration,
    read_timeout: Duration,
    idle_timeout: Duration,
    first_byte_timeout: Duration,
    total_timeout: Option<Duration>,
    pub health_check: Option<crate::config::HealthCheckSpec>,
    /// Roots to trust instead of the system's (`ca_file`), checked at config load.
    ca: Option<Arc<[WrappedX509]>>,
    http2: bool,
    fixed_addr: Option<SocketAddr>,
    resolved: RwLock<Option<(SocketAddr, Instant)>>,
    /// The configured secrets long enough to be recognised (8 bytes and more), masked in
    /// whatever the backend sends back before a client sees it.
    secrets: Vec<Box<str>>,
}

impl Backend {
    pub fn new(spec: &BackendSpec) -> Backend {
        let u = &spec.url;
        let default_port = if u.tls { 443 } else { 80 };
        let host_for_header = if u.host.contains(':') {
            format!("[{}]", u.host)
        } else {
            u.host.clone()
        };
        let authority = if u.port == default_port {
            host_for_header
        } else {
            format!("{host_for_header}:{}", u.port)
        };
        let extra_headers = spec
            .headers
            .iter()
            .filter_map(|(k, v)| {
                let mut v = HeaderValue::from_str(v.expose()).ok()?;
                v.set_sensitive(true);
                Some((HeaderName::from_bytes(k.as_bytes()).ok()?, v))
            })
            .collect();
        Backend {
            name: Arc::from(spec.name.as_str()),
            enabled: spec.enabled,
            tls: u.tls,
            fixed_addr: u
                .host
                .parse::<std::net::IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, u.port)),
            host: u.host.clone(),
            port: u.port,
            authority: HeaderValue::from_str(&authority)
                .unwrap_or_else(|_| HeaderValue::from_static("localhost")),
            base_path: u.base_path.clone(),
            provider: super::build(spec),
            ca: spec.ca.as_ref().map(|certs| {
                certs
                    .iter()
                    .map(|der| WrappedX509::new(der.clone(), parse_x509))
                    .collect::<Vec<_>>()
                    .into()
            }),
            http2: spec.http2,
            extra_headers,
            connect_timeout: spec.connect_timeout,
            read_timeout: spec.read_timeout,
            idle_timeout: spec.idle_timeout,
            first_byte_timeout: spec.first_byte_timeout.unwrap_or(spec.read_timeout),
            total_timeout: spec.total_timeout,
            health_check: spec.health_check.clone(),
            resolved: RwLock::new(None),
            secrets: (spec.secrets().into_iter())
                .filter(|s| s.len() >= 8)
                .map(Box::from)
                .collect(),
        }
    }

    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Longest wait for a streamed reply's first event.
    pub fn first_byte_timeout(&self) -> Duration {
        self.first_byte_timeout
    }

    /// Longest a whole exchange may take, relay included.
    /// `body` with every configured secret replaced by `***`, when it holds one (a provider's
    /// error that echoes the key it was sent must not reach the client).
    pub fn mask(&self, body: &[u8]) -> Option<Vec<u8>> {
        let mut out: Option<Vec<u8>> = None;
        for s in &self.secrets {
            let from = out.as_deref().unwrap_or(body);
            if memchr::memmem::find(from, s.as_bytes()).is_none() {
                continue;
            }
            let mut next = Vec::with_capacity(from.len());
            let mut rest = from;
            while let Some(i) = memchr::memmem::find(rest, s.as_bytes()) {
                next.extend_from_slice(&rest[..i]);
                next.extend_from_slice(b"***");
                rest = &rest[i + s.len()..];
            }
            next.extend_from_slice(rest);
            out = Some(next);
        }
        out
    }

    pub fn total_timeout(&self) -> Option<Duration> {
        self.total_timeout
    }

    /// The `Host` header value.
    pub fn authority(&self) -> &str {
        self.authority.to_str().unwrap_or_default()
    }

    /// An active health check's request: the path under the backend's base path, with its
    /// credentials and configured headers.
    pub fn probe_header(
        &self,
        method: &http::Method,
        path: &str,
        token: Option<&str>,
    ) -> pingora::Result<RequestHeader> {
        let full = format!("{}{path}", self.base_path);
        let mut req = RequestHeader::build_no_case(method.clone(), full.as_bytes(), None)?;
        req.insert_header(http::header::HOST, self.authority.clone())?;
        self.provider.authorize(&mut req, b"", token)?;
        for (k, v) in &self.extra_headers {
            req.insert_header(k.clone(), v.clone())?;
        }
        Ok(req)
    }

    /// The peer for one attempt. Resolves hostnames off the runtime's threads (tokio's
    /// `lookup_host`), caching the answer for `DNS_TTL`.
    pub async fn peer(&self) -> Result<HttpPeer, UpstreamSetupError> {
        let addr = match self.fixed_addr {
            Some(a) => a,
            None => self.resolve().await?,
        };
        let mut peer = HttpPeer::new(addr, self.tls, self.host.clone());
        let o = &mut peer.options;
        o.connection_timeout = Some(self.connect_timeout);
        o.total_connection_timeout = Some(self.connect_timeout * 2);
        o.read_timeout = Some(self.read_timeout);
        o.write_timeout = Some(self.read_timeout);
        o.idle_timeout = Some(self.idle_timeout);
        o.ca = self.ca.clone();
        if self.tls && self.http2 {
            o.set_http_version(2, 1);
            o.max_h2_streams = 100;
            o.h2_ping_interval = Some(Duration::from_secs(30));
        }
        Ok(peer)
    }

    async fn resolve(&self) -> Result<SocketAddr, UpstreamSetupError> {
        if let Ok(guard) = self.resolved.read() {
            if let Some((a, at)) = *guard {
                if at.elapsed() < DNS_TTL {
                    return Ok(a);
                }
            }
        }
        let err = |reason: String| UpstreamSetupError::Resolve {
            host: self.host.clone(),
            reason,
        };
        let addr = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| err(e.to_string()))?
            .next()
            .ok_or_else(|| err("no addresses".into()))?;
        if let Ok(mut guard) = self.resolved.write() {
            *guard = Some((addr, Instant::now()));
        }
        Ok(addr)
    }

    /// The upstream request: `path` (built by the provider), the client's end-to-end headers
    /// minus its credentials, and the provider's auth. A translated body is JSON in another
    /// API, so the client's API-version headers stay behind.
    pub fn request_header(
        &self,
        client: &RequestHeader,
        path: &str,
        body: &[u8],
        request_id: &str,
        translated: bool,
        token: Option<&str>,
    ) -> pingora::Result<RequestHeader> {
        // No case map: header names go upstream in lowercase (they are case-insensitive), and
        // keeping Pingora's second, case-preserving map costs a hash per header. The client's
        // headers go straight into the map: `append_header` would title-case each name and
        // parse it back.
        let req = RequestHeader::build_no_case(client.method.clone(), path.as_bytes(), None)?;
        let mut parts = http::request::Parts::from(req);
        parts.headers.reserve(client.headers.len() + 4);
        let connection_listed = connection_tokens(client);
        for (name, value) in client.headers.iter() {
            if is_dropped_request_header(name)
                || connection_listed.iter().any(|t| name == t)
                || (translated && is_api_header(name))
            {
                continue;
            }
            parts
                .headers
                .try_append(name.clone(), value.clone())
                .or_err(InvalidHTTPHeader, "too many request headers")?;
        }
        let h = &mut parts.headers;
        h.insert(http::header::HOST, self.authority.clone());
        h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        let id = HeaderValue::from_str(request_id).or_err(InvalidHTTPHeader, "request id")?;
        h.insert(X_REQUEST_ID, id);
        if translated {
            let json = HeaderValue::from_static("application/json");
            h.insert(http::header::CONTENT_TYPE, json);
        }
        // An origin-form target (every upstream path) round-trips through the parts unchanged.
        let mut req = RequestHeader::from(parts);
        // SigV4 signs only `host` and `content-type` (set above), so configured headers may
        // still override the provider's.
        self.provider.authorize(&mut req, body, token)?;
        for (k, v) in &self.extra_headers {
            req.insert_header(k.clone(), v.clone())?;
        }
        Ok(req)
    }
}

/// A client's API-specific headers, meaningless once its body is translated to another API.
fn is_api_header(name: &HeaderName) -> bool {
    let n = name.as_str();
    n.starts_with("anthropic-") || n.starts_with("openai-")
}

/// Header names listed in the client's `Connection` header are hop-by-hop too (RFC 9110 §7.6.1).
fn connection_tokens(req: &RequestHeader) -> Vec<HeaderName> {
    req.headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect()
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and the proxy credentials: never relayed either way.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    use http::header::*;
    matches!(
        *name,
        CONNECTION
            | TE
            | TRAILER
            | TRANSFER_ENCODING
            | UPGRADE
            | PROXY_AUTHORIZATION
            | PROXY_AUTHENTICATE
    ) || matches!(name.as_str(), "keep-alive" | "proxy-connection")
}

/// Request headers not sent upstream: hop-by-hop, the client's credentials, and what the
/// gateway sets itself.
fn is_dropped_request_header(name: &HeaderName) -> bool {
    use http::header::*;
    is_hop_by_hop(name)
        || matches!(
            *name,
            // Upstream replies uncompressed so the gateway can read usage from them.
            HOST | AUTHORIZATION | CONTENT_LENGTH | EXPECT | ACCEPT_ENCODING
        )
        || matches!(name.as_str(), "x-api-key" | "api-key" | "x-request-id")
}

/// Response headers that must not be relayed to the client as they came (the gateway sets
/// the framing itself).
pub fn is_hop_by_hop_response_header(name: &HeaderName) -> bool {
    is_hop_by_hop(name) || name == http::header::CONTENT_LENGTH
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn backend(url: &str) -> Backend {
        let src = format!(
            "[[backends]]\nname=\"b\"\nprovider=\"openai\"\nurl=\"{url}\"\napi_key=\"sk-up\"\n"
        );
        let cfg = Config::from_str_with_env(&src, &|_| None).unwrap();
        Backend::new(&cfg.backends[0])
    }

    #[test]
    fn upstream_header_swaps_credentials_and_drops_hop_by_hop() {
        let b = backend("https://api.example.com");
        let mut c = RequestHeader::build("POST", b"/v1/chat/completions", None).unwrap();
        c.insert_header("authorization", "Bearer client-key")
            .unwrap();
        c.insert_header("x-api-key", "client-key").unwrap();
        c.insert_header("connection", "keep-alive, x-drop-me")
            .unwrap();
        c.insert_header("x-drop-me", "1").unwrap();
        c.insert_header("keep-alive", "timeout=5").unwrap();
        c.insert_header("content-type", "application/json").unwrap();
        c.insert_header("openai-organization", "org").unwrap();
        let r = b
            .request_header(&c, "/v1/chat/completions", &[b' '; 42], "rid", false, None)
            .unwrap();
        let h = |n: &str| r.headers.get(n).map(|v| v.to_str().unwrap().to_string());
        assert_eq!(h("authorization").as_deref(), Some("Bearer sk-up"));
        assert_eq!(h("host").as_deref(), Some("api.example.com"));
        assert_eq!(h("content-length").as_deref(), Some("42"));
        assert_eq!(h("content-type").as_deref(), Some("application/json"));
        assert_eq!(h("openai-organization").as_deref(), Some("org"));
        for gone in ["x-api-key", "connection", "x-drop-me", "keep-alive"] {
            assert!(h(gone).is_none(), "{gone} leaked");
        }
        assert_eq!(r.uri.path(), "/v1/chat/completions");
    }

    #[test]
    fn base_path_and_port() {
        use crate::providers::Operation;
        let b = backend("http://10.0.0.1:8000/v1");
        let path = b
            .provider
            .path(b.base_path(), Operation::Embeddings, "m", None, false);
        assert_eq!(path, "/v1/embeddings");
        let c = RequestHeader::build("POST", b"/v1/embeddings", None).unwrap();
        let r = b
            .request_header(&c, &path, b"", "rid", false, None)
            .unwrap();
        assert_eq!(r.headers.get("host").unwrap(), "10.0.0.1:8000");
        let b = backend("http://10.0.0.1/openai");
        let path = b.provider.path(
            b.base_path(),
            Operation::Embeddings,
            "m",
            Some("x=1"),
            false,
        );
        assert_eq!(path, "/openai/v1/embeddings?x=1");
    }

    #[test]
    fn translated_requests_leave_api_headers_behind() {
        let b = backend("https://api.example.com");
        let mut c = RequestHeader::build("POST", b"/v1/messages", None).unwrap();
        c.insert_header("anthropic-version", "2023-06-01").unwrap();
        c.insert_header("anthropic-beta", "x").unwrap();
        c.insert_header("x-trace", "t").unwrap();
        let r = b
            .request_header(&c, "/v1/chat/completions", b"{}", "rid", true, None)
            .unwrap();
        assert!(r.headers.get("anthropic-version").is_none());
        assert!(r.headers.get("anthropic-beta").is_none());
        assert_eq!(r.headers.get("x-trace").unwrap(), "t");
        assert_eq!(r.headers.get("content-type").unwrap(), "application/json");
    }
}
