//! The response cache on the request's path (module `cache`, README "Response cache"): after
//! admission a request on a cached route is looked up; a hit is answered here, in the client's
//! API and framing, with fresh ids; a miss goes upstream holding the right to fill its entry,
//! the relay records the reply as it passes, and settlement stores it if it was a complete
//! 200.

use super::ctx::{CacheStatus as Status, Cached, Ctx, RelayEnd};
use super::failure::Handled;
use super::plan::Request;
use super::respond::{own_headers, X_REQUEST_ID};
use super::state::State;
use super::Session;
use crate::cache::control::Asked;
use crate::cache::key::{key, Tenant};
use crate::cache::{Entry, Lookup, Reply};
use crate::error::ApiError;
use crate::formats::openai::collect::Collect;
use crate::formats::{self, ids, Format, ReplyContext};
use crate::fronts::Front;
use crate::route::Route;
use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use std::time::Instant;

/// Whether the relay should record the reply for the cache.
pub(super) fn records(ctx: &Ctx) -> bool {
    ctx.cache.as_ref().is_some_and(|c| c.fill.is_some())
}

/// The label the access log gives the request's cache status.
pub(super) fn label(ctx: &Ctx) -> Option<&'static str> {
    ctx.cache.as_ref().map(|c| c.status.label())
}

pub(super) fn is_hit(ctx: &Ctx) -> bool {
    matches!(
        ctx.cache.as_deref(),
        Some(Cached {
            status: Status::Hit { .. },
            ..
        })
    )
}

/// Looks a request on a cached route up; `true` when a hit answered it.
pub(super) async fn lookup(
    st: &State,
    session: &mut Session,
    ctx: &mut Ctx,
    route: &Route,
    req: &Request,
) -> Result<bool, Handled> {
    let Some(rc) = route.cache else {
        return Ok(false);
    };
    let Some(api) = api_name(req.front) else {
        return Ok(false);
    };
    let asked = Asked::of(&session.req_header().headers);
    let tenant = match (rc.global, ctx.key.as_deref()) {
        (false, Some(k)) => Tenant::Key(&k.name),
        _ => Tenant::Global,
    };
    let cacheable = !asked.no_store && !kept_upstream(st, route, req);
    let key = cacheable
        .then(|| key(&route.name, api, &req.body, tenant))
        .flatten();
    let mut c = Box::new(Cached {
        status: Status::Bypass,
        fill: None,
        ttl: asked.ttl(rc.ttl),
        recorded: None,
    });
    let metrics = &st.metrics.cache;
    let Some(key) = key else {
        metrics.lookup(&route.name, "bypass");
        ctx.cache = Some(c);
        return Ok(false);
    };
    // A stream can be replayed only from the pivot form.
    let needs_pivot = req.stream;
    let found = (st.cache)
        .lookup(
            &route.name,
            key,
            asked.no_cache,
            needs_pivot,
            st.coalesce_timeout,
        )
        .await;
    match found {
        Lookup::Hit(e, waited) => {
            c.status = Status::Hit { age: e.age() };
            metrics.lookup(&route.name, "hit");
            if waited {
                metrics.coalesced(&route.name, true);
            }
            ctx.cache = Some(c);
            hit(session, ctx, req, &e).await?;
            Ok(true)
        }
        Lookup::Miss(fill) => {
            c.status = if asked.no_cache {
                Status::Refresh
            } else {
                Status::Miss
            };
            metrics.lookup(&route.name, c.status.label());
            if fill.waited {
                metrics.coalesced(&route.name, false);
            }
            c.fill = Some(fill);
            ctx.cache = Some(c);
            Ok(false)
        }
    }
}

/// A Responses request the provider keeps itself (`store` omitted or true, passed through to
/// an OpenAI Responses API): not cached, since a reply from the cache would carry an id the
/// provider never made, and continuing from it (`previous_response_id`) would fail there.
fn kept_upstream(st: &State, route: &Route, req: &Request) -> bool {
    #[derive(serde::Deserialize)]
    struct Store {
        store: Option<bool>,
    }
    if req.front != Front::Responses {
        return false;
    }
    let passed =
        |t: &crate::route::Target| !super::plan::translates_responses(&st.backends[t.backend]);
    let stored =
        serde_json::from_slice::<Store>(&req.body).map_or(true, |s| s.store != Some(false));
    stored && route.targets.iter().any(passed)
}

/// The client APIs whose replies are cached, by the name the key gives them.
fn api_name(front: Front) -> Option<&'static str> {
    match front {
        Front::Chat => Some("chat"),
        Front::Messages => Some("messages"),
        Front::Responses => Some("responses"),
        Front::Embeddings => Some("embeddings"),
        _ => None,
    }
}

