//! Managed keys in the store (the admin API's `/keys`): their records, a version every change
//! raises, and the audit log, in the SQLite file (one gateway, or several on one host) or in
//! the fleet's Redis (`keys_redis.rs`). Every gateway follows the version ([`sync`]) and
//! swaps its lookup table when it moves, so a change is effective everywhere within a poll.
//!
//! A change is a compare-and-set on the record's stored JSON: the admin reads a record, edits
//! it and writes it back only if nobody changed it in between (else it reads again).

use crate::auth::{KeyRecord, ManagedKeys};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a gateway asks the store whether the keys changed.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(250);
/// Audit entries kept (older ones are dropped).
pub const AUDIT_KEPT: usize = 10_000;

/// One change to a managed key: who, when, what (never the secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub ts_ms: i64,
    pub actor: String,
    /// `create`, `update`, `rotate`, `delete`.
    pub action: String,
    pub key: String,
    /// The fields the change set (for `rotate`: the grace period).
    pub detail: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error("the key store is unreachable: {0}")]
    Unreachable(String),
    /// The record is not what the change expected (created, changed or deleted meanwhile).
    #[error("the key changed meanwhile")]
    Conflict,
}

/// A change: the record's stored JSON as read (`None`: it must not exist) and its new JSON
/// (`None`: delete it).
pub struct Change<'a> {
    pub name: &'a str,
    pub expected: Option<&'a str>,
    pub new: Option<&'a str>,
    pub audit: &'a AuditEntry,
}

#[async_trait]
pub trait KeyBook: Send + Sync {
    /// Raised by every change.
    async fn version(&self) -> Result<u64, BookError>;
    /// Every record, with the version they are at.
    async fn load(&self) -> Result<(u64, Vec<KeyRecord>), BookError>;
    /// One record's stored JSON.
    async fn get(&self, name: &str) -> Result<Option<String>, BookError>;
    /// Applies `change` if the record is still as expected; the new version.
    async fn apply(&self, change: Change<'_>) -> Result<u64, BookError>;
    /// The latest audit entries, newest first.
    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, BookError>;
}

/// Parses stored records, skipping (and logging) any that do not parse.
pub fn parse_records<'a>(rows: impl Iterator<Item = &'a str>) -> Vec<KeyRecord> {
    rows.filter_map(|json| match serde_json::from_str::<KeyRecord>(json) {
        Ok(r) => Some(r),
        Err(e) => {
            log::error!("managed keys: a stored record does not parse ({e}); skipped");
            None
        }
    })
    .collect()
}

