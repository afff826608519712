//! `tollgate mock` on its own, as OpenAI and Azure: Azure's paths, key and version checks,
//! tool calls and usage details plain and streamed as OpenAI streams them.

mod common;

use common::*;
use serde_json::{json, Value};

const KEY: &str = "sk-mock";

#[tokio::test]
async fn azure_paths_key_and_version() {
    let m = mock("az", &["--expect-key", KEY]);
    let path = "/openai/deployments/dep-1/chat/completions";
    let ok = post_json(
        &m,
        &format!("{path}?api-version=2024-10-21"),
        &[("api-key", KEY)],
        &chat("ignored"),
    )
    .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-mock-model"], "dep-1");
    assert_eq!(ok.json::<Value>().await.unwrap()["model"], "dep-1");
    let r = post_json(&m, path, &[("api-key", KEY)], &chat("x")).await;
    assert_eq!(r.status(), 400, "api-version is required");
    let bearer = format!("Bearer {KEY}");
    let r = post_json(
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
    let r = post_json(
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

#[tokio::test]
async fn openai_tool_calls_stream_as_openai_streams_them() {
    let m = mock("o", &[]);
    let mut body = chat("gpt");
    body["tools"] = json!([
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "g", "parameters": {"type": "object", "properties": {"n": {"type": "number"}}}}}]);
    let whole: Value = post_json(&m, "/v1/chat/completions", &[], &body)
        .await
        .json()
        .await
        .unwrap();
    let calls = whole["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(calls.len(), 2, "parallel by default");
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_mock"));
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let (chunks, done) = openai_chunks(
        &post_json(&m, "/v1/chat/completions", &[], &body)
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(done);
    // The first chunk carries the role and the first call's head, with empty arguments.
    let first = &chunks[0]["choices"][0]["delta"];
    assert_eq!(first["role"], "assistant");
    assert!(first["content"].is_null());
    assert_eq!(first["tool_calls"][0]["id"], calls[0]["id"]);
    assert_eq!(first["tool_calls"][0]["function"]["arguments"], "");
    let mut args = [String::new(), String::new()];
    let mut fragments = [0, 0];
    for c in &chunks {
        for t in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = t["index"].as_u64().unwrap() as usize;
            args[i] += t["function"]["arguments"].as_str().unwrap();
            fragments[i] += 1;
        }
    }
    for i in 0..2 {
        assert_eq!(args[i], calls[i]["function"]["arguments"].as_str().unwrap());
        assert!(
            (3..=5).contains(&fragments[i]),
            "head + 2-4 argument fragments"
        );
    }
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    let last = &chunks[chunks.len() - 1];
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"], whole["usage"]);
    // Not when calls are forbidden.
    body["stream"] = json!(false);
    body["tool_choice"] = json!("none");
    let v: Value = post_json(&m, "/v1/chat/completions", &[], &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn reasoning_tokens_are_counted_in_completion_tokens() {
    let m = mock("o", &["--words", "6"]);
    let mut body = chat("o3");
    body["reasoning_effort"] = json!("high");
    let v: Value = post_json(
        &m,
        "/v1/chat/completions",
        &[("x-mock-cached-tokens", "100000")],
        &body,
    )
    .await
    .json()
    .await
    .unwrap();
    let u = &v["usage"];
    assert_eq!(u["completion_tokens_details"]["reasoning_tokens"], 3);
    assert_eq!(u["completion_tokens"], 9);
    assert_eq!(
        u["prompt_tokens_details"]["cached_tokens"],
        u["prompt_tokens"]
    );
    let words = v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .split(' ')
        .count();
    assert_eq!(words, 6, "reasoning text is not sent");
}

/// The mock's resident memory, in MB (Linux).
fn rss_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        / 1024
}

#[test]
fn a_slow_reader_holds_the_mock_at_one_event() {
    use std::io::{Read, Write};
    let m = mock("o", &[]);
    for (path, body) in [
        (
            "/v1/chat/completions",
            json!({"model": "m", "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Hi"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "m", "stream": true, "input": "Hi"}),
        ),
    ] {
        let body = body.to_string();
        let mut s = std::net::TcpStream::connect(("127.0.0.1", m.port)).unwrap();
        // Two million events (hundreds of MB framed) to a reader that takes one read and stops.
        write!(
            s,
            "POST {path} HTTP/1.1\r\nhost: m\r\ncontent-type: application/json\r\n\
            x-mock-words: 2000000\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut first = [0u8; 4096];
        assert!(s.read(&mut first).unwrap() > 0);
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let rss = rss_mb(m.pid());
        assert!(
            rss < 300,
            "{path}: the mock grew to {rss} MB for a reader that stopped"
        );
    }
}

#[tokio::test]
async fn responses_stream_numbers_stay_dense_through_an_error() {
    let m = mock("o", &[]);
    let body = json!({"model": "m", "stream": true, "input": "Hi"});
    let events = |text: String| -> Vec<Value> {
        (text.split("\n\n").filter(|e| !e.is_empty()))
            .map(|e| {
                let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
                serde_json::from_str(data).unwrap()
            })
            .collect()
    };
    for headers in [vec![], vec![("x-mock-stream-error-after", "3")]] {
        let text = post_json(&m, "/v1/responses", &headers, &body)
            .await
            .text()
            .await
            .unwrap();
        let evs = events(text);
        let seqs: Vec<u64> = evs
            .iter()
            .map(|e| e["sequence_number"].as_u64().unwrap())
            .collect();
        assert_eq!(
            seqs,
            (0..evs.len() as u64).collect::<Vec<_>>(),
            "{headers:?}"
        );
        if !headers.is_empty() {
            let kinds: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
            assert_eq!(kinds[3..], ["error", "response.failed"]);
            assert_eq!(evs[3]["code"], "server_is_overloaded");
        }
        let last = &evs.last().unwrap()["response"];
        if headers.is_empty() {
            assert_eq!(
                last["usage"]["input_tokens_details"]["cache_write_tokens"], 0,
                "{last}"
            );
        }
    }
}

#[tokio::test]
async fn tool_results_then_user_words_are_answered_with_text() {
    let m = mock("o", &[]);
    let tools = json!([{"type": "function", "function": {"name": "find",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]);
    // As an Anthropic conversation reads in chat: the tool result, then the user's text.
    let body = json!({"model": "m", "tools": tools, "messages": [
        {"role": "user", "content": "Find it"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "find", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "found"},
        {"role": "user", "content": "<system-reminder>keep going</system-reminder>"}]});
    let v: Value = post_json(&m, "/v1/chat/completions", &[], &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
    // The Responses API: a call named in the user's words, with exactly those arguments.
    let body = json!({"model": "m", "input": r#"Do it. mock:call find {"q": "tollgate"}"#,
        "tools": [{"type": "function", "name": "first", "parameters": {}},
                  {"type": "function", "name": "find", "parameters": {}}]});
    let v: Value = post_json(&m, "/v1/responses", &[], &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["output"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(
        (&v["output"][0]["name"], &v["output"][0]["arguments"]),
        (&json!("find"), &json!(r#"{"q":"tollgate"}"#)),
        "{v}"
    );
}

/// The Responses stream's events as JSON.
fn response_events(text: &str) -> Vec<Value> {
    (text.split("\n\n").filter(|e| !e.is_empty()))
        .map(|e| {
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            serde_json::from_str(data).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn responses_have_the_specs_fields_only() {
    let m = mock("o", &[]);
    let tools = json!([
        {"type": "function", "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
        {"type": "function", "name": "lax", "strict": false, "description": "d",
            "parameters": {"type": "object"}},
    ]);
    let body = json!({"model": "m", "input": "Hi", "store": false, "tools": tools});
    let whole: Value = post_json(&m, "/v1/responses", &[], &body)
        .await
        .json()
        .await
        .unwrap();
    assert!(whole.get("store").is_none(), "{whole}");
    assert!(whole["usage"]["total_tokens"].as_u64().unwrap() > 0);
    // Each function tool is echoed with the spec's required fields; `strict` defaults to true.
    let echoed = whole["tools"].as_array().unwrap();
    assert_eq!(echoed[0]["strict"], true);
    assert_eq!(echoed[0]["description"], Value::Null);
    assert_eq!(echoed[0]["parameters"], tools[0]["parameters"]);
    assert_eq!(echoed[1]["strict"], false);
    assert_eq!(echoed[1]["description"], "d");

    // `usage` is absent (not null) until the Response is done, also in `response.failed`.
    let body = json!({"model": "m", "input": "Hi", "stream": true});
    for headers in [vec![], vec![("x-mock-stream-error-after", "3")]] {
        let text = post_json(&m, "/v1/responses", &headers, &body)
            .await
            .text()
            .await
            .unwrap();
        for e in response_events(&text) {
            let kind = e["type"].as_str().unwrap();
            if let Some(r) = e.get("response") {
                assert!(r.get("store").is_none(), "{kind}: {r}");
                let done = kind == "response.completed";
                assert_eq!(r.get("usage").is_some(), done, "{kind}: {r}");
            }
            if kind == "error" {
                // The spec's ResponseErrorEvent: flat fields, nothing nested.
                let mut keys: Vec<&str> =
                    e.as_object().unwrap().keys().map(|k| k.as_str()).collect();
                keys.sort_unstable();
                assert_eq!(
                    keys,
                    ["code", "message", "param", "sequence_number", "type"]
                );
            }
        }
    }
}

#[tokio::test]
async fn invalid_bodies_get_openais_400() {
    let m = mock("o", &[]);
    let msgs = json!([{"role": "user", "content": "Hi"}]);
    let cases = [
        (
            "/v1/chat/completions",
            json!({"model": "m"}),
            Some("messages"),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": []}),
            Some("messages"),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": "Hi"}),
            Some("messages"),
        ),
        ("/v1/chat/completions", json!({"messages": msgs}), None),
        (
            "/v1/responses",
            json!({"model": "m", "input": 42}),
            Some("input"),
        ),
        ("/v1/responses", json!({"input": "Hi"}), Some("model")),
    ];
    for (path, body, param) in cases {
        let r = post_json(&m, path, &[], &body).await;
        assert_eq!(r.status(), 400, "{path} {body}");
        let v: Value = r.json().await.unwrap();
        assert_error_shape(&v);
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        assert_eq!(v["error"]["param"].as_str(), param, "{v}");
        let keys: Vec<&String> = v["error"].as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 4, "message, type, param, code: {v}");
    }
    // Valid bodies still pass; an Azure deployment path needs no model in the body.
    for (path, body) in [
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": msgs}),
        ),
        (
            "/v1/responses",
            json!({"model": "m", "input": [{"role": "user", "content": "Hi"}]}),
        ),
        ("/v1/responses/input_tokens", json!({"input": "Hi"})),
        (
            "/openai/deployments/d/chat/completions?api-version=1",
            json!({"messages": msgs}),
        ),
    ] {
        let r = post_json(&m, path, &[], &body).await;
        assert_eq!(r.status(), 200, "{path} {body}");
    }
}
