//! Settlement: what a request is billed for, decided once when it ends, whatever ended it.
//!
//! A reply relayed to its end is billed as the provider reported it. A stream cut short (the
//! client left, the upstream broke) is billed for what was generated: the provider's report
//! when it has one, raised to the text that passed by (4 bytes a token) when that is more,
//! with the prompt estimated when the report never came; such usage is marked estimated. A
//! request that got no reply (refused, failed before the first byte) is billed nothing.

use super::ctx::{Ctx, RelayEnd};
use super::state::State;
use super::Session;
use crate::formats::Usage;
use crate::limits::prices::Cost;
use crate::limits::{estimate, Demand};
use crate::observe::{AccessRecord, Produced, UsageFields};
use crate::store::schema::LedgerRow;
use pingora::prelude::*;
use std::time::Duration;

/// Settlement, after every ending: release or settle the reservation, then the metrics, the
/// ledger row and the access-log line.
pub(super) async fn finish(session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
    let snap = ctx.state.clone();
    let st = &*snap;
    let status = match session.response_written() {
        Some(h) if ctx.status == 0 => h.status.as_u16(),
        _ => ctx.status,
    };
    let elapsed = ctx.start.elapsed();
    super::cached::settle(st, ctx, status).await;
    let billed = release(st, ctx, status).await;
    let usage = report(st, ctx, billed, status, elapsed);
    if ctx.model.is_some() {
        st.ledger
            .record(ledger_row(ctx, usage.as_ref(), status, elapsed));
    }
    let req = session.req_header();
    let error = ctx.error.or_else(|| e.map(|e| e.etype().as_str()));
    st.access_log.write(&AccessRecord {
        // Now, from the start's wall clock and the monotonic time since (no second read).
        ts: crate::clock::format_rfc3339_ms(ctx.start_ms + elapsed.as_millis() as i64),
        request_id: &ctx.request_id,
        method: req.method.as_str(),
        path: req.uri.path(),
        key: ctx.key.as_ref().map(|k| &*k.name),
        client: ctx.client,
        model: ctx.model.as_deref(),
        route: ctx.route.as_deref(),
        backend: ctx.backend.as_deref(),
        status,
        duration_ms: elapsed.as_secs_f64() * 1000.0,
        attempts: ctx.attempts,
        bytes_sent: session.body_bytes_sent(),
        error,
        ignored_fields: &ctx.ignored_fields,
        cache: super::cached::label(ctx),
        usage,
    });
}

/// Bills the request and settles its limit reservation with what it used.
pub(super) async fn release(st: &State, ctx: &mut Ctx, status: u16) -> Option<Billed> {
    let b = ctx.relayed.map(|_| billed(st, ctx, status));
    if let Some(r) = ctx.reservation.take() {
        // A hit counts as a request, but its tokens and cost were paid when it was stored.
        let b = b.filter(|_| !super::cached::is_hit(ctx));
        let used = b.map_or(Demand::default(), |b| Demand {
            tokens: b.usage.total() as f64,
            cost: b.cost_usd.unwrap_or(0.0),
        });
        if st.limiter.remote() {
            // A Redis round trip: off the request's path, since Pingora reads a connection's
            // next request only after this hook. Until it lands the reservation stands (more
            // than was used): the fleet errs on the safe side for a moment. With no budget
            // alerts to check, nobody waits for it: it goes with the store's next call.
            if let Some(r) = st.limiter.settle_later(r, used) {
                let snap = ctx.state.clone();
                tokio::spawn(async move { snap.limiter.settle(r, used).await });
            }
        } else {
            st.limiter.settle(r, used).await;
        }
    }
    b
}

