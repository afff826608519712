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
mod tests {
    use super::*;
    use crate::store::schema::{insert_rows, LedgerRow, SCHEMA};

    const NOW: i64 = 1_795_428_000_000; // 2026-11-23T10:00:00Z
    const MIDNIGHT: i64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z

    fn db(rows: &[LedgerRow]) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let tx = conn.transaction().unwrap();
        insert_rows(&tx, rows).unwrap();
        tx.commit().unwrap();
        conn
    }

    fn row(ts_ms: i64, id: &str, key: Option<&str>, model: &str, tokens: (u64, u64)) -> LedgerRow {
        LedgerRow {
            ts_ms,
            request_id: id.into(),
            key: key.map(Into::into),
            requested_model: Some(model.into()),
            served_model: Some(format!("{model}-2025")),
            backend: Some("openai".into()),
            input_tokens: tokens.0,
            output_tokens: tokens.1,
            total_tokens: tokens.0 + tokens.1,
            cost_usd: (tokens.0 + tokens.1) as f64 * 1e-6,
            status: 200,
            latency_ms: 100.25,
            ..LedgerRow::default()
        }
    }

    /// Five requests: two before midnight, three after; one estimated.
    fn sample() -> Vec<LedgerRow> {
        let mut est = row(MIDNIGHT + 1_000, "r4", Some("bob"), "claude", (7, 3));
        est.estimated = true;
        est.ttft_ms = Some(40.0);
        vec![
            row(MIDNIGHT - 60_000, "r2", Some("alice"), "gpt-4o", (100, 10)),
            row(MIDNIGHT - 120_000, "r1", Some("bob"), "gpt-4o", (200, 20)),
            est,
            row(MIDNIGHT, "r3", Some("alice"), "gpt-4o", (1, 1)),
            row(MIDNIGHT + 2_000, "r5", None, "claude", (5, 5)),
        ]
    }

    fn grouped(groups: &[Group]) -> Query {
        Query {
            group_by: groups.to_vec(),
            ..Query::default()
        }
    }

    fn ids(rows: &[Map<String, Value>]) -> Vec<&str> {
        rows.iter()
            .map(|r| r["request_id"].as_str().unwrap())
            .collect()
    }

    // ---- time ----

    #[test]
    fn civil_days_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2026, 11, 23) * MS_PER_DAY, MIDNIGHT);
        for z in (-800_000..800_000).step_by(7) {
            let (y, m, d) = civil_from_days(z);
            assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            assert_eq!(days_from_civil(y, m, d), z, "{y}-{m}-{d}");
        }
        // Consecutive days step through every calendar date.
        let mut prev = civil_from_days(days_from_civil(1899, 12, 31));
        for z in days_from_civil(1900, 1, 1)..days_from_civil(2401, 1, 1) {
            let (y, m, d) = civil_from_days(z);
            let (py, pm, pd) = prev;
            let next_ok = (y == py && m == pm && d == pd + 1)
                || (y == py && m == pm + 1 && d == 1 && pd == days_in_month(py as u32, pm))
                || (y == py + 1 && m == 1 && d == 1 && pm == 12 && pd == 31);
            assert!(next_ok, "{prev:?} -> {y}-{m}-{d}");
            prev = (y, m, d);
        }
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339_ms(NOW + 5), "2026-11-23T10:00:00.005Z");
        assert_eq!(format_rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            format_rfc3339_ms(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn parses_times() {
        let p = |s: &str| parse_time(s, NOW);
        assert_eq!(p("2026-11-23T10:00:00Z"), Ok(NOW));
        assert_eq!(p("2026-11-23t10:00:00z"), Ok(NOW));
        assert_eq!(p("2026-11-23 10:00:00Z"), Ok(NOW));
        assert_eq!(p("2026-11-23T10:00:00+00:00"), Ok(NOW));
        assert_eq!(p("2026-11-23T10:00:00+05:30"), Ok(1_795_408_200_000));
        assert_eq!(p("2026-11-23T10:00:00-01:00"), Ok(NOW + 3_600_000));
        assert_eq!(p("2026-11-23T10:00:00.25Z"), Ok(NOW + 250));
        assert_eq!(p("2026-11-23T10:00:00.123456789Z"), Ok(NOW + 123));
        assert_eq!(p("2026-11-23T23:59:60Z"), Ok(MIDNIGHT + MS_PER_DAY));
        assert_eq!(p(" 2026-11-23 "), Ok(MIDNIGHT));
        assert_eq!(p("2024-02-29"), Ok(1_709_164_800_000));
        assert_eq!(p("1970-01-01"), Ok(0));
        assert_eq!(p("1795428000"), Ok(NOW));
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("15m"), Ok(NOW - 15 * 60_000));
        assert_eq!(p("24h"), Ok(NOW - MS_PER_DAY));
        assert_eq!(p("7d"), Ok(NOW - 7 * MS_PER_DAY));
        assert_eq!(p("30s"), Ok(NOW - 30_000));
        assert_eq!(p("2w"), Ok(NOW - 14 * MS_PER_DAY));
        assert_eq!(p("0d"), Ok(NOW));
    }

    #[test]
    fn rejects_bad_times() {
        for s in [
            "",
            "  ",
            "yesterday",
            "7y",
            "d",
            "-5m",
            "1.5h",
            "2026-13-01",
            "2026-00-10",
            "2026-02-29",
            "2026-04-31",
            "2026-11-00",
            "2026-1-5",
            "26-11-23",
            "2026-11-23T10:00:00",
            "2026-11-23T10:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T10:60:00Z",
            "2026-11-23T10:00:00.Z",
            "2026-11-23T10:00:00+0100",
            "2026-11-23T10:00:00+24:00",
            "2026-11-23T10:00:00Zjunk",
            "2026-11-23X10:00:00Z",
            "99999999999999999999",
            "9999999999999999",
            "9999999999999999999d",
            "7é",
            "日",
            "2026-11-23T10:00:00+01:00é",
        ] {
            let err = parse_time(s, NOW).expect_err(s);
            assert!(err.contains("expected RFC 3339"), "{s}: {err}");
        }
        let err = parse_time("2026-11-23T10:00:00", NOW).unwrap_err();
        assert!(err.contains("no UTC offset"), "{err}");
        let err = parse_time("2026-02-29", NOW).unwrap_err();
        assert!(err.contains("day 29 out of range for 2026-02"), "{err}");
    }

    // ---- groups and formats ----

    #[test]
    fn parses_group_lists() {
        assert_eq!(Group::parse_list("key"), Ok(vec![Group::Key]));
        assert_eq!(
            Group::parse_list("model, Day,backend"),
            Ok(vec![Group::Model, Group::Day, Group::Backend])
        );
        assert_eq!(
            Group::parse_list("key,user,team,model,backend,day").unwrap(),
            Group::ALL
        );
        let err = Group::parse_list("key,route").unwrap_err();
        assert!(err.contains("\"route\"") && err.contains("key, user, team, model, backend, day"));
        let err = Group::parse_list("key,day,key").unwrap_err();
        assert!(err.contains("\"key\" given twice"), "{err}");
        assert!(Group::parse_list("").is_err());
        assert!(Group::parse_list("key,").is_err());
        assert!(Group::parse_list("key,,day").is_err());
    }

    #[test]
    fn parses_formats() {
        assert_eq!(OutputFormat::parse("table"), Ok(OutputFormat::Table));
        assert_eq!(OutputFormat::parse("CSV"), Ok(OutputFormat::Csv));
        assert_eq!(OutputFormat::parse("json"), Ok(OutputFormat::Json));
        assert!(OutputFormat::parse("xml")
            .unwrap_err()
            .contains("table, csv or json"));
    }

    // ---- queries ----

    #[test]
    fn ungrouped_lists_rows_in_time_order() {
        let conn = db(&sample());
        let q = Query::default();
        let rows = run(&conn, &q).unwrap();
        assert_eq!(ids(&rows), ["r1", "r2", "r3", "r4", "r5"]);
        let cols = columns(&q);
        assert_eq!(cols[0], "ts");
        assert_eq!(&cols[1..], LEDGER_COLUMNS);
        for r in &rows {
            let mut keys: Vec<&str> = r.keys().map(String::as_str).collect();
            let mut want = cols.clone();
            keys.sort_unstable();
            want.sort_unstable();
            assert_eq!(keys, want);
        }
        let r4 = &rows[3];
        assert_eq!(r4["ts"], "2026-11-23T00:00:01.000Z");
        assert_eq!(r4["ts_ms"], MIDNIGHT + 1_000);
        assert_eq!(r4["key"], "bob");
        assert_eq!(r4["requested_model"], "claude");
        assert_eq!(r4["served_model"], "claude-2025");
        assert_eq!(r4["user"], Value::Null);
        assert_eq!(r4["input_tokens"], 7);
        assert_eq!(r4["total_tokens"], 10);
        assert_eq!(r4["status"], 200);
        assert_eq!(r4["latency_ms"], 100.25);
        assert_eq!(r4["ttft_ms"], 40.0);
        assert_eq!(r4["estimated"], true);
        assert_eq!(rows[0]["estimated"], false);
        assert_eq!(rows[0]["ttft_ms"], Value::Null);
        assert_eq!(rows[4]["key"], Value::Null);
        assert!((rows[0]["cost_usd"].as_f64().unwrap() - 220e-6).abs() < 1e-12);
    }

    #[test]
    fn empty_ledger() {
        let conn = db(&[]);
        assert!(run(&conn, &Query::default()).unwrap().is_empty());
        assert!(run(&conn, &grouped(&[Group::Key])).unwrap().is_empty());
    }

    #[test]
    fn groups_by_key() {
        let conn = db(&sample());
        let q = grouped(&[Group::Key]);
        assert_eq!(
            columns(&q),
            [
                "key",
                "requests",
                "input_tokens",
                "cached_input_tokens",
                "cache_creation_tokens",
                "output_tokens",
                "reasoning_tokens",
                "total_tokens",
                "cost_usd",
                "estimated_requests"
            ]
        );
        let rows = run(&conn, &q).unwrap();
        let keys: Vec<&Value> = rows.iter().map(|r| &r["key"]).collect();
        // NULL sorts first.
        assert_eq!(keys, [&Value::Null, &"alice".into(), &"bob".into()]);
        let alice = &rows[1];
        assert_eq!(alice["requests"], 2);
        assert_eq!(alice["input_tokens"], 101);
        assert_eq!(alice["output_tokens"], 11);
        assert_eq!(alice["total_tokens"], 112);
        assert_eq!(alice["cached_input_tokens"], 0);
        assert_eq!(alice["estimated_requests"], 0);
        assert_eq!(alice["cost_usd"], 112e-6);
        let bob = &rows[2];
        assert_eq!(bob["requests"], 2);
        assert_eq!(bob["input_tokens"], 207);
        assert_eq!(bob["estimated_requests"], 1);
        assert_eq!(rows[0]["requests"], 1);
        for r in &rows {
            assert_eq!(r.len(), columns(&q).len());
        }
    }

    #[test]
    fn groups_by_model_and_day_across_midnight() {
        let conn = db(&sample());
        let q = grouped(&[Group::Model, Group::Day]);
        assert_eq!(&columns(&q)[..3], ["model", "day", "requests"]);
        let rows = run(&conn, &q).unwrap();
        let got: Vec<(&str, &str, i64, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r["model"].as_str().unwrap(),
                    r["day"].as_str().unwrap(),
                    r["requests"].as_i64().unwrap(),
                    r["total_tokens"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("claude", "2026-11-23", 2, 20),
                ("gpt-4o", "2026-11-22", 2, 330),
                ("gpt-4o", "2026-11-23", 1, 2),
            ]
        );
        // Day first: ordered by day, then model.
        let rows = run(&conn, &grouped(&[Group::Day, Group::Model])).unwrap();
        let days: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r["day"].as_str().unwrap(), r["model"].as_str().unwrap()))
            .collect();
        assert_eq!(
            days,
            [
                ("2026-11-22", "gpt-4o"),
                ("2026-11-23", "claude"),
                ("2026-11-23", "gpt-4o")
            ]
        );
    }

    #[test]
    fn day_groups_before_the_epoch() {
        let conn = db(&[
            row(-1, "a", None, "m", (1, 0)),
            row(0, "b", None, "m", (1, 0)),
            row(-MS_PER_DAY, "c", None, "m", (1, 0)),
        ]);
        let rows = run(&conn, &grouped(&[Group::Day])).unwrap();
        let days: Vec<(&str, i64)> = rows
            .iter()
            .map(|r| (r["day"].as_str().unwrap(), r["requests"].as_i64().unwrap()))
            .collect();
        assert_eq!(days, [("1969-12-31", 2), ("1970-01-01", 1)]);
    }

    #[test]
    fn window_is_since_inclusive_until_exclusive() {
        let conn = db(&sample());
        let q = |since, until| Query {
            since_ms: since,
            until_ms: until,
            group_by: vec![],
        };
        let got = |since, until| {
            run(&conn, &q(since, until))
                .unwrap()
                .iter()
                .map(|r| r["request_id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(got(Some(MIDNIGHT), None), ["r3", "r4", "r5"]);
        assert_eq!(got(None, Some(MIDNIGHT)), ["r1", "r2"]);
        assert_eq!(got(Some(MIDNIGHT), Some(MIDNIGHT + 1_000)), ["r3"]);
        assert_eq!(
            got(Some(MIDNIGHT - 60_000), Some(MIDNIGHT + 1_001)),
            ["r2", "r3", "r4"]
        );
        assert!(got(Some(MIDNIGHT), Some(MIDNIGHT)).is_empty());
        // The window applies before grouping.
        let mut g = q(Some(MIDNIGHT), None);
        g.group_by = vec![Group::Key];
        let rows = run(&conn, &g).unwrap();
        let alice = rows.iter().find(|r| r["key"] == "alice").unwrap();
        assert_eq!(alice["requests"], 1);
        assert_eq!(alice["total_tokens"], 2);
    }

    #[test]
    fn hostile_values_are_bound_not_formatted() {
        let mut r = row(1, "x'); DROP TABLE ledger; --", Some("k\"ey"), "m", (1, 1));
        r.team = Some("a,b".into());
        let conn = db(&[r]);
        let rows = run(&conn, &grouped(&[Group::Key, Group::Team])).unwrap();
        assert_eq!(rows[0]["key"], "k\"ey");
        assert_eq!(rows[0]["team"], "a,b");
        assert_eq!(
            ids(&run(&conn, &Query::default()).unwrap()),
            ["x'); DROP TABLE ledger; --"]
        );
    }

    // ---- rendering ----

    fn obj(pairs: &[(&str, Value)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn csv_quotes_per_rfc4180() {
        let rows = [
            obj(&[
                ("a", "plain".into()),
                ("b", "x,y".into()),
                ("c", "say \"hi\"".into()),
                ("d", 3.into()),
            ]),
            obj(&[
                ("a", "two\nlines".into()),
                ("b", Value::Null),
                ("c", "cr\rhere".into()),
                ("d", 0.5.into()),
            ]),
            obj(&[("a", true.into())]),
        ];
        let out = render(&rows, &["a", "b", "c", "d"], OutputFormat::Csv);
        assert_eq!(
            out,
            "a,b,c,d\n\
             plain,\"x,y\",\"say \"\"hi\"\"\",3\n\
             \"two\nlines\",,\"cr\rhere\",0.5\n\
             true,,,\n"
        );
        assert_eq!(render(&[], &["a", "b"], OutputFormat::Csv), "a,b\n");
    }

    #[test]
    fn table_aligns_columns() {
        let rows = [
            obj(&[
                ("key", "alice".into()),
                ("requests", 12.into()),
                ("cost_usd", 0.5.into()),
                ("latency_ms", 3.25.into()),
            ]),
            obj(&[
                ("key", Value::Null),
                ("requests", 3.into()),
                ("cost_usd", 12.0.into()),
                ("latency_ms", Value::Null),
            ]),
            obj(&[
                ("key", "a\nb".into()),
                ("requests", 100.into()),
                ("cost_usd", 0.into()),
                ("latency_ms", 7.into()),
            ]),
        ];
        let out = render(
            &rows,
            &["key", "requests", "cost_usd", "latency_ms"],
            OutputFormat::Table,
        );
        assert_eq!(
            out,
            "key    requests   cost_usd  latency_ms\n\
             -----  --------  ---------  ----------\n\
             alice        12   0.500000         3.2\n\
             -             3  12.000000           -\n\
             a\\nb        100   0.000000           7\n"
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn empty_table_says_no_rows() {
        let q = grouped(&[Group::Key]);
        let out = render(&[], &columns(&q), OutputFormat::Table);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("key  requests  input_tokens"));
        assert!(lines[1].starts_with("---  --------  ------------"));
        assert_eq!(lines[2], "(no rows)");
        assert_eq!(render(&[], &["a"], OutputFormat::Json), "[]\n");
    }

    #[test]
    fn json_keeps_column_order() {
        let conn = db(&sample());
        let q = grouped(&[Group::Team, Group::Key]);
        let rows = run(&conn, &q).unwrap();
        let out = render(&rows, &columns(&q), OutputFormat::Json);
        assert!(out
            .starts_with("[\n  {\n    \"team\": null,\n    \"key\": null,\n    \"requests\": 1,"));
        let back: Vec<Map<String, Value>> = serde_json::from_str(&out).unwrap();
        assert_eq!(back.len(), rows.len());
        for (b, r) in back.iter().zip(&rows) {
            assert_eq!(b.len(), r.len());
            for (k, v) in r {
                match v.as_f64() {
                    Some(f) => assert!((b[k].as_f64().unwrap() - f).abs() < 1e-15, "{k}"),
                    None => assert_eq!(&b[k], v, "{k}"),
                }
            }
        }
        // Summed costs are rounded, not printed with float noise.
        assert!(out.contains("\"cost_usd\": 0.00023,"), "{out}");
    }

    #[test]
    fn end_to_end_table_of_a_grouped_report() {
        let conn = db(&sample());
        let q = Query {
            since_ms: Some(parse_time("2026-11-23", NOW).unwrap()),
            until_ms: Some(parse_time("2026-11-24T00:00:00Z", NOW).unwrap()),
            group_by: Group::parse_list("day,key").unwrap(),
        };
        let out = render(&run(&conn, &q).unwrap(), &columns(&q), OutputFormat::Table);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5, "{out}");
        assert!(lines[2].starts_with("2026-11-23  -    "), "{out}");
        assert!(lines[3].starts_with("2026-11-23  alice"), "{out}");
        assert!(lines[4].starts_with("2026-11-23  bob  "), "{out}");
        assert!(lines[4].ends_with(" 0.000010                   1"), "{out}");
    }
}
