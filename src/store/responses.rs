//! Responses kept for the Responses API on translated routes (`previous_response_id`,
//! `item_reference`, `GET`/`DELETE /v1/responses/{id}`, `…/input_items`): process runtime
//! state, behind [`ResponseStore`] so a fleet can share one Redis (`responses_redis.rs`).
//! In memory, each response lives `ttl` and the whole store stays under `max_bytes`, evicting
//! the oldest first. A response is owned by the key that created it: every read names the
//! caller's key, and another key's response is as absent as an unknown one.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bytes a kept response holds beyond its strings (the entry, the shared struct, map slots).
const PER_RESPONSE: usize = 512;
/// Bytes an indexed item holds beyond its id (its string header, the index's slot, the maps'
/// room to grow).
const PER_ITEM: usize = 176;

/// JSON text a kept response holds. The gateway's own serializer wrote it, so it is kept as
/// text without a parse to check it (that parse was ~12k instructions a kept Response, the
/// largest part of keeping one); a shared store checks it as it writes it out, and reads it
/// back as checked JSON.
#[derive(Debug)]
pub struct Json(Box<str>);

impl Json {
    /// Text a serializer wrote: valid JSON by construction.
    pub fn written(text: impl Into<Box<str>>) -> Json {
        Json(text.into())
    }

    /// `v` as JSON (the tests' way to make one).
    #[cfg(test)]
    pub fn of<T: Serialize + ?Sized>(v: &T) -> serde_json::Result<Json> {
        serde_json::to_string(v).map(Json::written)
    }

    pub fn get(&self) -> &str {
        &self.0
    }
}

impl Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        Box::<RawValue>::deserialize(d).map(|r| Json(r.into()))
    }
}

/// One kept response.
#[derive(Debug, Serialize, Deserialize)]
pub struct StoredResponse {
    /// The `resp_…` the client was given.
    pub id: String,
    /// The key that created it (`None`: an open gateway).
    pub owner: Option<String>,
    /// The model the client asked for.
    pub model: String,
    /// The Response object as sent to the client.
    pub response: Json,
    /// The request's input items, after `previous_response_id` and references were expanded.
    pub input: Json,
    pub instructions: Option<String>,
    /// Ids of its items when the maker knew them ([`StoredResponse::item_ids`] reads them
    /// from the JSON otherwise); not part of what a shared store holds.
    #[serde(skip)]
    pub item_ids: Option<Vec<String>>,
}

impl StoredResponse {
    /// Bytes it holds in a memory store, for the store's bound.
    pub fn size(&self) -> usize {
        self.size_with(&self.item_ids())
    }

    /// [`StoredResponse::size`] with its item ids at hand. Besides its own strings: the
    /// entry, its slots and the shared id (`Id`); per item its id in the list and its index
    /// slot (`tests/memory_bounds.rs`: a full store holds 0.94× its bound live with these
    /// counts, its maps growing by doubling).
    fn size_with(&self, items: &[String]) -> usize {
        let owner = self.owner.as_ref().map_or(0, String::len);
        let instr = self.instructions.as_ref().map_or(0, String::len);
        let indexed: usize = items.iter().map(|i| i.len() + PER_ITEM).sum();
        2 * self.id.len()
            + owner
            + self.model.len()
            + self.response.get().len()
            + self.input.get().len()
            + instr
            + indexed
            + PER_RESPONSE
    }

    /// The response's output items (empty if it has none).
    pub fn output(&self) -> Vec<Value> {
        #[derive(Deserialize)]
        struct Out {
            #[serde(default)]
            output: Vec<Value>,
        }
        serde_json::from_str::<Out>(self.response.get()).map_or_else(|_| Vec::new(), |o| o.output)
    }

    /// The input items.
    pub fn input_items(&self) -> Vec<Value> {
        serde_json::from_str(self.input.get()).unwrap_or_default()
    }

    /// Ids of its input and output items, for `item_reference` lookups: those its maker gave,
    /// else read without building the items (every response kept is indexed, and every one
    /// evicted unindexed).
    pub fn item_ids(&self) -> Cow<'_, [String]> {
        if let Some(ids) = &self.item_ids {
            return Cow::Borrowed(ids);
        }
        #[derive(Deserialize)]
        struct Out<'a> {
            #[serde(default, borrow)]
            output: Vec<&'a RawValue>,
        }
        #[derive(Deserialize)]
        struct Item {
            id: Option<Value>,
        }
        let input = serde_json::from_str::<Vec<&RawValue>>(self.input.get()).unwrap_or_default();
        let output = serde_json::from_str::<Out>(self.response.get())
            .map_or_else(|_| Vec::new(), |o| o.output);
        let id = |item: &RawValue| match serde_json::from_str::<Item>(item.get()) {
            Ok(Item {
                id: Some(Value::String(id)),
            }) => Some(id),
            _ => None,
        };
        Cow::Owned(input.into_iter().chain(output).filter_map(id).collect())
    }

    /// The input or output item with `item_id`.
    pub fn item(&self, item_id: &str) -> Option<Value> {
        let mut items = self.output().into_iter().chain(self.input_items());
        items.find(|i| i["id"] == item_id)
    }

    pub(super) fn owned_by(&self, owner: Option<&str>) -> bool {
        self.owner.as_deref() == owner
    }
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
}

