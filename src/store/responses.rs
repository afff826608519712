//! Responses kept for the Responses API on translated routes (`previous_response_id`,
//! `item_reference`, `GET`/`DELETE /v1/responses/{id}`, `…/input_items`): process runtime
//! state, behind [`ResponseStore`] so a fleet can share one Redis (`responses_redis.rs`).
//! In memory, each response lives `ttl` and the whole store stays under `max_bytes`, evicting
//! the oldest first. A response is owned by the key that created it: every read names the
//! caller's key, and another key's response is as absent as an unknown one.

use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use super::kept_response::{Parts, StoredResponse};

/// Bytes a kept response holds beyond its text (its shared allocation, its entry, its slot in
/// the age order, the maps' room to grow, the allocator's rounding).
const PER_RESPONSE: usize = 256;
/// Bytes an indexed item holds beyond its id (its index slot, its slot in the entry's list, the
/// maps' room to grow).
const PER_ITEM: usize = 56;

/// Bytes `r` holds in a memory store, for the store's bound (`tests/memory_bounds.rs`: a full
/// store holds about its bound live with these counts, its maps growing by doubling).
pub fn held_bytes(r: &StoredResponse) -> usize {
    r.held() + PER_RESPONSE + r.items() * PER_ITEM
}

/// The store could not be reached (Redis); a memory store never fails.
#[derive(Debug, thiserror::Error)]
#[error("response store: {0}")]
pub struct ResponseStoreError(pub String);

#[async_trait]
pub trait ResponseStore: Send + Sync {
    /// Keeps `r` (replacing one with its id).
    async fn put(&self, r: StoredResponse) -> Result<(), ResponseStoreError>;
    /// The response `id` if `owner` created it and it has not expired.
    async fn get(
        &self,
        owner: Option<&str>,
        id: &str,
    ) -> Result<Option<Arc<StoredResponse>>, ResponseStoreError>;
    /// The response holding item `item_id`, if `owner` created it.
    async fn holding(
        &self,
        owner: Option<&str>,
        item_id: &str,
    ) -> Result<Option<Arc<StoredResponse>>, ResponseStoreError>;
    /// Deletes `owner`'s response `id`; whether there was one.
    async fn delete(&self, owner: Option<&str>, id: &str) -> Result<bool, ResponseStoreError>;
    /// Bytes this process holds for the store (its metric), when it holds them itself.
    fn held_bytes(&self) -> Option<usize> {
        None
    }
}

/// Now, for expiry; tests move it.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

struct Entry {
    r: Arc<StoredResponse>,
    expires: Instant,
    /// Its place in `order` (a replaced or deleted entry leaves a stale one there).
    seq: u64,
    bytes: usize,
    /// Its items' slots in `items`: evicting a cold response then reads neither its ids nor
    /// the text they are in (two cache misses a put on a full store, under `perf`).
    items: Box<[u64]>,
}

/// The maps' hasher: foldhash, randomly seeded per map (hashbrown's own default), not std's
/// SipHash: a put hashes ids six to eight times, and callgrind put it at 4.2k -> 2.0k
/// instructions. Response ids are the gateway's; the random seed keeps a client from choosing
/// item ids that collide.
type Hasher = foldhash::fast::RandomState;

/// Everything is found by the hash of an id (its slot), so keeping, aging and evicting read no
/// id: a full store's oldest response is cold by the time it goes, and reading its id was a
/// cache miss at each step. A read checks the response found has the id it asked for (two ids
/// sharing a hash, under the process's random keys, only make one of them unfound).
#[derive(Default)]
struct Inner {
    /// A response id's slot → the response.
    entries: HashMap<u64, Entry, Hasher>,
    /// An item id's slot → the slot of the response holding it.
    items: HashMap<u64, u64, Hasher>,
    hasher: Hasher,
    /// Insertion order (= expiry order, one ttl for all): `(seq, slot)`.
    order: VecDeque<(u64, u64)>,
    next_seq: u64,
    bytes: usize,
}

