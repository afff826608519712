//! The cache key: the route, the client's API, the request with what cannot change the reply
//! taken out and its object keys in canonical order, and (unless the route shares entries)
//! the client's key.

use pingora::cache::CacheKey;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use sha2::{Digest, Sha256};

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
    // The tenant is part of the hashed text, not a variance: with no variance the combined
    // hash is the primary one, computed once here (the lock, the store and the shared store
    // each ask for it again; a variance would be hashed with it at every ask).
    let (tag, tenant_mark) = match tenant {
        Tenant::Global => ("", 0u8),
        Tenant::Key(name) => (name, 1u8),
    };
    let mut primary = Vec::with_capacity(body.len() + route.len() + api.len() + tag.len() + 64);
    primary.push(tenant_mark);
    for part in [route.as_bytes(), api.as_bytes(), tag.as_bytes()] {
        // Length-prefixed, so no name can run into the next part.
        primary.extend_from_slice(&(part.len() as u64).to_be_bytes());
        primary.extend_from_slice(part);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let beyond = de.deserialize_map(Top { out: &mut primary }).ok()?;
    de.end().ok()?;
    if beyond {
        return None;
    }
    // SHA-256 (SHA-NI where the CPU has it) cut to pingora-cache's 128 bits, in place of its
    // BLAKE2b: ~0.7 against ~2.7 µs for a 1 KiB body (`perf`, 2026-12-06).
    let mut bin = [0; 16];
    bin.copy_from_slice(&Sha256::digest(&primary)[..16]);
    let mut k = CacheKey::new(primary, tag);
    k.set_primary_bin_override(bin);
    Some(k)
}

/// Whether a top-level field asks for what the chat pivot has no place for, so a stream
/// replayed from its reply would silently lack it: several choices, log probabilities, audio.
/// Only these fields are read as values; the rest of a body is encoded as it is parsed.
fn beyond_the_pivot(name: &[u8], v: &Value) -> bool {
    let has = |v: &Value, f: &dyn Fn(&Value) -> bool| v.as_array().is_some_and(|a| a.iter().any(f));
    match name {
        b"n" => v.as_u64().is_some_and(|n| n > 1),
        b"logprobs" => v.as_bool() != Some(false),
        b"top_logprobs" | b"audio" => !v.is_null(),
        b"modalities" => has(v, &|x| x == "audio"),
        b"include" => has(v, &|x| x.as_str().is_some_and(|s| s.contains("logprobs"))),
        _ => false,
    }
}

/// Top-level fields read as values, to judge [`beyond_the_pivot`].
const JUDGED: &[&str] = &[
    "n",
    "logprobs",
    "top_logprobs",
    "audio",
    "modalities",
    "include",
];

// The canonical encoding the key hashes: one that no two different JSON texts share unless
// they differ only in whitespace, string escapes or object key order. Each value starts with a
// tag; strings and keys are length-prefixed raw bytes (no escaping to write back), numbers as
// parsed (`u64`, `i64` or `f64` bits), arrays and objects closed by a byte no tag uses.
// Object members are sorted by key (stably: duplicate keys keep their order, so such a body
// is only ever a distinct entry). Written as the body is parsed, borrowing its strings: no
// tree is built.
const NULL: u8 = b'z';
const STR: u8 = b's';
const KEY: u8 = b'k';
const ARRAY: u8 = b'a';
const OBJECT: u8 = b'o';
const ARRAY_END: u8 = b']';
const OBJECT_END: u8 = b'}';

fn put_str(out: &mut Vec<u8>, tag: u8, s: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

fn put_number(out: &mut Vec<u8>, tag: u8, bits: [u8; 8]) {
    out.push(tag);
    out.extend_from_slice(&bits);
}

/// A member's key, written where it starts (`KEY`, its length, its bytes).
fn member_key(out: &[u8], start: usize) -> &[u8] {
    let len = u32::from_be_bytes([
        out[start + 1],
        out[start + 2],
        out[start + 3],
        out[start + 4],
    ]);
    &out[start + 5..start + 5 + len as usize]
}

/// Puts an object's members, written from `starts[0]` in the order they came, in key order.
fn sort_members(out: &mut Vec<u8>, starts: &[usize]) {
    let sorted = starts
        .windows(2)
        .all(|w| member_key(out, w[0]) <= member_key(out, w[1]));
    if sorted {
        return;
    }
    if let [a, b] = *starts {
        // Two members (a chat message's role and content) swap in place.
        out[a..].rotate_left(b - a);
        return;
    }
    let end = |i: usize| starts.get(i + 1).copied().unwrap_or(out.len());
    let mut order: Vec<usize> = (0..starts.len()).collect();
    order.sort_by(|&a, &b| member_key(out, starts[a]).cmp(member_key(out, starts[b])));
    let mut sorted = Vec::with_capacity(out.len() - starts[0]);
    for i in order {
        sorted.extend_from_slice(&out[starts[i]..end(i)]);
    }
    out.truncate(starts[0]);
    out.extend_from_slice(&sorted);
}

/// Encodes the value it is given (see above).
struct Enc<'o> {
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for Enc<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Enc<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.out.push(NULL);
        Ok(())
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.out.push(if v { b't' } else { b'f' });
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        put_number(self.out, b'u', v.to_be_bytes());
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        put_number(self.out, b'i', v.to_be_bytes());
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        put_number(self.out, b'd', v.to_bits().to_be_bytes());
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        put_str(self.out, STR, v.as_bytes());
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let out = self.out;
        out.push(ARRAY);
        while seq.next_element_seed(Enc { out: &mut *out })?.is_some() {}
        out.push(ARRAY_END);
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let out = self.out;
        out.push(OBJECT);
        let mut starts = Vec::new();
        loop {
            let start = out.len();
            if map.next_key_seed(Key { out: &mut *out })?.is_none() {
                break;
            }
            starts.push(start);
            map.next_value_seed(Enc { out: &mut *out })?;
        }
        if starts.len() > 1 {
            sort_members(out, &starts);
        }
        out.push(OBJECT_END);
        Ok(())
    }
}

