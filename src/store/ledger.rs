//! The ledger writer: rows go through a bounded queue (`crate::queue`) to one thread that writes them to
//! SQLite in a transaction every flush interval (or every [`BATCH`] rows), so no request ever
//! waits on the disk. The same transaction saves the current hour, day and month windows of
//! the limit counters, which [`load_counters`] restores at start: quotas and budgets survive a
//! restart, and `kill -9` loses at most one flush interval of rows and counts.

use super::insert::Inserter;
use super::schema::{self, LedgerRow};
use crate::clock::{self, Period};
use crate::limits::counters::{Local, Window};
use crate::queue::{self, Receiver, Sender};
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Rows written in one transaction at most.
const BATCH: usize = 2048;
const QUEUE: usize = 64 * 1024;

// A row travels by value: boxed, it was an allocation on a request's thread and a free on the
// writer's (jemalloc's costly cross-thread case) every request; std's channel holds messages
// in blocks made as they come, so the larger slot costs nothing while the queue is empty.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Row(LedgerRow),
    /// Write everything queued, then answer.
    Flush(SyncSender<()>),
}

pub struct Ledger {
    path: PathBuf,
    interval: Duration,
    counters: Arc<Local>,
    // Started on first use: Pingora's daemon mode forks after the config is loaded.
    tx: OnceLock<Option<Sender<Msg>>>,
    dropped: AtomicU64,
}

impl Ledger {
    pub fn new(path: &Path, interval: Duration, counters: Arc<Local>) -> Ledger {
        Ledger {
            path: path.to_path_buf(),
            interval,
            counters,
            tx: OnceLock::new(),
            dropped: AtomicU64::new(0),
        }
    }

    fn sender(&self) -> Option<&Sender<Msg>> {
        self.tx.get_or_init(|| self.start()).as_ref()
    }

    /// Queues a row; when the queue is full the row is dropped and counted, never waited for.
    pub fn record(&self, row: LedgerRow) {
        let Some(tx) = self.sender() else { return };
        if let Err(TrySendError::Full(_)) = tx.try_send(Msg::Row(row)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Rows dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes everything queued so far, and the counters; blocks until done (shutdown).
    pub fn flush(&self) {
        let Some(tx) = self.sender() else { return };
        let (done, wait) = sync_channel(1);
        if tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(Duration::from_secs(10));
        }
    }

    fn start(&self) -> Option<Sender<Msg>> {
        let conn = match schema::open(&self.path) {
            Ok(c) => c,
            Err(e) => {
                log::error!(
                    "store {}: {e}; the usage ledger is off",
                    self.path.display()
                );
                return None;
            }
        };
        let (tx, rx) = queue::bounded(QUEUE);
        let (interval, counters) = (self.interval, self.counters.clone());
        std::thread::Builder::new()
            .name("ledger".into())
            .spawn(move || writer(conn, rx, interval, &counters))
            .ok()?;
        Some(tx)
    }
}

/// Sleeps a flush interval, then drains the queue: senders never wake this thread (no futex
/// wake and context switch per request). A flush request is answered within `FLUSH_POLL`.
fn writer(conn: Connection, rx: Receiver<Msg>, interval: Duration, counters: &Local) {
    // Prepared once; should that fail, each write prepares its own (and reports why).
    let mut ins = Inserter::new(&conn)
        .map_err(|e| log::warn!("store: preparing the ledger's insert: {e}"))
        .ok();
    let mut rows: Vec<LedgerRow> = Vec::with_capacity(BATCH);
    let mut due = Instant::now() + interval;
    loop {
        std::thread::sleep(FLUSH_POLL.min(interval));
        let mut acks = Vec::new();
        let closed = loop {
            match rx.try_recv() {
                Ok(Msg::Row(r)) => {
                    rows.push(r);
                    if rows.len() >= BATCH {
                        write(&conn, ins.as_mut(), &mut rows, counters);
                    }
                }
                Ok(Msg::Flush(done)) => acks.push(done),
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        if closed || !acks.is_empty() || Instant::now() >= due {
            write(&conn, ins.as_mut(), &mut rows, counters);
            due = Instant::now() + interval;
        }
        for done in acks {
            let _ = done.send(());
        }
        if closed {
            return;
        }
    }
}

/// How often the writer looks for a flush request between writes.
const FLUSH_POLL: Duration = Duration::from_millis(20);

/// One transaction: the queued rows and the durable counters. A failure is logged and the
/// rows are kept for the next try (bounded by the queue).
fn write(
    conn: &Connection,
    ins: Option<&mut Inserter>,
    rows: &mut Vec<LedgerRow>,
    counters: &Local,
) {
    let result = (|| {
        // Unchecked: the inserter borrows the connection too; nothing here nests transactions.
        let tx = conn.unchecked_transaction()?;
        match ins {
            Some(ins) => ins.insert(&tx, rows)?,
            None => super::insert::insert_rows(&tx, rows)?,
        }
        save_counters(&tx, counters)?;
        tx.commit()
    })();
    match result {
        Ok(()) => rows.clear(),
        Err(e) => {
            log::warn!("store: ledger write failed: {e}");
            if rows.len() > QUEUE {
                rows.clear();
            }
        }
    }
}

/// Counters kept across restarts: those counting an hour or longer.
fn durable(name: &str) -> Option<Period> {
    match name.rsplit(':').next()? {
        "hour" => Some(Period::Hour),
        "day" => Some(Period::Day),
        "month" => Some(Period::Month),
        _ => None,
    }
}

fn save_counters(tx: &rusqlite::Transaction, counters: &Local) -> rusqlite::Result<()> {
    let mut up = tx.prepare_cached(
        "INSERT INTO counters (name, period, value) VALUES (?1, ?2, ?3)
         ON CONFLICT(name, period) DO UPDATE SET value = excluded.value",
    )?;
    for (name, w) in counters.snapshot() {
        if durable(&name).is_some() {
            up.execute(params![name, w.start, w.value])?;
        }
    }
    Ok(())
}

/// The durable counters' current windows, to start the in-memory counters from.
pub fn load_counters(path: &Path) -> rusqlite::Result<Vec<(String, Window)>> {
    let conn = schema::open(path)?;
    let now = clock::now();
    let mut q = conn.prepare("SELECT name, period, value FROM counters")?;
    let rows = q.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, f64>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (name, start, value) = row?;
        if durable(&name).is_some_and(|p| p.window(now).0 == start) {
            out.push((name, Window { start, value }));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::counters::{Charge, Counters};

    #[tokio::test]
    async fn rows_and_counters_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("tollgate-ledger-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let local = Arc::new(Local::default());
        let charge = |name: &str, period| Charge {
            name: name.into(),
            period,
            limit: 1e9,
            amount: 42.0,
        };
        let charges = [
            charge("key:a:tokens:day", Period::Day),
            charge("key:a:tokens:minute", Period::Minute),
        ];
        local.reserve(clock::now(), &charges).await.unwrap();
        let ledger = Ledger::new(&path, Duration::from_secs(60), local);
        ledger.record(LedgerRow {
            request_id: "r1".into(),
            total_tokens: 7,
            ..Default::default()
        });
        ledger.flush();
        let back = load_counters(&path).unwrap();
        assert_eq!(back.len(), 1, "only the day counter is durable: {back:?}");
        assert_eq!(
            (back[0].0.as_str(), back[0].1.value),
            ("key:a:tokens:day", 42.0)
        );
        let conn = schema::open_read_only(&path).unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT total_tokens FROM ledger WHERE request_id = 'r1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 7);
    }
}
