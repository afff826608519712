//! The SQLite schema of the embedded store: the usage ledger (one row per request) and the
//! quota/budget counters, with the connections that open it.
//!
//! The gateway opens the file read-write with [`open`] (WAL journal, so `tollgate usage` can
//! read while it writes); the report opens it with [`open_read_only`]. [`SCHEMA`] is
//! idempotent and applied at every read-write open.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

/// How long a statement waits for another connection's lock before `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// Tables and indexes, executed with `execute_batch` at open; safe to run again.
pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS ledger (
  ts_ms INTEGER NOT NULL,          -- request start, unix milliseconds (UTC)
  request_id TEXT NOT NULL,
  key TEXT, user TEXT, team TEXT, route TEXT,
  requested_model TEXT, served_model TEXT, backend TEXT,
  input_tokens INTEGER NOT NULL, cached_input_tokens INTEGER NOT NULL,
  cache_creation_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL, total_tokens INTEGER NOT NULL,
  cost_usd REAL NOT NULL,           -- 0 when no price is known
  status INTEGER NOT NULL, latency_ms REAL NOT NULL, ttft_ms REAL,
  estimated INTEGER NOT NULL        -- 1: counted by the gateway (client cancelled / stream broke), not reported by the provider
);
CREATE INDEX IF NOT EXISTS ledger_ts ON ledger(ts_ms);
CREATE TABLE IF NOT EXISTS counters (
  name TEXT NOT NULL,               -- e.g. "key:alice:tokens_day"
  period INTEGER NOT NULL,          -- period start, unix seconds (UTC)
  value REAL NOT NULL,
  PRIMARY KEY (name, period)
);
"#;

/// The ledger's columns, in table order (what [`insert_rows`] writes).
pub const LEDGER_COLUMNS: &[&str] = &[
    "ts_ms",
    "request_id",
    "key",
    "user",
    "team",
    "route",
    "requested_model",
    "served_model",
    "backend",
    "input_tokens",
    "cached_input_tokens",
    "cache_creation_tokens",
    "output_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost_usd",
    "status",
    "latency_ms",
    "ttft_ms",
    "estimated",
];

pub(super) const INSERT: &str = "INSERT INTO ledger (ts_ms, request_id, key, user, team, route, \
     requested_model, served_model, backend, input_tokens, cached_input_tokens, \
     cache_creation_tokens, output_tokens, reasoning_tokens, total_tokens, cost_usd, status, \
     latency_ms, ttft_ms, estimated) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
     ?19, ?20)";

/// One request's line in the ledger.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LedgerRow {
    /// Request start, unix milliseconds (UTC).
    pub ts_ms: i64,
    pub request_id: String,
    // Shared with the request's context and the config (no copy per row).
    pub key: Option<Arc<str>>,
    pub user: Option<Arc<str>>,
    pub team: Option<Arc<str>>,
    pub route: Option<Arc<str>>,
    pub requested_model: Option<Arc<str>>,
    pub served_model: Option<Arc<str>>,
    pub backend: Option<Arc<str>>,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub cache_creation_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    pub total_tokens: u64,
    /// 0 when no price is known.
    pub cost_usd: f64,
    pub status: u16,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    /// Counted by the gateway (client cancelled, stream broke), not reported by the provider.
    pub estimated: bool,
}

/// A writer's page cache, in KiB (negative: SQLite reads it as KiB), where SQLite's default is
/// 2,000 KiB. The ledger appends: each write touches the rightmost pages of its table and
/// index, and a larger cache only keeps pages no write reads again (heaptrack, after 17k
/// requests: SQLite held 2.2 MiB, 1.8 MiB of it in cached pages). Reports read through
/// connections of their own.
const WRITER_CACHE_KIB: i64 = -512;

/// Opens (creating it if needed) the store at `path` for reading and writing: WAL journal,
/// `synchronous=NORMAL`, a 512 KiB page cache, a 5 s busy timeout, and [`SCHEMA`] applied.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
        log::warn!(
            "store {}: journal_mode is {mode}, not WAL; readers will block the writer",
            path.display()
        );
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Opens an existing store at `path` read-only, for reports. It reads a consistent snapshot
/// while the gateway writes (WAL); a missing file is an error (`SQLITE_CANTOPEN`).
pub fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}
