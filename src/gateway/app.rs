//! The gateway as a Pingora `HttpServerApp`: reads a request's head, runs the request path
//! (`filter`), settles, and hands the connection back for its next request.
//!
//! Not `pingora-proxy`'s `HttpProxy`: every request is answered in the request path, so none
//! of its phases after `request_filter` ever ran, yet each request paid for them: its
//! per-request future (14.7 KB, our context inline) was built on the stack and copied into a
//! box by `async_trait`, ~15k instructions a request, and it stayed the largest allocation a
//! stream held. This is that future without the unused phases, built in its box. What
//! `HttpProxy` did on this path is kept: a head that cannot be parsed gets a 400, `CONNECT` a
//! 405, a failed request the client's error (`fail`), and idle keep-alive connections close
//! when the service stops.
//!
//! A moment's grace for connections accepted just before a stop or an upgrade: when Pingora
//! stops accepting (SIGTERM, or the old process of an upgrade) it asks the app to close every
//! connection waiting for a request head, including one accepted a moment earlier whose
//! request is still on the wire (its client would see the connection closed with no answer).
//! The close waits [`SETTLE`], so such a request is read and served (with `Connection: close`),
//! and the drain counts it before deciding the gateway is idle.

use super::{filter, in_box, settle, Ctx, Session, Snapshots};
use crate::error::ApiError;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::prelude::*;
use pingora::server::ShutdownWatch;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long a just-accepted connection has to deliver its request once accepting stops.
pub const SETTLE: Duration = Duration::from_millis(300);

pub struct Gateway {
    config: Arc<dyn Snapshots>,
    server_options: HttpServerOptions,
    closing: Closing,
}

impl Gateway {
    /// The gateway on `config`, its stop signal sharded over `threads` worker threads.
    pub fn new(
        config: Arc<dyn Snapshots>,
        server_options: HttpServerOptions,
        threads: usize,
    ) -> Gateway {
        Gateway {
            config,
            server_options,
            closing: Closing::new(threads),
        }
    }

    /// One request on `session`: the connection back if it can carry another. A plain `fn`
    /// returning an `async move` block: an `async fn` keeps its argument's slot for the
    /// future's whole life beside the local it moves it into (680 more bytes a connection).
    #[allow(clippy::manual_async_fn)]
    fn serve<'a>(
        &'a self,
        mut session: Session,
        shutdown: &'a ShutdownWatch,
    ) -> impl Future<Output = Option<ReusedHttpStream>> + Send + 'a {
        async move {
            if !self.read_head(&mut session).await {
                return None;
            }
            if self.closing.flag.load(Ordering::Acquire) || *shutdown.borrow() {
                // The service is stopping: this connection carries no further request.
                session.set_keepalive(None);
            }
            let mut ctx = Ctx::new(self.config.load());
            let failed = filter(&mut session, &mut ctx).await.err();
            if let Some(e) = &failed {
                fail(&mut session, e, &mut ctx).await;
            }
            settle::finish(&mut session, failed.as_deref(), &mut ctx).await;
            reply_done(&ctx);
            drop(ctx);
            if let Some(e) = failed {
                session.on_proxy_failure(e);
                return None;
            }
            let settings = HttpPersistentSettings::for_session(&session);
            let stream = session.finish().await.ok().flatten()?;
            Some(ReusedHttpStream::from_reusable_stream(stream, settings))
        }
    }

    /// Reads the request's head; false when there is no request to serve (the client left, the
    /// service stopped while the connection was idle, or the head was refused).
    async fn read_head(&self, session: &mut Session) -> bool {
        let read = tokio::select! {
            // Biased: a request already buffered is served, not dropped.
            biased;
            r = session.read_request() => r,
            _ = self.closing.wait() => return false,
        };
        let refusal = match read {
            Ok(true) if session.req_header().method == http::Method::CONNECT => 405,
            Ok(true) => return true,
            Ok(false) => return false,
            Err(e) if e.etype() == &ErrorType::InvalidHTTPHeader => 400,
            Err(e) => {
                // By its type only: the error's text can hold the raw head, credentials included.
                log::debug!(
                    "client connection: unreadable request ({})",
                    e.etype().as_str()
                );
                return false;
            }
        };
        let _ = session.respond_error(refusal).await;
        session.shutdown().await;
        false
    }
}

