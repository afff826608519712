//! `tollgate mock` on its own: it speaks Anthropic and Azure as they are spoken, and checks
//! what they check, so the gateway's tests against it mean something.

mod common;

use common::*;
use serde_json::{json, Value};

const KEY: &str = "sk-mock";

fn messages_body() -> Value {
    json!({"model": "claude-x", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]})
}

async fn post(m: &Proc, path: &str, headers: &[(&str, &str)], body: &Value) -> reqwest::Response {
    let mut r = client().post(format!("{}{path}", m.url())).json(body);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

const ANT: [(&str, &str); 2] = [("x-api-key", KEY), ("anthropic-version", "2023-06-01")];

#[tokio::test]
async fn anthropic_checks_what_anthropic_checks() {
    let m = mock("a", &["--expect-key", KEY]);
    let cases = [
        (
            vec![("anthropic-version", "2023-06-01")],
            messages_body(),
            401,
            "authentication_error",
        ),
        (
            vec![("x-api-key", KEY)],
            messages_body(),
            400,
            "invalid_request_error",
        ),
        (
            ANT.to_vec(),
            json!({"model": "x", "messages": [{"role": "user", "content": "Hi"}]}),
            400,
            "invalid_request_error",
        ),
        (
            ANT.to_vec(),
            json!({"model": "x", "max_tokens": 5, "messages": []}),
            400,
            "invalid_request_error",
        ),
        (
            vec![ANT[0], ANT[1], ("x-mock-status", "529")],
            messages_body(),
            529,
            "overloaded_error",
        ),
    ];
    for (headers, body, status, kind) in cases {
        let r = post(&m, "/v1/messages", &headers, &body).await;
        assert_eq!(r.status(), status, "{headers:?} {body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], kind);
    }
}

#[tokio::test]
async fn anthropic_stream_has_anthropics_shape() {
    let m = mock("a", &[]);
    let mut body = messages_body();
    body["stream"] = json!(true);
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    body["system"] =
        json!([{"type": "text", "text": "ctx", "cache_control": {"type": "ephemeral"}}]);
    let r = post(&m, "/v1/messages", &ANT, &body).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));
    let text = r.text().await.unwrap();
    let events: Vec<(String, Value)> = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (n, d) = e.split_once('\n').unwrap();
            (
                n["event: ".len()..].to_string(),
                serde_json::from_str(&d["data: ".len()..]).unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..4],
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta"
        ]
    );
    assert_eq!(events[1].1["content_block"]["type"], "thinking");
    assert!(text.contains("signature_delta"));
    assert_eq!(names[names.len() - 2..], ["message_delta", "message_stop"]);
    let u = &events[0].1["message"]["usage"];
    assert!(u["cache_read_input_tokens"].as_u64().unwrap() > 0);
    assert!(u["cache_creation_input_tokens"].as_u64().unwrap() > 0);
    let out = events[events.len() - 2].1["usage"]["output_tokens"]
        .as_u64()
        .unwrap();
    // 16 words of text plus 4 of thinking.
    assert_eq!(out, 20);
    // The same request, not streamed, gives the same content.
    body["stream"] = json!(false);
    let v: Value = post(&m, "/v1/messages", &ANT, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["usage"]["output_tokens"], 20);
    assert_eq!(v["content"][0]["type"], "thinking");
    assert_eq!(v["stop_reason"], "end_turn");
}

#[tokio::test]
async fn tool_use_then_text_after_results() {
    let m = mock("a", &[]);
    let mut body = messages_body();
    body["tools"] = json!([{"name": "a", "input_schema": {"type": "object", "properties": {"n": {"type": "integer"}}}},
                          {"name": "b", "input_schema": {"type": "object", "properties": {}}}]);
    let v: Value = post(&m, "/v1/messages", &ANT, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    let uses: Vec<&Value> = v["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .collect();
    assert_eq!(uses.len(), 2, "parallel by default");
    assert_eq!(uses[0]["input"]["n"], 42);
    body["tool_choice"] = json!({"type": "auto", "disable_parallel_tool_use": true});
    let v: Value = post(&m, "/v1/messages", &ANT, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["content"].as_array().unwrap().len(),
        2,
        "text + one tool_use"
    );
    body["messages"] = json!([{"role": "user", "content": "Hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "a", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "7"}]}]);
    let v: Value = post(&m, "/v1/messages", &ANT, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["stop_reason"], "end_turn");
    let r = post(&m, "/v1/messages/count_tokens", &ANT, &messages_body()).await;
    assert!(
        r.json::<Value>().await.unwrap()["input_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn azure_paths_key_and_version() {
    let m = mock("az", &["--expect-key", KEY]);
    let path = "/openai/deployments/dep-1/chat/completions";
    let ok = post(
        &m,
        &format!("{path}?api-version=2024-10-21"),
        &[("api-key", KEY)],
        &chat("ignored"),
    )
    .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-mock-model"], "dep-1");
    assert_eq!(ok.json::<Value>().await.unwrap()["model"], "dep-1");
    let r = post(&m, path, &[("api-key", KEY)], &chat("x")).await;
    assert_eq!(r.status(), 400, "api-version is required");
    let bearer = format!("Bearer {KEY}");
    let r = post(
        &m,
        &format!("{path}?api-version=1"),
        &[("authorization", &bearer)],
        &chat("x"),
    )
    .await;
    assert_eq!(r.status(), 401, "Azure takes api-key, not a Bearer token");
    assert_error_shape(&r.json::<Value>().await.unwrap());
}

#[tokio::test]
async fn openai_tool_calls_and_usage_details() {
    let m = mock("o", &[]);
    let mut body = chat("gpt");
    body["tools"] = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"s": {"type": "string"}}}}}]);
    body["reasoning_effort"] = json!("low");
    let r = post(
        &m,
        "/v1/chat/completions",
        &[("x-mock-cached-tokens", "2")],
        &body,
    )
    .await;
    let v: Value = r.json().await.unwrap();
    let c = &v["choices"][0];
    assert_eq!(c["finish_reason"], "tool_calls");
    assert!(c["message"]["content"].is_null());
    let args: Value = serde_json::from_str(
        c["message"]["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(args["s"].is_string());
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
    assert!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}
