//! Client identity by API key. Keys are stored as SHA-256 hashes; a presented key is hashed and
//! compared with every configured hash in constant time, so timing reveals nothing about which
//! (or whether a) key matched.

pub mod managed;

use crate::config::{Cap, KeySpec};
use crate::net::address::AddressRules;
pub use managed::{KeyRecord, ManagedKeys};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

// JWT callers: tokens verified by a trusted issuer's keys.
mod jwks;
pub mod jwt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing API key: send `Authorization: Bearer KEY` or `x-api-key: KEY`")]
    Missing,
    #[error("invalid API key")]
    Unknown,
    #[error("API key `{0}` is disabled")]
    Disabled(String),
    #[error("API key `{0}` has expired")]
    Expired(String),
    // JWT callers (`jwt.rs`): never the token in a message, only what is wrong with it.
    #[error("invalid bearer token: this gateway expects a JWT (header.payload.signature)")]
    NotJwt,
    #[error("malformed JWT: {0}")]
    Malformed(&'static str),
    #[error("unsigned JWTs (`alg: none`) are not accepted")]
    Unsigned,
    #[error("JWT algorithm `{0}` is not accepted for this issuer's keys")]
    Algorithm(String),
    #[error("JWT issuer `{0}` is not trusted")]
    Issuer(String),
    #[error("JWT audience {0} is not accepted")]
    Audience(String),
    #[error("JWT signature does not verify")]
    Signature,
    #[error("JWT has expired")]
    TokenExpired,
    #[error("JWT is not valid yet (its `nbf` is in the future)")]
    NotYetValid,
    #[error("JWT has no `{0}` claim")]
    MissingClaim(String),
    #[error("JWT claim `{0}` has the wrong type")]
    BadClaim(String),
    #[error("JWT key `{0}` is unknown to its issuer")]
    UnknownKid(String),
    #[error("JWT has no `kid` and no key of its issuer verifies `{0}`")]
    NoKey(String),
    #[error("the signing keys of JWT issuer `{0}` cannot be fetched right now; try again shortly")]
    KeysUnavailable(String),
}

/// Whom a key belongs to: its name, and the user and team its limits and ledger rows name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Holder {
    pub name: Arc<str>,
    pub user: Option<Arc<str>>,
    pub team: Option<Arc<str>>,
    pub tags: Vec<Arc<str>>,
    /// The key's field policy, over its route's.
    pub fields: crate::config::FieldRules,
    /// Models the key may use (names and `*` globs); `None`: every routed model.
    pub models: Option<Vec<String>>,
    /// Unix milliseconds from which the key is refused.
    pub expires_at_ms: Option<i64>,
    pub disabled: bool,
    /// The key's own limits (a managed key's `limits`), counted under its name.
    pub caps: Vec<Cap>,
    /// Client addresses the key may be used from.
    pub addresses: AddressRules,
}

impl Holder {
    /// Whether the key may use `model`.
    pub fn allows(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|m| m.iter().any(|p| crate::config::glob_match(p, model)))
    }
}

pub struct KeyStore {
    keys: Vec<([u64; 4], Arc<Holder>)>,
    /// The managed keys, when the gateway serves them (`[auth] managed_keys`).
    managed: Option<Arc<ManagedKeys>>,
}

/// A 32-byte hash as four words, so each comparison is four XORs and one constant-time check.
fn words(h: &[u8; 32]) -> [u64; 4] {
    let mut w = [0u64; 4];
    for (i, chunk) in h.chunks_exact(8).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        w[i] = u64::from_ne_bytes(b);
    }
    w
}

