//! Secrets in no log: traffic good and malformed (raw sockets: broken header lines carrying the
//! admin token and a client key) reaches both listeners, and neither the error log nor the
//! access log holds the client key, the upstream key or the admin token afterwards.

mod common;

use common::{backend, chat, client, mock, send, sha256_hex, Gateway};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const CLIENT_KEY: &str = "sk-client-secret-4f1d";
const UPSTREAM_KEY: &str = "sk-upstream-secret-9a2c";
const ADMIN_TOKEN: &str = "adm-secret-77e0";

/// Writes `head` on a fresh connection and reads whatever comes back until it closes.
fn raw(port: u16, head: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A gateway with a client key, an upstream key (the mock checks it) and an admin token,
/// logging at `level`.
fn keyed_gateway(level: &str) -> (common::Proc, Gateway) {
    let m = mock("m", &["--expect-key", UPSTREAM_KEY]);
    let cfg = format!(
        "[log]\nlevel = \"{level}\"\n{}[[routes]]\nmodels = [\"m\"]\ntargets = [{{ backend = \"b\" }}]\n\
         [[keys]]\nname = \"k\"\nsha256 = \"{}\"\n",
        backend("b", m.port, &format!("api_key = \"{UPSTREAM_KEY}\"\n")),
        sha256_hex(CLIENT_KEY.as_bytes())
    );
    (
        m,
        Gateway::start(&format!("admin_token = \"{ADMIN_TOKEN}\""), &cfg),
    )
}

#[tokio::test]
async fn no_secret_reaches_a_log() {
    let (_m, g) = keyed_gateway("warn");
    let ok = send(
        &g,
        "/v1/chat/completions",
        Some(CLIENT_KEY),
        &[],
        &chat("m"),
    )
    .await;
    assert_eq!(ok.status(), 200);
    let wrong = send(
        &g,
        "/v1/chat/completions",
        Some(&format!("{CLIENT_KEY}-nope")),
        &[],
        &chat("m"),
    )
    .await;
    assert_eq!(wrong.status(), 401);
    let usage = client()
        .get(g.admin("/usage"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(usage.status(), 200);

    // Malformed heads that carry the secrets: a header line without a colon, a bad version.
    let bad = [
        format!(
            "GET /usage HTTP/1.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nno colon here\r\n\r\n"
        ),
        format!("GET /config HTTP/9.9\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\r\n"),
    ];
    for head in &bad {
        raw(g.admin_port, head);
    }
    let bad_client = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nAuthorization: Bearer {CLIENT_KEY}\r\nx-api-key: {CLIENT_KEY}\r\nno colon\r\n\r\n"
    );
    raw(g.proc.port, &bad_client);
    // The listeners still serve.
    let health = client().get(g.admin("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    g.proc.wait_stderr("admin listener: unreadable request");

    let logs = [g.proc.stderr(), g.proc.stdout()].concat().join("\n");
    for secret in [CLIENT_KEY, UPSTREAM_KEY, ADMIN_TOKEN] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
}

/// An upstream that answers every request 401 with the bearer token it was sent in the
/// message, as some providers' "incorrect API key" errors do.
fn echoing_upstream() -> u16 {
    common::raw_upstream(|head| {
        let token = (head.lines())
            .find_map(|l| {
                let lower = l.to_ascii_lowercase();
                lower
                    .starts_with("authorization:")
                    .then(|| l[14..].trim().to_string())
            })
            .unwrap_or_default();
        let body = format!(
            "{{\"error\":{{\"message\":\"Incorrect API key provided: {token}\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"invalid_api_key\"}}}}"
        );
        format!(
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    })
}

#[tokio::test]
async fn an_upstream_error_that_echoes_its_key_is_masked() {
    let port = echoing_upstream();
    let cfg = format!(
        "{}[[routes]]\nmodels = [\"m\"]\ntargets = [{{ backend = \"echo\" }}]\n",
        backend("echo", port, &format!("api_key = \"{UPSTREAM_KEY}\"\n"))
    );
    let g = Gateway::start("", &cfg);
    // Same API: the error passes through, masked.
    let r = send(&g, "/v1/chat/completions", None, &[], &chat("m")).await;
    assert_eq!(r.status(), 401);
    let text = r.text().await.unwrap();
    assert!(
        !text.contains(UPSTREAM_KEY) && text.contains("Bearer ***"),
        "{text}"
    );
    // Another API: the error is rendered in the client's shape, masked too.
    let body = serde_json::json!({"model": "m", "max_tokens": 16,
        "messages": [{"role": "user", "content": "Hi"}]});
    let r = client()
        .post(g.url("/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(!text.contains(UPSTREAM_KEY), "{text}");
    assert!(text.contains("\"type\":\"error\""), "{text}");
}

#[tokio::test]
async fn no_secret_reaches_a_trace_log() {
    // The most verbose log: Pingora's own debug and trace output dumps request heads, upstream
    // requests included; the guard keeps other crates to INFO and cuts raw bytes.
    let (_m, g) = keyed_gateway("trace");
    let ok = send(
        &g,
        "/v1/chat/completions",
        Some(CLIENT_KEY),
        &[],
        &chat("m"),
    )
    .await;
    assert_eq!(ok.status(), 200);
    let _ = client()
        .get(g.admin("/usage"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    raw(
        g.admin_port,
        &format!("GET /usage HTTP/1.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nbad\r\n\r\n"),
    );
    raw(
        g.proc.port,
        &format!("POST /v1/chat/completions HTTP/1.1\r\nAuthorization: Bearer {CLIENT_KEY}\r\nbad\r\n\r\n"),
    );
    assert_eq!(
        client()
            .get(g.admin("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    g.proc.wait_stderr("admin listener: unreadable request");
    let logs = [g.proc.stderr(), g.proc.stdout()].concat().join("\n");
    for secret in [CLIENT_KEY, UPSTREAM_KEY, ADMIN_TOKEN] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
}
