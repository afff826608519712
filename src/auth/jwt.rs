//! JWT callers (`[[auth.jwt]]`): a bearer token signed by a trusted issuer is the credential,
//! and its claims name the caller as a key would be named (a [`Holder`]: limits, ledger, logs),
//! its team and the models it may use.
//!
//! The token never chooses how it is checked: its `iss` only picks that issuer's keys, its
//! `kid` one of them, and its `alg` must be one the key's type verifies (never HMAC, never
//! `none`). The signature is checked first, then `exp` (required), `nbf` (with leeway) and
//! `aud`. A message names what is wrong, never the token.

use super::jwks::Jwks;
use super::{AuthError, Holder};
use crate::config::{JwtKey, JwtKeys, JwtSpec};
use crate::error::{ApiError, ErrorKind};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use pingora::connectors::http::Connector;
use serde_json::{Map, Value};
use std::sync::Arc;

/// The trusted issuers of one config snapshot.
pub struct Verifier {
    issuers: Vec<Issuer>,
}

struct Issuer {
    spec: JwtSpec,
    keys: Keys,
}

enum Keys {
    File(Arc<JwtKey>),
    Jwks(Arc<Jwks>),
}

impl Verifier {
    /// `None` without issuers. A key set of `prev` (the running snapshot's) with the same
    /// source is kept, with its keys and its background refresh, so a reload fetches nothing.
    pub fn new(
        specs: &[JwtSpec],
        connector: &Arc<Connector>,
        prev: Option<&Verifier>,
    ) -> Option<Verifier> {
        if specs.is_empty() {
            return None;
        }
        let mut sets: Vec<Arc<Jwks>> = prev.map_or_else(Vec::new, |p| p.sets().collect());
        let mut issuer = |spec: &JwtSpec| {
            let keys = match &spec.keys {
                JwtKeys::File(k) => Keys::File(k.clone()),
                JwtKeys::Jwks(src) => Keys::Jwks(match sets.iter().find(|s| s.source() == src) {
                    Some(s) => s.clone(),
                    None => {
                        let s = Jwks::new(src.clone(), connector.clone());
                        sets.push(s.clone());
                        s
                    }
                }),
            };
            Issuer {
                spec: spec.clone(),
                keys,
            }
        };
        let issuers = specs.iter().map(&mut issuer).collect();
        Some(Verifier { issuers })
    }

    fn sets(&self) -> impl Iterator<Item = Arc<Jwks>> + '_ {
        self.issuers.iter().filter_map(|i| match &i.keys {
            Keys::Jwks(j) => Some(j.clone()),
            Keys::File(_) => None,
        })
    }

    /// The JWT a request presents (`Authorization: Bearer`, else `x-api-key`, as API keys): a
    /// credential that looks like one (three base64url parts, a header naming `alg`). `None`:
    /// API keys decide. With no API keys (`keys` false) only a JWT is a credential.
    pub fn token(
        &self,
        authorization: Option<&[u8]>,
        x_api_key: Option<&[u8]>,
        keys: bool,
    ) -> Result<Option<String>, AuthError> {
        let presented = authorization
            .and_then(super::bearer_token)
            .or(x_api_key.map(super::trim))
            .filter(|k| !k.is_empty());
        match presented {
            Some(t) if looks_like_jwt(t) => Ok(Some(String::from_utf8_lossy(t).into_owned())),
            _ if keys => Ok(None),
            None => Err(AuthError::Missing),
            Some(_) => Err(AuthError::NotJwt),
        }
    }

    /// The caller a token names, once its issuer's key verifies it and its claims hold.
    pub async fn verify(&self, token: &str) -> Result<Arc<Holder>, AuthError> {
        let t = Token::parse(token)?;
        let alg = t.algorithm()?;
        let iss = match t.claims.get("iss") {
            Some(Value::String(s)) => s,
            Some(_) => return Err(AuthError::BadClaim("iss".into())),
            None => return Err(AuthError::MissingClaim("iss".into())),
        };
        let issuer = (self.issuers.iter())
            .find(|i| i.spec.issuer == *iss)
            .ok_or_else(|| AuthError::Issuer(shown(iss)))?;
        issuer.check_signature(&t, alg).await?;
        issuer.check_claims(&t.claims, crate::clock::now_ms() as f64 / 1000.0)?;
        issuer.holder(&t.claims).map(Arc::new)
    }
}

