//! A moment's grace for connections accepted just before a stop or an upgrade.
//!
//! When Pingora stops accepting (SIGTERM, or the old process of an upgrade), it at once closes
//! every connection waiting for a request header, including one it accepted a moment earlier
//! whose request is still on the wire: that client sees its connection closed with no answer.
//! `Settling` wraps the proxy app and delays that close by `SETTLE`, so such a request is read
//! and served (with `Connection: close`), and the drain counts it before deciding it is idle.

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;

/// How long a just-accepted connection has to deliver its request once accepting stops.
pub const SETTLE: Duration = Duration::from_millis(300);

pub struct Settling<A>(pub Arc<A>);

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> HttpServerApp for Settling<A> {
    async fn process_new_http(
        self: &Arc<Self>,
        session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        self.0.process_new_http(session, shutdown).await
    }

    fn h2_options(&self) -> Option<pingora::protocols::http::v2::server::H2Options> {
        self.0.h2_options()
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.0.server_options()
    }

    async fn http_cleanup(&self) {
        tokio::time::sleep(SETTLE).await;
        self.0.http_cleanup().await;
    }
}
