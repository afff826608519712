//! The load benchmark's report: the markdown tables and the goals checked against them.

use serde_json::Value;

fn find<'a>(rows: &'a Value, scenario: &str, c: u64) -> Option<&'a Value> {
    rows.as_array()?
        .iter()
        .find(|r| r["scenario"] == scenario && r["concurrency"] == c)
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(f64::NAN)
}

pub fn markdown(r: &Value) -> String {
    let mut s = String::new();
    let m = &r["machine"];
    s += &format!(
        "Measured {} at commit {} by `cargo bench --bench load` (the `bench` profile: the `dist` build's fat LTO and one codegen unit, for the gateway and the passthrough alike).\n\n",
        m["date"].as_str().unwrap_or("?"),
        m["commit"].as_str().unwrap_or("?")
    );
    s += &format!(
        "Machine: {} cores, {}; load generator, mock and proxies all share it. {} s measured per point in {} interleaved rounds.\n\n",
        m["cores"], m["cpu"].as_str().unwrap_or("?"), r["seconds_per_point"],
        r["rounds"]
    );
    s += "Non-streaming chat (1 KiB request), latency in µs; overhead = scenario minus direct at the same concurrency.\n\n";
    s += "| scenario | c | req/s | p50 | p90 | p99 | max | +p50 vs direct | +p99 vs direct | CPU µs/req | errors |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
    for row in r["chat"].as_array().into_iter().flatten() {
        let c = row["concurrency"].as_u64().unwrap_or(0);
        let d = find(&r["chat"], "direct", c);
        let (op50, op99) = d.map_or((f64::NAN, f64::NAN), |d| {
            (
                f(row, "p50_us") - f(d, "p50_us"),
                f(row, "p99_us") - f(d, "p99_us"),
            )
        });
        s += &format!(
            "| {} | {c} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {} |\n",
            row["scenario"].as_str().unwrap_or("?"),
            f(row, "rps"),
            f(row, "p50_us"),
            f(row, "p90_us"),
            f(row, "p99_us"),
            f(row, "max_us"),
            op50,
            op99,
            f(row, "cpu_us_per_request"),
            row["errors"]
        );
    }
    s += "\nStreaming chat (51 SSE events), µs: time to first byte and total.\n\n";
    s += "| scenario | c | streams/s | TTFB p50 | TTFB p99 | total p50 | total p99 | +TTFB p99 vs direct | +total p99 vs direct | errors |\n|---|---|---|---|---|---|---|---|---|---|\n";
    for row in r["stream"].as_array().into_iter().flatten() {
        let c = row["concurrency"].as_u64().unwrap_or(0);
        let d = find(&r["stream"], "direct", c);
        let (ot, oa) = d.map_or((f64::NAN, f64::NAN), |d| {
            (
                f(row, "ttfb_p99_us") - f(d, "ttfb_p99_us"),
                f(row, "p99_us") - f(d, "p99_us"),
            )
        });
        s += &format!(
            "| {} | {c} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} |\n",
            row["scenario"].as_str().unwrap_or("?"),
            f(row, "rps"),
            f(row, "ttfb_p50_us"),
            f(row, "ttfb_p99_us"),
            f(row, "p50_us"),
            f(row, "p99_us"),
            ot,
            oa,
            row["errors"]
        );
    }
    s += "\nIdle memory before any load (after one request down every route), MiB.\n\n| proxy | RSS | anonymous | file-backed |\n|---|---|---|---|\n";
    for name in ["tollgate", "passthrough"] {
        let m = &r["idle"][name];
        let mib = |k: &str| m[k].as_f64().unwrap_or(f64::NAN) / 1024.0;
        s += &format!(
            "| {name} | {:.1} | {:.1} | {:.1} |\n",
            mib("rss_kib"),
            mib("anon_kib"),
            mib("file_kib")
        );
    }
    s += "\nMemory under streams (RSS, MiB; streams on the limited route), on the fresh proxies \
          and again after the whole load (the gateway's cache and kept Responses filled to \
          their 16 MiB bounds; peak: the process's high-water mark so far; stores: what the \
          cache and the kept Responses say they hold, by the gateway's metrics).\n\n| proxy | when | idle | with N slow \
          streams open | peak | N (open at once) | stores | errors |\n|---|---|---|---|---|---|---|---|\n";
    for (key, when) in [
        ("memory_fresh", "before the load"),
        ("memory", "after the load"),
    ] {
        for name in ["tollgate", "passthrough"] {
            let m = &r[key][name];
            let mib = |k: &str| m[k].as_f64().unwrap_or(f64::NAN) / 1024.0;
            let stores = m["stores_kib"]
                .as_f64()
                .map_or("–".into(), |k| format!("{:.1}", k / 1024.0));
            s += &format!(
                "| {name} | {when} | {:.1} | {:.1} | {:.1} | {} ({}) | {stores} | {} |\n",
                mib("idle_rss_kib"),
                mib("rss_with_streams_open_kib"),
                mib("peak_rss_kib"),
                m["streams"],
                m["streams_open_at_once"],
                m["errors"]
            );
        }
    }
    s += "\nGoals (against the bare passthrough in this run; a throughput ratio or an added latency is the median over the rounds of each round's scenario against the passthrough slices just before and after it, with the rounds' range in brackets; CPU per request likewise, by the rounds' ratios):\n\n| goal | measured | met |\n|---|---|---|\n";
    for (name, val, ok) in goals(r) {
        s += &format!("| {name} | {val} | {} |\n", if ok { "yes" } else { "no" });
    }
    s
}

