//! A stream's plain content chunks differ only in their text (and OpenAI's random
//! `obfuscation` padding): the id, model, fingerprint, choice and `usage: null` repeat byte for
//! byte. A [`Template`] keeps the last chunk the meter's scan read as plain, with where those
//! strings lie; a chunk that is the same bytes around strings without a quote, backslash or
//! control byte parses as that chunk did, with only those strings changed, so its text length
//! is its text string's length. Three compares and two string scans in place of the member
//! scan: ~0.2k instructions a chunk instead of ~3.6k on the load bench's chunks. Anthropic's
//! and Bedrock's stream decoders keep their text deltas the same way (`string_hole`,
//! `fit_literal`); the null usage is OpenAI's.

use crate::formats::write::first_escape;

/// A string that may change from chunk to chunk: its text's range in the kept chunk (quotes
/// excluded).
pub type Hole = (usize, usize);

#[derive(Default)]
pub struct Template {
    /// The chunk's bytes; empty until a chunk is kept.
    bytes: Vec<u8>,
    /// In order; the first `holes` are used.
    hole: [Hole; 2],
    holes: usize,
    /// Which hole is the text counted.
    counted: usize,
    /// Where the kept chunk's first `,"usage":null` is (what a meter strips when the gateway
    /// asked for usage and the client did not).
    null_usage: Option<usize>,
}

/// A chunk read against the template: where its counted text is (quotes excluded), and
/// where its first `,"usage":null` is (`None`: it has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    pub text: Hole,
    pub null_usage: Option<usize>,
}

impl Fit {
    /// The counted text's raw length.
    pub fn text_len(&self) -> usize {
        self.text.1 - self.text.0
    }
}

/// Where a plain chunk's first `,"usage":null` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullUsage {
    /// Not known (the chunk was scanned): search it.
    Unknown,
    /// Known from the stream's template: there, or (`None`) nowhere.
    Known(Option<usize>),
}

impl NullUsage {
    /// Where it is in `data`, searched only when not known (and when what is known is not
    /// there, which a template cannot get wrong but costs one compare to check).
    pub fn find(self, data: &[u8]) -> Option<usize> {
        match self {
            NullUsage::Known(None) => None,
            NullUsage::Known(Some(i))
                if data.get(i..).is_some_and(|r| r.starts_with(NULL_USAGE)) =>
            {
                Some(i)
            }
            _ => find_null_usage(data),
        }
    }
}

/// What OpenAI adds to every chunk once usage is asked for.
pub const NULL_USAGE: &[u8] = b",\"usage\":null";

/// Where `data`'s first [`NULL_USAGE`] is.
pub fn find_null_usage(data: &[u8]) -> Option<usize> {
    // Built once: `memmem::find` builds its searcher on every call, ~200 instructions an
    // event (a fifth of what the meter spent on a stream's framing).
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(NULL_USAGE));
    FINDER.find(data)
}

impl Template {
    /// Keeps `data`, whose text counted is the string at `text` (only counted string in it)
    /// and whose `obfuscation` is the string at `pad`, if any. Reuses the kept buffer: a
    /// stream allocates once.
    pub fn keep(&mut self, data: &[u8], text: Hole, pad: Option<Hole>) {
        self.bytes.clear();
        self.bytes.extend_from_slice(data);
        self.null_usage = find_null_usage(data);
        self.hole[0] = text;
        (self.holes, self.counted) = (1, 0);
        if let Some(p) = pad.filter(|p| p.1 <= text.0 || p.0 >= text.1) {
            self.hole[1] = p;
            self.holes = 2;
            if p.0 < text.0 {
                self.hole.swap(0, 1);
                self.counted = 1;
            }
        }
    }

    /// The literal (quotes included) of `data`'s counted text when [`Self::fit`] fits it and
    /// the text is UTF-8 (serde refuses what is not): for decoders that hand the text on.
    pub fn fit_literal<'a>(&self, data: &'a [u8]) -> Option<&'a str> {
        let (start, end) = self.fit(data)?.text;
        std::str::from_utf8(data.get(start - 1..end + 1)?).ok()
    }

    /// Where `data`'s counted text is, when `data` is the kept chunk with other strings (of
    /// no quote, backslash or control byte) in its holes; and where its null usage is, the
    /// kept chunk's moved by the holes' lengths before it (a hole holds no quote, so the
    /// pattern cannot start or end in one).
    pub fn fit(&self, data: &[u8]) -> Option<Fit> {
        if self.bytes.is_empty() {
            return None;
        }
        let (mut kept_at, mut at, mut counted, mut null_usage) = (0, 0, (0, 0), None);
        let mut moved = |kept_at: usize, at: usize, end: usize| {
            if let Some(p) = self.null_usage.filter(|p| (kept_at..end).contains(p)) {
                null_usage = Some(p - kept_at + at);
            }
        };
        for (i, &(start, end)) in self.hole[..self.holes].iter().enumerate() {
            // The same bytes up to the hole (its opening quote included)...
            let fixed = self.bytes.get(kept_at..start)?;
            if data.get(at..at + fixed.len())? != fixed {
                return None;
            }
            moved(kept_at, at, start);
            at += fixed.len();
            // ...then a string that ends at the first quote it meets.
            let rest = data.get(at..)?;
            let n = first_escape(rest);
            if rest.get(n) != Some(&b'"') {
                return None;
            }
            if i == self.counted {
                counted = (at, at + n);
            }
            (at, kept_at) = (at + n, end);
        }
        // The same bytes to the end, from the last hole's closing quote.
        if data.get(at..)? != self.bytes.get(kept_at..)? {
            return None;
        }
        moved(kept_at, at, self.bytes.len());
        Some(Fit {
            text: counted,
            null_usage,
        })
    }
}

