//! Times read from the command line and from upstreams' cooldown headers, as unix
//! milliseconds: RFC 3339, dates, unix seconds, or durations back from now.

use super::calendar::{days_from_civil, days_in_month, MS_PER_DAY};

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