/// The hex SHA-256 of a key, as written in `[[keys]] sha256`.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl KeyStore {
    pub fn new(keys: &[KeySpec], managed: Option<Arc<ManagedKeys>>) -> Self {
        KeyStore {
            managed,
            keys: keys
                .iter()
                .map(|k| {
                    let holder = Holder {
                        name: Arc::from(k.name.as_str()),
                        user: k.user.as_deref().map(Arc::from),
                        team: k.team.as_deref().map(Arc::from),
                        tags: k.tags.iter().map(|t| Arc::from(t.as_str())).collect(),
                        fields: k.fields,
                        models: k.models.clone(),
                        expires_at_ms: k.expires_at_ms,
                        disabled: k.disabled,
                        caps: Vec::new(),
                        addresses: k.addresses.clone(),
                    };
                    (words(&k.sha256), Arc::new(holder))
                })
                .collect(),
        }
    }

    /// With no keys configured (and none managed) the gateway is open.
    pub fn is_open(&self) -> bool {
        self.keys.is_empty() && self.managed.is_none()
    }

    /// Whether managed keys are served (`[auth] managed_keys`).
    pub fn manages(&self) -> bool {
        self.managed.is_some()
    }

    /// Whether the managed keys, if served, have been loaded from the store (readiness).
    pub fn loaded(&self) -> bool {
        self.managed.as_ref().is_none_or(|m| m.version().is_some())
    }

    /// Whether a key of this name is in the config file.
    pub fn has_file_key(&self, name: &str) -> bool {
        self.keys.iter().any(|(_, h)| &*h.name == name)
    }

    /// The keys from the config file (read-only through the admin API).
    pub fn file_keys(&self) -> impl Iterator<Item = &Holder> {
        self.keys.iter().map(|(_, h)| &**h)
    }

    /// Returns the key's holder, `None` when the gateway is open.
    pub fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        x_api_key: Option<&[u8]>,
    ) -> Result<Option<Arc<Holder>>, AuthError> {
        self.authenticate_at(authorization, x_api_key, crate::clock::now_ms())
    }

    /// [`Self::authenticate`] at `now` (unix milliseconds): the request path passes the time
    /// it read once for the whole request (a clock read costs tens of nanoseconds in a VM).
    pub fn authenticate_at(
        &self,
        authorization: Option<&[u8]>,
        x_api_key: Option<&[u8]>,
        now: i64,
    ) -> Result<Option<Arc<Holder>>, AuthError> {
        if self.is_open() {
            return Ok(None);
        }
        let presented = authorization
            .and_then(bearer_token)
            .or(x_api_key.map(trim))
            .filter(|k| !k.is_empty())
            .ok_or(AuthError::Missing)?;
        let full: [u8; 32] = Sha256::digest(presented).into();
        let digest = words(&full);
        let mut found: Option<&Arc<Holder>> = None;
        for (hash, name) in &self.keys {
            // No early exit: every hash is compared, each without data-dependent branches.
            let diff = (hash[0] ^ digest[0])
                | (hash[1] ^ digest[1])
                | (hash[2] ^ digest[2])
                | (hash[3] ^ digest[3]);
            if bool::from(diff.ct_eq(&0)) {
                found = Some(name);
            }
        }
        let holder = found
            .cloned()
            .or_else(|| self.managed.as_ref()?.find(&full, now))
            .ok_or(AuthError::Unknown)?;
        if holder.disabled {
            return Err(AuthError::Disabled(holder.name.to_string()));
        }
        if holder.expires_at_ms.is_some_and(|t| now >= t) {
            return Err(AuthError::Expired(holder.name.to_string()));
        }
        Ok(Some(holder))
    }
}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

