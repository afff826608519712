//! Integers at known keys of a small JSON object, read without building the object: a reply's
//! `usage`, read once per request. serde's derive spent ~400 instructions a key here (each key
//! through its visitor, each unknown value through `ignored_any`); this reads the same values
//! in a quarter of that.
//!
//! It checks only what it needs to read the wanted values: the object's structure (braces,
//! commas, colons, strings) is followed, but skipped values are not validated. The same cursor
//! reads an Anthropic Message (`anthropic::message`).

use super::write::first_escape;
use std::borrow::Cow;

/// A wanted value: its key, and the key of the object holding it (`""`: the top level).
pub type Path = (&'static [u8], &'static [u8]);

/// The integers at `paths` in the object `json` starts with (what follows it is ignored):
/// `None` for a path that is absent or `null`. `None` for the whole when `json` is not an
/// object or a wanted value is not a non-negative integer that fits in a `u64`, as serde
/// refuses such a value.
pub fn integers<const N: usize>(json: &[u8], paths: &[Path; N]) -> Option<[Option<u64>; N]> {
    let mut out = [None; N];
    let mut c = Cursor { b: json, i: 0 };
    object(&mut c, b"", paths, &mut out)?;
    Some(out)
}

/// [`integers`] of the object at `c`, which is left past it.
pub(crate) fn integers_at<const N: usize>(
    c: &mut Cursor<'_>,
    paths: &[Path; N],
) -> Option<[Option<u64>; N]> {
    let mut out = [None; N];
    object(c, b"", paths, &mut out)?;
    Some(out)
}

fn object<const N: usize>(
    c: &mut Cursor<'_>,
    parent: &[u8],
    paths: &[Path; N],
    out: &mut [Option<u64>; N],
) -> Option<()> {
    members(c, |c, key| {
        // Keys first: most differ in length, which is all that is compared then.
        if let Some(at) = paths.iter().position(|&(p, k)| k == key && p == parent) {
            out[at] = c.uint()?;
        } else if parent.is_empty() && paths.iter().any(|p| p.0 == key) {
            // An object of wanted values, or null; anything else serde would refuse.
            match c.peek() {
                Some(b'{') => object(c, key, paths, out)?,
                _ => {
                    c.uint().filter(Option::is_none)?;
                }
            }
        } else {
            c.skip_value()?;
        }
        Some(())
    })
}

/// The `id` of the object `json` starts with and the string `id`s of the objects in its
/// `output` array, in order: what keeping a Response indexes. `None` when it is not that
/// simple (a string with an escape, a repeated key, an item that is not an object, no `id`):
/// the caller then reads it with serde.
pub fn response_ids(json: &[u8]) -> Option<(&str, Vec<&str>)> {
    let mut c = Cursor { b: json, i: 0 };
    let (mut id, mut items) = (None, Vec::new());
    let mut output_seen = false;
    members(&mut c, |c, key| {
        match key {
            b"id" if id.is_none() => id = Some(c.plain_string()?),
            b"output" if !output_seen => {
                output_seen = true;
                if !c.eat(b'[') {
                    return None;
                }
                if c.eat(b']') {
                    return Some(());
                }
                loop {
                    let mut item = None;
                    members(c, |c, key| match key {
                        b"id" if item.is_none() && c.peek() == Some(b'"') => {
                            item = Some(c.plain_string()?);
                            Some(())
                        }
                        b"id" if item.is_some() => None,
                        _ => c.skip_value(),
                    })?;
                    items.extend(item);
                    if !c.eat(b',') {
                        break;
                    }
                    c.ws();
                }
                if !c.eat(b']') {
                    return None;
                }
            }
            b"id" | b"output" => return None,
            _ => c.skip_value()?,
        }
        Some(())
    })?;
    Some((id?, items))
}

/// Each member of the object at `c`: `each` gets the cursor at its value and its key.
pub(crate) fn members<'a>(
    c: &mut Cursor<'a>,
    mut each: impl FnMut(&mut Cursor<'a>, &'a [u8]) -> Option<()>,
) -> Option<()> {
    if !c.eat(b'{') {
        return None;
    }
    if c.eat(b'}') {
        return Some(());
    }
    loop {
        let key = c.string()?;
        if !c.eat(b':') {
            return None;
        }
        c.ws();
        each(c, key)?;
        if c.eat(b',') {
            continue;
        }
        return c.eat(b'}').then_some(());
    }
}

