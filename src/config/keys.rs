//! `[[keys]]`: the client keys, their holders and their policy (models, expiry, disabled);
//! `[[teams]]`: the budgets of the teams keys belong to.

use super::schema::{RawAuth, RawKey, RawTeam};
use super::{FieldRules, LimitSpec, Scope, Validator};
use std::collections::HashSet;

/// One `[[keys]]` entry, validated.
#[derive(Debug, Clone, Default)]
pub struct KeySpec {
    pub name: String,
    pub sha256: [u8; 32],
    /// Who the key belongs to, for limits and the ledger.
    pub user: Option<String>,
    pub team: Option<String>,
    pub tags: Vec<String>,
    /// Overrides the route's field policy for this key's requests.
    pub fields: FieldRules,
    /// Models the key may use (exact names and `*` globs); `None`: every routed model.
    pub models: Option<Vec<String>>,
    /// Unix milliseconds from which the key is refused.
    pub expires_at_ms: Option<i64>,
    pub disabled: bool,
    /// Client addresses the key may be used from.
    pub addresses: crate::net::address::AddressRules,
}

/// `[auth]`: callers identified besides `[[keys]]`.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// Keys issued through the admin API (`/keys`) and kept in the store.
    pub managed_keys: bool,
    /// Trusted JWT issuers (`[[auth.jwt]]`, `auth.rs`); none: no token is a credential.
    pub jwt: Vec<super::JwtSpec>,
}

impl AuthSettings {
    /// Whether some credential besides `[[keys]]` closes the gateway.
    pub fn closes(&self) -> bool {
        self.managed_keys || !self.jwt.is_empty()
    }
}

impl Validator<'_, '_> {
    pub(super) fn auth(&mut self, raw: RawAuth, server: &super::ServerSettings) -> AuthSettings {
        if raw.managed_keys && server.admin_token.is_none() {
            self.err(
                "auth.managed_keys",
                "needs `[server] admin_token` (keys are managed through the admin API)",
            );
        }
        AuthSettings {
            managed_keys: raw.managed_keys,
            jwt: self.jwt_issuers(raw.jwt),
        }
    }

    pub(super) fn keys(&mut self, raw: Vec<RawKey>) -> Vec<KeySpec> {
        let mut key_names = HashSet::new();
        let mut key_hashes = HashSet::new();
        let mut keys = Vec::new();
        for (i, k) in raw.into_iter().enumerate() {
            let p = format!("keys[{i}]");
            if k.name.is_empty() {
                self.err(format!("{p}.name"), "must not be empty");
            } else if !key_names.insert(k.name.clone()) {
                self.err(
                    format!("{p}.name"),
                    format!("duplicate key name `{}`", k.name),
                );
            }
            let mut hash = [0u8; 32];
            if hex::decode_to_slice(k.sha256.trim(), &mut hash).is_err() {
                self.err(
                    format!("{p}.sha256"),
                    "must be 64 hex digits (the SHA-256 of the key; `tollgate hash-key` prints it)",
                );
            } else if !key_hashes.insert(hash) {
                self.err(
                    format!("{p}.sha256"),
                    "the same key hash is configured twice",
                );
            }
            keys.push(KeySpec {
                name: k.name,
                sha256: hash,
                user: k.user.filter(|u| !u.is_empty()),
                team: k.team.filter(|t| !t.is_empty()),
                tags: k.tags,
                fields: self.field_rules(&p, k.drop_params, k.unknown_fields.as_deref()),
                models: self.key_models(&p, k.models),
                expires_at_ms: k.expires_at.as_deref().and_then(|t| {
                    crate::clock::parse_time(t, crate::clock::now_ms())
                        .map_err(|e| self.err(format!("{p}.expires_at"), e))
                        .ok()
                }),
                disabled: k.disabled,
                addresses: self.address_rules(&p, &k.allow, &k.deny),
            });
        }

        keys
    }

