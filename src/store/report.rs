//! `tollgate usage`: the ledger over a time window, row by row or summed by groups, as a
//! table, CSV or JSON.
//!
//! The window is `[since, until)` on the request start (`ts_ms`). Without groups every
//! ledger row is listed in time order, with `ts` (RFC 3339, UTC, milliseconds) added; with
//! groups ([`Group`]) the rows are summed per distinct value of the group columns in SQL.
//! Times are parsed here ([`parse_time`]) with no date library: the civil-date arithmetic is
//! Howard Hinnant's `days_from_civil` and its inverse.

use rusqlite::types::ValueRef;
use rusqlite::{params_from_iter, Connection};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Number, Value};

use super::schema::LEDGER_COLUMNS;

const MS_PER_DAY: i64 = 86_400_000;

/// What `tollgate usage` asks of the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Inclusive lower bound on `ts_ms`.
    pub since_ms: Option<i64>,
    /// Exclusive upper bound on `ts_ms`.
    pub until_ms: Option<i64>,
    /// Empty: one output row per ledger row.
    pub group_by: Vec<Group>,
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

/// Runs `q` over the ledger; each row an object keyed by [`columns`]`(q)`.
pub fn run(conn: &Connection, q: &Query) -> rusqlite::Result<Vec<Map<String, Value>>> {
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
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };

    let (sql, names) = if q.group_by.is_empty() {
        let select = LEDGER_COLUMNS
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT {select} FROM ledger{filter} ORDER BY ts_ms, rowid");
        (sql, LEDGER_COLUMNS.to_vec())
    } else {
        let groups: Vec<&str> = q.group_by.iter().map(|g| g.expr()).collect();
        let select = q
            .group_by
            .iter()
            .map(|g| format!("{} AS \"{}\"", g.expr(), g.name()))
            .chain(
                AGGREGATES
                    .iter()
                    .map(|(name, e)| format!("{e} AS \"{name}\"")),
            )
            .collect::<Vec<_>>()
            .join(", ");
        let keys = groups.join(", ");
        let sql = format!("SELECT {select} FROM ledger{filter} GROUP BY {keys} ORDER BY {keys}");
        (sql, columns(q))
    };

    let grouped = !q.group_by.is_empty();
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(args))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut m = Map::new();
        if !grouped {
            let ts: i64 = row.get("ts_ms")?;
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
    Ok(out)
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

// ---- Time ----

/// A time on the command line, as unix milliseconds: RFC 3339 (`2026-11-23T10:00:00Z`,
/// `2026-11-23T10:00:00.5+01:00`), a date (`2026-11-23`, midnight UTC), unix seconds
/// (`1795428000`), or a duration back from `now_ms` (`90s`, `15m`, `24h`, `7d`, `2w`).
pub fn parse_time(s: &str, now_ms: i64) -> Result<i64, String> {
    let t = s.trim();
    let bad = |why: &str| {
        format!(
            "invalid time {s:?}: {why}; expected RFC 3339 (2026-11-23T10:00:00Z), a date \
             (2026-11-23), unix seconds, or a duration back from now (15m, 24h, 7d)"
        )
    };
    if t.is_empty() {
        return Err(bad("empty"));
    }
    let b = t.as_bytes();
    if b.iter().all(u8::is_ascii_digit) {
        return t
            .parse::<i64>()
            .ok()
            .and_then(|secs| secs.checked_mul(1000))
            .ok_or_else(|| bad("out of range"));
    }
    let last = t.chars().next_back().map_or(0, char::len_utf8);
    let (num, unit) = t.split_at(t.len() - last);
    if !num.is_empty() && num.bytes().all(|c| c.is_ascii_digit()) {
        let unit_ms: i64 = match unit {
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => MS_PER_DAY,
            "w" => 7 * MS_PER_DAY,
            _ => return Err(bad(&format!("unknown duration unit {unit:?}"))),
        };
        return num
            .parse::<i64>()
            .ok()
            .and_then(|n| n.checked_mul(unit_ms))
            .and_then(|back| now_ms.checked_sub(back))
            .ok_or_else(|| bad("out of range"));
    }
    parse_datetime(b).map_err(|why| bad(&why))
}

/// `YYYY-MM-DD` or `YYYY-MM-DD[T ]hh:mm:ss[.frac](Z|±hh:mm)`.
fn parse_datetime(b: &[u8]) -> Result<i64, String> {
    let mut c = Cursor { b, i: 0 };
    let year = c.digits(4).ok_or("no date")?;
    c.expect(b'-')?;
    let month = c.digits(2).ok_or("month must be 2 digits")?;
    c.expect(b'-')?;
    let day = c.digits(2).ok_or("day must be 2 digits")?;
    if !(1..=12).contains(&month) {
        return Err(format!("month {month} out of range"));
    }
    if !(1..=days_in_month(year, month)).contains(&day) {
        return Err(format!("day {day} out of range for {year:04}-{month:02}"));
    }
    let date_ms = days_from_civil(i64::from(year), month, day) * MS_PER_DAY;
    if c.done() {
        return Ok(date_ms);
    }
    if !matches!(c.next(), Some(b'T' | b't' | b' ')) {
        return Err("expected 'T' between date and time".into());
    }
    let hour = c.digits(2).ok_or("hour must be 2 digits")?;
    c.expect(b':')?;
    let minute = c.digits(2).ok_or("minute must be 2 digits")?;
    c.expect(b':')?;
    let second = c.digits(2).ok_or("second must be 2 digits")?;
    // 60: a leap second, counted as the first second of the next minute.
    if hour > 23 || minute > 59 || second > 60 {
        return Err(format!(
            "time {hour:02}:{minute:02}:{second:02} out of range"
        ));
    }
    let mut millis = 0;
    if c.peek() == Some(b'.') {
        c.next();
        let start = c.i;
        let mut scale = 100;
        while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
            c.next();
            millis += u32::from(d - b'0') * scale;
            scale /= 10;
        }
        if c.i == start {
            return Err("no digits after '.'".into());
        }
    }
    let offset_min: i64 = match c.next() {
        Some(b'Z' | b'z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let h = c.digits(2).ok_or("offset hours must be 2 digits")?;
            c.expect(b':')?;
            let m = c.digits(2).ok_or("offset minutes must be 2 digits")?;
            if h > 23 || m > 59 {
                return Err(format!("offset {h:02}:{m:02} out of range"));
            }
            let off = i64::from(h * 60 + m);
            if sign == b'-' {
                -off
            } else {
                off
            }
        }
        None => return Err("no UTC offset (add Z or +hh:mm)".into()),
        Some(_) => return Err("expected Z or +hh:mm after the time".into()),
    };
    if !c.done() {
        return Err("trailing characters".into());
    }
    let secs = i64::from(hour * 3600 + minute * 60 + second) - offset_min * 60;
    Ok(date_ms + secs * 1000 + i64::from(millis))
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn done(&self) -> bool {
        self.i == self.b.len()
    }

    fn expect(&mut self, want: u8) -> Result<(), String> {
        match self.next() {
            Some(c) if c == want => Ok(()),
            _ => Err(format!("expected {:?}", want as char)),
        }
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let s = self.b.get(self.i..self.i + n)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(s.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
    }
}

fn is_leap(year: u32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Unix milliseconds as RFC 3339 in UTC with milliseconds: `2026-11-23T10:00:00.000Z`.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let (y, mo, d) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (h, mi, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
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
