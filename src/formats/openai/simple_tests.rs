use super::*;
use crate::formats::openai::types::Stop;
use proptest::prelude::*;
use serde_json::Value;

/// What a test compares of a request read two ways.
fn summary(r: &ChatRequest) -> Value {
    let content = |c: &Option<Content>| match c {
        None => Value::Null,
        Some(Content::Text(t)) => Value::String(t.clone()),
        Some(Content::Parts(p)) => p.iter().map(|p| p.kind.clone()).collect(),
    };
    let messages = r.messages.as_ref().map(|m| {
        (m.iter())
            .map(|m| {
                let calls = m.tool_calls.as_ref().map(Vec::len);
                serde_json::json!([
                    m.role,
                    content(&m.content),
                    m.name,
                    calls,
                    m.tool_call_id,
                    m.refusal,
                    m.annotations,
                    m.extra
                ])
            })
            .collect::<Vec<_>>()
    });
    let tools = r.tools.as_ref().map(Vec::len);
    serde_json::json!([
        r.model,
        messages,
        r.max_tokens,
        r.max_completion_tokens,
        r.temperature.map(f64::to_bits),
        r.top_p.map(f64::to_bits),
        r.stop.as_ref().map(Stop::strs),
        r.stream,
        r.include_usage(),
        tools,
        r.tool_choice,
        r.parallel_tool_calls,
        r.response_format,
        r.reasoning_effort,
        r.user,
        r.extra
    ])
}

/// Both readings of `body`: the cursor's only when it takes it.
fn both(body: &str) -> (Option<Value>, Option<Value>) {
    let fast = chat(body.as_bytes()).map(|r| summary(&r));
    let serde = serde_json::from_str::<ChatRequest>(body)
        .ok()
        .map(|r| summary(&r));
    (fast, serde)
}

#[test]
fn the_simple_shape_reads_as_serde_reads_it() {
    let taken = [
        r#"{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"Say something."}]}"#,
        "{ \"messages\" : [ { \"content\" : \"a\\nb \\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\\" , \"role\" : \"system\" } ,\n {\"role\":\"user\",\"content\":\"h\u{e9}llo\"} ] , \"model\" : null }\n",
        r#"{"messages":[{"role":"assistant","content":null},{"role":"user"}],"stream":false}"#,
        r#"{"messages":[],"temperature":0.7,"top_p":1,"max_completion_tokens":0,"stream":true}"#,
        r#"{"messages":null,"temperature":-0.0,"top_p":1e-3,"stream":null,"max_tokens":null}"#,
        r#"{"temperature":12345678901234567890.123456789e-5,"top_p":null}"#,
        r#"{}"#,
    ];
    for body in taken {
        let (fast, serde) = both(body);
        assert!(fast.is_some(), "declined: {body}");
        assert_eq!(fast, serde, "{body}");
    }
}

#[test]
fn anything_else_goes_to_serde() {
    let declined = [
        // Fields the cursor does not read, parts, other message fields.
        r#"{"messages":[{"role":"user","content":"a"}],"tools":[]}"#,
        r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"}]}]}"#,
        r#"{"messages":[{"role":"user","content":"a","name":"n"}]}"#,
        r#"{"mo\u0064el":"m"}"#,
        // Repeated keys, which serde refuses.
        r#"{"model":"a","model":"b"}"#,
        r#"{"messages":[{"role":"user","role":"user"}]}"#,
        // Values serde refuses.
        r#"{"max_tokens":016}"#,
        r#"{"max_tokens":-1}"#,
        r#"{"max_tokens":1.0}"#,
        r#"{"max_tokens":"16"}"#,
        r#"{"temperature":"0.7"}"#,
        r#"{"temperature":.5}"#,
        r#"{"stream":"true"}"#,
        r#"{"stream":truex}"#,
        r#"{"messages":[{"role":null,"content":"a"}]}"#,
        r#"{"messages":[{"content":"a"}]}"#,
        "{\"messages\":[{\"role\":\"user\",\"content\":\"a\u{1}b\"}]}",
        r#"{"messages":[{"role":"user","content":"\ud800"}]}"#,
        r#"{"model":"m"} x"#,
        r#"{"model":"m""#,
        r#"[]"#,
    ];
    for body in declined {
        assert_eq!(both(body).0, None, "taken: {body}");
    }
    assert_eq!(chat(b"{\"model\":\"\xff\"}").map(|r| summary(&r)), None);
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        "-?(0|[1-9][0-9]{0,3}|0[0-9])(\\.[0-9]{1,3})?(e-?[0-9])?".prop_map(|n| n),
        "[a-z\\\\\"é ]{0,6}".prop_map(|s| Value::String(s).to_string()),
        Just("\"\\u00e9\"".to_string()),
        Just("\"\\ud800\"".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
    ]
}

fn message() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop_oneof![Just("role"), Just("content"), Just("name")],
            value(),
        ),
        0..3,
    )
    .prop_map(|kv| {
        let members: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", members.join(","))
    })
}

fn body() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("model"),
        Just("max_tokens"),
        Just("max_completion_tokens"),
        Just("temperature"),
        Just("top_p"),
        Just("stream"),
        Just("user"),
    ];
    let messages =
        prop::collection::vec(message(), 0..3).prop_map(|m| format!("[{}]", m.join(",")));
    let member = prop_oneof![
        (key, value()).prop_map(|(k, v)| format!("\"{k}\":{v}")),
        messages.prop_map(|m| format!("\"messages\":{m}")),
    ];
    (prop::collection::vec(member, 0..5), " {0,1}")
        .prop_map(|(m, ws)| format!("{{{ws}{}}}", m.join(&format!(",{ws}"))))
}

proptest! {
    #[test]
    fn what_the_cursor_takes_serde_reads_alike(b in body()) {
        let (fast, serde) = both(&b);
        if fast.is_some() {
            prop_assert_eq!(fast, serde, "{}", b);
        }
    }
}