/// Reports the request and its billed usage to the metrics; the access log's usage fields.
pub(super) fn report<'c>(
    st: &State,
    ctx: &'c Ctx,
    b: Option<Billed>,
    status: u16,
    elapsed: Duration,
) -> Option<UsageFields<'c>> {
    let ttft = ctx.first_byte.map(|t| t.duration_since(ctx.start));
    let produced = b.map(|b| Produced {
        usage: b.usage,
        estimated: b.estimated,
        cost_usd: b.cost_usd,
        ttft: ttft.map(|t| t.as_secs_f64()),
        after_first: ttft.map(|t| elapsed.saturating_sub(t).as_secs_f64()),
    });
    let labels = (
        ctx.model_label.as_deref().unwrap_or("-"),
        ctx.backend.as_deref().unwrap_or("-"),
    );
    // Tokens served from the cache were not generated: the cache's metrics count them.
    let generated = produced.as_ref().filter(|_| !super::cached::is_hit(ctx));
    st.metrics
        .observe(labels, status, elapsed.as_secs_f64(), generated);
    let b = b?;
    let u = b.usage;
    Some(UsageFields {
        served_model: ctx.served_model.as_deref(),
        input_tokens: u.input,
        cached_input_tokens: u.cached_input,
        cache_creation_tokens: u.cache_creation,
        output_tokens: u.output,
        reasoning_tokens: u.reasoning,
        total_tokens: u.total(),
        estimated: b.estimated,
        cost_usd: b.cost_usd,
        ttft_ms: ttft.map(|t| t.as_secs_f64() * 1000.0),
    })
}

/// Usage to bill, and whether the gateway had to estimate it.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Billed {
    pub usage: Usage,
    pub estimated: bool,
    /// `None`: no price is configured for the model.
    pub cost_usd: Option<f64>,
}

fn billed(st: &State, ctx: &Ctx, status: u16) -> Billed {
    let mut b = usage(ctx, status);
    // Priced as the model the provider served, else as the one asked for.
    let price = [ctx.served_model.as_deref(), ctx.model.as_deref()]
        .into_iter()
        .flatten()
        .find_map(|m| st.prices.find(m));
    b.cost_usd = price.map(|p| p.cost(&b.usage));
    if super::cached::is_hit(ctx) {
        // Paid when the reply was stored.
        b.cost_usd = Some(0.0);
    }
    b
}

fn usage(ctx: &Ctx, status: u16) -> Billed {
    let reported = ctx.tally.usage;
    if ctx.unbilled {
        return Billed::default();
    }
    match ctx.relayed {
        None => Billed::default(),
        Some(RelayEnd::Complete) if reported.is_some() || status >= 400 => Billed {
            usage: reported.unwrap_or_default(),
            ..Default::default()
        },
        // A complete reply without usage (a server that does not report it), or a cut one.
        Some(_) => {
            let mut u = reported.unwrap_or_default();
            let generated = estimate::output_tokens(ctx.tally.generated_bytes);
            let mut estimated = reported.is_none();
            if u.input == 0 {
                u.input = prompt_estimate(ctx);
            }
            if generated > u.output {
                u.output = generated;
                estimated = true;
            }
            Billed {
                usage: u,
                estimated,
                cost_usd: None,
            }
        }
    }
}

fn prompt_estimate(ctx: &Ctx) -> u64 {
    let model = ctx.served_model.as_deref().unwrap_or_default();
    ctx.body
        .as_ref()
        .map_or(0, |b| estimate::prompt_tokens(b, model))
}

/// The request's ledger row.
pub(super) fn ledger_row(
    ctx: &Ctx,
    usage: Option<&UsageFields<'_>>,
    status: u16,
    elapsed: Duration,
) -> LedgerRow {
    let mut row = LedgerRow {
        ts_ms: ctx.start_ms,
        request_id: ctx.request_id.clone(),
        key: ctx.key.as_ref().map(|k| k.name.clone()),
        user: ctx.user.clone(),
        team: ctx.key.as_ref().and_then(|k| k.team.clone()),
        route: ctx.route.clone(),
        requested_model: ctx.model.clone(),
        served_model: ctx.served_model.clone(),
        backend: ctx.backend.clone(),
        status,
        latency_ms: elapsed.as_secs_f64() * 1000.0,
        ..Default::default()
    };
    if let Some(u) = usage {
        row.input_tokens = u.input_tokens;
        row.cached_input_tokens = u.cached_input_tokens;
        row.cache_creation_tokens = u.cache_creation_tokens;
        row.output_tokens = u.output_tokens;
        row.reasoning_tokens = u.reasoning_tokens;
        row.total_tokens = u.total_tokens;
        row.cost_usd = u.cost_usd.unwrap_or(0.0);
        row.ttft_ms = u.ttft_ms;
        row.estimated = u.estimated;
    }
    row
}
