//! The ledger's inserts, bound without copies. rusqlite binds each text with
//! `SQLITE_TRANSIENT` (SQLite frees the cell's last copy and allocates a new one: eight texts a
//! row) through a `dyn ToSql` per value: 5.9k instructions a row of the ledger writer's 12k
//! (callgrind, 16 clients). Here each value is bound in place (`SQLITE_STATIC`) on statements
//! prepared once for the writer's connection, and the bindings are cleared once a statement
//! has run, so SQLite keeps no pointer into rows that are then dropped.

use super::schema::{LedgerRow, INSERT, LEDGER_COLUMNS};
use rusqlite::{ffi, Connection, Transaction};
use std::ffi::{c_char, c_int, CStr};
use std::marker::PhantomData;

/// Rows per multi-row `INSERT`: one statement run for many rows (its setup, reset and
/// bookkeeping were ~40% of a row's cost); 20 parameters a row, far under SQLite's limit.
pub(crate) const CHUNK: usize = 32;

/// Appends `rows` to the ledger within `tx` (the caller commits): [`CHUNK`] at a time, the
/// rest one by one. Token counts past `i64::MAX` are stored as `i64::MAX`. Prepares its
/// statements each call: the ledger's writer keeps an [`Inserter`] instead.
pub fn insert_rows(tx: &Transaction, rows: &[LedgerRow]) -> rusqlite::Result<()> {
    Inserter::new(tx)?.insert(tx, rows)
}

/// `INSERT` of `n` rows: `VALUES (?1, …, ?20), (?21, …)`.
fn insert_sql(n: usize) -> String {
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

/// The multi-row and the one-row `INSERT` on one connection, which must outlive them.
pub struct Inserter<'c> {
    db: *mut ffi::sqlite3,
    many: Stmt,
    one: Stmt,
    _conn: PhantomData<&'c Connection>,
}

struct Stmt(*mut ffi::sqlite3_stmt);

impl Drop for Stmt {
    fn drop(&mut self) {
        // SAFETY: prepared by `prepare` on a connection that outlives the `Inserter`.
        unsafe { ffi::sqlite3_finalize(self.0) };
    }
}

impl<'c> Inserter<'c> {
    pub fn new(conn: &'c Connection) -> rusqlite::Result<Inserter<'c>> {
        // SAFETY: the handle is only used while `conn` lives (the lifetime `'c`).
        let db = unsafe { conn.handle() };
        Ok(Inserter {
            db,
            many: prepare(db, &insert_sql(CHUNK))?,
            one: prepare(db, &insert_sql(1))?,
            _conn: PhantomData,
        })
    }

    /// Appends `rows` within `tx`, a transaction on this inserter's connection (the caller
    /// commits): [`CHUNK`] at a time, the rest one by one. Token counts past `i64::MAX` are
    /// stored as `i64::MAX`.
    pub fn insert(&mut self, tx: &Transaction, rows: &[LedgerRow]) -> rusqlite::Result<()> {
        // SAFETY: compared, not used.
        if unsafe { tx.handle() } != self.db {
            return Err(failure(
                ffi::SQLITE_MISUSE,
                "a transaction on another connection",
            ));
        }
        let mut chunks = rows.chunks_exact(CHUNK);
        for chunk in &mut chunks {
            self.run(&self.many, chunk)?;
        }
        for row in chunks.remainder() {
            self.run(&self.one, std::slice::from_ref(row))?;
        }
        Ok(())
    }

    /// Binds `rows` to `stmt` (as many as it has places for), runs it, and unbinds.
    fn run(&self, stmt: &Stmt, rows: &[LedgerRow]) -> rusqlite::Result<()> {
        let mut b = Binder {
            stmt: stmt.0,
            at: 0,
            rc: ffi::SQLITE_OK,
        };
        rows.iter().for_each(|r| b.row(r));
        let mut rc = b.rc;
        // SAFETY: `stmt` is a live statement of `self.db`; every parameter it has was bound
        // above to memory that lives until the bindings are cleared below.
        unsafe {
            if rc == ffi::SQLITE_OK {
                rc = match ffi::sqlite3_step(stmt.0) {
                    ffi::SQLITE_DONE => ffi::SQLITE_OK,
                    other => other,
                };
            }
            ffi::sqlite3_reset(stmt.0);
            ffi::sqlite3_clear_bindings(stmt.0);
        }
        if rc == ffi::SQLITE_OK {
            return Ok(());
        }
        // SAFETY: the connection is open; its message is copied before any other call.
        let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.db)) };
        Err(failure(rc, &msg.to_string_lossy()))
    }
}