/// Each element of the array at `c`: `each` gets the cursor at it.
pub(crate) fn elements<'a>(
    c: &mut Cursor<'a>,
    mut each: impl FnMut(&mut Cursor<'a>) -> Option<()>,
) -> Option<()> {
    if !c.eat(b'[') {
        return None;
    }
    if c.eat(b']') {
        return Some(());
    }
    loop {
        c.ws();
        each(c)?;
        if !c.eat(b',') {
            return c.eat(b']').then_some(());
        }
    }
}

/// Marks key `bit` seen; `None` when it was (serde refuses a repeated field).
pub(crate) fn once(seen: &mut u8, bit: u8) -> Option<()> {
    let fresh = *seen & bit == 0;
    *seen |= bit;
    fresh.then_some(())
}

/// What a string's scan met besides its text.
#[derive(Default, Clone, Copy)]
struct Seen {
    escape: bool,
    raw_control: bool,
}

/// A position in JSON text, for readers that take what they want and skip the rest.
pub(crate) struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Cursor { b, i: 0 }
    }

    /// Only whitespace left: what serde asks after a document's value.
    pub(crate) fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    /// A string or `null`, as serde reads an `Option<Cow<str>>`: borrowed without escapes,
    /// decoded by serde_json with them. `None` for any other value, or a string serde would
    /// refuse (a raw control character, bad UTF-8).
    pub(crate) fn opt_text(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null() {
            return Some(None);
        }
        let open = self.i;
        let (s, seen) = self.string_flagged()?;
        if seen.raw_control {
            return None;
        }
        if seen.escape {
            let raw = self.b.get(open..self.i)?;
            return serde_json::from_slice::<String>(raw)
                .ok()
                .map(|t| Some(Cow::Owned(t)));
        }
        std::str::from_utf8(s).ok().map(|t| Some(Cow::Borrowed(t)))
    }

    /// `null` here, taken.
    pub(crate) fn null(&mut self) -> bool {
        let hit = self.b.get(self.i..).is_some_and(|r| r.starts_with(b"null"));
        self.i += if hit { 4 } else { 0 };
        hit
    }

    /// The raw length (escapes as written) of the string here, 0 for any other value, which
    /// is skipped: how a meter counts a `RawValue` that may hold text. `None` where serde
    /// would refuse the string (a raw control character).
    pub(crate) fn raw_string_len(&mut self) -> Option<usize> {
        if self.peek() != Some(b'"') {
            return self.skip_value().map(|()| 0);
        }
        let (s, seen) = self.string_flagged()?;
        (!seen.raw_control).then_some(s.len())
    }

    /// The string here as written, quotes included, and whether it has an escape.
    pub(crate) fn literal(&mut self) -> Option<(&'a [u8], bool)> {
        let open = self.i;
        let (_, seen) = self.string_flagged()?;
        Some((self.b.get(open..self.i)?, seen.escape))
    }

    /// Past the value here; the text it spans.
    pub(crate) fn raw_value(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        self.skip_value()?;
        self.b.get(start..self.i)
    }

    /// Where the cursor is: the index of the next byte it reads.
    pub(crate) fn pos(&self) -> usize {
        self.i
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    pub(crate) fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    pub(crate) fn eat(&mut self, want: u8) -> bool {
        self.ws();
        let hit = self.peek() == Some(want);
        self.i += usize::from(hit);
        hit
    }

    /// A string's raw bytes (escapes left as they are: wanted keys have none).
    fn string(&mut self) -> Option<&'a [u8]> {
        self.string_flagged().map(|(s, _)| s)
    }

    /// [`Self::string`], and what its scan met on the way: an escape, or a raw control byte
    /// (which serde refuses). A reader needs no second pass over the text to know.
    fn string_flagged(&mut self) -> Option<(&'a [u8], Seen)> {
        if !self.eat(b'"') {
            return None;
        }
        let (start, mut seen) = (self.i, Seen::default());
        loop {
            // The next quote, backslash or control byte (`write::first_escape`, sixteen bytes
            // a step: most strings here are keys, too short for memchr's vectors to pay).
            let rest = self.b.get(self.i..)?;
            let at = first_escape(rest);
            self.i += at;
            match rest.get(at)? {
                b'"' => break,
                b'\\' => {
                    seen.escape = true;
                    self.i += 2
                }
                // A raw control byte: left for the readers (`opt_text` declines the string).
                _ => {
                    seen.raw_control = true;
                    self.i += 1
                }
            }
        }
        let s = self.b.get(start..self.i)?;
        self.i += 1;
        Some((s, seen))
    }

    /// A string without escapes, as text.
    fn plain_string(&mut self) -> Option<&'a str> {
        let (s, seen) = self.string_flagged()?;
        if seen.escape {
            return None;
        }
        std::str::from_utf8(s).ok()
    }

    /// `null`, or digits that are the whole number (no sign, fraction or exponent, and no
    /// leading zero, which JSON forbids).
    pub(crate) fn uint(&mut self) -> Option<Option<u64>> {
        if self.null() {
            return Some(None);
        }
        let mut n: u64 = 0;
        let start = self.i;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.i += 1;
        }
        let zero_led = self.i - start > 1 && self.b.get(start) == Some(&b'0');
        let whole = self.i > start && !zero_led && !matches!(self.peek(), Some(b'.' | b'e' | b'E'));
        whole.then_some(Some(n))
    }

    /// `null`, `true` or `false`.
    pub(crate) fn boolean(&mut self) -> Option<Option<bool>> {
        if self.null() {
            return Some(None);
        }
        let rest = self.b.get(self.i..)?;
        let (value, len) = if rest.starts_with(b"true") {
            (true, 4)
        } else if rest.starts_with(b"false") {
            (false, 5)
        } else {
            return None;
        };
        self.i += len;
        Some(Some(value))
    }

    /// `null` or a number, as serde_json reads an `Option<f64>` (its own parser: the same
    /// rounding); anything else is `None`.
    pub(crate) fn float(&mut self) -> Option<Option<f64>> {
        if self.null() {
            return Some(None);
        }
        if !matches!(self.peek(), Some(b'-' | b'0'..=b'9')) {
            return None;
        }
        let raw = self.raw_value()?;
        serde_json::from_slice::<f64>(raw).ok().map(Some)
    }

    /// Past one value of any kind: strings and nesting followed, scalars up to their end.
    pub(crate) fn skip_value(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.i += 1;
                }
                b',' | b'}' | b']' if depth == 0 => return Some(()),
                b'}' | b']' => {
                    depth -= 1;
                    self.i += 1;
                }
                _ => self.i += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    const PATHS: [Path; 4] = [(b"", b"a"), (b"", b"b"), (b"d", b"x"), (b"d", b"y")];

    /// What serde reads at the same paths, or `None` where it would refuse the object.
    fn by_serde(v: &Value) -> Option<[Option<u64>; 4]> {
        let o = v.as_object()?;
        let at = |v: Option<&Value>| match v {
            None | Some(Value::Null) => Some(None),
            Some(n) => n.as_u64().map(Some),
        };
        let d = match o.get("d") {
            None | Some(Value::Null) => None,
            Some(d) => Some(d.as_object()?),
        };
        Some([
            at(o.get("a"))?,
            at(o.get("b"))?,
            at(d.and_then(|d| d.get("x")))?,
            at(d.and_then(|d| d.get("y")))?,
        ])
    }

    #[test]
    fn reads_what_serde_reads() {
        let cases = [
            json!({"a": 1, "b": 2, "d": {"x": 3, "y": 4}}),
            json!({"b": 20, "z": {"a": 9, "x": [1, {"x": 2}]}, "a": 10}),
            json!({"q": "a\"}", "a": null, "d": {"w": true, "x": 0}}),
            json!({"a": 18446744073709551615u64}),
            json!({"a": 1.5}),
            json!({"a": -1}),
            json!({"a": "1"}),
            json!({}),
            json!({"d": null, "e": [], "a": 7}),
        ];
        for v in cases {
            for text in [v.to_string(), serde_json::to_string_pretty(&v).unwrap()] {
                assert_eq!(integers(text.as_bytes(), &PATHS), by_serde(&v), "{text}");
            }
        }
    }

    #[test]
    fn refuses_what_is_not_an_object_and_ignores_what_follows() {
        for bad in [
            "null",
            "[1]",
            "{\"a\":1",
            "{\"a\" 1}",
            "{\"a\":18446744073709551616}",
            "",
        ] {
            assert_eq!(integers(bad.as_bytes(), &PATHS), None, "{bad}");
        }
        let u = integers(b"{\"a\":5}}, \"id\": \"x\"}", &PATHS).unwrap();
        assert_eq!(u, [Some(5), None, None, None]);
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e9f64..1e9).prop_map(Value::from),
            "[a-z\"\\\\ ]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::vec(("[abdxyz]", inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_object_reads_as_serde_reads_it(v in value()) {
            let text = v.to_string();
            prop_assert_eq!(integers(text.as_bytes(), &PATHS), by_serde(&v), "{}", text);
        }
    }

    /// What serde reads as a Response's id and its items' string ids, or `None`.
    fn ids_by_serde(v: &Value) -> Option<(String, Vec<String>)> {
        let o = v.as_object()?;
        let id = o.get("id")?.as_str()?.to_string();
        let items = match o.get("output") {
            None => Vec::new(),
            Some(Value::Array(a)) => a.iter().map(Value::as_object).collect::<Option<Vec<_>>>()?,
            Some(_) => return None,
        };
        let ids = items
            .iter()
            .filter_map(|i| i.get("id")?.as_str().map(str::to_string));
        Some((id, ids.collect()))
    }

    fn scanned(text: &str) -> Option<(String, Vec<String>)> {
        let (id, items) = response_ids(text.as_bytes())?;
        Some((
            id.to_string(),
            items.into_iter().map(str::to_string).collect(),
        ))
    }

    #[test]
    fn response_ids_are_what_serde_reads_or_declined() {
        let cases = [
            json!({"id": "resp_1", "object": "response", "output": [
                {"id": "rs_1_0", "type": "reasoning", "summary": [{"text": "a\"}]}"}]},
                {"type": "message", "content": [{"id": "inner"}], "id": "msg_1_1"},
                {"id": 3}, {"id": null}, {}], "usage": {"id": "no"}}),
            json!({"output": [], "id": "resp_2"}),
            json!({"id": "resp_3"}),
            json!({"id": "a\"b", "output": []}),
            json!({"id": "resp_4", "output": [{"id": "x\ny"}]}),
            json!({"id": "resp_5", "output": [1]}),
            json!({"id": "resp_6", "output": {"id": "x"}}),
            json!({"id": 7}),
            json!({"output": [{"id": "x"}]}),
        ];
        for v in cases {
            for text in [v.to_string(), serde_json::to_string_pretty(&v).unwrap()] {
                if let Some(got) = scanned(&text) {
                    assert_eq!(Some(got), ids_by_serde(&v), "{text}");
                }
            }
        }
        // What the gateway writes is scanned, not declined.
        let plain = json!({"id": "resp_1", "output": [{"id": "msg_1_0"}]}).to_string();
        assert_eq!(
            scanned(&plain),
            Some(("resp_1".into(), vec!["msg_1_0".into()]))
        );
    }

    proptest! {
        #[test]
        fn response_ids_read_as_serde_reads_them(
            id in "[a-z_\"\\\\]{0,8}",
            items in prop::collection::vec(prop::option::of(value()), 0..4),
            extra in value(),
        ) {
            let output: Vec<Value> = items.into_iter().map(|i| match i {
                Some(Value::Object(o)) => Value::Object(o),
                Some(id) => json!({"id": id, "type": "message"}),
                None => json!({"type": "reasoning"}),
            }).collect();
            let v = json!({"id": id, "extra": extra, "output": output});
            let text = v.to_string();
            if let Some(got) = scanned(&text) {
                prop_assert_eq!(Some(got), ids_by_serde(&v), "{}", text);
            } else {
                prop_assert!(text.contains('\\') || !v["output"].as_array().unwrap().iter().all(Value::is_object), "{}", text);
            }
        }
    }
}
