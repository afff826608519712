//! A JWT verification key, from a PEM file (`[[auth.jwt]] public_key_file`) or a JWKS entry.
//! Its type fixes the algorithms it verifies, never an HMAC one: a public key is no shared
//! secret, and a token's header must not be able to turn it into one.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::fmt;
use x509_parser::prelude::{FromDer, SubjectPublicKeyInfo};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyKind {
    /// RSA keys verify the RS and PS families; each curve its own algorithm.
    pub fn verifies(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyKind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyKind::EcP256 => alg == ES256,
            KeyKind::EcP384 => alg == ES384,
            KeyKind::Ed25519 => alg == EdDSA,
        }
    }
}

/// A public key and what it may verify.
#[derive(Clone)]
pub struct JwtKey {
    /// The JWK's `kid` (a PEM file's key has none).
    pub kid: Option<String>,
    pub kind: KeyKind,
    /// The JWK's `alg`: when set, only that algorithm.
    pub alg: Option<Algorithm>,
    pub key: DecodingKey,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_ED25519: &str = "1.3.101.112";
/// ring refuses shorter RSA keys for signatures.
const MIN_RSA_BITS: usize = 2048;

impl JwtKey {
    /// Whether this key verifies a token signed with `alg`.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.kind.verifies(alg) && self.alg.is_none_or(|a| a == alg)
    }

    /// The first key in a PEM text: a `PUBLIC KEY` (SPKI), an `RSA PUBLIC KEY` (PKCS#1) or a
    /// `CERTIFICATE` (its subject's key).
    pub fn from_pem(pem: &[u8]) -> Result<JwtKey, String> {
        let block = x509_parser::pem::Pem::iter_from_buffer(pem)
            .next()
            .ok_or("holds no PEM block")?
            .map_err(|e| format!("is not readable PEM: {e}"))?;
        match block.label.as_str() {
            "PUBLIC KEY" => {
                let (_, spki) = SubjectPublicKeyInfo::from_der(&block.contents)
                    .map_err(|_| "holds an unreadable public key")?;
                from_spki(&spki)
            }
            "CERTIFICATE" => {
                let cert = block
                    .parse_x509()
                    .map_err(|_| "holds an unreadable certificate")?;
                from_spki(cert.public_key())
            }
            "RSA PUBLIC KEY" => rsa_key(&block.contents),
            l if l.contains("PRIVATE") => {
                Err("holds a private key: give the issuer's public key".into())
            }
            l => Err(format!("holds a `{l}` block, not a public key")),
        }
    }

    /// One entry of a JWKS. Symmetric (`oct`) keys, encryption keys and unknown curves are
    /// refused: they verify no signature here.
    pub fn from_jwk(value: serde_json::Value) -> Result<JwtKey, String> {
        let jwk: Jwk = serde_json::from_value(value).map_err(|e| e.to_string())?;
        if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
            return Err("an encryption key".into());
        }
        let alg = match &jwk.common.key_algorithm {
            Some(a) => Some(
                a.to_string()
                    .parse::<Algorithm>()
                    .map_err(|_| format!("algorithm {a} is not a signature algorithm"))?,
            ),
            None => None,
        };
        let bad = |e: jsonwebtoken::errors::Error| e.to_string();
        let (kind, key) = match &jwk.algorithm {
            AlgorithmParameters::RSA(p) => {
                let n = base64_len(&p.n);
                if n * 8 < MIN_RSA_BITS {
                    return Err(format!("RSA keys under {MIN_RSA_BITS} bits are refused"));
                }
                (
                    KeyKind::Rsa,
                    DecodingKey::from_rsa_components(&p.n, &p.e).map_err(bad)?,
                )
            }
            AlgorithmParameters::EllipticCurve(p) => {
                let kind = match p.curve {
                    EllipticCurve::P256 => KeyKind::EcP256,
                    EllipticCurve::P384 => KeyKind::EcP384,
                    _ => return Err("curves other than P-256 and P-384 are not supported".into()),
                };
                (
                    kind,
                    DecodingKey::from_ec_components(&p.x, &p.y).map_err(bad)?,
                )
            }
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => (
                KeyKind::Ed25519,
                DecodingKey::from_ed_components(&p.x).map_err(bad)?,
            ),
            AlgorithmParameters::OctetKeyPair(_) => return Err("only Ed25519 is supported".into()),
            AlgorithmParameters::OctetKey(_) => return Err("a symmetric key".into()),
        };
        Ok(JwtKey {
            kid: jwk.common.key_id,
            kind,
            alg,
            key,
        })
    }
}

/// Bytes in an unpadded base64url value, leading zero bytes aside (roughly: for a size check).
fn base64_len(b64: &str) -> usize {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64.trim_end_matches('='))
        .unwrap_or_default();
    raw.iter().skip_while(|b| **b == 0).count()
}

fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<JwtKey, String> {
    let data: &[u8] = &spki.subject_public_key.data;
    let fixed = |kind, key| {
        Ok(JwtKey {
            kid: None,
            kind,
            alg: None,
            key,
        })
    };
    match spki.algorithm.algorithm.to_id_string().as_str() {
        OID_RSA => rsa_key(data),
        OID_EC => {
            let curve = (spki.algorithm.parameters.as_ref())
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            // An uncompressed point: 0x04, then x and y.
            let (kind, len) = match curve.as_deref() {
                Some(OID_P256) => (KeyKind::EcP256, 65),
                Some(OID_P384) => (KeyKind::EcP384, 97),
                _ => return Err("EC keys must be on P-256 or P-384".into()),
            };
            if data.len() != len || data[0] != 4 {
                return Err("the EC point must be uncompressed".into());
            }
            fixed(kind, DecodingKey::from_ec_der(data))
        }
        OID_ED25519 if data.len() == 32 => fixed(KeyKind::Ed25519, DecodingKey::from_ed_der(data)),
        OID_ED25519 => Err("an Ed25519 key is 32 bytes".into()),
        other => Err(format!(
            "key type {other} is not supported (RSA, EC P-256 or P-384, Ed25519 are)"
        )),
    }
}

/// A PKCS#1 `RSAPublicKey`.
fn rsa_key(der: &[u8]) -> Result<JwtKey, String> {
    let (_, key) = x509_parser::public_key::RSAPublicKey::from_der(der)
        .map_err(|_| "holds an unreadable RSA key")?;
    if key.modulus.iter().skip_while(|b| **b == 0).count() * 8 < MIN_RSA_BITS {
        return Err(format!("RSA keys under {MIN_RSA_BITS} bits are refused"));
    }
    Ok(JwtKey {
        kid: None,
        kind: KeyKind::Rsa,
        alg: None,
        key: DecodingKey::from_rsa_der(der),
    })
}
