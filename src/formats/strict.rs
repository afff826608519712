//! The members of a JSON object, every byte checked as serde_json checks what it skips:
//! the admission probe's fast path (`gateway::admission`). serde's derive spent ~6k
//! instructions on a 1 KiB chat body there, each key through its visitor and each skipped
//! string a byte at a time; this reads it in about a quarter of that, sixteen bytes a step
//! through strings.
//!
//! It reads only a plain subset and says `None` for the rest, which the caller leaves to
//! serde (that also names what is wrong): a top-level key that is not plain ASCII without
//! escapes, nesting deeper than [`DEPTH`], and anything that is not JSON. Like serde skipping
//! a value, it does not check that a value's bytes are UTF-8: serde does for a value it
//! borrows as text, and so must the caller (`admission` does, and its tests compare the two
//! readings on any text).

use super::write::first_escape;

/// Values nested deeper than this are left to serde (its own limit is 128).
pub const DEPTH: u32 = 64;

/// Each member of the object `json` holds (nothing but whitespace after it): `each` gets
/// the key and the value's text (without the whitespace around it). `None` when the text is
/// not of the subset read here, or `each` says `None`.
pub fn members<'a>(
    json: &'a [u8],
    mut each: impl FnMut(&'a [u8], &'a [u8]) -> Option<()>,
) -> Option<()> {
    let mut c = Strict::new(json);
    c.ws();
    if !c.eat(b'{') {
        return None;
    }
    c.ws();
    if !c.eat(b'}') {
        loop {
            c.ws();
            let (key, escaped) = c.string()?;
            if escaped || !key.is_ascii() {
                return None;
            }
            c.ws();
            if !c.eat(b':') {
                return None;
            }
            c.ws();
            let start = c.i;
            c.value(DEPTH)?;
            each(key, c.b.get(start..c.i)?)?;
            c.ws();
            if c.eat(b',') {
                continue;
            }
            if c.eat(b'}') {
                break;
            }
            return None;
        }
    }
    c.at_end().then_some(())
}

/// `Some` when `raw` (a value [`members`] gave) is a string without escapes: its text.
pub fn plain_string(raw: &[u8]) -> Option<&str> {
    let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if inner.contains(&b'\\') {
        return None;
    }
    std::str::from_utf8(inner).ok()
}

/// A position in JSON text that checks what it passes (for readers of their own, such as the
/// token estimate's walk).
pub(crate) struct Strict<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Strict<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Strict { b, i: 0 }
    }

    /// The byte here.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Only whitespace left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    /// The text from `start` to here.
    pub(crate) fn since(&self, start: usize) -> Option<&'a [u8]> {
        self.b.get(start..self.i)
    }

    pub(crate) fn at(&self) -> usize {
        self.i
    }

    pub(crate) fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    pub(crate) fn eat(&mut self, c: u8) -> bool {
        let hit = self.b.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    /// Past the value here, which must be JSON nested `depth` levels at most.
    pub(crate) fn value(&mut self, depth: u32) -> Option<()> {
        match *self.b.get(self.i)? {
            b'"' => self.string().map(drop),
            b'{' => self.object(depth.checked_sub(1)?),
            b'[' => self.array(depth.checked_sub(1)?),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn object(&mut self, depth: u32) -> Option<()> {
        self.i += 1;
        self.ws();
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'"') {
                return None;
            }
            self.string()?;
            self.ws();
            if !self.eat(b':') {
                return None;
            }
            self.ws();
            self.value(depth)?;
            self.ws();
            if self.eat(b',') {
                continue;
            }
            return self.eat(b'}').then_some(());
        }
    }

    fn array(&mut self, depth: u32) -> Option<()> {
        self.i += 1;
        self.ws();
        if self.eat(b']') {
            return Some(());
        }
        loop {
            self.ws();
            self.value(depth)?;
            self.ws();
            if self.eat(b',') {
                continue;
            }
            return self.eat(b']').then_some(());
        }
    }

    /// The string here (its bytes between the quotes) and whether it holds an escape; `None`
    /// for a raw control byte, an unknown escape or a `\u` without four hex digits.
    pub(crate) fn string(&mut self) -> Option<(&'a [u8], bool)> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        let mut escaped = false;
        loop {
            self.i += first_escape(self.b.get(self.i..)?);
            match *self.b.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some((self.b.get(start..self.i - 1)?, escaped));
                }
                b'\\' => {
                    escaped = true;
                    self.i += match *self.b.get(self.i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                        b'u' => {
                            let hex = self.b.get(self.i + 2..self.i + 6)?;
                            hex.iter().all(u8::is_ascii_hexdigit).then_some(6)?
                        }
                        _ => return None,
                    };
                }
                _ => return None,
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let hit = self.b.get(self.i..)?.starts_with(word);
        self.i += if hit { word.len() } else { 0 };
        hit.then_some(())
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<()> {
        self.eat(b'-');
        match *self.b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.eat(b'.') && self.digits() == 0 {
            return None;
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _ = self.eat(b'+') || self.eat(b'-');
            if self.digits() == 0 {
                return None;
            }
        }
        // A digit right after a leading zero is no number (`01`).
        (!matches!(self.b.get(self.i), Some(b'0'..=b'9'))).then_some(())
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.b.get(self.i) {
            self.i += 1;
        }
        self.i - start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(json: &str) -> Option<Vec<(String, String)>> {
        let mut out = Vec::new();
        members(json.as_bytes(), |k, v| {
            out.push((
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ));
            Some(())
        })?;
        Some(out)
    }

    #[test]
    fn members_and_their_text() {
        let got =
            all(" {\"a\" : [1, -0.5e+3, {\"x\": null}] ,\"b\":\"q\\\"\\u00e9\", \"c\":true}\n");
        let want = [
            ("a", "[1, -0.5e+3, {\"x\": null}]"),
            ("b", "\"q\\\"\\u00e9\""),
            ("c", "true"),
        ];
        let want: Vec<_> = (want.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, Some(want));
        assert_eq!(all("{}"), Some(vec![]));
    }

    #[test]
    fn what_is_not_json_or_not_plain_is_refused() {
        for bad in [
            "",
            "[]",
            "{",
            "{\"a\":1,}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":-}",
            "{\"a\":1e}",
            "{\"a\":tru}",
            "{\"a\":\"\u{1}\"}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\u12g4\"}",
            "{\"a\":[1 2]}",
            "{\"a\":1} x",
            "{\"\\u0061\":1}",
            "{\"é\":1}",
            "{\"a\":\"open}",
            "{\"a\":{\"b\"}}",
            "{a:1}",
            "{\"a\":+1}",
            "{\"a\":.5}",
        ] {
            assert_eq!(all(bad), None, "{bad:?}");
        }
        let deep = "[".repeat(DEPTH as usize + 1) + &"]".repeat(DEPTH as usize + 1);
        assert_eq!(all(&format!("{{\"a\":{deep}}}")), None);
        let fits = "[".repeat(DEPTH as usize) + &"]".repeat(DEPTH as usize);
        assert!(all(&format!("{{\"a\":{fits}}}")).is_some());
    }

    #[test]
    fn a_plain_string_is_read_in_place() {
        assert_eq!(plain_string(b"\"gpt-4o\""), Some("gpt-4o"));
        assert_eq!(plain_string(b"\"a\\\"b\""), None);
        assert_eq!(plain_string(b"12"), None);
        assert_eq!(plain_string(b"\"\xff\""), None);
    }
}
