//! Limits in the request path: the request's subject and estimate are reserved at admission
//! (after routing, before anything is sent); `backend` limits per target in the exchange; the
//! reservation is settled with actual usage at settlement. OpenAI's `x-ratelimit-*` headers
//! go on every answer the limits shaped, the 429 included.

use super::ctx::Ctx;
use super::headers::Headers;
use super::state::State;
use crate::error::ApiError;
use crate::limits::prices::Cost;
use crate::limits::{
    estimate, reset_text, write_reset, Demand, Denied, Refusal, Remaining, Reservation, Scope,
    Subject,
};
use bytes::BytesMut;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use std::sync::Arc;

/// Longest end-user name taken from the trusted header.
const MAX_USER: usize = 128;

/// The end user a trusted header names, if configured and well-formed.
pub(super) fn user_from_header(st: &State, req: &RequestHeader) -> Option<Arc<str>> {
    let name = st.identity.user_header.as_ref()?;
    let v = req.headers.get(name)?.to_str().ok()?.trim();
    (!v.is_empty() && v.len() <= MAX_USER).then(|| Arc::from(v))
}

pub(super) fn subject<'c>(ctx: &'c Ctx, backend: Option<&'c str>) -> Subject<'c> {
    Subject {
        key: ctx.key.as_ref().map(|k| &*k.name),
        user: ctx.user.as_deref(),
        team: ctx.key.as_ref().and_then(|k| k.team.as_deref()),
        model: ctx.model.as_deref(),
        route: ctx.route.as_deref(),
        backend,
        key_caps: ctx.key.as_ref().map_or(&[], |k| &k.caps[..]),
    }
}

/// Reserves the request's estimate on its key, user, team, model, route and global limits. A
/// request that sets no output cap (`capped` false) and is refused for the route's default
/// output reservation alone is admitted on its prompt instead, and settled at its true cost.
pub(super) async fn admit(
    st: &State,
    ctx: &mut Ctx,
    body: &[u8],
    (max_tokens, capped): (u64, bool),
    first_target_model: Option<&str>,
) -> Result<(), ApiError> {
    let applies = st.limiter.applies(&subject(ctx, None), false);
    if !applies && !st.limiter.has(Scope::Backend) {
        return Ok(());
    }
    let model = ctx.model.as_deref().unwrap_or_default();
    let prompt = estimate::prompt_tokens(body, model);
    let usage = crate::formats::Usage {
        input: prompt,
        output: max_tokens,
        ..Default::default()
    };
    // Priced as the model asked for, else as the route's first target.
    let price = st
        .prices
        .find(model)
        .or_else(|| first_target_model.and_then(|m| st.prices.find(m)));
    ctx.demand = Demand {
        tokens: prompt.saturating_add(max_tokens) as f64,
        cost: price.map_or(0.0, |p| p.cost(&usage)),
    };
    if !applies {
        return Ok(());
    }
    let who = subject(ctx, None);
    let mut r = st.limiter.admit(&who, false, ctx.demand).await;
    if !capped && matches!(r, Err(Denied::Limit(_))) {
        let prompt_only = crate::formats::Usage {
            input: prompt,
            ..Default::default()
        };
        let least = Demand {
            tokens: prompt as f64,
            cost: price.map_or(0.0, |p| p.cost(&prompt_only)),
        };
        r = st.limiter.admit(&who, false, least).await;
        if r.is_ok() {
            ctx.demand = least;
        }
    }
    hold(st, ctx, r)
}

/// Reserves on the `backend` limits of one target; `Err`: the target is over its limit and is
/// skipped like a busy one.
pub(super) async fn admit_backend(
    st: &State,
    ctx: &Ctx,
    backend: &str,
) -> Result<Reservation, Denied> {
    if !st.limiter.has(Scope::Backend) {
        return Ok(Reservation::default());
    }
    let who = subject(ctx, Some(backend));
    st.limiter.admit(&who, true, ctx.demand).await
}

/// Keeps an admitted reservation (and its headers), or turns a denial into the client's error.
pub(super) fn hold(
    st: &State,
    ctx: &mut Ctx,
    r: Result<Reservation, Denied>,
) -> Result<(), ApiError> {
    match r {
        Ok(r) => {
            let held = ctx.reservation.get_or_insert_with(Reservation::default);
            held.absorb(r);
            // Resets counted from now (the reservation's windows were read just before); no
            // clock read on a route without limits.
            if !held.is_empty() {
                ctx.rate = held.headers(crate::clock::now());
            }
            Ok(())
        }
        Err(d) => Err(denied(st, ctx, &d)),
    }
}

