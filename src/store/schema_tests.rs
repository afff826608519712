//! The schema's tests: open modes, the ledger's columns round-tripped through `insert_rows`.

use super::insert::{insert_rows, CHUNK};
use super::schema::*;
use rusqlite::Connection;
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
        let cache: i64 = conn
            .query_row("PRAGMA cache_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(cache, -512, "a 512 KiB page cache");
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