fn bearer_token(v: &[u8]) -> Option<&[u8]> {
    let v = trim(v);
    if v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ") {
        Some(trim(&v[7..]))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> KeyStore {
        let mut h = [0u8; 32];
        hex::decode_to_slice(hash_key("sk-team-a"), &mut h).unwrap();
        KeyStore::new(
            &[KeySpec {
                name: "team-a".into(),
                sha256: h,
                user: Some("ann".into()),
                team: None,
                ..Default::default()
            }],
            None,
        )
    }

    #[test]
    fn bearer_and_x_api_key() {
        let s = store();
        assert_eq!(
            s.authenticate(Some(b"Bearer sk-team-a"), None)
                .unwrap()
                .map(|h| (h.name.clone(), h.user.clone())),
            Some(("team-a".into(), Some("ann".into())))
        );
        assert_eq!(
            s.authenticate(Some(b"bearer  sk-team-a "), None)
                .unwrap()
                .map(|h| h.name.clone()),
            Some("team-a".into())
        );
        assert_eq!(
            s.authenticate(None, Some(b"sk-team-a"))
                .unwrap()
                .map(|h| h.name.clone()),
            Some("team-a".into())
        );
        assert_eq!(s.authenticate(None, None), Err(AuthError::Missing));
        assert_eq!(
            s.authenticate(Some(b"Basic abc"), None),
            Err(AuthError::Missing)
        );
        assert_eq!(
            s.authenticate(Some(b"Bearer sk-other"), None),
            Err(AuthError::Unknown)
        );
    }

    #[test]
    fn disabled_expired_and_model_lists() {
        let spec = |name: &str, f: &dyn Fn(&mut KeySpec)| {
            let mut k = KeySpec {
                name: name.into(),
                ..Default::default()
            };
            hex::decode_to_slice(hash_key(&format!("sk-{name}")), &mut k.sha256).unwrap();
            f(&mut k);
            k
        };
        let s = KeyStore::new(
            &[
                spec("off", &|k| k.disabled = true),
                spec("old", &|k| {
                    k.expires_at_ms = Some(crate::clock::now_ms() - 1)
                }),
                spec("later", &|k| {
                    k.expires_at_ms = Some(crate::clock::now_ms() + 60_000)
                }),
                spec("some", &|k| {
                    k.models = Some(vec!["gpt-4o*".into(), "claude-x".into()])
                }),
            ],
            None,
        );
        let auth = |k: &str| s.authenticate(None, Some(k.as_bytes()));
        assert_eq!(auth("sk-off"), Err(AuthError::Disabled("off".into())));
        assert_eq!(auth("sk-old"), Err(AuthError::Expired("old".into())));
        assert!(auth("sk-later").unwrap().unwrap().allows("anything"));
        let some = auth("sk-some").unwrap().unwrap();
        assert!(some.allows("gpt-4o-mini") && some.allows("claude-x"));
        assert!(!some.allows("claude-y") && !some.allows("gpt-5"));
    }

    #[test]
    fn open_when_no_keys() {
        let s = KeyStore::new(&[], None);
        assert!(s.is_open());
        assert_eq!(s.authenticate(None, None), Ok(None));
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn managed_keys_rotate_with_grace_and_follow_replacements() {
        let managed = Arc::new(ManagedKeys::default());
        let s = KeyStore::new(&[], Some(managed.clone()));
        assert!(!s.is_open(), "managed keys close the gateway");
        let now = crate::clock::now_ms();
        let rec = |name: &str, secret: &str, f: &dyn Fn(&mut KeyRecord)| {
            let mut r = KeyRecord {
                name: name.into(),
                sha256: hash_key(secret),
                ..Default::default()
            };
            f(&mut r);
            r
        };
        let auth = |k: &str| s.authenticate(None, Some(k.as_bytes()));
        assert_eq!(auth("sk-new"), Err(AuthError::Unknown));
        managed.replace(
            1,
            &[
                rec("ci", "sk-new", &|r| {
                    r.previous = Some(managed::Previous {
                        sha256: hash_key("sk-old"),
                        until_ms: now + 60_000,
                    });
                    r.limits.requests_per_minute = Some(5.0);
                }),
                rec("gone", "sk-gone", &|r| {
                    r.previous = Some(managed::Previous {
                        sha256: hash_key("sk-gone-old"),
                        until_ms: now - 1,
                    })
                }),
                rec("off", "sk-off", &|r| r.disabled = true),
            ],
        );
        assert_eq!(managed.version(), Some(1));
        let ci = auth("sk-new").unwrap().unwrap();
        assert_eq!(&*ci.name, "ci");
        assert_eq!(ci.caps.len(), 1);
        assert_eq!(&*auth("sk-old").unwrap().unwrap().name, "ci");
        assert_eq!(auth("sk-gone-old"), Err(AuthError::Unknown));
        assert_eq!(auth("sk-off"), Err(AuthError::Disabled("off".into())));
        managed.replace(2, &[]);
        assert_eq!(auth("sk-new"), Err(AuthError::Unknown));
    }
}
