//! Retries, cool-downs, ejection, active checks and concurrency caps through the real binary,
//! with several mock instances (their `/mock/stats` say what each one saw).

mod common;

use common::{
    backend, chat, client, dead_port, get_json, mock, stream_chat, wait_metrics, Gateway, Proc,
};
use serde_json::Value;
use std::time::{Duration, Instant};

/// What a mock instance has seen.
async fn stats(m: &Proc) -> Value {
    get_json(format!("{}/mock/stats", m.url()), None).await
}

/// Makes every later request to `m` answer `status` (0: back to normal).
async fn fault(m: &Proc, status: u16) {
    let url = format!("http://127.0.0.1:{}/mock/fault?status={status}", m.port);
    client().post(url).send().await.unwrap();
}

async fn ask(g: &Gateway, model: &str) -> reqwest::Response {
    client()
        .post(g.url("/v1/chat/completions"))
        .json(&chat(model))
        .send()
        .await
        .unwrap()
}

fn served_by(r: &reqwest::Response) -> String {
    r.headers()["x-mock-name"].to_str().unwrap().to_string()
}

async fn log_line(g: &Gateway, r: &reqwest::Response) -> Value {
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    serde_json::from_str(&g.proc.wait_line(&rid)).unwrap()
}

/// Polls until `f` holds (deadline 10 s).
async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + Duration::from_secs(10);
    while !f().await {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn two_tier(first: &str, second: &str) -> String {
    format!(
        "[[routes]]\nmodels = [\"m\"]\n\
         targets = [{{ backend = \"{first}\" }}, {{ backend = \"{second}\", priority = 1 }}]\n"
    )
}

#[tokio::test]
async fn a_stream_silent_before_its_first_event_fails_over() {
    let (slow, good) = (
        mock("slow", &["--first-event-delay-ms", "3000"]),
        mock("good", &[]),
    );
    let cfg = format!(
        "{}{}{}",
        backend("slow", slow.port, "first_byte_timeout_ms = 300"),
        backend("good", good.port, ""),
        two_tier("slow", "good")
    );
    let g = Gateway::start("", &cfg);
    let started = Instant::now();
    let r = stream_chat(&g, "m").await;
    assert_eq!(r.status(), 200);
    assert_eq!(served_by(&r), "good");
    // The same bytes reached both targets.
    let sent_to_good = r.headers()["x-mock-body-sha256"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        stats(&slow).await["last_body_sha256"],
        sent_to_good.as_str()
    );
    let line = log_line(&g, &r).await;
    let text = r.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert_eq!(line["attempts"], 2);
    // The slow backend's header came but no event: it saw the request, the client did not.
    assert_eq!(stats(&slow).await["streams_started"], 1);
}

#[tokio::test]
async fn retry_after_cools_a_backend_down_for_that_long() {
    let (busy, good) = (
        mock("busy", &["--status", "429", "--retry-after", "2"]),
        mock("good", &[]),
    );
    let cfg = format!(
        "{}{}{}",
        backend("busy", busy.port, ""),
        backend("good", good.port, ""),
        two_tier("busy", "good")
    );
    let g = Gateway::start("", &cfg);
    let r = ask(&g, "m").await;
    assert_eq!(served_by(&r), "good");
    assert_eq!(log_line(&g, &r).await["attempts"], 2);
    // Cooling down: the next requests go straight to the second tier.
    for _ in 0..5 {
        let r = ask(&g, "m").await;
        assert_eq!(served_by(&r), "good");
        assert_eq!(log_line(&g, &r).await["attempts"], 1);
    }
    assert_eq!(stats(&busy).await["requests"], 1);
    wait_metrics(&g, "tollgate_backend_cooldowns_total{backend=\"busy\"} 1").await;
    let v = get_json(g.admin("/backends"), None).await;
    let b = &v["backends"][0];
    assert_eq!(b["name"], "busy");
    assert_eq!(b["cooldowns"][0]["model"], "m");
    // After the cool-down it is asked again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = ask(&g, "m").await;
    assert_eq!(served_by(&r), "good");
    assert_eq!(stats(&busy).await["requests"], 2);
}

#[tokio::test]
async fn a_failing_backend_is_ejected_then_one_trial_brings_it_back() {
    let (flaky, good) = (mock("flaky", &[]), mock("good", &[]));
    let cfg = format!(
        "{}{}{}",
        backend(
            "flaky",
            flaky.port,
            "eject_after_failures = 2\neject_base_ms = 1000"
        ),
        backend("good", good.port, ""),
        two_tier("flaky", "good")
    );
    let g = Gateway::start("", &cfg);
    assert_eq!(served_by(&ask(&g, "m").await), "flaky");
    fault(&flaky, 500).await;
    for _ in 0..2 {
        assert_eq!(served_by(&ask(&g, "m").await), "good");
    }
    wait_metrics(&g, "tollgate_backend_ejections_total{backend=\"flaky\"} 1").await;
    wait_metrics(&g, "tollgate_backend_healthy{backend=\"flaky\"} 0").await;
    // Ejected: not even asked.
    for _ in 0..5 {
        let r = ask(&g, "m").await;
        assert_eq!(served_by(&r), "good");
        assert_eq!(log_line(&g, &r).await["attempts"], 1);
    }
    assert_eq!(stats(&flaky).await["requests"], 3);
    fault(&flaky, 0).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The trial request succeeds: back in service.
    assert_eq!(served_by(&ask(&g, "m").await), "flaky");
    assert_eq!(served_by(&ask(&g, "m").await), "flaky");
    wait_metrics(&g, "tollgate_backend_healthy{backend=\"flaky\"} 1").await;
}

#[tokio::test]
async fn active_checks_mark_a_backend_down_and_up() {
    let (checked, other) = (mock("checked", &[]), mock("other", &[]));
    let check = "[backends.health_check]\npath = \"/v1/models\"\ninterval_ms = 100\n\
                 unhealthy_threshold = 2\nhealthy_threshold = 2\n";
    let cfg = format!(
        "{}{}{}",
        backend("checked", checked.port, check),
        backend("other", other.port, ""),
        two_tier("checked", "other")
    );
    let g = Gateway::start("", &cfg);
    assert_eq!(served_by(&ask(&g, "m").await), "checked");
    fault(&checked, 503).await;
    wait_metrics(&g, "tollgate_backend_healthy{backend=\"checked\"} 0").await;
    let seen = stats(&checked).await["requests"].as_u64().unwrap();
    for _ in 0..5 {
        let r = ask(&g, "m").await;
        assert_eq!(served_by(&r), "other");
        assert_eq!(log_line(&g, &r).await["attempts"], 1);
    }
    // Only probes reached it meanwhile (no chat request failed over from it).
    let later = stats(&checked).await["requests"].as_u64().unwrap();
    assert!(later >= seen);
    fault(&checked, 0).await;
    wait_metrics(&g, "tollgate_backend_healthy{backend=\"checked\"} 1").await;
    until("the checked backend to serve again", || async {
        served_by(&ask(&g, "m").await) == "checked"
    })
    .await;
}

#[tokio::test]
async fn a_client_that_disconnects_stops_the_upstream_stream() {
    let slow = mock("slow", &["--chunk-delay-ms", "100", "--words", "200"]);
    let cfg = format!(
        "{}[[routes]]\nmodels = [\"m\"]\ntargets = [{{ backend = \"slow\" }}]\n",
        backend("slow", slow.port, "")
    );
    let g = Gateway::start("", &cfg);
    let mut r = stream_chat(&g, "m").await;
    assert_eq!(r.status(), 200);
    assert!(r.chunk().await.unwrap().is_some());
    drop(r);
    until("the mock to see its stream cut", || async {
        stats(&slow).await["streams_cut"] == 1
    })
    .await;
    let s = stats(&slow).await;
    assert_eq!(s["requests"], 1, "no retry: {s}");
    assert_eq!(s["streams_completed"], 0);
    wait_metrics(&g, "tollgate_backend_in_flight{backend=\"slow\"} 0").await;
}

#[tokio::test]
async fn a_503_from_openai_fails_over_to_anthropic_in_openai_shape() {
    let (down, claude) = (mock("down", &["--status", "503"]), mock("claude", &[]));
    let cfg = format!(
        "{}[[backends]]\nname = \"claude\"\nprovider = \"anthropic\"\nurl = \"http://127.0.0.1:{}\"\n\
         api_key = \"sk-ant\"\n\
         [[routes]]\nmodels = [\"gpt-4o\"]\n\
         targets = [{{ backend = \"down\" }}, {{ backend = \"claude\", model = \"claude-sonnet-4-5\", priority = 1 }}]\n",
        backend("down", down.port, ""),
        claude.port
    );
    let g = Gateway::start("", &cfg);
    let r = ask(&g, "gpt-4o").await;
    assert_eq!(r.status(), 200);
    assert_eq!(log_line(&g, &r).await["attempts"], 2);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4o");
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len()
            > 1
    );
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
    // Streamed too: OpenAI chunks, ending in [DONE].
    let text = stream_chat(&g, "gpt-4o").await.text().await.unwrap();
    assert!(
        text.contains("\"object\":\"chat.completion.chunk\""),
        "{text}"
    );
    assert!(text.trim_end().ends_with("data: [DONE]"));
}

