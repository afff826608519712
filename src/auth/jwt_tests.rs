//! Every way a token is refused, and what a good one's claims make of the caller.

use super::*;
use crate::config::{JwksSource, KeyKind};
use jsonwebtoken::{EncodingKey, Header as JwtHeader};
use serde_json::json;
use std::time::Duration;

const RSA_PRIVATE: &str = include_str!("../../tests/fixtures/jwt/rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("../../tests/fixtures/jwt/rsa-public.pem");

/// A signing key and the issuer spec that trusts its public half.
struct Signer {
    enc: EncodingKey,
    public_pem: String,
}

fn ec() -> Signer {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    Signer {
        enc: EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes()).unwrap(),
        public_pem: kp.public_key_pem(),
    }
}

fn ed() -> Signer {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    Signer {
        enc: EncodingKey::from_ed_pem(kp.serialize_pem().as_bytes()).unwrap(),
        public_pem: kp.public_key_pem(),
    }
}

fn rsa() -> Signer {
    Signer {
        enc: EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
        public_pem: RSA_PUBLIC.to_string(),
    }
}

fn spec(issuer: &str, key: JwtKey) -> JwtSpec {
    JwtSpec {
        issuer: issuer.into(),
        audiences: vec!["tollgate".into(), "other".into()],
        keys: JwtKeys::File(Arc::new(key)),
        subject_claim: "sub".into(),
        team_claim: Some("groups".into()),
        models_claim: Some("allowed_models".into()),
        leeway: Duration::from_secs(60),
    }
}

fn verifier(s: &Signer) -> Verifier {
    let key = JwtKey::from_pem(s.public_pem.as_bytes()).unwrap();
    let connector = Arc::new(Connector::new(None));
    Verifier::new(&[spec("https://idp/", key)], &connector, None).unwrap()
}

fn now() -> i64 {
    crate::clock::now_ms() / 1000
}

fn claims() -> Value {
    json!({"iss": "https://idp/", "aud": "tollgate", "sub": "ann", "exp": now() + 600,
        "groups": ["red", "blue"], "allowed_models": ["gpt-4o*"]})
}

fn sign(s: &Signer, alg: Algorithm, claims: &Value) -> String {
    jsonwebtoken::encode(&JwtHeader::new(alg), claims, &s.enc).unwrap()
}

/// A token with a header and payload of our own and the given signature part.
fn raw(header: Value, claims: &Value, signature: &str) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.{signature}", part(&header), part(claims))
}

async fn verify(v: &Verifier, token: &str) -> Result<Arc<Holder>, AuthError> {
    v.verify(token).await
}

#[tokio::test]
async fn good_tokens_name_the_caller_team_and_models() {
    for (s, algs) in [
        (
            rsa(),
            &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
            ][..],
        ),
        (ec(), &[Algorithm::ES256][..]),
        (ed(), &[Algorithm::EdDSA][..]),
    ] {
        let v = verifier(&s);
        for alg in algs {
            let h = verify(&v, &sign(&s, *alg, &claims())).await.unwrap();
            assert_eq!(&*h.name, "ann", "{alg:?}");
            assert_eq!(h.team.as_deref(), Some("red"));
            assert!(h.allows("gpt-4o-mini") && !h.allows("claude-x"));
            assert!(h.user.is_none() && !h.disabled);
        }
    }
}

