//! `tollgate mock` on its own: it speaks Anthropic as Anthropic does and checks what it
//! checks, so the gateway's tests against it mean something (OpenAI and Azure:
//! `mock_openai.rs`); its HTTPS listener.

mod common;

use common::*;
use serde_json::{json, Value};

const KEY: &str = "sk-mock";

fn messages_body() -> Value {
    json!({"model": "claude-x", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]})
}

const ANT: [(&str, &str); 2] = [("x-api-key", KEY), ("anthropic-version", "2023-06-01")];

/// Anthropic SSE as (event name, data); every event must have both lines.
fn anthropic_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (n, d) = e.split_once('\n').unwrap();
            let name = n.strip_prefix("event: ").unwrap_or_else(|| panic!("{e}"));
            let data = d.strip_prefix("data: ").unwrap_or_else(|| panic!("{e}"));
            (name.to_string(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

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
            ANT.to_vec(),
            json!({"max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}),
            400,
            "invalid_request_error",
        ),
        (
            ANT.to_vec(),
            json!({"model": "x", "max_tokens": 5, "messages": "Hi"}),
            400,
            "invalid_request_error",
        ),
        (
            ANT.to_vec(),
            json!({"model": 7, "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}),
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
        let r = post_json(&m, "/v1/messages", &headers, &body).await;
        assert_eq!(r.status(), status, "{headers:?} {body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], kind);
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
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
    let r = post_json(&m, "/v1/messages", &ANT, &body).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));
    let text = r.text().await.unwrap();
    let events = anthropic_events(&text);
    let names = names(&events);
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
    let v: Value = post_json(&m, "/v1/messages", &ANT, &body)
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
    let v: Value = post_json(&m, "/v1/messages", &ANT, &body)
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
    let v: Value = post_json(&m, "/v1/messages", &ANT, &body)
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
    let v: Value = post_json(&m, "/v1/messages", &ANT, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["stop_reason"], "end_turn");
    let r = post_json(&m, "/v1/messages/count_tokens", &ANT, &messages_body()).await;
    assert!(
        r.json::<Value>().await.unwrap()["input_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn anthropic_stream_event_order_and_reported_headers() {
    let m = mock("a", &["--words", "3"]);
    let mut body = messages_body();
    body["stream"] = json!(true);
    let r = post_json(&m, "/v1/messages?beta=true", &ANT, &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(r.headers()["x-mock-path"], "/v1/messages?beta=true");
    assert_eq!(r.headers()["x-mock-anthropic-version"], "2023-06-01");
    assert_eq!(r.headers()["x-mock-http-version"], "1.1");
    assert_eq!(r.headers()["x-mock-model"], "claude-x");
    let text = r.text().await.unwrap();
    // Anthropic's ping, byte for byte, right after the first block starts.
    assert!(text.contains("event: ping\ndata: {\"type\": \"ping\"}\n\n"));
    assert!(text.starts_with(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_"
    ));
    let events = anthropic_events(&text);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let start = &events[0].1["message"];
    assert!(start["stop_reason"].is_null() && start["content"] == json!([]));
    assert_eq!(start["usage"]["output_tokens"], 1);
    assert_eq!(start["usage"]["cache_read_input_tokens"], 0);
    let end = &events[7].1;
    assert_eq!(end["delta"]["stop_reason"], "end_turn");
    assert_eq!(end["usage"]["output_tokens"], 3);
    let streamed: String = events[3..6]
        .iter()
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap())
        .collect();
    body["stream"] = json!(false);
    let r = post_json(&m, "/v1/messages", &ANT, &body).await;
    assert!(r.headers()["request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_mock"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["content"][0]["text"], streamed,
        "the same words either way"
    );
    assert_eq!(v["usage"]["service_tier"], "standard");
    // Capped by max_tokens.
    body["max_tokens"] = json!(2);
    let v: Value = post_json(&m, "/v1/messages", &ANT, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["usage"]["output_tokens"], 2);
}

#[tokio::test]
async fn anthropic_tool_stream_fragments_rebuild_the_input() {
    let m = mock("a", &[]);
    let mut body = messages_body();
    body["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}]);
    let whole: Value = post_json(&m, "/v1/messages", &ANT, &body)
        .await
        .json()
        .await
        .unwrap();
    let input = &whole["content"][1]["input"];
    assert_eq!(whole["content"][0]["text"], "I'll use the tool.");
    assert!(whole["content"][1]["id"]
        .as_str()
        .unwrap()
        .starts_with("toolu_mock"));
    assert_eq!(input["days"], 42);
    body["stream"] = json!(true);
    let text = post_json(&m, "/v1/messages", &ANT, &body)
        .await
        .text()
        .await
        .unwrap();
    let events = anthropic_events(&text);
    let start = events
        .iter()
        .find(|(_, d)| d["content_block"]["type"] == "tool_use")
        .unwrap();
    assert_eq!(start.1["content_block"]["input"], json!({}));
    let parts: Vec<&str> = events
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "input_json_delta")
        .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert!(
        (2..=4).contains(&parts.len()) && parts[0].is_empty(),
        "{parts:?}"
    );
    let rebuilt: Value = serde_json::from_str(&parts.concat()).unwrap();
    assert_eq!(&rebuilt, input);
    let end = &events[events.len() - 2].1;
    assert_eq!(end["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        end["usage"]["output_tokens"],
        whole["usage"]["output_tokens"]
    );
}

#[tokio::test]
async fn in_stream_errors_end_the_stream_cleanly() {
    let m = mock("a", &[]);
    let mut body = messages_body();
    body["stream"] = json!(true);
    let after = [ANT[0], ANT[1], ("x-mock-stream-error-after", "3")];
    let r = post_json(&m, "/v1/messages", &after, &body).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.ends_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"), "{text}");
    let events = anthropic_events(&text);
    assert_eq!(
        names(&events),
        ["message_start", "content_block_start", "ping", "error"]
    );
    // OpenAI: the error as a data line, and no [DONE].
    let mut body = chat("gpt");
    body["stream"] = json!(true);
    let r = post_json(
        &m,
        "/v1/chat/completions",
        &[("x-mock-stream-error-after", "2")],
        &body,
    )
    .await;
    let (chunks, done) = openai_chunks(&r.text().await.unwrap());
    assert!(!done);
    assert_eq!(chunks.len(), 3);
    assert_eq!(chunks[2]["error"]["code"], "server_is_overloaded");
    assert_error_shape(&chunks[2]);
}

#[tokio::test]
async fn anthropic_errors_count_tokens_and_stop_sequences() {
    let m = mock("a", &["--expect-key", KEY]);
    let r = post_json(
        &m,
        "/v1/messages",
        &[ANT[0], ANT[1], ("x-mock-status", "429")],
        &messages_body(),
    )
    .await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert!(v["request_id"].as_str().unwrap().starts_with("req_"));
    let r = post_json(
        &m,
        "/v1/messages",
        &[("x-api-key", "wrong"), ANT[1]],
        &messages_body(),
    )
    .await;
    assert_eq!(r.status(), 401);
    let r = post_json(
        &m,
        "/v1/messages",
        &[ANT[0], ("anthropic-version", "2020-01-01")],
        &messages_body(),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("anthropic-version"));
    // count_tokens: the same header checks, no max_tokens.
    let body = json!({"model": "x", "messages": [{"role": "user", "content": "Hello there"}]});
    let r = post_json(&m, "/v1/messages/count_tokens", &ANT, &body).await;
    assert_eq!(r.status(), 200);
    let n = r.json::<Value>().await.unwrap()["input_tokens"]
        .as_u64()
        .unwrap();
    let mut full = body.clone();
    full["max_tokens"] = json!(10);
    let v: Value = post_json(&m, "/v1/messages", &ANT, &full)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["usage"]["input_tokens"], n, "the same estimate");
    let r = post_json(&m, "/v1/messages/count_tokens", &[ANT[0]], &body).await;
    assert_eq!(r.status(), 400);
    // A stop sequence that is one of the reply's words ends the reply there.
    let word = v["content"][0]["text"]
        .as_str()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .to_string();
    full["stop_sequences"] = json!([word]);
    let v: Value = post_json(&m, "/v1/messages", &ANT, &full)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["stop_reason"], "stop_sequence");
    assert_eq!(v["stop_sequence"], word);
}

/// `tollgate mock --tls` and a client trusting its generated certificate.
fn tls_client(http1: bool) -> (Proc, reqwest::Client) {
    let (m, cert) = tls_mock();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca);
    if http1 {
        b = b.http1_only();
    }
    (m, b.build().unwrap())
}

#[tokio::test]
async fn https_with_h2_and_http1_by_alpn() {
    for (http1, version) in [(false, "2"), (true, "1.1")] {
        let (m, c) = tls_client(http1);
        for host in ["localhost", "127.0.0.1"] {
            let mut body = messages_body();
            body["stream"] = json!(true);
            let mut req = c.post(format!("https://{host}:{}/v1/messages", m.port));
            for (k, v) in ANT {
                req = req.header(k, v);
            }
            let r = req.json(&body).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["x-mock-http-version"], version);
            let events = anthropic_events(&r.text().await.unwrap());
            assert_eq!(events.last().unwrap().0, "message_stop");
        }
    }
}

#[tokio::test]
async fn tls_alone_generates_a_certificate_and_says_where() {
    let m = mock("tls", &["--tls"]);
    let line = m.wait_stderr("certificate ");
    let path = line
        .split("certificate ")
        .nth(1)
        .unwrap()
        .trim_end_matches(')');
    let ca = reqwest::Certificate::from_pem(&std::fs::read(path).unwrap()).unwrap();
    let c = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let r = c
        .get(format!("https://localhost:{}/v1/models", m.port))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-mock-http-version"], "2");
}

#[tokio::test]
async fn anthropic_takes_any_dated_version() {
    let m = mock("a", &["--expect-key", KEY]);
    for (version, status) in [
        ("2023-06-01", 200),
        ("2023-01-01", 200),
        ("2025-05-14", 200),
        ("latest", 400),
        ("2022-12-31", 400),
    ] {
        let headers = [("x-api-key", KEY), ("anthropic-version", version)];
        let r = post_json(&m, "/v1/messages", &headers, &messages_body()).await;
        assert_eq!(r.status(), status, "{version}");
    }
}

#[tokio::test]
async fn anthropic_usage_has_the_current_fields() {
    let m = mock("a", &["--expect-key", KEY]);
    let mut body = messages_body();
    body["system"] = json!([{"type": "text", "text": "Be brief, be kind, be quick.",
        "cache_control": {"type": "ephemeral"}}]);
    let v: Value = post_json(&m, "/v1/messages", &ANT, &body)
        .await
        .json()
        .await
        .unwrap();
    let u = &v["usage"];
    let write = u["cache_creation_input_tokens"].as_u64().unwrap();
    assert!(write > 0, "{u}");
    assert_eq!(u["cache_creation"]["ephemeral_5m_input_tokens"], write);
    assert_eq!(u["cache_creation"]["ephemeral_1h_input_tokens"], 0);
    assert_eq!(
        (u["service_tier"].as_str(), u["inference_geo"].is_string()),
        (Some("standard"), true)
    );
    body["stream"] = json!(true);
    let text = post_json(&m, "/v1/messages", &ANT, &body)
        .await
        .text()
        .await
        .unwrap();
    let events = anthropic_events(&text);
    let (_, delta) = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    // The current API repeats the input figures in `message_delta`'s cumulative usage.
    for k in [
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "output_tokens",
    ] {
        assert_eq!(delta["usage"][k], v["usage"][k], "{k}: {delta}");
    }
}
