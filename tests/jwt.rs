//! JWT callers (README "JWT / OIDC callers") through the real binary in front of the mock: a
//! JWKS served by the test itself (it counts fetches and can rotate keys), tokens signed with
//! RS256, ES256 and EdDSA keys, every refusal a 401 in the client's API shape with nothing sent
//! upstream, the claims mapped to the caller's name, team limits and models.

mod common;

use common::{
    backend, chat, dead_port, get_json, mock, send_json, sha256_hex, upstream_requests, Gateway,
    Proc,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ISSUER: &str = "https://idp.test/";
const RSA_PRIVATE: &str = include_str!("fixtures/jwt/rsa-private.pem");
const RSA_JWK: &str = include_str!("fixtures/jwt/rsa-public.jwk.json");
const RSA_PUBLIC_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/jwt/rsa-public.pem"
);
const CHAT: &str = "/v1/chat/completions";

/// A signing key, its JWK (with its kid) and the algorithm it signs with.
struct Signer {
    enc: EncodingKey,
    jwk: Value,
    alg: Algorithm,
}

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn rsa(kid: &str) -> Signer {
    let mut jwk: Value = serde_json::from_str(RSA_JWK).unwrap();
    jwk["kid"] = json!(kid);
    Signer {
        enc: EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
        jwk,
        alg: Algorithm::RS256,
    }
}

fn ec(kid: &str) -> Signer {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let p = kp.public_key_raw();
    Signer {
        enc: EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes()).unwrap(),
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid,
            "x": b64(&p[1..33]), "y": b64(&p[33..65])}),
        alg: Algorithm::ES256,
    }
}

fn ed(kid: &str) -> Signer {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    Signer {
        enc: EncodingKey::from_ed_pem(kp.serialize_pem().as_bytes()).unwrap(),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(kp.public_key_raw())}),
        alg: Algorithm::EdDSA,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(sub: &str) -> Value {
    json!({"iss": ISSUER, "aud": ["tollgate"], "sub": sub, "exp": now() + 600,
        "groups": ["red"], "allowed_models": ["gpt-4o*"]})
}

impl Signer {
    fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(self.alg);
        h.kid = self.jwk["kid"].as_str().map(String::from);
        jsonwebtoken::encode(&h, claims, &self.enc).unwrap()
    }
}

/// The identity provider's JWKS endpoint: serves `keys` (the test may change them) and counts
/// its fetches. One request per connection.
struct Idp {
    port: u16,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

fn idp(keys: Vec<Value>) -> Idp {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let keys = Arc::new(Mutex::new(keys));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (k, f) = (keys.clone(), fetches.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            f.fetch_add(1, Ordering::SeqCst);
            let body = json!({"keys": *k.lock().unwrap()}).to_string();
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes());
        }
    });
    Idp {
        port,
        keys,
        fetches,
    }
}

impl Idp {
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn issuer(jwks_port: u16, extra: &str) -> String {
    format!(
        "[[auth.jwt]]\nissuer = \"{ISSUER}\"\naudiences = [\"tollgate\"]\n\
         jwks_url = \"http://127.0.0.1:{jwks_port}/.well-known/jwks.json\"\n\
         team_claim = \"groups\"\nmodels_claim = \"allowed_models\"\n{extra}\n"
    )
}

/// A gateway with an API key and the issuer (`extra` after them).
fn gateway(m: &Proc, idp: &Idp, extra: &str) -> Gateway {
    let rest = format!(
        "{}[[routes]]\nmodels = [\"gpt-4o-mini\", \"claude-sonnet-4-5\"]\ntargets = [{{ backend = \"m\" }}]\n\
         [[keys]]\nname = \"svc\"\nsha256 = \"{}\"\n{}{extra}",
        backend("m", m.port, ""),
        sha256_hex(b"sk-svc"),
        issuer(idp.port, "jwks_min_refetch_seconds = 3"),
    );
    Gateway::start("", &rest)
}

/// Sends a chat request with `token`; the status, the body and the request id.
async fn call(g: &Gateway, token: &str, model: &str) -> (u16, Value, String) {
    let r = common::send(g, CHAT, Some(token), &[], &chat(model)).await;
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null), rid)
}

