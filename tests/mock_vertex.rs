//! Vertex AI credentials end to end: `tollgate mock`'s token endpoint (JWT assertions checked
//! as Google checks them, short-lived self-verifying tokens), Claude on Vertex (`rawPredict`,
//! `streamRawPredict`) taking only live tokens the mock issued, and the gateway's
//! `TokenSource` fetching from the real mock and refreshing before expiry.

mod common;

use common::{client, mock, Proc};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tollgate::providers::google_auth::{ServiceAccount, TokenSource};

const SA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/vertex/service-account.json"
);
const PUBLIC_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/vertex/public.pem"
);
const CLAUDE: &str =
    "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929";
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// A mock whose tokens live `ttl` seconds.
fn vertex_mock(ttl: &str) -> Proc {
    let args = ["--vertex-public-key", PUBLIC_KEY, "--vertex-token-ttl", ttl];
    mock("vertex", &args)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An assertion signed with the fixture's key, issued 10 s ago and expiring `exp_in` seconds
/// from now (Google takes at most an hour between the two).
fn assertion(m: &Proc, exp_in: i64, scope: &str) -> String {
    let sa: Value = serde_json::from_slice(&std::fs::read(SA).unwrap()).unwrap();
    let key = EncodingKey::from_rsa_pem(sa["private_key"].as_str().unwrap().as_bytes()).unwrap();
    let now = now() as i64;
    let claims = json!({"iss": sa["client_email"], "aud": format!("{}/token", m.url()),
        "scope": scope, "iat": now - 10, "exp": now + exp_in});
    let mut header = Header::new(Algorithm::RS256);
    header.kid = sa["private_key_id"].as_str().map(str::to_string);
    encode(&header, &claims, &key).unwrap()
}

async fn exchange(m: &Proc, jwt: &str) -> (u16, Value) {
    let form =
        format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}");
    let r = client()
        .post(format!("{}/token", m.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn assert_invalid_grant((status, v): (u16, Value), description: &str) {
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
    let d = v["error_description"].as_str().unwrap();
    assert!(d.starts_with(description), "{d}");
}

#[tokio::test]
async fn the_token_endpoint_checks_assertions_as_google_does() {
    let m = vertex_mock("2");
    let (status, v) = exchange(&m, &assertion(&m, 3500, SCOPE)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["token_type"].as_str(), v["expires_in"].as_u64()),
        (Some("Bearer"), Some(2))
    );
    assert!(v["access_token"]
        .as_str()
        .unwrap()
        .starts_with("ya29.mock."));

    let expired = assertion(&m, -5, SCOPE);
    let short_lived = "Invalid JWT: Token must be a short-lived token (60 minutes)";
    assert_invalid_grant(exchange(&m, &expired).await, short_lived);
    // The payload changed under the fixture's signature: not signed by this key.
    let good = assertion(&m, 3500, SCOPE);
    let other = assertion(&m, 3000, SCOPE);
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        other.split('.').nth(1).unwrap(),
        parts[2]
    );
    assert_invalid_grant(exchange(&m, &tampered).await, "Invalid JWT Signature.");
    // Signed by another key altogether.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let claims = json!({"iss": "x", "aud": "http://h/token", "scope": SCOPE,
        "iat": now(), "exp": now() + 600});
    let key = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
    let foreign = encode(&Header::new(Algorithm::ES256), &claims, &key).unwrap();
    assert_invalid_grant(exchange(&m, &foreign).await, "Invalid JWT Signature.");
    let unscoped = assertion(&m, 3500, "openid");
    assert_invalid_grant(exchange(&m, &unscoped).await, "Invalid OAuth scope");
}

fn messages() -> Value {
    json!({"anthropic_version": "vertex-2023-10-16", "max_tokens": 5,
        "messages": [{"role": "user", "content": "Hi"}]})
}

async fn predict(m: &Proc, method: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut r = client()
        .post(format!("{}{CLAUDE}:{method}", m.url()))
        .json(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap()
}

async fn assert_unauthenticated(r: reqwest::Response) {
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["error"]["code"].as_u64(), v["error"]["status"].as_str()),
        (Some(401), Some("UNAUTHENTICATED")),
        "{v}"
    );
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Expected OAuth 2 access token"));
}

