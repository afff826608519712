//! The prompt text of a request body, read in one pass of the JSON parser: every string value
//! is handed over as it is read (borrowed from the body when it has no escapes), and nothing
//! is built: no tree of values, no copy of a string (`estimate.rs` counts each as it comes).

use crate::formats::strict::{self, Strict};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// Keys whose string values are not prompt text.
pub const NOT_TEXT: &[&str] = &[
    "model",
    "role",
    "type",
    "id",
    "tool_call_id",
    "tool_use_id",
    "tool_choice",
    "media_type",
    "mime_type",
    "detail",
    "format",
    "encoding_format",
    "reasoning_effort",
    "service_tier",
    "user",
    "stop",
    "signature",
    "cache_control",
    "metadata",
];

/// Top-level keys that hold a request's messages, first found first.
const LISTS: [&str; 3] = ["messages", "input", "contents"];

/// What a walk found besides the text.
#[derive(Debug, Default, PartialEq)]
pub struct Shape {
    /// Inline images and documents (base64 `data:` URLs, `source.data`, `inlineData.data`).
    pub images: u64,
    /// Entries of the top-level `messages` (else `input`, else `contents`) array.
    pub messages: u64,
}

/// Walks `body`, calling `text` with every prompt string: every string value but those under
/// [`NOT_TEXT`] keys and inline media. `Err` if `body` is not one JSON value.
pub fn walk(body: &[u8], text: &mut dyn FnMut(&str)) -> Result<Shape, serde_json::Error> {
    if let Some((texts, shape)) = plain(body) {
        texts.iter().for_each(|t| text(t));
        return Ok(shape);
    }
    through_serde(body, text)
}

/// The walk of a plain body without serde's parser (strings crossed sixteen bytes a step by
/// `formats::strict`, which checks each byte as serde does): its prompt strings and shape.
/// `None` leaves the body to serde: an escaped key, a number serde could find out of range,
/// nesting past `strict::DEPTH`, or anything serde would refuse. The strings are handed over
/// only once the whole body is read, so a body left to serde is not counted twice.
fn plain(body: &[u8]) -> Option<(Vec<Cow<'_, str>>, Shape)> {
    let mut f = Fast {
        c: Strict::new(body),
        texts: Vec::new(),
        images: 0,
        lists: [None; 3],
    };
    f.c.ws();
    f.node("", true, None, strict::DEPTH)?;
    f.c.at_end().then_some(())?;
    let messages = f.lists.iter().find_map(|n| *n).unwrap_or(0);
    let shape = Shape {
        images: f.images,
        messages,
    };
    Some((f.texts, shape))
}

struct Fast<'a> {
    c: Strict<'a>,
    texts: Vec<Cow<'a, str>>,
    images: u64,
    lists: [Option<u64>; 3],
}

impl<'a> Fast<'a> {
    /// The value here, under `key` (see [`Node`]).
    fn node(&mut self, key: &str, top: bool, list: Option<usize>, depth: u32) -> Option<()> {
        match self.c.peek()? {
            b'"' => {
                let s = self.text()?;
                if s.starts_with("data:") || (key == "data" && s.len() > 256) {
                    self.images += 1;
                } else {
                    self.texts.push(s);
                }
                Some(())
            }
            b'{' => self.object(top, depth.checked_sub(1)?),
            b'[' => {
                let n = self.array(key, depth.checked_sub(1)?)?;
                if let Some(i) = list {
                    self.lists[i] = Some(n);
                }
                Some(())
            }
            // serde reads a number as a value here: a long or exponent form may be out of range.
            b'-' | b'0'..=b'9' => {
                let start = self.c.at();
                self.c.value(depth)?;
                let n = self.c.since(start)?;
                (n.len() <= 16 && !n.iter().any(|b| matches!(b, b'e' | b'E'))).then_some(())
            }
            _ => self.c.value(depth),
        }
    }

    fn object(&mut self, top: bool, depth: u32) -> Option<()> {
        self.c.eat(b'{');
        self.c.ws();
        if self.c.eat(b'}') {
            return Some(());
        }
        loop {
            self.c.ws();
            let (key, escaped) = self.c.string()?;
            let key = std::str::from_utf8(key).ok().filter(|_| !escaped)?;
            self.c.ws();
            self.c.eat(b':').then_some(())?;
            self.c.ws();
            if NOT_TEXT.contains(&key) {
                self.c.value(depth)?;
            } else {
                let list = top.then(|| LISTS.iter().position(|l| *l == key)).flatten();
                self.node(key, false, list, depth)?;
            }
            self.c.ws();
            if !self.c.eat(b',') {
                return self.c.eat(b'}').then_some(());
            }
        }
    }

