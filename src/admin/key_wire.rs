//! The `/keys` API's wire shapes: the bodies it accepts and how it shows a key (never its
//! secret or hash).

use crate::auth::{Holder, KeyRecord};
use crate::clock::format_rfc3339_ms;
use crate::config::RawCaps;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};

/// `POST /keys`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKey {
    pub(super) name: String,
    pub(super) models: Option<Vec<String>>,
    pub(super) expires_at: Option<String>,
    pub(super) team: Option<String>,
    pub(super) user: Option<String>,
    #[serde(default)]
    pub(super) limits: RawCaps,
    #[serde(default)]
    pub(super) metadata: Map<String, Value>,
    #[serde(default)]
    pub(super) disabled: bool,
    #[serde(default)]
    pub(super) allow: Vec<String>,
    #[serde(default)]
    pub(super) deny: Vec<String>,
}

/// `PATCH /keys/{name}`: a field left out is kept; `null` clears it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Patch {
    #[serde(default, deserialize_with = "present")]
    pub(super) models: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    pub(super) expires_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub(super) team: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub(super) user: Option<Option<String>>,
    pub(super) limits: Option<RawCaps>,
    pub(super) metadata: Option<Map<String, Value>>,
    pub(super) disabled: Option<bool>,
    pub(super) allow: Option<Vec<String>>,
    pub(super) deny: Option<Vec<String>>,
}

/// A field that is present (`null` included) is `Some`.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Rotate {
    #[serde(default)]
    pub(super) grace_seconds: u64,
}

/// What a change set, for the audit log: the settings, never a hash or secret.
pub(super) fn settings(r: &KeyRecord) -> Value {
    let mut v = view(r);
    if let Some(o) = v.as_object_mut() {
        for k in [
            "name",
            "source",
            "created_at",
            "updated_at",
            "previous_valid_until",
        ] {
            o.remove(k);
        }
    }
    v
}

/// A managed key as the API shows it (never its hash).
pub(super) fn view(r: &KeyRecord) -> Value {
    json!({
        "name": r.name,
        "source": "api",
        "models": r.models,
        "expires_at": r.expires_at_ms.map(format_rfc3339_ms),
        "disabled": r.disabled,
        "team": r.team,
        "user": r.user,
        "limits": r.limits,
        "metadata": r.metadata,
        "allow": r.allow,
        "deny": r.deny,
        "created_at": format_rfc3339_ms(r.created_ms),
        "updated_at": format_rfc3339_ms(r.updated_ms),
        "previous_valid_until": r.previous.as_ref().map(|p| format_rfc3339_ms(p.until_ms)),
    })
}

/// A config file key as the API shows it (read-only).
pub(super) fn file_view(h: &Holder) -> Value {
    json!({
        "name": &*h.name,
        "source": "config",
        "models": h.models,
        "expires_at": h.expires_at_ms.map(format_rfc3339_ms),
        "disabled": h.disabled,
        "team": h.team.as_deref(),
        "user": h.user.as_deref(),
    })
}
