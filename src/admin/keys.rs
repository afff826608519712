//! `/keys`: client keys issued and changed at run time (`[auth] managed_keys`), kept in the
//! store so every gateway sharing it serves them within a poll; `/audit`: who changed what.
//!
//! `POST /keys` answers the new secret once (only its SHA-256 is kept); `GET /keys` (paged)
//! and `GET /keys/{name}` never show a secret; `PATCH`, `DELETE` and
//! `POST /keys/{name}/rotate` change a managed key. Keys from the config file are listed but
//! read-only here.

use super::key_wire::{file_view, settings, view, NewKey, Patch, Rotate};
use super::{error, percent_decode, query_args_raw, Answer};
use crate::auth::managed::{check, Previous};
use crate::auth::{hash_key, KeyRecord};
use crate::clock::{format_rfc3339_ms, now_ms};
use crate::gateway::{Runtime, State};
use crate::store::keys::{sync, AuditEntry, BookError, Change, KeyBook};
use base64::Engine;
use pingora::protocols::http::ServerSession;
use serde::Deserialize;
use serde_json::{json, Value};

const MAX_BODY: usize = 64 * 1024;
const MAX_NAME: usize = 128;
/// The longest a rotated-out secret keeps working.
const MAX_GRACE_SECONDS: u64 = 7 * 86_400;
const PAGE_DEFAULT: usize = 100;
const PAGE_MAX: usize = 1000;
/// Tries of a change that raced another (compare-and-set on the stored record).
const TRIES: usize = 5;

pub(super) async fn answer(rt: &Runtime, st: &State, session: &mut ServerSession) -> Answer {
    if !st.keys.manages() {
        return error(404, "managed keys are off: set [auth] managed_keys = true");
    }
    let req = session.req_header();
    let method = req.method.clone();
    let path = req.uri.path().to_string();
    let query = req.uri.query().unwrap_or_default().to_string();
    let actor = actor(session);
    let parts: Vec<String> = path.split('/').skip(1).map(percent_decode).collect();
    let book = &*rt.key_book;
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let answer = match (&method, parts.as_slice()) {
        (&http::Method::GET, ["keys"]) => list(st, book, &query).await,
        (&http::Method::GET, ["keys", name]) => show(st, book, name).await,
        (&http::Method::GET, ["audit"]) => audit(book, &query).await,
        (&http::Method::POST, ["keys"]) => match read_json::<NewKey>(session).await {
            Ok(k) => create(st, book, k, &actor).await,
            Err(e) => e,
        },
        (&http::Method::PATCH, ["keys", name]) => match read_json::<Patch>(session).await {
            Ok(p) => update(st, book, name, p, &actor).await,
            Err(e) => e,
        },
        (&http::Method::DELETE, ["keys", name]) => remove(st, book, name, &actor).await,
        (&http::Method::POST, ["keys", name, "rotate"]) => {
            match read_json::<Rotate>(session).await {
                Ok(r) => rotate(st, book, name, r, &actor).await,
                Err(e) => e,
            }
        }
        (_, ["keys"] | ["keys", _] | ["keys", _, "rotate"] | ["audit"]) => {
            error(405, "method not allowed")
        }
        _ => error(404, "not found"),
    };
    if (200..300).contains(&answer.0) && method != http::Method::GET {
        // Effective here at once; the other gateways follow within a poll.
        if let Err(e) = sync(book, &rt.managed).await {
            log::warn!("managed keys: changed, but reloading them failed ({e})");
        }
    }
    answer
}

/// Who made a change: `x-tollgate-actor` (free text naming the person or system) if sent,
/// else `admin`, and the address it came from.
fn actor(session: &ServerSession) -> String {
    let named = session
        .req_header()
        .headers
        .get("x-tollgate-actor")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= MAX_NAME)
        .unwrap_or("admin");
    match session.client_addr() {
        Some(a) => match a.as_inet() {
            Some(inet) => format!("{named} ({})", inet.ip()),
            None => format!("{named} ({a})"),
        },
        None => named.to_string(),
    }
}

async fn read_json<T: for<'de> Deserialize<'de>>(session: &mut ServerSession) -> Result<T, Answer> {
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_BODY => {
                body.extend_from_slice(&chunk)
            }
            Ok(Some(_)) => return Err(error(413, "the body is larger than 64 KiB")),
            Ok(None) => break,
            Err(_) => return Err(error(400, "the body could not be read")),
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return serde_json::from_str("{}").map_err(|e| error(400, &e.to_string()));
    }
    serde_json::from_slice(&body).map_err(|e| error(400, &format!("invalid body: {e}")))
}

/// A name for a new key: letters, digits and `._-@:`, not taken by a config file key.
fn check_name(st: &State, name: &str) -> Result<(), Answer> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "._-@:".contains(c);
    if name.is_empty() || name.len() > MAX_NAME || !name.chars().all(ok) {
        return Err(error(
            400,
            "`name` must be 1 to 128 letters, digits or . _ - @ :",
        ));
    }
    if st.keys.has_file_key(name) {
        return Err(error(
            409,
            &format!("a key named `{name}` is in the config file"),
        ));
    }
    Ok(())
}

