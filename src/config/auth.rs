//! `[auth]`: callers other than the `[[keys]]`. `[[auth.jwt]]` trusts an identity provider:
//! a token it signed is the credential, and its claims name the caller, its team and models.

use super::jwt_key::JwtKey;
use super::schema::RawJwt;
use super::Validator;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// One `[[auth.jwt]]` issuer.
#[derive(Debug, Clone)]
pub struct JwtSpec {
    /// The `iss` its tokens carry, compared exactly.
    pub issuer: String,
    /// A token's `aud` must name one of these.
    pub audiences: Vec<String>,
    pub keys: JwtKeys,
    /// Names the caller (as a key's name: limits, ledger, logs).
    pub subject_claim: String,
    /// The caller's team (a string, or an array's first string).
    pub team_claim: Option<String>,
    /// The models the caller may use; when configured, a token without it may use none.
    pub models_claim: Option<String>,
    /// Slack on `exp` and `nbf`, for clocks that disagree.
    pub leeway: Duration,
}

/// Where an issuer's verification keys come from.
#[derive(Debug, Clone)]
pub enum JwtKeys {
    /// A JWKS fetched over HTTP(S).
    Jwks(JwksSource),
    /// One key, read from `public_key_file` at load.
    File(Arc<JwtKey>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksSource {
    pub url: String,
    /// The key set is fetched again this often in the background.
    pub refresh: Duration,
    /// A token naming a key the set lacks fetches it again at most this often.
    pub min_refetch: Duration,
}

pub const DEFAULT_LEEWAY_SECONDS: u64 = 60;
pub const DEFAULT_JWKS_REFRESH_SECONDS: u64 = 300;
pub const DEFAULT_JWKS_MIN_REFETCH_SECONDS: u64 = 30;

impl Validator<'_, '_> {
    /// `[[auth.jwt]]`, in file order (`AuthSettings.jwt`).
    pub(super) fn jwt_issuers(&mut self, raw: Vec<RawJwt>) -> Vec<JwtSpec> {
        let mut issuers = HashSet::new();
        let mut jwt = Vec::new();
        for (i, j) in raw.into_iter().enumerate() {
            let p = format!("auth.jwt[{i}]");
            if !j.issuer.is_empty() && !issuers.insert(j.issuer.clone()) {
                self.err(
                    format!("{p}.issuer"),
                    format!("issuer `{}` is configured twice", j.issuer),
                );
            }
            if let Some(spec) = self.jwt(&p, j) {
                jwt.push(spec);
            }
        }
        jwt
    }

    fn jwt(&mut self, p: &str, j: RawJwt) -> Option<JwtSpec> {
        if j.issuer.trim().is_empty() {
            self.err(format!("{p}.issuer"), "must not be empty");
        }
        if j.audiences.is_empty() {
            self.err(
                format!("{p}.audiences"),
                "list at least one audience (a token's `aud` must name one)",
            );
        }
        if j.audiences.iter().any(|a| a.is_empty()) {
            self.err(format!("{p}.audiences"), "an audience must not be empty");
        }
        let claim = |v: &mut Self, name: &str, c: Option<String>| {
            let c = c?;
            if c.is_empty() {
                v.err(format!("{p}.{name}"), "must not be empty");
            }
            Some(c)
        };
        let keys = self.jwt_keys(p, &j);
        let subject_claim = claim(self, "subject_claim", j.subject_claim);
        let team_claim = claim(self, "team_claim", j.team_claim);
        let models_claim = claim(self, "models_claim", j.models_claim);
        Some(JwtSpec {
            issuer: j.issuer,
            audiences: j.audiences,
            keys: keys?,
            subject_claim: subject_claim.unwrap_or_else(|| "sub".into()),
            team_claim,
            models_claim,
            leeway: Duration::from_secs(j.leeway_seconds.unwrap_or(DEFAULT_LEEWAY_SECONDS)),
        })
    }

    /// Exactly one of `jwks_url` and `public_key_file`; the file is read and parsed now.
    fn jwt_keys(&mut self, p: &str, j: &RawJwt) -> Option<JwtKeys> {
        let secs = |s: Option<u64>, default| Duration::from_secs(s.unwrap_or(default).max(1));
        match (&j.jwks_url, &j.public_key_file) {
            (Some(url), None) => {
                if let Err(e) = super::parse_url(url) {
                    self.err(format!("{p}.jwks_url"), e);
                    return None;
                }
                Some(JwtKeys::Jwks(JwksSource {
                    url: url.clone(),
                    refresh: secs(j.jwks_refresh_seconds, DEFAULT_JWKS_REFRESH_SECONDS),
                    min_refetch: secs(j.jwks_min_refetch_seconds, DEFAULT_JWKS_MIN_REFETCH_SECONDS),
                }))
            }
            (None, Some(file)) => {
                if j.jwks_refresh_seconds.is_some() || j.jwks_min_refetch_seconds.is_some() {
                    self.err(
                        p,
                        "jwks_refresh_seconds and jwks_min_refetch_seconds need jwks_url",
                    );
                }
                self.public_key_file(&format!("{p}.public_key_file"), file)
            }
            (Some(_), Some(_)) => {
                self.err(p, "set one of jwks_url and public_key_file, not both");
                None
            }
            (None, None) => {
                self.err(
                    p,
                    "set jwks_url or public_key_file: where the issuer's keys are",
                );
                None
            }
        }
    }

    /// A PEM public key (or certificate), relative to the config file's directory.
    fn public_key_file(&mut self, path: &str, file: &str) -> Option<JwtKeys> {
        let full = match &self.base_dir {
            Some(dir) => dir.join(file),
            None => file.into(),
        };
        let pem = std::fs::read(&full)
            .map_err(|e| self.err(path, format!("cannot read `{}`: {e}", full.display())))
            .ok()?;
        match JwtKey::from_pem(&pem) {
            Ok(k) => Some(JwtKeys::File(Arc::new(k))),
            Err(e) => {
                self.err(path, format!("`{}` {e}", full.display()));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, JwtKeys, KeyKind};

    const BASE: &str =
        "[[backends]]\nname=\"m\"\nprovider=\"openai\"\nurl=\"http://127.0.0.1:1\"\n\
        [[routes]]\nmodels=[\"m\"]\ntargets=[{backend=\"m\"}]\n";

    fn load(extra: &str) -> Result<Config, Vec<ConfigError>> {
        Config::from_str_with_env(&format!("{BASE}{extra}"), &|_| None)
    }

    fn errors(extra: &str) -> Vec<String> {
        load(extra).map(|_| Vec::new()).unwrap_or_else(|e| {
            e.iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect()
        })
    }

    #[test]
    fn a_jwks_issuer_with_defaults() {
        let c = load(
            "[[auth.jwt]]\nissuer = \"https://idp/\"\naudiences = [\"tollgate\"]\n\
             jwks_url = \"https://idp/.well-known/jwks.json\"\n",
        )
        .unwrap();
        let j = &c.auth.jwt[0];
        assert_eq!(j.subject_claim, "sub");
        assert_eq!(j.leeway.as_secs(), 60);
        assert!(j.team_claim.is_none() && j.models_claim.is_none());
        let JwtKeys::Jwks(s) = &j.keys else { panic!() };
        assert_eq!((s.refresh.as_secs(), s.min_refetch.as_secs()), (300, 30));
        assert!(load("").unwrap().auth.jwt.is_empty());
    }

    #[test]
    fn an_issuer_closes_the_gateway_as_keys_do() {
        let jwt =
            "[[auth.jwt]]\nissuer = \"i\"\naudiences = [\"t\"]\njwks_url = \"http://idp/k\"\n";
        assert!(load(jwt).unwrap().gate().is_empty());
        let open = load(&format!("[server]\nopen = true\n{jwt}"))
            .unwrap()
            .gate();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].path, "server.open");
        assert!(
            open[0].message.contains("[[auth.jwt]]"),
            "{}",
            open[0].message
        );
        let none = load("").unwrap().gate();
        assert!(
            none[0].message.contains("no [[keys]]") && none[0].message.contains("[[auth.jwt]]")
        );
    }

    #[test]
    fn bad_issuers_are_located() {
        let e = errors(
            "[[auth.jwt]]\nissuer = \"\"\njwks_url = \"ftp://x\"\n\
             [[auth.jwt]]\nissuer = \"a\"\naudiences = [\"t\"]\n\
             [[auth.jwt]]\nissuer = \"b\"\naudiences = [\"t\"]\njwks_url = \"https://b/k\"\n\
             public_key_file = \"/k.pem\"\n\
             [[auth.jwt]]\nissuer = \"a\"\naudiences = [\"t\"]\npublic_key_file = \"/nonexistent.pem\"\n\
             subject_claim = \"\"\n",
        );
        let has = |s: &str| e.iter().any(|x| x.contains(s));
        assert!(has("auth.jwt[0].issuer: must not be empty"), "{e:?}");
        assert!(has("auth.jwt[0].audiences: list at least one"), "{e:?}");
        assert!(has("auth.jwt[0].jwks_url: `ftp://x`"), "{e:?}");
        assert!(has("auth.jwt[1]: set jwks_url or public_key_file"), "{e:?}");
        assert!(has("auth.jwt[2]: set one of"), "{e:?}");
        assert!(
            has("auth.jwt[3].issuer: issuer `a` is configured twice"),
            "{e:?}"
        );
        assert!(has("auth.jwt[3].public_key_file: cannot read"), "{e:?}");
        assert!(has("auth.jwt[3].subject_claim: must not be empty"), "{e:?}");
        assert!(errors("[auth]\nusers = 1\n")[0].contains("unknown field"));
    }

    #[test]
    fn public_key_files_are_parsed_at_load() {
        let dir = std::env::temp_dir().join(format!("tollgate-jwtcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let files = [
            ("ec.pem", ec.public_key_pem()),
            ("private.pem", ec.serialize_pem()),
            ("junk.pem", "not pem".to_string()),
        ];
        for (name, text) in &files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let issuer = |file: &str| {
            format!(
                "[[auth.jwt]]\nissuer = \"i\"\naudiences = [\"t\"]\npublic_key_file = \"{}\"\n",
                dir.join(file).display()
            )
        };
        let c = load(&issuer("ec.pem")).unwrap();
        let JwtKeys::File(k) = &c.auth.jwt[0].keys else {
            panic!()
        };
        assert_eq!(k.kind, KeyKind::EcP256);
        let e = errors(&issuer("private.pem"));
        assert!(e[0].contains("holds a private key"), "{e:?}");
        let e = errors(&issuer("junk.pem"));
        assert!(e[0].contains("auth.jwt[0].public_key_file"), "{e:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
