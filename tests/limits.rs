//! Limits through the real binary: reservations at admission keep 50 concurrent clients within
//! a token limit (overshoot at most one reservation), refusals are 429 in the client's own API
//! with `Retry-After` and OpenAI's `x-ratelimit-*` headers, successes carry the headers too,
//! user and team limits follow the key (or the trusted header), and a backend over its own
//! limit is skipped for the next target.

mod common;

use common::{client, mock, send, sha256_hex, wait_metrics, Gateway, Proc};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

fn minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
}

fn keys() -> String {
    format!(
        "[[keys]]\nname = \"ka\"\nsha256 = \"{}\"\nuser = \"ann\"\nteam = \"red\"\n\
         [[keys]]\nname = \"kb\"\nsha256 = \"{}\"\nteam = \"red\"\n",
        sha256_hex(b"sk-a"),
        sha256_hex(b"sk-b")
    )
}

fn gateway(m: &Proc, limits: &str, extra: &str) -> Gateway {
    let cfg = format!(
        "[[backends]]\nname = \"oa\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:{}\"\n\
         [[routes]]\nmodels = [\"gpt-4o-mini\"]\ntargets = [{{ backend = \"oa\" }}]\n{}{limits}{extra}",
        m.port,
        keys()
    );
    Gateway::start("", &cfg)
}

fn chat(max_tokens: u64) -> Value {
    json!({"model": "gpt-4o-mini", "max_tokens": max_tokens,
           "messages": [{"role": "user", "content": "Say something."}]})
}

async fn post(g: &Gateway, key: &str, body: &Value) -> reqwest::Response {
    send(g, "/v1/chat/completions", Some(key), &[], body).await
}

const PRICES: &str = "[[prices]]\nmodel = \"gpt-4o-*\"\ninput = 1000\noutput = 2000\n";

/// 50 clients, 4 requests each, against a day's budget of $1 at $1,000 / $2,000 per 1M tokens:
/// the cost of the admitted requests stays within the budget plus one reservation.
#[tokio::test]
async fn concurrent_clients_stay_within_a_cost_budget() {
    let m = mock("oa", &["--delay-ms", "30"]);
    let limits = "[[limits]]\nscope = \"team\"\ncost_per_day_usd = 1\n";
    let g = std::sync::Arc::new(gateway(&m, limits, PRICES));
    let day = minute() / 1440;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let g = g.clone();
            tokio::spawn(async move {
                let (mut cost, mut refused) = (0.0, 0);
                for _ in 0..4 {
                    let r = post(&g, "sk-a", &chat(100)).await;
                    if r.status() == 429 {
                        let v: Value = r.json().await.unwrap();
                        assert_eq!(v["error"]["code"], "insufficient_quota", "{v}");
                        refused += 1;
                        continue;
                    }
                    let v: Value = r.json().await.unwrap();
                    let u = &v["usage"];
                    cost += u["prompt_tokens"].as_f64().unwrap() * 0.001
                        + u["completion_tokens"].as_f64().unwrap() * 0.002;
                }
                (cost, refused)
            })
        })
        .collect();
    let (mut cost, mut refused) = (0.0, 0);
    for t in tasks {
        let (c, r) = t.await.unwrap();
        cost += c;
        refused += r;
    }
    if minute() / 1440 != day {
        return; // the budget's day ended mid-test
    }
    // One reservation: about 10 prompt tokens at $0.001 plus 100 output tokens at $0.002.
    let reservation = 0.25;
    assert!(
        refused > 0,
        "the budget never refused anything (spent ${cost})"
    );
    assert!(
        cost <= 1.0 + reservation,
        "admitted ${cost} against a $1 budget"
    );
}

/// 50 clients, 4 requests each, against `tokens_per_minute = LIMIT`: the tokens of the
/// admitted requests stay within the limit plus one reservation. `None`: a minute boundary
/// fell inside the run (the window reset), so the run proves nothing.
async fn concurrent_run(limit: u64) -> Option<(u64, usize, u64)> {
    let m = mock("oa", &["--delay-ms", "30"]);
    let g = gateway(
        &m,
        &format!("[[limits]]\nscope = \"key\"\ntokens_per_minute = {limit}\n"),
        "",
    );
    let start = minute();
    let g = std::sync::Arc::new(g);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let g = g.clone();
            tokio::spawn(async move {
                let mut used = (0u64, 0usize, 0u64);
                for _ in 0..4 {
                    let r = post(&g, "sk-a", &chat(100)).await;
                    match r.status().as_u16() {
                        200 => {
                            let rem = r.headers()["x-ratelimit-remaining-tokens"]
                                .to_str()
                                .unwrap();
                            assert!(rem.parse::<f64>().is_ok(), "{rem}");
                            let v: Value = r.json().await.unwrap();
                            used.0 += v["usage"]["total_tokens"].as_u64().unwrap();
                        }
                        429 => {
                            assert!(r.headers().contains_key("retry-after"));
                            assert!(r.headers().contains_key("x-ratelimit-reset-tokens"));
                            let v: Value = r.json().await.unwrap();
                            assert_eq!(v["error"]["code"], "rate_limit_exceeded", "{v}");
                            used.1 += 1;
                        }
                        s => panic!("status {s}: {}", r.text().await.unwrap()),
                    }
                }
                used
            })
        })
        .collect();
    let mut total = (0, 0, 0);
    for t in tasks {
        let u = t.await.unwrap();
        total.0 += u.0;
        total.1 += u.1;
    }
    // One reservation: the prompt estimate plus max_tokens.
    total.2 = 100 + 20;
    (minute() == start).then_some(total)
}

