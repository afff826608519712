//! Target selection through the real binary: weights split traffic within ±5% over 2,000
//! requests, and a later priority tier serves only when the tier before it cannot.

mod common;

use common::Gateway;

use common::{chat, client, dead_port, mock, wait_metrics};
use futures_util::future::join_all;

fn backend(name: &str, port: u16) -> String {
    format!("[[backends]]\nname = \"{name}\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:{port}\"\n")
}

/// The mock names (`x-mock-name`) that answered `n` requests for `model`, 8 at a time.
async fn answered_by(g: &Gateway, model: &str, n: usize) -> Vec<String> {
    let c = client();
    let mut names = Vec::with_capacity(n);
    for _ in 0..n / 8 {
        let batch = (0..8).map(|_| {
            c.post(g.url("/v1/chat/completions"))
                .json(&chat(model))
                .send()
        });
        for r in join_all(batch).await {
            let r = r.unwrap();
            assert_eq!(r.status(), 200);
            names.push(r.headers()["x-mock-name"].to_str().unwrap().to_string());
        }
    }
    names
}

#[tokio::test]
async fn weights_split_traffic() {
    let (one, two) = (mock("one", &[]), mock("two", &[]));
    let cfg = format!(
        "{}{}[[routes]]\nmodels = [\"gpt-4o-mini\"]\n\
         targets = [{{ backend = \"b1\", weight = 3 }}, {{ backend = \"b2\", weight = 1 }}]\n",
        backend("b1", one.port),
        backend("b2", two.port)
    );
    let g = Gateway::start("", &cfg);
    let names = answered_by(&g, "gpt-4o-mini", 2000).await;
    let ones = names.iter().filter(|n| *n == "one").count() as f64 / names.len() as f64;
    assert!(
        (0.70..=0.80).contains(&ones),
        "share of the weight-3 target: {ones}"
    );
}

#[tokio::test]
async fn a_later_tier_serves_only_when_the_earlier_cannot() {
    let (one, two) = (mock("one", &[]), mock("two", &[]));
    let cfg = format!(
        "{}{}{}[[routes]]\nmodels = [\"healthy\"]\n\
         targets = [{{ backend = \"b2\", priority = 1 }}, {{ backend = \"b1\" }}]\n\
         [[routes]]\nmodels = [\"down\"]\n\
         targets = [{{ backend = \"dead\" }}, {{ backend = \"b2\", priority = 1 }}]\n",
        backend("b1", one.port),
        backend("b2", two.port),
        backend("dead", dead_port())
    );
    let g = Gateway::start("", &cfg);
    let names = answered_by(&g, "healthy", 40).await;
    assert!(names.iter().all(|n| n == "one"), "{names:?}");
    let names = answered_by(&g, "down", 16).await;
    assert!(names.iter().all(|n| n == "two"), "{names:?}");
}

