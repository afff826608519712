//! The gateway's client API through the real binary, in front of `tollgate mock` instances.

mod common;

use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const CLIENT_KEY: &str = "sk-client-team-a";

fn keys() -> String {
    format!(
        "[[keys]]\nname = \"team-a\"\nsha256 = \"{}\"\n",
        sha256_hex(CLIENT_KEY.as_bytes())
    )
}

/// One mock behind routes for a few model names; keys on.
fn simple() -> (Proc, Gateway) {
    let m = mock("m1", &["--expect-key", "sk-upstream"]);
    let cfg = format!(
        "{}{}[[routes]]\nmodels = [\"gpt-4o-mini\", \"gpt-4o-*\"]\ntargets = [{{ backend = \"m1\" }}]\n\
         [[routes]]\nmodels = [\"renamed\"]\ntargets = [{{ backend = \"m1\", model = \"llama3\" }}]\n",
        backend("m1", m.port, "api_key = \"sk-upstream\""),
        keys()
    );
    let g = Gateway::start("", &cfg);
    (m, g)
}

async fn post(c: &reqwest::Client, url: &str, body: &Value) -> reqwest::Response {
    c.post(url)
        .bearer_auth(CLIENT_KEY)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn chat_passes_through_with_backend_key_and_request_id() {
    let (m, g) = simple();
    let c = client();
    let r = c
        .post(g.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .header("x-api-key", CLIENT_KEY)
        .json(&chat("gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(rid.len(), 32);
    // --expect-key means the mock saw the backend's key; the client's never arrives.
    let seen = r.headers()["x-mock-request-headers"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!seen.split(',').any(|h| h == "x-api-key"), "{seen}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4o-mini");

    // Same request straight to the mock gives the same reply: nothing was rewritten.
    let direct: Value = c
        .post(format!("{}/v1/chat/completions", m.url()))
        .bearer_auth("sk-upstream")
        .json(&chat("gpt-4o-mini"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"], direct["choices"]);
    assert_eq!(v["usage"], direct["usage"]);
    assert_eq!(v["id"], direct["id"]);

    // A client-supplied request id is kept when it is plain.
    let r = c
        .post(g.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .header("x-request-id", "my-trace-123")
        .json(&chat("gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "my-trace-123");
}

#[tokio::test]
async fn model_override_and_globs() {
    let (_m, g) = simple();
    let c = client();
    let r = post(&c, &g.url("/v1/chat/completions"), &chat("renamed")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-mock-model"], "llama3");
    let r = post(
        &c,
        &g.url("/v1/chat/completions"),
        &chat("gpt-4o-2024-08-06"),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-mock-model"], "gpt-4o-2024-08-06");
}

#[tokio::test]
async fn completions_embeddings_and_models() {
    let (_m, g) = simple();
    let c = client();
    let r = post(
        &c,
        &g.url("/v1/completions"),
        &json!({"model": "gpt-4o-mini", "prompt": "Once", "max_tokens": 4}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["usage"]["completion_tokens"], 4);
    assert_eq!(v["choices"][0]["finish_reason"], "length");

    let r = post(
        &c,
        &g.url("/v1/completions"),
        &json!({"model": "gpt-4o-mini", "prompt": "Once", "stream": true}),
    )
    .await;
    let text = r.text().await.unwrap();
    assert!(text.contains("\"object\":\"text_completion\""));
    assert!(text.ends_with("data: [DONE]\n\n"));

    let r = post(
        &c,
        &g.url("/v1/embeddings"),
        &json!({"model": "gpt-4o-mini", "input": ["a", "b"], "dimensions": 4}),
    )
    .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["embedding"].as_array().unwrap().len(), 4);

    let r = c
        .get(g.url("/v1/models"))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gpt-4o-mini", "renamed"]);
    assert_eq!(v["data"][0]["object"], "model");
}

/// Splits an SSE body into its `data:` payloads.
fn events(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn stream_usage_only_when_asked() {
    let (_m, g) = simple();
    let c = client();
    let mut body = chat("gpt-4o-mini");
    body["stream"] = json!(true);
    let plain = post(&c, &g.url("/v1/chat/completions"), &body).await;
    assert_eq!(
        plain.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let ev = events(&plain.text().await.unwrap());
    assert_eq!(ev.last().unwrap(), "[DONE]");
    assert!(ev.iter().all(|e| !e.contains("\"usage\"")));

    body["stream_options"] = json!({"include_usage": true});
    let ev = events(
        &post(&c, &g.url("/v1/chat/completions"), &body)
            .await
            .text()
            .await
            .unwrap(),
    );
    let usage: Value = serde_json::from_str(&ev[ev.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 16);
}

/// Events reach the client one at a time, as the mock emits them: the first arrives while the
/// mock still holds the rest (their arrival spans at least the mock's pauses between them).
async fn assert_streams_event_by_event(c: &reqwest::Client, g: &Gateway) {
    let mut body = chat("gpt-4o-mini");
    body["stream"] = json!(true);
    let r = c
        .post(g.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .header("x-mock-chunk-delay-ms", "150")
        .header("x-mock-words", "3")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let mut arrivals = Vec::new();
    let mut buf = String::new();
    while let Some(chunk) = stream.next().await {
        buf.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        while let Some(i) = buf.find("\n\n") {
            arrivals.push((Instant::now(), buf[..i].to_string()));
            buf.drain(..i + 2);
        }
    }
    // role, 3 words, finish, [DONE]: six events, the mock pausing 150 ms before each after the first.
    assert_eq!(arrivals.len(), 6, "{arrivals:?}");
    let span = arrivals[5].0 - arrivals[0].0;
    assert!(
        span >= Duration::from_millis(5 * 150 - 20),
        "events arrived together: {span:?}"
    );
    for w in arrivals.windows(2) {
        assert!(
            w[1].0 - w[0].0 >= Duration::from_millis(100),
            "two events in one burst"
        );
    }
}

#[tokio::test]
async fn streaming_is_event_by_event_http1() {
    let (_m, g) = simple();
    assert_streams_event_by_event(&client(), &g).await;
}

#[tokio::test]
async fn streaming_is_event_by_event_h2c() {
    let (_m, g) = simple();
    let c = h2c_client();
    assert_streams_event_by_event(&c, &g).await;
    let r = post(&c, &g.url("/v1/chat/completions"), &chat("gpt-4o-mini")).await;
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let r = post(&c, &g.url("/v1/chat/completions"), &chat("nope")).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn ten_mib_body_is_routed_by_model_after_messages() {
    let a = mock("a", &[]);
    let b = mock("b", &[]);
    let cfg = format!(
        "{}{}[[routes]]\nmodels = [\"model-a\"]\ntargets = [{{ backend = \"a\" }}]\n[[routes]]\nmodels = [\"model-b\"]\ntargets = [{{ backend = \"b\" }}]\n",
        backend("a", a.port, ""),
        backend("b", b.port, "")
    );
    let g = Gateway::start("", &cfg);
    let filler = "x".repeat(10 * 1024 * 1024);
    // `model` comes last, after 10 MiB of messages.
    let body = format!(
        "{{\"messages\":[{{\"role\":\"user\",\"content\":\"{filler}\"}}],\"max_tokens\":1,\"model\":\"model-b\"}}"
    );
    let r = post_raw(&g, &body).await;
    assert_arrived_intact(&r, "b", &body);
}

/// Posts a raw JSON body (no key) to the chat endpoint.
async fn post_raw(g: &Gateway, body: &str) -> reqwest::Response {
    client()
        .post(g.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// The mock named `mock_name` answered, and received `body` byte for byte.
fn assert_arrived_intact(r: &reqwest::Response, mock_name: &str, body: &str) {
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-mock-name"], mock_name);
    assert_eq!(
        r.headers()["x-mock-body-sha256"].to_str().unwrap(),
        sha256_hex(body.as_bytes())
    );
}

fn big_body(model: &str) -> String {
    // Larger than Pingora's 64 KiB retry buffer, to show the replay does not depend on it.
    format!(
        "{{\"model\":\"{model}\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
        "lorem ipsum ".repeat(20_000)
    )
}

async fn failover_case(first: &str, first_backend_extra: &str, mock_flags: &[&str]) {
    let bad = mock("bad", mock_flags);
    let good = mock("good", &[]);
    let first_port = if first == "dead" {
        dead_port()
    } else {
        bad.port
    };
    let cfg = format!(
        "{}{}[[routes]]\nmodels = [\"m\"]\ntargets = [{{ backend = \"first\" }}, {{ backend = \"good\" }}]\n",
        backend("first", first_port, first_backend_extra),
        backend("good", good.port, "")
    );
    let g = Gateway::start("", &cfg);
    let body = big_body("m");
    let r = post_raw(&g, &body).await;
    // Byte for byte at the second target.
    assert_arrived_intact(&r, "good", &body);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let line: Value = serde_json::from_str(&g.proc.wait_line(&rid)).unwrap();
    assert_eq!(line["attempts"], 2);
    assert_eq!(line["backend"], "good");
    wait_metrics(&g, "tollgate_upstream_failures_total{backend=\"first\"").await;
}

#[tokio::test]
async fn failover_on_connection_refused() {
    failover_case("dead", "", &[]).await;
}

#[tokio::test]
async fn failover_on_503() {
    failover_case("bad", "", &["--status", "503"]).await;
}

#[tokio::test]
async fn failover_on_429() {
    failover_case("bad", "", &["--status", "429"]).await;
}

#[tokio::test]
async fn failover_on_timeout() {
    failover_case("bad", "read_timeout_ms = 200", &["--delay-ms", "3000"]).await;
}

#[tokio::test]
async fn last_target_status_is_passed_through() {
    let bad = mock("bad", &["--status", "503"]);
    let cfg = format!(
        "{}[[routes]]\nmodels = [\"m\"]\ntargets = [{{ backend = \"bad\" }}]\n",
        backend("bad", bad.port, "")
    );
    let g = Gateway::start("", &cfg);
    let r = post(&client(), &g.url("/v1/chat/completions"), &chat("m")).await;
    assert_eq!(r.status(), 503);
    assert_error_shape(&r.json().await.unwrap());
}

#[tokio::test]
async fn unreachable_is_502_and_timeout_is_504() {
    let slow = mock("slow", &["--delay-ms", "5000"]);
    let cfg = format!(
        "{}{}[[routes]]\nmodels = [\"dead\"]\ntargets = [{{ backend = \"d1\" }}, {{ backend = \"d2\" }}]\n\
         [[routes]]\nmodels = [\"slow\"]\ntargets = [{{ backend = \"slow\" }}]\n{}",
        backend("d1", dead_port(), ""),
        backend("d2", dead_port(), ""),
        backend("slow", slow.port, "read_timeout_ms = 300"),
    );
    let g = Gateway::start("", &cfg);
    let c = client();
    let r = post(&c, &g.url("/v1/chat/completions"), &chat("dead")).await;
    assert_eq!(r.status(), 502);
    let e = assert_error_shape(&r.json().await.unwrap());
    assert_eq!(e["code"], "upstream_unreachable");
    let r = post(&c, &g.url("/v1/chat/completions"), &chat("slow")).await;
    assert_eq!(r.status(), 504);
    let e = assert_error_shape(&r.json().await.unwrap());
    assert_eq!(e["code"], "upstream_timeout");
}

#[tokio::test]
async fn error_statuses_have_openai_shape() {
    let (_m, g) = simple();
    let c = client();
    let url = g.url("/v1/chat/completions");
    let cases: Vec<(reqwest::RequestBuilder, u16, Option<&str>)> = vec![
        (
            c.post(&url).json(&chat("gpt-4o-mini")),
            401,
            Some("invalid_api_key"),
        ),
        (
            c.post(&url)
                .bearer_auth("sk-wrong")
                .json(&chat("gpt-4o-mini")),
            401,
            Some("invalid_api_key"),
        ),
        (
            c.post(&url).bearer_auth(CLIENT_KEY).body("{not json"),
            400,
            Some("invalid_json"),
        ),
        (
            c.post(&url).bearer_auth(CLIENT_KEY).body("[1,2]"),
            400,
            None,
        ),
        (
            c.post(&url)
                .bearer_auth(CLIENT_KEY)
                .body("{\"messages\":[]}"),
            400,
            None,
        ),
        (
            c.post(&url).bearer_auth(CLIENT_KEY).body("{\"model\":42}"),
            400,
            None,
        ),
        (
            c.post(&url).bearer_auth(CLIENT_KEY).body(""),
            400,
            Some("invalid_json"),
        ),
        (
            c.post(&url).bearer_auth(CLIENT_KEY).json(&chat("claude-9")),
            404,
            Some("model_not_found"),
        ),
        (
            c.get(&url).bearer_auth(CLIENT_KEY),
            405,
            Some("method_not_allowed"),
        ),
        (
            c.post(g.url("/v1/nothing")).bearer_auth(CLIENT_KEY),
            404,
            Some("unknown_url"),
        ),
    ];
    for (req, status, code) in cases {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), status);
        assert!(r.headers().contains_key("x-request-id"));
        assert_eq!(r.headers()["content-type"], "application/json");
        let e = assert_error_shape(&r.json().await.unwrap());
        if let Some(code) = code {
            assert_eq!(e["code"], code);
        }
        if status == 404 && code == Some("model_not_found") {
            assert!(e["message"].as_str().unwrap().contains("claude-9"));
        }
    }
    // x-api-key authenticates too.
    let r = c
        .post(&url)
        .header("x-api-key", CLIENT_KEY)
        .json(&chat("gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn body_over_limit_is_413() {
    let m = mock("m", &[]);
    let cfg = format!(
        "{}[[routes]]\nmodels = [\"m\"]\ntargets = [{{ backend = \"m\" }}]\n",
        backend("m", m.port, "")
    );
    let g = Gateway::start("max_body_bytes = 4096", &cfg);
    let body = big_body("m");
    let c = client();
    // Declared length over the limit.
    let r = c
        .post(g.url("/v1/chat/completions"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        assert_error_shape(&r.json().await.unwrap())["code"],
        "request_too_large"
    );
    // Chunked upload (no length) that grows past the limit.
    let chunks: Vec<Result<String, std::io::Error>> = body
        .as_bytes()
        .chunks(1000)
        .map(|c| Ok(String::from_utf8_lossy(c).into_owned()))
        .collect();
    let r = c
        .post(g.url("/v1/chat/completions"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Under the limit still works.
    let r = c
        .post(g.url("/v1/chat/completions"))
        .json(&chat("m"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn mid_stream_failure_truncates_with_error_event() {
    let (_m, g) = simple();
    let mut body = chat("gpt-4o-mini");
    body["stream"] = json!(true);
    let r = client()
        .post(g.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .header("x-mock-drop-after", "3")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut s = r.bytes_stream();
    let mut text = String::new();
    let mut failed = false;
    while let Some(c) = s.next().await {
        match c {
            Ok(b) => text.push_str(&String::from_utf8_lossy(&b)),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(
        failed,
        "a truncated upstream must not look like a complete response"
    );
    let ev = events(&text);
    assert_eq!(ev.len(), 4, "{ev:?}");
    assert!(ev[3].contains("upstream_stream_error"));
    assert!(!text.contains("[DONE]"));
    // The gateway is still healthy.
    let r = post(
        &client(),
        &g.url("/v1/chat/completions"),
        &chat("gpt-4o-mini"),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn access_log_and_metrics() {
    let (_m, g) = simple();
    let c = client();
    let r = post(&c, &g.url("/v1/chat/completions"), &chat("gpt-4o-mini")).await;
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let line = g.proc.wait_line(&rid);
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["key"], "team-a");
    assert_eq!(v["model"], "gpt-4o-mini");
    assert_eq!(v["route"], "route0");
    assert_eq!(v["backend"], "m1");
    assert_eq!(v["status"], 200);
    assert_eq!(v["attempts"], 1);
    assert!(v["duration_ms"].as_f64().unwrap() > 0.0);
    post(&c, &g.url("/v1/chat/completions"), &chat("unknown-model")).await;
    // Settlement runs after the response is sent: wait for the 404 to be counted.
    let text = wait_metrics(&g, "status=\"404\"").await;
    assert!(
        text.contains(
            "tollgate_requests_total{backend=\"m1\",model=\"gpt-4o-mini\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("tollgate_request_duration_seconds_bucket{backend=\"m1\",model=\"gpt-4o-mini\",status=\"200\""));
    // An unknown model never becomes a label value.
    assert!(!text.contains("unknown-model"));
    assert!(text.contains("status=\"404\""));
    // No secret anywhere.
    let all = format!(
        "{}{}{text}",
        g.proc.stdout().join("\n"),
        g.proc.stderr().join("\n")
    );
    assert!(!all.contains(CLIENT_KEY) && !all.contains("sk-upstream"));
    let r = c.get(g.admin("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
