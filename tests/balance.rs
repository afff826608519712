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
