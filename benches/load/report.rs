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
        "Machine: {} cores, {}; load generator, mock and proxies all share it. {} s measured per point in {} interleaved rounds.\n\n",
        m["cores"], m["cpu"].as_str().unwrap_or("?"), r["seconds_per_point"],
        r["rounds"]
    );
    s += "Non-streaming chat (1 KiB request), latency in µs; overhead = scenario minus direct at the same concurrency.\n\n";
    s += "| scenario | c | req/s | p50 | p90 | p99 | max | +p50 vs direct | +p99 vs direct | errors |\n|---|---|---|---|---|---|---|---|---|---|\n";
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
            "| {} | {c} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} |\n",
            row["scenario"].as_str().unwrap_or("?"),
            f(row, "rps"),
            f(row, "p50_us"),
            f(row, "p90_us"),
            f(row, "p99_us"),
            f(row, "max_us"),
            op50,
            op99,
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
    s += "\nMemory (RSS, MiB).\n\n| proxy | idle | with N slow streams open | peak | N (open at once) | errors |\n|---|---|---|---|---|---|\n";
    for name in ["tollgate", "passthrough"] {
        let m = &r["memory"][name];
        let mib = |k: &str| m[k].as_f64().unwrap_or(f64::NAN) / 1024.0;
        s += &format!(
            "| {name} | {:.1} | {:.1} | {:.1} | {} ({}) | {} |\n",
            mib("idle_rss_kib"),
            mib("rss_with_streams_open_kib"),
            mib("peak_rss_kib"),
            m["streams"],
            m["streams_open_at_once"],
            m["errors"]
        );
    }
    s += "\nGoals (ratios against the bare passthrough, or against Tollgate's own passthrough route, in this run):\n\n| goal | measured | met |\n|---|---|---|\n";
    let mut goal = |name: &str, val: String, ok: bool| {
        s += &format!("| {name} | {val} | {} |\n", if ok { "yes" } else { "no" });
    };
    for c in [16u64, 64] {
        if let (Some(t), Some(p)) = (
            find(&r["chat"], "tollgate", c),
            find(&r["chat"], "passthrough", c),
        ) {
            let ratio = f(t, "rps") / f(p, "rps");
            goal(
                &format!("throughput at c={c} ≥ 90% of passthrough"),
                format!("{:.0}%", ratio * 100.0),
                ratio >= 0.9,
            );
        }
    }
    for c in [16u64, 64] {
        if let (Some(t), Some(p)) = (
            find(&r["chat"], "tollgate+limits", c),
            find(&r["chat"], "passthrough", c),
        ) {
            let ratio = f(t, "rps") / f(p, "rps");
            goal(
                &format!("with a limit and the SQLite store, c={c} ≥ 90% of passthrough"),
                format!("{:.0}%", ratio * 100.0),
                ratio >= 0.9,
            );
        }
    }
    for c in [16u64, 64] {
        if let (Some(t), Some(p)) = (
            find(&r["chat"], "tollgate least-load×4", c),
            find(&r["chat"], "passthrough", c),
        ) {
            let ratio = f(t, "rps") / f(p, "rps");
            goal(
                &format!("four targets, least-load, c={c} ≥ 90% of passthrough"),
                format!("{:.0}%", ratio * 100.0),
                ratio >= 0.9,
            );
        }
    }
    if let (Some(t), Some(p)) = (
        find(&r["chat"], "tollgate", 1),
        find(&r["chat"], "passthrough", 1),
    ) {
        let d50 = f(t, "p50_us") - f(p, "p50_us");
        let d99 = f(t, "p99_us") - f(p, "p99_us");
        goal(
            "c=1 p50 within 50 µs of passthrough",
            format!("{d50:+.0} µs"),
            d50 <= 50.0,
        );
        goal(
            "c=1 p99 within 0.2 ms of passthrough",
            format!("{d99:+.0} µs"),
            d99 <= 200.0,
        );
    }
    for c in [1u64, 16] {
        if let (Some(t), Some(p)) = (
            find(&r["stream"], "tollgate", c),
            find(&r["stream"], "passthrough", c),
        ) {
            let d = f(t, "ttfb_p99_us") - f(p, "ttfb_p99_us");
            goal(
                &format!("stream c={c}: TTFB p99 within 0.2 ms of passthrough"),
                format!("{d:+.0} µs"),
                d <= 200.0,
            );
        }
    }
    cache_goals(r, &mut goal);
    let translated = [
        (
            "chat",
            16u64,
            "tollgate→anthropic",
            "OpenAI client → Anthropic",
        ),
        (
            "chat",
            64,
            "tollgate→anthropic",
            "OpenAI client → Anthropic",
        ),
        (
            "stream",
            1,
            "tollgate→anthropic",
            "OpenAI client → Anthropic",
        ),
        (
            "stream",
            16,
            "tollgate→anthropic",
            "OpenAI client → Anthropic",
        ),
        ("stream", 1, "tollgate→bedrock", "OpenAI client → Bedrock"),
        ("stream", 16, "tollgate→bedrock", "OpenAI client → Bedrock"),
        (
            "stream",
            1,
            "responses→anthropic",
            "Responses client → Anthropic",
        ),
        (
            "stream",
            16,
            "responses→anthropic",
            "Responses client → Anthropic",
        ),
    ];
    for (part, c, scenario, to) in translated {
        if let (Some(t), Some(p)) = (find(&r[part], scenario, c), find(&r[part], "tollgate", c)) {
            let ratio = f(t, "rps") / f(p, "rps");
            goal(
                &format!("{part} c={c}: {to} backend ≥ 80% of the passthrough route"),
                format!("{:.0}%", ratio * 100.0),
                ratio >= 0.8,
            );
        }
    }
    let peak = r["memory"]["tollgate"]["peak_rss_kib"]
        .as_f64()
        .unwrap_or(f64::NAN)
        / 1024.0;
    let n = &r["memory"]["tollgate"]["streams"];
    goal(
        &format!("RSS < 64 MiB with {n} streams open"),
        format!("{peak:.1} MiB"),
        peak < 64.0,
    );
    s
}

/// Replies from the response cache: at least 1.5× the passthrough's throughput (no upstream
/// call), and under 100 µs added at p50 over a direct call to the mock.
fn cache_goals(r: &Value, goal: &mut impl FnMut(&str, String, bool)) {
    for c in [16u64, 64] {
        let (Some(t), Some(p)) = (
            find(&r["chat"], "tollgate cache hit", c),
            find(&r["chat"], "passthrough", c),
        ) else {
            continue;
        };
        let ratio = f(t, "rps") / f(p, "rps");
        goal(
            &format!("cache hits c={c} ≥ 1.5× passthrough"),
            format!("{ratio:.2}×"),
            ratio >= 1.5,
        );
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
