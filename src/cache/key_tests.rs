use super::*;
use pingora::cache::key::CacheHashKey;
use proptest::prelude::*;

/// An encoding and whether it asks for what cannot be cached.
type Encoded = Option<(bool, Vec<u8>)>;

/// The cursor's encoding, and serde's, of `body`, after the same prefix.
fn both(body: &[u8]) -> (Encoded, Encoded) {
    let (mut a, mut b) = (vec![7], vec![7]);
    let fast = scanned(body, &mut a).map(|beyond| (beyond, a));
    let slow = by_serde(body, &mut b).map(|beyond| (beyond, b));
    (fast, slow)
}

#[test]
fn the_cursor_reads_chat_and_responses_bodies() {
    let bodies = [
        r#"{"model":"m","messages":[{"role":"system","content":"Be brief.\nAlways."},
           {"role":"user","content":"hé \"x\" \u00e9"}],"temperature":0.2,"max_tokens":64,
           "stream":true,"stream_options":{"include_usage":true},"n":1,"seed":-3}"#,
        r#"{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]}],
           "include":["reasoning.encrypted_content"],"store":false,"top_p":1e0,"x":null}"#,
        r#"{"model":"m","n":2}"#,
        "{}",
    ];
    for body in bodies {
        let (fast, slow) = both(body.as_bytes());
        assert!(fast.is_some(), "{body}");
        assert_eq!(fast, slow, "{body}");
    }
}

#[test]
fn the_cursor_leaves_to_serde_what_serde_reads_otherwise() {
    for body in [
        r#"{"m\u0041":1}"#,
        r#"{"t":-0}"#,
        r#"{"t":18446744073709551616}"#,
        r#"{"t":-9223372036854775809}"#,
        r#"{"t":"\ud800"}"#,
        "{\"t\":\"a\u{1}b\"}",
        "{\"a\u{1}\":1}",
    ] {
        let (fast, slow) = both(body.as_bytes());
        assert!(fast.is_none(), "{body}");
        // serde reads some (as a float, a key decoded) and refuses others.
        let _ = slow;
    }
    let deep = format!("{{\"t\":{}1{}}}", "[".repeat(70), "]".repeat(70));
    assert_eq!(both(deep.as_bytes()).0, None);
    assert!(both(deep.as_bytes()).1.is_some());
    // A judged value as deep as serde reads alone, one level past its limit in the body.
    let deeper = format!("{{\"include\":{}1{}}}", "[".repeat(127), "]".repeat(127));
    assert_eq!(both(deeper.as_bytes()), (None, None));
}

fn scalar() -> impl Strategy<Value = String> {
    let read = [
        "null",
        "true",
        "false",
        "-0",
        "1e5",
        "1.5E-3",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "0.1",
        "-0.0",
        "\"h\\u00e9\"",
        "\"a\\nb\"",
        "\"\"",
        "0",
        "-1",
    ];
    // Forms serde refuses.
    let refused = [
        "01",
        "-",
        "1.",
        "+1",
        "tru",
        "\"\\ud800\"",
        "\"raw\u{1}ctl\"",
        "\"\\x\"",
    ];
    prop_oneof![
        4 => prop::sample::select(read.to_vec()).prop_map(str::to_string),
        1 => prop::sample::select(refused.to_vec()).prop_map(str::to_string),
        2 => any::<u64>().prop_map(|n| n.to_string()),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        2 => any::<f64>().prop_map(|f| serde_json::to_string(&f).unwrap_or_default()),
        2 => any::<String>().prop_map(|t| serde_json::to_string(&t).unwrap_or_default()),
    ]
}

/// An object's text from its members' texts: keys the key reads apart (left out, judged)
/// or repeated, any whitespace.
fn object(value: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    let keys = [
        "model", "messages", "stream", "user", "n", "logprobs", "include", "role", "a", "\u{e9}",
        "k\\u0041", "t", "t",
    ];
    let ws = prop::sample::select(vec!["", " ", "\n  ", "\t"]);
    let member = (prop::sample::select(keys.to_vec()), ws, value);
    prop::collection::vec(member, 0..5).prop_map(|m| {
        let m: Vec<String> = m
            .iter()
            .map(|(k, w, v)| format!("{w}\"{k}\"{w}:{w}{v}"))
            .collect();
        format!("{{{}}}", m.join(","))
    })
}

/// A body: an object of values nested up to four deep, of scalars of every form.
fn text() -> impl Strategy<Value = String> {
    let value = scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            object(inner),
        ]
    });
    object(value)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]
    /// What the cursor encodes, serde encodes to the same bytes; what serde refuses, the
    /// cursor refuses too (whole texts, and texts with a byte cut or added).
    #[test]
    fn the_cursor_encodes_as_serde_does(
        t in text(),
        cut in any::<prop::sample::Index>(),
        add in prop::sample::select(vec!['{', '}', '[', ']', ',', ':', '"', '0', ' ', '\\', '\u{1}']),
        how in 0..3u8,
    ) {
        let mut body = t.into_bytes();
        let at = cut.index(body.len() + 1);
        match how {
            1 if at < body.len() => { body.remove(at); }
            2 => body.insert(at, add as u8),
            _ => {}
        }
        let (fast, slow) = both(&body);
        if fast.is_some() {
            prop_assert_eq!(fast, slow);
        }
    }
}

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
