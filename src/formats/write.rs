//! JSON written by hand where serde's derive costs more than the bytes: constant keys as
//! literals, strings escaped exactly as serde_json escapes them, JSON values as serde_json
//! writes them compactly ([`value`]). The access log's line, the translated chat replies,
//! the Anthropic and Bedrock requests and the kept Responses input are written this way;
//! through serde's derive each key was a runtime escape.

use serde::ser::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// `s` as a JSON string, escaped exactly as serde_json escapes it; runs of bytes that need no
/// escape are found by [`first_escape`] and copied whole.
pub fn string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    loop {
        let i = start + first_escape(&bytes[start..]);
        // `i` is an ASCII byte's index or the end: a char boundary.
        out.push_str(&s[start..i]);
        let Some(&b) = bytes.get(i) else { break };
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                out.push_str("\\u00");
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
        start = i + 1;
    }
    out.push('"');
}

/// The index of the first byte JSON escapes (`"`, `\`, a control byte), or the length:
/// sixteen bytes a step where SSE2 is (every x86_64 CPU), then eight.
pub(crate) fn first_escape(b: &[u8]) -> usize {
    // SAFETY: SSE2 is part of the x86_64 baseline: every CPU this target runs on has it.
    #[cfg(target_arch = "x86_64")]
    let start = match unsafe { first_escape_sse2(b) } {
        Ok(at) => return at,
        Err(checked) => checked,
    };
    #[cfg(not(target_arch = "x86_64"))]
    let start = 0;
    start + first_escape_swar(&b[start..])
}

/// The first escaped byte's index among whole blocks of sixteen, else how many bytes were
/// checked. A byte is a control byte when the larger of it and 0x1f (unsigned) is 0x1f.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn first_escape_sse2(b: &[u8]) -> Result<usize, usize> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let (quote, backslash, control) = (
        _mm_set1_epi8(b'"' as i8),
        _mm_set1_epi8(b'\\' as i8),
        _mm_set1_epi8(0x1f),
    );
    let mut i = 0;
    while i + 16 <= b.len() {
        // SAFETY: the sixteen bytes at `i` are inside `b`; the load needs no alignment.
        let v = unsafe { _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>()) };
        let special = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
        let low = _mm_cmpeq_epi8(_mm_max_epu8(v, control), control);
        let mask = _mm_movemask_epi8(_mm_or_si128(special, low)) as u32;
        if mask != 0 {
            return Ok(i + mask.trailing_zeros() as usize);
        }
        i += 16;
    }
    Err(i)
}

/// [`first_escape`] eight bytes a step: a byte's high bit is set in `m` when it is below 0x20
/// or equal to a quote or backslash; a borrow can also flag a byte after a true one, never
/// before it, so the lowest flag is exact.
fn first_escape_swar(b: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    let eq = |w: u64, c: u8| {
        let x = w ^ (ONES * u64::from(c));
        x.wrapping_sub(ONES) & !x
    };
    let mut words = b.chunks_exact(8);
    for (k, chunk) in (&mut words).enumerate() {
        let mut a = [0u8; 8];
        a.copy_from_slice(chunk);
        let w = u64::from_le_bytes(a);
        let m = (w.wrapping_sub(ONES * 0x20) & !w | eq(w, b'"') | eq(w, b'\\')) & HIGH;
        if m != 0 {
            return k * 8 + (m.trailing_zeros() / 8) as usize;
        }
    }
    let rest = words.remainder();
    let at = rest
        .iter()
        .position(|&c| c < 0x20 || c == b'"' || c == b'\\');
    b.len() - rest.len() + at.unwrap_or(rest.len())
}

/// Strings this long or longer go through [`text`]'s raw path; shorter ones cost less through
/// serde_json's own escaping than the literal's allocation.
const RAW_FROM: usize = 64;

/// `s` as a JSON string through a serializer (`#[serde(serialize_with)]`): a long string is
/// escaped by [`string`] and handed over as raw JSON, because serde_json's own escaping looks
/// up each byte in turn (about 11 instructions a byte: 11k for a 1 KiB prompt, each time a
/// translation writes it). `RawValue::from_string` checks the literal again, eight bytes a
/// step.
pub fn text<T, S>(s: &T, ser: S) -> Result<S::Ok, S::Error>
where
    T: AsRef<str> + ?Sized,
    S: Serializer,
{
    let s = s.as_ref();
    if s.len() < RAW_FROM {
        return ser.serialize_str(s);
    }
    let mut literal = String::with_capacity(s.len() + 2);
    string(&mut literal, s);
    match RawValue::from_string(literal) {
        Ok(raw) => raw.serialize(ser),
        // Not reached: `string` writes a valid literal.
        Err(_) => ser.serialize_str(s),
    }
}

/// `s` as a JSON string, or `null`.
pub fn opt_string(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.push_str("null"),
    }
}

