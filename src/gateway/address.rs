//! The client's address: the peer's, or the one trusted proxies forwarded; refused when the
//! listener's rules (`[server] allow/deny`, `[server.tls]`'s) or, after authentication, the
//! key's do not permit it.

use super::ctx::Ctx;
use super::state::State;
use super::Session;
use crate::error::ApiError;
use crate::net::address::client_behind;

/// Sets `ctx.client` and checks the listener's rules.
pub(super) fn admit_listener(st: &State, session: &Session, ctx: &mut Ctx) -> Result<(), ApiError> {
    let peer = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip());
    let Some(peer) = peer else {
        return Ok(());
    };
    let client = if st.trusted_proxies.is_empty() {
        crate::net::address::canonical(peer)
    } else {
        let xff = session.req_header().headers.get_all("x-forwarded-for");
        client_behind(peer, xff.iter().map(|v| v.as_bytes()), &st.trusted_proxies)
    };
    ctx.client = Some(client);
    let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
    let rules = if tls {
        &st.tls_addresses
    } else {
        &st.addresses
    };
    if rules.permits(client) {
        Ok(())
    } else {
        Err(ApiError::address_not_allowed(&format!(
            "Requests from {client} are not accepted here."
        )))
    }
}

/// Checks the key's own rules (once the key is known).
pub(super) fn admit_key(ctx: &Ctx) -> Result<(), ApiError> {
    let (Some(k), Some(ip)) = (ctx.key.as_deref(), ctx.client) else {
        return Ok(());
    };
    if k.addresses.permits(ip) {
        Ok(())
    } else {
        Err(ApiError::address_not_allowed(&format!(
            "The API key `{}` may not be used from {ip}.",
            k.name
        )))
    }
}
