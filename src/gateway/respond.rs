//! Answers the gateway writes itself: errors in the client's API shape, JSON it made, and the
//! request id every answer carries.

use super::ctx::{CacheStatus, Ctx};
use super::headers::Headers;
use super::limit;
use super::Session;
use crate::error::ApiError;
use crate::fronts::Front;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;

pub(crate) const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// Accepts a client's `x-request-id` if it is short and plain; otherwise makes one.
pub(super) fn request_id(session: &Session) -> String {
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
    crate::formats::ids::fresh()
}

/// Answers with `e` in the client's API shape, with the limit headers it carries.
pub(super) async fn respond_error(
    session: &mut Session,
    ctx: &mut Ctx,
    e: &ApiError,
) -> Result<()> {
    ctx.status = e.status;
    ctx.error = ctx.error.or(Some(e.label()));
    let (status, body) = crate::formats::render_error(ctx.api, e);
    let head_only = session.req_header().method == http::Method::HEAD;
    let mut hdr = json_header(status, body.len(), &ctx.request_id)?;
    own_headers(ctx, status, &mut hdr)?;
    if e.status == 405 {
        let allow = Front::allow(session.req_header().uri.path());
        hdr.insert_header(http::header::ALLOW, allow)?;
    }
    if e.status == 401 {
        hdr.insert_header(http::header::WWW_AUTHENTICATE, "Bearer")?;
    }
    let ds = &mut *session;
    ds.write_response_header(Box::new(hdr)).await?;
    ds.write_response_body(if head_only { Bytes::new() } else { body }, true)
        .await
}

/// Answers with a JSON body the gateway made (model lists, stored responses).
pub(super) async fn write_json(
    session: &mut Session,
    ctx: &mut Ctx,
    status: u16,
    body: Bytes,
    head_only: bool,
) -> Result<()> {
    ctx.status = status;
    let mut hdr = json_header(status, body.len(), &ctx.request_id)?;
    own_headers(ctx, status, &mut hdr)?;
    let ds = &mut *session;
    ds.write_response_header(Box::new(hdr)).await?;
    ds.write_response_body(if head_only { Bytes::new() } else { body }, true)
        .await
}

/// What every answer carries besides its own headers: the limits' and the cache's (`status`:
/// the answer's).
pub(super) fn own_headers(ctx: &Ctx, status: u16, h: &mut impl Headers) -> Result<()> {
    limit::write_headers(ctx, h)?;
    cache_headers(ctx, status, h)
}

/// The `Cache-Status` (and on a hit `Age`) header of a reply on a cached route.
fn cache_headers(ctx: &Ctx, status: u16, h: &mut impl Headers) -> Result<()> {
    const CACHE_STATUS: http::HeaderName = http::HeaderName::from_static("cache-status");
    let Some(c) = ctx.cache.as_deref() else {
        return Ok(());
    };
    // `x-tollgate-cache-ttl: 0` stores nothing.
    let stored = c.fill.is_some() && status == 200 && !c.ttl.is_zero();
    let v = match (c.status, stored) {
        (CacheStatus::Hit { age }, _) => {
            h.put(&http::header::AGE, age.into())?;
            "tollgate; hit"
        }
        (CacheStatus::Miss, true) => "tollgate; fwd=miss; stored",
        (CacheStatus::Miss, false) => "tollgate; fwd=miss",
        (CacheStatus::Refresh, true) => "tollgate; fwd=request; stored",
        (CacheStatus::Refresh, false) => "tollgate; fwd=request",
        (CacheStatus::Bypass, _) => "tollgate; fwd=bypass",
    };
    h.put(&CACHE_STATUS, http::HeaderValue::from_static(v))
}

fn json_header(status: u16, len: usize, request_id: &str) -> Result<ResponseHeader> {
    let mut h = ResponseHeader::build(status, Some(4))?;
    h.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    h.insert_header(http::header::CONTENT_LENGTH, len)?;
    h.insert_header(X_REQUEST_ID, request_id)?;
    Ok(h)
}
