//! A Redis outage under load: the same limited route measured on the embedded store (the
//! no-Redis baseline), on a live Redis, and with that Redis gone (`on_error = "fail_open"`:
//! the breaker answers at once, so throughput stays near the baseline instead of riding
//! reconnects). No lease (`lease = 0`): every request asks Redis, so the live phase shows what
//! a round trip a request costs and the outage is met at once. Needs `redis-server` on the
//! PATH; skipped (and said) without it.

use super::common::{free_port, Gateway};
use super::driver::run_point;
use super::{Api, Spec, KEY};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MODEL: &str = "gpt-4o-outage";

pub(super) fn redis(port: u16) -> Option<Child> {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child)
}

/// A gateway whose limited route (`model`, a request and a token limit: reserved and settled)
/// counts in the Redis on `redis_port`: the chat grid's `tollgate+redis` scenario.
pub(super) fn limited_on_redis(
    mock_port: u16,
    redis_port: u16,
    model: &str,
    ledger: &str,
) -> Gateway {
    let rest = format!(
        "[log]\naccess_log = \"/dev/null\"\n\
         [store]\nkind = \"redis\"\nredis_url = \"redis://127.0.0.1:{redis_port}\"\npath = \"{ledger}\"\n\
         [[limits]]\nscope = \"model\"\nmatch = \"{model}\"\nrequests_per_minute = 1000000000\n\
         tokens_per_minute = 1000000000000\n\
         [[backends]]\nname = \"mock\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:{mock_port}\"\n\
         [[routes]]\nmodels = [\"{model}\"]\ntargets = [{{ backend = \"mock\" }}]\n\
         [[keys]]\nname = \"bench\"\nsha256 = \"{}\"\n",
        tollgate::auth::hash_key(KEY)
    );
    Gateway::start("", &rest)
}

fn gateway(mock_port: u16, store: &str) -> Gateway {
    let rest = format!(
        "[log]\naccess_log = \"/dev/null\"\n{store}\
         [[limits]]\nscope = \"model\"\nmatch = \"{MODEL}\"\nrequests_per_minute = 1000000000\n\
         [[backends]]\nname = \"mock\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:{mock_port}\"\n\
         [[routes]]\nmodels = [\"{MODEL}\"]\ntargets = [{{ backend = \"mock\" }}]\n\
         [[keys]]\nname = \"bench\"\nsha256 = \"{}\"\n",
        tollgate::auth::hash_key(KEY)
    );
    Gateway::start("", &rest)
}

/// The three phases at concurrency `c`: each row is a load point's summary.
pub async fn run(mock_port: u16, chat: &Spec, c: usize, warmup: Duration, dur: Duration) -> Value {
    let port = free_port();
    let Some(mut server) = redis(port) else {
        eprintln!("redis outage: redis-server not found; skipped");
        return json!({"skipped": "redis-server not found"});
    };
    let spec = chat.for_target(MODEL, Api::Chat);
    let dir = std::env::temp_dir().join(format!("tollgate-outage-{}-{port}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let ledger = dir.join("ledger.db");
    let base = gateway(mock_port, "");
    let fleet = gateway(
        mock_port,
        &format!(
            "[store]\nkind = \"redis\"\nredis_url = \"redis://127.0.0.1:{port}\"\non_error = \"fail_open\"\nlease = 0\npath = \"{}\"\n",
            ledger.display()
        ),
    );
    let mut rows = Vec::new();
    for (phase, g) in [("no redis (embedded store)", &base), ("redis up", &fleet)] {
        let mut p = run_point(g.proc.port, &spec, c, (warmup, dur), g.proc.pid()).await;
        rows.push(with_phase(p.summary(), phase, c));
    }
    let _ = server.kill();
    let _ = server.wait();
    let mut p = run_point(fleet.proc.port, &spec, c, (warmup, dur), fleet.proc.pid()).await;
    rows.push(with_phase(p.summary(), "redis down (breaker open)", c));
    let _ = std::fs::remove_dir_all(&dir);
    json!({"concurrency": c, "rows": rows})
}

fn with_phase(mut s: Value, phase: &str, c: usize) -> Value {
    s["phase"] = json!(phase);
    s["concurrency"] = json!(c);
    s
}

/// The outage table for the report.
pub fn markdown(v: &Value) -> String {
    let Some(rows) = v["rows"].as_array() else {
        return String::new();
    };
    let mut s = String::from(
        "\nRedis outage (a limited route, `on_error = \"fail_open\"`, `lease = 0`: a Redis call a request), latency in µs:\n\n\
         | phase | c | req/s | p50 | p99 | errors |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {} |\n",
            r["phase"].as_str().unwrap_or("?"),
            r["concurrency"],
            r["rps"].as_f64().unwrap_or(f64::NAN),
            r["p50_us"].as_f64().unwrap_or(f64::NAN),
            r["p99_us"].as_f64().unwrap_or(f64::NAN),
            r["errors"]
        );
    }
    s
}