#[tokio::test]
async fn concurrent_clients_stay_within_a_token_limit() {
    for _ in 0..3 {
        let Some((admitted, refused, reservation)) = concurrent_run(2000).await else {
            continue;
        };
        assert!(refused > 0, "the limit never refused anything");
        assert!(admitted > 0);
        assert!(
            admitted <= 2000 + reservation,
            "admitted {admitted} tokens against a limit of 2000"
        );
        return;
    }
    panic!("every run straddled a minute boundary");
}

#[tokio::test]
async fn refusals_speak_the_clients_api_and_quotas_say_insufficient_quota() {
    let m = mock("oa", &[]);
    let limits = "[[limits]]\nscope = \"team\"\nmatch = \"red\"\nrequests_per_minute = 3\n\
                  [[limits]]\nscope = \"user\"\ntokens_per_day = 25\n";
    let g = gateway(&m, limits, "[identity]\nuser_header = \"x-end-user\"\n");
    // Key `kb` has no user: the per-user quota does not apply; its team's rpm does.
    let ok = post(&g, "sk-b", &chat(5)).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-ratelimit-limit-requests"], "3");
    assert_eq!(ok.headers()["x-ratelimit-remaining-requests"], "2");
    // Key `ka` is user `ann`, whose daily token quota of 25 her first request mostly uses:
    // the next is refused as a quota.
    assert_eq!(post(&g, "sk-a", &chat(5)).await.status(), 200);
    let r = post(&g, "sk-a", &chat(5)).await;
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "insufficient_quota", "{v}");
    assert_eq!(v["error"]["type"], "insufficient_quota", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("user `ann`"),
        "{v}"
    );
    // The team's third request is admitted, its fourth refused, in the Anthropic shape for an
    // Anthropic client; a trusted header names another user, so the quota does not apply.
    assert_eq!(post(&g, "sk-b", &chat(5)).await.status(), 200);
    let r = client()
        .post(g.url("/v1/messages"))
        .header("x-api-key", "sk-b")
        .header("anthropic-version", "2023-06-01")
        .json(&chat(5))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "rate_limit_error", "{v}");
}

#[tokio::test]
async fn a_backend_over_its_limit_is_skipped_for_the_next_target() {
    let m1 = mock("one", &[]);
    let m2 = mock("two", &[]);
    let cfg = format!(
        "[[backends]]\nname = \"b1\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:{}\"\n\
         [[backends]]\nname = \"b2\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:{}\"\n\
         [[routes]]\nmodels = [\"gpt-4o-mini\"]\ntargets = [{{ backend = \"b1\" }}, {{ backend = \"b2\" }}]\n\
         [[limits]]\nscope = \"backend\"\nmatch = \"b1\"\nrequests_per_minute = 1\n\
         [[limits]]\nscope = \"backend\"\nmatch = \"b2\"\nrequests_per_minute = 1\n",
        m1.port, m2.port
    );
    let g = Gateway::start("", &cfg);
    let name = |r: &reqwest::Response| r.headers()["x-mock-name"].to_str().unwrap().to_string();
    let c = client();
    let send = || c.post(g.url("/v1/chat/completions")).json(&chat(5)).send();
    let start = minute();
    let first = send().await.unwrap();
    let second = send().await.unwrap();
    let third = send().await.unwrap();
    if minute() != start {
        return; // the window reset mid-test: nothing to conclude
    }
    assert_eq!((name(&first), name(&second)), ("one".into(), "two".into()));
    assert_eq!(third.status(), 429);
    assert!(third.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn concurrent_requests_are_capped_and_released_at_the_end() {
    use std::time::{Duration, Instant};
    let m = mock("oa", &[]);
    let g = Arc::new(gateway(
        &m,
        "[[limits]]\nscope = \"key\"\nconcurrent_requests = 1\n",
        "",
    ));
    let g2 = g.clone();
    let slow = tokio::spawn(async move {
        client()
            .post(g2.url("/v1/chat/completions"))
            .bearer_auth("sk-a")
            .header("x-mock-delay-ms", "2000")
            .json(&chat(5))
            .send()
            .await
            .unwrap()
            .status()
    });
    // Once the slow request is at its backend (the in-flight gauge says so), it holds the
    // only slot: another request is refused.
    wait_metrics(&g, "tollgate_backend_in_flight{backend=\"oa\"} 1").await;
    let refused = post(&g, "sk-a", &chat(5)).await;
    assert_eq!(refused.status(), 429);
    let v: Value = refused.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("concurrent requests"),
        "{v}"
    );
    assert_eq!(slow.await.unwrap(), 200);
    // The slot is released when the slow request is settled (just after its response).
    let deadline = Instant::now() + Duration::from_secs(5);
    while post(&g, "sk-a", &chat(5)).await.status() != 200 {
        assert!(Instant::now() < deadline, "the slot was never released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_request_that_can_never_fit_is_told_so_and_an_uncapped_one_reserves_what_it_can() {
    let m = mock("oa", &[]);
    let limits = "[[limits]]\nscope = \"key\"\ntokens_per_minute = 500\n";
    // The route reserves 4,096 output tokens for a request that sets no cap.
    let g = gateway(&m, limits, "");
    let r = post(&g, "sk-a", &chat(2000)).await;
    assert_eq!(
        r.status(),
        400,
        "a cap larger than the whole limit can never pass"
    );
    assert!(r.headers().get("retry-after").is_none());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "request_exceeds_limit", "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("key `ka`") && msg.contains("limit 500"),
        "{msg}"
    );
    // No cap: not refused for the default reservation alone.
    let uncapped = json!({"model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say something."}]});
    assert_eq!(post(&g, "sk-b", &uncapped).await.status(), 200);
    assert_eq!(post(&g, "sk-a", &uncapped).await.status(), 200);
}
