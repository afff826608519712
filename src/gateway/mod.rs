//! The request path's table of contents. `app.rs` is the Pingora app: it reads a request's
//! head and calls `filter`, then settles; the stages share the request's context (`ctx.rs`),
//! the config snapshot (`state.rs`), the failure types (`failure.rs`) and the gateway's own
//! answers (`respond.rs`).
//!
//! The model to route by is in the body, so the whole exchange runs in `filter`, after the
//! body is read, with Pingora's `Connector` (pools, TLS, h2, timeouts). See ARCHITECTURE.md
//! for the evidence.
//!
//! The request's path: `entry` (front, key, route, admission under `limit`) → `plan` (the
//! target, the translation) → `exchange` (attempts: `select`, `relay`, retries and failover)
//! → `settle` (billing, the ledger, the access log). `kept` and `stored` serve the Responses
//! API's kept responses.

mod address;
mod admission;
mod app;
mod body;
mod cached;
mod ctx;
mod entry;
mod exchange;
mod failure;
mod handoff;
pub mod head;
mod headers;
mod kept;
mod limit;
mod plan;
mod relay;
mod reply;
mod respond;
mod select;
mod settle;
mod state;
mod stored;
mod writers;

pub use admission::{probe, with_model};
pub use app::{Gateway, SETTLE};
pub use ctx::Ctx;
pub use state::{AdminAccess, Runtime, Snapshots, State};

use failure::Handled;
use pingora::prelude::*;
/// The client's connection: the request path reads and answers it itself.
pub(crate) use pingora::protocols::http::ServerSession as Session;
use respond::{request_id, respond_error};
use std::future::Future;
use std::pin::Pin;

/// The request path: every request is answered here (see the module's comment).
async fn filter(session: &mut Session, ctx: &mut Ctx) -> Result<()> {
    // `ctx.start` was set by `Ctx::new`, right after the request header was read.
    head::head_read();
    ctx.request_id = request_id(session);
    // Only a connection Pingora keeps alive stays open: it has already closed HTTP/1.0
    // without `keep-alive` and a request with both Content-Length and Transfer-Encoding. Our
    // 0 turns keep-alive off. Otherwise Pingora waits without a timer of its own (its 0) and
    // the connection's head clock closes it once idle for the keep-alive timeout
    // (`app::reply_done`): Pingora's timer cost a clock read and a registration a request.
    if session.get_keepalive().is_some() {
        let on = ctx.state.keepalive_seconds > 0;
        session.set_keepalive(on.then_some(0));
    }
    // Bounds each read of the client's body, so a stalled upload cannot hold a request.
    session.set_read_timeout(Some(ctx.state.client_read_timeout));
    match entry::handle(session, ctx).await {
        Ok(()) => Ok(()),
        Err(Handled::Respond(e)) => respond_error(session, ctx, &e).await,
        Err(Handled::Abort(e)) => Err(e),
    }
}

/// The future `make` builds, in a box allocated before it is built, so it is written in place
/// rather than built on the stack and copied into the box. Used for futures of kilobytes made
/// on every request: boxed, they also keep the futures that await them small (the memory a
/// request holds for its whole life, a stream's included, is its largest future's size).
pub(crate) fn in_box<F: Future>(make: impl FnOnce() -> F) -> Pin<Box<F>> {
    let slot = Box::new_uninit();
    Box::into_pin(Box::write(slot, make()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `f` makes, without making one.
    fn future_size<'a, F: Future>(_: impl Fn(&'a mut Session, &'a mut Ctx) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// The request path's future, inline in a connection's (`app.rs`) for the request's whole
    /// life, a stream's included: under 5 KB; 11.7 KB while the upstream session and peer
    /// moved through it inline (each future they passed through kept a copy).
    #[test]
    fn a_request_s_future_stays_small() {
        let n = future_size(filter);
        eprintln!("request future: {n} bytes");
        assert!(n <= 6 * 1024, "{n} bytes");
    }
}