impl Inner {
    fn slot(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    /// The response with `id`, and its slot.
    fn find(&self, id: &str) -> Option<(u64, &Arc<StoredResponse>)> {
        let slot = self.slot(id);
        let e = self.entries.get(&slot)?;
        (e.r.id() == id).then_some((slot, &e.r))
    }

    /// Removes the response at `slot` and unindexes its items.
    fn remove(&mut self, slot: u64) -> Option<Arc<StoredResponse>> {
        let e = self.entries.remove(&slot)?;
        self.bytes -= e.bytes;
        for at in e.items.iter() {
            if self.items.get(at) == Some(&slot) {
                self.items.remove(at);
            }
        }
        Some(e.r)
    }

    /// Drops the oldest entry; false when there is none.
    fn pop_oldest(&mut self) -> bool {
        let Some((seq, slot)) = self.order.pop_front() else {
            return false;
        };
        if self.entries.get(&slot).is_some_and(|e| e.seq == seq) {
            self.remove(slot);
        }
        true
    }

    /// Drops expired entries (the oldest first, so it stops at the first live one).
    fn expire(&mut self, now: Instant) {
        while let Some((seq, slot)) = self.order.front() {
            match self.entries.get(slot) {
                Some(e) if e.seq == *seq && e.expires > now => return,
                _ => {}
            }
            self.pop_oldest();
        }
    }
}

/// The in-memory store of one process.
pub struct MemoryResponses {
    ttl: Duration,
    max_bytes: usize,
    clock: Clock,
    inner: Mutex<Inner>,
}

impl MemoryResponses {
    pub fn new(ttl: Duration, max_bytes: usize) -> MemoryResponses {
        MemoryResponses::with_clock(ttl, max_bytes, Arc::new(Instant::now))
    }

    pub fn with_clock(ttl: Duration, max_bytes: usize, clock: Clock) -> MemoryResponses {
        MemoryResponses {
            ttl,
            max_bytes,
            clock,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding it leaves consistent maps (every change is one step).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The maps with the expired entries dropped, and now.
    fn fresh(&self) -> (std::sync::MutexGuard<'_, Inner>, Instant) {
        let now = (self.clock)();
        let mut g = self.lock();
        g.expire(now);
        (g, now)
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[async_trait]
impl ResponseStore for MemoryResponses {
    async fn put(&self, r: StoredResponse) -> Result<(), ResponseStoreError> {
        let bytes = held_bytes(&r);
        let (mut g, now) = self.fresh();
        let slot = g.slot(r.id());
        g.remove(slot);
        // Larger than the whole store: kept nowhere (reads get a 404, as after eviction).
        if bytes > self.max_bytes {
            return Ok(());
        }
        while g.bytes + bytes > self.max_bytes && g.pop_oldest() {}
        let seq = g.next_seq;
        g.next_seq += 1;
        let items: Box<[u64]> = r.item_ids().map(|i| g.slot(i)).collect();
        for &at in items.iter() {
            g.items.insert(at, slot);
        }
        g.order.push_back((seq, slot));
        g.bytes += bytes;
        let entry = Entry {
            r: Arc::new(r),
            expires: now + self.ttl,
            seq,
            bytes,
            items,
        };
        g.entries.insert(slot, entry);
        Ok(())
    }

    async fn get(
        &self,
        owner: Option<&str>,
        id: &str,
    ) -> Result<Option<Arc<StoredResponse>>, ResponseStoreError> {
        let (g, _) = self.fresh();
        let r = g.find(id).map(|(_, r)| r);
        Ok(r.filter(|r| r.owned_by(owner)).cloned())
    }

    fn held_bytes(&self) -> Option<usize> {
        Some(self.bytes())
    }

    async fn holding(
        &self,
        owner: Option<&str>,
        item_id: &str,
    ) -> Result<Option<Arc<StoredResponse>>, ResponseStoreError> {
        let (g, _) = self.fresh();
        let Some(slot) = g.items.get(&g.slot(item_id)) else {
            return Ok(None);
        };
        let r = g.entries.get(slot).map(|e| &e.r);
        let r = r.filter(|r| r.owned_by(owner) && r.item_ids().any(|i| i == item_id));
        Ok(r.cloned())
    }

    async fn delete(&self, owner: Option<&str>, id: &str) -> Result<bool, ResponseStoreError> {
        let (mut g, _) = self.fresh();
        let slot = match g.find(id) {
            Some((slot, r)) if r.owned_by(owner) => slot,
            _ => return Ok(false),
        };
        Ok(g.remove(slot).is_some())
    }
}

#[cfg(test)]
#[path = "responses_tests.rs"]
mod tests;
