//! The admin listener: probes, metrics, the backends' state, the usage report and the config
//! endpoints. It sits above the gateway and the reloader, reading both.

mod config;
mod key_wire;
mod keys;

use crate::gateway::{AdminAccess, State};
use crate::observe::Metrics;
use crate::reload::Current;
use crate::store::cli::{report_page, Args, PageArgs, ReportError};
use async_trait::async_trait;
use http::Response;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The admin listener: `GET /healthz` (alive), `GET /readyz` (config loaded, store reachable,
/// a usable target for every route), `GET /metrics` (Prometheus text), `GET /backends` (every
/// backend's live selection state as JSON), `GET /usage` (the ledger report as JSON, as
/// `tollgate usage` prints it), `GET`/`DELETE /cache` (the response cache), `/keys` and
/// `/audit` (managed keys, `keys.rs`) and the config endpoints (`GET /config`, `POST /config/reload`,
/// `POST /config/rollback?version=ID`). With `admin_token`, `/backends`, `/usage` and
/// `/config` need it (the config's changes always do), and with `admin_require_token`
/// everything but the probes does. The token comes from the running config, so a reload
/// rotates it.
pub struct AdminApp {
    pub metrics: Arc<Metrics>,
    /// The ledger `/usage` reads.
    pub ledger: PathBuf,
    pub config: Arc<Current>,
}

pub(crate) type Answer = (u16, &'static str, Vec<u8>);

/// The admin's own HTTP entry point (Pingora's `ServeHttp` adapter would log a malformed
/// request's raw head, `Authorization` included, at ERROR): a request that cannot be read is
/// logged by its error type only, and the connection closed.
#[async_trait]
impl HttpServerApp for AdminApp {
    async fn process_new_http(
        self: &Arc<Self>,
        mut http: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        match http.read_request().await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                log::warn!(
                    "admin listener: unreadable request ({})",
                    e.etype().as_str()
                );
                return None;
            }
        }
        http.set_keepalive((!*shutdown.borrow()).then_some(60));
        let (parts, body) = self.response(&mut http).await.into_parts();
        let header: ResponseHeader = parts.into();
        let written = async {
            http.write_response_header(Box::new(header)).await?;
            if !body.is_empty() {
                http.write_response_body(body.into(), true).await?;
            }
            Ok::<(), Box<pingora::Error>>(())
        };
        if let Err(e) = written.await {
            log::debug!("admin listener: write failed ({})", e.etype().as_str());
            return None;
        }
        let settings = HttpPersistentSettings::for_session(&http);
        let stream = http.finish().await.ok().flatten()?;
        Some(ReusedHttpStream::from_reusable_stream(stream, settings))
    }
}

impl AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let snap = self.config.load();
        let access = &snap.admin;
        let path = session.req_header().uri.path();
        let open =
            matches!(path, "/healthz" | "/readyz") || (!access.require_token && path == "/metrics");
        let mut next = None;
        let (status, ctype, body) = match path {
            _ if !open && access.token.is_some() && !authorized(session, access) => unauthorized(),
            _ if path.starts_with("/config") => config::answer(&self.config, session, access).await,
            "/metrics" => {
                self.metrics.kept_responses(snap.responses.held_bytes());
                (200, "text/plain; version=0.0.4", self.metrics.render())
            }
            "/healthz" => (200, "text/plain", b"ok\n".to_vec()),
            "/readyz" => ready(&snap),
            "/usage" => {
                let (answer, cursor) = self.usage(session, access).await;
                next = cursor;
                answer
            }
            "/backends" => (200, "application/json", snap.balancer.views_json()),
            "/cache" => cache(&snap, session).await,
            _ if path == "/keys" || path.starts_with("/keys/") || path == "/audit" => {
                keys::answer(self.config.runtime(), &snap, session).await
            }
            _ => (404, "text/plain", b"not found\n".to_vec()),
        };
        drop(snap);
        let mut r = Response::builder()
            .status(status)
            .header("content-type", ctype)
            .header("content-length", body.len());
        if status == 401 {
            r = r.header("www-authenticate", "Bearer");
        }
        if let Some(c) = next {
            r = r.header("x-tollgate-next-cursor", c);
        }
        r.body(body).unwrap_or_default()
    }
}

/// `GET /cache`: what the response cache holds; `DELETE /cache[?route=NAME]`: empties it, or
/// one route's entries. Only with an admin token (it changes what clients get).
async fn cache(st: &State, session: &ServerSession) -> Answer {
    if st.admin.token.is_none() {
        return error(404, "/cache is off: set [server] admin_token to enable it");
    }
    let req = session.req_header();
    let route = query_args_raw(req.uri.query().unwrap_or(""), "route");
    if let Some(r) = &route {
        if !st.router.routes().iter().any(|x| *x.name == **r) {
            return error(404, &format!("no route is named {r:?}"));
        }
    }
    let (purged, shared) = match req.method {
        http::Method::GET => (None, None),
        http::Method::DELETE => {
            let (here, shared) = st.cache.purge(route.as_deref()).await;
            let what = route.as_deref().unwrap_or("all routes");
            log::info!("admin: cache purged ({what}): {here} entries here, {shared:?} shared");
            (Some(here), shared.filter(|_| st.cache.is_shared()))
        }
        _ => return error(405, "use GET or DELETE"),
    };
    let (bytes, evicted) = st.cache.stats();
    st.metrics.cache.held(bytes);
    let body = serde_json::json!({
        "purged": purged, "purged_shared": shared, "route": route,
        "shared": st.cache.is_shared(), "bytes": bytes, "evicted_total": evicted,
    });
    (200, "application/json", body.to_string().into_bytes())
}

