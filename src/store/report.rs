//! `tollgate usage`: the ledger over a time window, row by row or summed by groups, as a
//! table, CSV or JSON.
//!
//! The window is `[since, until)` on the request start (`ts_ms`). Without groups every
//! ledger row is listed in time order, with `ts` (RFC 3339, UTC, milliseconds) added; with
//! groups ([`Group`]) the rows are summed per distinct value of the group columns in SQL.
//! Times on the command line are read by [`parse_time`] (`crate::clock`).

use rusqlite::types::ValueRef;
use rusqlite::{params_from_iter, Connection};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Number, Value};

use super::schema::LEDGER_COLUMNS;
use crate::clock::format_rfc3339_ms;

/// What `tollgate usage` asks of the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Inclusive lower bound on `ts_ms`.
    pub since_ms: Option<i64>,
    /// Exclusive upper bound on `ts_ms`.
    pub until_ms: Option<i64>,
    /// Empty: one output row per ledger row.
    pub group_by: Vec<Group>,
    /// At most this many rows, after `after` (the admin listener pages; the command does not).
    pub page: Option<Page>,
}

/// One page of a report: `limit` rows after the cursor a previous page gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub limit: usize,
    pub after: Option<Cursor>,
}

/// Where a page ends: the last ledger row's `(ts_ms, rowid)` (rows), or how many groups came
/// before (grouped reports, which are small). Written as `ts.rowid` or `+offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    Row(i64, i64),
    Offset(usize),
}

impl Cursor {
    pub fn parse(s: &str) -> Result<Cursor, String> {
        let bad = || format!("invalid cursor {s:?}: pass the `next_cursor` of the previous page");
        if let Some(n) = s.strip_prefix('+') {
            return n.parse().map(Cursor::Offset).map_err(|_| bad());
        }
        let (ts, id) = s.split_once('.').ok_or_else(bad)?;
        Ok(Cursor::Row(
            ts.parse().map_err(|_| bad())?,
            id.parse().map_err(|_| bad())?,
        ))
    }

    pub fn text(&self) -> String {
        match self {
            Cursor::Row(ts, id) => format!("{ts}.{id}"),
            Cursor::Offset(n) => format!("+{n}"),
        }
    }
}

/// A column the report can sum by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    Key,
    User,
    Team,
    /// The model the client asked for (`requested_model`).
    Model,
    Backend,
    /// The UTC day of the request start, `YYYY-MM-DD`.
    Day,
}

impl Group {
    pub const ALL: [Group; 6] = [
        Group::Key,
        Group::User,
        Group::Team,
        Group::Model,
        Group::Backend,
        Group::Day,
    ];

    /// The name on the command line and of the output column.
    pub fn name(self) -> &'static str {
        match self {
            Group::Key => "key",
            Group::User => "user",
            Group::Team => "team",
            Group::Model => "model",
            Group::Backend => "backend",
            Group::Day => "day",
        }
    }

    /// The SQL expression grouped on (constant text: never user input).
    fn expr(self) -> &'static str {
        match self {
            Group::Key => r#""key""#,
            Group::User => r#""user""#,
            Group::Team => r#""team""#,
            Group::Model => r#""requested_model""#,
            Group::Backend => r#""backend""#,
            // Midnight UTC by floor division (SQLite's `/` truncates towards zero).
            Group::Day => {
                "date((ts_ms - ((ts_ms % 86400000) + 86400000) % 86400000) / 1000, 'unixepoch')"
            }
        }
    }

    /// One group name, case-insensitive.
    pub fn parse(s: &str) -> Result<Group, String> {
        let s = s.trim();
        Group::ALL
            .into_iter()
            .find(|g| g.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown group {s:?}: expected one of {}", allowed_groups()))
    }

    /// A comma-separated list (`key,day`); unknown, empty or repeated names are errors.
    pub fn parse_list(s: &str) -> Result<Vec<Group>, String> {
        if s.trim().is_empty() {
            return Err(format!(
                "no group given: expected one or more of {}",
                allowed_groups()
            ));
        }
        let mut out = Vec::new();
        for part in s.split(',') {
            if part.trim().is_empty() {
                return Err(format!("empty group name in {s:?}"));
            }
            let g = Group::parse(part)?;
            if out.contains(&g) {
                return Err(format!("group {:?} given twice", g.name()));
            }
            out.push(g);
        }
        Ok(out)
    }
}

fn allowed_groups() -> String {
    Group::ALL.map(Group::name).join(", ")
}

