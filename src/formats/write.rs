//! JSON written by hand where serde's derive costs more than the bytes: constant keys as
//! literals, strings escaped exactly as serde_json escapes them (the access log's line and
//! the chat completion translated replies are written in; each key through serde's derive was
//! a runtime escape).

/// `s` as a JSON string, escaped exactly as serde_json escapes it; runs of bytes that need no
/// escape are found eight at a time and copied whole.
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

/// The index of the first byte JSON escapes (`"`, `\`, a control byte), or the length.
/// Eight bytes a step: a byte's high bit is set in `m` when it is below 0x20 or equal to a
/// quote or backslash; a borrow can also flag a byte after a true one, never before it, so
/// the lowest flag is exact.
fn first_escape(b: &[u8]) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        // Escapes at every offset of an eight-byte word, and after runs of every length.
        for len in 0..20 {
            for c in ['"', '\\', '\n', '\u{1f}', 'é'] {
                let s: String = "abcdefghijklmnopqrst"[..len]
                    .chars()
                    .chain([c, 'z'])
                    .collect();
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

    proptest::proptest! {
        #[test]
        fn any_string_is_escaped_as_serde_json_escapes_it(s in "[\\x00-\\x7f]{0,40}|\\PC{0,40}") {
            let mut out = String::new();
            string(&mut out, &s);
            proptest::prop_assert_eq!(out, serde_json::to_string(&s).unwrap());
        }
    }
}