/// A response's id, shared by its entry's key, its place in `order` and its items' index
/// slots: one allocation a response instead of one per slot.
type Id = Arc<str>;

/// The maps' hasher: foldhash, randomly seeded per map (hashbrown's own default), not std's
/// SipHash: a put hashes ids six to eight times, and callgrind put it at 4.2k -> 2.0k
/// instructions. Response ids are the gateway's; the random seed keeps a client from choosing
/// item ids that collide.
type Hasher = foldhash::fast::RandomState;

#[derive(Default)]
struct Inner {
    entries: HashMap<Id, Entry, Hasher>,
    /// An item id's hash → the response holding it. Keyed by hash, so indexing an item
    /// allocates nothing; a read checks the response does hold the item (two ids sharing a
    /// hash, under the process's random keys, only make one of them unfound).
    items: HashMap<u64, Id, Hasher>,
    hasher: Hasher,
    /// Insertion order (= expiry order, one ttl for all): `(seq, id)`.
    order: VecDeque<(u64, Id)>,
    next_seq: u64,
    bytes: usize,
}

impl Inner {
    fn slot(&self, item: &str) -> u64 {
        self.hasher.hash_one(item)
    }

    fn remove(&mut self, id: &str) -> Option<Entry> {
        let (id, e) = self.entries.remove_entry(id)?;
        self.bytes -= e.bytes;
        for item in e.r.item_ids().iter() {
            let at = self.slot(item);
            if self.items.get(&at).is_some_and(|r| Arc::ptr_eq(r, &id)) {
                self.items.remove(&at);
            }
        }
        Some(e)
    }

    /// Drops the oldest entry; false when there is none.
    fn pop_oldest(&mut self) -> bool {
        let Some((seq, id)) = self.order.pop_front() else {
            return false;
        };
        if self.entries.get(&id).is_some_and(|e| e.seq == seq) {
            self.remove(&id);
        }
        true
    }

    /// Drops expired entries (the oldest first, so it stops at the first live one).
    fn expire(&mut self, now: Instant) {
        while let Some((seq, id)) = self.order.front() {
            match self.entries.get(id) {
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

    fn live(&self, owner: Option<&str>, id: &str) -> Option<Arc<StoredResponse>> {
        let now = (self.clock)();
        let mut g = self.lock();
        g.expire(now);
        let e = g.entries.get(id)?;
        e.r.owned_by(owner).then(|| e.r.clone())
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[async_trait]
impl ResponseStore for MemoryResponses {
    async fn put(&self, r: StoredResponse) -> Result<(), ResponseStoreError> {
        let bytes = r.size_with(&r.item_ids());
        let r = Arc::new(r);
        let now = (self.clock)();
        let mut g = self.lock();
        g.expire(now);
        g.remove(&r.id);
        // Larger than the whole store: kept nowhere (reads get a 404, as after eviction).
        if bytes > self.max_bytes {
            return Ok(());
        }
        while g.bytes + bytes > self.max_bytes && g.pop_oldest() {}
        let seq = g.next_seq;
        g.next_seq += 1;
        let id: Id = Arc::from(r.id.as_str());
        for item in r.item_ids().iter() {
            let at = g.slot(item);
            g.items.insert(at, id.clone());
        }
        g.order.push_back((seq, id.clone()));
        g.bytes += bytes;
        let entry = Entry {
            r,
            expires: now + self.ttl,
            seq,
            bytes,
        };
        g.entries.insert(id, entry);
        Ok(())
    }

    async fn get(
        &self,
        owner: Option<&str>,
        id: &str,
    ) -> Result<Option<Arc<StoredResponse>>, ResponseStoreError> {
        Ok(self.live(owner, id))
    }

    fn held_bytes(&self) -> Option<usize> {
        Some(self.bytes())
    }

    async fn holding(
        &self,
        owner: Option<&str>,
        item_id: &str,
    ) -> Result<Option<Arc<StoredResponse>>, ResponseStoreError> {
        let id = {
            let g = self.lock();
            g.items.get(&g.slot(item_id)).cloned()
        };
        let r = id.and_then(|id| self.live(owner, &id));
        Ok(r.filter(|r| r.item_ids().iter().any(|i| i == item_id)))
    }

    async fn delete(&self, owner: Option<&str>, id: &str) -> Result<bool, ResponseStoreError> {
        if self.live(owner, id).is_none() {
            return Ok(false);
        }
        Ok(self.lock().remove(id).is_some())
    }
}

#[cfg(test)]
#[path = "responses_tests.rs"]
mod tests;
