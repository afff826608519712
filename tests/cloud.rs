//! The cloud providers end to end through the real binary and the mock: Bedrock's signature
//! checked by the mock (a wrong secret is the client's 403 in its own shape), a model id with
//! `:`, and Vertex AI's OAuth tokens (expiry between requests, an unreachable token endpoint).

mod common;

use common::{assert_error_shape, chat, client, dead_port, mock, send_json, Gateway};
use serde_json::{json, Value};
use std::time::Duration;

const SA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/vertex/service-account.json"
);
const PUBLIC_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/vertex/public.pem"
);

fn bedrock(port: u16, secret: &str) -> String {
    format!(
        "[[backends]]\nname = \"bedrock\"\nprovider = \"bedrock\"\nurl = \"http://127.0.0.1:{port}\"\n\
         region = \"us-east-1\"\naws_access_key_id = \"AKIDTEST\"\naws_secret_access_key = \"{secret}\"\n\
         aws_session_token = \"session-token-test\"\n\
         [[routes]]\nmodels = [\"claude\"]\ntargets = [{{ backend = \"bedrock\", model = \"anthropic.claude-3-haiku-20240307-v1:0\" }}]\n"
    )
}

async fn post(gw: &Gateway, path: &str, body: &Value, anthropic: bool) -> (u16, Value) {
    let headers: &[(&str, &str)] = match anthropic {
        true => &[("anthropic-version", "2023-06-01")],
        false => &[],
    };
    send_json(gw, path, None, headers, body).await
}

fn messages(model: &str) -> Value {
    json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]})
}

#[tokio::test]
async fn bedrock_requests_are_signed_and_a_wrong_secret_is_a_403_in_the_clients_shape() {
    let m = mock(
        "bedrock",
        &[
            "--aws-access-key-id",
            "AKIDTEST",
            "--aws-secret-access-key",
            "right-secret",
        ],
    );
    let good = Gateway::start("", &bedrock(m.port, "right-secret"));
    let (status, body) = post(&good, "/v1/chat/completions", &chat("claude"), false).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["choices"][0]["message"]["content"].as_str().is_some());

    let bad = Gateway::start("", &bedrock(m.port, "wrong-secret"));
    let (status, body) = post(&bad, "/v1/chat/completions", &chat("claude"), false).await;
    assert_eq!(status, 403, "{body}");
    let e = assert_error_shape(&body);
    assert_eq!(e["type"], "permission_error", "{body}");
    let text = body.to_string();
    assert!(!text.contains("wrong-secret") && !text.contains("session-token-test"));

    let (status, body) = post(&bad, "/v1/messages", &messages("claude"), true).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "permission_error", "{body}");
}

fn vertex(mock_port: u16, token_port: u16) -> String {
    format!(
        "[[backends]]\nname = \"vertex\"\nprovider = \"vertex\"\nurl = \"http://127.0.0.1:{mock_port}\"\n\
         location = \"us-central1\"\nservice_account_file = \"{SA}\"\n\
         token_uri = \"http://127.0.0.1:{token_port}/token\"\n\
         [[routes]]\nmodels = [\"gemini\"]\ntargets = [{{ backend = \"vertex\", model = \"gemini-2.0-flash\" }}]\n"
    )
}

#[tokio::test]
async fn vertex_token_expiring_between_requests_is_refreshed_without_a_failure() {
    let m = mock(
        "vertex",
        &["--vertex-public-key", PUBLIC_KEY, "--vertex-token-ttl", "2"],
    );
    let gw = Gateway::start("", &vertex(m.port, m.port));
    for i in 0..3 {
        let (status, body) = post(&gw, "/v1/chat/completions", &chat("gemini"), false).await;
        assert_eq!(status, 200, "request {i}: {body}");
        let (status, body) = post(&gw, "/v1/messages", &messages("gemini"), true).await;
        assert_eq!(status, 200, "request {i}: {body}");
        // Past the token's two-second life: the next request needs a new one.
        tokio::time::sleep(Duration::from_millis(2200)).await;
    }
}