    /// A key's `models`: each a non-empty name or glob, at least one.
    fn key_models(&mut self, p: &str, models: Option<Vec<String>>) -> Option<Vec<String>> {
        let models = models?;
        if models.is_empty() {
            self.err(
                format!("{p}.models"),
                "list at least one model, or leave `models` out",
            );
        }
        for (j, m) in models.iter().enumerate() {
            if m.trim().is_empty() {
                self.err(format!("{p}.models[{j}]"), "must not be empty");
            }
        }
        Some(models)
    }

    /// Each `[[teams]]` entry as a team limit matching its name.
    pub(super) fn teams(&mut self, raw: Vec<RawTeam>) -> Vec<LimitSpec> {
        let mut names = HashSet::new();
        let mut out = Vec::new();
        for (i, t) in raw.into_iter().enumerate() {
            let p = format!("teams[{i}]");
            if t.name.trim().is_empty() {
                self.err(format!("{p}.name"), "must not be empty");
            } else if !names.insert(t.name.clone()) {
                self.err(format!("{p}.name"), format!("duplicate team `{}`", t.name));
            }
            match t.limits.caps() {
                Ok(caps) if caps.is_empty() => self.err(
                    format!("{p}.limits"),
                    "sets no limit (tokens_per_day, cost_per_month_usd, ...)",
                ),
                Ok(caps) => out.push(LimitSpec {
                    scope: Scope::Team,
                    matching: Some(t.name),
                    caps,
                }),
                Err(e) => self.err(format!("{p}.limits"), e),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, Scope};

    const BASE: &str = "[server]\nlisten = [\"127.0.0.1:1\"]\n{server}\n\
        [[backends]]\nname = \"b\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:1\"\n\
        [[routes]]\nmodels = [\"m\"]\ntargets = [{ backend = \"b\" }]\n{rest}";

    fn load(server: &str, rest: &str) -> Result<Config, Vec<ConfigError>> {
        let src = BASE.replace("{server}", server).replace("{rest}", rest);
        Config::from_str_with_env(&src, &|_| None)
    }

    fn paths(e: &[ConfigError]) -> Vec<&str> {
        e.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn managed_keys_close_the_gateway_and_need_the_admin_token() {
        let managed = "[auth]\nmanaged_keys = true\n";
        let c = load("admin_token = \"t\"", managed).unwrap();
        assert!(c.auth.managed_keys);
        assert!(c.gate().is_empty(), "managed keys are a credential");
        let e = load("", managed).unwrap_err();
        assert_eq!(paths(&e), ["auth.managed_keys"]);
        let open = load("admin_token = \"t\"\nopen = true", managed).unwrap();
        assert_eq!(paths(&open.gate()), ["server.open"]);
        let none = load("", "").unwrap();
        assert_eq!(paths(&none.gate()), ["keys"]);
    }

    #[test]
    fn address_rules_are_located() {
        let server = r#"open = true
trusted_proxies = ["10.0.0.0/8", "x"]
allow = ["::1"]
deny = ["1.2.3.4/40"]"#;
        let e = load(server, "").unwrap_err();
        assert_eq!(paths(&e), ["server.trusted_proxies[1]", "server.deny[0]"]);
        let key = format!(
            "[[keys]]\nname = \"k\"\nsha256 = \"{}\"\nallow = [\"nope\"]\n",
            "a".repeat(64)
        );
        assert_eq!(paths(&load("", &key).unwrap_err()), ["keys[0].allow[0]"]);
    }

    #[test]
    fn teams_become_team_limits_matching_their_name() {
        let c = load(
            "open = true",
            "[[teams]]\nname = \"red\"\nlimits = { cost_per_month_usd = 50, tokens_per_day = 1e6 }\n",
        )
        .unwrap();
        assert_eq!(c.limits.len(), 1);
        assert_eq!(c.limits[0].scope, Scope::Team);
        assert_eq!(c.limits[0].matching.as_deref(), Some("red"));
        assert_eq!(c.limits[0].caps.len(), 2);
        let e = load(
            "open = true",
            "[[teams]]\nname = \"red\"\nlimits = { tokens_per_day = -1 }\n\
             [[teams]]\nname = \"red\"\nlimits = {}\n",
        )
        .unwrap_err();
        assert_eq!(
            paths(&e),
            ["teams[0].limits", "teams[1].name", "teams[1].limits"]
        );
    }
}
