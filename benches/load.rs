//! Load benchmark: the same requests straight to `tollgate mock`, through a bare Pingora
//! passthrough (`tollgate-passthrough`), and through Tollgate (auth, routing and access log on),
//! side by side in one run on one machine.
//!
//! `cargo bench --bench load` writes `bench-results/load.md` and `bench-results/load.json`.
//! `cargo test --benches` runs a tiny smoke iteration (fails on any non-2xx or transport error).
//! Env: `LOAD_SECS` (measured seconds per slice, default 3), `LOAD_ROUNDS` (default 3; each
//! round measures every scenario once, each between two slices of the passthrough, in rotated
//! order; the tables pool the rounds, and a throughput or added-latency goal is the median of
//! the rounds' figures against the passthrough's around them), `LOAD_STREAMS` (default 1000),
//! `LOAD_SCENARIOS` (comma list of scenario names to run; default all; the passthrough always),
//! `LOAD_ONLY` (comma list of `chat`, `stream`, `memory`, `redis`; default all; `redis` measures a
//! Redis outage against the no-Redis baseline, see `load/outage.rs`).
//!
//! The driver is closed-loop at fixed concurrency: each connection sends its next request when
//! the previous one has finished, and every request's latency is recorded (no sampling). Each
//! point also reads the serving process's CPU time (`load/measure.rs`); the report checks the
//! goals, and the smoke run's regression guard (`report::guard`).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "load/driver.rs"]
mod driver;
#[path = "load/measure.rs"]
mod measure;
#[path = "load/outage.rs"]
mod outage;
#[path = "load/report.rs"]
mod report;
#[path = "load/rounds.rs"]
mod rounds;

use common::{free_port, Gateway, Proc};
use driver::{connect, interleaved, run_point};

const PASSTHROUGH: &str = env!("CARGO_BIN_EXE_tollgate-passthrough");
const KEY: &str = "sk-bench-client";

/// Tollgate in front of the mock with every scenario's route.
fn start_gateway(mock_port: u16) -> Gateway {
    let hash = tollgate::auth::hash_key(KEY);
    let rest = format!(
        r#"[log]
access_log = "/dev/null"
[cache]
# Small enough that the cache-miss scenario runs with evictions (a full cache's steady state)
# and the memory measurements after the load are not the cache's 256 MiB default filling up.
max_bytes = 16777216
[responses]
# Likewise for the kept Responses (each reply gets a fresh id, so every one is kept): evictions
# in the Responses scenario, and 16 MiB after the load rather than the 64 MiB default.
store_max_bytes = 16777216
[[limits]]
scope = "model"
match = "{LIMITED_MODEL}"
requests_per_minute = 1000000000
tokens_per_minute = 1000000000000
[[backends]]
name = "mock"
provider = "openai"
url = "http://127.0.0.1:{mock_port}"
api_key = "sk-upstream"
[[backends]]
name = "mock-anthropic"
provider = "anthropic"
url = "http://127.0.0.1:{mock_port}"
api_key = "sk-upstream"
[[backends]]
name = "pool-2"
provider = "openai"
url = "http://127.0.0.1:{mock_port}"
api_key = "sk-upstream"
[[backends]]
name = "pool-3"
provider = "openai"
url = "http://127.0.0.1:{mock_port}"
api_key = "sk-upstream"
[[backends]]
name = "pool-4"
provider = "openai"
url = "http://127.0.0.1:{mock_port}"
api_key = "sk-upstream"
[[routes]]
models = ["gpt-4o-mini", "{LIMITED_MODEL}"]
targets = [{{ backend = "mock" }}]
[[routes]]
models = ["{CACHED_MODEL}"]
targets = [{{ backend = "mock" }}]
cache = {{ ttl_seconds = 3600 }}
[[routes]]
models = ["{POOL_MODEL}"]
strategy = "least-load"
targets = [{{ backend = "mock" }}, {{ backend = "pool-2" }}, {{ backend = "pool-3" }}, {{ backend = "pool-4" }}]
[[routes]]
models = ["{ANTHROPIC_MODEL}"]
targets = [{{ backend = "mock-anthropic" }}]
[[backends]]
name = "mock-bedrock"
provider = "bedrock"
url = "http://127.0.0.1:{mock_port}"
region = "us-east-1"
aws_access_key_id = "AKIDBENCH"
aws_secret_access_key = "bench-secret"
[[routes]]
models = ["{BEDROCK_MODEL}"]
targets = [{{ backend = "mock-bedrock", model = "anthropic.claude-3-haiku-20240307-v1:0" }}]
[[keys]]
name = "bench"
sha256 = "{hash}"
"#
    );
    Gateway::start("", &rest)
}

