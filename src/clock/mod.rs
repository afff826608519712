//! Time, a leaf every layer may use: the clock (unix seconds, milliseconds, RFC 3339), the
//! civil calendar, the counting periods of limits and budgets, and times read from the command
//! line. No date library: the calendar is a few lines of integer arithmetic.

mod calendar;
mod parse;
mod period;

pub use calendar::{
    civil_from_days, days_from_civil, days_in_month, format_rfc3339_ms, MS_PER_DAY,
};
pub use parse::parse_time;
pub use period::Period;

fn since_epoch() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Unix seconds now.
pub fn now() -> i64 {
    since_epoch().as_secs() as i64
}

/// Unix seconds now, with the fraction.
pub fn unix_now() -> f64 {
    since_epoch().as_secs_f64()
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    since_epoch().as_millis() as i64
}

/// Now as RFC 3339 in UTC with milliseconds: `2026-11-23T10:00:00.000Z`.
pub fn now_rfc3339() -> String {
    format_rfc3339_ms(now_ms())
}

#[cfg(test)]
mod tests;
