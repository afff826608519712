//! `tollgate usage`: the ledger report, read from the store named by a config file (read-only,
//! alongside a running gateway).

use super::report::{self, Group, OutputFormat, Query};
use super::schema;
use crate::config::Config;

pub struct Args {
    pub since: Option<String>,
    pub until: Option<String>,
    pub group_by: Option<String>,
    pub format: String,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The arguments are wrong (the caller's mistake).
    #[error("{0}")]
    Args(String),
    /// The store cannot be read.
    #[error("{0}")]
    Store(String),
}

/// The report as text, from the store named by `cfg`.
pub fn report(cfg: &Config, a: &Args) -> Result<String, ReportError> {
    report_at(std::path::Path::new(cfg.store.ledger_path()), a)
}

/// The report as text, from the SQLite file at `path` (opened read-only).
pub fn report_at(path: &std::path::Path, a: &Args) -> Result<String, ReportError> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let bad = ReportError::Args;
    let time = |s: &Option<String>, flag: &str| {
        s.as_deref()
            .map(|s| crate::clock::parse_time(s, now_ms).map_err(|e| bad(format!("{flag}: {e}"))))
            .transpose()
    };
    let q = Query {
        since_ms: time(&a.since, "since")?,
        until_ms: time(&a.until, "until")?,
        group_by: match &a.group_by {
            Some(g) => Group::parse_list(g).map_err(|e| bad(format!("group-by: {e}")))?,
            None => Vec::new(),
        },
    };
    let format = OutputFormat::parse(&a.format).map_err(|e| bad(format!("format: {e}")))?;
    let shown = path.display();
    let conn = schema::open_read_only(path)
        .map_err(|e| ReportError::Store(format!("the store {shown} cannot be read: {e}")))?;
    let rows = report::run(&conn, &q).map_err(|e| ReportError::Store(format!("{shown}: {e}")))?;
    Ok(report::render(&rows, &report::columns(&q), format))
}
