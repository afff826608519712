//! The response cache (README "Response cache"): exact-match entries keyed by route, client
//! API, normalised request and tenant (`key.rs`), held in memory under a byte bound with LRU
//! eviction (`store.rs`), and identical misses coalesced behind pingora-cache's `CacheLock`.
//!
//! An entry keeps the reply in the forms a later request may need: the client's own
//! non-streamed body as sent (`exact`), and the reply as the chat pivot (`pivot`), from which
//! the gateway writes a stream in any client API or a reply in another shape. The gateway's
//! stage `gateway/cached.rs` decides what a request does with it.

pub mod control;
pub mod key;
mod shared;
mod store;

pub use store::NotStored;

use crate::formats::responses::namespaces::ToolNames;
use crate::formats::Usage;
use bytes::Bytes;
use pingora::cache::key::{CacheHashKey, CompactCacheKey};
use pingora::cache::lock::{CacheKeyLock, CacheLock, LockStatus, Locked, WritePermit};
use pingora::cache::CacheKey;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use store::Store;

/// A reply as kept.
#[derive(Default, Clone)]
pub struct Reply {
    /// The chat pivot (a chat completion with Tollgate's internal reasoning fields).
    pub pivot: Option<Bytes>,
    /// The client's non-streamed reply exactly as it was sent (its id is replaced per hit).
    pub exact: Option<Bytes>,
    /// What the reply carried (a hit reports these tokens, at no cost).
    pub usage: Usage,
    /// The model that produced it, for the saved cost.
    pub served_model: Option<Arc<str>>,
    /// A Responses client's namespaced tools, named back in replays.
    pub tool_names: Option<Arc<ToolNames>>,
}

pub struct Entry {
    /// When it was stored and until when it is fresh (two times, where pingora-cache's
    /// `CacheMeta` would hold a response header of its own per entry, ~300 bytes).
    pub created: SystemTime,
    pub fresh_until: SystemTime,
    pub route: Arc<str>,
    pub compact: CompactCacheKey,
    pub reply: Reply,
    /// Bytes it holds, as the store counts them.
    pub size: usize,
}

/// Bytes counted for an entry beyond its bodies: the entry itself, its slots in the table and
/// the LRU (measured by `tests/memory_bounds.rs`: ~560 live bytes an entry in a full store).
const OVERHEAD: usize = 512;

impl Entry {
    pub fn new(route: Arc<str>, compact: CompactCacheKey, reply: Reply, ttl: Duration) -> Entry {
        let now = SystemTime::now();
        Entry::restored(route, compact, reply, now, now + ttl)
    }

    /// An entry stored at `created`, fresh until `fresh_until` (one read back from Redis).
    pub fn restored(
        route: Arc<str>,
        compact: CompactCacheKey,
        reply: Reply,
        created: SystemTime,
        fresh_until: SystemTime,
    ) -> Entry {
        let (pivot, exact) = (reply.pivot.as_ref(), reply.exact.as_ref());
        // An OpenAI chat reply is its own pivot: one buffer, counted once.
        let shared = matches!((pivot, exact), (Some(p), Some(e)) if p.as_ptr() == e.as_ptr());
        let size = OVERHEAD
            + route.len()
            + exact.map_or(0, Bytes::len)
            + pivot.filter(|_| !shared).map_or(0, Bytes::len);
        Entry {
            created,
            fresh_until,
            route,
            compact,
            reply,
            size,
        }
    }

    /// Seconds since it was stored (the `Age` header).
    pub fn age(&self) -> u64 {
        let age = SystemTime::now().duration_since(self.created);
        age.unwrap_or_default().as_secs()
    }

    /// Itself with its bodies in buffers of their own length (see [`fitted`]).
    fn fitted(self) -> Entry {
        let reply = fitted(self.reply);
        Entry { reply, ..self }
    }

    /// Whether it is still fresh at `now`.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        self.fresh_until >= now
    }
}

/// `reply` with its bodies in buffers of their own length. A reply is written into a growing
/// buffer, up to twice its length, and a `Bytes` keeps all of it: the store would hold memory
/// it does not count (one copy of a reply per stored miss).
fn fitted(mut reply: Reply) -> Reply {
    let shared =
        matches!((&reply.pivot, &reply.exact), (Some(p), Some(e)) if p.as_ptr() == e.as_ptr());
    reply.exact = reply.exact.map(|b| Bytes::copy_from_slice(&b));
    reply.pivot = match shared {
        true => reply.exact.clone(),
        false => reply.pivot.map(|b| Bytes::copy_from_slice(&b)),
    };
    reply
}

/// A writer's lock is held at most this long; a waiter gives up sooner (its own timeout).
const LOCK_AGE: Duration = Duration::from_secs(600);

/// A fresh entry from the fleet's Redis.
async fn from_shared(
    shared: &shared::Shared,
    route: &str,
    ck: &CompactCacheKey,
) -> Option<Arc<Entry>> {
    let name = shared::key_name(route, &ck.combined_bin());
    let f = shared.get(&name).await?;
    if f.fresh_until <= SystemTime::now() {
        return None;
    }
    let e = Entry::restored(route.into(), ck.clone(), f.reply, f.created, f.fresh_until);
    Some(Arc::new(e))
}

/// The process's response cache (it outlives config reloads).
pub struct Cache {
    store: Store,
    lock: Arc<CacheLock>,
    /// The fleet's shared store (`redis_url`), used instead of memory, so every gateway sees
    /// one set of entries and a purge reaches them all.
    shared: Option<Arc<shared::Shared>>,
}

