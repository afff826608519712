//! The SQLite schema of the embedded store: the usage ledger (one row per request) and the
//! quota/budget counters, with the connections that open it.
//!
//! The gateway opens the file read-write with [`open`] (WAL journal, so `tollgate usage` can
//! read while it writes); the report opens it with [`open_read_only`]. [`SCHEMA`] is
//! idempotent and applied at every read-write open.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction};
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

const INSERT: &str = "INSERT INTO ledger (ts_ms, request_id, key, user, team, route, \
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

/// Opens (creating it if needed) the store at `path` for reading and writing: WAL journal,
/// `synchronous=NORMAL`, a 5 s busy timeout, and [`SCHEMA`] applied.
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

/// Rows per multi-row `INSERT`: one statement run for many rows (its setup, reset and
/// bookkeeping were ~40% of a row's cost); 20 parameters a row, far under SQLite's limit.
pub(super) const CHUNK: usize = 32;

/// Appends `rows` to the ledger within `tx` (the caller commits): [`CHUNK`] at a time, the
/// rest one by one. Token counts past `i64::MAX` are stored as `i64::MAX`. Prepares its
/// statements each call: the ledger's writer keeps an `Inserter` instead.
pub fn insert_rows(tx: &Transaction, rows: &[LedgerRow]) -> rusqlite::Result<()> {
    super::insert::Inserter::new(tx)?.insert(tx, rows)
}

/// `INSERT` of `n` rows: `VALUES (?1, …, ?20), (?21, …)`.
pub(super) fn insert_sql(n: usize) -> String {
    let cols = LEDGER_COLUMNS.len();
    let mut sql = INSERT[..INSERT.find("VALUES").unwrap_or(INSERT.len())].to_string();
    sql.push_str("VALUES ");
    for row in 0..n {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for c in 1..=cols {
            let sep = if c == cols { ")" } else { ", " };
            sql.push_str(&format!("?{}{sep}", row * cols + c));
        }
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fresh path under the temp dir; the guard removes the db and its WAL files.
    struct TempDb(PathBuf);

    impl TempDb {
        fn new() -> TempDb {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let name = format!("tollgate-store-{}-{n}.db", std::process::id());
            let t = TempDb(std::env::temp_dir().join(name));
            t.remove();
            t
        }

        fn remove(&self) {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut p = self.0.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            self.remove();
        }
    }

    fn row(ts_ms: i64, id: &str) -> LedgerRow {
        LedgerRow {
            ts_ms,
            request_id: id.into(),
            key: Some("alice".into()),
            requested_model: Some("gpt-4o".into()),
            input_tokens: 10,
            output_tokens: 5,
            total_tokens: 15,
            cost_usd: 0.001,
            status: 200,
            latency_ms: 12.5,
            ..LedgerRow::default()
        }
    }

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM ledger", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn schema_is_idempotent() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let cols: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('ledger') ORDER BY cid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(cols, LEDGER_COLUMNS);
    }

    #[test]
    fn insert_round_trips() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let mut big = row(1_000, "b");
        big.input_tokens = u64::MAX;
        big.ttft_ms = Some(3.25);
        big.estimated = true;
        big.status = 499;
        let tx = conn.transaction().unwrap();
        insert_rows(&tx, &[row(2_000, "a"), big]).unwrap();
        insert_rows(&tx, &[]).unwrap();
        tx.commit().unwrap();
        assert_eq!(count(&conn), 2);
        let (input, ttft, est, status): (i64, Option<f64>, bool, u16) = conn
            .query_row(
                "SELECT input_tokens, ttft_ms, estimated, status FROM ledger WHERE request_id = 'b'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(
            (input, ttft, est, status),
            (i64::MAX, Some(3.25), true, 499)
        );
        let (ttft, est): (Option<f64>, bool) = conn
            .query_row(
                "SELECT ttft_ms, estimated FROM ledger WHERE request_id = 'a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((ttft, est), (None, false));
    }

    /// Rows past a multi-row chunk: every row lands, each column in its place, in order.
    #[test]
    fn rows_in_chunks_and_the_rest_round_trip_in_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let rows: Vec<LedgerRow> = (0..2 * CHUNK as i64 + 5)
            .map(|i| {
                let mut r = row(i, &format!("r{i}"));
                r.output_tokens = i as u64 * 3;
                r.ttft_ms = (i % 2 == 0).then_some(i as f64);
                r.served_model = Some(format!("m{i}").into());
                r
            })
            .collect();
        let tx = conn.transaction().unwrap();
        insert_rows(&tx, &rows).unwrap();
        tx.commit().unwrap();
        let mut q = conn
            .prepare("SELECT ts_ms, request_id, output_tokens, ttft_ms, served_model, key FROM ledger ORDER BY rowid")
            .unwrap();
        let got: Vec<(i64, String, i64, Option<f64>, String, String)> = q
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got.len(), rows.len());
        for (i, g) in got.iter().enumerate() {
            let i64_ = i as i64;
            let want = (
                i64_,
                format!("r{i}"),
                i64_ * 3,
                (i % 2 == 0).then_some(i as f64),
                format!("m{i}"),
            );
            assert_eq!((g.0, g.1.clone(), g.2, g.3, g.4.clone()), want);
            assert_eq!(g.5, "alice", "row {i}");
        }
    }

    #[test]
    fn open_uses_wal_and_reopens() {
        let db = TempDb::new();
        {
            let mut conn = open(&db.0).unwrap();
            let mode: String = conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            let sync: i64 = conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap();
            assert_eq!(sync, 1, "NORMAL");
            let tx = conn.transaction().unwrap();
            insert_rows(&tx, &[row(1, "a")]).unwrap();
            tx.commit().unwrap();
        }
        // Reopening applies the schema again over existing data.
        let conn = open(&db.0).unwrap();
        assert_eq!(count(&conn), 1);
    }

    #[test]
    fn read_only_reads_while_the_writer_writes() {
        let db = TempDb::new();
        let mut writer = open(&db.0).unwrap();
        let tx = writer.transaction().unwrap();
        insert_rows(&tx, &[row(1, "a"), row(2, "b")]).unwrap();
        tx.commit().unwrap();

        let reader = open_read_only(&db.0).unwrap();
        assert_eq!(count(&reader), 2);
        // A write transaction in progress does not block the reader, which sees the last
        // committed state.
        let tx = writer.transaction().unwrap();
        insert_rows(&tx, &[row(3, "c")]).unwrap();
        assert_eq!(count(&reader), 2);
        tx.commit().unwrap();
        assert_eq!(count(&reader), 3);
        // The reader cannot write.
        assert!(reader.execute("DELETE FROM ledger", []).is_err());
    }

    #[test]
    fn read_only_opens_a_closed_wal_store() {
        let db = TempDb::new();
        {
            let mut conn = open(&db.0).unwrap();
            let tx = conn.transaction().unwrap();
            insert_rows(&tx, &[row(1, "a")]).unwrap();
            tx.commit().unwrap();
        }
        let reader = open_read_only(&db.0).unwrap();
        assert_eq!(count(&reader), 1);
    }

    #[test]
    fn read_only_does_not_create_a_missing_file() {
        let db = TempDb::new();
        assert!(open_read_only(&db.0).is_err());
        assert!(!db.0.exists());
    }
}