/// An unsigned integer as serde_json writes it.
pub fn uint(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// A float as serde_json writes it (`null` when not finite, which no parsed JSON holds).
pub fn float(out: &mut String, v: f64) {
    match v.is_finite() {
        true => out.push_str(zmij::Buffer::new().format_finite(v)),
        false => out.push_str("null"),
    }
}

/// A JSON value as serde_json writes it compactly, its strings through [`string`]: written
/// straight into the body being built, where a serializer's [`text`] must copy each long
/// string and have serde_json check the copy again. Depth is the parsed value's (serde_json
/// refuses more than 128 levels on reading).
pub fn value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => uint(out, u),
            (None, Some(i), _) => out.push_str(itoa::Buffer::new().format(i)),
            (None, None, f) => float(out, f.unwrap_or(f64::NAN)),
        },
        Value::String(s) => string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                value(out, v);
            }
            out.push(']');
        }
        Value::Object(m) => object(out, m),
    }
}

/// A JSON object as serde_json writes it compactly (see [`value`]).
pub fn object(out: &mut String, m: &Map<String, Value>) {
    out.push('{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, k);
        out.push(':');
        value(out, v);
    }
    out.push('}');
}

/// A JSON object's text, its buffer sized first from its strings: a body written into a fixed
/// 1 KiB grew once for a 1 KiB prompt, a copy each request. Rounded up to a power of two: sized
/// exactly (1.5 KiB for that prompt) it shared jemalloc's size class with the request's boxed
/// futures and cost 40 more last-level misses a request on the Bedrock route (callgrind's
/// cache simulation, `scripts/profile --cache bedrock 3000 4`: 76 -> 112-126; rounded, 75-78).
pub fn object_text(m: &Map<String, Value>) -> String {
    let mut out = String::with_capacity((64 + object_size(m)).next_power_of_two());
    object(&mut out, m);
    out
}

/// About the bytes [`object`] writes: its strings' bytes (before escaping) and a few a value.
fn object_size(m: &Map<String, Value>) -> usize {
    m.iter().map(|(k, v)| k.len() + 4 + size(v)).sum()
}

pub(crate) fn size(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len() + 2,
        Value::Array(items) => items.iter().map(|v| size(v) + 1).sum::<usize>() + 2,
        Value::Object(m) => object_size(m) + 2,
        _ => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body is written into a buffer that fits it (a power of two): it never grows.
    #[test]
    fn an_object_text_is_sized_to_fit() {
        let v = serde_json::json!({"model": "m", "n": 1, "stream": false,
            "messages": [{"role": "user", "content": "word ".repeat(600)}]});
        let m = v.as_object().unwrap();
        let t = object_text(m);
        assert_eq!(t, serde_json::to_string(m).unwrap());
        assert!(t.capacity() >= t.len(), "{} < {}", t.capacity(), t.len());
        assert!(
            t.capacity() < 2 * t.len() + 128,
            "{} for {}",
            t.capacity(),
            t.len()
        );
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut every_byte: String = (0u8..0x80).map(char::from).collect();
        every_byte.push_str("é 漢 🦀 \u{2028}");
        for s in [
            "",
            "plain",
            "a\"b\\c",
            "\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}",
            &every_byte,
        ] {
            let mut out = String::new();
            string(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
        // Escapes at every offset of a sixteen- and an eight-byte block, after runs of every
        // length.
        let run = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN";
        for len in 0..run.len() {
            for c in ['"', '\\', '\n', '\u{1f}', '\u{7f}', 'é'] {
                let s: String = run[..len].chars().chain([c, 'z']).collect();
                let mut out = String::new();
                string(&mut out, &s);
                assert_eq!(out, serde_json::to_string(&s).unwrap(), "{s:?}");
            }
        }
        let mut out = String::new();
        opt_string(&mut out, None);
        uint(&mut out, u64::MAX);
        assert_eq!(out, format!("null{}", u64::MAX));
    }

    /// Any JSON value: scalars of every kind (floats included), nested arrays and objects.
    fn any_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,80}|[\\x00-\\x7f]{0,80}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                proptest::collection::btree_map("\\PC{0,12}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_value_is_written_as_serde_json_writes_it(v in any_value()) {
            let mut out = String::new();
            value(&mut out, &v);
            proptest::prop_assert_eq!(out, serde_json::to_string(&v).unwrap());
        }

        #[test]
        fn any_text_is_written_as_serde_json_writes_it(s in "[\\x00-\\x7f]{0,200}|\\PC{0,200}") {
            let mut ser = serde_json::Serializer::new(Vec::new());
            text(&s, &mut ser).unwrap();
            proptest::prop_assert_eq!(ser.into_inner(), serde_json::to_vec(&s).unwrap());
        }

        #[test]
        fn any_string_is_escaped_as_serde_json_escapes_it(s in "[\\x00-\\x7f]{0,40}|\\PC{0,40}") {
            let mut out = String::new();
            string(&mut out, &s);
            proptest::prop_assert_eq!(out, serde_json::to_string(&s).unwrap());
        }
    }
}