#[tokio::test]
async fn least_load_sends_new_requests_away_from_a_backend_holding_slow_ones() {
    let (slow, fast) = (mock("slow", &["--delay-ms", "2000"]), mock("fast", &[]));
    // `pin` reaches only the slow backend; the balanced route has both.
    let cfg = format!(
        "{}{}[[routes]]\nmodels = [\"pin\"]\ntargets = [{{ backend = \"b1\" }}]\n\
         [[routes]]\nmodels = [\"gpt-4o-mini\"]\nstrategy = \"least-load\"\n\
         targets = [{{ backend = \"b1\" }}, {{ backend = \"b2\" }}]\n",
        backend("b1", slow.port),
        backend("b2", fast.port)
    );
    let g = std::sync::Arc::new(Gateway::start("", &cfg));
    let g2 = g.clone();
    let held = tokio::spawn(async move {
        client()
            .post(g2.url("/v1/chat/completions"))
            .json(&chat("pin"))
            .send()
            .await
    });
    // Wait until the slow backend holds it (the in-flight gauge says so).
    wait_metrics(&g, "tollgate_backend_in_flight{backend=\"b1\"} 1").await;
    // One at a time: the fast backend is idle each time, the slow one busy.
    let c = client();
    for _ in 0..16 {
        let r = c
            .post(g.url("/v1/chat/completions"))
            .json(&chat("gpt-4o-mini"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-mock-name"], "fast");
    }
    assert!(held.await.unwrap().unwrap().status().is_success());
}

#[tokio::test]
async fn latency_prefers_the_faster_backend() {
    let (slow, fast) = (mock("slow", &["--delay-ms", "150"]), mock("fast", &[]));
    let cfg = format!(
        "{}{}[[routes]]\nmodels = [\"m\"]\nstrategy = \"latency\"\n\
         targets = [{{ backend = \"b1\" }}, {{ backend = \"b2\" }}]\n",
        backend("b1", slow.port),
        backend("b2", fast.port)
    );
    let g = Gateway::start("", &cfg);
    let c = client();
    let mut fast_share = 0;
    for _ in 0..60 {
        let r = c
            .post(g.url("/v1/chat/completions"))
            .json(&chat("m"))
            .send()
            .await
            .unwrap();
        fast_share += usize::from(r.headers()["x-mock-name"] == "fast");
    }
    assert!(
        fast_share >= 54,
        "the fast backend served {fast_share} of 60"
    );
}

/// `n` requests with `x-session: s{i}`, each answered by which mock.
async fn sessions(g: &Gateway, n: usize) -> Vec<String> {
    let c = client();
    let mut out = Vec::new();
    for i in 0..n {
        let r = c
            .post(g.url("/v1/chat/completions"))
            .header("x-session", format!("s{i}"))
            .json(&chat("m"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        out.push(r.headers()["x-mock-name"].to_str().unwrap().to_string());
    }
    out
}

#[tokio::test]
async fn affinity_keeps_a_session_on_its_target_and_moves_only_a_leavers_share() {
    let mocks = [mock("a", &[]), mock("b", &[]), mock("c", &[])];
    let check = "[backends.health_check]\npath = \"/v1/models\"\ninterval_ms = 100\nunhealthy_threshold = 1\n";
    let mut cfg = String::new();
    for (m, name) in mocks.iter().zip(["a", "b", "c"]) {
        cfg += &format!("{}{check}", backend(name, m.port));
    }
    cfg +=
        "[[routes]]\nmodels = [\"m\"]\nstrategy = \"affinity\"\naffinity = \"header:x-session\"\n\
            targets = [{ backend = \"a\" }, { backend = \"b\" }, { backend = \"c\" }]\n";
    let g = Gateway::start("", &cfg);
    let first = sessions(&g, 60).await;
    assert_eq!(
        first,
        sessions(&g, 60).await,
        "the same session, the same target"
    );
    for name in ["a", "b", "c"] {
        assert!(first.iter().any(|n| n == name), "{name} serves no session");
    }
    let url = format!("http://127.0.0.1:{}/mock/fault?status=503", mocks[2].port);
    client().post(url).send().await.unwrap();
    wait_metrics(&g, "tollgate_backend_healthy{backend=\"c\"} 0").await;
    let after = sessions(&g, 60).await;
    for (before, now) in first.iter().zip(&after) {
        match before.as_str() {
            "c" => assert_ne!(now, "c"),
            _ => assert_eq!(before, now, "only the leaving target's sessions move"),
        }
    }
}

#[tokio::test]
async fn requests_prefer_targets_in_their_region() {
    let (eu, us) = (mock("eu", &[]), mock("us", &[]));
    let cfg = format!(
        "[balance]\nregion_header = \"x-region\"\n{}{}[[routes]]\nmodels = [\"m\"]\n\
         targets = [{{ backend = \"b1\", region = \"eu\" }}, {{ backend = \"b2\", region = \"us\" }}]\n",
        backend("b1", eu.port),
        backend("b2", us.port)
    );
    let g = Gateway::start("", &cfg);
    let c = client();
    for region in ["us", "eu", "us"] {
        for _ in 0..5 {
            let r = c
                .post(g.url("/v1/chat/completions"))
                .header("x-region", region)
                .json(&chat("m"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.headers()["x-mock-name"], region);
        }
    }
    // Without the header, both serve.
    let names = answered_by(&g, "m", 16).await;
    assert!(names.iter().any(|n| n == "eu") && names.iter().any(|n| n == "us"));
}

#[tokio::test]
async fn tollgate_route_prints_the_order_with_live_state() {
    let (busy, good) = (
        mock("busy", &["--status", "429", "--retry-after", "30"]),
        mock("good", &[]),
    );
    let cfg = format!(
        "{}{}[[routes]]\nname = \"main\"\nmodels = [\"m\"]\n\
         targets = [{{ backend = \"busy\", weight = 2 }}, {{ backend = \"good\", priority = 1 }}]\n",
        backend("busy", busy.port),
        backend("good", good.port)
    );
    let g = Gateway::start("", &cfg);
    let route = || {
        let out = std::process::Command::new(common::BIN)
            .args([
                "route",
                "-c",
                g.config_path.to_str().unwrap(),
                "--model",
                "m",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let out = route();
    assert!(
        out.contains("route `main`") && out.contains("live state"),
        "{out}"
    );
    let lines: Vec<&str> = out.lines().skip(2).collect();
    assert!(
        lines[0].starts_with(" 1. busy") && lines[1].starts_with(" 2. good"),
        "{out}"
    );
    // One 429 with Retry-After: 30 later, the busy backend is cooling down and left out.
    let r = client()
        .post(g.url("/v1/chat/completions"))
        .json(&chat("m"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-mock-name"], "good");
    let out = route();
    let lines: Vec<&str> = out.lines().skip(2).collect();
    assert!(lines[0].starts_with(" 1. good"), "{out}");
    assert!(
        lines[1].starts_with(" -- busy") && lines[1].contains("cooling down"),
        "{out}"
    );
}
