//! Limits shared by a fleet through a real `redis-server` (started here on a free port; the
//! test setup installs it): two gateways hold one token limit together, and a Redis outage is
//! handled by each gateway's policy (`fail_open` admits, `fail_closed` answers 503) with the
//! process up, and both recover when Redis returns. Kept Responses live there too: one made
//! through a gateway is read, continued and deleted through another, by its key only; and
//! managed keys made through one gateway are served (and disabled) by the other.

mod common;

use common::redis_server::Redis;

use common::{
    client, free_port, get_json, metrics, mock, send, send_json, sha256_hex, upstream_requests,
    Gateway, Proc,
};
use serde_json::{json, Value};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `on_error` as written in TOML (a quoted policy, and any more `[store]` settings).
const CLOSED_PATIENT: &str = "\"fail_closed\"\ntimeout_ms = 2000";

fn gateway(m: &Proc, redis_port: u16, limits: &str, on_error: &str) -> Gateway {
    let dir = std::env::temp_dir().join(format!(
        "tollgate-fleet-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = format!(
        "[store]\nkind = \"redis\"\nredis_url = \"redis://127.0.0.1:{redis_port}\"\non_error = {on_error}\n\
         path = \"{}\"\n\
         [[keys]]\nname = \"ka\"\nsha256 = \"{}\"\n\
         [[backends]]\nname = \"oa\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:{}\"\n\
         [[routes]]\nmodels = [\"gpt-4o-mini\"]\ntargets = [{{ backend = \"oa\" }}]\n{limits}",
        dir.join("ledger.db").display(),
        sha256_hex(b"sk-a"),
        m.port
    );
    Gateway::start("", &cfg)
}

async fn post(g: &Gateway) -> reqwest::Response {
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 100,
        "messages": [{"role": "user", "content": "Say something."}]});
    send(g, "/v1/chat/completions", Some("sk-a"), &[], &body).await
}

fn minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
}

#[tokio::test]
async fn two_gateways_share_one_token_limit() {
    let redis = Redis::start(free_port());
    let m = mock("oa", &["--delay-ms", "30"]);
    let limits = "[[limits]]\nscope = \"key\"\ntokens_per_minute = 2000\n";
    for _ in 0..3 {
        let gs = Arc::new([
            // A generous budget: this test is about sharing a limit on a busy machine, not
            // about a slow Redis (the outage tests below run on the default).
            gateway(&m, redis.port, limits, CLOSED_PATIENT),
            gateway(&m, redis.port, limits, CLOSED_PATIENT),
        ]);
        let start = minute();
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let gs = gs.clone();
                tokio::spawn(async move {
                    let (mut tokens, mut refused) = (0, 0);
                    for _ in 0..4 {
                        let r = post(&gs[i % 2]).await;
                        match r.status().as_u16() {
                            200 => {
                                let v: Value = r.json().await.unwrap();
                                tokens += v["usage"]["total_tokens"].as_u64().unwrap();
                            }
                            429 => refused += 1,
                            s => panic!("{s}: {}", r.text().await.unwrap()),
                        }
                    }
                    (tokens, refused)
                })
            })
            .collect();
        let (mut tokens, mut refused) = (0, 0);
        for t in tasks {
            let (a, b) = t.await.unwrap();
            tokens += a;
            refused += b;
        }
        if minute() != start {
            // The window reset mid-run; flush Redis and try again.
            let mut c = redis::Client::open(format!("redis://127.0.0.1:{}", redis.port)).unwrap();
            let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
            continue;
        }
        assert!(refused > 0, "the shared limit never refused");
        // One reservation: a prompt estimate of about 10 tokens plus max_tokens.
        assert!(
            tokens <= 2000 + 120,
            "the fleet admitted {tokens} tokens against 2000"
        );
        return;
    }
    panic!("every run straddled a minute boundary");
}

/// With leases (the default), a gateway takes a share of the limit in one round trip and
/// counts requests against it itself: two gateways make a round trip for every ten or so
/// requests, and still admit exactly the limit between them.
#[tokio::test]
async fn two_gateways_on_leases_admit_exactly_the_limit_with_few_round_trips() {
    let redis = Redis::start(free_port());
    let m = mock("oa", &[]);
    // A lease of 10 requests (2.5% of 400).
    let limits = "[[limits]]\nscope = \"key\"\nrequests_per_minute = 400\n";
    let on_error = "\"fail_closed\"\nlease = 0.025";
    for _ in 0..3 {
        let gs = [
            gateway(&m, redis.port, limits, on_error),
            gateway(&m, redis.port, limits, on_error),
        ];
        let start = minute();
        let calls = redis.script_calls();
        let mut admitted = 0;
        for i in 0..300 {
            admitted += u32::from(post(&gs[i % 2]).await.status() == 200);
        }
        let trips = redis.script_calls() - calls;
        for i in 0..200 {
            match post(&gs[i % 2]).await.status().as_u16() {
                200 => admitted += 1,
                429 => {}
                s => panic!("{s}"),
            }
        }
        if minute() != start {
            let mut c = redis::Client::open(format!("redis://127.0.0.1:{}", redis.port)).unwrap();
            let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
            continue;
        }
        // 300 requests, each round trip taking one and leasing ten more for its gateway.
        assert!(trips <= 30, "{trips} round trips for 300 requests");
        assert_eq!(admitted, 400);
        return;
    }
    panic!("every run straddled a minute boundary");
}