/// Writes an object member's key.
struct Key<'o> {
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        put_str(self.out, KEY, v.as_bytes());
        Ok(())
    }
}

/// The body: an object whose [`NO_EFFECT`] fields are left out and whose [`JUDGED`] ones are
/// read; `true` when one of those asks for what cannot be cached.
struct Top<'o> {
    out: &'o mut Vec<u8>,
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let out = self.out;
        out.push(OBJECT);
        let (mut starts, mut beyond) = (Vec::new(), false);
        loop {
            let start = out.len();
            if map.next_key_seed(Key { out: &mut *out })?.is_none() {
                break;
            }
            let name = member_key(out, start);
            if NO_EFFECT.iter().any(|f| f.as_bytes() == name) {
                out.truncate(start);
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            starts.push(start);
            if JUDGED.iter().any(|f| f.as_bytes() == name) {
                let v: Value = map.next_value()?;
                beyond |= beyond_the_pivot(member_key(out, start), &v);
                v.deserialize_any(Enc { out: &mut *out })
                    .map_err(serde::de::Error::custom)?;
            } else {
                map.next_value_seed(Enc { out: &mut *out })?;
            }
        }
        if starts.len() > 1 {
            sort_members(out, &starts);
        }
        out.push(OBJECT_END);
        Ok(beyond)
    }
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

    #[test]
    fn the_encoding_reads_json_not_text() {
        let b = |body: &str| bin(body, A);
        // Escapes, nested key order and number forms as JSON reads them.
        let plain = r#"{"model":"m","messages":[{"role":"user","content":"hé \"x\""}]}"#;
        let escaped = r#"{"messages":[{"content":"h\u00e9 \"x\"","role":"user"}],"model":"m"}"#;
        assert_eq!(b(plain), b(escaped));
        assert_ne!(b(r#"{"model":"m","t":1}"#), b(r#"{"model":"m","t":1.0}"#));
        assert_ne!(b(r#"{"model":"m","t":1}"#), b(r#"{"model":"m","t":"1"}"#));
        assert_ne!(
            b(r#"{"model":"m","t":[1,2]}"#),
            b(r#"{"model":"m","t":[2,1]}"#)
        );
        assert_ne!(
            b(r#"{"model":"m","t":[[1],2]}"#),
            b(r#"{"model":"m","t":[[1,2]]}"#)
        );
        assert_ne!(b(r#"{"model":"m","t":{}}"#), b(r#"{"model":"m","t":[]}"#));
        assert_ne!(b(r#"{"model":"m","t":null}"#), b(r#"{"model":"m"}"#));
        // A key's bytes cannot run into its value's.
        assert_ne!(
            b(r#"{"model":"m","ab":"c"}"#),
            b(r#"{"model":"m","a":"bc"}"#)
        );
        // Duplicate keys keep their order: the two read differently, so they key differently.
        assert_ne!(
            b(r#"{"model":"m","t":1,"t":2}"#),
            b(r#"{"model":"m","t":2,"t":1}"#)
        );
        // Judged fields key like the rest, and a judged field's own key order does not matter.
        assert_eq!(
            b(r#"{"model":"m","audio":null,"n":1,"include":[{"b":1,"a":2}]}"#),
            b(r#"{"include":[{"a":2,"b":1}],"n":1,"model":"m","audio":null}"#),
        );
        assert_ne!(b(r#"{"model":"m","n":1}"#), b(r#"{"model":"m"}"#));
        for bad in ["[1]", "\"x\"", "{\"model\":", "{} {}", "{\"a\":1}x"] {
            assert!(key("r", "chat", bad.as_bytes(), A).is_none(), "{bad}");
        }
    }
}
