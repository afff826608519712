//! Keys managed through the admin API (README "Managed keys"): created, used, limited to
//! models and by their own limits, disabled, rotated with a grace period, expired and deleted,
//! with every change in the audit log; a second gateway sharing the store follows within a
//! second; config file keys are listed read-only. Through the real binary before the mock.

mod common;

use common::{backend, chat, get_json, mock, send_json, sha256_hex, Gateway, Proc};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const TOKEN: &str = "admin-secret";
const CHAT: &str = "/v1/chat/completions";

fn gateway(m: &Proc, store: &std::path::Path) -> Gateway {
    let rest = format!(
        "[auth]\nmanaged_keys = true\n[store]\npath = \"{}\"\n{}[[routes]]\nmodels = [\"gpt-4o-mini\", \"claude-sonnet-4-5\"]\ntargets = [{{ backend = \"m\" }}]\n\
         [[keys]]\nname = \"file-key\"\nsha256 = \"{}\"\n[[teams]]\nname = \"red\"\nlimits = {{ requests_per_minute = 3 }}\n",
        store.display(),
        backend("m", m.port, ""),
        sha256_hex(b"sk-file"),
    );
    Gateway::start(&format!("admin_token = \"{TOKEN}\""), &rest)
}

/// An admin call: status and JSON body.
async fn admin(g: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let c = common::client();
    let mut r = c
        .request(method.parse().unwrap(), g.admin(path))
        .bearer_auth(TOKEN)
        .header("x-tollgate-actor", "ops-bot");
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn status(g: &Gateway, key: &str, model: &str) -> u16 {
    send_json(g, CHAT, Some(key), &[], &chat(model)).await.0
}

/// Polls until `key` gets `want` (a change reaches a gateway within a poll), or a deadline.
async fn eventually(g: &Gateway, key: &str, want: u16, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = status(g, key, "gpt-4o-mini").await;
        if got == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "still {got}, wanted {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn store_path(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-mk-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("shared.db");
    let _ = std::fs::remove_file(&p);
    p
}

#[tokio::test]
async fn a_key_is_created_used_changed_disabled_and_deleted_through_the_api() {
    let m = mock("managed", &[]);
    let g = gateway(&m, &store_path("life"));
    let (s, made) = admin(
        &g,
        "POST",
        "/keys",
        Some(
            json!({"name": "team-a-ci", "models": ["gpt-4o*"], "team": "blue",
                    "metadata": {"owner": "ci"}}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    let secret = made["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with("tg-") && secret.len() > 40);
    assert_eq!(made["source"], "api");
    assert_eq!(status(&g, &secret, "gpt-4o-mini").await, 200);
    let (s, v) = send_json(&g, CHAT, Some(&secret), &[], &chat("claude-sonnet-4-5")).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("model_not_allowed"))
    );

    // Never the secret or its hash again.
    let (s, one) = admin(&g, "GET", "/keys/team-a-ci", None).await;
    assert_eq!(s, 200);
    assert!(one.get("key").is_none() && !one.to_string().contains(&secret[3..]));
    assert!(!one
        .to_string()
        .contains(&common::sha256_hex(secret.as_bytes())));
    assert_eq!(one["metadata"]["owner"], "ci");

    let (s, v) = admin(
        &g,
        "PATCH",
        "/keys/team-a-ci",
        Some(json!({"models": null})),
    )
    .await;
    assert_eq!((s, &v["models"]), (200, &Value::Null), "{v}");
    assert_eq!(status(&g, &secret, "claude-sonnet-4-5").await, 200);

    // Address rules: only from 10/8 (this test calls from 127.0.0.1), then from anywhere.
    let only = json!({"allow": ["10.0.0.0/8"]});
    assert_eq!(
        admin(&g, "PATCH", "/keys/team-a-ci", Some(only)).await.0,
        200
    );
    let (s, v) = send_json(&g, CHAT, Some(&secret), &[], &chat("gpt-4o-mini")).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("address_not_allowed"))
    );
    let any = json!({"allow": []});
    assert_eq!(
        admin(&g, "PATCH", "/keys/team-a-ci", Some(any)).await.0,
        200
    );
    assert_eq!(status(&g, &secret, "gpt-4o-mini").await, 200);
    let (s, _) = admin(
        &g,
        "PATCH",
        "/keys/team-a-ci",
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = send_json(&g, CHAT, Some(&secret), &[], &chat("gpt-4o-mini")).await;
    assert_eq!(
        s, 401,
        "refused at once on the gateway that made the change"
    );
    assert!(v["error"]["message"].as_str().unwrap().contains("disabled"));

    let (s, _) = admin(&g, "DELETE", "/keys/team-a-ci", None).await;
    assert_eq!(s, 200);
    assert_eq!(status(&g, &secret, "gpt-4o-mini").await, 401);
    assert_eq!(admin(&g, "GET", "/keys/team-a-ci", None).await.0, 404);

    let (s, log) = admin(&g, "GET", "/audit", None).await;
    assert_eq!(s, 200);
    let actions: Vec<&str> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["delete", "update", "update", "update", "update", "create"]
    );
    let first = &log["data"][5];
    assert!(first["actor"]
        .as_str()
        .unwrap()
        .starts_with("ops-bot (127.0.0.1)"));
    assert_eq!(first["key"], "team-a-ci");
    assert!(
        !log.to_string().contains(&secret[3..]),
        "the audit log never holds the secret"
    );
}

#[tokio::test]
async fn rotation_keeps_the_old_secret_for_its_grace_period_and_expiry_refuses() {
    let m = mock("managed-rot", &[]);
    let g = gateway(&m, &store_path("rot"));
    let (_, a) = admin(&g, "POST", "/keys", Some(json!({"name": "a"}))).await;
    let old = a["key"].as_str().unwrap().to_string();
    let (s, r) = admin(
        &g,
        "POST",
        "/keys/a/rotate",
        Some(json!({"grace_seconds": 300})),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let new = r["key"].as_str().unwrap().to_string();
    assert_ne!(old, new);
    assert!(r["previous_valid_until"].is_string());
    assert_eq!(status(&g, &new, "gpt-4o-mini").await, 200);
    assert_eq!(
        status(&g, &old, "gpt-4o-mini").await,
        200,
        "within its grace"
    );
    // Without grace the replaced secret stops at once.
    let (_, r2) = admin(&g, "POST", "/keys/a/rotate", None).await;
    let newest = r2["key"].as_str().unwrap().to_string();
    assert_eq!(status(&g, &new, "gpt-4o-mini").await, 401);
    assert_eq!(status(&g, &newest, "gpt-4o-mini").await, 200);

    let past = json!({"expires_at": "2020-01-01T00:00:00Z"});
    assert_eq!(admin(&g, "PATCH", "/keys/a", Some(past)).await.0, 200);
    let (s, v) = send_json(&g, CHAT, Some(&newest), &[], &chat("gpt-4o-mini")).await;
    assert_eq!(s, 401);
    assert!(v["error"]["message"].as_str().unwrap().contains("expired"));
    let (s, v) = admin(&g, "PATCH", "/keys/a", Some(json!({"expires_at": "soon"}))).await;
    assert_eq!(s, 400, "{v}");
}

#[tokio::test]
async fn a_keys_own_limits_and_its_teams_budget_apply() {
    let m = mock("managed-lim", &[]);
    let g = gateway(&m, &store_path("lim"));
    let body = json!({"name": "one-a-minute", "limits": {"requests_per_minute": 1}});
    let (_, k) = admin(&g, "POST", "/keys", Some(body)).await;
    let k = k["key"].as_str().unwrap().to_string();
    assert_eq!(status(&g, &k, "gpt-4o-mini").await, 200);
    assert_eq!(status(&g, &k, "gpt-4o-mini").await, 429);

    // Team `red` allows 3 requests a minute across its keys.
    let mut keys = Vec::new();
    for name in ["red-1", "red-2"] {
        let (_, v) = admin(
            &g,
            "POST",
            "/keys",
            Some(json!({"name": name, "team": "red"})),
        )
        .await;
        keys.push(v["key"].as_str().unwrap().to_string());
    }
    let mut got = Vec::new();
    for k in [&keys[0], &keys[1], &keys[0], &keys[1]] {
        got.push(status(&g, k, "gpt-4o-mini").await);
    }
    assert_eq!(got, [200, 200, 200, 429]);
}

#[tokio::test]
async fn bad_requests_and_file_keys_are_refused_clearly() {
    let m = mock("managed-bad", &[]);
    let g = gateway(&m, &store_path("bad"));
    assert_eq!(status(&g, "sk-file", "gpt-4o-mini").await, 200);
    let cases = [
        (json!({"name": ""}), 400),
        (json!({"name": "has space"}), 400),
        (json!({"name": "x", "models": []}), 400),
        (
            json!({"name": "x", "limits": {"requests_per_minute": -1}}),
            400,
        ),
        (json!({"name": "x", "limits": {"per_fortnight": 1}}), 400),
        (json!({"name": "x", "surprise": 1}), 400),
        (json!({"name": "x", "allow": ["10.0.0.0/99"]}), 400),
        (json!({"name": "file-key"}), 409),
    ];
    for (body, want) in cases {
        let (s, v) = admin(&g, "POST", "/keys", Some(body.clone())).await;
        assert_eq!(s, want, "{body} → {v}");
        assert!(v["error"]["message"].is_string());
    }
    assert_eq!(
        admin(&g, "POST", "/keys", Some(json!({"name": "x"})))
            .await
            .0,
        201
    );
    assert_eq!(
        admin(&g, "POST", "/keys", Some(json!({"name": "x"})))
            .await
            .0,
        409
    );
    let (s, _) = admin(
        &g,
        "PATCH",
        "/keys/file-key",
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(s, 409, "config file keys are read-only here");
    assert_eq!(admin(&g, "DELETE", "/keys/nope", None).await.0, 404);
    let (s, list) = admin(&g, "GET", "/keys?limit=1", None).await;
    assert_eq!(s, 200);
    assert_eq!(list["data"][0]["name"], "file-key");
    assert_eq!(list["data"][0]["source"], "config");
    assert_eq!(list["next_after"], "file-key");
    let (_, rest) = admin(&g, "GET", "/keys?after=file-key", None).await;
    assert_eq!(rest["data"][0]["name"], "x");
    assert_eq!(rest["next_after"], Value::Null);
    // Without the admin token: 401, nothing changed.
    let r = common::client().get(g.admin("/keys")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let ready = get_json(g.admin("/readyz"), None).await;
    assert_eq!(ready["keys_loaded"], true);
}

#[tokio::test]
async fn a_second_gateway_sharing_the_store_follows_within_a_second() {
    let m = mock("managed-two", &[]);
    let store = store_path("two");
    let (a, b) = (gateway(&m, &store), gateway(&m, &store));
    let (_, k) = admin(&a, "POST", "/keys", Some(json!({"name": "shared"}))).await;
    let k = k["key"].as_str().unwrap().to_string();
    let seen = eventually(&b, &k, 200, Duration::from_secs(3)).await;
    assert!(
        seen < Duration::from_secs(1),
        "created key served by b after {seen:?}"
    );
    admin(&a, "PATCH", "/keys/shared", Some(json!({"disabled": true}))).await;
    let seen = eventually(&b, &k, 401, Duration::from_secs(3)).await;
    assert!(
        seen < Duration::from_secs(1),
        "disabled key refused by b after {seen:?}"
    );
}
