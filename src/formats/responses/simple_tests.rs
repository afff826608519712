use super::*;
use crate::formats::responses::to_chat::to_pivot;
use crate::formats::test_support::{with_fields, OPTS};
use crate::formats::{from_pivot, Format};
use proptest::prelude::*;

const TARGETS: [Format; 3] = [Format::Anthropic, Format::Bedrock, Format::Gemini];

/// What each second hop sends upstream from `body` read the cursor's way (`None` when it
/// declines) and the general way (`None` when that refuses it), for either token cap field.
fn both(body: &str) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let caps = [
        MaxTokensField::MaxTokens,
        MaxTokensField::MaxCompletionTokens,
    ];
    let mut fast = Some(Vec::new());
    let mut slow = Some(Vec::new());
    for (to, cap) in TARGETS.into_iter().flat_map(|t| caps.map(|c| (t, c))) {
        let opts = RequestOptions {
            max_tokens_field: cap,
            ..OPTS
        };
        let sent = |req: ChatRequest| {
            let t = with_fields(&opts, |f| from_pivot(to, req, &opts, f)).ok()?;
            let body = String::from_utf8(t.body).ok()?;
            Some(format!(
                "{body} {} {} {:?}",
                t.stream, t.include_usage, t.dropped
            ))
        };
        let f = crate::formats::fields::Fields::new(opts.fields);
        let general = (to_pivot(body.as_bytes(), &opts, &f).ok())
            .and_then(|(p, _)| p.request().ok())
            .and_then(sent);
        let cursor = chat_request(body.as_bytes(), &opts).and_then(sent);
        fast = fast.zip(cursor).map(|(mut v, s)| {
            v.push(s);
            v
        });
        slow = slow.zip(general).map(|(mut v, s)| {
            v.push(s);
            v
        });
    }
    (fast, slow)
}

#[test]
fn the_simple_shape_translates_as_the_general_path_does() {
    let taken = [
        r#"{"model":"claude-bench","max_output_tokens":16,"input":"Say something."}"#,
        r#"{"model":"m","instructions":"Be brief.","input":"hi","stream":true,"store":false}"#,
        r#"{"model":null,"instructions":"","input":[{"role":"developer","content":"d"},{"type":"message","role":"user","content":"u"}]}"#,
        "{ \"input\" : [ { \"content\" : \"a\\nb \\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\\" , \"role\" : \"system\" } ,\n {\"role\":\"user\",\"content\":\"h\u{e9}llo\"} ] , \"model\" : \"x\" }\n",
        r#"{"input":"x","temperature":0.7,"top_p":1,"max_output_tokens":0,"stream":false}"#,
        r#"{"input":"x","temperature":null,"top_p":1e-3,"stream":null,"max_output_tokens":null,"store":null,"instructions":null}"#,
    ];
    for body in taken {
        let (fast, slow) = both(body);
        assert!(fast.is_some(), "declined: {body}");
        assert_eq!(fast, slow, "{body}");
    }
}

#[test]
fn anything_else_goes_to_the_general_path() {
    let declined = [
        // Fields the cursor does not read, parts, other roles and item fields.
        r#"{"input":"a","tools":[]}"#,
        r#"{"input":"a","previous_response_id":"resp_1"}"#,
        r#"{"input":"a","user":"u"}"#,
        r#"{"input":[{"role":"user","content":[{"type":"input_text","text":"a"}]}]}"#,
        r#"{"input":[{"role":"assistant","content":"a"}]}"#,
        r#"{"input":[{"role":"user","content":"a","id":"msg_1"}]}"#,
        r#"{"input":[{"type":"function_call_output","call_id":"c","output":"o"}]}"#,
        r#"{"input":[{"type":null,"role":"user","content":"a"}]}"#,
        r#"{"in\u0070ut":"a"}"#,
        // No message but system ones: the general path names what is missing.
        r#"{"input":null}"#,
        r#"{"input":[]}"#,
        r#"{"instructions":"i"}"#,
        r#"{"input":[{"role":"system","content":"s"}]}"#,
        // Repeated keys, values of another type, text that is not JSON.
        r#"{"input":"a","input":"b"}"#,
        r#"{"input":[{"role":"user","role":"user","content":"a"}]}"#,
        r#"{"input":"a","max_output_tokens":-1}"#,
        r#"{"input":"a","max_output_tokens":"16"}"#,
        r#"{"input":"a","stream":"true"}"#,
        r#"{"input":"a","model":1}"#,
        r#"{"input":[{"role":"user","content":null}]}"#,
        r#"{"input":[{"role":"user"}]}"#,
        "{\"input\":\"a\u{1}b\"}",
        r#"{"input":"a"} x"#,
        r#"{"input":"a""#,
        r#"[]"#,
    ];
    for body in declined {
        assert!(
            chat_request(body.as_bytes(), &OPTS).is_none(),
            "taken: {body}"
        );
    }
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        "-?(0|[1-9][0-9]{0,3}|0[0-9])(\\.[0-9]{1,3})?(e-?[0-9])?".prop_map(|n| n),
        "[a-z\\\\\"é ]{0,6}".prop_map(|s| serde_json::Value::String(s).to_string()),
        prop_oneof![
            Just("user"),
            Just("system"),
            Just("developer"),
            Just("message")
        ]
        .prop_map(|s| format!("\"{s}\"")),
        Just("\"\\u00e9\"".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
    ]
}

