//! The cache key: the route, the client's API, the request with what cannot change the reply
//! taken out and its object keys in canonical order, and (unless the route shares entries)
//! the client's key.

use crate::formats::scan::{self, Cursor};
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
    let mark = primary.len();
    let beyond = match scanned(body, &mut primary) {
        Some(beyond) => beyond,
        None => {
            primary.truncate(mark);
            by_serde(body, &mut primary)?
        }
    };
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

/// The body's encoding by serde's visitors ([`Top`]); `true` when it asks for what cannot be
/// cached, `None` when it is not a JSON object.
fn by_serde(body: &[u8], out: &mut Vec<u8>) -> Option<bool> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let beyond = de.deserialize_map(Top { out }).ok()?;
    de.end().ok()?;
    Some(beyond)
}

/// Nesting the cursor follows before it leaves a body to serde (whose own limit is 128).
const MAX_DEPTH: usize = 64;

/// [`by_serde`]'s encoding written by `formats::scan`'s cursor, without serde's visitors and
/// its byte-at-a-time string scan (~2× faster on a 1 KiB chat body). `None` for anything it
/// does not read exactly as serde does (an escaped key, `-0`, an integer past 64 bits, deep
/// nesting, anything malformed): serde encodes that body instead, or refuses it. Escaped
/// strings are decoded by serde_json, floats parsed by it, so the bytes are serde's.
fn scanned(body: &[u8], out: &mut Vec<u8>) -> Option<bool> {
    let mut c = Cursor::new(body);
    out.push(OBJECT);
    let (mut starts, mut beyond) = (Vec::new(), false);
    scan::members(&mut c, |c, name| {
        let start = out.len();
        member_name(out, name)?;
        if NO_EFFECT.iter().any(|f| f.as_bytes() == name) {
            // Read as any value is (serde's `IgnoredAny` refuses what is malformed), then
            // left out.
            value(c, out, 0)?;
            out.truncate(start);
            return Some(());
        }
        starts.push(start);
        if JUDGED.iter().any(|f| f.as_bytes() == name) {
            // Read by the cursor first (as deep as it follows: serde's own limit counts from
            // the body, not from this value), then as serde's `Value`, which [`Top`] encodes.
            let from = c.pos();
            value(c, &mut Vec::new(), 0)?;
            let v: Value = serde_json::from_slice(body.get(from..c.pos())?).ok()?;
            beyond |= beyond_the_pivot(name, &v);
            return v.deserialize_any(Enc { out: &mut *out }).ok();
        }
        value(c, out, 0)
    })?;
    if !c.at_end() {
        return None;
    }
    if starts.len() > 1 {
        sort_members(out, &starts);
    }
    out.push(OBJECT_END);
    Some(beyond)
}

/// A member's key as [`Key`] writes it: text with no escape or control byte (serde decodes
/// or refuses those: the body goes to it).
fn member_name(out: &mut Vec<u8>, name: &[u8]) -> Option<()> {
    // Nearly every key is plain ASCII: one pass says so, without UTF-8's.
    let plain = |b: &u8| (0x20..0x80).contains(b) && *b != b'\\';
    if !name.iter().all(plain) {
        if name.iter().any(|&b| b == b'\\' || b < 0x20) {
            return None;
        }
        std::str::from_utf8(name).ok()?;
    }
    put_str(out, KEY, name);
    Some(())
}

/// The value at `c` as [`Enc`] writes it.
fn value(c: &mut Cursor<'_>, out: &mut Vec<u8>, depth: usize) -> Option<()> {
    match c.peek()? {
        b'"' => put_str(out, STR, c.opt_text()??.as_bytes()),
        b'{' if depth < MAX_DEPTH => {
            out.push(OBJECT);
            let mut starts = Vec::new();
            scan::members(c, |c, name| {
                starts.push(out.len());
                member_name(out, name)?;
                value(c, out, depth + 1)
            })?;
            if starts.len() > 1 {
                sort_members(out, &starts);
            }
            out.push(OBJECT_END);
        }
        b'[' if depth < MAX_DEPTH => {
            out.push(ARRAY);
            scan::elements(c, |c| value(c, out, depth + 1))?;
            out.push(ARRAY_END);
        }
        b't' | b'f' => out.push(if c.boolean()?? { b't' } else { b'f' }),
        b'n' => c.null().then(|| out.push(NULL))?,
        b'-' | b'0'..=b'9' => number(c.raw_value()?, out)?,
        _ => return None,
    }
    Some(())
}

/// A number as serde_json reads it for `deserialize_any`: an unsigned integer as `u64`, a
/// negative one as `i64`, one with a fraction or an exponent as `f64` (by serde_json's own
/// parser, so with its rounding). `None` for what it reads otherwise (`-0`, an integer past
/// 64 bits: both `f64`) or refuses (a leading zero, a bare sign).
fn number(raw: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let raw = raw.trim_ascii_end();
    let (negative, digits) = match raw.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, raw),
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        let f: f64 = serde_json::from_slice(raw).ok()?;
        put_number(out, b'd', f.to_bits().to_be_bytes());
        return Some(());
    }
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let mut n: u64 = 0;
    for d in digits {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    match negative {
        false => put_number(out, b'u', n.to_be_bytes()),
        // serde_json: `-0` is a float, and a magnitude past `i64::MIN`'s one too.
        true if n == 0 || n > 1 << 63 => return None,
        true => put_number(out, b'i', (n as i64).wrapping_neg().to_be_bytes()),
    }
    Some(())
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
#[path = "key_tests.rs"]
mod tests;
