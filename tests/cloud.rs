//! The cloud providers end to end through the real binary and the mock: Bedrock's signature
//! checked by the mock (a wrong secret is the client's 403 in its own shape), a model id with
//! `:`, and Vertex AI's OAuth tokens (expiry between requests, an unreachable token endpoint).

mod common;

use common::{assert_error_shape, chat, client, dead_port, mock, Gateway};
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
    let mut r = client().post(gw.url(path)).json(body);
    if anthropic {
        r = r.header("anthropic-version", "2023-06-01");
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
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