#[tokio::test]
async fn claims_map_to_the_holder() {
    let s = ec();
    let v = verifier(&s);
    let with = |f: &dyn Fn(&mut Map<String, Value>)| {
        let mut c = claims();
        f(c.as_object_mut().unwrap());
        sign(&s, Algorithm::ES256, &c)
    };
    // A configured models claim the token lacks allows nothing; a string is split on spaces.
    let h = verify(&v, &with(&|c| drop(c.remove("allowed_models"))))
        .await
        .unwrap();
    assert_eq!(h.models, Some(vec![]));
    assert!(!h.allows("gpt-4o"));
    let t = with(&|c| drop(c.insert("allowed_models".into(), json!("a b*"))));
    let h = verify(&v, &t).await.unwrap();
    assert!(h.allows("a") && h.allows("bc") && !h.allows("c"));
    // The team: a string, an array's first, or none.
    let h = verify(
        &v,
        &with(&|c| drop(c.insert("groups".into(), json!("green")))),
    )
    .await;
    assert_eq!(h.unwrap().team.as_deref(), Some("green"));
    let h = verify(&v, &with(&|c| drop(c.remove("groups"))))
        .await
        .unwrap();
    assert!(h.team.is_none());
    let h = verify(&v, &with(&|c| drop(c.insert("groups".into(), json!([]))))).await;
    assert!(h.unwrap().team.is_none());
    // A numeric subject is its decimal text; audience lists need one accepted entry.
    let h = verify(&v, &with(&|c| drop(c.insert("sub".into(), json!(42))))).await;
    assert_eq!(&*h.unwrap().name, "42");
    let t = with(&|c| drop(c.insert("aud".into(), json!(["x", "other"]))));
    assert!(verify(&v, &t).await.is_ok());
    // Wrong types and a missing subject are refused.
    for (claim, value, want) in [
        ("sub", json!(null), AuthError::MissingClaim("sub".into())),
        ("sub", json!(""), AuthError::BadClaim("sub".into())),
        ("sub", json!({"a": 1}), AuthError::BadClaim("sub".into())),
        ("groups", json!(7), AuthError::BadClaim("groups".into())),
        ("groups", json!([7]), AuthError::BadClaim("groups".into())),
        (
            "allowed_models",
            json!([1]),
            AuthError::BadClaim("allowed_models".into()),
        ),
        (
            "allowed_models",
            json!({}),
            AuthError::BadClaim("allowed_models".into()),
        ),
        ("exp", json!("tomorrow"), AuthError::BadClaim("exp".into())),
        ("iss", json!(1), AuthError::BadClaim("iss".into())),
    ] {
        let t = with(&|c| drop(c.insert(claim.into(), value.clone())));
        assert_eq!(verify(&v, &t).await, Err(want), "{claim} = {value}");
    }
}

#[tokio::test]
async fn bad_tokens_are_refused_with_what_is_wrong() {
    let s = ec();
    let v = verifier(&s);
    let signed = |c: Value| sign(&s, Algorithm::ES256, &c);
    let with = |k: &str, val: Value| {
        let mut c = claims();
        c[k] = val;
        c
    };
    let mut no_exp = claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut no_aud = claims();
    no_aud.as_object_mut().unwrap().remove("aud");
    let good = signed(claims());
    let (head, rest) = good.split_once('.').unwrap();
    let sig = rest.split_once('.').unwrap().1;
    let tampered = raw(
        json!({"alg": "ES256", "typ": "JWT"}),
        &with("sub", json!("root")),
        sig,
    );
    let _ = head;
    let hs256 = jsonwebtoken::encode(
        &JwtHeader::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(s.public_pem.as_bytes()),
    )
    .unwrap();
    let cases = [
        (
            raw(json!({"alg": "none"}), &claims(), ""),
            AuthError::Unsigned,
        ),
        (
            raw(json!({"alg": "None"}), &claims(), "x"),
            AuthError::Unsigned,
        ),
        (hs256, AuthError::Algorithm("HS256".into())),
        (
            sign(&rsa(), Algorithm::RS256, &claims()),
            AuthError::Algorithm("RS256".into()),
        ),
        (
            raw(json!({"alg": "ES999"}), &claims(), "x"),
            AuthError::Algorithm("ES999".into()),
        ),
        (
            signed(with("iss", json!("https://evil/"))),
            AuthError::Issuer("https://evil/".into()),
        ),
        (
            signed(with("aud", json!("nope"))),
            AuthError::Audience("`nope`".into()),
        ),
        (
            signed(with("aud", json!(["a", "b"]))),
            AuthError::Audience("`a`, `b`".into()),
        ),
        (
            signed(with("aud", json!([]))),
            AuthError::Audience("[]".into()),
        ),
        (
            signed(with("aud", json!(7))),
            AuthError::BadClaim("aud".into()),
        ),
        (signed(no_aud), AuthError::MissingClaim("aud".into())),
        (signed(no_exp), AuthError::MissingClaim("exp".into())),
        (
            signed(with("exp", json!(now() - 61))),
            AuthError::TokenExpired,
        ),
        (
            signed(with("nbf", json!(now() + 120))),
            AuthError::NotYetValid,
        ),
        (tampered, AuthError::Signature),
        (
            sign(&ec(), Algorithm::ES256, &claims()),
            AuthError::Signature,
        ),
        (format!("{good}x"), AuthError::Signature),
        ("a.b".into(), AuthError::Malformed("not three parts")),
        (
            "e30.e30.x".into(),
            AuthError::Malformed("unreadable header"),
        ),
        (
            raw(json!({"alg": "ES256", "crit": ["b64"]}), &claims(), sig),
            AuthError::Malformed("unsupported `crit` header"),
        ),
        (
            format!("{head}.bm90IGpzb24.{sig}"),
            AuthError::Malformed("the payload is not a JSON object"),
        ),
    ];
    for (token, want) in cases {
        let got = verify(&v, &token).await;
        assert_eq!(got.as_ref().err(), Some(&want), "{want}");
        // The message never quotes the token.
        assert!(!want.to_string().contains(&token));
    }
    // Within the leeway, an expired or early token still passes.
    assert!(verify(&v, &signed(with("exp", json!(now() - 30))))
        .await
        .is_ok());
    assert!(verify(&v, &signed(with("nbf", json!(now() + 30))))
        .await
        .is_ok());
}

