//! `tollgate mock`'s Bedrock and Vertex AI parts on their own: SigV4 checked as AWS does
//! (403 in Bedrock's shape), ConverseStream frames with valid CRCs, the Vertex token endpoint
//! verifying JWT assertions and issuing short-lived tokens, and Vertex paths refusing expired
//! or forged ones.

mod common;

use common::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tollgate::stream::eventstream::FrameDecoder;

const CONVERSE: &str = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse";
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

fn converse() -> Value {
    json!({"messages": [{"role": "user", "content": [{"text": "Hi"}]}],
           "inferenceConfig": {"maxTokens": 5}})
}

/// A request signed by the gateway's own Bedrock signer would be circular; this test signs
/// with `aws-sigv4` directly, as any AWS client does.
fn signed(url: &str, body: &[u8], secret: &str, token: Option<&str>) -> reqwest::RequestBuilder {
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    use aws_smithy_runtime_api::client::identity::Identity;
    let id: Identity =
        Credentials::new("AKIDMOCK", secret, token.map(str::to_string), None, "t").into();
    let params = v4::SigningParams::builder()
        .identity(&id)
        .region("us-east-1")
        .name("bedrock")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let host = url.trim_start_matches("http://").split('/').next().unwrap();
    let headers = [("host", host), ("content-type", "application/json")];
    let req =
        SignableRequest::new("POST", url, headers.into_iter(), SignableBody::Bytes(body)).unwrap();
    let (instructions, _) = sign(req, &params).unwrap().into_parts();
    let mut r = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in instructions.headers() {
        r = r.header(k, v);
    }
    r
}

fn bedrock_mock() -> Proc {
    mock(
        "bedrock",
        &[
            "--aws-access-key-id",
            "AKIDMOCK",
            "--aws-secret-access-key",
            "mock-secret",
        ],
    )
}

#[tokio::test]
async fn bedrock_checks_signatures_as_aws_does() {
    let m = bedrock_mock();
    let url = format!("{}{CONVERSE}", m.url());
    let body = serde_json::to_vec(&converse()).unwrap();
    let ok = signed(&url, &body, "mock-secret", Some("tok"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["x-mock-model"],
        "anthropic.claude-3-haiku-20240307-v1:0"
    );
    let v: Value = ok.json().await.unwrap();
    assert_eq!(v["stopReason"], "max_tokens");
    assert_eq!(v["usage"]["outputTokens"], 5);

    let bad = signed(&url, &body, "wrong", None).send().await.unwrap();
    assert_eq!(bad.status(), 403);
    let kind = bad.headers()["x-amzn-errortype"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(kind.starts_with("InvalidSignatureException:"), "{kind}");
    let v: Value = bad.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("signature"));

    // The body is part of the signature: a changed body fails.
    let r = signed(&url, &body, "mock-secret", None)
        .body(b"{\"messages\":[]}".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client().post(&url).json(&converse()).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn bedrock_streams_crc_checked_frames_and_exceptions() {
    let m = bedrock_mock();
    let url = format!(
        "{}{}",
        m.url(),
        CONVERSE.replace("converse", "converse-stream")
    );
    let body = serde_json::to_vec(&converse()).unwrap();
    let r = signed(&url, &body, "mock-secret", None)
        .header("x-mock-stream-error-after", "3")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let bytes = r.bytes().await.unwrap();
    let mut kinds = Vec::new();
    FrameDecoder::default()
        .push(&bytes, |f| {
            kinds.push(format!("{}:{}", f.message_type, f.kind));
            Ok(())
        })
        .unwrap();
    assert_eq!(
        kinds,
        [
            "event:messageStart",
            "event:contentBlockDelta",
            "event:contentBlockDelta",
            "exception:throttlingException"
        ]
    );
}

fn assertion(key_pem: &[u8], exp_offset: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = json!({"iss": "t@x.iam.gserviceaccount.com", "aud": "http://mock/token",
        "scope": "https://www.googleapis.com/auth/cloud-platform",
        "iat": now - 10, "exp": now + exp_offset});
    let key = EncodingKey::from_rsa_pem(key_pem).unwrap();
    encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
}

fn sa_key() -> Vec<u8> {
    let sa: Value = serde_json::from_slice(&std::fs::read(SA).unwrap()).unwrap();
    sa["private_key"].as_str().unwrap().as_bytes().to_vec()
}

async fn token(m: &Proc, jwt: &str) -> (u16, Value) {
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

#[tokio::test]
async fn vertex_tokens_are_issued_for_valid_assertions_and_expire() {
    let m = mock(
        "vertex",
        &["--vertex-public-key", PUBLIC_KEY, "--vertex-token-ttl", "1"],
    );
    let (status, v) = token(&m, &assertion(&sa_key(), 3500)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["token_type"], "Bearer");
    let t = v["access_token"].as_str().unwrap().to_string();

    // Expired, or signed by another key: refused as Google refuses.
    let (status, v) = token(&m, &assertion(&sa_key(), -5)).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_grant")));
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let forged = encode(
        &Header::new(Algorithm::ES256),
        &json!({"exp": 4_000_000_000u64}),
        &EncodingKey::from_ec_pem(other.serialize_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(token(&m, &forged).await.0, 400);

    let body = json!({"anthropic_version": "vertex-2023-10-16", "max_tokens": 5,
        "messages": [{"role": "user", "content": "Hi"}]});
    let call = |t: String| {
        client()
            .post(format!("{}{CLAUDE}:rawPredict", m.url()))
            .bearer_auth(t)
            .json(&body)
            .send()
    };
    let r = call(t.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["type"], "message");
    let forged = format!("{}0", t);
    assert_eq!(call(forged).await.unwrap().status(), 401);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = call(t).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["status"],
        "UNAUTHENTICATED"
    );
}
