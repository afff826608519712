//! Times as unix milliseconds: read from the command line (RFC 3339, dates, unix seconds,
//! durations back from now) and written as RFC 3339. No date library: the civil-date
//! arithmetic is Howard Hinnant's `days_from_civil` and its inverse, shared with the limits'
//! calendar windows.

pub const MS_PER_DAY: i64 = 86_400_000;

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

pub(crate) fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
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
