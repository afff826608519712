//! Keys managed at run time (the admin API's `/keys`): their records as the store keeps them,
//! and the lookup table every gateway follows. The table maps the SHA-256 of a secret to its
//! holder and is swapped whole when the store's version moves, so a request reads it without
//! a lock. A digest reveals nothing of its secret, so looking it up in a hash map leaks nothing
//! a constant-time scan would hide.

use super::Holder;
use crate::config::RawCaps;
use crate::net::address::{parse_cidr, AddressRules};
use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// One managed key as the store keeps it: never the secret, only its hash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub name: String,
    /// Hex SHA-256 of the current secret.
    pub sha256: String,
    /// The secret a rotation replaced, accepted until its grace period ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Previous>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// Unix milliseconds from which the key is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default)]
    pub limits: RawCaps,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Client addresses (CIDRs) the key may be used from, and may not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Previous {
    pub sha256: String,
    /// Unix milliseconds until which the old secret still works.
    pub until_ms: i64,
}

impl KeyRecord {
    /// The holder a request with this key is served as.
    pub fn holder(&self) -> Holder {
        Holder {
            name: Arc::from(self.name.as_str()),
            user: self.user.as_deref().map(Arc::from),
            team: self.team.as_deref().map(Arc::from),
            tags: Vec::new(),
            fields: Default::default(),
            models: self.models.clone(),
            expires_at_ms: self.expires_at_ms,
            // A record whose settings no longer validate is refused rather than unlimited.
            disabled: self.disabled || check(self).is_err(),
            caps: self.limits.caps().unwrap_or_default(),
            addresses: self.addresses().unwrap_or_default(),
        }
    }

    fn addresses(&self) -> Result<AddressRules, String> {
        let list = |l: &[String]| {
            l.iter()
                .map(|c| parse_cidr(c))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(AddressRules {
            allow: list(&self.allow)?,
            deny: list(&self.deny)?,
        })
    }
}

struct Entry {
    holder: Arc<Holder>,
    /// For a rotated-out secret: when it stops working (unix ms).
    until_ms: Option<i64>,
}

#[derive(Default)]
struct Table {
    /// The store's version this table was built from (`None`: not loaded yet).
    version: Option<u64>,
    by_hash: HashMap<[u8; 32], Entry>,
    names: usize,
}

/// The managed keys this gateway serves, swapped whole on every change in the store.
#[derive(Default)]
pub struct ManagedKeys {
    table: ArcSwap<Table>,
}

fn digest_of(hex_hash: &str) -> Option<[u8; 32]> {
    let mut h = [0u8; 32];
    hex::decode_to_slice(hex_hash, &mut h).ok().map(|_| h)
}

impl ManagedKeys {
    /// The store version the table reflects.
    pub fn version(&self) -> Option<u64> {
        self.table.load().version
    }

    /// How many managed keys are served.
    pub fn len(&self) -> usize {
        self.table.load().names
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Serves exactly `records` from now on (`version`: the store's).
    pub fn replace(&self, version: u64, records: &[KeyRecord]) {
        let mut by_hash = HashMap::with_capacity(records.len());
        for r in records {
            let holder = Arc::new(r.holder());
            let Some(current) = digest_of(&r.sha256) else {
                log::error!(
                    "managed key `{}`: its stored hash is not hex; skipped",
                    r.name
                );
                continue;
            };
            if let Some(p) = &r.previous {
                if let Some(old) = digest_of(&p.sha256) {
                    let until_ms = Some(p.until_ms);
                    by_hash.insert(
                        old,
                        Entry {
                            holder: holder.clone(),
                            until_ms,
                        },
                    );
                }
            }
            by_hash.insert(
                current,
                Entry {
                    holder,
                    until_ms: None,
                },
            );
        }
        let names = records.len();
        self.table.store(Arc::new(Table {
            version: Some(version),
            by_hash,
            names,
        }));
    }

    /// The holder of the secret whose SHA-256 is `digest`, if it is a managed key.
    pub(super) fn find(&self, digest: &[u8; 32], now_ms: i64) -> Option<Arc<Holder>> {
        let table = self.table.load();
        let e = table.by_hash.get(digest)?;
        // A rotated-out secret past its grace period is unknown, not expired: it was replaced.
        e.until_ms
            .is_none_or(|t| now_ms < t)
            .then(|| e.holder.clone())
    }
}

/// Why a managed key's settings are refused (the admin API answers 400 with it).
pub fn check(r: &KeyRecord) -> Result<(), String> {
    if let Some(models) = &r.models {
        if models.is_empty() || models.iter().any(|m| m.trim().is_empty()) {
            return Err("`models` lists names or globs, none empty (leave it out for all)".into());
        }
    }
    r.addresses().map_err(|e| format!("allow/deny: {e}"))?;
    r.limits
        .caps()
        .map(|_| ())
        .map_err(|e| format!("limits: {e}"))
}
