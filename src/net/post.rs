//! One small HTTP POST or GET over Pingora's connector (rustls with the system roots for https),
//! for the gateway's own calls: OAuth token exchanges, webhook notices, JWKS fetches.

use super::url::UpstreamUrl;
use bytes::{Bytes, BytesMut};
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PostError {
    /// No answer: DNS, connect, TLS, I/O or a timeout (the reason, never a secret).
    #[error("{0}")]
    Unreachable(String),
    #[error("the reply is larger than {0} bytes")]
    TooLarge(usize),
}

pub struct Post<'a> {
    pub url: &'a str,
    pub content_type: &'a str,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_reply: usize,
}

impl Post<'_> {
    /// Sends `body`; the status and the reply body.
    pub async fn send(
        &self,
        connector: &Connector,
        body: Bytes,
    ) -> Result<(u16, Bytes), PostError> {
        self.exchange(connector, "POST", Some(body)).await
    }

    async fn exchange(
        &self,
        connector: &Connector,
        method: &str,
        body: Option<Bytes>,
    ) -> Result<(u16, Bytes), PostError> {
        let fail = |why: String| PostError::Unreachable(why);
        let url = super::url::parse_url(self.url).map_err(fail)?;
        let addr = tokio::net::lookup_host((url.host.as_str(), url.port))
            .await
            .map_err(|e| fail(e.to_string()))?
            .next()
            .ok_or_else(|| fail("no address".into()))?;
        let mut peer = HttpPeer::new(addr, url.tls, url.host.clone());
        peer.options.connection_timeout = Some(self.connect_timeout);
        peer.options.total_connection_timeout = Some(self.connect_timeout * 2);
        peer.options.read_timeout = Some(self.timeout);
        let io = |e: Box<pingora::Error>| fail(e.etype().as_str().to_string());
        let len = body.as_ref().map(Bytes::len);
        let req = request_header(&url, method, self.content_type, len).map_err(io)?;
        let (mut s, _) = connector.get_http_session(&peer).await.map_err(io)?;
        s.set_read_timeout(Some(self.timeout));
        s.write_request_header(Box::new(req)).await.map_err(io)?;
        if let Some(body) = body {
            s.write_request_body(body, true).await.map_err(io)?;
        }
        s.finish_request_body().await.map_err(io)?;
        s.read_response_header().await.map_err(io)?;
        let status = s.response_header().map_or(0, |h| h.status.as_u16());
        let mut reply = BytesMut::new();
        while let Some(chunk) = s.read_response_body().await.map_err(io)? {
            if reply.len() + chunk.len() > self.max_reply {
                return Err(PostError::TooLarge(self.max_reply));
            }
            reply.extend_from_slice(&chunk);
        }
        Ok((status, reply.freeze()))
    }
}

/// One small GET (a JWKS): as [`Post`], without a body; `accept` says what it asks for.
pub struct Get<'a> {
    pub url: &'a str,
    pub accept: &'a str,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_reply: usize,
}

impl Get<'_> {
    /// The status and the reply body.
    pub async fn send(&self, connector: &Connector) -> Result<(u16, Bytes), PostError> {
        let post = Post {
            url: self.url,
            content_type: self.accept,
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
            max_reply: self.max_reply,
        };
        post.exchange(connector, "GET", None).await
    }
}

/// The request head; with no body (a GET), `ctype` is sent as `accept`.
fn request_header(
    url: &UpstreamUrl,
    method: &str,
    ctype: &str,
    len: Option<usize>,
) -> pingora::Result<RequestHeader> {
    let path = match url.base_path.is_empty() {
        true => "/",
        false => &url.base_path,
    };
    let mut req = RequestHeader::build(method, path.as_bytes(), None)?;
    let default_port = if url.tls { 443 } else { 80 };
    let host = match (url.port == default_port, url.host.contains(':')) {
        (true, false) => url.host.clone(),
        (true, true) => format!("[{}]", url.host),
        (false, false) => format!("{}:{}", url.host, url.port),
        (false, true) => format!("[{}]:{}", url.host, url.port),
    };
    req.insert_header("host", host)?;
    match len {
        Some(len) => {
            req.insert_header("content-type", ctype.to_string())?;
            req.insert_header("content-length", len)?;
        }
        None => req.insert_header("accept", ctype.to_string())?,
    }
    Ok(req)
}
