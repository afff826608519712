//! Translation end to end through the real binary: OpenAI clients reaching an Anthropic
//! backend, Anthropic clients reaching OpenAI-style, Azure and Anthropic backends, errors in
//! each client's shape, and HTTPS upstreams over h2 and HTTP/1.1.

mod common;

use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};

const CLIENT_KEY: &str = "sk-client";
const UP_KEY: &str = "sk-up";

/// One mock (which checks each API's auth header) behind an OpenAI, an Anthropic and an Azure
/// backend.
fn setup() -> (Proc, Gateway) {
    let m = mock("m", &["--expect-key", UP_KEY]);
    let cfg = format!(
        r#"
[[backends]]
name = "oai"
provider = "openai"
url = "http://127.0.0.1:{p}"
api_key = "{UP_KEY}"

[[backends]]
name = "claude"
provider = "anthropic"
url = "http://127.0.0.1:{p}"
api_key = "{UP_KEY}"

[[backends]]
name = "azure"
provider = "azure"
url = "http://127.0.0.1:{p}"
api_key = "{UP_KEY}"
api_version = "2024-10-21"

[[routes]]
models = ["gpt-4o-mini"]
targets = [{{ backend = "oai" }}]

[[routes]]
models = ["claude-sonnet"]
targets = [{{ backend = "claude", model = "claude-sonnet-4-5" }}]

[[routes]]
models = ["azure-gpt"]
targets = [{{ backend = "azure", model = "my-deployment" }}]

[[keys]]
name = "k"
sha256 = "{h}"
"#,
        p = m.port,
        h = sha256_hex(CLIENT_KEY.as_bytes())
    );
    (m, Gateway::start("", &cfg))
}

async fn openai(g: &Gateway, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut r = client()
        .post(g.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .json(body);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

async fn anthropic(
    g: &Gateway,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut r = client()
        .post(g.url(path))
        .header("x-api-key", CLIENT_KEY)
        .header("anthropic-version", "2023-06-01")
        .json(body);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

fn h(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// SSE events as (event name, data).
fn sse(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = String::new();
            let mut data = String::new();
            for line in e.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = v.to_string();
                }
            }
            (name, data)
        })
        .collect()
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})
}

#[tokio::test]
async fn openai_client_reaches_anthropic() {
    let (_m, g) = setup();
    let body = json!({"model": "claude-sonnet", "max_tokens": 5,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]});
    let r = openai(&g, &body, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, "x-mock-path"), "/v1/messages");
    assert_eq!(h(&r, "x-mock-anthropic-version"), "2023-06-01");
    assert_eq!(h(&r, "x-mock-model"), "claude-sonnet-4-5");
    assert!(h(&r, "content-type").starts_with("application/json"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["model"], "claude-sonnet");
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(text.split_whitespace().count(), 5);
    let u = &v["usage"];
    assert_eq!(u["completion_tokens"], 5);
    assert_eq!(
        u["total_tokens"].as_u64(),
        Some(u["prompt_tokens"].as_u64().unwrap() + 5)
    );
}