async fn metric(g: &Gateway, name: &str) -> String {
    let text = metrics(g).await;
    text.lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_default()
        .to_string()
}

/// Polls until `g` answers `status`.
async fn until_status(g: &Gateway, status: u16) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = post(g).await;
        if r.status() == status {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "still {} (want {status})",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_outage_applies_the_policy_and_recovers() {
    let port = free_port();
    let redis = Redis::start(port);
    let m = mock("oa", &[]);
    let limits = "[[limits]]\nscope = \"key\"\nrequests_per_minute = 100000\n";
    // No lease: every request asks Redis, so the outage shows on the next one.
    let open = gateway(&m, port, limits, "\"fail_open\"\nlease = 0");
    let closed = gateway(&m, port, limits, "\"fail_closed\"\nlease = 0");
    assert_eq!(post(&open).await.status(), 200);
    assert_eq!(post(&closed).await.status(), 200);
    assert_eq!(
        metric(&closed, "tollgate_store_up").await,
        "tollgate_store_up 1"
    );

    drop(redis);
    assert_eq!(post(&open).await.status(), 200);
    let r = until_status(&closed, 503).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "limits_unavailable", "{v}");
    assert_eq!(
        metric(&closed, "tollgate_store_up").await,
        "tollgate_store_up 0"
    );
    assert!(metric(&closed, "tollgate_store_errors_total")
        .await
        .contains("reserve"));
    // The process is up and says why.
    closed.proc.wait_stderr("limit store is unavailable");

    // The breaker is open: calls fail at once while one probe reconnects.
    closed.proc.wait_stderr("calls fail at once");
    let _redis = Redis::start(port);
    until_status(&closed, 200).await;
    closed.proc.wait_stderr("reachable again");
    assert_eq!(post(&open).await.status(), 200);
    assert_eq!(
        metric(&closed, "tollgate_store_up").await,
        "tollgate_store_up 1"
    );
}

#[tokio::test]
async fn a_redis_that_stops_answering_opens_the_breaker_and_recovers() {
    let port = free_port();
    let redis = Redis::start(port);
    let m = mock("oa", &[]);
    let limits = "[[limits]]\nscope = \"key\"\nrequests_per_minute = 100000\n";
    let g = gateway(&m, port, limits, "\"fail_open\"\nlease = 0");
    assert_eq!(post(&g).await.status(), 200);
    // Paused (a black hole: the connection stays up, nothing answers): calls time out, three
    // in a row open the breaker, and fail-open requests keep being served.
    let pid = redis.child.id().to_string();
    let signal = |sig: &str| Command::new("kill").args([sig, &pid]).status().unwrap();
    signal("-STOP");
    for _ in 0..6 {
        assert_eq!(post(&g).await.status(), 200);
    }
    g.proc.wait_stderr("calls time out");
    signal("-CONT");
    g.proc.wait_stderr("reachable again");
    assert_eq!(post(&g).await.status(), 200);
}

