//! How long a throttled backend asked to be left alone: `Retry-After` (seconds or an HTTP
//! date), `retry-after-ms` (Azure), OpenAI's `x-ratelimit-reset-requests` /
//! `-tokens` (`1s`, `6m0s`, `20ms`), Anthropic's `anthropic-ratelimit-*-reset` (RFC 3339).
//! The longest one given wins, capped at an hour.

use pingora::http::ResponseHeader;
use std::time::{Duration, SystemTime};

const MAX: Duration = Duration::from_secs(3600);

pub fn requested(h: &ResponseHeader) -> Option<Duration> {
    let get = |n: &str| h.headers.get(n).and_then(|v| v.to_str().ok());
    let mut best: Option<Duration> = None;
    let mut take = |d: Option<Duration>| {
        if let Some(d) = d {
            best = Some(best.map_or(d, |b| b.max(d)));
        }
    };
    take(
        get("retry-after-ms")
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_millis),
    );
    take(get("retry-after").and_then(retry_after));
    take(get("x-ratelimit-reset-requests").and_then(go_duration));
    take(get("x-ratelimit-reset-tokens").and_then(go_duration));
    for n in [
        "anthropic-ratelimit-requests-reset",
        "anthropic-ratelimit-tokens-reset",
        "anthropic-ratelimit-input-tokens-reset",
        "anthropic-ratelimit-output-tokens-reset",
    ] {
        take(get(n).and_then(rfc3339_from_now));
    }
    best.filter(|d| !d.is_zero()).map(|d| d.min(MAX))
}

/// `Retry-After`: delay-seconds or an HTTP date.
fn retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<f64>() {
        return (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s.min(1e6)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// Go's duration text as OpenAI sends it: `1s`, `6m0s`, `1h2m3.5s`, `20ms`.
fn go_duration(v: &str) -> Option<Duration> {
    let mut total = 0.0;
    let mut rest = v.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..end].parse().ok()?;
        let unit_end = rest[end..]
            .find(|c: char| c.is_ascii_digit())
            .map_or(rest.len(), |i| end + i);
        let scale = match &rest[end..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total.min(1e6)))
}

fn rfc3339_from_now(v: &str) -> Option<Duration> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?;
    let now_ms = i64::try_from(now.as_millis()).ok()?;
    // Only a timestamp: the report parser also reads durations back from now.
    let at = crate::clock::parse_time(v, now_ms)
        .ok()
        .filter(|_| v.contains('T'))?;
    Some(Duration::from_millis(
        u64::try_from(at - now_ms).unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pairs: &[(&str, &str)]) -> ResponseHeader {
        let mut h = ResponseHeader::build(429, None).unwrap();
        for (k, v) in pairs {
            h.insert_header(k.to_string(), *v).unwrap();
        }
        h
    }

    #[test]
    fn each_provider_header_is_read_and_the_longest_wins() {
        let d = |p: &[(&str, &str)]| requested(&header(p));
        assert_eq!(d(&[("retry-after", "2")]), Some(Duration::from_secs(2)));
        assert_eq!(
            d(&[("retry-after-ms", "1500")]),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            d(&[
                ("x-ratelimit-reset-requests", "6m0s"),
                ("x-ratelimit-reset-tokens", "20ms")
            ]),
            Some(Duration::from_secs(360))
        );
        assert_eq!(
            d(&[("x-ratelimit-reset-tokens", "1.5s")]),
            Some(Duration::from_millis(1500))
        );
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let got = d(&[("retry-after", &soon)]).unwrap();
        assert!((28..=30).contains(&got.as_secs()), "{got:?}");
        assert_eq!(d(&[("retry-after", "86400")]), Some(MAX));
        let secs = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let at = crate::clock::format_rfc3339_ms(((secs + 20) * 1000) as i64);
        let got = d(&[("anthropic-ratelimit-requests-reset", &at)]).unwrap();
        assert!((18..=20).contains(&got.as_secs()), "{got:?}");
        assert_eq!(d(&[("retry-after", "soon")]), None);
        assert_eq!(d(&[]), None);
    }
}