/// What a lookup found.
pub enum Lookup {
    /// A fresh entry; `true` when the request waited for an identical one to store it.
    Hit(Arc<Entry>, bool),
    /// Go upstream; `Fill` stores the reply (and lets waiters in).
    Miss(Fill),
}

/// A miss's right to fill its entry. Identical requests wait while it holds the lock; dropped
/// without a reply, it lets them go upstream themselves.
pub struct Fill {
    pub key: CacheKey,
    permit: Option<WritePermit>,
    lock: Arc<CacheLock>,
    /// It waited for an identical request that did not leave a usable reply.
    pub waited: bool,
}

impl Drop for Fill {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            self.lock.release(&self.key, p, LockStatus::GiveUp);
        }
    }
}

impl Cache {
    /// The cache `settings` describe; a shared Redis's calls wait at most `budget`.
    pub fn new(settings: &crate::config::CacheSettings, budget: Duration) -> Cache {
        let shared = settings.redis_url.as_deref().and_then(|url| {
            shared::Shared::new(url, budget)
                .map_err(|e| log::error!("cache: redis_url unusable ({e}); memory only"))
                .ok()
        });
        Cache {
            store: Store::new(settings.max_bytes, settings.max_entry_bytes),
            lock: Arc::new(CacheLock::new(LOCK_AGE)),
            shared: shared.map(Arc::new),
        }
    }

    /// Applies a reloaded config's `[cache]` bounds.
    pub fn resize(&self, settings: &crate::config::CacheSettings) {
        self.store
            .resize(settings.max_bytes, settings.max_entry_bytes);
    }

    /// The fresh entry for `key`, else the right to fill it. With `refresh` (`no-cache`) the
    /// stored entry is not used; with `pivot` only an entry that has the pivot form is (a
    /// stream is replayed from it). A request identical to one in flight waits for it (at most
    /// `wait`) and then looks again; if that one left nothing, it goes upstream itself.
    pub async fn lookup(
        &self,
        route: &str,
        key: CacheKey,
        refresh: bool,
        pivot: bool,
        wait: Duration,
    ) -> Lookup {
        let ck = key.to_compact();
        let mut waited = false;
        for round in 0..2 {
            if !refresh || round > 0 {
                let found = match &self.shared {
                    Some(shared) => from_shared(shared, route, &ck).await,
                    None => self.store.get(&ck, SystemTime::now()),
                };
                if let Some(e) = found.filter(|e| !pivot || e.reply.pivot.is_some()) {
                    return Lookup::Hit(e, waited);
                }
            }
            let read = match self.lock.lock(&key, false) {
                Locked::Write(permit) => return Lookup::Miss(self.fill(key, Some(permit), waited)),
                Locked::Read(r) => r,
            };
            waited = true;
            let _ = tokio::time::timeout(wait, read.wait()).await;
            if read.lock_status() != LockStatus::Done {
                break;
            }
        }
        Lookup::Miss(self.fill(key, None, waited))
    }

    fn fill(&self, key: CacheKey, permit: Option<WritePermit>, waited: bool) -> Fill {
        Fill {
            key,
            permit,
            lock: self.lock.clone(),
            waited,
        }
    }

    /// Stores a complete reply for `fill`'s key and lets the waiters in. Returns the number
    /// of entries evicted to make room.
    pub async fn store(
        &self,
        mut fill: Fill,
        route: Arc<str>,
        reply: Reply,
        ttl: Duration,
    ) -> Result<usize, NotStored> {
        let ck = fill.key.to_compact();
        let entry = Entry::new(route.clone(), ck.clone(), reply, ttl);
        let stored = match &self.shared {
            // Written before the waiters are let in, so their second look finds it.
            Some(shared) => self.share(shared, &route, &ck, &entry, ttl).await,
            // Only the memory store keeps the bodies' buffers: there they fit their length.
            None => self.store.put(ck, entry.fitted()),
        };
        if let Some(p) = fill.permit.take() {
            let status = match stored {
                Ok(_) => LockStatus::Done,
                Err(_) => LockStatus::GiveUp,
            };
            self.lock.release(&fill.key, p, status);
        }
        stored
    }

    /// Writes `e` to the fleet's Redis.
    async fn share(
        &self,
        shared: &shared::Shared,
        route: &str,
        ck: &CompactCacheKey,
        e: &Entry,
        ttl: Duration,
    ) -> Result<usize, NotStored> {
        if e.size > self.store.max_entry() {
            return Err(NotStored::TooLarge);
        }
        let json = shared::encode(&e.reply, e.created, e.fresh_until);
        let json = json.ok_or(NotStored::Unshareable)?;
        let name = shared::key_name(route, &ck.combined_bin());
        match shared.put(name, json, ttl).await {
            true => Ok(0),
            false => Err(NotStored::Unreachable),
        }
    }

    /// Removes every entry, or one route's (from the fleet's Redis too); how many went from
    /// this gateway's memory, and from Redis when it has one (`None`: it failed).
    pub async fn purge(&self, route: Option<&str>) -> (usize, Option<usize>) {
        let here = self.store.purge(route);
        let shared = match &self.shared {
            Some(s) => s.purge(route).await,
            None => Some(0),
        };
        (here, shared)
    }

    /// Whether entries are shared through Redis.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Bytes held now, and entries evicted since start.
    pub fn stats(&self) -> (usize, usize) {
        (self.store.bytes(), self.store.evicted())
    }
}

#[cfg(test)]
mod tests;