/// Mostly what the key takes, sometimes any value.
fn for_key(key: &'static str) -> impl Strategy<Value = String> {
    let fitting = match key {
        "role" => prop_oneof![
            Just("user"),
            Just("system"),
            Just("developer"),
            Just("assistant")
        ]
        .prop_map(|s| format!("\"{s}\""))
        .boxed(),
        "type" => Just("\"message\"".to_string()).boxed(),
        "content" | "input" | "instructions" | "model" => "[a-z\\\\\"é ]{0,6}"
            .prop_map(|s| serde_json::Value::String(s).to_string())
            .boxed(),
        "max_output_tokens" => "[0-9]{1,3}".boxed(),
        "stream" | "store" => prop_oneof![Just("true"), Just("false")]
            .prop_map(str::to_string)
            .boxed(),
        _ => "-?[0-9](\\.[0-9]{1,3})?".boxed(),
    };
    prop_oneof![9 => fitting, 1 => value()]
}

/// Each of `keys` at most once, in any order, with a value mostly of its kind.
fn members(keys: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    prop::sample::subsequence(keys, 0..=keys.len())
        .prop_shuffle()
        .prop_flat_map(|ks| {
            (ks.into_iter())
                .map(|k| for_key(k).prop_map(move |v| format!("\"{k}\":{v}")))
                .collect::<Vec<_>>()
        })
}

fn object(members: Vec<String>, ws: &str) -> String {
    format!("{{{ws}{}}}", members.join(&format!(",{ws}")))
}

/// A role and content, in either order, sometimes with a type or an id.
fn item() -> impl Strategy<Value = String> {
    let extra = prop_oneof![
        3 => for_key("type").prop_map(|v| format!("\"type\":{v}")),
        1 => Just("\"id\":\"msg_1\"".to_string()),
    ];
    let fields = (for_key("role"), for_key("content"), prop::option::of(extra));
    (fields, any::<bool>()).prop_map(|((role, content, extra), swap)| {
        let mut m = vec![format!("\"role\":{role}"), format!("\"content\":{content}")];
        if swap {
            m.swap(0, 1);
        }
        m.extend(extra);
        object(m, "")
    })
}

/// A body with `input` (a string or a list of items) and some of the other fields.
fn body() -> impl Strategy<Value = String> {
    const KEYS: [&str; 7] = [
        "model",
        "instructions",
        "max_output_tokens",
        "temperature",
        "top_p",
        "stream",
        "store",
    ];
    let list = prop::collection::vec(item(), 0..4).prop_map(|m| format!("[{}]", m.join(",")));
    let input = prop_oneof![for_key("input"), list].prop_map(|v| format!("\"input\":{v}"));
    (
        members(&KEYS),
        input,
        any::<prop::sample::Index>(),
        " {0,1}",
    )
        .prop_map(|(mut m, input, at, ws)| {
            m.insert(at.index(m.len() + 1), input);
            object(m, &ws)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]
    #[test]
    fn what_the_cursor_takes_translates_alike(b in body()) {
        let (fast, slow) = both(&b);
        if fast.is_some() {
            prop_assert_eq!(fast, slow, "{}", b);
        }
    }
}
