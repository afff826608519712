//! Tests of the calendar and the time parser.
use super::*;

const NOW: i64 = 1_795_428_000_000; // 2026-11-23T10:00:00Z
const MIDNIGHT: i64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z

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
