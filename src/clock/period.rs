//! Counting periods: fixed windows aligned to the UTC calendar, so a quota "per day" is a
//! calendar day and every replica (and a restarted process) agrees on where a window starts.

use super::calendar::{civil_from_days, days_from_civil};

/// How long a counter counts before it starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Second,
    Minute,
    Hour,
    Day,
    /// A calendar month.
    Month,
    /// Never resets: in-flight requests (raised at admission, lowered at settlement).
    Open,
}

impl Period {
    pub fn name(self) -> &'static str {
        match self {
            Period::Second => "second",
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
            Period::Open => "open",
        }
    }

    /// The start of the window holding `now` (unix seconds), and its end.
    pub fn window(self, now: i64) -> (i64, i64) {
        let fixed = |len: i64| {
            let start = now - now.rem_euclid(len);
            (start, start + len)
        };
        match self {
            Period::Second => fixed(1),
            Period::Minute => fixed(60),
            Period::Hour => fixed(3600),
            Period::Day => fixed(86_400),
            Period::Month => month(now),
            Period::Open => (0, i64::MAX),
        }
    }
}

/// The calendar month (UTC) holding `now`.
fn month(now: i64) -> (i64, i64) {
    let days = now.div_euclid(86_400);
    let (y, m, _) = civil_from_days(days);
    let start = days_from_civil(y, m, 1) * 86_400;
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (start, days_from_civil(ny, nm, 1) * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_align_to_the_utc_calendar() {
        // 2026-11-23T10:15:30Z
        let t = 1_795_428_930;
        assert_eq!(Period::Minute.window(t), (t - 30, t + 30));
        assert_eq!(Period::Hour.window(t).0 % 3600, 0);
        let (d0, d1) = Period::Day.window(t);
        assert_eq!((d0 % 86_400, d1 - d0), (0, 86_400));
        // November 2026: 2026-11-01 to 2026-12-01.
        assert_eq!(Period::Month.window(t), (1_793_491_200, 1_796_083_200));
        // December rolls into January; February in a leap year has 29 days.
        let dec = Period::Month.window(1_796_083_200 + 5);
        assert_eq!(dec.1 - dec.0, 31 * 86_400);
        let feb = Period::Month.window(days_from_civil(2028, 2, 10) * 86_400);
        assert_eq!(feb.1 - feb.0, 29 * 86_400);
        assert_eq!(
            civil_from_days(days_from_civil(2026, 11, 23)),
            (2026, 11, 23)
        );
    }
}
