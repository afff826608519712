//! The mock's Vertex AI specifics: the OAuth token endpoint (`POST /token`, the JWT-bearer
//! grant a service account uses) and Claude on Vertex
//! (`…/publishers/anthropic/models/{m}:rawPredict` and `:streamRawPredict`).
//!
//! With `--vertex-public-key`, `/token` verifies each assertion's RS256 signature with that key,
//! its expiry, audience and scope, and issues tokens that live `--vertex-token-ttl` seconds;
//! the Vertex paths (here and the Gemini ones) then take only a live token it issued. Tokens are
//! self-verifying (`ya29.mock.{expiry in unix ms}.{mac}`, the MAC keyed by a per-process
//! secret), so the mock keeps no state; milliseconds make a token live exactly its TTL. Without
//! the key, `/token` answers 404 and any bearer token is taken; an unreadable key is a 500.

use super::{header_str, send_json, Behaviour, MockSettings, Request};
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use pingora::protocols::http::ServerSession;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

const VERSION: &str = "vertex-2023-10-16";
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

pub(super) async fn handle(
    s: &mut ServerSession,
    req: Request,
    b: &Behaviour,
    set: &MockSettings,
) -> bool {
    if req.path == "/token" {
        return token(s, &req, set).await;
    }
    if !bearer_ok(s, set) {
        return send_unauthenticated(s, &req.common).await;
    }
    claude(s, req, b).await
}

/// Process secret keying the tokens' MACs.
fn secret() -> u64 {
    static SECRET: OnceLock<u64> = OnceLock::new();
    *SECRET.get_or_init(|| fastrand::u64(..))
}

/// Now in unix milliseconds: token expiries are kept to the millisecond.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn mac(expiry: u64) -> String {
    let d = Sha256::digest(format!("{}:{expiry}", secret()).as_bytes());
    hex::encode(&d[..12])
}

/// Whether the request carries a live token this mock issued (any bearer token without
/// `--vertex-public-key`).
pub(super) fn bearer_ok(s: &ServerSession, set: &MockSettings) -> bool {
    let Some(token) = header_str(s, "authorization").and_then(|v| v.strip_prefix("Bearer ")) else {
        return false;
    };
    if set.vertex_public_key.is_none() {
        return !token.trim().is_empty();
    }
    let Some((expiry, m)) = token
        .strip_prefix("ya29.mock.")
        .and_then(|t| t.split_once('.'))
    else {
        return false;
    };
    let expiry: u64 = expiry.parse().unwrap_or(0);
    m == mac(expiry) && expiry > now_ms()
}

/// Google's 401 for a missing, forged or expired token.
pub(super) async fn send_unauthenticated(s: &mut ServerSession, common: &[(&str, String)]) -> bool {
    let msg = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
    let body = obj! {"error": obj! {"code": 401, "message": msg, "status": "UNAUTHENTICATED"}};
    send_json(s, 401, &body, common, None, &[]).await
}

#[derive(Deserialize)]
struct Claims {
    aud: String,
    #[serde(default)]
    scope: String,
    iat: u64,
    exp: u64,
}

fn form_value<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.split('&').find_map(|p| {
        p.split_once('=')
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v)
    })
}

/// Checks the JWT-bearer grant; `Err` is Google's `error_description`.
fn grant(body: &[u8], set: &MockSettings, key: &DecodingKey) -> Result<u64, &'static str> {
    let body = std::str::from_utf8(body).map_err(|_| "Invalid request")?;
    let jwt_bearer = [
        "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ];
    let grant_type = form_value(body, "grant_type");
    if !grant_type.is_some_and(|g| jwt_bearer.contains(&g)) {
        return Err("Invalid grant_type");
    }
    let assertion = form_value(body, "assertion").ok_or("Missing required parameter: assertion")?;
    let mut v = Validation::new(Algorithm::RS256);
    v.leeway = 0;
    v.validate_aud = false;
    v.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let claims = decode::<Claims>(assertion, key, &v)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
            _ => "Invalid JWT Signature.",
        })?
        .claims;
    if !claims.aud.ends_with("/token") || claims.exp.saturating_sub(claims.iat) > 3600 {
        return Err("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.");
    }
    if !claims.scope.split(' ').any(|s| s == SCOPE) {
        return Err("Invalid OAuth scope or ID token audience provided.");
    }
    Ok(now_ms().saturating_add(set.vertex_token_ttl.saturating_mul(1000)))
}

