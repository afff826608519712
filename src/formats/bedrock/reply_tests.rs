use super::*;
use proptest::prelude::*;
use serde_json::{json, Value};

/// What a test compares of a reply read two ways.
fn seen(r: &Reply) -> Value {
    let blocks = |m: &Message| -> Vec<Value> {
        (m.content.iter())
            .map(|b| json!([b.text, b.tool_use.is_some(), b.reasoning_content.is_some()]))
            .collect()
    };
    let u = &r.usage;
    json!({
        "output": r.output.as_ref().map(|o| o.message.as_ref().map(blocks)),
        "stop": r.stop_reason,
        "usage": [u.input_tokens, u.output_tokens, u.cache_read_input_tokens,
                  u.cache_write_input_tokens],
    })
}

/// The cursor's reading (`None`: it stepped aside) and serde's (`None`: it refused).
fn both(body: &[u8]) -> (Option<Value>, Option<Value>) {
    let serde = serde_json::from_slice::<Reply>(body).ok();
    (reply(body).map(|r| seen(&r)), serde.map(|r| seen(&r)))
}

#[test]
fn a_plain_reply_is_read_as_serde_reads_it() {
    let cases = [
        json!({"output": {"message": {"role": "assistant", "content": [{"text": "a b c"}]}},
            "stopReason": "end_turn", "usage": {"inputTokens": 8, "outputTokens": 16,
            "totalTokens": 24}, "metrics": {"latencyMs": 42}}),
        json!({"output": {"message": {"content": [{"text": "tab\t\"q\" \u{1F980}"},
            {"text": null}, {"citationsContent": {"x": [1, "]"]}}]}},
            "usage": {"inputTokens": 1, "outputTokens": 2, "cacheReadInputTokens": 3,
            "cacheWriteInputTokens": 4, "cacheDetails": [{"ttl": "5m"}]}}),
        json!({"output": {"message": null}, "stopReason": null}),
        json!({"output": null}),
        json!({"output": {"message": {}}}),
        json!({}),
    ];
    for v in cases {
        for body in [v.to_string(), serde_json::to_string_pretty(&v).unwrap()] {
            let (fast, serde) = both(body.as_bytes());
            assert!(fast.is_some(), "stepped aside on {body}");
            assert_eq!(fast, serde, "{body}");
        }
    }
}

#[test]
fn anything_else_goes_to_serde() {
    let declined: [&[u8]; 14] = [
        br#"{"output":{"message":{"content":[{"toolUse":{"toolUseId":"t","name":"n","input":{}}}]}}}"#,
        br#"{"output":{"message":{"content":[{"reasoningContent":{"reasoningText":{"text":"r"}}}]}}}"#,
        br#"{"output":{"message":{"content":null}}}"#,
        br#"{"output":{"message":{"content":[{"text":"a","text":"b"}]}}}"#,
        br#"{"output":null,"output":null}"#,
        br#"{"outp\u0075t":null}"#,
        br#"{"usage":null}"#,
        br#"{"usage":{"inputTokens":null}}"#,
        br#"{"usage":{"inputTokens":1.5}}"#,
        br#"{"usage":{"inputTokens":-1}}"#,
        br#"{"stopReason":1}"#,
        br#"{"output":[]}"#,
        br#"{} x"#,
        b"[]",
    ];
    for body in declined {
        assert_eq!(both(body).0, None, "{}", String::from_utf8_lossy(body));
    }
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(7)),
        Just(json!(-1)),
        Just(json!(1.5)),
        "[a-z \"\\\\\u{e9}]{0,6}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
    ]
}

fn block() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        4 => Just("text"),
        1 => Just("toolUse"),
        1 => Just("reasoningContent"),
        1 => Just("other"),
    ];
    prop::collection::vec((key, value()), 0..3)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.into(), v)).collect()))
}

fn reply_value() -> impl Strategy<Value = Value> {
    let content = prop_oneof![
        6 => prop::collection::vec(block(), 0..3).prop_map(Value::from),
        1 => value(),
    ];
    let message = prop_oneof![5 => content.prop_map(|c| json!({"content": c})), 1 => value()];
    let output = prop_oneof![5 => message.prop_map(|m| json!({"message": m})), 1 => value()];
    let n = prop_oneof![4 => (0u64..100).prop_map(Value::from), 1 => value()];
    let usage = prop_oneof![
        5 => (n.clone(), n.clone(), n).prop_map(|(i, o, r)| json!({"inputTokens": i,
            "outputTokens": o, "cacheReadInputTokens": r, "totalTokens": 3})),
        1 => value(),
    ];
    let stop = prop_oneof![3 => Just(json!("end_turn")), 1 => value()];
    (output, stop, usage, any::<[bool; 3]>()).prop_map(|(o, s, u, has)| {
        let mut v = json!({"metrics": {"latencyMs": 1}});
        for ((k, x), on) in [("output", o), ("stopReason", s), ("usage", u)]
            .into_iter()
            .zip(has)
        {
            if on {
                v[k] = x;
            }
        }
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    /// Over replies of every shape, the cursor reads what serde reads, or steps aside; it
    /// never reads what serde refuses.
    #[test]
    fn the_cursor_reads_as_serde_or_steps_aside(v in reply_value()) {
        let body = v.to_string();
        let (fast, serde) = both(body.as_bytes());
        if let Some(f) = fast {
            prop_assert_eq!(Some(f), serde, "{}", body);
        }
    }
}
