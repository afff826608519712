//! Hot config reload through the real binary: SIGHUP, the admin endpoint and the file watch
//! apply a valid config to new requests while requests in flight finish on theirs; an invalid
//! config is rejected and the running one stays; kept versions roll back; runtime state
//! (limit counters, backend health) carries over.

mod common;

use common::{backend, chat, client, get_json, mock, stream_chat, wait_metrics, Gateway};
use serde_json::Value;
use std::time::{Duration, Instant};

const TOKEN: &str = "adm-reload";

fn route(model: &str, to: &str) -> String {
    format!("[[routes]]\nmodels = [\"{model}\"]\ntargets = [{{ backend = \"{to}\" }}]\n")
}

/// Rewrites the gateway's config file.
fn edit(g: &Gateway, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(&g.config_path).unwrap();
    std::fs::write(&g.config_path, f(text)).unwrap();
}

async fn status_of(g: &Gateway, model: &str) -> u16 {
    let r = client()
        .post(g.url("/v1/chat/completions"))
        .json(&chat(model))
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

/// Polls until `model` answers `want`.
async fn wait_status(g: &Gateway, model: &str, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_of(g, model).await != want {
        assert!(Instant::now() < deadline, "`{model}` never answered {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn admin_post(g: &Gateway, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut r = client().post(g.admin(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn versions(g: &Gateway) -> Value {
    let r = client()
        .get(g.admin("/config"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn sighup_applies_a_change_to_new_requests_while_an_older_stream_finishes() {
    let a = mock("a", &["--chunk-delay-ms", "40", "--words", "30"]);
    let b = mock("b", &[]);
    let cfg = format!(
        "{}{}{}",
        backend("a", a.port, ""),
        backend("b", b.port, ""),
        route("m", "a")
    );
    let g = Gateway::start("", &cfg);
    let mut r = stream_chat(&g, "m").await;
    assert_eq!(r.status(), 200);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let mut text = String::from_utf8(r.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    // The new config sends `m` to `b`, drops `a` and adds `n`.
    edit(&g, |t| {
        t.replace(&backend("a", a.port, ""), "").replace(
            &route("m", "a"),
            &format!("{}{}", route("m", "b"), route("n", "b")),
        )
    });
    g.proc.signal("HUP");
    wait_status(&g, "n", 200).await;
    let now = client()
        .post(g.url("/v1/chat/completions"))
        .json(&chat("m"))
        .send()
        .await
        .unwrap();
    assert_eq!(now.headers()["x-mock-name"], "b");
    // The stream that started before the reload finishes on its own config and backend.
    while let Some(c) = r_chunk(&mut r).await {
        text.push_str(&c);
    }
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert_eq!(text.matches("chat.completion.chunk").count(), 32, "{text}");
    let line: Value = serde_json::from_str(&g.proc.wait_line(&rid)).unwrap();
    assert_eq!(line["backend"], "a");
    assert_eq!(line["status"], 200);
    g.proc.wait_stderr("applied (signal");
    wait_metrics(
        &g,
        "tollgate_config_reloads_total{result=\"applied\",trigger=\"signal\"} 1",
    )
    .await;
}

async fn r_chunk(r: &mut reqwest::Response) -> Option<String> {
    r.chunk()
        .await
        .unwrap()
        .map(|c| String::from_utf8_lossy(&c).into_owned())
}

#[tokio::test]
async fn an_invalid_config_is_rejected_with_its_errors_and_the_running_one_keeps_serving() {
    let m = mock("m", &[]);
    let cfg = format!("{}{}", backend("b", m.port, ""), route("m", "b"));
    let g = Gateway::start(&format!("admin_token = \"{TOKEN}\""), &cfg);
    let before = versions(&g).await["current"].clone();
    edit(&g, |t| format!("{t}{}", route("x", "nope")));
    // Changing the config needs the token.
    assert_eq!(admin_post(&g, "/config/reload", None).await.0, 401);
    let (status, v) = admin_post(&g, "/config/reload", Some(TOKEN)).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["status"], "rejected");
    let details = v["error"]["details"].to_string();
    assert!(
        details.contains("nope") && details.contains("line"),
        "{details}"
    );
    // The running config stays, and so does its version.
    assert_eq!(status_of(&g, "m").await, 200);
    assert_eq!(status_of(&g, "x").await, 404);
    assert_eq!(versions(&g).await["current"], before);
    // SIGHUP: the same verdict, in the log.
    g.proc.signal("HUP");
    g.proc.wait_stderr("rejected; the running config stays");
    assert_eq!(status_of(&g, "m").await, 200);
    wait_metrics(
        &g,
        "tollgate_config_reloads_total{result=\"rejected\",trigger=\"admin\"} 1",
    )
    .await;
}

#[tokio::test]
async fn a_kept_version_rolls_back_and_the_metric_names_the_loaded_one() {
    let m = mock("m", &[]);
    let cfg = format!("{}{}", backend("b", m.port, ""), route("m", "b"));
    let g = Gateway::start(&format!("admin_token = \"{TOKEN}\""), &cfg);
    let v1 = versions(&g).await["current"].as_str().unwrap().to_string();
    assert_eq!(v1.len(), 12);
    wait_metrics(&g, &format!("tollgate_config_info{{version=\"{v1}\"}} 1")).await;
    edit(&g, |t| format!("{t}{}", route("n", "b")));
    let (status, v) = admin_post(&g, "/config/reload", Some(TOKEN)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["previous"], v1.as_str());
    let v2 = v["version"].as_str().unwrap().to_string();
    assert_ne!(v2, v1);
    assert_eq!(status_of(&g, "n").await, 200);
    let kept = versions(&g).await;
    assert_eq!(kept["current"], v2.as_str());
    assert_eq!(kept["versions"][1]["version"], v1.as_str());

    let (status, v) = admin_post(&g, &format!("/config/rollback?version={v1}"), Some(TOKEN)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["version"], v1.as_str());
    assert_eq!(status_of(&g, "n").await, 404);
    assert_eq!(status_of(&g, "m").await, 200);
    let text = wait_metrics(&g, &format!("tollgate_config_info{{version=\"{v1}\"}} 1")).await;
    assert!(!text.contains(&v2), "{text}");
    let (status, _) = admin_post(&g, "/config/rollback?version=000000000000", Some(TOKEN)).await;
    assert_eq!(status, 404);
}

/// Waits until at least `secs` seconds are left in the current minute (fixed-minute limits).
async fn early_in_a_minute(secs: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if 60 - now % 60 < secs {
        tokio::time::sleep(Duration::from_secs(60 - now % 60 + 1)).await;
    }
}

#[tokio::test]
async fn limit_counters_and_backend_health_survive_a_reload() {
    let (busy, good) = (
        mock("busy", &["--status", "429", "--retry-after", "60"]),
        mock("good", &[]),
    );
    let tiers = "[[routes]]\nmodels = [\"m\"]\ntargets = [{ backend = \"busy\" }, { backend = \"good\", priority = 1 }]\n";
    let limit = "[[limits]]\nscope = \"backend\"\nmatch = \"good\"\nrequests_per_minute = 3\n";
    let cfg = format!(
        "{}{}{tiers}{limit}",
        backend("busy", busy.port, ""),
        backend("good", good.port, "")
    );
    let g = Gateway::start(&format!("admin_token = \"{TOKEN}\""), &cfg);
    early_in_a_minute(20).await;
    // `busy` answers 429 with Retry-After 60: cooled down; `good` serves (1 of 3).
    assert_eq!(status_of(&g, "m").await, 200);
    assert_eq!(status_of(&g, "m").await, 200);
    // A reload that changes `busy`'s settings (a new state carrying its health) and adds a
    // route.
    edit(&g, |t| {
        t.replace(
            &backend("busy", busy.port, ""),
            &backend("busy", busy.port, "max_concurrent = 10"),
        ) + &route("n", "good")
    });
    let (status, v) = admin_post(&g, "/config/reload", Some(TOKEN)).await;
    assert_eq!(status, 200, "{v}");
    let state = get_json(g.admin("/backends"), Some(TOKEN)).await;
    let b = &state["backends"][0];
    assert_eq!(b["name"], "busy");
    assert_eq!(b["max_concurrent"], 10);
    assert_eq!(b["cooldowns"][0]["model"], "m", "{state}");
    // The third request of the minute is the last the limit allows.
    assert_eq!(status_of(&g, "n").await, 200);
    assert_eq!(status_of(&g, "m").await, 429);
    // `busy` was asked once: its cool-down held across the reload.
    let stats = get_json(format!("{}/mock/stats", busy.url()), None).await;
    assert_eq!(stats["requests"], 1);
}

#[tokio::test]
async fn settings_that_need_a_new_process_are_reported_and_not_applied() {
    let m = mock("m", &[]);
    let cfg = format!("{}{}", backend("b", m.port, ""), route("m", "b"));
    let g = Gateway::start(&format!("admin_token = \"{TOKEN}\""), &cfg);
    let extra = common::free_port();
    edit(&g, |t| {
        t.replace("threads = 2", "threads = 3\nmax_body_bytes = 100")
            .replacen(
                "listen = [\"",
                &format!("listen = [\"127.0.0.1:{extra}\", \""),
                1,
            )
    });
    let (status, v) = admin_post(&g, "/config/reload", Some(TOKEN)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["restart_required"],
        serde_json::json!(["server.listen", "server.threads"])
    );
    // The rest applies (a smaller body limit); the new address is not half-opened.
    let big = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x".repeat(200)}]});
    let r = client()
        .post(g.url("/v1/chat/completions"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(std::net::TcpStream::connect(("127.0.0.1", extra)).is_err());
    assert_eq!(
        versions(&g).await["restart_required"],
        serde_json::json!(["server.listen", "server.threads"])
    );
}

fn key(name: &str, secret: &str) -> String {
    format!(
        "[[keys]]\nname = \"{name}\"\nsha256 = \"{}\"\n",
        common::sha256_hex(secret.as_bytes())
    )
}

#[tokio::test]
async fn the_file_watch_reloads_once_the_files_settle() {
    let m = mock("m", &[]);
    let cfg = format!(
        "{}{}{}",
        key("k", "sk-one"),
        backend("b", m.port, ""),
        route("m", "b")
    );
    let g = Gateway::start(
        &format!("admin_token = \"{TOKEN}\"\nwatch_config = true\nwatch_interval_ms = 100"),
        &cfg,
    );
    let ask = |secret: &'static str| {
        client()
            .post(g.url("/v1/chat/completions"))
            .bearer_auth(secret)
            .json(&chat("m"))
            .send()
    };
    let wait_key = |secret: &'static str| async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        while ask(secret).await.unwrap().status() != 200 {
            assert!(Instant::now() < deadline, "the change was never applied");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(ask("sk-one").await.unwrap().status(), 200);
    // The key moves to an included file, rotated: picked up without a signal.
    let extra = g.config_path.with_file_name("keys.toml");
    std::fs::write(&extra, key("k", "sk-two")).unwrap();
    edit(&g, |t| {
        format!(
            "include = [\"{}\"]\n{}",
            extra.display(),
            t.replace(&key("k", "sk-one"), "")
        )
    });
    wait_key("sk-two").await;
    assert_eq!(ask("sk-one").await.unwrap().status(), 401);
    // A change in the included file alone is seen too.
    std::fs::write(&extra, key("k", "sk-three")).unwrap();
    wait_key("sk-three").await;
    assert_eq!(ask("sk-two").await.unwrap().status(), 401);
    let v = versions(&g).await;
    assert_eq!(v["versions"][0]["trigger"], "watch");
    assert_eq!(v["versions"][1]["trigger"], "watch");
    assert_eq!(v["versions"].as_array().unwrap().len(), 3, "{v}");
}