/// The summed columns of a grouped report, after the group columns, with their SQL.
const AGGREGATES: &[(&str, &str)] = &[
    ("requests", "COUNT(*)"),
    ("input_tokens", "SUM(input_tokens)"),
    ("cached_input_tokens", "SUM(cached_input_tokens)"),
    ("cache_creation_tokens", "SUM(cache_creation_tokens)"),
    ("output_tokens", "SUM(output_tokens)"),
    ("reasoning_tokens", "SUM(reasoning_tokens)"),
    ("total_tokens", "SUM(total_tokens)"),
    // Rounded to 1e-10 USD: a sum of floats otherwise prints as 0.00022999999999999998.
    ("cost_usd", "ROUND(TOTAL(cost_usd), 10)"),
    ("estimated_requests", "SUM(estimated <> 0)"),
];

/// The output columns of `q`, in order: `ts` then the ledger's columns, or the group
/// columns then the sums.
pub fn columns(q: &Query) -> Vec<&'static str> {
    if q.group_by.is_empty() {
        std::iter::once("ts")
            .chain(LEDGER_COLUMNS.iter().copied())
            .collect()
    } else {
        q.group_by
            .iter()
            .map(|g| g.name())
            .chain(AGGREGATES.iter().map(|(name, _)| *name))
            .collect()
    }
}

/// Report rows, each an object keyed by [`columns`].
pub type Rows = Vec<Map<String, Value>>;

/// Runs `q` over the ledger; each row an object keyed by [`columns`]`(q)`. With a page, also
/// the cursor of the next one when more rows follow.
pub fn run(conn: &Connection, q: &Query) -> rusqlite::Result<Vec<Map<String, Value>>> {
    run_page(conn, q).map(|(rows, _)| rows)
}

/// [`run`], with the next page's cursor (`None`: this is the last page, or there are no pages).
pub fn run_page(conn: &Connection, q: &Query) -> rusqlite::Result<(Rows, Option<Cursor>)> {
    let (sql, names, args) = sql_of(q);
    let grouped = !q.group_by.is_empty();
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(args))?;
    let mut out = Vec::new();
    let mut last_row = None;
    let limit = q.page.as_ref().map_or(usize::MAX, |p| p.limit);
    while let Some(row) = rows.next()? {
        if out.len() == limit {
            let next = match (grouped, last_row) {
                (false, Some((ts, id))) => Cursor::Row(ts, id),
                _ => Cursor::Offset(offset_of(q) + out.len()),
            };
            return Ok((out, Some(next)));
        }
        let mut m = Map::new();
        if !grouped {
            let ts: i64 = row.get("ts_ms")?;
            last_row = Some((ts, row.get::<_, i64>("rowid")?));
            m.insert("ts".into(), Value::String(format_rfc3339_ms(ts)));
        }
        for (i, name) in names.iter().enumerate() {
            let v = match row.get_ref(i)? {
                ValueRef::Integer(n) if !grouped && *name == "estimated" => Value::Bool(n != 0),
                v => json_value(v),
            };
            m.insert((*name).to_owned(), v);
        }
        out.push(m);
    }
    Ok((out, None))
}

fn offset_of(q: &Query) -> usize {
    match q.page.as_ref().and_then(|p| p.after) {
        Some(Cursor::Offset(n)) => n,
        _ => 0,
    }
}

/// The statement for `q`, its output columns and its arguments. A page asks for one row more
/// than it shows, to know whether another page follows.
fn sql_of(q: &Query) -> (String, Vec<&'static str>, Vec<i64>) {
    let mut conds = Vec::new();
    let mut args = Vec::new();
    if let Some(since) = q.since_ms {
        conds.push("ts_ms >= ?");
        args.push(since);
    }
    if let Some(until) = q.until_ms {
        conds.push("ts_ms < ?");
        args.push(until);
    }
    if let Some(Cursor::Row(ts, id)) = q.page.as_ref().and_then(|p| p.after) {
        conds.push("(ts_ms, rowid) > (?, ?)");
        args.extend([ts, id]);
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    let paged = match &q.page {
        Some(p) => format!(
            " LIMIT {} OFFSET {}",
            p.limit.saturating_add(1),
            offset_of(q)
        ),
        None => String::new(),
    };
    if q.group_by.is_empty() {
        let select = (LEDGER_COLUMNS.iter())
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let sql =
            format!("SELECT {select}, rowid FROM ledger{filter} ORDER BY ts_ms, rowid{paged}");
        return (sql, LEDGER_COLUMNS.to_vec(), args);
    }
    let groups: Vec<&str> = q.group_by.iter().map(|g| g.expr()).collect();
    let select = (q.group_by.iter())
        .map(|g| format!("{} AS \"{}\"", g.expr(), g.name()))
        .chain(
            AGGREGATES
                .iter()
                .map(|(name, e)| format!("{e} AS \"{name}\"")),
        )
        .collect::<Vec<_>>()
        .join(", ");
    let keys = groups.join(", ");
    let sql = format!("SELECT {select} FROM ledger{filter} GROUP BY {keys} ORDER BY {keys}{paged}");
    (sql, columns(q), args)
}

fn json_value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::from(n),
        ValueRef::Real(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(hex::encode(b)),
    }
}

