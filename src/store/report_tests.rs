//! Tests of the ledger report (`report.rs`).
use super::*;
use crate::clock::{parse_time, MS_PER_DAY};
use crate::store::insert::insert_rows;
use crate::store::schema::{LedgerRow, SCHEMA};

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
        served_model: Some(format!("{model}-2025").into()),
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
        page: None,
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
    assert!(
        out.starts_with("[\n  {\n    \"team\": null,\n    \"key\": null,\n    \"requests\": 1,")
    );
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
        page: None,
    };
    let out = render(&run(&conn, &q).unwrap(), &columns(&q), OutputFormat::Table);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[2].starts_with("2026-11-23  -    "), "{out}");
    assert!(lines[3].starts_with("2026-11-23  alice"), "{out}");
    assert!(lines[4].starts_with("2026-11-23  bob  "), "{out}");
    assert!(lines[4].ends_with(" 0.000010                   1"), "{out}");
}

#[test]
fn pages_walk_the_whole_report_once() {
    let conn = db(&sample());
    for groups in [vec![], vec![Group::Key, Group::Model]] {
        let all = run(&conn, &grouped(&groups)).unwrap();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let mut q = grouped(&groups);
            q.page = Some(Page { limit: 2, after });
            let (rows, next) = run_page(&conn, &q).unwrap();
            assert!(rows.len() <= 2);
            seen.extend(rows);
            match next {
                Some(c) => after = Some(Cursor::parse(&c.text()).unwrap()),
                None => break,
            }
        }
        assert_eq!(seen, all, "groups {groups:?}");
    }
    assert!(Cursor::parse("nope").is_err() && Cursor::parse("+x").is_err());
}
