//! Per-key policy for keys in the config file (README "Keys"): the models a key may use (403
//! naming the model, in the client's API shape, nothing sent upstream), an expiry and a
//! disabled switch (401), through the real binary in front of the mock.

mod common;

use common::{
    backend, chat, get_json, mock, send_json, sha256_hex, upstream_requests, Gateway, Proc,
};
use serde_json::{json, Value};

fn gateway(m: &Proc) -> Gateway {
    let key = |name: &str, extra: &str| {
        format!(
            "[[keys]]\nname = \"{name}\"\nsha256 = \"{}\"\n{extra}\n",
            sha256_hex(format!("sk-{name}").as_bytes())
        )
    };
    let rest = format!(
        "{}[[routes]]\nmodels = [\"gpt-4o-mini\", \"claude-sonnet-4-5\"]\ntargets = [{{ backend = \"m\" }}]\n{}{}{}{}",
        backend("m", m.port, ""),
        key("all", ""),
        key("gpt", "models = [\"gpt-4o*\"]"),
        key("off", "disabled = true"),
        key("gone", "expires_at = \"2020-01-01T00:00:00Z\""),
    );
    Gateway::start("", &rest)
}

#[tokio::test]
async fn a_key_uses_only_its_models() {
    let m = mock("keys", &[]);
    let g = gateway(&m);
    let path = "/v1/chat/completions";
    assert_eq!(
        send_json(&g, path, Some("sk-gpt"), &[], &chat("gpt-4o-mini"))
            .await
            .0,
        200
    );
    assert_eq!(
        send_json(&g, path, Some("sk-all"), &[], &chat("claude-sonnet-4-5"))
            .await
            .0,
        200
    );
    let before = upstream_requests(&m).await;
    let (s, v) = send_json(&g, path, Some("sk-gpt"), &[], &chat("claude-sonnet-4-5")).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"]["code"], "model_not_allowed");
    assert_eq!(v["error"]["param"], "model");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("`gpt`") && msg.contains("claude-sonnet-4-5"),
        "{msg}"
    );
    // The Anthropic API's shape for an Anthropic client.
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 8,
        "messages": [{"role": "user", "content": "hi"}]});
    let (s, v) = send_json(&g, "/v1/messages", Some("sk-gpt"), &[], &body).await;
    assert_eq!((s, v["type"].as_str()), (403, Some("error")), "{v}");
    assert_eq!(v["error"]["type"], "permission_error");
    assert_eq!(
        upstream_requests(&m).await,
        before,
        "a refused request went upstream"
    );
}

#[tokio::test]
async fn a_key_lists_only_its_models() {
    let m = mock("keys-list", &[]);
    let g = gateway(&m);
    let ids = |v: Value| -> Vec<String> {
        (v["data"].as_array().unwrap().iter())
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect()
    };
    let all = get_json(g.url("/v1/models"), Some("sk-all")).await;
    assert_eq!(ids(all), ["gpt-4o-mini", "claude-sonnet-4-5"]);
    let some = get_json(g.url("/v1/models"), Some("sk-gpt")).await;
    assert_eq!(ids(some), ["gpt-4o-mini"]);
}

#[tokio::test]
async fn disabled_and_expired_keys_are_refused() {
    let m = mock("keys-off", &[]);
    let g = gateway(&m);
    let path = "/v1/chat/completions";
    for (key, why) in [("sk-off", "disabled"), ("sk-gone", "expired")] {
        let (s, v) = send_json(&g, path, Some(key), &[], &chat("gpt-4o-mini")).await;
        assert_eq!(s, 401, "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(why), "{msg}");
    }
    assert_eq!(upstream_requests(&m).await, 0);
}

#[test]
fn bad_key_policies_are_located() {
    let dir = std::env::temp_dir().join(format!("tollgate-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.toml");
    let text = format!(
        "[[backends]]\nname = \"m\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:1\"\n\
         [[routes]]\nmodels = [\"m\"]\ntargets = [{{ backend = \"m\" }}]\n\
         [[keys]]\nname = \"a\"\nsha256 = \"{}\"\nmodels = []\nexpires_at = \"soon\"\n",
        sha256_hex(b"sk-a")
    );
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("keys[0].models"), "{err}");
    assert!(err.contains("keys[0].expires_at"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