/// Brings `keys` to the store's version: loads every record when the version moved.
pub async fn sync(book: &dyn KeyBook, keys: &ManagedKeys) -> Result<(), BookError> {
    let v = book.version().await?;
    if keys.version() != Some(v) {
        let (v, records) = book.load().await?;
        keys.replace(v, &records);
        log::debug!("managed keys: {} at version {v}", records.len());
    }
    Ok(())
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS api_keys (
  name TEXT PRIMARY KEY,
  record TEXT NOT NULL              -- the KeyRecord as JSON (the secret's SHA-256, never the secret)
);
CREATE TABLE IF NOT EXISTS api_key_audit (
  ts_ms INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, key TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"#;

/// Managed keys in the SQLite file beside the ledger.
pub struct SqliteKeys {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteKeys {
    pub fn open(path: &Path) -> rusqlite::Result<SqliteKeys> {
        let conn = super::schema::open(path)?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteKeys {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection off the async runtime.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, BookError> + Send + 'static,
    ) -> Result<T, BookError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut c)
        })
        .await
        .map_err(|e| BookError::Unreachable(e.to_string()))?
    }
}

fn sql(e: rusqlite::Error) -> BookError {
    BookError::Unreachable(e.to_string())
}

fn version_in(c: &Connection) -> rusqlite::Result<u64> {
    c.query_row(
        "SELECT value FROM meta WHERE name = 'keys_version'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|v| v.unwrap_or(0) as u64)
}

#[async_trait]
impl KeyBook for SqliteKeys {
    async fn version(&self) -> Result<u64, BookError> {
        self.with(|c| version_in(c).map_err(sql)).await
    }

    async fn load(&self) -> Result<(u64, Vec<KeyRecord>), BookError> {
        self.with(|c| {
            let tx = c.transaction().map_err(sql)?;
            let v = version_in(&tx).map_err(sql)?;
            let mut st = tx.prepare("SELECT record FROM api_keys").map_err(sql)?;
            let rows: Vec<String> = st
                .query_map([], |r| r.get(0))
                .map_err(sql)?
                .collect::<Result<_, _>>()
                .map_err(sql)?;
            Ok((v, parse_records(rows.iter().map(String::as_str))))
        })
        .await
    }

    async fn get(&self, name: &str) -> Result<Option<String>, BookError> {
        let name = name.to_string();
        self.with(move |c| {
            c.query_row("SELECT record FROM api_keys WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql)
        })
        .await
    }

    async fn apply(&self, change: Change<'_>) -> Result<u64, BookError> {
        let name = change.name.to_string();
        let expected = change.expected.map(str::to_string);
        let new = change.new.map(str::to_string);
        let a = change.audit.clone();
        self.with(move |c| {
            let tx = c.transaction().map_err(sql)?;
            let current: Option<String> = tx
                .query_row(
                    "SELECT record FROM api_keys WHERE name = ?1",
                    [&name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql)?;
            if current != expected {
                return Err(BookError::Conflict);
            }
            match &new {
                Some(json) => tx.execute(
                    "INSERT OR REPLACE INTO api_keys (name, record) VALUES (?1, ?2)",
                    params![name, json],
                ),
                None => tx.execute("DELETE FROM api_keys WHERE name = ?1", [&name]),
            }
            .map_err(sql)?;
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('keys_version', 1) \
                 ON CONFLICT(name) DO UPDATE SET value = value + 1",
                [],
            )
            .map_err(sql)?;
            tx.execute(
                "INSERT INTO api_key_audit (ts_ms, actor, action, key, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![a.ts_ms, a.actor, a.action, a.key, a.detail.to_string()],
            )
            .map_err(sql)?;
            tx.execute(
                "DELETE FROM api_key_audit WHERE rowid <= \
                 (SELECT max(rowid) FROM api_key_audit) - ?1",
                [AUDIT_KEPT as i64],
            )
            .map_err(sql)?;
            let v = version_in(&tx).map_err(sql)?;
            tx.commit().map_err(sql)?;
            Ok(v)
        })
        .await
    }

    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, BookError> {
        self.with(move |c| {
            let mut st = c
                .prepare(
                    "SELECT ts_ms, actor, action, key, detail FROM api_key_audit \
                     ORDER BY rowid DESC LIMIT ?1",
                )
                .map_err(sql)?;
            let rows = st
                .query_map([limit as i64], |r| {
                    let detail: String = r.get(4)?;
                    Ok(AuditEntry {
                        ts_ms: r.get(0)?,
                        actor: r.get(1)?,
                        action: r.get(2)?,
                        key: r.get(3)?,
                        detail: serde_json::from_str(&detail).unwrap_or_default(),
                    })
                })
                .map_err(sql)?;
            rows.collect::<Result<_, _>>().map_err(sql)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str, key: &str) -> AuditEntry {
        AuditEntry {
            ts_ms: 1,
            actor: "test".into(),
            action: action.into(),
            key: key.into(),
            detail: serde_json::json!({}),
        }
    }

    #[tokio::test]
    async fn changes_are_compared_versioned_and_audited() {
        let dir = std::env::temp_dir().join(format!("tollgate-keys-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let book = SqliteKeys::open(&dir).unwrap();
        assert_eq!(book.version().await.unwrap(), 0);
        let rec = KeyRecord {
            name: "a".into(),
            sha256: crate::auth::hash_key("sk-a"),
            ..Default::default()
        };
        let json = serde_json::to_string(&rec).unwrap();
        let create = |e: &'static str| Change {
            name: "a",
            expected: None,
            new: Some(&json),
            audit: Box::leak(Box::new(entry(e, "a"))),
        };
        assert_eq!(book.apply(create("create")).await.unwrap(), 1);
        assert!(matches!(
            book.apply(create("create")).await,
            Err(BookError::Conflict)
        ));
        let (v, all) = book.load().await.unwrap();
        assert_eq!((v, all), (1, vec![rec]));
        let gone = Change {
            name: "a",
            expected: Some(&json),
            new: None,
            audit: &entry("delete", "a"),
        };
        assert_eq!(book.apply(gone).await.unwrap(), 2);
        assert_eq!(book.get("a").await.unwrap(), None);
        let log = book.audit(10).await.unwrap();
        let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["delete", "create"]);
        let _ = std::fs::remove_file(&dir);
    }
}