// ---- Output ----

/// How the report is printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// RFC 4180 fields, a header line first.
    Csv,
    /// A pretty-printed array of objects.
    Json,
}

impl OutputFormat {
    pub fn parse(s: &str) -> Result<OutputFormat, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            _ => Err(format!("unknown format {s:?}: expected table, csv or json")),
        }
    }
}

/// `rows` as text in `columns` order (a column missing from a row is null). Ends with a
/// newline.
pub fn render(rows: &[Map<String, Value>], columns: &[&str], f: OutputFormat) -> String {
    match f {
        OutputFormat::Json => render_json(rows, columns),
        OutputFormat::Csv => render_csv(rows, columns),
        OutputFormat::Table => render_table(rows, columns),
    }
}

/// A row serialised with its keys in column order (`serde_json::Map` sorts them).
struct Ordered<'a> {
    row: &'a Map<String, Value>,
    columns: &'a [&'a str],
}

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.columns.len()))?;
        for c in self.columns {
            m.serialize_entry(c, self.row.get(*c).unwrap_or(&Value::Null))?;
        }
        m.end()
    }
}

fn render_json(rows: &[Map<String, Value>], columns: &[&str]) -> String {
    let ordered: Vec<Ordered> = rows.iter().map(|row| Ordered { row, columns }).collect();
    let mut out = serde_json::to_string_pretty(&ordered).expect("JSON values serialise");
    out.push('\n');
    out
}

fn render_csv(rows: &[Map<String, Value>], columns: &[&str]) -> String {
    let mut out = String::new();
    let line = |out: &mut String, fields: &mut dyn Iterator<Item = String>| {
        for (i, f) in fields.enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_field(out, &f);
        }
        out.push('\n');
    };
    line(&mut out, &mut columns.iter().map(|c| (*c).to_owned()));
    for row in rows {
        let mut fields = columns.iter().map(|c| match row.get(*c) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        });
        line(&mut out, &mut fields);
    }
    out
}

/// RFC 4180: a field holding a comma, quote or line break is quoted, quotes doubled.
fn csv_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn render_table(rows: &[Map<String, Value>], columns: &[&str]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| table_cell(c, row.get(*c).unwrap_or(&Value::Null)))
                .collect()
        })
        .collect();
    // A column is right-aligned when every value in it is a number (or null).
    let numeric: Vec<bool> = columns
        .iter()
        .map(|c| {
            let mut vals = rows
                .iter()
                .filter_map(|r| r.get(*c))
                .filter(|v| !v.is_null());
            let first = vals.next();
            first.is_some_and(Value::is_number) && vals.all(Value::is_number)
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();

    let mut out = String::new();
    let line = |out: &mut String, fields: &[&str]| {
        let start = out.len();
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let pad = widths[i].saturating_sub(f.chars().count());
            if numeric[i] {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(f);
            } else {
                out.push_str(f);
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let end = out[start..].trim_end().len() + start;
        out.truncate(end);
        out.push('\n');
    };
    line(&mut out, columns);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(
        &mut out,
        &rule.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    if cells.is_empty() {
        out.push_str("(no rows)\n");
    }
    for r in &cells {
        line(&mut out, &r.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

/// A value as shown in the table: costs with 6 decimals, other fractional milliseconds
/// with 1, null as `-`, control characters escaped so a row stays on its line.
fn table_cell(column: &str, v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if column.contains("cost") => format!("{f:.6}"),
            Some(f) if n.is_f64() && column.ends_with("_ms") => format!("{f:.1}"),
            _ => n.to_string(),
        },
        Value::String(s) => {
            let mut out = String::with_capacity(s.len());
            for ch in s.chars() {
                if ch.is_control() {
                    out.extend(ch.escape_default());
                } else {
                    out.push(ch);
                }
            }
            out
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