#[tokio::test]
async fn raw_predict_takes_only_live_tokens_the_mock_issued() {
    let m = vertex_mock("2");
    let (_, v) = exchange(&m, &assertion(&m, 3500, SCOPE)).await;
    let token = v["access_token"].as_str().unwrap().to_string();
    let issued = Instant::now();

    let r = predict(&m, "rawPredict", Some(&token), &messages()).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["type"].as_str(), v["model"].as_str()),
        (Some("message"), Some("claude-sonnet-4-5@20250929")),
        "{v}"
    );

    assert_unauthenticated(predict(&m, "rawPredict", None, &messages()).await).await;
    // A token of the mock's form with a later expiry but no valid MAC.
    let (expiry, mac) = token["ya29.mock.".len()..].split_once('.').unwrap();
    let later = expiry.parse::<u64>().unwrap() + 3_600_000;
    let forged = format!("ya29.mock.{later}.{mac}");
    assert_unauthenticated(predict(&m, "rawPredict", Some(&forged), &messages()).await).await;

    tokio::time::sleep(Duration::from_secs(2).saturating_sub(issued.elapsed())).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_unauthenticated(predict(&m, "rawPredict", Some(&token), &messages()).await).await;
}

#[tokio::test]
async fn claude_on_vertex_wants_the_model_in_the_path_and_the_vertex_version() {
    let m = vertex_mock("60");
    let (_, v) = exchange(&m, &assertion(&m, 3500, SCOPE)).await;
    let token = v["access_token"].as_str().unwrap();
    let mut with_model = messages();
    with_model["model"] = json!("claude-sonnet-4-5");
    let mut unversioned = messages();
    unversioned
        .as_object_mut()
        .unwrap()
        .remove("anthropic_version");
    for body in [with_model, unversioned] {
        let r = predict(&m, "rawPredict", Some(token), &body).await;
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (v["type"].as_str(), v["error"]["type"].as_str()),
            (Some("error"), Some("invalid_request_error")),
            "{v}"
        );
    }
}

#[tokio::test]
async fn stream_raw_predict_streams_anthropic_events() {
    let m = vertex_mock("60");
    let (_, v) = exchange(&m, &assertion(&m, 3500, SCOPE)).await;
    let token = v["access_token"].as_str().unwrap();
    let mut body = messages();
    body["stream"] = json!(true);
    let r = predict(&m, "streamRawPredict", Some(token), &body).await;
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let text = r.text().await.unwrap();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.first(), Some(&"message_start"), "{text}");
    assert_eq!(events.last(), Some(&"message_stop"), "{text}");
    assert!(events.contains(&"content_block_delta"), "{text}");
    assert_unauthenticated(predict(&m, "streamRawPredict", None, &body).await).await;
}

fn source(m: &Proc) -> Arc<TokenSource> {
    let sa = ServiceAccount::from_file(SA).unwrap();
    Arc::new(TokenSource::new(
        sa,
        Some(format!("{}/token", m.url())),
        "vertex",
    ))
}

#[tokio::test]
async fn a_burst_of_callers_shares_one_fetch() {
    let m = vertex_mock("60");
    let ts = source(&m);
    let burst: Vec<_> = (0..16)
        .map(|_| {
            let ts = ts.clone();
            tokio::spawn(async move { ts.token().await.unwrap() })
        })
        .collect();
    let mut tokens = Vec::new();
    for b in burst {
        tokens.push(b.await.unwrap());
    }
    assert!(tokens.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(ts.fetches(), 1);
    let r = predict(&m, "rawPredict", Some(&tokens[0]), &messages()).await;
    assert_eq!(r.status(), 200);
}

/// Polls `ts` until it hands out a token other than `old`.
async fn next_token(ts: &Arc<TokenSource>, old: &str) -> Arc<str> {
    for _ in 0..200 {
        let t = ts.token().await.unwrap();
        if &*t != old {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no refreshed token");
}

#[tokio::test]
async fn the_token_source_refreshes_before_the_mock_expires_its_token() {
    // Four-second tokens: refreshed 3 s after the fetch began, not used after 3.6 s.
    let m = vertex_mock("4");
    let ts = source(&m);
    let started = Instant::now();
    ts.warm().await;
    let first = ts.token().await.unwrap();
    assert_eq!(ts.fetches(), 1);
    assert_eq!(
        predict(&m, "rawPredict", Some(&first), &messages())
            .await
            .status(),
        200
    );

    tokio::time::sleep(Duration::from_millis(3100).saturating_sub(started.elapsed())).await;
    // Due for refresh but valid: handed out at once while one refresh runs behind.
    let asked = Instant::now();
    assert_eq!(ts.token().await.unwrap(), first);
    assert!(asked.elapsed() < Duration::from_millis(50));
    let second = next_token(&ts, &first).await;
    assert_eq!(ts.fetches(), 2);
    assert_eq!(
        predict(&m, "rawPredict", Some(&second), &messages())
            .await
            .status(),
        200
    );

    // Past the first token's life: the mock refuses it, the source's current one works.
    tokio::time::sleep(Duration::from_millis(4200).saturating_sub(started.elapsed())).await;
    assert_unauthenticated(predict(&m, "rawPredict", Some(&first), &messages()).await).await;
    let current = ts.token().await.unwrap();
    assert_eq!(current, second);
    assert_eq!(
        predict(&m, "rawPredict", Some(&current), &messages())
            .await
            .status(),
        200
    );
}
