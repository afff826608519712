//! `tollgate usage`: the ledger report, read from the store named by a config file (read-only,
//! alongside a running gateway).

use super::report::{self, Cursor, Group, OutputFormat, Page, Query};
use super::schema;
use crate::config::Config;

pub struct Args {
    pub since: Option<String>,
    pub until: Option<String>,
    pub group_by: Option<String>,
    pub format: String,
    /// A page of at most this many rows (the admin listener's `GET /usage`).
    pub page: Option<PageArgs>,
}

/// `?limit=N&cursor=C`, as given.
pub struct PageArgs {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// Rows per page when `limit` is not given, and the most a page may ask for.
pub const DEFAULT_PAGE: usize = 1000;
pub const MAX_PAGE: usize = 10_000;

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
    report_page(path, a).map(|(text, _)| text)
}

/// [`report_at`], with the cursor of the next page when the report is paged and more follows.
pub fn report_page(
    path: &std::path::Path,
    a: &Args,
) -> Result<(String, Option<String>), ReportError> {
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
        page: a.page.as_ref().map(page).transpose()?,
    };
    let format = OutputFormat::parse(&a.format).map_err(|e| bad(format!("format: {e}")))?;
    let shown = path.display();
    let conn = schema::open_read_only(path)
        .map_err(|e| ReportError::Store(format!("the store {shown} cannot be read: {e}")))?;
    let (rows, next) =
        report::run_page(&conn, &q).map_err(|e| ReportError::Store(format!("{shown}: {e}")))?;
    let text = report::render(&rows, &report::columns(&q), format);
    Ok((text, next.map(|c| c.text())))
}

fn page(p: &PageArgs) -> Result<Page, ReportError> {
    let bad = ReportError::Args;
    let limit = match p.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => return Err(bad(format!("limit: must be 1 to {MAX_PAGE}"))),
        },
    };
    let after = p.cursor.as_deref().map(Cursor::parse).transpose();
    Ok(Page {
        limit,
        after: after.map_err(|e| bad(format!("cursor: {e}")))?,
    })
}
