//! Where the gateway's own headers (rate limits, `Cache-Status`, ignored fields) are written.

use pingora::http::ResponseHeader;
use pingora::prelude::*;

/// Where the gateway's own headers go: a header map being built, before Pingora's header is
/// made from it (the fast path: the names are constants, nothing is parsed), or a finished
/// Pingora header (whose `insert_header` parses each name, and keeps its case map).
pub(super) trait Headers {
    fn put(&mut self, name: &http::HeaderName, value: http::HeaderValue) -> Result<()>;
}

impl Headers for http::HeaderMap {
    fn put(&mut self, name: &http::HeaderName, value: http::HeaderValue) -> Result<()> {
        self.try_insert(name.clone(), value)
            .map(drop)
            .or_err(InvalidHTTPHeader, "too many response headers")
    }
}

impl Headers for ResponseHeader {
    fn put(&mut self, name: &http::HeaderName, value: http::HeaderValue) -> Result<()> {
        self.insert_header(name.clone(), value)
    }
}