/// A process's stderr from its first panic if it has one, else its last lines.
fn print_stderr(name: &str, p: &Proc) {
    let lines = p.stderr();
    let from = lines.iter().position(|l| l.contains("panicked"));
    let from = from.unwrap_or(lines.len().saturating_sub(20));
    eprintln!("--- {name} stderr ---");
    lines[from..].iter().take(40).for_each(|l| eprintln!("{l}"));
}

/// The model whose requests pass a request and a token limit (reserved and settled in the
/// in-memory counters, prompt counted with tiktoken); the usage ledger is on for every model.
const LIMITED_MODEL: &str = "gpt-4o-limited";

/// The model on a cached route: after the first request, every one is a hit.
const CACHED_MODEL: &str = "gpt-4o-cached";

/// The model of the Redis-limited route (a gateway of its own, store in Redis).
const REDIS_MODEL: &str = "gpt-4o-redis";

/// The model routed to four targets (four backends on the one mock) with `least-load`.
const POOL_MODEL: &str = "gpt-4o-pool";

/// The model an OpenAI client asks for to reach the Anthropic backend (translated both ways).
const ANTHROPIC_MODEL: &str = "claude-bench";

/// The model an OpenAI client asks for to reach the Bedrock backend (signed with SigV4,
/// ConverseStream's binary frames translated to chat chunks).
const BEDROCK_MODEL: &str = "bedrock-bench";

/// The client API a scenario's requests speak.
#[derive(Clone, Copy, PartialEq)]
enum Api {
    Chat,
    /// OpenAI's Responses API (`/v1/responses`), the same prompt as the chat request.
    Responses,
}

/// A load target: scenario name, port, the model its requests ask for, their API, the process
/// whose CPU time serves them (0: not measured), and headers its requests add.
#[derive(Clone, Copy)]
struct Target {
    name: &'static str,
    port: u16,
    model: &'static str,
    api: Api,
    pid: u32,
    headers: &'static [(&'static str, &'static str)],
    /// Every request a different prompt (cache misses).
    unique: bool,
}

impl Target {
    /// The request this target is sent.
    fn spec(&self, base: &Spec) -> Spec {
        let mut spec = base.for_target(self.model, self.api);
        spec.extra
            .extend(self.headers.iter().map(|(k, v)| (*k, v.to_string())));
        if self.unique {
            // Without a counter every request would be alike: a miss scenario of hits.
            let at = driver::counter_at(&spec.body);
            spec.unique = Some(at.expect("a unique scenario's prompt holds a counter"));
        }
        spec
    }

    fn new(name: &'static str, port: u16, model: &'static str, pid: u32) -> Target {
        Target {
            name,
            port,
            model,
            api: Api::Chat,
            pid,
            headers: &[],
            unique: false,
        }
    }
}