    /// Past the array here; its length.
    fn array(&mut self, key: &str, depth: u32) -> Option<u64> {
        self.c.eat(b'[');
        self.c.ws();
        if self.c.eat(b']') {
            return Some(0);
        }
        let mut n = 0;
        loop {
            self.c.ws();
            self.node(key, false, None, depth)?;
            n += 1;
            self.c.ws();
            if !self.c.eat(b',') {
                return self.c.eat(b']').then_some(n);
            }
        }
    }

    /// The string here as text: borrowed without escapes, decoded by serde_json with them.
    fn text(&mut self) -> Option<Cow<'a, str>> {
        let start = self.c.at();
        let (raw, escaped) = self.c.string()?;
        if !escaped {
            return std::str::from_utf8(raw).ok().map(Cow::Borrowed);
        }
        let quoted = self.c.since(start)?;
        serde_json::from_slice::<String>(quoted)
            .ok()
            .map(Cow::Owned)
    }
}

/// The walk through serde's parser: any body, and the error for one that is not JSON.
fn through_serde(body: &[u8], text: &mut dyn FnMut(&str)) -> Result<Shape, serde_json::Error> {
    let mut w = Walker {
        text,
        images: 0,
        lists: [None; 3],
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    Node {
        w: &mut w,
        key: "",
        top: true,
        list: None,
    }
    .deserialize(&mut de)?;
    de.end()?;
    let messages = w.lists.iter().find_map(|n| *n).unwrap_or(0);
    Ok(Shape {
        images: w.images,
        messages,
    })
}

struct Walker<'f> {
    text: &'f mut dyn FnMut(&str),
    images: u64,
    /// The lengths of the top-level arrays named in [`LISTS`].
    lists: [Option<u64>; 3],
}

impl Walker<'_> {
    fn string(&mut self, key: &str, s: &str) {
        if s.starts_with("data:") || (key == "data" && s.len() > 256) {
            self.images += 1;
        } else {
            (self.text)(s);
        }
    }
}

/// One value, with the key it is under (an array's items inherit their array's).
struct Node<'w, 'f, 'k> {
    w: &'w mut Walker<'f>,
    key: &'k str,
    /// The body itself (its keys may name the message list).
    top: bool,
    /// The index in [`LISTS`] of this value's key, at the top level.
    list: Option<usize>,
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.w.string(self.key, s);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0;
        loop {
            let item = Node {
                w: &mut *self.w,
                key: self.key,
                top: false,
                list: None,
            };
            if seq.next_element_seed(item)?.is_none() {
                break;
            }
            n += 1;
        }
        if let Some(i) = self.list {
            self.w.lists[i] = Some(n);
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(Key)? {
            if NOT_TEXT.contains(&&*key) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let list = self.top.then(|| LISTS.iter().position(|l| *l == key));
            map.next_value_seed(Node {
                w: &mut *self.w,
                key: &key,
                top: false,
                list: list.flatten(),
            })?;
        }
        Ok(())
    }
}