#[tokio::test]
async fn the_policy_bounds_attempts_and_chooses_what_retries() {
    let cfg = format!(
        "{}{}{}\
         [[routes]]\nmodels = [\"two\"]\n\
         targets = [{{ backend = \"d1\" }}, {{ backend = \"d2\", priority = 1 }}, {{ backend = \"d3\", priority = 2 }}]\n\
         [routes.retry]\nattempts = 2\n\
         [[routes]]\nmodels = [\"timeouts-only\"]\n\
         targets = [{{ backend = \"d1\" }}, {{ backend = \"d2\", priority = 1 }}]\n\
         [routes.retry]\non = [\"timeout\"]\n",
        backend("d1", dead_port(), "eject_after_failures = 0"),
        backend("d2", dead_port(), "eject_after_failures = 0"),
        backend("d3", dead_port(), "eject_after_failures = 0"),
    );
    let g = Gateway::start("", &cfg);
    let r = ask(&g, "two").await;
    assert_eq!(r.status(), 502);
    assert_eq!(log_line(&g, &r).await["attempts"], 2);
    let r = ask(&g, "timeouts-only").await;
    assert_eq!(r.status(), 502);
    assert_eq!(log_line(&g, &r).await["attempts"], 1);
    wait_metrics(
        &g,
        "tollgate_retries_total{reason=\"connect_error\",route=\"route0\"} 1",
    )
    .await;
}