/// A goal: what it says, what was measured, whether it holds.
type Goal = (String, String, bool);

/// A goal's figure over the rounds: the median of each round's scenario against the same
/// round's passthrough (a ratio of rates, a difference of latencies), and the rounds' range.
struct Spread {
    median: f64,
    low: f64,
    high: f64,
}

impl Spread {
    fn of(mut x: Vec<f64>) -> Spread {
        x.sort_by(f64::total_cmp);
        let n = x.len();
        let median = if n % 2 == 1 {
            x[n / 2]
        } else {
            (x[n / 2 - 1] + x[n / 2]) / 2.0
        };
        Spread {
            median,
            low: x[0],
            high: x[n - 1],
        }
    }

    /// The figure, and the rounds' range when there was more than one round.
    fn show(&self, one: impl Fn(f64) -> String) -> String {
        if self.low < self.high {
            format!(
                "{} ({}–{})",
                one(self.median),
                one(self.low),
                one(self.high)
            )
        } else {
            one(self.median)
        }
    }

    fn percent(&self) -> String {
        self.show(|x| format!("{:.0}%", x * 100.0))
    }

    fn times(&self) -> String {
        self.show(|x| format!("{x:.2}×"))
    }

    fn micros(&self) -> String {
        self.show(|x| format!("{x:+.0} µs"))
    }
}

