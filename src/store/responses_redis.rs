//! Kept responses in the fleet's Redis (`[store] kind = "redis"`), so a response made through
//! one gateway is read, continued and deleted through any other. Each response is one key
//! holding its [`StoredResponse`] as JSON, and each of its item ids one index key naming the
//! response; both expire with `EX` = the TTL, so Redis forgets them by itself (and bounds
//! itself: `store_max_bytes` is for the memory store). Key names carry the owner (the key that
//! made it), so a read can only ever reach the caller's own responses.
//!
//! Item ids repeat across responses (a continued turn carries the earlier items with their
//! ids): the index names the latest holder, and a delete removes only index keys still naming
//! the deleted response, as the memory store does.

use super::redis::{Link, LinkError};
use super::responses::{ResponseStore, ResponseStoreError, StoredResponse};
use async_trait::async_trait;
use redis::Script;
use std::sync::Arc;
use std::time::Duration;

const RESPONSE: &str = "tollgate:response:";
const ITEM: &str = "tollgate:response-item:";

/// KEYS[1]: an item's index key; ARGV[1]: the owner's response key prefix. The response
/// holding the item, in one round trip.
const HOLDING: &str = r"
local id = redis.call('GET', KEYS[1])
if not id then return false end
return redis.call('GET', ARGV[1] .. id)
";

/// KEYS: index keys; ARGV[1]: a response id. Deletes those still naming it.
const UNINDEX: &str = r"
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return 0
";

pub struct RedisResponses {
    link: Link,
    ttl_seconds: u64,
    holding: Script,
    unindex: Script,
}

/// The owner's part of a key name: `-` for an open gateway, else the key's name prefixed with
/// its length, so no owner and id can spell another pair's key (`a` + `x:r` vs `a:x` + `r`).
fn owner_tag(owner: Option<&str>) -> String {
    match owner {
        None => "-".to_string(),
        Some(name) => format!("{}.{name}", name.len()),
    }
}

/// `tollgate:response:{owner}:{id}`.
fn response_key(owner: Option<&str>, id: &str) -> String {
    format!("{}{id}", response_prefix(owner))
}

fn response_prefix(owner: Option<&str>) -> String {
    format!("{RESPONSE}{}:", owner_tag(owner))
}

/// `tollgate:response-item:{owner}:{item id}` → the id of the response holding it.
fn item_key(owner: Option<&str>, item_id: &str) -> String {
    format!("{ITEM}{}:{item_id}", owner_tag(owner))
}

fn failed(e: impl Into<LinkError>) -> ResponseStoreError {
    ResponseStoreError(e.into().to_string())
}

/// A stored value back as the response, if `owner` made it. A value that does not decode (a
/// fleet member of another version wrote it) is an error rather than an absent response.
fn decode(
    owner: Option<&str>,
    json: &str,
) -> Result<Option<Arc<StoredResponse>>, ResponseStoreError> {
    let r: StoredResponse = serde_json::from_str(json)
        .map_err(|e| ResponseStoreError(format!("redis: undecodable response: {e}")))?;
    Ok(r.owned_by(owner).then(|| Arc::new(r)))
}

impl RedisResponses {
    pub fn new(url: &str, ttl: Duration) -> Result<RedisResponses, String> {
        Ok(RedisResponses {
            link: Link::new(url)?,
            ttl_seconds: ttl.as_secs().max(1),
            holding: Script::new(HOLDING),
            unindex: Script::new(UNINDEX),
        })
    }

    async fn connection(&self) -> Result<redis::aio::MultiplexedConnection, ResponseStoreError> {
        self.link.connection().await.map_err(failed)
    }
}

#[async_trait]
impl ResponseStore for RedisResponses {
    /// The response and its index keys in one `MULTI`: a reader never sees one without the
    /// other.
    async fn put(&self, r: StoredResponse) -> Result<(), ResponseStoreError> {
        let json = serde_json::to_string(&r).map_err(|e| ResponseStoreError(e.to_string()))?;
        let owner = r.owner();
        let mut pipe = redis::pipe();
        pipe.atomic();
        let key = response_key(owner, r.id());
        pipe.set_ex(key, json, self.ttl_seconds).ignore();
        for item in r.item_ids() {
            let index = item_key(owner, item);
            pipe.set_ex(index, r.id(), self.ttl_seconds).ignore();
        }
        let mut conn = self.connection().await?;
        (self.link)
            .within(pipe.query_async::<()>(&mut conn))
            .await
            .map_err(failed)
    }

    async fn get(
        &self,
        owner: Option<&str>,
        id: &str,
    ) -> Result<Option<Arc<StoredResponse>>, ResponseStoreError> {
        let mut conn = self.connection().await?;
        let mut get = redis::cmd("GET");
        get.arg(response_key(owner, id));
        let json: Option<String> = (self.link)
            .within(get.query_async(&mut conn))
            .await
            .map_err(failed)?;
        json.map_or(Ok(None), |j| decode(owner, &j))
    }

    async fn holding(
        &self,
        owner: Option<&str>,
        item_id: &str,
    ) -> Result<Option<Arc<StoredResponse>>, ResponseStoreError> {
        let mut conn = self.connection().await?;
        let mut call = self.holding.key(item_key(owner, item_id));
        call.arg(response_prefix(owner));
        let json: Option<String> = (self.link)
            .within(call.invoke_async(&mut conn))
            .await
            .map_err(failed)?;
        json.map_or(Ok(None), |j| decode(owner, &j))
    }

    /// Takes the response in one `MULTI` (`GET` + `DEL`), then unindexes its items.
    async fn delete(&self, owner: Option<&str>, id: &str) -> Result<bool, ResponseStoreError> {
        let mut conn = self.connection().await?;
        let key = response_key(owner, id);
        let mut take = redis::pipe();
        take.atomic().get(&key).del(&key);
        let (json, _): (Option<String>, i64) = (self.link)
            .within(take.query_async(&mut conn))
            .await
            .map_err(failed)?;
        let Some(json) = json else {
            return Ok(false);
        };
        let items = decode(owner, &json)
            .ok()
            .flatten()
            .map(|r| r.item_ids().map(str::to_string).collect::<Vec<_>>());
        let items = items.unwrap_or_default();
        if items.is_empty() {
            return Ok(true);
        }
        let mut call = self.unindex.prepare_invoke();
        for item in items {
            call.key(item_key(owner, &item));
        }
        call.arg(id);
        // The response is gone either way: an index key left behind names nothing and
        // expires with its TTL, so this failing is no reason to tell the client otherwise.
        if let Err(e) = self.link.within(call.invoke_async::<i64>(&mut conn)).await {
            log::warn!("response store: unindexing {id}: {e}");
        }
        Ok(true)
    }
}

#[cfg(test)]
#[path = "responses_redis_tests.rs"]
mod tests;