/// An object key, borrowed from the body unless it has escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(s))
    }
    fn visit_str<E>(self, s: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(body: &str) -> (Vec<String>, Result<Shape, String>) {
        let mut out = Vec::new();
        let shape = walk(body.as_bytes(), &mut |s| out.push(s.to_string()));
        (out, shape.map_err(|e| e.to_string()))
    }

    #[test]
    fn prompt_strings_in_order_and_nothing_else() {
        let body = r#"{"model":"gpt-4o","system":"be\nbrief","messages":[
            {"role":"user","content":[{"type":"text","text":"hi \"there\""},
              {"type":"image_url","image_url":{"url":"data:image/png;base64,AA","detail":"low"}}]},
            {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",
              "function":{"name":"f","arguments":"{\"a\":1}"}}]}],
            "temperature":0.2,"stream":true,"n":1,"stop":["x"],"metadata":{"k":"v"},
            "tools":[{"type":"function","function":{"name":"g","description":"d"}}]}"#;
        let (t, shape) = texts(body);
        assert_eq!(t, ["be\nbrief", "hi \"there\"", "f", "{\"a\":1}", "g", "d"]);
        assert_eq!(
            shape,
            Ok(Shape {
                images: 1,
                messages: 2
            })
        );
    }

    #[test]
    fn the_message_list_is_the_first_of_messages_input_contents_that_is_an_array() {
        let (_, shape) = texts(r#"{"input":"one string","contents":[{},{},{}]}"#);
        assert_eq!(shape.map(|s| s.messages), Ok(3));
        let (_, shape) = texts(r#"{"contents":[{}],"input":[{},{}]}"#);
        assert_eq!(shape.map(|s| s.messages), Ok(2));
        // Only at the top level.
        let (_, shape) = texts(r#"{"x":{"messages":[{}]}}"#);
        assert_eq!(shape.map(|s| s.messages), Ok(0));
    }

    #[test]
    fn long_base64_under_data_is_media_and_escaped_keys_are_read() {
        let b64 = "A".repeat(300);
        let body = format!(r#"{{"source":{{"data":"{b64}"}},"\u006dodel":"m","data":"short"}}"#);
        let (t, shape) = texts(&body);
        assert_eq!(t, ["short"]);
        assert_eq!(shape.map(|s| s.images), Ok(1));
    }

    /// A JSON text of the shapes the walk tells apart: keys that are not text, message lists,
    /// `data`, escaped keys; strings with escapes, media and lone surrogates; numbers serde
    /// finds out of range. Not always valid: see `body`.
    fn json(depth: u32) -> proptest::strategy::BoxedStrategy<String> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            Just("1e999".to_string()),
            Just("123456789012345678901234".to_string()),
            "-?(0|[1-9][0-9]{0,5})(\\.[0-9]{1,3})?",
            "\"([a-z é]|\\\\[n\"\\\\]|\\\\u00e9|\\\\ud800){0,10}\"",
            Just(format!("\"data:image/png;base64,{}\"", "A".repeat(8))),
            Just(format!("\"{}\"", "A".repeat(300))),
        ];
        if depth == 0 {
            return leaf.boxed();
        }
        let key = prop::sample::select(vec![
            "text",
            "role",
            "model",
            "metadata",
            "messages",
            "input",
            "contents",
            "data",
            "\\u0074ext",
            "content",
        ]);
        prop_oneof![
            2 => leaf,
            1 => proptest::collection::vec(json(depth - 1), 0..4)
                .prop_map(|v| format!("[{}]", v.join(","))),
            1 => proptest::collection::vec((key, json(depth - 1)), 0..4).prop_map(|m| {
                let m: Vec<_> = m.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
                format!("{{{}}}", m.join(", "))
            }),
        ]
        .boxed()
    }

    /// A body: a JSON text, sometimes with one byte deleted or inserted.
    fn body() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let edit = (
            0..4u8,
            any::<prop::sample::Index>(),
            prop::sample::select(vec![b'"', b',', b'}', b']', b'\\', b'1', b'e', 0x01, 0xff]),
        );
        (json(3), edit).prop_map(|(text, (how, at, byte))| {
            let mut b = text.into_bytes();
            let i = at.index(b.len() + 1);
            match how {
                0 if i < b.len() => drop(b.remove(i)),
                1 => b.insert(i, byte),
                _ => {}
            }
            b
        })
    }

    proptest::proptest! {
        /// The walk without serde finds what serde's walk finds, and reads nothing serde
        /// refuses.
        #[test]
        fn the_plain_walk_is_serde_s(body in body()) {
            let mut want = Vec::new();
            let shape = through_serde(&body, &mut |s| want.push(s.to_string()));
            if let Some((texts, plain_shape)) = plain(&body) {
                proptest::prop_assert!(shape.is_ok(), "read {texts:?}; serde: {shape:?}");
                let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
                proptest::prop_assert_eq!(texts, want);
                proptest::prop_assert_eq!(Some(plain_shape), shape.ok());
            }
        }
    }

    /// A chat request, the bench's and an agent's, takes the plain walk.
    #[test]
    fn a_chat_body_takes_the_plain_walk() {
        let body = br#"{"model":"gpt-4o","messages":[{"role":"system","content":"be brief"},
            {"role":"user","content":"hi \"there\" \u00e9"}],"temperature":0.2,"max_tokens":64}"#;
        let (texts, shape) = plain(body).expect("plain");
        assert_eq!(texts, ["be brief", "hi \"there\" é"]);
        assert_eq!(shape.messages, 2);
    }

    #[test]
    fn not_one_json_value_is_an_error() {
        for bad in ["", "{", r#"{"a":1} x"#, "[1,]", "nul"] {
            assert!(texts(bad).1.is_err(), "{bad:?}");
        }
    }
}
