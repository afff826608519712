//! Address rules (README "Address rules"): allow and deny lists per listener and per key, the
//! client behind trusted proxies (`X-Forwarded-For`) and not behind untrusted ones, and the
//! client's address in the access log. Refusals are 403 `address_not_allowed` in the client's
//! API shape with nothing sent upstream. Through the real binary before the mock.

mod common;

use common::{backend, mock, send, sha256_hex, upstream_requests, Gateway, Proc};
use serde_json::{json, Value};

const CHAT: &str = "/v1/chat/completions";

fn gateway(m: &Proc, server: &str, key_extra: &str) -> Gateway {
    let rest = format!(
        "{}[[routes]]\nmodels = [\"gpt-4o-mini\", \"claude-sonnet-4-5\"]\ntargets = [{{ backend = \"m\" }}]\n\
         [[keys]]\nname = \"k\"\nsha256 = \"{}\"\n{key_extra}\n\
         [[keys]]\nname = \"free\"\nsha256 = \"{}\"\n",
        backend("m", m.port, ""),
        sha256_hex(b"sk-k"),
        sha256_hex(b"sk-free"),
    );
    Gateway::start(server, &rest)
}

fn chat() -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
}

/// Status, body and request id of a chat request with `key`, from `xff` if given.
async fn ask(g: &Gateway, key: &str, xff: Option<&str>) -> (u16, Value, String) {
    let h: Vec<(&str, &str)> = xff.map(|x| ("x-forwarded-for", x)).into_iter().collect();
    let r = send(g, CHAT, Some(key), &h, &chat()).await;
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null), rid)
}

#[tokio::test]
async fn a_listener_serves_only_the_addresses_it_allows() {
    let m = mock("addr-listen", &[]);
    let g = gateway(&m, "allow = [\"10.0.0.0/8\"]", "");
    let (s, v, _) = ask(&g, "sk-k", None).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"]["code"], "address_not_allowed");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("127.0.0.1"));
    // In the Anthropic client's own shape too.
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}]});
    let r = common::client()
        .post(g.url("/v1/messages"))
        .header("x-api-key", "sk-k")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["type"].as_str(), v["error"]["type"].as_str()),
        (Some("error"), Some("permission_error"))
    );
    // Without trusted proxies a forwarded address is ignored: anyone can write the header.
    let (s, _, _) = ask(&g, "sk-k", Some("10.1.2.3")).await;
    assert_eq!(s, 403);
    assert_eq!(upstream_requests(&m).await, 0, "nothing went upstream");

    let m2 = mock("addr-deny", &[]);
    let denied = gateway(&m2, "deny = [\"127.0.0.0/8\"]", "");
    assert_eq!(ask(&denied, "sk-k", None).await.0, 403);
    let open = gateway(&m2, "allow = [\"127.0.0.1\", \"::1\"]", "");
    let (s, _, rid) = ask(&open, "sk-k", Some("198.51.100.7")).await;
    assert_eq!(s, 200);
    let line: Value = serde_json::from_str(&open.proc.wait_line(&rid)).unwrap();
    assert_eq!(
        line["client"], "127.0.0.1",
        "the peer: its header is not trusted"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_checked_and_logged() {
    let m = mock("addr-proxy", &[]);
    let g = gateway(
        &m,
        "trusted_proxies = [\"127.0.0.1/32\"]\nallow = [\"198.51.100.0/24\", \"203.0.113.0/24\"]",
        "allow = [\"198.51.100.0/24\"]",
    );
    // The rightmost untrusted hop is the client; what it claims further left does not count.
    let (s, _, rid) = ask(&g, "sk-k", Some("10.9.9.9, 198.51.100.7")).await;
    assert_eq!(s, 200);
    let line: Value = serde_json::from_str(&g.proc.wait_line(&rid)).unwrap();
    assert_eq!(line["client"], "198.51.100.7");
    // Allowed by the listener, not by the key's own rules.
    let (s, v, _) = ask(&g, "sk-k", Some("203.0.113.4")).await;
    assert_eq!(s, 403, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("`k`") && msg.contains("203.0.113.4"), "{msg}");
    assert_eq!(ask(&g, "sk-free", Some("203.0.113.4")).await.0, 200);
    // Outside the listener's list, and the proxy itself without a header.
    assert_eq!(ask(&g, "sk-free", Some("192.0.2.1")).await.0, 403);
    assert_eq!(ask(&g, "sk-free", None).await.0, 403);
}