impl HttpServerApp for Gateway {
    /// Written out rather than by `async_trait`, whose `Box::pin(future)` builds the future on
    /// the stack and copies it into its box: `in_box` builds it in place.
    fn process_new_http<'a, 'b, 'async_trait>(
        self: &'a Arc<Self>,
        session: Session,
        shutdown: &'b ShutdownWatch,
    ) -> Pin<Box<dyn Future<Output = Option<ReusedHttpStream>> + Send + 'async_trait>>
    where
        'a: 'async_trait,
        'b: 'async_trait,
        Self: 'async_trait,
    {
        in_box(move || self.serve(session, shutdown))
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        Some(&self.server_options)
    }

    fn http_cleanup<'a, 'async_trait>(
        &'a self,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'async_trait>>
    where
        'a: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            tokio::time::sleep(SETTLE).await;
            self.closing.close();
        })
    }
}

/// The reply is done: the connection's idle time (keep-alive) starts, and the next head must
/// have arrived whole when it ends; the head clock is the only timer on an idle HTTP/1
/// connection (`filter` turns Pingora's off).
fn reply_done(ctx: &Ctx) {
    super::head::reply_done(Duration::from_secs(ctx.state.keepalive_seconds));
}

/// A request that failed before it was answered gets the client's error body; one that fails
/// mid-response is cut off (the client must see a truncated body, not a clean end).
async fn fail(session: &mut Session, e: &Error, ctx: &mut Ctx) {
    if session.response_written().is_none()
        && !matches!(
            e.etype(),
            ErrorType::WriteError | ErrorType::ConnectionClosed
        )
    {
        let _ = super::respond::respond_error(session, ctx, &ApiError::internal()).await;
    }
}

/// The stop signal idle keep-alive connections wait on, sharded by worker thread: a waiter
/// registers under its shard's lock, so one lock for all would be taken by every request
/// that waits for its head.
struct Closing {
    flag: AtomicBool,
    shards: Box<[Shard]>,
}

/// A cache line of its own, so shards taken by different threads do not share one.
#[repr(align(128))]
struct Shard(Notify);

impl Closing {
    fn new(threads: usize) -> Closing {
        let n = threads.clamp(1, 64).next_power_of_two();
        Closing {
            flag: AtomicBool::new(false),
            shards: (0..n).map(|_| Shard(Notify::new())).collect(),
        }
    }

    /// Resolves when the service stops (at once if it already has).
    async fn wait(&self) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local!(static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed));
        let shard = &self.shards[SHARD.with(|s| *s) & (self.shards.len() - 1)].0;
        let notified = shard.notified();
        if self.flag.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }

    fn close(&self) {
        self.flag.store(true, Ordering::Release);
        for s in self.shards.iter() {
            s.0.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<'a, F: Future>(
        _: impl Fn(&'a Gateway, Session, &'a ShutdownWatch) -> F,
    ) -> usize {
        std::mem::size_of::<F>()
    }

    /// A connection holds this future (in its box) from its request's head to its reply's
    /// end, a stream's included: 5.7 KB, the request path's inline, in jemalloc's 6 KiB size
    /// class. Under `HttpProxy` it held two: Pingora's (14.7 KB) and the request path's,
    /// boxed (5.3 KB).
    #[test]
    fn a_connection_s_future_stays_small() {
        let n = future_size(Gateway::serve);
        eprintln!("connection future: {n} bytes");
        assert!(n <= 6 * 1024, "{n} bytes");
    }
}
