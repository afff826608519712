//! The Responses front through the real binary (the `openai` SDK's view is in
//! tests/python/test_responses.py): usage is read from the reply or the stream's terminal event
//! for billing and the access log, a stream cut short ends with a numbered `error` event, and
//! Azure gets its own path. Translated to Anthropic, a Responses request is billed, limited and
//! failed over like any other front.

mod common;

use common::{client, mock, send, Gateway};
use futures_util::StreamExt;
use serde_json::{json, Value};

fn gateway(m: &common::Proc) -> Gateway {
    let cfg = format!(
        "[[backends]]\nname = \"oa\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:{port}\"\n\
         [[backends]]\nname = \"az\"\nprovider = \"azure\"\nurl = \"http://127.0.0.1:{port}\"\napi_key = \"k\"\n\
         [[routes]]\nmodels = [\"gpt-4o-mini\"]\ntargets = [{{ backend = \"oa\" }}]\n\
         [[routes]]\nmodels = [\"azure-gpt\"]\ntargets = [{{ backend = \"az\", model = \"my-deployment\" }}]\n\
         [[backends]]\nname = \"claude\"\nprovider = \"anthropic\"\nurl = \"http://127.0.0.1:{port}\"\n\
         [[backends]]\nname = \"down\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:{closed}\"\n\
         [[routes]]\nmodels = [\"claude-sonnet-4-5\", \"limited\"]\ntargets = [{{ backend = \"claude\" }}]\n\
         [[routes]]\nmodels = [\"chain\"]\ntargets = [{{ backend = \"down\" }}, {{ backend = \"claude\", model = \"claude-sonnet-4-5\", priority = 1 }}]\n\
         [[limits]]\nscope = \"model\"\nmatch = \"limited\"\nrequests_per_minute = 1\n",
        port = m.port,
        closed = common::free_port(),
    );
    Gateway::start("", &cfg)
}

async fn post(g: &Gateway, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    send(g, "/v1/responses", None, headers, body).await
}

fn log_line(g: &Gateway, r: &reqwest::Response) -> Value {
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    serde_json::from_str(&g.proc.wait_line(&rid)).unwrap()
}

#[tokio::test]
async fn usage_is_billed_from_the_reply_and_the_terminal_event() {
    let m = mock("m", &[]);
    let g = gateway(&m);
    let cached = [("x-mock-cached-tokens", "2")];
    let body =
        json!({"model": "gpt-4o-mini", "input": "Say something.", "reasoning": {"effort": "low"}});
    let r = post(&g, &body, &cached).await;
    assert_eq!(r.status(), 200);
    let line = log_line(&g, &r);
    let v: Value = r.json().await.unwrap();
    let u = &v["usage"];
    assert_eq!(line["input_tokens"], u["input_tokens"]);
    assert_eq!(line["cached_input_tokens"], 2);
    assert_eq!(line["output_tokens"], u["output_tokens"]);
    assert_eq!(
        line["reasoning_tokens"],
        u["output_tokens_details"]["reasoning_tokens"]
    );
    assert_eq!(line["estimated"], false);

    let mut streamed = body.clone();
    streamed["stream"] = true.into();
    let r = post(&g, &streamed, &cached).await;
    let line = log_line(&g, &r);
    let text = r.text().await.unwrap();
    assert!(!text.contains("[DONE]"));
    let last = text
        .lines()
        .rev()
        .find(|l| l.starts_with("data: "))
        .unwrap();
    let done: Value = serde_json::from_str(&last[6..]).unwrap();
    assert_eq!(done["type"], "response.completed");
    assert_eq!(
        line["output_tokens"],
        done["response"]["usage"]["output_tokens"]
    );
    assert_eq!(line["input_tokens"], u["input_tokens"]);
    assert_eq!(line["estimated"], false);
}

#[tokio::test]
async fn a_stream_cut_short_ends_with_a_numbered_error_event() {
    let m = mock("m", &[]);
    let g = gateway(&m);
    let body = json!({"model": "gpt-4o-mini", "input": "Say something.", "stream": true});
    let r = post(&g, &body, &[("x-mock-drop-after", "4")]).await;
    let mut s = r.bytes_stream();
    let (mut got, mut cut) = (Vec::new(), false);
    while let Some(c) = s.next().await {
        match c {
            Ok(b) => got.extend_from_slice(&b),
            Err(_) => cut = true,
        }
    }
    assert!(cut, "the body must not end cleanly");
    let text = String::from_utf8(got).unwrap();
    let tail = text.rsplit("event: ").next().unwrap();
    assert!(tail.starts_with("error\n"), "{text}");
    let data: Value = serde_json::from_str(tail.split("data: ").nth(1).unwrap().trim()).unwrap();
    // Events 0 to 3 came through: the gateway's is number 4.
    assert_eq!(data["sequence_number"], 4, "{data}");
    // Flat, as the spec's ResponseErrorEvent, with a code from its enum.
    assert_eq!(data["code"], "server_error", "{data}");
    assert!(
        data["message"].is_string() && data.get("error").is_none(),
        "{data}"
    );
}