#[derive(Clone)]
struct Spec {
    path: &'static str,
    body: Bytes,
    extra: Vec<(&'static str, String)>,
    /// Every request differs: the offset of 8 bytes of its prompt that are a counter (found
    /// once, so the driver's own work a request is the same as on the other scenarios, give
    /// or take a copy of the body).
    unique: Option<usize>,
}

impl Spec {
    fn chat(body: Bytes, extra: Vec<(&'static str, String)>) -> Spec {
        Spec {
            path: "/v1/chat/completions",
            body,
            extra,
            unique: None,
        }
    }

    /// The same request asking for another model (same length, so the comparison is fair
    /// up to the name), in the scenario's API.
    fn for_target(&self, model: &str, api: Api) -> Spec {
        let body = String::from_utf8_lossy(&self.body).replacen(
            "\"model\":\"gpt-4o-mini\"",
            &format!("\"model\":\"{model}\""),
            1,
        );
        let mut spec = Spec {
            body: Bytes::from(body),
            ..self.clone()
        };
        if api == Api::Responses {
            spec.path = "/v1/responses";
            spec.body = responses_body(&spec.body);
        }
        spec
    }
}

/// A chat request's prompt as a Responses request: the system message as `instructions`, the
/// user's as `input`.
fn responses_body(chat: &[u8]) -> Bytes {
    let c: Value = serde_json::from_slice(chat).unwrap_or_default();
    let mut v = json!({"model": c["model"], "instructions": c["messages"][0]["content"],
        "input": c["messages"][1]["content"], "temperature": c["temperature"]});
    if c["stream"] == true {
        v["stream"] = json!(true);
    }
    Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    measure::status_kib(pid, field)
}

/// One request to every target (its route's tables loaded, its connections made); the errors.
async fn warm_every_route(targets: &[Target], chat: &Spec) -> u64 {
    let mut errors = 0;
    for t in targets {
        let spec = t.spec(chat);
        let p = run_point(
            t.port,
            &spec,
            1,
            (Duration::ZERO, Duration::from_millis(50)),
            0,
        )
        .await;
        errors += p.errors;
    }
    errors
}

/// Idle RSS, then peak RSS while `n` slow streams are open at once.
async fn memory(pid: u32, port: u16, n: usize, slow: &Spec) -> Value {
    let warm = Spec::chat(slow.body.clone(), vec![]);
    let idle_point = run_point(
        port,
        &warm,
        1,
        (Duration::ZERO, Duration::from_millis(200)),
        0,
    )
    .await;
    let idle = rss_kib(pid, "VmRSS:");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let spec = slow.clone();
        let started = started.clone();
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await?;
            let req = hyper::Request::post("/v1/chat/completions")
                .header("host", "bench")
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {KEY}"))
                .header("x-mock-chunk-delay-ms", "100")
                .header("x-mock-words", "40")
                .body(Full::new(spec.body.clone()))
                .ok()?;
            let resp = sender.send_request(req).await.ok()?;
            let ok = resp.status().is_success();
            let mut body = resp.into_body();
            let mut counted = false;
            while let Some(f) = body.frame().await {
                f.ok()?;
                if !counted {
                    counted = true;
                    started.fetch_add(1, Ordering::SeqCst);
                }
            }
            ok.then_some(())
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut all_open_rss = 0;
    while Instant::now() < deadline {
        all_open_rss = all_open_rss.max(rss_kib(pid, "VmRSS:"));
        if started.load(Ordering::SeqCst) >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let opened = started.load(Ordering::SeqCst);
    all_open_rss = all_open_rss.max(rss_kib(pid, "VmRSS:"));
    let mut errors = idle_point.errors;
    for t in tasks {
        if !matches!(t.await, Ok(Some(()))) {
            errors += 1;
        }
    }
    json!({
        "idle_rss_kib": idle, "streams": n, "streams_open_at_once": opened,
        "rss_with_streams_open_kib": all_open_rss, "peak_rss_kib": rss_kib(pid, "VmHWM:"),
        "errors": errors,
    })
}

fn chat_body(target_len: usize, stream: bool) -> Bytes {
    let mut v = json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "You are a helpful assistant."},
                     {"role": "user", "content": ""}],
        "temperature": 0.2,
    });
    if stream {
        v["stream"] = json!(true);
    }
    let base = serde_json::to_vec(&v).unwrap_or_default().len();
    v["messages"][1]["content"] =
        json!("lorem ipsum ".repeat(target_len.saturating_sub(base) / 12));
    Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let secs: f64 = std::env::var("LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let rounds: usize = std::env::var("LOAD_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let (dur, warmup, concs, stream_concs, streams, rounds) = if full {
        let n = std::env::var("LOAD_STREAMS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1000);
        let d = Duration::from_secs_f64(secs);
        (
            d,
            Duration::from_millis(500),
            vec![1, 16, 64],
            vec![1, 16],
            n,
            rounds.max(1),
        )
    } else {
        (
            Duration::from_millis(300),
            Duration::from_millis(100),
            vec![1, 4],
            vec![2],
            20,
            1,
        )
    };
    let only = std::env::var("LOAD_ONLY").unwrap_or_else(|_| "chat,stream,memory,redis".into());
    let want = |part: &str| only.split(',').any(|p| p.trim() == part);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mock = common::mock("bench", &["--threads", "1", "--words", "16"]);
    let mock_port = mock.port;
    let pt_port = free_port();
    let (pt_listen, upstream) = (
        format!("127.0.0.1:{pt_port}"),
        format!("127.0.0.1:{mock_port}"),
    );
    let pt = common::start(PASSTHROUGH, &[&pt_listen, &upstream, "2"], pt_port);
    let gw = start_gateway(mock_port);
    let (gw_port, gw_pid) = (gw.proc.port, gw.proc.pid());
    let mut targets = vec![
        Target::new("direct", mock_port, "gpt-4o-mini", 0),
        Target::new("passthrough", pt_port, "gpt-4o-mini", pt.pid()),
        Target::new("tollgate", gw_port, "gpt-4o-mini", gw_pid),
        Target::new("tollgate+limits", gw_port, LIMITED_MODEL, gw_pid),
        // Every prompt unseen: its tokens counted anew each request, as a conversation's new
        // turn is (the scenario above counts one prompt once, then remembers it).
        Target {
            unique: true,
            ..Target::new("tollgate+limits unseen", gw_port, LIMITED_MODEL, gw_pid)
        },
        Target::new("tollgate least-load×4", gw_port, POOL_MODEL, gw_pid),
        Target::new("tollgate cache hit", gw_port, CACHED_MODEL, gw_pid),
        // Every prompt different: every request a miss, stored (a miss's whole cost).
        Target {
            unique: true,
            ..Target::new("tollgate cache miss", gw_port, CACHED_MODEL, gw_pid)
        },
        Target::new("tollgate→anthropic", gw_port, ANTHROPIC_MODEL, gw_pid),
        Target::new("tollgate→bedrock", gw_port, BEDROCK_MODEL, gw_pid),
        Target {
            api: Api::Responses,
            ..Target::new("responses→anthropic", gw_port, ANTHROPIC_MODEL, gw_pid)
        },
    ];
    // The Redis-limited route runs on a gateway of its own (its store is Redis), when
    // `redis-server` is installed.
    let redis_port = free_port();
    let redis = outage::redis(redis_port);
    let ledger = std::env::temp_dir().join(format!("tollgate-bench-redis-{redis_port}.db"));
    let on_redis = redis.as_ref().map(|_| {
        let path = ledger.display().to_string();
        outage::limited_on_redis(mock_port, redis_port, REDIS_MODEL, &path)
    });
    if let Some(g) = &on_redis {
        targets.push(Target::new(
            "tollgate+redis",
            g.proc.port,
            REDIS_MODEL,
            g.proc.pid(),
        ));
    }

    // LOAD_SCENARIOS narrows the grid to the scenarios named (the passthrough always runs: it
    // is every ratio's reference).
    if let Ok(names) = std::env::var("LOAD_SCENARIOS") {
        let keep: Vec<&str> = names.split(',').map(str::trim).collect();
        targets.retain(|t| t.name == "passthrough" || keep.contains(&t.name));
    }
    let reference = targets
        .iter()
        .position(|t| t.name == "passthrough")
        .unwrap_or(0);
    let chat = Spec::chat(chat_body(1024, false), vec![]);
    let sse = Spec::chat(chat_body(1024, true), vec![("x-mock-words", "48".into())]);
    let mut report = json!({"machine": measure::machine(),
        "seconds_per_point": dur.as_secs_f64() * rounds as f64, "rounds": rounds,
        "chat": [], "stream": [], "memory": {}, "memory_fresh": {}, "redis_outage": {},
        "idle": {}});
    let mut errors = 0u64;
    rt.block_on(async {
        // Idle memory before any load: one request down every route first (the limited one
        // included), so what a route loads on first use is counted.
        errors += warm_every_route(&targets, &chat).await;
        for (name, pid) in [("tollgate", gw_pid), ("passthrough", pt.pid())] {
            report["idle"][name] = json!({"rss_kib": rss_kib(pid, "VmRSS:"),
                "anon_kib": rss_kib(pid, "RssAnon:"), "file_kib": rss_kib(pid, "RssFile:")});
        }
        // Streams on the limited route (limits on, as the memory goal says), first on the
        // fresh proxies, then again after the whole load (below), once the gateway's bounded
        // stores (the cache, kept responses) have filled.
        let mem_targets = [
            ("tollgate", gw_pid, gw_port),
            ("passthrough", pt.pid(), pt_port),
        ];
        let slow = sse.for_target(LIMITED_MODEL, Api::Chat);
        for (name, pid, port) in mem_targets.into_iter().filter(|_| want("memory")) {
            let m = memory(pid, port, streams, &slow).await;
            errors += m["errors"].as_u64().unwrap_or(0);
            eprintln!("memory before the load, {name}: {m}");
            report["memory_fresh"][name] = m;
        }
        for &c in concs.iter().filter(|_| want("chat")) {
            for (name, mut p) in
                interleaved(&targets, reference, &chat, c, (warmup, dur), rounds).await
            {
                errors += p.errors;
                let mut s = p.summary();
                s["scenario"] = json!(name);
                s["concurrency"] = json!(c);
                eprintln!("chat c={c} {name}: {s}");
                if let Some(a) = report["chat"].as_array_mut() {
                    a.push(s);
                }
            }
        }
        for &c in stream_concs.iter().filter(|_| want("stream")) {
            for (name, mut p) in
                interleaved(&targets, reference, &sse, c, (warmup, dur), rounds).await
            {
                errors += p.errors;
                let mut s = p.summary();
                s["scenario"] = json!(name);
                s["concurrency"] = json!(c);
                s["stream_events"] = json!(48 + 3);
                eprintln!("stream c={c} {name}: {s}");
                if let Some(a) = report["stream"].as_array_mut() {
                    a.push(s);
                }
            }
        }
        if want("redis") {
            let c = *concs.last().unwrap_or(&1);
            let o = outage::run(mock_port, &chat, c, warmup, dur).await;
            errors += (o["rows"].as_array().into_iter().flatten())
                .map(|r| r["errors"].as_u64().unwrap_or(0))
                .sum::<u64>();
            report["redis_outage"] = o;
        }
        for (name, pid, port) in mem_targets.into_iter().filter(|_| want("memory")) {
            let m = memory(pid, port, streams, &slow).await;
            errors += m["errors"].as_u64().unwrap_or(0);
            eprintln!("memory after the load, {name}: {m}");
            report["memory"][name] = m;
        }
        if want("memory") {
            let held = measure::stores_kib(gw.admin_port).await;
            report["memory"]["tollgate"]["stores_kib"] = json!(held);
        }
    });
    drop((on_redis, redis.map(|mut r| r.kill())));
    let _ = std::fs::remove_file(&ledger);
    report["errors"] = json!(errors);
    let md = report::markdown(&report) + &outage::markdown(&report["redis_outage"]);
    println!("{md}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-results");
    // Only a whole run is recorded: not one narrowed by LOAD_ONLY or LOAD_SCENARIOS.
    let whole = only == "chat,stream,memory,redis" && std::env::var("LOAD_SCENARIOS").is_err();
    if full && whole && std::fs::create_dir_all(&out).is_ok() {
        let _ = std::fs::write(out.join("load.md"), &md);
        let _ = std::fs::write(
            out.join("load.json"),
            serde_json::to_string_pretty(&report).unwrap_or_default(),
        );
        eprintln!("wrote {}", out.display());
    }
    let regressions = if full {
        Vec::new()
    } else {
        report::guard(&report)
    };
    for r in &regressions {
        eprintln!("load benchmark: regression: {r}");
    }
    if errors > 0 || !regressions.is_empty() {
        for (name, p) in [("mock", &mock), ("passthrough", &pt), ("gateway", &gw.proc)] {
            print_stderr(name, p);
        }
        eprintln!(
            "load benchmark: {errors} request(s) failed, {} regression(s)",
            regressions.len()
        );
        std::process::exit(1);
    }
}
