//! Managed keys in the fleet's Redis (`[store] kind = "redis"`): one hash of records by name,
//! a version counter and a capped audit list. A change is one Lua script (compare the stored
//! record, write or delete it, raise the version, log the audit entry), so every gateway sees
//! whole changes in order.

use super::keys::{parse_records, AuditEntry, BookError, Change, KeyBook, AUDIT_KEPT};
use super::redis::Link;
use crate::auth::KeyRecord;
use async_trait::async_trait;
use redis::Script;

const RECORDS: &str = "tollgate:keys";
const VERSION: &str = "tollgate:keys:version";
const AUDIT: &str = "tollgate:keys:audit";

/// KEYS: records, version, audit; ARGV: name, expected ('' = absent), new ('' = delete),
/// audit entry, audit entries kept. Returns the new version, or -1 when the record is not as
/// expected.
const APPLY: &str = r"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur == false then cur = '' end
if cur ~= ARGV[2] then return -1 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
local v = redis.call('INCR', KEYS[2])
redis.call('LPUSH', KEYS[3], ARGV[4])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[5]) - 1)
return v
";

/// KEYS: version, records. The version and every record, read together.
const LOAD: &str = r"
return {redis.call('GET', KEYS[1]) or '0', redis.call('HVALS', KEYS[2])}
";

pub struct RedisKeys {
    link: Link,
    apply: Script,
    load: Script,
}

impl RedisKeys {
    pub fn new(url: &str, budget: std::time::Duration) -> Result<RedisKeys, String> {
        Ok(RedisKeys {
            link: Link::with_budget(url, budget)?,
            apply: Script::new(APPLY),
            load: Script::new(LOAD),
        })
    }
}

fn down(e: impl std::fmt::Display) -> BookError {
    BookError::Unreachable(e.to_string())
}

#[async_trait]
impl KeyBook for RedisKeys {
    async fn version(&self) -> Result<u64, BookError> {
        let mut c = self.link.connection().await.map_err(down)?;
        let mut cmd = redis::cmd("GET");
        let call = cmd.arg(VERSION).query_async::<Option<u64>>(&mut c);
        Ok(self.link.within(call).await.map_err(down)?.unwrap_or(0))
    }

    async fn load(&self) -> Result<(u64, Vec<KeyRecord>), BookError> {
        let mut c = self.link.connection().await.map_err(down)?;
        let mut inv = self.load.prepare_invoke();
        inv.key(VERSION).key(RECORDS);
        let (v, rows): (String, Vec<String>) = self
            .link
            .within(inv.invoke_async(&mut c))
            .await
            .map_err(down)?;
        let v = v.parse().map_err(down)?;
        Ok((v, parse_records(rows.iter().map(String::as_str))))
    }

    async fn get(&self, name: &str) -> Result<Option<String>, BookError> {
        let mut c = self.link.connection().await.map_err(down)?;
        let mut cmd = redis::cmd("HGET");
        let call = cmd
            .arg(RECORDS)
            .arg(name)
            .query_async::<Option<String>>(&mut c);
        self.link.within(call).await.map_err(down)
    }

    async fn apply(&self, change: Change<'_>) -> Result<u64, BookError> {
        let audit = serde_json::to_string(change.audit).map_err(down)?;
        let mut c = self.link.connection().await.map_err(down)?;
        let mut inv = self.apply.prepare_invoke();
        inv.key(RECORDS).key(VERSION).key(AUDIT);
        inv.arg(change.name)
            .arg(change.expected.unwrap_or(""))
            .arg(change.new.unwrap_or(""))
            .arg(audit)
            .arg(AUDIT_KEPT);
        let v: i64 = self
            .link
            .within(inv.invoke_async(&mut c))
            .await
            .map_err(down)?;
        u64::try_from(v).map_err(|_| BookError::Conflict)
    }

    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, BookError> {
        let mut c = self.link.connection().await.map_err(down)?;
        let stop = limit.max(1) as isize - 1;
        let mut cmd = redis::cmd("LRANGE");
        let call = cmd
            .arg(AUDIT)
            .arg(0)
            .arg(stop)
            .query_async::<Vec<String>>(&mut c);
        let rows = self.link.within(call).await.map_err(down)?;
        Ok(rows
            .iter()
            .filter_map(|r| serde_json::from_str(r).ok())
            .collect())
    }
}