#[tokio::test]
async fn azure_gets_its_responses_path_with_the_deployment_as_model() {
    let m = mock("m", &[]);
    let g = gateway(&m);
    let r = post(&g, &json!({"model": "azure-gpt", "input": "Hi"}), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-mock-model"], "my-deployment");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "response");
}

/// The last `data:` line of an SSE body, parsed.
fn last_event(text: &str) -> Value {
    let last = text
        .lines()
        .rev()
        .find(|l| l.starts_with("data: "))
        .unwrap();
    serde_json::from_str(&last[6..]).unwrap()
}

#[tokio::test]
async fn translated_to_anthropic_it_is_billed_from_the_translated_usage() {
    let m = mock("m", &[]);
    let g = gateway(&m);
    let cached = [("x-mock-cached-tokens", "3")];
    let body = json!({"model": "claude-sonnet-4-5", "input": "Say something.", "instructions": "Be terse."});
    let r = post(&g, &body, &cached).await;
    assert_eq!(r.status(), 200);
    let line = log_line(&g, &r);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "response");
    assert_eq!(line["backend"], "claude");
    assert_eq!(line["input_tokens"], v["usage"]["input_tokens"]);
    assert_eq!(line["cached_input_tokens"], 3);
    assert_eq!(v["usage"]["input_tokens_details"]["cached_tokens"], 3);
    assert_eq!(line["output_tokens"], v["usage"]["output_tokens"]);
    assert_eq!(line["estimated"], false);

    let mut streamed = body.clone();
    streamed["stream"] = true.into();
    let r = post(&g, &streamed, &cached).await;
    assert_eq!(
        r.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let line = log_line(&g, &r);
    let done = last_event(&r.text().await.unwrap());
    assert_eq!(done["type"], "response.completed");
    let u = &done["response"]["usage"];
    assert_eq!(line["input_tokens"], u["input_tokens"]);
    assert_eq!(line["output_tokens"], u["output_tokens"]);
    assert_eq!(line["estimated"], false);
}

#[tokio::test]
async fn translated_requests_fail_over_and_are_limited_like_any_front() {
    let m = mock("m", &[]);
    let g = gateway(&m);
    // The OpenAI target is down: the request moves on, translated for Anthropic.
    let body = json!({"model": "chain", "input": "Hi", "stream": true});
    let r = post(&g, &body, &[]).await;
    assert_eq!(r.status(), 200);
    let line = log_line(&g, &r);
    assert_eq!(
        (line["backend"].as_str(), line["attempts"].as_u64()),
        (Some("claude"), Some(2))
    );
    let done = last_event(&r.text().await.unwrap());
    assert_eq!(done["response"]["model"], "chain");
    assert_eq!(done["response"]["status"], "completed");
    // One request a minute: the second is refused in OpenAI's shape.
    let body = json!({"model": "limited", "input": "Hi"});
    assert_eq!(post(&g, &body, &[]).await.status(), 200);
    let r = post(&g, &body, &[]).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error", "{v}");
}

#[tokio::test]
async fn stored_responses_go_to_the_named_route_unbilled() {
    let m = mock("m", &[]);
    let g = gateway(&m);
    let get = |path: &str, model: &str| {
        client()
            .get(g.url(path))
            .header("x-tollgate-model", model)
            .send()
    };
    let r = get("/v1/responses/resp_42", "gpt-4o-mini").await.unwrap();
    assert_eq!(r.status(), 200);
    let line = log_line(&g, &r);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], "resp_42");
    // The stored reply reports usage; reading it back bills nothing.
    assert_eq!(v["usage"]["input_tokens"], 5);
    assert_eq!(
        (
            line["input_tokens"].as_u64(),
            line["output_tokens"].as_u64()
        ),
        (Some(0), Some(0))
    );
    // Azure: `/openai/responses/{id}?api-version=…`, the client's pagination kept.
    let path = "/v1/responses/resp_43/input_items?limit=1&after=msg_in_3";
    let r = get(path, "azure-gpt").await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["object"].as_str(), v["has_more"].as_bool()),
        (Some("list"), Some(true))
    );
    assert_eq!(v["data"][0]["id"], "msg_in_2", "{v}");
    // A method the path does not take.
    let r = client()
        .put(g.url("/v1/responses/resp_42"))
        .header("x-tollgate-model", "gpt-4o-mini")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, DELETE");
    // Not a stored-response path: never forwarded with the backend's key.
    let r = get("/v1/responses/a%2F..%2F..%2Ffiles", "gpt-4o-mini")
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