/// The decoded value of `name` in a query string.
fn query_args_raw(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

pub(crate) fn error(status: u16, message: &str) -> Answer {
    let body = serde_json::json!({"error": {"message": message}});
    (status, "application/json", body.to_string().into_bytes())
}

/// Ready: the config is loaded (this answers at all), the limit store answered its last
/// call, the managed keys (if served) are loaded, and every route has a target that can take
/// a request now.
fn ready(st: &State) -> Answer {
    let store_up = !st.limiter.store_down();
    let routes: serde_json::Map<String, serde_json::Value> = st
        .router
        .routes()
        .iter()
        .map(|r| (r.name.to_string(), st.balancer.usable_targets(r).into()))
        .collect();
    let keys = st.keys.loaded();
    let ready = store_up && keys && routes.values().all(|n| n.as_u64() > Some(0));
    let body = serde_json::json!({"ready": ready, "store_up": store_up, "keys_loaded": keys,
        "usable_targets": routes});
    let status = if ready { 200 } else { 503 };
    (status, "application/json", body.to_string().into_bytes())
}

impl AdminApp {
    /// `GET /usage`: one page of the report, and the next page's cursor when more rows follow.
    async fn usage(
        &self,
        session: &ServerSession,
        access: &AdminAccess,
    ) -> (Answer, Option<String>) {
        if access.token.is_none() {
            let off = error(404, "/usage is off: set [server] admin_token to enable it");
            return (off, None);
        }
        let req = session.req_header();
        let args = query_args(req.uri.query().unwrap_or_default());
        let path = self.ledger.clone();
        let done = tokio::task::spawn_blocking(move || report_page(&path, &args)).await;
        let answer = match done {
            Ok(Ok((json, next))) => {
                // Paged: at most `limit` rows; the body stays the report's JSON array, and the
                // next page's cursor (when more rows follow) is in a header.
                let answer = (200, "application/json", json.into_bytes());
                return (answer, next);
            }
            Ok(Err(ReportError::Args(e))) => error(400, &e),
            Ok(Err(ReportError::Store(e))) => error(503, &e),
            Err(_) => error(500, "the report failed"),
        };
        (answer, None)
    }
}

/// Whether the request presents the admin token (false when none is configured).
pub(crate) fn authorized(session: &ServerSession, access: &AdminAccess) -> bool {
    let Some(token) = &access.token else {
        return false;
    };
    let presented = session
        .req_header()
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Digests compared in constant time: neither the token nor its length leaks.
    let want = Sha256::digest(token.expose().as_bytes());
    let got = Sha256::digest(presented.trim().as_bytes());
    bool::from(want.ct_eq(&got))
}

pub(crate) fn unauthorized() -> Answer {
    error(
        401,
        "a valid admin token is required (Authorization: Bearer ...)",
    )
}

/// `since`, `until` and `group_by` from a query string; the format is always JSON.
pub(crate) fn query_args(query: &str) -> Args {
    let mut a = Args {
        since: None,
        until: None,
        group_by: None,
        format: "json".into(),
        page: Some(PageArgs {
            limit: None,
            cursor: None,
        }),
    };
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = Some(percent_decode(v));
        match k {
            "since" => a.since = v,
            "until" => a.until = v,
            "group_by" => a.group_by = v,
            "limit" => a.page.as_mut().map_or((), |p| p.limit = v),
            "cursor" => a.page.as_mut().map_or((), |p| p.cursor = v),
            _ => {}
        }
    }
    a
}

/// `%XX` and `+` decoding of a query value (invalid escapes are kept as they are).
pub(crate) fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = (b[i] == b'%' && i + 2 < b.len())
            .then(|| Some(hex(b[i + 1])? * 16 + hex(b[i + 2])?))
            .flatten();
        match (b[i], escaped) {
            (_, Some(x)) => {
                out.push(x);
                i += 2;
            }
            (b'+', None) => out.push(b' '),
            (c, None) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_decoded() {
        let a = super::query_args("since=2026-11-23T10%3A00%3A00%2B01%3A00&group_by=key,day&x=1");
        assert_eq!(a.since.as_deref(), Some("2026-11-23T10:00:00+01:00"));
        assert_eq!(a.group_by.as_deref(), Some("key,day"));
        assert_eq!(super::percent_decode("a%zzb%4"), "a%zzb%4");
    }
}