#[test]
fn keys_verify_only_their_own_algorithms() {
    let kinds = [
        (rsa(), KeyKind::Rsa),
        (ec(), KeyKind::EcP256),
        (ed(), KeyKind::Ed25519),
    ];
    for (s, kind) in kinds {
        let k = JwtKey::from_pem(s.public_pem.as_bytes()).unwrap();
        assert_eq!(k.kind, kind);
        for hmac in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            assert!(!k.accepts(hmac));
        }
    }
    let k = JwtKey::from_pem(RSA_PUBLIC.as_bytes()).unwrap();
    assert!(k.accepts(Algorithm::PS512) && !k.accepts(Algorithm::ES256));
}

/// A JWKS entry for a signer's public key.
fn jwk(s: &Signer, kid: &str) -> Value {
    let k = JwtKey::from_pem(s.public_pem.as_bytes()).unwrap();
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let der = x509_parser::pem::Pem::iter_from_buffer(s.public_pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .contents;
    let (_, spki) =
        <x509_parser::x509::SubjectPublicKeyInfo as x509_parser::prelude::FromDer<_>>::from_der(
            &der,
        )
        .unwrap();
    let point: &[u8] = &spki.subject_public_key.data;
    match k.kind {
        KeyKind::EcP256 => json!({"kty": "EC", "crv": "P-256", "kid": kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..])}),
        KeyKind::Ed25519 => json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(point)}),
        _ => {
            let mut j: Value =
                serde_json::from_str(include_str!("../../tests/fixtures/jwt/rsa-public.jwk.json"))
                    .unwrap();
            j["kid"] = json!(kid);
            j
        }
    }
}