#[tokio::test]
async fn tokens_of_each_algorithm_name_their_caller_and_models() {
    let m = mock("jwt-ok", &[]);
    let (r, e, d) = (rsa("r1"), ec("e1"), ed("d1"));
    let idp = idp(vec![r.jwk.clone(), e.jwk.clone(), d.jwk.clone()]);
    let g = gateway(&m, &idp, "");
    for (s, sub) in [(&r, "ann"), (&e, "bob"), (&d, "cy")] {
        let (status, v, rid) = call(&g, &s.sign(&claims(sub)), "gpt-4o-mini").await;
        assert_eq!(status, 200, "{:?}: {v}", s.alg);
        // The subject is the caller's name, as a key's.
        let line: Value = serde_json::from_str(&g.proc.wait_line(&rid)).unwrap();
        assert_eq!(line["key"], sub, "{line}");
    }
    // One fetch served them all; the API key still works beside the tokens.
    assert_eq!(idp.fetches(), 1);
    let (s, v) = send_json(&g, CHAT, Some("sk-svc"), &[], &chat("claude-sonnet-4-5")).await;
    assert_eq!(s, 200, "{v}");
    // The models claim: another model is 403 naming the subject, nothing sent upstream.
    let before = upstream_requests(&m).await;
    let (s, v, _) = call(&g, &e.sign(&claims("bob")), "claude-sonnet-4-5").await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"]["code"], "model_not_allowed");
    assert!(v["error"]["message"].as_str().unwrap().contains("`bob`"));
    let mut none = claims("dan");
    none.as_object_mut().unwrap().remove("allowed_models");
    let (s, v, _) = call(&g, &e.sign(&none), "gpt-4o-mini").await;
    assert_eq!(s, 403, "a token without its models claim may use none: {v}");
    let ids = get_json(g.url("/v1/models"), Some(&e.sign(&claims("bob")))).await;
    assert_eq!(ids["data"].as_array().unwrap().len(), 1, "{ids}");
    assert_eq!(upstream_requests(&m).await, before);
}

#[tokio::test]
async fn bad_tokens_are_refused_and_nothing_goes_upstream() {
    let m = mock("jwt-bad", &[]);
    let e = ec("e1");
    let idp = idp(vec![e.jwk.clone(), rsa("r1").jwk]);
    let g = gateway(&m, &idp, "");
    let with = |k: &str, v: Value| {
        let mut c = claims("ann");
        c[k] = v;
        e.sign(&c)
    };
    let part = |v: &Value| b64(v.to_string().as_bytes());
    let good = e.sign(&claims("ann"));
    let sig = good.rsplit('.').next().unwrap();
    let public_pem = std::fs::read(RSA_PUBLIC_FILE).unwrap();
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("r1".into());
    let cases = [
        (
            format!(
                "{}.{}.",
                part(&json!({"alg": "none"})),
                part(&claims("ann"))
            ),
            "alg: none",
        ),
        (
            jsonwebtoken::encode(&hs, &claims("ann"), &EncodingKey::from_secret(&public_pem))
                .unwrap(),
            "`HS256` is not accepted",
        ),
        (
            with("iss", json!("https://evil.test/")),
            "issuer `https://evil.test/` is not trusted",
        ),
        (
            with("aud", json!("someone-else")),
            "audience `someone-else` is not accepted",
        ),
        (with("exp", json!(now() - 120)), "expired"),
        (with("nbf", json!(now() + 600)), "not valid yet"),
        (
            format!(
                "{}.{}.{sig}",
                good.split('.').next().unwrap(),
                part(&claims("root"))
            ),
            "signature does not verify",
        ),
    ];
    for (token, why) in &cases {
        let (s, v, _) = call(&g, token, "gpt-4o-mini").await;
        assert_eq!(s, 401, "{why}: {v}");
        assert_eq!(v["error"]["code"], "invalid_api_key");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(why), "{why}: {msg}");
    }
    // The Anthropic API's shape for an Anthropic client.
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 8,
        "messages": [{"role": "user", "content": "hi"}]});
    let (s, v) = send_json(&g, "/v1/messages", Some(&cases[4].0), &[], &body).await;
    assert_eq!(
        (s, v["error"]["type"].as_str()),
        (401, Some("authentication_error")),
        "{v}"
    );
    assert_eq!(
        upstream_requests(&m).await,
        0,
        "a refused request went upstream"
    );
    // No token reaches the logs.
    let logs = format!(
        "{}{}",
        g.proc.stdout().join("\n"),
        g.proc.stderr().join("\n")
    );
    assert!(cases.iter().all(|(t, _)| !logs.contains(t.as_str())));
}