#[tokio::test]
async fn a_busy_backend_queues_then_refuses_with_retry_after() {
    let slow = mock("slow", &["--delay-ms", "1500"]);
    let cfg = format!(
        "{}[[routes]]\nmodels = [\"now\"]\ntargets = [{{ backend = \"slow\" }}]\n\
         [[routes]]\nmodels = [\"wait\"]\nqueue_timeout_ms = 5000\ntargets = [{{ backend = \"slow\" }}]\n",
        backend("slow", slow.port, "max_concurrent = 1")
    );
    let g = Gateway::start("", &cfg);
    let first = tokio::spawn({
        let url = g.url("/v1/chat/completions");
        async move { client().post(url).json(&chat("now")).send().await.unwrap() }
    });
    wait_metrics(&g, "tollgate_backend_in_flight{backend=\"slow\"} 1").await;
    let r = ask(&g, "now").await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "backends_busy");
    // Queued: it waits for the slot and is served.
    let r = ask(&g, "wait").await;
    assert_eq!(r.status(), 200);
    assert_eq!(first.await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_total_timeout_ends_a_long_stream_with_an_error_event() {
    let slow = mock("slow", &["--chunk-delay-ms", "100", "--words", "100"]);
    let cfg = format!(
        "{}[[routes]]\nmodels = [\"m\"]\ntargets = [{{ backend = \"slow\" }}]\n",
        backend(
            "slow",
            slow.port,
            "total_timeout_ms = 600\nread_timeout_ms = 5000"
        )
    );
    let g = Gateway::start("", &cfg);
    let r = stream_chat(&g, "m").await;
    assert_eq!(r.status(), 200);
    let line = log_line(&g, &r).await;
    // The body is cut short (a transport error at the end), after the error event.
    let mut text = String::new();
    let mut r = r;
    while let Ok(Some(c)) = r.chunk().await {
        text.push_str(&String::from_utf8_lossy(&c));
    }
    assert!(text.contains("upstream_stream_error"), "{text}");
    assert!(!text.contains("[DONE]"));
    assert_eq!(line["error"], "upstream_timeout_mid_response");
}

#[tokio::test]
async fn the_deadline_bounds_all_attempts() {
    let (s1, s2) = (
        mock("s1", &["--delay-ms", "3000"]),
        mock("s2", &["--delay-ms", "3000"]),
    );
    let cfg = format!(
        "{}{}[[routes]]\nmodels = [\"m\"]\ntargets = [{{ backend = \"s1\" }}, {{ backend = \"s2\", priority = 1 }}]\n\
         [routes.retry]\ndeadline_ms = 500\n",
        backend("s1", s1.port, ""),
        backend("s2", s2.port, "")
    );
    let g = Gateway::start("", &cfg);
    let started = Instant::now();
    let r = ask(&g, "m").await;
    assert_eq!(r.status(), 504);
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert_eq!(log_line(&g, &r).await["attempts"], 1);
}
