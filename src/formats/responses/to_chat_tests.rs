//! Responses → chat: what cannot be translated is a 400 naming the field in the client's terms.

use crate::formats::test_support::{value_of, DROP_PARAMS, OPTS};
use crate::formats::{translate_request, Format, MaxTokensField, RequestOptions};
use serde_json::{json, Value};

fn opts() -> RequestOptions<'static> {
    RequestOptions {
        default_max_tokens: 1024,
        max_tokens_field: MaxTokensField::MaxTokens,
        ..OPTS
    }
}

fn to(format: Format, body: Value) -> Result<Value, (String, String)> {
    match translate_request(
        Format::Responses,
        format,
        body.to_string().as_bytes(),
        &opts(),
    ) {
        Ok(t) => Ok(value_of(&t.body)),
        Err(e) => Err((e.param.unwrap_or_default().into_owned(), e.message)),
    }
}

fn param(format: Format, body: Value) -> String {
    to(format, body).unwrap_err().0
}

#[test]
fn refused_by_name() {
    let cases = [
        (
            json!({"input": "x", "tools": [{"type": "web_search"}]}),
            "tools[0].type",
        ),
        (
            json!({"input": [{"type": "item_reference", "id": "msg_1"}]}),
            "input[0].type",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}),
            "input[0].content[0].file_id",
        ),
        (
            json!({"input": [{"type": "function_call", "call_id": "c", "name": "f"}]}),
            "input[0].arguments",
        ),
        (
            json!({"input": "x", "include": ["message.output_text.logprobs"]}),
            "include",
        ),
        (json!({"input": "x", "max_tool_calls": 3}), "max_tool_calls"),
        (json!({"input": "x", "prompt": {"id": "pmpt_1"}}), "prompt"),
        (
            json!({"input": "x", "text": {"format": {"type": "grammar"}}}),
            "text.format.type",
        ),
        (json!({"input": []}), "input"),
        (json!({"input": 7}), "input"),
    ];
    for (body, want) in cases {
        assert_eq!(param(Format::OpenAi, body.clone()), want, "{body}");
    }
}

#[test]
fn second_hop_errors_speak_responses() {
    // Anthropic's thinking budget needs room: the chat field it came from is renamed back.
    let (p, msg) = to(
        Format::Anthropic,
        json!({"input": "x", "max_output_tokens": 500, "reasoning": {"effort": "high"}}),
    )
    .unwrap_err();
    assert_eq!(p, "reasoning.effort");
    assert!(msg.starts_with("`reasoning.effort`"), "{msg}");
    let p = param(
        Format::Anthropic,
        json!({"input": "x", "text": {"format": {"type": "json_object"}}}),
    );
    assert_eq!(p, "text.format.type");
}

#[test]
fn neutral_settings_pass() {
    let v = to(
        Format::OpenAi,
        json!({"input": "x", "store": false, "background": false, "truncation": "disabled",
            "include": ["reasoning.encrypted_content"], "stream_options": {"include_obfuscation": false},
            "previous_response_id": null, "top_logprobs": 0, "max_output_tokens": 20}),
    )
    .unwrap();
    assert_eq!(v["max_tokens"], 20, "the preset's max-tokens field");
    assert_eq!(v["messages"], json!([{"role": "user", "content": "x"}]));
}

#[test]
fn calls_join_the_assistant_text_before_them() {
    let v = to(
        Format::OpenAi,
        json!({"input": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "Let me look."},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "1"},
            {"type": "function_call_output", "call_id": "c2", "output": "2"},
        ], "stream": true}),
    )
    .unwrap();
    let m = v["messages"].as_array().unwrap();
    assert_eq!(m.len(), 4);
    assert_eq!(m[1]["content"], "Let me look.");
    assert_eq!(m[1]["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(m[3]["tool_call_id"], "c2");
    assert_eq!(v["stream_options"]["include_usage"], true);
}

fn translated(format: Format, body: Value) -> crate::formats::Translated {
    translate_request(
        Format::Responses,
        format,
        body.to_string().as_bytes(),
        &opts(),
    )
    .unwrap()
}

#[test]
fn codex_hints_are_dropped_and_named() {
    let body = json!({"input": "x", "client_metadata": {"session": "s"}, "truncation": "auto",
        "context_management": [{"type": "compaction"}], "reasoning": {"effort": "low", "mode": "x"},
        "brand_new": 1, "max_output_tokens": 4000});
    for format in [
        Format::OpenAi,
        Format::Anthropic,
        Format::Bedrock,
        Format::Gemini,
    ] {
        let t = translated(format, body.clone());
        let mut d = t.dropped.clone();
        d.sort();
        assert_eq!(
            d,
            [
                "brand_new",
                "client_metadata",
                "context_management",
                "reasoning.mode",
                "truncation"
            ],
            "{format:?}"
        );
    }
}

#[test]
fn namespace_tools_are_flattened_and_history_calls_renamed() {
    let body = json!({"input": [
        {"role": "user", "content": "q"},
        {"type": "function_call", "call_id": "c1", "namespace": "mcp__fs__", "name": "read", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "1"}],
        "tools": [
            {"type": "function", "name": "shell", "parameters": {"type": "object"}},
            {"type": "namespace", "name": "mcp__fs__", "description": "files", "tools": [
                {"type": "function", "name": "read", "description": "read a file",
                 "strict": false, "parameters": {"type": "object", "properties": {}}}]}]});
    let t = translated(Format::OpenAi, body);
    let v = value_of(&t.body);
    let names: Vec<&str> = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shell", "mcp__fs__read"]);
    assert_eq!(
        v["messages"][1]["tool_calls"][0]["function"]["name"],
        "mcp__fs__read"
    );
    let n = t.tool_names.expect("the map for the reply");
    assert_eq!(n.original("mcp__fs__read"), Some(("mcp__fs__", "read")));
    assert!(t.dropped.is_empty());
}

#[test]
fn drop_params_turns_refusals_into_named_drops() {
    let lenient = RequestOptions {
        fields: DROP_PARAMS,
        ..opts()
    };
    let body = json!({"input": "x", "tools": [{"type": "web_search"}], "max_tool_calls": 2,
        "top_logprobs": 3});
    let t = translate_request(
        Format::Responses,
        Format::Anthropic,
        body.to_string().as_bytes(),
        &lenient,
    )
    .unwrap();
    assert_eq!(
        t.dropped,
        ["tools[].type", "max_tool_calls", "top_logprobs"]
    );
    let v = value_of(&t.body);
    assert!(v.get("tools").is_none() || v["tools"] == json!([]));
}
