//! Entries shared by a fleet through Redis (`[cache] redis_url`), instead of each gateway's
//! memory: every gateway sees one set of entries, a purge through any of them empties it for
//! all, and Redis expires each entry itself (`PX`) and bounds its memory (`maxmemory`). One key per entry,
//! `tollgate:cache:{route}:{hash}`, holding the entry as JSON (the bodies embedded as they
//! are). Calls have the store's budget and breaker (`store::link`): a Redis that is down or
//! slow turns lookups into misses and drops writes, never an error for the client.

use super::Reply;
use crate::formats::Usage;
use crate::store::link::Link;
use bytes::Bytes;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PREFIX: &str = "tollgate:cache:";
/// Keys a purge deletes per round trip.
const PURGE_BATCH: usize = 500;

pub struct Shared {
    link: Link,
}

/// An entry as Redis holds it.
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    v: u8,
    created_ms: u64,
    fresh_until_ms: u64,
    /// input, cached_input, cache_creation, output, reasoning.
    usage: [u64; 5],
    served_model: Option<&'a str>,
    #[serde(borrow)]
    exact: Option<&'a RawValue>,
    #[serde(borrow)]
    pivot: Option<&'a RawValue>,
}

/// An entry read back: its reply and its life.
pub struct Found {
    pub reply: Reply,
    pub created: SystemTime,
    pub fresh_until: SystemTime,
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The key of route `route`'s entry `hash` (the route length-prefixed, for purges by route).
pub fn key_name(route: &str, hash: &[u8; 16]) -> String {
    let mut hex = String::with_capacity(32);
    for b in hash {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("{}{}", route_prefix(route), hex)
}

fn route_prefix(route: &str) -> String {
    format!("{PREFIX}{}.{route}:", route.len())
}

/// An entry's JSON; `None` when a body is not JSON (it is then kept in memory only).
pub fn encode(reply: &Reply, created: SystemTime, fresh_until: SystemTime) -> Option<Vec<u8>> {
    fn raw(b: &Option<Bytes>) -> Option<Option<&RawValue>> {
        match b {
            None => Some(None),
            Some(b) => serde_json::from_slice::<&RawValue>(b).ok().map(Some),
        }
    }
    let u = reply.usage;
    let wire = Wire {
        v: 1,
        created_ms: ms(created),
        fresh_until_ms: ms(fresh_until),
        usage: [
            u.input,
            u.cached_input,
            u.cache_creation,
            u.output,
            u.reasoning,
        ],
        served_model: reply.served_model.as_deref(),
        exact: raw(&reply.exact)?,
        pivot: raw(&reply.pivot)?,
    };
    serde_json::to_vec(&wire).ok()
}

pub fn decode(bytes: &[u8]) -> Option<Found> {
    let w: Wire = serde_json::from_slice(bytes)
        .ok()
        .filter(|w: &Wire| w.v == 1)?;
    let body = |r: Option<&RawValue>| r.map(|r| Bytes::copy_from_slice(r.get().as_bytes()));
    let [input, cached_input, cache_creation, output, reasoning] = w.usage;
    Some(Found {
        reply: Reply {
            pivot: body(w.pivot),
            exact: body(w.exact),
            usage: Usage {
                input,
                cached_input,
                cache_creation,
                output,
                reasoning,
            },
            served_model: w.served_model.map(Arc::from),
            tool_names: None,
        },
        created: UNIX_EPOCH + Duration::from_millis(w.created_ms),
        fresh_until: UNIX_EPOCH + Duration::from_millis(w.fresh_until_ms),
    })
}

impl Shared {
    pub fn new(url: &str, budget: Duration) -> Result<Shared, String> {
        Ok(Shared {
            link: Link::with_budget(url, budget)?,
        })
    }

    /// The entry under `name`, if Redis has it and answers in time.
    pub async fn get(&self, name: &str) -> Option<Found> {
        let mut c = self.link.connection().await.ok()?;
        let got: Option<Vec<u8>> = self.link.within(c.get(name)).await.ok()?;
        decode(&got?)
    }

    /// Writes an entry that expires in `ttl`; whether Redis took it.
    pub async fn put(&self, name: String, json: Vec<u8>, ttl: Duration) -> bool {
        let Ok(mut c) = self.link.connection().await else {
            return false;
        };
        let px = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let set = c.pset_ex::<_, _, ()>(name, json, px);
        match self.link.within(set).await {
            Ok(()) => true,
            Err(e) => {
                log::debug!("cache: not stored ({e})");
                false
            }
        }
    }

    /// Deletes every shared entry, or one route's; how many went (`None`: Redis failed).
    pub async fn purge(&self, route: Option<&str>) -> Option<usize> {
        let pattern = match route {
            Some(r) => format!("{}*", route_prefix(r)),
            None => format!("{PREFIX}*"),
        };
        let mut c = self.link.connection().await.ok()?;
        let (mut cursor, mut n) = (0u64, 0usize);
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(PURGE_BATCH);
            let (next, keys): (u64, Vec<String>) =
                self.link.within(scan.query_async(&mut c)).await.ok()?;
            if !keys.is_empty() {
                n += self.link.within(c.del::<_, usize>(&keys)).await.ok()?;
            }
            if next == 0 {
                return Some(n);
            }
            cursor = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_keys_carry_the_route() {
        let reply = Reply {
            exact: Some(Bytes::from_static(br#"{"id":"x","n":[1, 2]}"#)),
            pivot: None,
            usage: Usage {
                input: 3,
                output: 5,
                ..Default::default()
            },
            served_model: Some("gpt".into()),
            tool_names: None,
        };
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let json = encode(&reply, now, now + Duration::from_secs(60)).unwrap();
        let f = decode(&json).unwrap();
        assert_eq!(f.reply.exact, reply.exact);
        assert_eq!(f.reply.pivot, None);
        assert_eq!(f.reply.usage, reply.usage);
        assert_eq!(f.reply.served_model.as_deref(), Some("gpt"));
        assert_eq!(
            (f.created, f.fresh_until),
            (now, now + Duration::from_secs(60))
        );
        let not_json = Reply {
            exact: Some(Bytes::from_static(b"oops")),
            ..Default::default()
        };
        assert!(encode(&not_json, now, now).is_none());
        assert!(decode(b"{\"v\":2}").is_none());
        let name = key_name("ab", &[0xab; 16]);
        assert_eq!(name, format!("tollgate:cache:2.ab:{}", "ab".repeat(16)));
    }
}