/// The client's error for a denial, with its headers set on `ctx`.
pub(super) fn denied(st: &State, ctx: &mut Ctx, d: &Denied) -> ApiError {
    let Denied::Limit(r) = d else {
        st.metrics.limit_rejection("store", "unavailable");
        return ApiError::limits_unavailable();
    };
    st.metrics
        .limit_rejection(r.scope.name(), r.cap.measure_name());
    if never_fits(r) {
        // Waiting cannot help: no `Retry-After`, and not a 429 a client would retry.
        return ApiError::exceeds_limit(message(r, false));
    }
    ctx.retry_after = Some(r.retry_after);
    let remaining = Remaining {
        limit: r.cap.limit,
        remaining: (r.cap.limit - r.used).max(0.0),
        reset_in: r.retry_after,
    };
    match r.cap.measure {
        crate::limits::Measure::Requests => ctx.rate.requests = Some(remaining),
        crate::limits::Measure::Tokens => ctx.rate.tokens = Some(remaining),
        _ => {}
    }
    ApiError::limited(message(r, true), r.cap.is_quota())
}

/// A request whose own reservation is larger than the whole limit (tokens or spend).
fn never_fits(r: &Refusal) -> bool {
    use crate::limits::Measure::{Cost, Tokens};
    matches!(r.cap.measure, Tokens | Cost) && r.requested > r.cap.limit
}

fn message(r: &Refusal, retry: bool) -> String {
    let what = match r.cap.measure {
        crate::limits::Measure::Cost => "spend (USD)",
        crate::limits::Measure::Concurrent => "concurrent requests",
        crate::limits::Measure::Requests => "requests",
        crate::limits::Measure::Tokens => "tokens",
    };
    let per = match r.cap.period {
        crate::clock::Period::Open => String::new(),
        p => format!(" per {}", p.name()),
    };
    let kind = if r.cap.is_quota() {
        "Quota"
    } else {
        "Rate limit"
    };
    let (scope, id, limit) = (r.scope.name(), &r.id, round(r.cap.limit));
    if !retry {
        return format!(
            "This request can never fit the {scope} `{id}` limit: {what}{per}: limit {limit}, \
             this request needs {}. Lower its max_tokens (or its prompt).",
            round(r.requested)
        );
    }
    format!(
        "{kind} reached for {scope} `{id}`: {what}{per}: limit {limit}, used {}, this request needs {}. Try again in {}.",
        round(r.used),
        round(r.requested),
        reset_text(r.retry_after)
    )
}

fn round(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.4}")
    }
}

/// `x-ratelimit-*` (and `retry-after` on a refusal) on a response header. The values are
/// written into one buffer and each header holds its slice: an allocation a value was a
/// third of this function's instructions.
pub(super) fn write_headers(ctx: &Ctx, h: &mut impl Headers) -> Result<()> {
    use http::HeaderName as N;
    const NAMES: [[N; 3]; 2] = [
        [
            N::from_static("x-ratelimit-limit-requests"),
            N::from_static("x-ratelimit-remaining-requests"),
            N::from_static("x-ratelimit-reset-requests"),
        ],
        [
            N::from_static("x-ratelimit-limit-tokens"),
            N::from_static("x-ratelimit-remaining-tokens"),
            N::from_static("x-ratelimit-reset-tokens"),
        ],
    ];
    let rates = [ctx.rate.requests, ctx.rate.tokens];
    // Every answer comes here: one without limits allocates nothing (a capacity of 0).
    let mut buf = BytesMut::with_capacity(if rates.iter().any(Option::is_some) {
        96
    } else {
        0
    });
    for (names, r) in NAMES.iter().zip(rates) {
        let Some(r) = r else { continue };
        whole(&mut buf, r.limit);
        h.put(&names[0], value(&mut buf)?)?;
        whole(&mut buf, r.remaining.floor());
        h.put(&names[1], value(&mut buf)?)?;
        write_reset(r.reset_in, &mut buf);
        h.put(&names[2], value(&mut buf)?)?;
    }
    if let Some(s) = ctx.retry_after {
        h.put(&http::header::RETRY_AFTER, s.into())?;
    }
    Ok(())
}

/// A count: an integer when it is one (no formatting machinery), else to four places.
fn whole(buf: &mut BytesMut, x: f64) {
    if x.fract() == 0.0 && x.abs() < 1e18 {
        buf.extend_from_slice(itoa::Buffer::new().format(x as i64).as_bytes());
    } else {
        use std::fmt::Write as _;
        let _ = write!(buf, "{x:.4}");
    }
}

/// What was written to `buf` since the last value, as a header value sharing its allocation.
fn value(buf: &mut BytesMut) -> Result<http::HeaderValue> {
    http::HeaderValue::from_maybe_shared(buf.split().freeze())
        .or_err(InvalidHTTPHeader, "rate-limit header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values written one after another into the shared buffer come out whole and apart.
    #[test]
    fn header_values_share_one_buffer_and_stay_apart() {
        let mut buf = BytesMut::with_capacity(8);
        let mut values = Vec::new();
        for x in [1_000_000.0, 99.0, 2.5, 0.0] {
            whole(&mut buf, x);
            values.push(value(&mut buf).unwrap());
        }
        write_reset(3723, &mut buf);
        values.push(value(&mut buf).unwrap());
        let got: Vec<&str> = values.iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(got, ["1000000", "99", "2.5000", "0", "1h2m3s"]);
        assert!(buf.is_empty());
    }
}