#[tokio::test]
async fn openai_client_streams_from_anthropic_with_tools() {
    let (_m, g) = setup();
    let body = json!({"model": "claude-sonnet", "stream": true,
        "stream_options": {"include_usage": true}, "tools": [weather_tool()],
        "messages": [{"role": "user", "content": "Weather in Paris?"}]});
    let r = openai(&g, &body, &[]).await;
    assert_eq!(r.status(), 200);
    assert!(h(&r, "content-type").starts_with("text/event-stream"));
    assert!(r.headers().get("content-length").is_none());
    let events = sse(&r.text().await.unwrap());
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let mut args = String::new();
    let mut finish = None;
    let mut usage = None;
    for (_, d) in &events[..events.len() - 1] {
        let c: Value = serde_json::from_str(d).unwrap();
        assert_eq!(c["model"], "claude-sonnet");
        if !c["usage"].is_null() {
            usage = Some(c["usage"].clone());
        }
        for tc in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if tc["id"].is_string() {
                assert_eq!(tc["function"]["name"], "get_weather");
            }
            args += tc["function"]["arguments"].as_str().unwrap_or("");
        }
        if let Some(f) = c["choices"][0]["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
    }
    let args: Value = serde_json::from_str(&args).unwrap();
    assert!(args["city"].is_string(), "{args}");
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    assert!(usage.unwrap()["completion_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn anthropic_client_reaches_openai_backend() {
    let (_m, g) = setup();
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 4, "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]});
    let r = anthropic(&g, "/v1/messages", &body, &[("anthropic-beta", "x")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, "x-mock-path"), "/v1/chat/completions");
    // Translated: the client's Anthropic headers stay behind.
    assert!(!h(&r, "x-mock-request-headers").contains("anthropic-"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(v["model"], "gpt-4o-mini");
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["content"][0]["type"], "text");
    assert_eq!(v["usage"]["output_tokens"], 4);
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn anthropic_client_streams_from_openai_backend() {
    let (_m, g) = setup();
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 64, "stream": true,
        "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "messages": [{"role": "user", "content": "Weather?"}]});
    let r = anthropic(&g, "/v1/messages", &body, &[("x-mock-cached-tokens", "3")]).await;
    assert_eq!(r.status(), 200);
    let events = sse(&r.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..2], ["message_start", "ping"]);
    assert_eq!(names[names.len() - 2..], ["message_delta", "message_stop"]);
    let tool_start = events
        .iter()
        .find(|(n, d)| n == "content_block_start" && d.contains("tool_use"))
        .expect("a tool_use block");
    let v: Value = serde_json::from_str(&tool_start.1).unwrap();
    assert_eq!(v["content_block"]["name"], "get_weather");
    let delta: Value = serde_json::from_str(&events[events.len() - 2].1).unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["cache_read_input_tokens"], 3);
}

#[tokio::test]
async fn anthropic_to_anthropic_passes_through_untouched() {
    let (_m, g) = setup();
    let body = json!({"max_tokens": 3, "messages": [{"role": "user", "content": "Hi"}],
        "model": "claude-sonnet", "x_future_field": {"kept": true}});
    let r = anthropic(
        &g,
        "/v1/messages?beta=true",
        &body,
        &[("anthropic-version", "2023-06-01")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, "x-mock-path"), "/v1/messages?beta=true");
    let sent = serde_json::to_vec(&body).unwrap();
    let expected = tollgate::gateway::with_model(
        &bytes::Bytes::from(sent.clone()),
        &tollgate::gateway::probe(&sent).unwrap().model_span,
        "claude-sonnet-4-5",
    );
    assert_eq!(h(&r, "x-mock-body-sha256"), sha256_hex(&expected));
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["model"], "claude-sonnet-4-5",
        "the provider's reply, unchanged"
    );
}

#[tokio::test]
async fn azure_deployment_path_and_key() {
    let (_m, g) = setup();
    let r = openai(&g, &chat("azure-gpt"), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        h(&r, "x-mock-path"),
        "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "my-deployment");
    // Anthropic clients reach Azure too.
    let body = json!({"model": "azure-gpt", "max_tokens": 3, "messages": [{"role": "user", "content": "Hi"}]});
    let r = anthropic(&g, "/v1/messages", &body, &[]).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "message");
}

#[tokio::test]
async fn provider_errors_in_the_clients_shape() {
    let (_m, g) = setup();
    // Anthropic 529 → 503 for an OpenAI client.
    let r = openai(&g, &chat("claude-sonnet"), &[("x-mock-status", "529")]).await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    let e = assert_error_shape(&v);
    assert_eq!(e["message"], "Overloaded");
    // OpenAI 503 → 529 overloaded_error for an Anthropic client.
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 3, "messages": [{"role": "user", "content": "Hi"}]});
    let r = anthropic(&g, "/v1/messages", &body, &[("x-mock-status", "503")]).await;
    assert_eq!(r.status(), 529);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "overloaded_error");
    // OpenAI 429 → 429 rate_limit_error for an Anthropic client (last: its `retry-after`
    // cools the backend down).
    let r = anthropic(&g, "/v1/messages", &body, &[("x-mock-status", "429")]).await;
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn gateway_errors_in_the_clients_shape() {
    let (_m, g) = setup();
    // Not expressible for Anthropic: a 400 naming the field, nothing sent upstream.
    let mut body = chat("claude-sonnet");
    body["n"] = json!(2);
    let r = openai(&g, &body, &[]).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(assert_error_shape(&v)["param"], "n");
    let line = g.proc.wait_line("\"status\":400");
    assert!(line.contains("\"attempts\":0"), "{line}");
    // Anthropic clients: unknown model, bad key, unknown URL.
    let body =
        json!({"model": "nope", "max_tokens": 3, "messages": [{"role": "user", "content": "Hi"}]});
    let r = anthropic(&g, "/v1/messages", &body, &[]).await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "not_found_error");
    let r = client()
        .post(g.url("/v1/messages"))
        .header("x-api-key", "wrong")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "authentication_error");
    let r = anthropic(&g, "/v1/messages/nope", &body, &[]).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["type"], "error");
    // Embeddings cannot go to an Anthropic backend.
    let r = client()
        .post(g.url("/v1/embeddings"))
        .bearer_auth(CLIENT_KEY)
        .json(&json!({"model": "claude-sonnet", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn in_stream_errors_and_breaks_reach_the_client() {
    let (_m, g) = setup();
    let mut body = chat("claude-sonnet");
    body["stream"] = json!(true);
    // An Anthropic `event: error` → the OpenAI error event, no [DONE].
    let r = openai(&g, &body, &[("x-mock-stream-error-after", "4")]).await;
    let text = r.text().await.unwrap();
    let last = sse(&text).last().unwrap().1.clone();
    let v: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(v["error"]["message"], "Overloaded");
    assert!(!text.contains("[DONE]"));
    // The upstream dying mid-stream: an error event, then a cut body.
    let r = openai(&g, &body, &[("x-mock-drop-after", "4")]).await;
    let mut s = r.bytes_stream();
    let mut got = Vec::new();
    let mut cut = false;
    while let Some(c) = s.next().await {
        match c {
            Ok(b) => got.extend_from_slice(&b),
            Err(_) => cut = true,
        }
    }
    assert!(cut, "the body must not end cleanly");
    let text = String::from_utf8(got).unwrap();
    assert!(text.contains("upstream_stream_error"), "{text}");
    // An OpenAI-format error event → Anthropic's `event: error`.
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 30, "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let r = anthropic(
        &g,
        "/v1/messages",
        &body,
        &[("x-mock-stream-error-after", "3")],
    )
    .await;
    let events = sse(&r.text().await.unwrap());
    assert_eq!(events.last().unwrap().0, "error");
}

#[tokio::test]
async fn count_tokens_and_models() {
    let (_m, g) = setup();
    let body = json!({"model": "claude-sonnet", "messages": [{"role": "user", "content": "Hello there, how are you?"}]});
    let r = anthropic(&g, "/v1/messages/count_tokens", &body, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, "x-mock-path"), "/v1/messages/count_tokens");
    assert!(
        r.json::<Value>().await.unwrap()["input_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Not an Anthropic backend: the gateway's own estimate, nothing sent upstream.
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there, how are you?"}]});
    let r = anthropic(&g, "/v1/messages/count_tokens", &body, &[]).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-mock-path").is_none());
    assert!(
        r.json::<Value>().await.unwrap()["input_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    // /v1/models in the shape of the API that asks.
    let r = client()
        .get(g.url("/v1/models"))
        .header("x-api-key", CLIENT_KEY)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"][0]["type"], "model");
    assert_eq!(v["has_more"], false);
    let r = client()
        .get(g.url("/v1/models"))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["object"], "list");
}

/// A gateway in front of `tollgate mock --tls`, trusting its certificate by `ca_file`.
fn https_setup(http2: bool) -> (Proc, Gateway) {
    let (m, cert) = tls_mock();
    let cfg = format!(
        "[[backends]]\nname = \"claude\"\nprovider = \"anthropic\"\nurl = \"https://127.0.0.1:{}\"\napi_key = \"k\"\nca_file = \"{}\"\nhttp2 = {http2}\n\
         [[routes]]\nmodels = [\"claude-sonnet\"]\ntargets = [{{ backend = \"claude\" }}]\n",
        m.port,
        cert.display()
    );
    (m, Gateway::start("", &cfg))
}

#[tokio::test]
async fn https_upstream_over_h2_and_http1() {
    for (http2, version) in [(true, "2"), (false, "1.1")] {
        let (_m, g) = https_setup(http2);
        let mut body = chat("claude-sonnet");
        body["stream"] = json!(true);
        let r = client()
            .post(g.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert_eq!(h(&r, "x-mock-http-version"), version);
        let text = r.text().await.unwrap();
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    }
}