impl AuthError {
    /// The client's answer: 401, or 503 when an issuer's keys cannot be fetched (the token
    /// may well be good).
    pub fn to_api(&self) -> ApiError {
        match self {
            AuthError::KeysUnavailable(_) => ApiError::new(
                503,
                ErrorKind::Unavailable,
                Some("auth_unavailable"),
                self.to_string(),
            ),
            _ => ApiError::unauthorized(self.to_string()),
        }
    }
}

/// A token's parts, decoded but not yet trusted.
struct Token<'a> {
    alg: String,
    kid: Option<String>,
    claims: Map<String, Value>,
    /// `header.payload`, what the signature covers.
    signed: &'a str,
    signature: &'a str,
}

#[derive(serde::Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    /// Extensions the verifier must understand (RFC 7515 §4.1.11): none are.
    crit: Option<Value>,
}

fn header(segment: &[u8]) -> Option<Header> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).ok()?).ok()
}

/// Three base64url parts whose first decodes to a header naming `alg` (an API key is never
/// one: no dots).
fn looks_like_jwt(t: &[u8]) -> bool {
    let b64url = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    t.iter().filter(|b| **b == b'.').count() == 2
        && t.iter().all(b64url)
        && t.split(|b| *b == b'.').next().and_then(header).is_some()
}

impl<'a> Token<'a> {
    fn parse(token: &'a str) -> Result<Token<'a>, AuthError> {
        let malformed = AuthError::Malformed;
        let (signed, signature) = token.rsplit_once('.').ok_or(malformed("not three parts"))?;
        let (head, payload) = signed.split_once('.').ok_or(malformed("not three parts"))?;
        let h = header(head.as_bytes()).ok_or(malformed("unreadable header"))?;
        if h.crit.is_some() {
            return Err(malformed("unsupported `crit` header"));
        }
        let claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(malformed("the payload is not a JSON object"))?;
        Ok(Token {
            alg: h.alg,
            kid: h.kid,
            claims,
            signed,
            signature,
        })
    }

    /// The header's algorithm, if it is a signature with a public key.
    fn algorithm(&self) -> Result<Algorithm, AuthError> {
        if self.alg.eq_ignore_ascii_case("none") {
            return Err(AuthError::Unsigned);
        }
        match self.alg.parse::<Algorithm>() {
            Ok(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) | Err(_) => {
                Err(AuthError::Algorithm(shown(&self.alg)))
            }
            Ok(a) => Ok(a),
        }
    }
}

/// What a key set makes of a token's signature.
enum Check {
    Valid,
    Invalid,
    /// No key the token names (or, without `kid`, none for its algorithm).
    NoKey,
}

/// Checks the signature with the keys `kid` names (every key without one) that verify `alg`.
/// A key named by `kid` that cannot verify `alg` is an error: the token picked the wrong kind.
fn check(
    keys: &[JwtKey],
    kid: Option<&str>,
    alg: Algorithm,
    t: &Token,
) -> Result<Check, AuthError> {
    let mut named = false;
    let mut tried = false;
    for k in keys
        .iter()
        .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
    {
        named = true;
        if !k.accepts(alg) {
            continue;
        }
        tried = true;
        let ok = jsonwebtoken::crypto::verify(t.signature, t.signed.as_bytes(), &k.key, alg);
        if ok.unwrap_or(false) {
            return Ok(Check::Valid);
        }
    }
    match (tried, named && kid.is_some()) {
        (true, _) => Ok(Check::Invalid),
        (false, true) => Err(AuthError::Algorithm(shown(&t.alg))),
        (false, false) => Ok(Check::NoKey),
    }
}

impl Issuer {
    async fn check_signature(&self, t: &Token<'_>, alg: Algorithm) -> Result<(), AuthError> {
        let outcome = match &self.keys {
            // One key: any `kid` names it.
            Keys::File(k) => match check(std::slice::from_ref(&**k), None, alg, t)? {
                Check::NoKey => return Err(AuthError::Algorithm(shown(&t.alg))),
                c => c,
            },
            Keys::Jwks(set) => {
                let kid = t.kid.as_deref();
                match check(&set.keys(), kid, alg, t)? {
                    // A key the set lacks: rotated in since the last fetch, perhaps.
                    Check::NoKey => {
                        set.refetch().await;
                        check(&set.keys(), kid, alg, t)?
                    }
                    c => c,
                }
            }
        };
        match outcome {
            Check::Valid => Ok(()),
            Check::Invalid => Err(AuthError::Signature),
            Check::NoKey => Err(match (&self.keys, &t.kid) {
                (Keys::Jwks(set), _) if !set.loaded() => {
                    AuthError::KeysUnavailable(self.spec.issuer.clone())
                }
                (_, Some(kid)) => AuthError::UnknownKid(shown(kid)),
                (_, None) => AuthError::NoKey(t.alg.clone()),
            }),
        }
    }