/// Answers from entry `e`: a stream replayed in the client's API, or a whole reply.
async fn hit(
    session: &mut Session,
    ctx: &mut Ctx,
    req: &Request,
    e: &Entry,
) -> Result<(), Handled> {
    let r = &e.reply;
    let rctx = ReplyContext {
        client_model: &req.client_model,
        created: (crate::clock::now_ms() / 1000).max(0) as u64,
        tool_names: r.tool_names.as_ref(),
    };
    let keep = req.state.as_ref().and_then(|s| s.keep.as_ref());
    let (body, ctype) = if req.stream {
        let pivot = r.pivot.as_deref().unwrap_or_default();
        let mut out = BytesMut::new();
        // An empty id: the encoders make fresh ones.
        if let (Some(keep), Format::Responses) = (keep, ctx.api) {
            // Kept under the id the stream carries, so the client can read or continue it.
            let (_, kept) = crate::stream::replay_kept(&rctx, pivot, "", &mut out)?;
            if let Some(response) = kept {
                keep.put(&response).await;
            }
        } else {
            crate::stream::replay(ctx.api, &rctx, req.include_usage, pivot, "", &mut out)?;
        }
        (out.freeze(), "text/event-stream; charset=utf-8")
    } else {
        let body = whole(ctx.api, req.front, r, &rctx)?;
        if let Some(keep) = keep {
            keep.put(&body).await;
        }
        (body, "application/json")
    };
    ctx.status = 200;
    ctx.relayed = Some(RelayEnd::Complete);
    ctx.tally.usage = Some(r.usage);
    ctx.served_model = r.served_model.clone();
    // The ledger and the access log show the cache as the backend that answered.
    ctx.backend = Some("cache".into());
    let write = async {
        let mut hdr = ResponseHeader::build_no_case(200, Some(6))?;
        hdr.insert_header(http::header::CONTENT_TYPE, ctype)?;
        hdr.insert_header(http::header::CONTENT_LENGTH, body.len())?;
        hdr.insert_header(X_REQUEST_ID, ctx.request_id.as_str())?;
        own_headers(ctx, 200, &mut hdr)?;
        let ds = &mut *session;
        ds.write_response_header(Box::new(hdr)).await?;
        ctx.first_byte = Some(Instant::now());
        ds.write_response_body(body, true).await
    };
    write.await.map_err(Handled::Abort)
}

/// A fresh id in the client API's vocabulary.
fn fresh_id(api: Format) -> String {
    match api {
        Format::Anthropic => ids::message(""),
        Format::Responses => format!("resp_{}", ids::fresh()),
        _ => ids::chat(""),
    }
}

/// A whole reply for the client: the one stored as sent (a fresh id spliced in), else written
/// from the pivot.
fn whole(api: Format, front: Front, r: &Reply, rctx: &ReplyContext<'_>) -> Result<Bytes, ApiError> {
    if let Some(exact) = &r.exact {
        // Embeddings carry no id.
        if front == Front::Embeddings {
            return Ok(exact.clone());
        }
        if let Some(restemmed) = (api == Format::Responses)
            .then(|| restemmed(exact))
            .flatten()
        {
            return Ok(restemmed);
        }
        return Ok(with_id(exact, &fresh_id(api)));
    }
    let pivot = r.pivot.as_deref().ok_or_else(ApiError::internal)?;
    // Replayed and collected again: the same reply with a fresh id.
    let mut c = Collect::default();
    formats::openai::replay::replay(pivot, "", &mut |d| c.see(&d))?;
    let out = match api {
        Format::OpenAi => c.finish_for_client(rctx),
        _ => c.finish(rctx),
    };
    let out = out.ok_or_else(ApiError::internal)?;
    if api == Format::OpenAi {
        return Ok(Bytes::from(out));
    }
    let (out, _) = formats::translate_response(Format::OpenAi, api, &out, rctx)?;
    Ok(Bytes::from(out))
}