/// An expiry: RFC 3339 (or a date), as unix milliseconds.
fn expiry(s: &str) -> Result<i64, Answer> {
    let now = now_ms();
    match crate::clock::parse_time(s, now) {
        Ok(t) if s.contains('-') => Ok(t),
        Ok(_) => Err(error(
            400,
            "`expires_at` must be RFC 3339 (2027-01-31T00:00:00Z)",
        )),
        Err(e) => Err(error(400, &format!("`expires_at`: {e}"))),
    }
}

/// A new secret: `tg-` and 32 random bytes (base64url), from the OS's generator.
fn new_secret() -> Result<String, Answer> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(|_| error(500, "no randomness for a new key"))?;
    Ok(format!(
        "tg-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    ))
}

fn unreachable_store(e: BookError) -> Answer {
    error(503, &e.to_string())
}

fn entry(actor: &str, action: &str, key: &str, detail: Value) -> AuditEntry {
    log::info!("admin: key `{key}` {action}d by {actor}: {detail}");
    AuditEntry {
        ts_ms: now_ms(),
        actor: actor.to_string(),
        action: action.to_string(),
        key: key.to_string(),
        detail,
    }
}

async fn create(st: &State, book: &dyn KeyBook, k: NewKey, actor: &str) -> Answer {
    if let Err(e) = check_name(st, &k.name) {
        return e;
    }
    let expires_at_ms = match k.expires_at.as_deref().map(expiry).transpose() {
        Ok(t) => t,
        Err(e) => return e,
    };
    let secret = match new_secret() {
        Ok(s) => s,
        Err(e) => return e,
    };
    let now = now_ms();
    let rec = KeyRecord {
        name: k.name,
        sha256: hash_key(&secret),
        previous: None,
        models: k.models,
        expires_at_ms,
        disabled: k.disabled,
        team: k.team.filter(|t| !t.is_empty()),
        user: k.user.filter(|u| !u.is_empty()),
        limits: k.limits,
        metadata: k.metadata,
        allow: k.allow,
        deny: k.deny,
        created_ms: now,
        updated_ms: now,
    };
    if let Err(e) = check(&rec) {
        return error(400, &e);
    }
    let json = serde_json::to_string(&rec).unwrap_or_default();
    let audit = entry(actor, "create", &rec.name, settings(&rec));
    let change = Change {
        name: &rec.name,
        expected: None,
        new: Some(&json),
        audit: &audit,
    };
    match book.apply(change).await {
        Ok(_) => {
            let mut v = view(&rec);
            v["key"] = secret.into();
            (201, "application/json", v.to_string().into_bytes())
        }
        Err(BookError::Conflict) => error(409, &format!("a key named `{}` exists", rec.name)),
        Err(e) => unreachable_store(e),
    }
}

/// `GET /keys?limit=N&after=NAME`: by name, config file keys and managed keys together.
async fn list(st: &State, book: &dyn KeyBook, query: &str) -> Answer {
    let limit = query_args_raw(query, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(PAGE_DEFAULT)
        .clamp(1, PAGE_MAX);
    let after = query_args_raw(query, "after").unwrap_or_default();
    let records = match book.load().await {
        Ok((_, r)) => r,
        Err(e) => return unreachable_store(e),
    };
    let mut all: Vec<(String, Value)> = st
        .keys
        .file_keys()
        .map(|h| (h.name.to_string(), file_view(h)))
        .chain(records.iter().map(|r| (r.name.clone(), view(r))))
        .filter(|(n, _)| *n > after)
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let more = all.len() > limit;
    all.truncate(limit);
    let next = more.then(|| all.last().map(|(n, _)| n.clone())).flatten();
    let data: Vec<Value> = all.into_iter().map(|(_, v)| v).collect();
    let body = json!({"data": data, "next_after": next});
    (200, "application/json", body.to_string().into_bytes())
}

async fn show(st: &State, book: &dyn KeyBook, name: &str) -> Answer {
    if let Some(h) = st.keys.file_keys().find(|h| &*h.name == name) {
        return (
            200,
            "application/json",
            file_view(h).to_string().into_bytes(),
        );
    }
    match book.get(name).await {
        Ok(Some(json)) => match serde_json::from_str::<KeyRecord>(&json) {
            Ok(r) => (200, "application/json", view(&r).to_string().into_bytes()),
            Err(_) => error(500, "the stored key does not parse"),
        },
        Ok(None) => error(404, &format!("no key is named `{name}`")),
        Err(e) => unreachable_store(e),
    }
}

async fn audit(book: &dyn KeyBook, query: &str) -> Answer {
    let limit = query_args_raw(query, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(PAGE_DEFAULT)
        .clamp(1, PAGE_MAX);
    match book.audit(limit).await {
        Ok(entries) => {
            let data: Vec<Value> = entries
                .iter()
                .map(|e| {
                    json!({"at": format_rfc3339_ms(e.ts_ms), "actor": e.actor,
                           "action": e.action, "key": e.key, "detail": e.detail})
                })
                .collect();
            let body = json!({ "data": data });
            (200, "application/json", body.to_string().into_bytes())
        }
        Err(e) => unreachable_store(e),
    }
}

/// What a change does to a record: the record after it (`None`: deleted) and the audit
/// entry's action and detail.
type Edit<'a> =
    dyn Fn(KeyRecord) -> Result<(Option<KeyRecord>, &'static str, Value), Answer> + Sync + 'a;

/// Reads the record, edits it and writes it back unless it changed meanwhile (then again).
async fn change(
    st: &State,
    book: &dyn KeyBook,
    name: &str,
    actor: &str,
    edit: &Edit<'_>,
) -> Result<Option<KeyRecord>, Answer> {
    if st.keys.has_file_key(name) {
        let why = format!("`{name}` is a config file key: change it in the file and reload");
        return Err(error(409, &why));
    }
    for _ in 0..TRIES {
        let json = match book.get(name).await {
            Ok(Some(j)) => j,
            Ok(None) => return Err(error(404, &format!("no key is named `{name}`"))),
            Err(e) => return Err(unreachable_store(e)),
        };
        let rec: KeyRecord =
            serde_json::from_str(&json).map_err(|_| error(500, "the stored key does not parse"))?;
        let (after, action, detail) = edit(rec)?;
        let new = after
            .as_ref()
            .map(|r| serde_json::to_string(r).unwrap_or_default());
        let audit = entry(actor, action, name, detail);
        let change = Change {
            name,
            expected: Some(&json),
            new: new.as_deref(),
            audit: &audit,
        };
        match book.apply(change).await {
            Ok(_) => return Ok(after),
            Err(BookError::Conflict) => continue,
            Err(e) => return Err(unreachable_store(e)),
        }
    }
    Err(error(409, "the key kept changing meanwhile; try again"))
}

async fn update(st: &State, book: &dyn KeyBook, name: &str, p: Patch, actor: &str) -> Answer {
    let expires = match &p.expires_at {
        Some(Some(s)) => match expiry(s) {
            Ok(t) => Some(Some(t)),
            Err(e) => return e,
        },
        Some(None) => Some(None),
        None => None,
    };
    let edit = |mut r: KeyRecord| {
        if let Some(m) = &p.models {
            r.models = m.clone();
        }
        if let Some(t) = expires {
            r.expires_at_ms = t;
        }
        if let Some(t) = &p.team {
            r.team = t.clone().filter(|t| !t.is_empty());
        }
        if let Some(u) = &p.user {
            r.user = u.clone().filter(|u| !u.is_empty());
        }
        if let Some(l) = &p.limits {
            r.limits = l.clone();
        }
        if let Some(m) = &p.metadata {
            r.metadata = m.clone();
        }
        if let Some(d) = p.disabled {
            r.disabled = d;
        }
        if let Some(a) = &p.allow {
            r.allow = a.clone();
        }
        if let Some(d) = &p.deny {
            r.deny = d.clone();
        }
        r.updated_ms = now_ms();
        check(&r).map_err(|e| error(400, &e))?;
        let detail = settings(&r);
        Ok((Some(r), "update", detail))
    };
    match change(st, book, name, actor, &edit).await {
        Ok(Some(r)) => (200, "application/json", view(&r).to_string().into_bytes()),
        Ok(None) => error(500, "the key vanished"),
        Err(e) => e,
    }
}

async fn remove(st: &State, book: &dyn KeyBook, name: &str, actor: &str) -> Answer {
    let edit = |_| Ok((None, "delete", json!({})));
    match change(st, book, name, actor, &edit).await {
        Ok(_) => {
            let body = json!({"deleted": name});
            (200, "application/json", body.to_string().into_bytes())
        }
        Err(e) => e,
    }
}

async fn rotate(st: &State, book: &dyn KeyBook, name: &str, r: Rotate, actor: &str) -> Answer {
    if r.grace_seconds > MAX_GRACE_SECONDS {
        return error(400, "`grace_seconds` is at most 604800 (7 days)");
    }
    let secret = match new_secret() {
        Ok(s) => s,
        Err(e) => return e,
    };
    let hash = hash_key(&secret);
    let edit = |mut rec: KeyRecord| {
        let now = now_ms();
        rec.previous = (r.grace_seconds > 0).then(|| Previous {
            sha256: std::mem::take(&mut rec.sha256),
            until_ms: now + r.grace_seconds as i64 * 1000,
        });
        rec.sha256 = hash.clone();
        rec.updated_ms = now;
        Ok((
            Some(rec),
            "rotate",
            json!({"grace_seconds": r.grace_seconds}),
        ))
    };
    match change(st, book, name, actor, &edit).await {
        Ok(Some(rec)) => {
            let mut v = view(&rec);
            v["key"] = secret.into();
            (200, "application/json", v.to_string().into_bytes())
        }
        Ok(None) => error(500, "the key vanished"),
        Err(e) => e,
    }
}
