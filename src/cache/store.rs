//! The in-memory store: entries in pingora-cache's sharded hash table, bounded by its LRU
//! eviction manager (pingora-lru) by the bytes each entry holds; freshness from the entry's
//! own times.

use super::Entry;
use pingora::cache::eviction::{lru, EvictionManager};
use pingora::cache::hashtable::ConcurrentHashTable;
use pingora::cache::key::{CacheHashKey, CompactCacheKey};
use pingora::cache::{CacheEntryKey, CacheEntryKeyRef};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

const SHARDS: usize = 16;
/// Entries each LRU shard preallocates room for.
const SHARD_CAPACITY: usize = 256;

pub struct Store {
    entries: ConcurrentHashTable<Arc<Entry>, SHARDS>,
    lru: lru::Manager<SHARDS>,
    max_entry: AtomicUsize,
}

/// Why a reply was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
    TooLarge,
    /// Shared through Redis: a body that is not JSON (kept nowhere).
    Unshareable,
    /// Shared through Redis: it did not answer in time.
    Unreachable,
}

impl NotStored {
    pub fn label(self) -> &'static str {
        match self {
            NotStored::TooLarge => "too_large",
            NotStored::Unshareable => "unshareable",
            NotStored::Unreachable => "unreachable",
        }
    }
}

fn slot(ck: &CompactCacheKey) -> u128 {
    u128::from_be_bytes(ck.combined_bin())
}

impl Store {
    pub fn new(max_bytes: usize, max_entry: usize) -> Store {
        Store {
            entries: ConcurrentHashTable::new(),
            lru: lru::Manager::with_capacity(max_bytes, SHARD_CAPACITY),
            max_entry: AtomicUsize::new(max_entry),
        }
    }

    /// Applies a reloaded config's bounds (a smaller store evicts on the next admission).
    pub fn resize(&self, max_bytes: usize, max_entry: usize) {
        self.lru.set_weight_limit(max_bytes);
        self.max_entry.store(max_entry, Ordering::Relaxed);
    }

    /// The fresh entry under `ck`; a stale one is removed.
    pub fn get(&self, ck: &CompactCacheKey, now: SystemTime) -> Option<Arc<Entry>> {
        let at = slot(ck);
        let e = self.entries.read(at).get(&at).cloned()?;
        if !e.is_fresh(now) {
            self.remove_if(ck, &e);
            return None;
        }
        let item = CacheEntryKey::key_only(ck.clone());
        self.lru.access(&item, e.size, e.fresh_until);
        Some(e)
    }

    /// Stores `e` under `ck`, evicting the least recently used entries past the bound.
    /// Returns how many entries were evicted.
    pub fn put(&self, ck: CompactCacheKey, e: Entry) -> Result<usize, NotStored> {
        if e.size > self.max_entry.load(Ordering::Relaxed) {
            return Err(NotStored::TooLarge);
        }
        let (size, fresh_until) = (e.size, e.fresh_until);
        let at = slot(&ck);
        self.entries.write(at).insert(at, Arc::new(e));
        let evicted = self
            .lru
            .admit(CacheEntryKey::key_only(ck), size, fresh_until);
        for gone in &evicted {
            let at = slot(gone.key());
            self.entries.write(at).remove(&at);
        }
        Ok(evicted.len())
    }

    /// Removes every entry, or those of one route; returns how many went.
    pub fn purge(&self, route: Option<&str>) -> usize {
        let mut n = 0;
        for i in 0..SHARDS {
            let Some(shard) = self.entries.get_shard_at_idx(i) else {
                continue;
            };
            shard.write().retain(|_, e| {
                let keep = route.is_some_and(|r| *e.route != *r);
                if !keep {
                    n += 1;
                    let item = CacheEntryKey::key_only(e.compact.clone());
                    self.lru.remove(CacheEntryKeyRef::from(&item));
                }
                keep
            });
        }
        n
    }

    pub fn max_entry(&self) -> usize {
        self.max_entry.load(Ordering::Relaxed)
    }

    /// Bytes held by the entries.
    pub fn bytes(&self) -> usize {
        self.lru.total_size()
    }

    pub fn evicted(&self) -> usize {
        self.lru.evicted_items()
    }

    /// Removes `e` (expired) unless another entry has replaced it meanwhile.
    fn remove_if(&self, ck: &CompactCacheKey, e: &Arc<Entry>) {
        let at = slot(ck);
        let mut shard = self.entries.write(at);
        if shard.get(&at).is_some_and(|cur| Arc::ptr_eq(cur, e)) {
            shard.remove(&at);
            drop(shard);
            let item = CacheEntryKey::key_only(ck.clone());
            self.lru.remove(CacheEntryKeyRef::from(&item));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::key::{key, Tenant};
    use crate::cache::Reply;
    use std::time::Duration;

    fn entry(route: &str, ck: &CompactCacheKey, bytes: usize, ttl: Duration) -> Entry {
        let reply = Reply {
            exact: Some(vec![b'x'; bytes].into()),
            ..Default::default()
        };
        Entry::new(route.into(), ck.clone(), reply, ttl)
    }

    fn ck(n: usize) -> CompactCacheKey {
        let body = format!("{{\"i\":{n}}}");
        key("r", "chat", body.as_bytes(), Tenant::Global)
            .unwrap()
            .to_compact()
    }

    #[test]
    fn max_bytes_is_honoured_by_eviction() {
        let s = Store::new(10_000, 5_000);
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        for n in 0..100 {
            s.put(ck(n), entry("r", &ck(n), 1_000, hour)).unwrap();
            assert!(s.bytes() <= 10_000, "{} bytes held", s.bytes());
        }
        let held = (0..100).filter(|&n| s.get(&ck(n), now).is_some()).count();
        // Each entry counts 1,000 bytes plus its bookkeeping: at most 7 fit.
        assert!((1..=7).contains(&held), "{held} entries held");
        assert_eq!(s.evicted(), 100 - held);
        let big = entry("r", &ck(700), 6_000, hour);
        assert_eq!(s.put(ck(700), big), Err(NotStored::TooLarge));
    }

    #[test]
    fn stale_entries_are_gone_and_purge_by_route() {
        let s = Store::new(1 << 20, 1 << 20);
        let now = SystemTime::now();
        s.put(ck(1), entry("r", &ck(1), 10, Duration::from_secs(1)))
            .unwrap();
        s.put(ck(2), entry("s", &ck(2), 10, Duration::from_secs(60)))
            .unwrap();
        s.put(ck(3), entry("r", &ck(3), 10, Duration::from_secs(60)))
            .unwrap();
        assert!(s.get(&ck(1), now).is_some());
        assert!(s.get(&ck(1), now + Duration::from_secs(2)).is_none());
        assert!(s.get(&ck(1), now).is_none(), "removed when found stale");
        assert_eq!(s.purge(Some("r")), 1);
        assert!(s.get(&ck(2), now).is_some());
        assert_eq!(s.purge(None), 1);
        assert_eq!(s.bytes(), 0);
    }
}
