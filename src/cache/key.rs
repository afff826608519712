//! The cache key: the route, the client's API, the request with what cannot change the reply
//! taken out and its object keys in canonical order, and (unless the route shares entries)
//! the client's key.

use pingora::cache::CacheKey;
use serde_json::Value;

/// Top-level fields that never change a reply's content: streaming, client-side bookkeeping,
/// provider-side caching and routing hints. (`seed`, `temperature`, tools and the rest stay.)
const NO_EFFECT: &[&str] = &[
    "stream",
    "stream_options",
    "user",
    "metadata",
    "client_metadata",
    "store",
    "service_tier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "background",
];

/// Who may share an entry: everyone on the route, or one client key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tenant<'a> {
    Global,
    Key(&'a str),
}

/// The key of a request body on `route` in the client API `api`; `None` when the body is not
/// a JSON object, or asks for what the stored forms cannot give back (such a request is not
/// cached).
pub fn key(route: &str, api: &str, body: &[u8], tenant: Tenant<'_>) -> Option<CacheKey> {
    let Value::Object(mut fields) = serde_json::from_slice::<Value>(body).ok()? else {
        return None;
    };
    if beyond_the_pivot(&fields) {
        return None;
    }
    for f in NO_EFFECT {
        fields.remove(*f);
    }
    // serde_json's map is ordered by key (no `preserve_order`): writing it back gives one
    // canonical text for any key order and whitespace, nested objects included.
    let canonical = serde_json::to_vec(&fields).ok()?;
    // The tenant is part of the hashed text, not a variance: with no variance the combined
    // hash is the primary one, computed once here (the lock, the store and the shared store
    // each ask for it again; a variance would be hashed with it at every ask).
    let (tag, tenant_mark) = match tenant {
        Tenant::Global => ("", 0u8),
        Tenant::Key(name) => (name, 1u8),
    };
    let mut primary =
        Vec::with_capacity(canonical.len() + route.len() + api.len() + tag.len() + 33);
    primary.push(tenant_mark);
    for part in [route.as_bytes(), api.as_bytes(), tag.as_bytes()] {
        // Length-prefixed, so no name can run into the next part.
        primary.extend_from_slice(&(part.len() as u64).to_be_bytes());
        primary.extend_from_slice(part);
    }
    primary.extend_from_slice(&canonical);
    let mut k = CacheKey::new(primary, tag);
    let bin = pingora::cache::key::CacheHashKey::primary_bin(&k);
    k.set_primary_bin_override(bin);
    Some(k)
}

/// A request whose reply carries what the chat pivot has no place for, so a stream replayed
/// from it would silently lack it: several choices, log probabilities, audio.
fn beyond_the_pivot(fields: &serde_json::Map<String, Value>) -> bool {
    let several = fields
        .get("n")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 1);
    let logprobs = fields
        .get("logprobs")
        .is_some_and(|v| v.as_bool() != Some(false))
        || fields.get("top_logprobs").is_some_and(|v| !v.is_null());
    let audio = fields.get("audio").is_some_and(|v| !v.is_null())
        || (fields.get("modalities").and_then(Value::as_array))
            .is_some_and(|m| m.iter().any(|x| x == "audio"));
    let include = (fields.get("include").and_then(Value::as_array)).is_some_and(|i| {
        i.iter()
            .any(|x| x.as_str().is_some_and(|s| s.contains("logprobs")))
    });
    several || logprobs || audio || include
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::cache::key::CacheHashKey;

    fn bin(body: &str, tenant: Tenant<'_>) -> [u8; 16] {
        key("r", "chat", body.as_bytes(), tenant)
            .unwrap()
            .combined_bin()
    }

    const A: Tenant = Tenant::Key("a");

    #[test]
    fn order_whitespace_and_no_effect_fields_do_not_matter() {
        let one = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0}"#;
        let two = r#"{ "temperature": 0, "stream": true, "stream_options": {"include_usage": true},
            "messages": [ {"content": "hi", "role": "user"} ], "user": "u1",
            "metadata": {"x": "y"}, "store": false, "model": "m" }"#;
        assert_eq!(bin(one, A), bin(two, A));
    }

    #[test]
    fn content_and_options_do_matter() {
        let base = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        let other = r#"{"model":"m","messages":[{"role":"user","content":"ho"}]}"#;
        let seeded = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"seed":1}"#;
        let model = r#"{"model":"n","messages":[{"role":"user","content":"hi"}]}"#;
        assert_ne!(bin(base, A), bin(other, A));
        assert_ne!(bin(base, A), bin(seeded, A));
        assert_ne!(bin(base, A), bin(model, A));
        let b = base.as_bytes();
        let k = |route: &str, api: &str| key(route, api, b, A).unwrap().combined_bin();
        assert_ne!(k("r", "chat"), k("r", "messages"));
        assert_ne!(k("r", "chat"), k("s", "chat"));
        // Length-prefixed parts: moving a byte between route and API changes the key.
        assert_ne!(k("ab", "c"), k("a", "bc"));
    }

    #[test]
    fn tenants_are_apart_unless_global() {
        let body = r#"{"model":"m","input":"hi"}"#;
        assert_ne!(bin(body, Tenant::Key("a")), bin(body, Tenant::Key("b")));
        assert_ne!(bin(body, Tenant::Key("a")), bin(body, Tenant::Global));
        assert_eq!(bin(body, Tenant::Global), bin(body, Tenant::Global));
        assert_ne!(bin(body, Tenant::Key("")), bin(body, Tenant::Global));
        // No variance: every ask for the combined hash gets the one computed with the key.
        let k = key("r", "chat", body.as_bytes(), A).unwrap();
        assert!(k.variance_bin().is_none() && k.combined_bin() == k.primary_bin());
    }

    #[test]
    fn a_body_that_is_not_an_object_has_no_key() {
        assert!(key("r", "chat", b"[1]", A).is_none());
        assert!(key("r", "chat", b"{oops", A).is_none());
    }

    #[test]
    fn replies_beyond_the_pivot_are_not_cached() {
        let k = |body: &str| key("r", "chat", body.as_bytes(), A).is_some();
        assert!(k(r#"{"model":"m","n":1,"logprobs":false}"#));
        assert!(!k(r#"{"model":"m","n":2}"#));
        assert!(!k(r#"{"model":"m","logprobs":true}"#));
        assert!(!k(r#"{"model":"m","top_logprobs":3}"#));
        assert!(!k(r#"{"model":"m","modalities":["text","audio"]}"#));
        assert!(!k(
            r#"{"model":"m","include":["message.output_text.logprobs"]}"#
        ));
    }
}