/// A Response this gateway wrote (`{"id":"resp_` and 32 hex digits) under a fresh stem: its
/// items' ids (`msg_{stem}_0`, ...) carry the stem too, and a hit that is kept must not share
/// item ids with the Response it replays (the store finds items by id, for any key when the
/// cache is shared). `None` for any other body.
fn restemmed(body: &Bytes) -> Option<Bytes> {
    let rest = body.strip_prefix(br#"{"id":"resp_"#)?;
    let stem = rest
        .get(..32)
        .filter(|s| s.iter().all(u8::is_ascii_hexdigit))?;
    if rest.get(32) != Some(&b'"') {
        return None;
    }
    let (text, stem) = (
        std::str::from_utf8(body).ok()?,
        std::str::from_utf8(stem).ok()?,
    );
    Some(Bytes::from(text.replace(stem, &ids::fresh())))
}

/// `body` with its top-level `id` string replaced by `id` (unchanged when it has none).
fn with_id(body: &Bytes, id: &str) -> Bytes {
    #[derive(serde::Deserialize)]
    struct Top<'a> {
        #[serde(borrow)]
        id: Option<&'a serde_json::value::RawValue>,
    }
    let Ok(Top { id: Some(raw) }) = serde_json::from_slice::<Top>(body) else {
        return body.clone();
    };
    // The raw value borrows from `body`: its offset is where the old id sits.
    let at = raw.get().as_ptr() as usize - body.as_ptr() as usize;
    let end = at + raw.get().len();
    let mut out = BytesMut::with_capacity(body.len() + id.len());
    out.extend_from_slice(&body[..at]);
    let quoted = serde_json::to_string(id).unwrap_or_default();
    out.extend_from_slice(quoted.as_bytes());
    out.extend_from_slice(&body[end..]);
    out.freeze()
}

/// At settlement: stores a miss's recorded reply if it was relayed whole with a 200; a hit
/// reports what it saved. Whatever else happened, the fill is dropped and identical requests
/// waiting on it go upstream themselves.
pub(super) async fn settle(st: &State, ctx: &mut Ctx, status: u16) {
    let Some(c) = ctx.cache.as_deref_mut() else {
        return;
    };
    let route = ctx.route.as_deref().unwrap_or("-");
    if let Status::Hit { .. } = c.status {
        let usage = ctx.tally.usage.unwrap_or_default();
        let model = [ctx.served_model.as_deref(), ctx.model.as_deref()];
        let price = model.into_iter().flatten().find_map(|m| st.prices.find(m));
        let cost = price.map(|p| crate::limits::prices::Cost::cost(p, &usage));
        st.metrics.cache.saved(route, usage.total(), cost);
        return;
    }
    let (Some(fill), Some(mut reply)) = (c.fill.take(), c.recorded.take()) else {
        return;
    };
    let complete = ctx.relayed == Some(RelayEnd::Complete) && ctx.error.is_none();
    if status != 200 || !complete || c.ttl.is_zero() {
        return;
    }
    reply.usage = ctx.tally.usage.unwrap_or_default();
    reply.served_model = ctx.served_model.clone();
    let route: std::sync::Arc<str> = route.into();
    let stored = st.cache.store(fill, route.clone(), reply, c.ttl).await;
    st.metrics
        .cache
        .stored(&route, stored.map_err(|e| e.label()));
    st.metrics.cache.held(st.cache.stats().0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_id_replaces_only_the_top_level_id() {
        let body = Bytes::from_static(
            br#"{"id":"chatcmpl-old","choices":[{"message":{"tool_calls":[{"id":"call_1"}]}}]}"#,
        );
        let out = with_id(&body, "chatcmpl-new");
        assert_eq!(
            &out[..],
            &br#"{"id":"chatcmpl-new","choices":[{"message":{"tool_calls":[{"id":"call_1"}]}}]}"#[..]
        );
        let late = Bytes::from_static(br#"{"type":"message","content":[{"id":"x"}],"id":"msg_1"}"#);
        let out = with_id(&late, "msg_2");
        assert!(out.ends_with(br#""id":"msg_2"}"#), "{out:?}");
        let none = Bytes::from_static(br#"{"object":"list"}"#);
        assert_eq!(with_id(&none, "x"), none);
    }

    #[test]
    fn a_replayed_response_gets_a_fresh_stem_in_every_id() {
        let stem = "0123456789abcdef0123456789abcdef";
        let body = format!(
            r#"{{"id":"resp_{stem}","output":[{{"id":"msg_{stem}_0"}},{{"id":"fc_{stem}_1","call_id":"call_9"}}]}}"#
        );
        let out = restemmed(&Bytes::from(body.clone())).unwrap();
        let out = std::str::from_utf8(&out).unwrap();
        assert!(!out.contains(stem), "{out}");
        let new = &out[r#"{"id":"resp_"#.len()..][..32];
        assert_eq!(out, body.replace(stem, new));
        assert!(new.bytes().all(|c| c.is_ascii_hexdigit()), "{out}");
        // Not a stem this gateway wrote (an upstream's Response, an older entry): left alone.
        for other in [r#"{"id":"resp_01A","output":[]}"#, r#"{"object":"list"}"#] {
            assert_eq!(restemmed(&Bytes::from(other)), None);
        }
    }
}
