//! Choosing the order of a request's targets, waiting for a slot when every usable target is
//! at its concurrency cap (up to the route's `queue_timeout_ms`), and the error when none can
//! take the request: 503 with `Retry-After` (when the soonest one comes back).

use super::ctx::Ctx;
use super::failure::Handled;
use super::state::State;
use crate::balance::{now_ms, Avail, Pick};
use crate::error::ApiError;
use crate::route::Route;
use std::time::Instant;

pub(super) async fn choose(
    st: &State,
    ctx: &mut Ctx,
    route: &Route,
    pick: &Pick<'_>,
    out: &mut Vec<usize>,
) -> Result<(), Handled> {
    let avail = st.balancer.availability(route, pick);
    st.balancer.order(route, pick, &avail, out);
    if !out.is_empty() {
        return Ok(());
    }
    let until = Instant::now() + route.queue_timeout;
    loop {
        // Registered before looking again, so a slot freed in between is not missed.
        let freed = st.balancer.freed().notified();
        tokio::pin!(freed);
        freed.as_mut().enable();
        let avail = st.balancer.availability(route, pick);
        st.balancer.order(route, pick, &avail, out);
        if !out.is_empty() {
            return Ok(());
        }
        let busy = avail.contains(&Avail::Busy);
        if !busy || Instant::now() >= until {
            return Err(unavailable(ctx, &avail).into());
        }
        let _ = tokio::time::timeout_at(until.into(), freed).await;
    }
}

fn unavailable(ctx: &mut Ctx, avail: &[Avail]) -> ApiError {
    let model = ctx.model.clone().unwrap_or_default();
    if avail.iter().all(|a| *a == Avail::Disabled) {
        return ApiError::no_enabled_backend(&model);
    }
    let now = now_ms();
    let soonest = avail
        .iter()
        .filter_map(|a| match a {
            Avail::Cooling(t) | Avail::Ejected(t) => Some(t.saturating_sub(now)),
            Avail::Busy => Some(1000),
            _ => None,
        })
        .min()
        .unwrap_or(5000);
    ctx.retry_after = Some(soonest.div_ceil(1000).max(1));
    ctx.error = Some("no_available_backend");
    let mut why: Vec<&str> = avail
        .iter()
        .filter(|a| **a != Avail::Disabled)
        .map(|a| a.label())
        .collect();
    why.sort_unstable();
    why.dedup();
    match why.as_slice() {
        ["busy"] => return ApiError::backends_busy(&model),
        // Every provider asked to wait: the client is told the same, as a rate limit.
        ["cooling_down"] => return ApiError::upstream_rate_limited(&model),
        _ => {}
    }
    ApiError::backends_unavailable(&model, &why.join(", "))
}