/// Round by round, `t`'s `key` against the reference's by `op`: against the reference's slices
/// around `t`'s (`ref_` + key) when recorded, else against `p`'s round. A disturbance of the
/// shared machine that lasts a round then moves one round's figure, not the whole. From the
/// pooled `whole` when the rounds were not recorded.
fn paired(t: &Value, p: &Value, (key, whole): (&str, &str), op: fn(f64, f64) -> f64) -> Spread {
    let rounds = |v: &Value, key: &str| -> Vec<f64> {
        v[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    let a = rounds(t, key);
    let around = rounds(t, &format!("ref_{key}"));
    let b = if around.is_empty() {
        rounds(p, key)
    } else {
        around
    };
    Spread::of(if !a.is_empty() && a.len() == b.len() {
        a.iter().zip(&b).map(|(a, b)| op(*a, *b)).collect()
    } else {
        vec![op(f(t, whole), f(p, whole))]
    })
}

/// `scenario`'s throughput over the passthrough's at concurrency `c` (in the chat grid).
fn ratio(r: &Value, scenario: &str, c: u64) -> Option<Spread> {
    let t = find(&r["chat"], scenario, c)?;
    let p = find(&r["chat"], "passthrough", c)?;
    Some(paired(t, p, ("rounds_rps", "rps"), |a, b| a / b))
}

/// The gateway's latency at `key` above the passthrough's, in `section` at concurrency `c`.
fn added(r: &Value, section: &str, c: u64, key: &str) -> Option<Spread> {
    let t = find(&r[section], "tollgate", c)?;
    let p = find(&r[section], "passthrough", c)?;
    let rounds = format!("rounds_{key}");
    Some(paired(t, p, (&rounds, key), |a, b| a - b))
}

/// Every goal of issues 9, 22 and 23 that this run measured.
fn goals(r: &Value) -> Vec<Goal> {
    let mut out: Vec<Goal> = Vec::new();
    let mut goal = |name: &str, val: String, ok: bool| out.push((name.to_string(), val, ok));
    let throughput = [
        ("tollgate", "plain route", 0.90),
        ("tollgate+limits", "limits and the SQLite ledger", 0.90),
        (
            "tollgate+limits unseen",
            "limits and the ledger, every prompt unseen",
            0.90,
        ),
        ("tollgate+redis", "limits in Redis", 0.90),
        (
            "tollgate cache miss",
            "cached route, every request a miss",
            0.90,
        ),
        ("tollgate least-load×4", "four targets, least-load", 0.90),
        ("tollgate→anthropic", "OpenAI client → Anthropic", 0.85),
        ("tollgate→bedrock", "OpenAI client → Bedrock", 0.85),
        ("responses→anthropic", "Responses client → Anthropic", 0.85),
    ];
    for (scenario, what, min) in throughput {
        for c in [16u64, 64] {
            if let Some(x) = ratio(r, scenario, c) {
                let name = format!("{what}, c={c}: ≥ {:.0}% of passthrough", min * 100.0);
                goal(&name, x.percent(), x.median >= min);
            }
        }
    }
    latency_goals(r, &mut goal);
    cache_goals(r, &mut goal);
    memory_goals(r, &mut goal);
    out
}

/// Added latency at one connection, CPU per request, and stream TTFB, against the passthrough.
fn latency_goals(r: &Value, goal: &mut impl FnMut(&str, String, bool)) {
    if let Some(d) = added(r, "chat", 1, "p50_us") {
        let name = "c=1: p50 ≤ 30 µs above passthrough";
        goal(name, d.micros(), d.median <= 30.0);
    }
    if let Some(d) = added(r, "chat", 1, "p99_us") {
        let name = "c=1: p99 ≤ 150 µs above passthrough";
        goal(name, d.micros(), d.median <= 150.0);
    }
    for c in [16u64, 64] {
        if let (Some(t), Some(p)) = (
            find(&r["chat"], "tollgate", c),
            find(&r["chat"], "passthrough", c),
        ) {
            let keys = ("rounds_cpu_us", "cpu_us_per_request");
            let x = paired(t, p, keys, |a, b| a / b);
            goal(
                &format!("CPU per request, c={c}: ≤ 1.15× passthrough"),
                x.times(),
                x.median <= 1.15,
            );
        }
    }
    for c in [1u64, 16] {
        if let Some(d) = added(r, "stream", c, "ttfb_p99_us") {
            let name = format!("stream c={c}: TTFB p99 within 0.2 ms of passthrough");
            goal(&name, d.micros(), d.median <= 200.0);
        }
    }
}

/// Idle RSS with limits configured, and RSS with the streams open against the passthrough's.
fn memory_goals(r: &Value, goal: &mut impl FnMut(&str, String, bool)) {
    let idle = r["idle"]["tollgate"]["rss_kib"]
        .as_f64()
        .unwrap_or(f64::NAN)
        / 1024.0;
    if idle.is_finite() && idle > 0.0 {
        goal(
            "idle RSS < 30 MiB (limits configured)",
            format!("{idle:.1} MiB"),
            idle < 30.0,
        );
    }
    for (key, when) in [
        ("memory_fresh", "on the fresh proxies"),
        ("memory", "after the load (the cache filled)"),
    ] {
        let open = |name: &str| r[key][name]["rss_with_streams_open_kib"].as_f64();
        if let (Some(t), Some(p)) = (open("tollgate"), open("passthrough")) {
            let n = &r[key]["tollgate"]["streams"];
            let x = t / p;
            goal(
                &format!("{n} streams open {when}: RSS within 10% of passthrough"),
                format!("{x:.2}×"),
                x <= 1.10,
            );
        }
    }
    // After the load, less what the bounded stores hold by configuration (the cache's
    // `max_bytes`, the kept Responses' `store_max_bytes`): the gateway's own overhead.
    let after = &r["memory"];
    let open = |name: &str| after[name]["rss_with_streams_open_kib"].as_f64();
    let stores = after["tollgate"]["stores_kib"].as_f64();
    if let (Some(t), Some(p), Some(k)) = (open("tollgate"), open("passthrough"), stores) {
        let x = (t - k) / p;
        goal(
            &format!(
                "{} streams open after the load, less the {:.1} MiB its stores hold: RSS within 10% of passthrough",
                after["tollgate"]["streams"],
                k / 1024.0
            ),
            format!("{x:.2}×"),
            x <= 1.10,
        );
    }
}

/// The smoke run's regression guard (a debug build, short points: ratios with wide margins,
/// never absolute times): what fails it.
pub fn guard(r: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    for scenario in [
        "tollgate",
        "tollgate+limits",
        "tollgate cache miss",
        "tollgate→anthropic",
    ] {
        if let Some(x) = ratio(r, scenario, 4).filter(|x| x.median < 0.4) {
            bad.push(format!(
                "{scenario} at c=4: {} of the passthrough's throughput (guard: 40%)",
                x.percent()
            ));
        }
    }
    if let (Some(t), Some(p)) = (
        find(&r["chat"], "tollgate", 4),
        find(&r["chat"], "passthrough", 4),
    ) {
        let x = f(t, "cpu_us_per_request") / f(p, "cpu_us_per_request");
        if x > 3.0 {
            bad.push(format!(
                "CPU per request at c=4: {x:.2}× the passthrough's (guard: 3×)"
            ));
        }
    }
    let idle = |n: &str| r["idle"][n]["rss_kib"].as_f64().unwrap_or(f64::NAN);
    let x = idle("tollgate") / idle("passthrough");
    if x > 6.0 {
        bad.push(format!("idle RSS {x:.1}× the passthrough's (guard: 6×)"));
    }
    bad
}

/// Replies from the response cache: at least 1.5× the passthrough's throughput (no upstream
/// call), and under 100 µs added at p50 over a direct call to the mock.
fn cache_goals(r: &Value, goal: &mut impl FnMut(&str, String, bool)) {
    for c in [16u64, 64] {
        if let Some(x) = ratio(r, "tollgate cache hit", c) {
            goal(
                &format!("cache hits c={c} ≥ 1.5× passthrough"),
                x.times(),
                x.median >= 1.5,
            );
        }
    }
    if let (Some(t), Some(d)) = (
        find(&r["chat"], "tollgate cache hit", 1),
        find(&r["chat"], "direct", 1),
    ) {
        let d50 = f(t, "p50_us") - f(d, "p50_us");
        goal(
            "cache hits c=1: p50 under 100 µs above direct",
            format!("{d50:+.0} µs"),
            d50 < 100.0,
        );
    }
}

// Run by tests/load_report.rs (this bench has no test harness). Everything sits inside the
// test function: without a harness, a helper beside it would be dead code.
#[cfg(test)]
mod tests {
    /// One slow round moves one round's difference, not the median; without rounds the pooled
    /// figures are used.
    #[test]
    fn added_latency_is_the_median_of_the_rounds_differences() {
        use serde_json::json;
        let row = |name: &str, c: u64, p99: f64, rounds: serde_json::Value| {
            json!({"scenario": name, "concurrency": c, "ttfb_p99_us": p99,
                   "rounds_ttfb_p99_us": rounds})
        };
        let r = json!({"stream": [
            row("tollgate", 16, 3000.0, json!([500.0, 450.0, 3000.0])),
            row("passthrough", 16, 700.0, json!([400.0, 300.0, 700.0])),
            row("tollgate", 1, 120.0, json!(null)),
            row("passthrough", 1, 100.0, json!(null)),
        ]});
        let d = super::added(&r, "stream", 16, "ttfb_p99_us").unwrap();
        assert_eq!((d.median, d.low, d.high), (150.0, 100.0, 2300.0));
        assert_eq!(d.micros(), "+150 µs (+100 µs–+2300 µs)");
        // Recorded around each slice, the reference's own slices are what a round is held to.
        let bracketed = json!({"stream": [
            json!({"scenario": "tollgate", "concurrency": 16, "rounds_ttfb_p99_us": [500.0, 450.0],
                   "ref_rounds_ttfb_p99_us": [480.0, 400.0]}),
            row("passthrough", 16, 700.0, json!([100.0, 100.0])),
        ]});
        let d = super::added(&bracketed, "stream", 16, "ttfb_p99_us").unwrap();
        assert_eq!((d.median, d.low, d.high), (35.0, 20.0, 50.0));
        let pooled = super::added(&r, "stream", 1, "ttfb_p99_us").unwrap();
        assert_eq!(
            (pooled.median, pooled.micros()),
            (20.0, "+20 µs".to_string())
        );
    }
}
