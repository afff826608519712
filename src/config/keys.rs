//! `[[keys]]`: the client keys, their holders and their policy (models, expiry, disabled).

use super::schema::RawKey;
use super::{FieldRules, Validator};
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
}

impl Validator<'_, '_> {
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
}