fn failure(rc: c_int, msg: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some(msg.to_string()))
}

fn prepare(db: *mut ffi::sqlite3, sql: &str) -> rusqlite::Result<Stmt> {
    let mut stmt = std::ptr::null_mut();
    let len = c_int::try_from(sql.len()).map_err(|_| failure(ffi::SQLITE_TOOBIG, "statement"))?;
    // SAFETY: `db` is an open connection; `sql` is valid for `len` bytes.
    let rc = unsafe {
        ffi::sqlite3_prepare_v3(
            db,
            sql.as_ptr().cast::<c_char>(),
            len,
            ffi::SQLITE_PREPARE_PERSISTENT,
            &mut stmt,
            std::ptr::null_mut(),
        )
    };
    if rc != ffi::SQLITE_OK || stmt.is_null() {
        // SAFETY: as above.
        let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) };
        return Err(failure(rc, &msg.to_string_lossy()));
    }
    Ok(Stmt(stmt))
}

/// Binds values to consecutive parameters; after a failure it binds nothing more.
struct Binder {
    stmt: *mut ffi::sqlite3_stmt,
    at: c_int,
    rc: c_int,
}

impl Binder {
    /// One row, in [`LEDGER_COLUMNS`] order.
    fn row(&mut self, r: &LedgerRow) {
        let before = self.at;
        self.int(r.ts_ms);
        self.text(Some(&r.request_id));
        for t in [
            &r.key,
            &r.user,
            &r.team,
            &r.route,
            &r.requested_model,
            &r.served_model,
            &r.backend,
        ] {
            self.text(t.as_deref());
        }
        for n in [
            r.input_tokens,
            r.cached_input_tokens,
            r.cache_creation_tokens,
            r.output_tokens,
            r.reasoning_tokens,
            r.total_tokens,
        ] {
            self.int(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.real(Some(r.cost_usd));
        self.int(i64::from(r.status));
        self.real(Some(r.latency_ms));
        self.real(r.ttft_ms);
        self.int(i64::from(r.estimated));
        debug_assert_eq!((self.at - before) as usize, LEDGER_COLUMNS.len());
    }

    /// The next parameter's index, unless a bind failed.
    fn next(&mut self) -> Option<c_int> {
        self.at += 1;
        (self.rc == ffi::SQLITE_OK).then_some(self.at)
    }

    fn int(&mut self, v: i64) {
        if let Some(i) = self.next() {
            // SAFETY: a live statement; SQLite range-checks the index.
            self.rc = unsafe { ffi::sqlite3_bind_int64(self.stmt, i, v) };
        }
    }

    fn real(&mut self, v: Option<f64>) {
        if let Some(i) = self.next() {
            // SAFETY: as in `int`.
            self.rc = unsafe {
                match v {
                    Some(v) => ffi::sqlite3_bind_double(self.stmt, i, v),
                    None => ffi::sqlite3_bind_null(self.stmt, i),
                }
            };
        }
    }

    fn text(&mut self, v: Option<&str>) {
        let Some(i) = self.next() else { return };
        let Some(s) = v else {
            // SAFETY: as in `int`.
            self.rc = unsafe { ffi::sqlite3_bind_null(self.stmt, i) };
            return;
        };
        let Ok(len) = c_int::try_from(s.len()) else {
            self.rc = ffi::SQLITE_TOOBIG;
            return;
        };
        // SAFETY: as in `int`; the text is not copied (`SQLITE_STATIC`): it lives in a row
        // the caller holds until `Inserter::run` has cleared the bindings.
        self.rc = unsafe {
            ffi::sqlite3_bind_text(
                self.stmt,
                i,
                s.as_ptr().cast::<c_char>(),
                len,
                ffi::SQLITE_STATIC(),
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::SCHEMA;
    use std::sync::Arc;

    fn row(i: i64) -> LedgerRow {
        let name = |s: &str| Some(Arc::<str>::from(format!("{s}-{i}")));
        LedgerRow {
            ts_ms: 1_700_000_000_000 + i,
            request_id: format!("req-{i}-ünï"),
            key: name("key"),
            user: (i % 3 == 0).then(|| Arc::from("")),
            team: None,
            route: name("route"),
            requested_model: name("model"),
            served_model: name("served"),
            backend: name("backend"),
            input_tokens: i as u64,
            cached_input_tokens: 1,
            cache_creation_tokens: 2,
            output_tokens: 3,
            reasoning_tokens: 4,
            total_tokens: if i == 5 { u64::MAX } else { 10 + i as u64 },
            cost_usd: i as f64 * 0.25,
            status: 200 + i as u16,
            latency_ms: 1.5,
            ttft_ms: (i % 2 == 0).then_some(0.75),
            estimated: i % 4 == 0,
        }
    }

    /// Every column of a row as SQLite stores it, in table order.
    fn read_back(conn: &Connection) -> Vec<Vec<rusqlite::types::Value>> {
        let cols = LEDGER_COLUMNS.join(", ");
        let mut q = conn
            .prepare(&format!("SELECT {cols} FROM ledger ORDER BY rowid"))
            .unwrap();
        q.query_map([], |r| {
            (0..LEDGER_COLUMNS.len()).map(|c| r.get(c)).collect()
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    #[test]
    fn rows_are_stored_as_rusqlite_stores_them() {
        // 70 rows: two statements of 32 and six of one. The oracle binds through rusqlite.
        let rows: Vec<LedgerRow> = (0..70).map(row).collect();
        let ours = Connection::open_in_memory().unwrap();
        ours.execute_batch(SCHEMA).unwrap();
        let mut ins = Inserter::new(&ours).unwrap();
        for part in [&rows[..3], &rows[3..]] {
            let tx = ours.unchecked_transaction().unwrap();
            ins.insert(&tx, part).unwrap();
            tx.commit().unwrap();
        }
        let oracle = Connection::open_in_memory().unwrap();
        oracle.execute_batch(SCHEMA).unwrap();
        let sql = insert_sql(1);
        for r in &rows {
            let values: [&dyn rusqlite::ToSql; 20] = [
                &r.ts_ms,
                &r.request_id,
                &r.key.as_deref(),
                &r.user.as_deref(),
                &r.team.as_deref(),
                &r.route.as_deref(),
                &r.requested_model.as_deref(),
                &r.served_model.as_deref(),
                &r.backend.as_deref(),
                &i64::try_from(r.input_tokens).unwrap_or(i64::MAX),
                &i64::try_from(r.cached_input_tokens).unwrap_or(i64::MAX),
                &i64::try_from(r.cache_creation_tokens).unwrap_or(i64::MAX),
                &i64::try_from(r.output_tokens).unwrap_or(i64::MAX),
                &i64::try_from(r.reasoning_tokens).unwrap_or(i64::MAX),
                &i64::try_from(r.total_tokens).unwrap_or(i64::MAX),
                &r.cost_usd,
                &r.status,
                &r.latency_ms,
                &r.ttft_ms,
                &r.estimated,
            ];
            oracle.execute(&sql, values.as_slice()).unwrap();
        }
        let got = read_back(&ours);
        assert_eq!(got.len(), 70);
        assert_eq!(got, read_back(&oracle));
    }

    #[test]
    fn a_transaction_on_another_connection_is_refused() {
        let a = Connection::open_in_memory().unwrap();
        let b = Connection::open_in_memory().unwrap();
        a.execute_batch(SCHEMA).unwrap();
        b.execute_batch(SCHEMA).unwrap();
        let mut ins = Inserter::new(&a).unwrap();
        let tx = b.unchecked_transaction().unwrap();
        assert!(ins.insert(&tx, &[row(1)]).is_err());
    }
}
