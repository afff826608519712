//! Operations through the real binary: a graceful stop drains in-flight streams and exits as
//! soon as nothing is in flight.

mod common;

use common::{backend, chat, client, mock, stream_chat, Gateway};
use std::time::{Duration, Instant};

fn one_route(port: u16) -> String {
    format!(
        "{}[[routes]]\nmodels = [\"m\"]\ntargets = [{{ backend = \"b\" }}]\n",
        backend("b", port, "")
    )
}

#[tokio::test]
async fn an_idle_gateway_exits_at_once_on_sigterm() {
    let m = mock("m", &[]);
    // A long grace period: the exit must not wait for it.
    let mut g = Gateway::start("grace_period_seconds = 60", &one_route(m.port));
    let r = client()
        .post(g.url("/v1/chat/completions"))
        .json(&chat("m"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let started = Instant::now();
    g.proc.signal("TERM");
    let status = g
        .proc
        .wait_exit(Duration::from_secs(5))
        .expect("still running");
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // The access log was flushed before the exit.
    g.proc.wait_line(&rid);
}

#[tokio::test]
async fn a_busy_gateway_drains_its_streams_then_exits() {
    let m = mock("m", &["--chunk-delay-ms", "50", "--words", "30"]);
    let mut g = Gateway::start("grace_period_seconds = 60", &one_route(m.port));
    let mut r = stream_chat(&g, "m").await;
    assert_eq!(r.status(), 200);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let mut text = String::from_utf8(r.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    g.proc.signal("TERM");
    // No new connections once the stop began.
    let refused = async {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", g.proc.port))
                .await
                .is_err()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    };
    assert!(refused.await, "the gateway still accepts connections");
    // The stream in flight finishes with all its events.
    while let Some(c) = r.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&c));
    }
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert_eq!(text.matches("chat.completion.chunk").count(), 32, "{text}");
    let status = g
        .proc
        .wait_exit(Duration::from_secs(3))
        .expect("still running");
    assert!(status.success(), "{status}");
    g.proc.wait_line(&rid);
}

#[tokio::test]
async fn readyz_reports_routes_without_a_usable_target_and_the_token_guards_the_rest() {
    let m = mock("m", &[]);
    let check = "[backends.health_check]\npath = \"/v1/models\"\ninterval_ms = 100\nunhealthy_threshold = 1\n";
    let cfg = format!(
        "{}[[routes]]\nname = \"main\"\nmodels = [\"m\"]\ntargets = [{{ backend = \"b\" }}]\n",
        backend("b", m.port, check)
    );
    let g = Gateway::start(
        "admin_token = \"adm-secret\"\nadmin_require_token = true",
        &cfg,
    );
    let c = client();
    let get = |path: &str, token: bool| {
        let mut r = c.get(g.admin(path));
        if token {
            r = r.bearer_auth("adm-secret");
        }
        r.send()
    };
    assert_eq!(get("/healthz", false).await.unwrap().status(), 200);
    assert_eq!(get("/metrics", false).await.unwrap().status(), 401);
    assert_eq!(get("/backends", false).await.unwrap().status(), 401);
    assert_eq!(get("/metrics", true).await.unwrap().status(), 200);
    let r = get("/readyz", false).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["usable_targets"]["main"], 1);
    client()
        .post(format!("http://127.0.0.1:{}/mock/fault?status=503", m.port))
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get("/readyz", false).await.unwrap();
        if r.status() == 503 {
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["ready"], false);
            assert_eq!(v["usable_targets"]["main"], 0);
            break;
        }
        assert!(Instant::now() < deadline, "never unready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn request_id(g: &Gateway) -> String {
    let r = client()
        .post(g.url("/v1/chat/completions"))
        .json(&chat("m"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["x-request-id"].to_str().unwrap().to_string()
}

/// Waits until `path` holds `needle`.
async fn file_has(path: &std::path::Path, needle: &str) -> bool {
    for _ in 0..200 {
        if std::fs::read_to_string(path).is_ok_and(|s| s.contains(needle)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

#[tokio::test]
async fn sigusr1_reopens_the_access_log_after_logrotate_moved_it() {
    let m = mock("m", &[]);
    let dir =
        std::env::temp_dir().join(format!("tollgate-rotate-{}-{}", std::process::id(), m.port));
    std::fs::create_dir_all(&dir).unwrap();
    let (log, rotated) = (dir.join("access.log"), dir.join("access.log.1"));
    let cfg = format!(
        "[log]\naccess_log = \"{}\"\n{}",
        log.display(),
        one_route(m.port)
    );
    let g = Gateway::start("", &cfg);
    let before = request_id(&g).await;
    assert!(file_has(&log, &before).await);
    std::fs::rename(&log, &rotated).unwrap();
    g.proc.signal("USR1");
    // Until the reopen, lines still reach the moved file; after it, the new one.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let rid = request_id(&g).await;
        if file_has(&log, &rid).await {
            break rid;
        }
        assert!(Instant::now() < deadline, "never reopened");
    };
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(old.contains(&before) && !old.contains(&after));
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let unit = include_str!("../systemd/tollgate.service");
    let dir = std::env::temp_dir().join(format!("tollgate-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The binary where this build put it, instead of /usr/bin.
    let path = dir.join("tollgate.service");
    std::fs::write(&path, unit.replace("/usr/bin/tollgate", common::BIN)).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (scripts/setup --python installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Unknown keys are only warnings: none may be printed.
    assert!(!stderr.contains("tollgate.service"), "{stderr}");
}

/// The background services (drain, reload triggers, health checks, keys, readiness…) are tasks
/// of one service on one thread: Pingora would give each a thread and a runtime of its own. The
/// admin listener has one thread too.
#[tokio::test]
async fn background_services_share_one_thread() {
    let m = mock("m", &[]);
    let g = Gateway::start("", &one_route(m.port));
    let names = || -> Vec<String> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", g.proc.pid())).unwrap();
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|n| n.trim().to_string())
            .collect()
    };
    let names_now = names();
    let background: Vec<_> = names_now.iter().filter(|n| n.starts_with("BG ")).collect();
    assert_eq!(background, ["BG background"], "{names_now:?}");
    // The admin listener's one thread. Tokio names a runtime's blocking threads as its
    // workers, and one lingers (10 s idle) after a blocking call at start: wait for it to go.
    let admin = |names: &[String]| names.iter().filter(|n| *n == "tollgate admin").count();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut last = names();
    while admin(&last) != 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        last = names();
    }
    assert_eq!(admin(&last), 1, "{last:?}");
}
