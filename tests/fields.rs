//! The field policy end to end through the real binary (README "Field policy"): fields without
//! effect on the reply are dropped and named in `x-tollgate-ignored-fields` and the access log;
//! fields the target cannot honour are a 400 naming them, unless the route or the key sets
//! `drop_params`; `unknown_fields = "reject"` makes unknown fields a 400 again.

mod common;

use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};

const KEY: &str = "sk-plain";
const LENIENT_KEY: &str = "sk-lenient";
const UP_KEY: &str = "sk-up";

fn setup() -> (Proc, Gateway) {
    let m = mock("m", &["--expect-key", UP_KEY]);
    let cfg = format!(
        r#"
[[backends]]
name = "claude"
provider = "anthropic"
url = "http://127.0.0.1:{p}"
api_key = "{UP_KEY}"

[[backends]]
name = "oai"
provider = "openai"
url = "http://127.0.0.1:{p}"
api_key = "{UP_KEY}"

[[routes]]
models = ["claude"]
targets = [{{ backend = "claude", model = "claude-sonnet-4-5" }}]

[[routes]]
models = ["claude-lenient"]
drop_params = true
targets = [{{ backend = "claude", model = "claude-sonnet-4-5" }}]

[[routes]]
models = ["claude-strict"]
unknown_fields = "reject"
targets = [{{ backend = "claude", model = "claude-sonnet-4-5" }}]

[[routes]]
models = ["gpt"]
targets = [{{ backend = "oai", model = "gpt-4o-mini" }}]

[[keys]]
name = "plain"
sha256 = "{h1}"

[[keys]]
name = "lenient"
sha256 = "{h2}"
drop_params = true
"#,
        p = m.port,
        h1 = sha256_hex(KEY.as_bytes()),
        h2 = sha256_hex(LENIENT_KEY.as_bytes()),
    );
    (m, Gateway::start("", &cfg))
}

async fn post(g: &Gateway, path: &str, key: &str, body: &Value) -> reqwest::Response {
    send(
        g,
        path,
        Some(key),
        &[("anthropic-version", "2023-06-01")],
        body,
    )
    .await
}

fn ignored(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get("x-tollgate-ignored-fields")
        .map(|v| v.to_str().unwrap().split(", ").map(String::from).collect())
        .unwrap_or_default()
}

fn chat_with(model: &str, extra: Value) -> Value {
    let mut b = json!({"model": model, "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}]});
    b.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    b
}

#[tokio::test]
async fn fields_without_effect_are_dropped_and_named_in_the_header_and_the_access_log() {
    let (_m, g) = setup();
    let body = chat_with(
        "claude",
        json!({"seed": 7, "brand_new_hint": {"a": 1}, "prediction": {"type": "content", "content": "x"},
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}},
                "eager_input_streaming": true}]}),
    );
    let r = post(&g, "/v1/chat/completions", KEY, &body).await;
    assert_eq!(r.status(), 200);
    let names = ignored(&r);
    for want in [
        "seed",
        "brand_new_hint",
        "prediction",
        "tools[].eager_input_streaming",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let line: Value = serde_json::from_str(&g.proc.wait_line(&rid)).unwrap();
    let logged: Vec<&str> = line["ignored_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(logged, names);
    // A request that drops nothing carries no header and no log field.
    let r = post(
        &g,
        "/v1/chat/completions",
        KEY,
        &chat_with("claude", json!({})),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-tollgate-ignored-fields").is_none());
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let line: Value = serde_json::from_str(&g.proc.wait_line(&rid)).unwrap();
    assert!(line.get("ignored_fields").is_none());
}

#[tokio::test]
async fn what_the_target_cannot_honour_is_refused_unless_the_route_or_key_drops_it() {
    let (_m, g) = setup();
    let body = chat_with("claude", json!({"n": 2, "logprobs": true}));
    let r = post(&g, "/v1/chat/completions", KEY, &body).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    // Map keys come in order: the first refused is named.
    assert_eq!(v["error"]["param"], "logprobs");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("drop_params"));
    // The route's drop_params.
    let lenient = chat_with("claude-lenient", json!({"n": 2, "logprobs": true}));
    let r = post(&g, "/v1/chat/completions", KEY, &lenient).await;
    assert_eq!(r.status(), 200);
    assert_eq!(ignored(&r), ["logprobs", "n"]);
    // The key's drop_params, on a route without it.
    let r = post(&g, "/v1/chat/completions", LENIENT_KEY, &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(ignored(&r), ["logprobs", "n"]);
}

#[tokio::test]
async fn a_strict_route_refuses_unknown_fields_by_name() {
    let (_m, g) = setup();
    let body = chat_with("claude-strict", json!({"brand_new_hint": true}));
    let r = post(&g, "/v1/chat/completions", KEY, &body).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["param"], "brand_new_hint");
}

/// A Claude Code-shaped request on an OpenAI-style route, streamed: the hints are dropped and
/// named, the system message inside `messages` and the effort are translated.
#[tokio::test]
async fn claude_code_requests_reach_an_openai_route() {
    let (_m, g) = setup();
    let body = json!({"model": "gpt", "max_tokens": 64, "stream": true,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hi"},
            {"role": "system", "content": "Reminder."},
            {"role": "user", "content": [{"type": "text", "text": "go"}]}],
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}, "eager_input_streaming": true}],
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
        "metadata": {"user_id": "u"}});
    let r = post(&g, "/v1/messages", KEY, &body).await;
    assert_eq!(r.status(), 200);
    let mut names = ignored(&r);
    names.sort();
    assert_eq!(
        names,
        ["context_management", "tools[].eager_input_streaming"]
    );
    let mut text = String::new();
    let mut s = r.bytes_stream();
    while let Some(c) = s.next().await {
        text.push_str(&String::from_utf8_lossy(&c.unwrap()));
    }
    assert!(text.contains("event: message_stop"), "{text}");
}

#[test]
fn check_refuses_an_unknown_fields_value_by_key_path() {
    let dir = std::env::temp_dir().join(format!("tollgate-fields-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.toml");
    std::fs::write(
        &f,
        "[[backends]]\nname = \"b\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:1\"\n\n[[routes]]\nmodels = [\"m\"]\nunknown_fields = \"maybe\"\ntargets = [{ backend = \"b\" }]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["check", "-c", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr) + String::from_utf8_lossy(&out.stdout);
    assert!(err.contains("routes[0].unknown_fields"), "{err}");
}