/// Where the string `raw` (serde's raw value, borrowed from `data`) has its text in `data`,
/// quotes excluded; `None` when it is not a string or not borrowed from `data`.
pub fn string_hole(data: &[u8], raw: &serde_json::value::RawValue) -> Option<Hole> {
    let raw = raw.get();
    let at = (raw.as_ptr() as usize).checked_sub(data.as_ptr() as usize)?;
    let literal = data
        .get(at..at + raw.len())
        .filter(|l| *l == raw.as_bytes())?;
    (literal.len() >= 2 && literal[0] == b'"').then_some((at + 1, at + literal.len() - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEPT: &[u8] = br#"{"id":"c","choices":[{"delta":{"content":"Hi"}}],"obfuscation":"xY"}"#;

    fn kept() -> Template {
        let text = find(KEPT, "Hi");
        let mut t = Template::default();
        t.keep(KEPT, text, Some(find(KEPT, "xY")));
        t
    }

    fn find(data: &[u8], s: &str) -> Hole {
        let at = data
            .windows(s.len())
            .position(|w| w == s.as_bytes())
            .unwrap();
        (at, at + s.len())
    }

    #[test]
    fn the_same_chunk_with_other_strings_is_its_text_length() {
        let t = kept();
        for (data, len) in [
            (KEPT, 2),
            (&br#"{"id":"c","choices":[{"delta":{"content":""}}],"obfuscation":""}"#[..], 0),
            (
                r#"{"id":"c","choices":[{"delta":{"content":" world, café"}}],"obfuscation":"q1w2e3"}"#
                    .as_bytes(),
                13,
            ),
        ] {
            let fit = t.fit(data);
            assert_eq!(fit.map(|f| f.text_len()), Some(len), "{}", String::from_utf8_lossy(data));
            assert_eq!(fit.and_then(|f| f.null_usage), None, "no null usage");
        }
    }

    #[test]
    fn anything_else_is_read_by_the_scan() {
        let t = kept();
        for data in [
            // Strings the scan must read (an escape, a quote, a control byte).
            &br#"{"id":"c","choices":[{"delta":{"content":"a\"b"}}],"obfuscation":"xY"}"#[..],
            br#"{"id":"c","choices":[{"delta":{"content":"a\nb"}}],"obfuscation":"xY"}"#,
            b"{\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"a\x01\"}}],\"obfuscation\":\"xY\"}",
            br#"{"id":"c","choices":[{"delta":{"content":"Hi"}}],"obfuscation":"x\"Y"}"#,
            // Other bytes around them, or fewer, or more.
            br#"{"id":"d","choices":[{"delta":{"content":"Hi"}}],"obfuscation":"xY"}"#,
            br#"{"id":"c","choices":[{"delta":{"content":"Hi"},"finish_reason":"stop"}],"obfuscation":"xY"}"#,
            br#"{"id":"c","choices":[{"delta":{"content":"Hi"}}],"obfuscation":"xY"} "#,
            br#"{"id":"c","choices":[{"delta":{"content":"Hi"}}],"obfuscation":"xY"#,
            br#"{"id":"c","choices":[{"delta":{"content":"Hi"#,
            b"",
        ] {
            assert_eq!(t.fit(data), None, "{}", String::from_utf8_lossy(data));
        }
        assert_eq!(Template::default().fit(KEPT), None, "nothing kept");
    }

    #[test]
    fn the_null_usage_is_found_where_it_moved() {
        let data =
            br#"{"id":"c","choices":[{"delta":{"content":"Hi"}}],"usage":null,"obfuscation":"xY"}"#;
        let mut t = Template::default();
        t.keep(data, find(data, "Hi"), Some(find(data, "xY")));
        for other in [
            &data[..],
            br#"{"id":"c","choices":[{"delta":{"content":""}}],"usage":null,"obfuscation":"x"}"#,
            br#"{"id":"c","choices":[{"delta":{"content":"Hello there"}}],"usage":null,"obfuscation":""}"#,
        ] {
            let at = t.fit(other).and_then(|f| f.null_usage);
            assert_eq!(at, find_null_usage(other), "{}", String::from_utf8_lossy(other));
            assert!(at.is_some());
        }
        // Between the holes (the pad first).
        let data = br#"{"usage":null,"obfuscation":"pp","x":1,"usage":null,"choices":[{"delta":{"content":"a"}}]}"#;
        let a = find(data, "\"a\"").0 + 1;
        t.keep(data, (a, a + 1), Some(find(data, "pp")));
        let other = br#"{"usage":null,"obfuscation":"","x":1,"usage":null,"choices":[{"delta":{"content":"abc"}}]}"#;
        let at = t.fit(other).and_then(|f| f.null_usage);
        assert_eq!(at, find_null_usage(other));
        assert!(at.is_some());
    }

    #[test]
    fn a_pad_before_the_text_or_none_at_all() {
        let data = br#"{"obfuscation":"pp","choices":[{"delta":{"content":"abc"}}]}"#;
        let mut t = Template::default();
        t.keep(data, find(data, "abc"), Some(find(data, "pp")));
        let other = br#"{"obfuscation":"zzzz","choices":[{"delta":{"content":"hello"}}]}"#;
        let fit = t.fit(other).unwrap();
        assert_eq!(
            (fit.text_len(), &other[fit.text.0..fit.text.1]),
            (5, &b"hello"[..])
        );
        t.keep(data, find(data, "abc"), None);
        assert_eq!(t.fit(data).map(|f| f.text_len()), Some(3));
        assert_eq!(t.fit(other), None, "the pad is fixed bytes now");
    }
}
