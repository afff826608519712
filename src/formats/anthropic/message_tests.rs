use super::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::json;

/// serde's reading of `body`, as `seen` shows it; `None` where serde refuses it.
fn by_serde(body: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Message<'_>>(body)
        .ok()
        .map(|m| seen(&m))
}

/// The cursor reads `body` as serde does, or steps aside; it never reads what serde refuses.
fn agrees(body: &[u8]) -> Result<bool, TestCaseError> {
    let ours = scanned(body).map(|m| seen(&m));
    match (&ours, by_serde(body)) {
        (Some(o), Some(s)) => prop_assert_eq!(o, &s),
        (Some(o), None) => prop_assert!(false, "read what serde refuses: {o}"),
        _ => {}
    }
    Ok(ours.is_some())
}

#[test]
fn a_plain_message_is_read_by_the_cursor_as_serde_reads_it() {
    let cases = [
        json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
            "content": [{"type": "text", "text": "with low tokens a cost"}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 3, "cache_creation": {"ephemeral_5m_input_tokens": 0},
                "output_tokens": 16, "service_tier": "standard"}}),
        json!({"content": [
            {"type": "thinking", "thinking": "a \"quoted\"\nline \u{1F980}", "signature": "s"},
            {"type": "text", "text": "tab\there", "citations": [{"a": [1, {"b": "]"}]}]},
            {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"q": [1, 2.5, null]}},
            {"type": "redacted_thinking", "data": "xyz"}],
            "id": null, "stop_reason": "tool_use"}),
        json!({"content": [], "usage": {"input_tokens": null}}),
    ];
    for v in cases {
        let body = serde_json::to_vec_pretty(&v).unwrap();
        let read = agrees(&body).unwrap();
        assert!(read, "the cursor stepped aside on {v}");
        assert_eq!(seen(&super::read(&body).unwrap()), by_serde(&body).unwrap());
    }
}

#[test]
fn what_the_cursor_does_not_read_as_serde_would_goes_to_serde() {
    let cases: [&[u8]; 10] = [
        br#"{"content": [], "id": "a", "id": "b"}"#,
        br#"{"content": [{"type": "text", "text": "a", "text": "b"}]}"#,
        br#"{"content": [], "i\u0064": "x"}"#,
        br#"{"content": [{"t\u0079pe": "text"}]}"#,
        br#"{"id": "a"}"#,
        br#"{"content": [{"type": null}]}"#,
        br#"{"content": [{"type": 1}]}"#,
        br#"{"content": [], "usage": {"input_tokens": 1.5}}"#,
        br#"{"content": [], "usage": null}"#,
        br#"{"content": []} x"#,
    ];
    for body in cases {
        assert!(scanned(body).is_none(), "{}", String::from_utf8_lossy(body));
        // serde's answer stands: the first one read (a repeated key refused, say).
        assert_eq!(
            super::read(body).ok().map(|m| seen(&m)),
            by_serde(body),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    // A raw control character in a string: serde refuses it, and so does the cursor.
    assert!(scanned(b"{\"content\": [], \"id\": \"a\x01\"}").is_none());
}

fn text_value() -> impl Strategy<Value = Value> {
    // Mostly strings, so most Messages are ones the cursor reads.
    prop_oneof![
        1 => Just(Value::Null),
        8 => "[a-z \"\\\\\n\t\u{e9}\u{1F980}/]{0,12}".prop_map(Value::from),
        1 => any::<u32>().prop_map(Value::from),
    ]
}

fn block_value() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        3 => Just(json!("text")),
        3 => Just(json!("thinking")),
        3 => Just(json!("tool_use")),
        1 => Just(json!("other")),
        1 => text_value(),
    ];
    let input = prop_oneof![
        Just(Value::Null),
        Just(json!({"a": [1, "]", {"b": null}]})),
        Just(json!("s"))
    ];
    let fields = (
        proptest::option::weighted(0.95, kind),
        proptest::option::of(text_value()),
        proptest::option::of(text_value()),
        proptest::option::of(text_value()),
        proptest::option::of(input),
        proptest::option::of(Just(json!({"x": ["}", 1]}))),
    );
    fields.prop_map(|(kind, text, thinking, id, input, extra)| {
        let mut o = serde_json::Map::new();
        let keys = ["type", "text", "thinking", "id", "input", "citations"];
        for (k, v) in keys
            .into_iter()
            .zip([kind, text, thinking, id, input, extra])
        {
            if let Some(v) = v {
                o.insert(k.into(), v);
            }
        }
        Value::Object(o)
    })
}

fn message_value() -> impl Strategy<Value = Value> {
    let usage = prop_oneof![
        Just(json!({"input_tokens": 3, "output_tokens": 4})),
        Just(
            json!({"cache_read_input_tokens": 9, "cache_creation": {"input_tokens": 1},
            "output_tokens": null, "service_tier": "x"})
        ),
        Just(json!({"input_tokens": -1})),
        Just(Value::Null),
    ];
    (
        proptest::option::of(text_value()),
        proptest::option::weighted(0.9, proptest::collection::vec(block_value(), 0..4)),
        proptest::option::of(text_value()),
        proptest::option::of(usage),
        proptest::option::of(Just(json!({"model": "m", "n": [1, {"k": "v"}]}))),
    )
        .prop_map(|(id, content, stop, usage, extra)| {
            let mut o = serde_json::Map::new();
            if let Some(e) = extra {
                o.insert("extra".into(), e);
            }
            for (k, v) in ["id", "stop_reason", "usage"]
                .into_iter()
                .zip([id, stop, usage])
            {
                if let Some(v) = v {
                    o.insert(k.into(), v);
                }
            }
            if let Some(c) = content {
                o.insert("content".into(), Value::Array(c));
            }
            Value::Object(o)
        })
}

#[test]
fn the_cursor_reads_most_generated_messages() {
    // The comparison below is not vacuous: most generated Messages are read by the cursor.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut read, mut all) = (0, 0);
    for _ in 0..256 {
        let v = message_value().new_tree(&mut runner).unwrap().current();
        all += 1;
        read += u32::from(scanned(&serde_json::to_vec(&v).unwrap()).is_some());
    }
    assert!(
        read * 4 >= all,
        "the cursor read only {read} of {all} generated Messages"
    );
}

proptest! {
    /// Over Messages of any shape (fields absent, null, of the wrong type, escaped, unknown
    /// and nested), the cursor reads what serde reads or leaves the body to serde.
    #[test]
    fn the_cursor_reads_what_serde_reads(v in message_value(), pretty in any::<bool>()) {
        let body = if pretty {
            serde_json::to_vec_pretty(&v).unwrap()
        } else {
            serde_json::to_vec(&v).unwrap()
        };
        agrees(&body)?;
        prop_assert_eq!(super::read(&body).ok().map(|m| seen(&m)), by_serde(&body));
    }
}