#[tokio::test]
async fn the_team_claim_applies_team_limits() {
    let m = mock("jwt-team", &[]);
    let e = ec("e1");
    let idp = idp(vec![e.jwk.clone()]);
    let limits = "[[limits]]\nscope = \"team\"\nmatch = \"red\"\nrequests_per_minute = 1\n";
    let g = gateway(&m, &idp, limits);
    let (s, v, rid) = call(&g, &e.sign(&claims("ann")), "gpt-4o-mini").await;
    assert_eq!(s, 200, "{v}");
    let line: Value = serde_json::from_str(&g.proc.wait_line(&rid)).unwrap();
    assert_eq!(line["key"], "ann");
    // Another subject of the same team shares its budget.
    let (s, v, _) = call(&g, &e.sign(&claims("bob")), "gpt-4o-mini").await;
    assert_eq!(s, 429, "{v}");
    let mut blue = claims("cy");
    blue["groups"] = json!("blue");
    assert_eq!(call(&g, &e.sign(&blue), "gpt-4o-mini").await.0, 200);
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_gap_and_rotation_is_picked_up() {
    let m = mock("jwt-rotate", &[]);
    let e = ec("e1");
    let idp = idp(vec![e.jwk.clone()]);
    let g = gateway(&m, &idp, "");
    assert_eq!(
        call(&g, &e.sign(&claims("ann")), "gpt-4o-mini").await.0,
        200
    );
    assert_eq!(idp.fetches(), 1);
    // Past the gap (3 s), a burst of made-up key ids causes one fetch between them.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let forged: Vec<String> = (0..10)
        .map(|i| ec(&format!("x{i}")).sign(&claims("eve")))
        .collect();
    let replies = futures_util::future::join_all(forged.iter().map(|t| call(&g, t, "gpt-4o-mini")));
    for (s, v, _) in replies.await {
        assert_eq!(s, 401, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("is unknown"),
            "{v}"
        );
    }
    assert_eq!(idp.fetches(), 2);
    // The provider rotates in a new key: within the gap its tokens wait; after it, one fetch.
    let new = ed("d2");
    idp.keys.lock().unwrap().push(new.jwk.clone());
    assert_eq!(
        call(&g, &new.sign(&claims("ann")), "gpt-4o-mini").await.0,
        401
    );
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (s, v, _) = call(&g, &new.sign(&claims("ann")), "gpt-4o-mini").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(idp.fetches(), 3);
}

#[tokio::test]
async fn a_public_key_file_issuer_alone_closes_the_gateway() {
    let m = mock("jwt-file", &[]);
    let down = ec("k");
    let rest = format!(
        "{}[[routes]]\nmodels = [\"gpt-4o-mini\"]\ntargets = [{{ backend = \"m\" }}]\n\
         [[auth.jwt]]\nissuer = \"{ISSUER}\"\naudiences = [\"tollgate\"]\npublic_key_file = \"{RSA_PUBLIC_FILE}\"\n\
         [[auth.jwt]]\nissuer = \"https://down.test/\"\naudiences = [\"tollgate\"]\n\
         jwks_url = \"http://127.0.0.1:{}/jwks\"\n",
        backend("m", m.port, ""),
        dead_port(),
    );
    // No [[keys]]: the token is the credential, and `open` stays false.
    let g = Gateway::start("open = false\n", &rest);
    let (s, v, _) = call(&g, &rsa("any").sign(&claims("ann")), "gpt-4o-mini").await;
    assert_eq!(s, 200, "{v}");
    for (token, status, why) in [
        ("sk-whatever", 401, "expects a JWT"),
        (
            &*ec("e").sign(&claims("ann")),
            401,
            "`ES256` is not accepted",
        ),
    ] {
        let (s, v, _) = call(&g, token, "gpt-4o-mini").await;
        assert_eq!(s, status, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(why), "{v}");
    }
    let (s, _) = send_json(&g, CHAT, None, &[], &chat("gpt-4o-mini")).await;
    assert_eq!(s, 401);
    // An issuer whose keys cannot be fetched: 503, the token may be good.
    let mut c = claims("ann");
    c["iss"] = json!("https://down.test/");
    let (s, v, _) = call(&g, &down.sign(&c), "gpt-4o-mini").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (503, Some("auth_unavailable")),
        "{v}"
    );
    assert_eq!(upstream_requests(&m).await, 1);
}

#[test]
fn open_with_an_issuer_is_refused() {
    let dir = std::env::temp_dir().join(format!("tollgate-jwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.toml");
    let text = format!(
        "[server]\nopen = true\n[[backends]]\nname = \"m\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:1\"\n\
         [[routes]]\nmodels = [\"m\"]\ntargets = [{{ backend = \"m\" }}]\n\
         [[auth.jwt]]\nissuer = \"i\"\naudiences = [\"t\"]\npublic_key_file = \"{RSA_PUBLIC_FILE}\"\n"
    );
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("server.open") && err.contains("[[auth.jwt]]"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