#[tokio::test]
async fn unreachable_token_endpoint_is_a_503_naming_the_backend() {
    let m = mock("vertex", &["--vertex-public-key", PUBLIC_KEY]);
    let gw = Gateway::start("", &vertex(m.port, dead_port()));
    let (status, body) = post(&gw, "/v1/chat/completions", &chat("gemini"), false).await;
    assert_eq!(status, 503, "{body}");
    let e = assert_error_shape(&body);
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("`vertex`"), "{msg}");
    assert!(!msg.contains("PRIVATE KEY"), "{msg}");
    let (status, body) = post(&gw, "/v1/messages", &messages("gemini"), true).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["type"], "error");
}

/// The reply's content blocks from an Anthropic stream, as a client keeps them for its history.
fn streamed_content(sse: &str) -> Vec<Value> {
    let mut content: Vec<Value> = Vec::new();
    let events = sse.lines().filter_map(|l| l.strip_prefix("data: "));
    for e in events.filter_map(|d| serde_json::from_str::<Value>(d).ok()) {
        let d = &e["delta"];
        match (e["type"].as_str(), d["type"].as_str()) {
            (Some("content_block_start"), _) => content.push(e["content_block"].clone()),
            (Some("content_block_delta"), Some(kind)) => {
                let b = content.last_mut().unwrap();
                let (key, piece) = match kind {
                    "thinking_delta" => ("thinking", &d["thinking"]),
                    "signature_delta" => ("signature", &d["signature"]),
                    "text_delta" => ("text", &d["text"]),
                    _ => ("partial", &d["partial_json"]),
                };
                let joined = b[key].as_str().unwrap_or("").to_string() + piece.as_str().unwrap();
                b[key] = json!(joined);
            }
            _ => {}
        }
    }
    for b in &mut content {
        if let Some(p) = b.as_object_mut().unwrap().remove("partial") {
            b["input"] = serde_json::from_str(p.as_str().unwrap()).unwrap();
        }
    }
    content
}

/// Claude Code's loop on a Bedrock route with thinking on: the thinking streamed with its
/// signature goes back with the tool's result, and the mock (which refuses, as Claude does, a
/// tool-use turn without its signed thinking) takes it; a history without it turns thinking
/// off rather than being refused.
#[tokio::test]
async fn bedrock_thinking_tool_loops_keep_their_signed_thinking() {
    let m = mock(
        "bedrock",
        &[
            "--aws-access-key-id",
            "AKIDTEST",
            "--aws-secret-access-key",
            "s",
        ],
    );
    let gw = Gateway::start("", &bedrock(m.port, "s"));
    let mut body = json!({"model": "claude", "max_tokens": 4000, "stream": true,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [{"name": "weather", "input_schema": {"type": "object",
            "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
        "messages": [{"role": "user", "content": "Weather in Paris?"}]});
    let resp = client()
        .post(gw.url("/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let content = streamed_content(&resp.text().await.unwrap());
    let kinds: Vec<&str> = content
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"thinking"), "{content:?}");
    assert!(kinds.contains(&"tool_use"), "{content:?}");
    let id = content.iter().find(|b| b["type"] == "tool_use").unwrap()["id"].clone();
    body["stream"] = json!(false);
    let msgs = body["messages"].as_array_mut().unwrap();
    msgs.push(json!({"role": "assistant", "content": content}));
    msgs.push(json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": id, "content": "18C"}]}));

    let (status, v) = post(&gw, "/v1/messages", &body, true).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["content"][0]["type"], "thinking", "{v}");
    assert_eq!(v["stop_reason"], "end_turn");

    // Thinking changed on its way back is refused, as Claude refuses it.
    let mut tampered = body.clone();
    tampered["messages"][1]["content"][0]["thinking"] = json!("something else");
    let (status, v) = post(&gw, "/v1/messages", &tampered, true).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{v}"
    );

    // A client that did not keep its thinking: thinking off for this request, and said so.
    let mut forgot = body.clone();
    forgot["messages"][1]["content"]
        .as_array_mut()
        .unwrap()
        .retain(|b| b["type"] != "thinking");
    let resp = client()
        .post(gw.url("/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .json(&forgot)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ignored = resp.headers()["x-tollgate-ignored-fields"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(ignored.contains("reasoning_effort"), "{ignored}");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["content"][0]["type"], "text", "{v}");
}