    /// `exp` (required), `nbf` and `aud`, at `now` (unix seconds).
    fn check_claims(&self, claims: &Map<String, Value>, now: f64) -> Result<(), AuthError> {
        let leeway = self.spec.leeway.as_secs_f64();
        let exp = number(claims, "exp")?.ok_or_else(|| AuthError::MissingClaim("exp".into()))?;
        if now >= exp + leeway {
            return Err(AuthError::TokenExpired);
        }
        if number(claims, "nbf")?.is_some_and(|nbf| nbf > now + leeway) {
            return Err(AuthError::NotYetValid);
        }
        self.check_audience(claims)
    }

    /// `aud` (a string or an array) must name an accepted audience.
    fn check_audience(&self, claims: &Map<String, Value>) -> Result<(), AuthError> {
        let accepted = |a: &str| self.spec.audiences.iter().any(|x| x == a);
        let aud = (claims.get("aud")).ok_or_else(|| AuthError::MissingClaim("aud".into()))?;
        let named: Vec<&str> = match aud {
            Value::String(a) => vec![a],
            Value::Array(all) => all.iter().filter_map(Value::as_str).collect(),
            _ => return Err(AuthError::BadClaim("aud".into())),
        };
        if named.iter().any(|a| accepted(a)) {
            return Ok(());
        }
        let named: Vec<String> = named
            .iter()
            .take(3)
            .map(|a| format!("`{}`", shown(a)))
            .collect();
        Err(AuthError::Audience(match named.is_empty() {
            true => "[]".into(),
            false => named.join(", "),
        }))
    }

    /// The caller the claims name: the subject as its name, its team and models.
    fn holder(&self, claims: &Map<String, Value>) -> Result<Holder, AuthError> {
        let s = &self.spec;
        let bad = |c: &str| AuthError::BadClaim(c.to_string());
        let name = match claims.get(&s.subject_claim) {
            Some(Value::String(v)) if !v.is_empty() => Arc::from(v.as_str()),
            Some(Value::Number(n)) => Arc::from(n.to_string()),
            None | Some(Value::Null) => {
                return Err(AuthError::MissingClaim(s.subject_claim.clone()))
            }
            Some(_) => return Err(bad(&s.subject_claim)),
        };
        // The first of an array (a `groups` claim); absent: no team, as a key without one.
        let team = match s.team_claim.as_ref().map(|c| (c, claims.get(c))) {
            None | Some((_, None | Some(Value::Null))) => None,
            Some((_, Some(Value::String(t)))) => Some(t.as_str()),
            Some((c, Some(Value::Array(a)))) => match a.first() {
                None => None,
                Some(t) => Some(t.as_str().ok_or_else(|| bad(c))?),
            },
            Some((c, Some(_))) => return Err(bad(c)),
        };
        let models = match &s.models_claim {
            None => None,
            Some(c) => Some(models(claims.get(c)).ok_or_else(|| bad(c))?),
        };
        Ok(Holder {
            name,
            team: team.filter(|t| !t.is_empty()).map(Arc::from),
            models,
            ..Holder::default()
        })
    }
}

/// A models claim: an array of names and globs, or one string of them separated by spaces
/// (as OAuth's `scope`). Absent: none (a configured claim the token lacks allows nothing).
fn models(v: Option<&Value>) -> Option<Vec<String>> {
    match v {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::String(s)) => Some(s.split_whitespace().map(String::from).collect()),
        Some(Value::Array(a)) => a.iter().map(|m| m.as_str().map(String::from)).collect(),
        Some(_) => None,
    }
}

/// A numeric date claim (seconds since the epoch).
fn number(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, AuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(AuthError::BadClaim(name.into())),
    }
}

/// A value from the token, as a message may quote it: at most 64 characters.
fn shown(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