#[test]
fn a_jwks_keeps_the_keys_it_can_verify_with() {
    let body = json!({"keys": [
        jwk(&rsa(), "r"), jwk(&ec(), "e"), jwk(&ed(), "d"),
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {"kty": "RSA", "use": "enc", "kid": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"},
        {"kty": "RSA", "kid": "short", "n": "AQAB", "e": "AQAB"},
        {"kty": "weird"},
    ]});
    let keys = super::super::jwks::parse(body.to_string().as_bytes()).unwrap();
    let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
    assert_eq!(kids, ["r", "e", "d"]);
    assert!(super::super::jwks::parse(b"[]").is_err());
    // A JWK's `alg` narrows what it verifies.
    let mut only = jwk(&rsa(), "r");
    only["alg"] = json!("RS256");
    let k = JwtKey::from_jwk(only).unwrap();
    assert!(k.accepts(Algorithm::RS256) && !k.accepts(Algorithm::PS256));
}

#[test]
fn kid_picks_the_key_and_its_kind_decides_the_algorithm() {
    let (e, d) = (ec(), ed());
    let set = super::super::jwks::parse(
        json!({"keys": [jwk(&e, "e1"), jwk(&d, "d1")]})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let token = |s: &Signer, alg, kid: Option<&str>| {
        let mut h = JwtHeader::new(alg);
        h.kid = kid.map(String::from);
        jsonwebtoken::encode(&h, &claims(), &s.enc).unwrap()
    };
    let run = |t: &str, kid: Option<&str>| {
        let t = Token::parse(t).unwrap();
        let alg = t.algorithm().unwrap();
        check(&set, kid, alg, &t).map(|c| match c {
            Check::Valid => "valid",
            Check::Invalid => "invalid",
            Check::NoKey => "nokey",
        })
    };
    let t = token(&e, Algorithm::ES256, Some("e1"));
    assert_eq!(run(&t, Some("e1")), Ok("valid"));
    // Without a kid, every key of the algorithm's kind is tried.
    assert_eq!(run(&t, None), Ok("valid"));
    assert_eq!(run(&t, Some("zz")), Ok("nokey"));
    // The Ed25519 key cannot check an ES256 signature, whatever the token says.
    assert_eq!(
        run(&t, Some("d1")),
        Err(AuthError::Algorithm("ES256".into()))
    );
    let other = token(&ec(), Algorithm::ES256, None);
    assert_eq!(run(&other, None), Ok("invalid"));
}

#[test]
fn a_reload_keeps_the_key_sets() {
    let connector = Arc::new(Connector::new(None));
    let source = |url: &str| JwksSource {
        url: url.into(),
        refresh: Duration::from_secs(300),
        min_refetch: Duration::from_secs(30),
    };
    let specs = |url: &str| {
        let mut s = spec("i", JwtKey::from_pem(RSA_PUBLIC.as_bytes()).unwrap());
        s.keys = JwtKeys::Jwks(source(url));
        vec![s]
    };
    let set = |v: &Verifier| v.sets().next().unwrap();
    let a = Verifier::new(&specs("http://idp/a"), &connector, None).unwrap();
    let b = Verifier::new(&specs("http://idp/a"), &connector, Some(&a)).unwrap();
    let c = Verifier::new(&specs("http://idp/c"), &connector, Some(&b)).unwrap();
    assert!(Arc::ptr_eq(&set(&a), &set(&b)));
    assert!(!Arc::ptr_eq(&set(&b), &set(&c)));
    assert!(Verifier::new(&[], &connector, Some(&c)).is_none());
}

#[test]
fn a_credential_is_a_jwt_or_an_api_key() {
    let v = verifier(&ec());
    let jwt = sign(&ec(), Algorithm::ES256, &claims());
    let bearer = format!("Bearer {jwt}");
    let got = v.token(Some(bearer.as_bytes()), None, true).unwrap();
    assert_eq!(got.as_deref(), Some(jwt.as_str()));
    let got = v.token(None, Some(jwt.as_bytes()), false).unwrap();
    assert_eq!(got.as_deref(), Some(jwt.as_str()));
    // API keys (no dots; or dots but no JWT header) go to the key store when there are keys.
    for key in ["sk-abc", "a.b.c", "e30.e30.e30"] {
        let h = format!("Bearer {key}");
        assert_eq!(v.token(Some(h.as_bytes()), None, true), Ok(None));
        assert_eq!(
            v.token(Some(h.as_bytes()), None, false),
            Err(AuthError::NotJwt)
        );
    }
    assert_eq!(v.token(None, None, true), Ok(None));
    assert_eq!(v.token(None, None, false), Err(AuthError::Missing));
}

#[test]
fn errors_answer_401_or_503() {
    let e = AuthError::TokenExpired.to_api();
    assert_eq!(
        (e.status, e.code.as_deref()),
        (401, Some("invalid_api_key"))
    );
    let e = AuthError::KeysUnavailable("https://idp/".into()).to_api();
    assert_eq!(
        (e.status, e.code.as_deref()),
        (503, Some("auth_unavailable"))
    );
    assert!(e.message.contains("https://idp/"));
}

#[test]
fn long_values_are_cut_in_messages() {
    let long = "x".repeat(500);
    assert_eq!(shown(&long).chars().count(), 65);
    assert_eq!(shown("short"), "short");
}