async fn token(s: &mut ServerSession, req: &Request, set: &MockSettings) -> bool {
    let Some(path) = set.vertex_public_key.as_deref() else {
        let body = obj! {"error": "not_found",
        "error_description": "the mock has no token endpoint without --vertex-public-key"};
        return send_json(s, 404, &body, &req.common, None, &[]).await;
    };
    // Read per request: it is a mock, and a test may rewrite the file.
    let key = std::fs::read(path)
        .ok()
        .and_then(|pem| DecodingKey::from_rsa_pem(&pem).ok());
    let Some(key) = key else {
        let body = obj! {"error": "internal_failure",
        "error_description": format!("the mock cannot read an RSA public key from `{path}`")};
        return send_json(s, 500, &body, &req.common, None, &[]).await;
    };
    match grant(&req.body, set, &key) {
        Ok(expiry) => {
            let t = format!("ya29.mock.{expiry}.{}", mac(expiry));
            let body = obj! {"access_token": t, "expires_in": set.vertex_token_ttl, "token_type": "Bearer"};
            send_json(s, 200, &body, &req.common, None, &[]).await
        }
        Err(why) => {
            let body = obj! {"error": "invalid_grant", "error_description": why};
            send_json(s, 400, &body, &req.common, None, &[]).await
        }
    }
}

/// Claude on Vertex: Anthropic's Messages body without `model` (it is in the path) and with
/// `anthropic_version`, answered as the mock's Anthropic API answers.
async fn claude(s: &mut ServerSession, mut req: Request, b: &Behaviour) -> bool {
    let Some((_, rest)) = req.path.rsplit_once("/models/") else {
        return super::anthropic::error(s, 404, "Not found", &req.common).await;
    };
    let (model, stream) = match rest.rsplit_once(':') {
        Some((m, "rawPredict")) => (m.to_string(), false),
        Some((m, "streamRawPredict")) => (m.to_string(), true),
        _ => return super::anthropic::error(s, 404, "Not found", &req.common).await,
    };
    let mut body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let problem = match body.as_object() {
        None => Some("There was an issue with your request body: invalid JSON."),
        Some(o) if o.contains_key("model") => Some("model: Extra inputs are not permitted"),
        Some(o) if o.get("anthropic_version").and_then(Value::as_str) != Some(VERSION) => {
            Some("anthropic_version: Input should be 'vertex-2023-10-16'")
        }
        Some(_) => None,
    };
    if let Some(msg) = problem {
        return super::anthropic::error(s, 400, msg, &req.common).await;
    }
    if let Some(o) = body.as_object_mut() {
        o.remove("anthropic_version");
        o.insert("model".into(), Value::String(model));
        if stream {
            o.insert("stream".into(), Value::Bool(true));
        }
    }
    req.body = serde_json::to_vec(&body).unwrap_or_default().into();
    super::anthropic::messages(s, req, b, false).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vertex/");

    #[test]
    fn tokens_verify_themselves() {
        let expiry = now_ms() + 60_000;
        let m = mac(expiry);
        assert_eq!(m.len(), 24);
        assert_ne!(m, mac(expiry + 1));
        assert_eq!(
            form_value("a=1&assertion=x.y.z", "assertion"),
            Some("x.y.z")
        );
    }

    fn form(claims: Value, grant_type: &str) -> String {
        let sa: Value =
            serde_json::from_slice(&std::fs::read(format!("{DIR}service-account.json")).unwrap())
                .unwrap();
        let pem = sa["private_key"].as_str().unwrap().as_bytes();
        let key = EncodingKey::from_rsa_pem(pem).unwrap();
        let jwt = encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap();
        format!("grant_type={grant_type}&assertion={jwt}")
    }

    #[test]
    fn grants_check_signature_expiry_audience_and_scope() {
        let pem = std::fs::read(format!("{DIR}public.pem")).unwrap();
        let key = DecodingKey::from_rsa_pem(&pem).unwrap();
        let set = MockSettings {
            vertex_token_ttl: 7,
            ..MockSettings::default()
        };
        let now = super::super::now();
        let claims = |aud: &str, scope: &str, exp: u64| json!({"iss": "a@b", "aud": aud, "scope": scope, "iat": now - 5, "exp": exp});
        let check = |c: Value, g: &str| grant(form(c, g).as_bytes(), &set, &key);
        let jwt_bearer = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";
        let expiry = check(claims("http://x/token", SCOPE, now + 600), jwt_bearer).unwrap();
        assert!(expiry.abs_diff(now_ms() + 7000) < 2000, "{expiry}");
        let plain = "urn:ietf:params:oauth:grant-type:jwt-bearer";
        assert!(check(claims("http://x/token", SCOPE, now + 600), plain).is_ok());
        let expired = check(claims("http://x/token", SCOPE, now - 1), jwt_bearer);
        assert!(expired
            .unwrap_err()
            .starts_with("Invalid JWT: Token must be a short-lived"));
        let too_long = check(claims("http://x/token", SCOPE, now + 7200), jwt_bearer);
        assert!(too_long.unwrap_err().contains("short-lived"));
        assert!(check(claims("http://x/other", SCOPE, now + 600), jwt_bearer).is_err());
        let scope = check(claims("http://x/token", "openid", now + 600), jwt_bearer);
        assert!(scope.unwrap_err().contains("scope"));
        let wrong = check(claims("http://x/token", SCOPE, now + 600), "password");
        assert_eq!(wrong, Err("Invalid grant_type"));
        let garbage = grant(
            b"grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=a.b.c",
            &set,
            &key,
        );
        assert_eq!(garbage, Err("Invalid JWT Signature."));
    }
}
