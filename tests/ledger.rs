//! The usage ledger through the real binary: one row per request with the tokens the client
//! was told, reported by `tollgate usage` (rows and groups, JSON and CSV) while the gateway
//! runs; quota counters survive a restart.

mod common;

use common::{client, mock, sha256_hex, Gateway, Proc};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

fn config(m: &Proc, store: &std::path::Path, limits: &str) -> String {
    format!(
        "[store]\npath = \"{}\"\nflush_interval_ms = 50\n\
         [[keys]]\nname = \"ka\"\nsha256 = \"{}\"\nuser = \"ann\"\nteam = \"red\"\n\
         [[backends]]\nname = \"oa\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:{}\"\n\
         [[routes]]\nmodels = [\"gpt-4o-mini\"]\ntargets = [{{ backend = \"oa\" }}]\n\
         [[prices]]\nmodel = \"gpt-4o-mini\"\ninput = 0.15\noutput = 0.6\n{limits}",
        store.display(),
        sha256_hex(b"sk-a"),
        m.port
    )
}

fn usage(g: &Gateway, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["usage", "-c", g.config_path.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Polls `tollgate usage --format json` until it lists `n` rows.
fn rows(g: &Gateway, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v: Vec<Value> = serde_json::from_str(&usage(g, &["--format", "json"])).unwrap();
        if v.len() >= n {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "ledger has {} rows: {v:?}",
            v.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn store_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tollgate-ledger-{}", fastrand_u64()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::process::id())
}

async fn chat(g: &Gateway, stream: bool) -> Value {
    let body = json!({"model": "gpt-4o-mini", "stream": stream, "max_tokens": 20,
        "messages": [{"role": "user", "content": "Hello there"}]});
    let r = client()
        .post(g.url("/v1/chat/completions"))
        .bearer_auth("sk-a")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    if stream {
        r.text().await.unwrap();
        Value::Null
    } else {
        r.json().await.unwrap()
    }
}

#[tokio::test]
async fn every_request_has_a_row_and_usage_reports_it() {
    let m = mock("oa", &[]);
    let dir = store_dir();
    let g = Gateway::start(
        "admin_token = \"adm-secret\"",
        &config(&m, &dir.join("t.db"), ""),
    );
    let stamp = || {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        tollgate::clock::format_rfc3339_ms(ms as i64)
    };
    let before = stamp();
    let reply = chat(&g, false).await;
    chat(&g, true).await;
    let rows = rows(&g, 2);
    assert_eq!(rows.len(), 2);
    let first = &rows[0];
    // Each row is stamped with its request's start (the same fixed-width format compares).
    let after = stamp();
    for r in &rows {
        let ts = r["ts"].as_str().unwrap();
        assert!(
            *before <= *ts && *ts <= *after,
            "{before} <= {ts} <= {after}"
        );
    }
    assert_eq!(first["key"], "ka");
    assert_eq!(first["user"], "ann");
    assert_eq!(first["team"], "red");
    assert_eq!(first["requested_model"], "gpt-4o-mini");
    assert_eq!(first["backend"], "oa");
    assert_eq!(first["status"], 200);
    assert_eq!(first["estimated"], false);
    for k in ["input_tokens", "output_tokens", "total_tokens"] {
        let want = &reply["usage"][k.replace("input", "prompt").replace("output", "completion")];
        assert_eq!(&first[k], want, "{k}: {first}");
    }
    let want = first["input_tokens"].as_f64().unwrap() * 0.15e-6
        + first["output_tokens"].as_f64().unwrap() * 0.6e-6;
    let cost = first["cost_usd"].as_f64().unwrap();
    assert!(
        (cost - want).abs() < 1e-12 && cost > 0.0,
        "{cost} != {want}"
    );
    // The stream (which did not ask for usage) is billed the same.
    assert_eq!(rows[1]["total_tokens"], first["total_tokens"]);
    assert!(rows[1]["ttft_ms"].as_f64().is_some());

    let grouped: Vec<Value> =
        serde_json::from_str(&usage(&g, &["--group-by", "key,model", "--format", "json"])).unwrap();
    assert_eq!(grouped.len(), 1, "{grouped:?}");
    assert_eq!(grouped[0]["requests"], 2);
    let total = first["total_tokens"].as_u64().unwrap() * 2;
    assert_eq!(grouped[0]["total_tokens"], total);
    let csv = usage(&g, &["--group-by", "user", "--format", "csv"]);
    assert!(csv.starts_with("user,requests,"), "{csv}");
    assert!(csv.contains("\nann,2,"), "{csv}");
    // The admin listener serves the same JSON behind its token.
    let admin = |token: Option<&str>| {
        let mut r = client().get(g.admin("/usage?group_by=key%2Cmodel&since=24h"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(admin(None).await.unwrap().status(), 401);
    assert_eq!(admin(Some("wrong")).await.unwrap().status(), 401);
    let r = admin(Some("adm-secret")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Vec<Value>>().await.unwrap(), grouped);
    // Paged: `limit` rows at a time, the next page's cursor in a header until the last.
    let all: Vec<Value> = get_json_auth(&g, "/usage?since=24h").await.0;
    let (mut seen, mut cursor) = (Vec::new(), String::new());
    loop {
        let (page, next) = get_json_auth(&g, &format!("/usage?since=24h&limit=1{cursor}")).await;
        assert!(page.len() <= 1);
        seen.extend(page);
        match next {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert!(all.len() >= 2, "{all:?}");
    assert_eq!(seen, all);
    assert_eq!(
        get_json_auth_status(&g, "/usage?limit=0").await,
        400,
        "a limit outside 1..=10000 is refused"
    );
    let bad = client()
        .get(g.admin("/usage?group_by=planet"))
        .bearer_auth("adm-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // Outside the window: nothing.
    let none: Vec<Value> =
        serde_json::from_str(&usage(&g, &["--until", "2020-01-01", "--format", "json"])).unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn a_quota_survives_a_restart() {
    let m = mock("oa", &[]);
    let dir = store_dir();
    let db = dir.join("t.db");
    let quota =
        "[[limits]]\nscope = \"key\"\ntokens_per_day = 1000000\nrequests_per_minute = 1000\n";
    let g = Gateway::start("", &config(&m, &db, quota));
    chat(&g, false).await;
    let first = rows(&g, 1)[0]["total_tokens"].as_f64().unwrap();
    // Let one more flush write the settled counter, then stop the process hard.
    std::thread::sleep(Duration::from_millis(300));
    drop(g);
    let g = Gateway::start("", &config(&m, &db, quota));
    let r = client()
        .post(g.url("/v1/chat/completions"))
        .bearer_auth("sk-a")
        .json(&json!({"model": "gpt-4o-mini", "max_tokens": 20,
            "messages": [{"role": "user", "content": "Hello there"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The day's counter carried over: the first request's tokens are still counted.
    let used: f64 = 1_000_000.0
        - r.headers()["x-ratelimit-remaining-tokens"]
            .to_str()
            .unwrap()
            .parse::<f64>()
            .unwrap();
    // This request reserves its prompt estimate plus max_tokens (20) on top.
    assert!(
        used >= first + 20.0,
        "{used} tokens counted after the restart, first used {first}"
    );
}

/// `GET path` on the admin listener with the token: the JSON rows and the next page's cursor.
async fn get_json_auth(g: &Gateway, path: &str) -> (Vec<Value>, Option<String>) {
    let r = client()
        .get(g.admin(path))
        .bearer_auth("adm-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    let next = r
        .headers()
        .get("x-tollgate-next-cursor")
        .map(|v| v.to_str().unwrap().to_string());
    (r.json().await.unwrap(), next)
}

async fn get_json_auth_status(g: &Gateway, path: &str) -> u16 {
    let r = client()
        .get(g.admin(path))
        .bearer_auth("adm-secret")
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}
