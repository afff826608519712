//! `tollgate usage`: the ledger report, read from the store named by a config file (read-only,
//! alongside a running gateway).

use super::report::{self, Group, OutputFormat, Query};
use super::schema;
use crate::config::{Config, StoreKind};

pub struct Args {
    pub since: Option<String>,
    pub until: Option<String>,
    pub group_by: Option<String>,
    pub format: String,
}

/// The report as text, or what is wrong with the arguments or the store.
pub fn report(cfg: &Config, a: &Args) -> Result<String, String> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let time = |s: &Option<String>, flag: &str| {
        s.as_deref()
            .map(|s| report::parse_time(s, now_ms).map_err(|e| format!("--{flag}: {e}")))
            .transpose()
    };
    let q = Query {
        since_ms: time(&a.since, "since")?,
        until_ms: time(&a.until, "until")?,
        group_by: match &a.group_by {
            Some(g) => Group::parse_list(g).map_err(|e| format!("--group-by: {e}"))?,
            None => Vec::new(),
        },
    };
    let format = OutputFormat::parse(&a.format).map_err(|e| format!("--format: {e}"))?;
    let path = match &cfg.store.kind {
        StoreKind::Sqlite { path } | StoreKind::Redis { path, .. } => path,
    };
    let conn = schema::open_read_only(std::path::Path::new(path))
        .map_err(|e| format!("the store {path} cannot be read: {e}"))?;
    let rows = report::run(&conn, &q).map_err(|e| format!("{path}: {e}"))?;
    Ok(report::render(&rows, &report::columns(&q), format))
}
