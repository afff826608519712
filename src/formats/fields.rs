//! The field policy of every translation (README "Field policy"). Each client field is one of:
//! - translated;
//! - without effect on the reply's content (client metadata, hints about streaming or caching,
//!   context edits of history that is not sent, unknown fields): dropped and named;
//! - meaningful, but beyond the target (`n` > 1, logprobs, hosted tools, ...): a 400 naming it,
//!   or, when the operator turned on `drop_params`, dropped and named.
//!
//! Operators may also make unknown fields a 400 again (`unknown_fields = "reject"`). The names
//! of what was dropped reach the access log and the `x-tollgate-ignored-fields` header.

use crate::error::ApiError;
use serde_json::{Map, Value};
use std::cell::RefCell;

/// What the route and the key say about fields a translation does not carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldPolicy {
    /// Fields that change the reply and that the target cannot honour are dropped instead of
    /// refused (LiteLLM's `drop_params`).
    pub drop_unsupported: bool,
    /// Unknown fields are refused instead of dropped.
    pub reject_unknown: bool,
}

impl FieldPolicy {
    /// The default: unknown fields dropped, unsupported ones refused.
    pub const DEFAULT: FieldPolicy = FieldPolicy {
        drop_unsupported: false,
        reject_unknown: false,
    };
}

/// One translation's policy and the fields it dropped. Translators are single-threaded and pure,
/// so the list is behind a `RefCell` that every helper can record into through `&Fields`.
#[derive(Debug, Default)]
pub struct Fields {
    policy: FieldPolicy,
    dropped: RefCell<Vec<String>>,
}

impl Fields {
    pub fn new(policy: FieldPolicy) -> Fields {
        Fields {
            policy,
            dropped: RefCell::new(Vec::new()),
        }
    }

    /// A field with no effect on the reply: dropped and named.
    pub fn ignore(&self, path: &str) {
        let name = generic(path);
        let mut dropped = self.dropped.borrow_mut();
        if !dropped.contains(&name) {
            dropped.push(name);
        }
    }

    /// The unknown fields of the object at `path` (`null` is as good as absent: SDKs that echo a
    /// reply into history send `"audio": null`): dropped and named, or refused when strict.
    pub fn unknown(&self, extra: &Map<String, Value>, path: &str) -> Result<(), ApiError> {
        for k in extra.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k) {
            self.unknown_field(join(path, k))?;
        }
        Ok(())
    }

    /// Like [`Fields::unknown`], but for the pivot extensions in `known` that the caller reads.
    pub fn unknown_except(
        &self,
        extra: &Map<String, Value>,
        path: &str,
        known: &[&str],
    ) -> Result<(), ApiError> {
        for k in extra.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k) {
            if !known.contains(&k.as_str()) {
                self.unknown_field(join(path, k))?;
            }
        }
        Ok(())
    }

    /// One unknown field, by its path: dropped and named, or refused when strict.
    pub fn unknown_field(&self, name: String) -> Result<(), ApiError> {
        if self.policy.reject_unknown {
            return Err(unsupported(
                name,
                "is not supported when this model is served by another API (unknown fields are refused on this route).",
            ));
        }
        self.ignore(&name);
        Ok(())
    }

    /// A field that would change the reply and that the target cannot honour: a 400 naming it,
    /// or dropped and named under `drop_params`. `Ok` means: leave the field out and go on.
    pub fn unsupported(&self, param: String, why: &str) -> Result<(), ApiError> {
        if self.policy.drop_unsupported {
            self.ignore(&param);
            return Ok(());
        }
        let mut e = unsupported(param, why);
        e.message
            .push_str(" (A route or key with `drop_params = true` drops it instead.)");
        Err(e)
    }

    /// The fields dropped so far, in the order first met.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.dropped.borrow_mut())
    }
}

/// A 400 `unsupported_parameter` naming `param`.
pub(crate) fn unsupported(param: String, why: &str) -> ApiError {
    let msg = format!("`{param}` {why}");
    ApiError::unsupported(param, msg)
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        crate::formats::ids::concat(&[path, ".", key])
    }
}

/// A path with its indexes left out (`tools[3].x` → `tools[].x`): one name per field, however
/// many items carry it.
fn generic(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

/// The value of the `x-tollgate-ignored-fields` header: the names joined by `, `, cut at a
/// bound so a client cannot make the header grow without limit.
pub fn header_value(dropped: &[String]) -> String {
    const MAX: usize = 1024;
    let mut out = String::new();
    for name in dropped {
        let sep = if out.is_empty() { 0 } else { 2 };
        // Names come from the client's JSON keys: only header-safe characters go out.
        let safe = name.bytes().all(|b| b.is_ascii_graphic() && b != b',');
        if !safe || out.len() + sep + name.len() > MAX {
            out.push_str(if out.is_empty() { "…" } else { ", …" });
            break;
        }
        if sep > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn extra(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn unknown_fields_are_dropped_and_named_once_per_field() {
        let f = Fields::new(FieldPolicy::DEFAULT);
        let e = extra(json!({"client_metadata": {"a": 1}, "gone": null}));
        f.unknown(&e, "").unwrap();
        f.unknown(&extra(json!({"eager_input_streaming": true})), "tools[0]")
            .unwrap();
        f.unknown(&extra(json!({"eager_input_streaming": true})), "tools[7]")
            .unwrap();
        assert_eq!(
            f.take(),
            ["client_metadata", "tools[].eager_input_streaming"]
        );
    }

    #[test]
    fn strict_routes_refuse_unknown_fields_by_name() {
        let f = Fields::new(FieldPolicy {
            reject_unknown: true,
            ..FieldPolicy::DEFAULT
        });
        let e = f
            .unknown(&extra(json!({"client_metadata": {}})), "")
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("client_metadata"));
        assert_eq!(e.status, 400);
    }

    #[test]
    fn unsupported_fields_are_refused_unless_drop_params() {
        let f = Fields::new(FieldPolicy::DEFAULT);
        let e = f.unsupported("n".into(), "must be 1.").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("n"));
        assert!(f.take().is_empty());
        let f = Fields::new(FieldPolicy {
            drop_unsupported: true,
            ..FieldPolicy::DEFAULT
        });
        f.unsupported("n".into(), "must be 1.").unwrap();
        assert_eq!(f.take(), ["n"]);
    }

    #[test]
    fn the_header_is_bounded_and_header_safe() {
        assert_eq!(header_value(&["a".into(), "b.c".into()]), "a, b.c");
        let long: Vec<String> = (0..500).map(|i| format!("field_{i}")).collect();
        let h = header_value(&long);
        assert!(h.len() < 1100 && h.ends_with(", …"));
        assert_eq!(header_value(&["bad\nname".into()]), "…");
    }
}