/// A gateway of the fleet with an Anthropic route and two keys.
fn responses_gateway(m: &Proc, redis_port: u16) -> Gateway {
    let dir = std::env::temp_dir().join(format!(
        "tollgate-fleet-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = format!(
        "[store]\nkind = \"redis\"\nredis_url = \"redis://127.0.0.1:{redis_port}\"\npath = \"{}\"\n\
         [[keys]]\nname = \"alice\"\nsha256 = \"{}\"\n[[keys]]\nname = \"bob\"\nsha256 = \"{}\"\n\
         [[backends]]\nname = \"an\"\nprovider = \"anthropic\"\nurl = \"http://127.0.0.1:{}\"\napi_key = \"k\"\n\
         [[routes]]\nmodels = [\"m-anthropic\"]\ntargets = [{{ backend = \"an\", model = \"claude-sonnet-4-5\" }}]\n",
        dir.join("ledger.db").display(),
        sha256_hex(b"sk-alice"),
        sha256_hex(b"sk-bob"),
        m.port
    );
    Gateway::start("", &cfg)
}

async fn call(g: &Gateway, method: reqwest::Method, key: &str, path: &str) -> (u16, Value) {
    let r = client()
        .request(method, g.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn create(g: &Gateway, key: &str, body: &Value) -> (u16, Value) {
    send_json(g, "/v1/responses", Some(key), &[], body).await
}

async fn last_body(m: &Proc) -> String {
    let stats = get_json(format!("{}/mock/stats", m.url()), None).await;
    stats["last_body"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_response_made_on_one_gateway_is_kept_for_the_fleet() {
    use reqwest::Method;
    let redis = Redis::start(free_port());
    let m = mock("state", &[]);
    let (a, b) = (
        responses_gateway(&m, redis.port),
        responses_gateway(&m, redis.port),
    );
    let first = json!({"model": "m-anthropic", "input": "What is the weather in Paris?",
        "tools": [{"type": "function", "name": "get_weather",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]});
    let (s, made) = create(&a, "sk-alice", &first).await;
    assert_eq!(s, 200, "{made}");
    let id = made["id"].as_str().unwrap().to_string();
    let path = format!("/v1/responses/{id}");
    let fc = made["output"].as_array().unwrap().iter();
    let fc = fc.clone().find(|i| i["type"] == "function_call");
    let fc = fc.unwrap_or_else(|| panic!("no call in {made}")).clone();

    // Read through the other gateway, by its key only.
    assert_eq!(call(&b, Method::GET, "sk-alice", &path).await, (200, made));
    let (s, items) = call(&b, Method::GET, "sk-alice", &format!("{path}/input_items")).await;
    assert_eq!(s, 200, "{items}");
    let text = &items["data"][0]["content"][0]["text"];
    assert_eq!(text, "What is the weather in Paris?");
    let (s, e) = call(&b, Method::GET, "sk-bob", &path).await;
    assert_eq!(s, 404, "{e}");

    // Continued through the other gateway: the earlier turn goes upstream.
    let next = json!({"model": "m-anthropic", "previous_response_id": id, "input": [
        {"type": "function_call_output", "call_id": fc["call_id"], "output": "sunny-42"}]});
    let (s, v) = create(&b, "sk-alice", &next).await;
    assert_eq!(s, 200, "{v}");
    let sent = last_body(&m).await;
    assert!(
        sent.contains("Paris") && sent.contains("sunny-42"),
        "{sent}"
    );
    let (s, e) = create(&b, "sk-bob", &next).await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["error"]["code"], "previous_response_not_found");

    // An item of it by reference, through the other gateway.
    let by_ref = json!({"model": "m-anthropic", "input": [
        {"role": "user", "content": "Weather in Rome?"},
        {"type": "item_reference", "id": fc["id"]},
        {"type": "function_call_output", "call_id": fc["call_id"], "output": "rainy-7"}]});
    let (s, v) = create(&b, "sk-alice", &by_ref).await;
    assert_eq!(s, 200, "{v}");
    let sent = last_body(&m).await;
    let call_id = fc["call_id"].as_str().unwrap();
    assert!(sent.contains(call_id) && sent.contains("rainy-7"), "{sent}");
    assert_eq!(create(&b, "sk-bob", &by_ref).await.0, 404);

    // Deleted through one, gone from both.
    assert_eq!(call(&b, Method::DELETE, "sk-bob", &path).await.0, 404);
    let (s, d) = call(&b, Method::DELETE, "sk-alice", &path).await;
    assert_eq!((s, d["deleted"].clone()), (200, json!(true)));
    assert_eq!(call(&a, Method::GET, "sk-alice", &path).await.0, 404);

    // Redis gone: a read is refused rather than answered without its history.
    drop(redis);
    let (s, e) = call(&a, Method::GET, "sk-alice", &path).await;
    assert_eq!(s, 503, "{e}");
    assert_eq!(e["error"]["code"], "store_unavailable", "{e}");
}

/// A gateway whose response cache lives in the fleet's Redis (`[cache] redis_url`).
fn cached_gateway(m: &Proc, redis_port: u16) -> Gateway {
    let rest = format!(
        "[cache]\nredis_url = \"redis://127.0.0.1:{redis_port}\"\n\
         [[keys]]\nname = \"ka\"\nsha256 = \"{}\"\n\
         [[backends]]\nname = \"oa\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:{}\"\n\
         [[routes]]\nname = \"cached\"\nmodels = [\"gpt-4o-mini\"]\ntargets = [{{ backend = \"oa\" }}]\n\
         cache = {{ ttl_seconds = 600 }}\n",
        sha256_hex(b"sk-a"),
        m.port
    );
    Gateway::start("admin_token = \"adm\"", &rest)
}

/// A chat request through `g`: its cache status and reply text.
async fn cached_chat(g: &Gateway, stream: bool) -> (String, String) {
    let body = json!({"model": "gpt-4o-mini", "stream": stream,
        "messages": [{"role": "user", "content": "shared by the fleet"}]});
    let r = send(g, "/v1/chat/completions", Some("sk-a"), &[], &body).await;
    assert_eq!(r.status(), 200);
    let status = r.headers()["cache-status"].to_str().unwrap().to_string();
    let text = r.text().await.unwrap();
    let content = match stream {
        false => serde_json::from_str::<Value>(&text).unwrap()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_string(),
        true => common::openai_chunks(&text)
            .0
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect(),
    };
    (status, content)
}

#[tokio::test]
async fn a_cached_reply_is_shared_by_the_fleet_and_purged_for_all() {
    let redis = Redis::start(free_port());
    let m = mock("cache", &[]);
    let (a, b) = (
        cached_gateway(&m, redis.port),
        cached_gateway(&m, redis.port),
    );
    let (miss, text) = cached_chat(&a, false).await;
    assert_eq!(miss, "tollgate; fwd=miss; stored");
    assert_eq!(upstream_requests(&m).await, 1);
    // The other gateway answers from Redis, as a whole reply and as a stream.
    assert_eq!(
        cached_chat(&b, false).await,
        ("tollgate; hit".to_string(), text.clone())
    );
    assert_eq!(
        cached_chat(&b, true).await,
        ("tollgate; hit".to_string(), text.clone())
    );
    assert_eq!(upstream_requests(&m).await, 1, "a hit went upstream");

    // A purge through one gateway's admin empties the shared store for both.
    let r = client()
        .delete(format!(
            "http://127.0.0.1:{}/cache?route=cached",
            a.admin_port
        ))
        .bearer_auth("adm")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["purged_shared"], 1, "{v}");
    assert_eq!(cached_chat(&b, false).await.0, "tollgate; fwd=miss; stored");
    assert_eq!(upstream_requests(&m).await, 2);
}

/// A gateway serving managed keys from the fleet's Redis (admin token `t`).
fn keys_gateway(m: &Proc, redis_port: u16) -> Gateway {
    let dir = std::env::temp_dir().join(format!(
        "tollgate-fleet-keys-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = format!(
        "[auth]\nmanaged_keys = true\n\
         [store]\nkind = \"redis\"\nredis_url = \"redis://127.0.0.1:{redis_port}\"\npath = \"{}\"\n\
         [[backends]]\nname = \"oa\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:{}\"\n\
         [[routes]]\nmodels = [\"gpt-4o-mini\"]\ntargets = [{{ backend = \"oa\" }}]\n",
        dir.join("ledger.db").display(),
        m.port
    );
    Gateway::start("admin_token = \"t\"", &cfg)
}

/// How long until `key` gets `want` from `g` (polled; fails after 3 s).
async fn key_status(g: &Gateway, key: &str, want: u16) -> Duration {
    let chat = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    let start = Instant::now();
    loop {
        let r = client()
            .post(g.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&chat);
        if r.send().await.unwrap().status().as_u16() == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(3), "never {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Managed keys in the fleet's Redis: a key made through one gateway is served by the other,
/// and disabling it there is effective on both within a second.
#[tokio::test]
async fn a_managed_key_reaches_every_gateway_of_the_fleet_within_a_second() {
    let redis = Redis::start(free_port());
    let m = mock("fleet-keys", &[]);
    let (a, b) = (keys_gateway(&m, redis.port), keys_gateway(&m, redis.port));
    let c = client();
    let made = c
        .post(a.admin("/keys"))
        .bearer_auth("t")
        .json(&json!({"name": "fleet-ci"}));
    let made: Value = made.send().await.unwrap().json().await.unwrap();
    let key = made["key"].as_str().unwrap().to_string();
    assert!(key_status(&b, &key, 200).await < Duration::from_secs(1));
    let off = c.patch(a.admin("/keys/fleet-ci")).bearer_auth("t");
    let r = off.json(&json!({"disabled": true})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        key_status(&a, &key, 401).await < Duration::from_millis(200),
        "at once where changed"
    );
    assert!(key_status(&b, &key, 401).await < Duration::from_secs(1));
    let audit = get_json(b.admin("/audit"), Some("t")).await;
    assert_eq!(audit["data"].as_array().map(Vec::len), Some(2), "{audit}");
    drop(redis);
}
