//! Unit tests of the chat ⇄ Messages request translators: what cannot be expressed is named.
use super::*;
use crate::formats::test_support::{
    bytes_of, refused_param, user, value_of, with_fields, DROP_PARAMS, OPTS,
};
use crate::formats::MaxTokensField;

/// The translator with its own field list, as `translate_request` runs it.
fn from_chat(body: &[u8], opts: &RequestOptions<'_>) -> Result<Translated, ApiError> {
    with_fields(opts, |f| {
        super::from_chat(crate::formats::pivot::parse(body)?, opts, f)
    })
}

/// Anthropic → chat for an OpenAI-style backend (the final hop, not the pivot).
fn to_chat(body: &[u8], opts: &RequestOptions<'_>) -> Result<Translated, ApiError> {
    with_fields(opts, |f| super::to_chat(body, opts, f, false))
}

fn param_of(body: Value) -> String {
    refused_param(from_chat(&bytes_of(&body), &OPTS))
}

#[test]
fn inexpressible_fields_are_named() {
    for (extra, param) in [
        (json!({"n": 2}), "n"),
        (json!({"logprobs": true}), "logprobs"),
        (json!({"frequency_penalty": 0.5}), "frequency_penalty"),
        (json!({"temperature": 1.5}), "temperature"),
        (
            json!({"response_format": {"type": "json_object"}}),
            "response_format.type",
        ),
        (
            json!({"reasoning_effort": "high", "max_tokens": 1000}),
            "reasoning_effort",
        ),
        (
            json!({"tools": [{"type": "custom", "custom": {"name": "x"}}]}),
            "tools[0].type",
        ),
    ] {
        assert_eq!(param_of(user(extra.clone())), param, "{extra}");
        // `drop_params` turns each refusal into a drop that is named.
        let t = from_chat(&bytes_of(&user(extra.clone())), &LENIENT).unwrap();
        assert_eq!(t.dropped, [param.replace("[0]", "[]")], "{extra}");
    }
}

const LENIENT: RequestOptions<'static> = RequestOptions {
    fields: DROP_PARAMS,
    ..OPTS
};

#[test]
fn fields_without_effect_and_unknown_fields_are_dropped_and_named() {
    let body = user(json!({"seed": 7, "brand_new_field": 1, "store": true,
        "messages": [{"role": "user", "content": "hi", "cache_control": {"type": "ephemeral"}}],
        "tools": [{"type": "function", "function": {"name": "f"}, "eager_input_streaming": true}]}));
    let t = from_chat(&bytes_of(&body), &OPTS).unwrap();
    let mut names = t.dropped.clone();
    names.sort();
    assert_eq!(
        names,
        [
            "brand_new_field",
            "messages[].cache_control",
            "seed",
            "store",
            "tools[].eager_input_streaming"
        ]
    );
    let v = value_of(&t.body);
    assert!(v.get("seed").is_none() && v.get("brand_new_field").is_none());
    // A strict route refuses the unknown one by name.
    let strict = RequestOptions {
        fields: crate::formats::fields::FieldPolicy {
            drop_unsupported: false,
            reject_unknown: true,
        },
        ..OPTS
    };
    let e = from_chat(&bytes_of(&user(json!({"brand_new_field": 1}))), &strict).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("brand_new_field"));
}

#[test]
fn top_k_reaches_anthropic() {
    let t = from_chat(&bytes_of(&user(json!({"top_k": 40}))), &OPTS).unwrap();
    let v = value_of(&t.body);
    assert_eq!(v["top_k"], 40);
    assert!(t.dropped.is_empty());
}

#[test]
fn neutral_and_ignored_fields_pass() {
    let body = user(
        json!({"n": 1, "logprobs": false, "seed": null, "store": true,
        "metadata": {"a": "b"}, "presence_penalty": 0, "modalities": ["text"]}),
    );
    assert!(from_chat(&bytes_of(&body), &OPTS).is_ok());
}

#[test]
fn message_errors_are_located() {
    let bad_image = json!({"model": "x", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA"}}]}]});
    assert_eq!(param_of(bad_image), "messages[0].content[0].image_url.url");
    let ftp = json!({"model": "x", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "ftp://h/x.png"}}]}]});
    assert_eq!(param_of(ftp), "messages[0].content[0].image_url.url");
    let audio = json!({"model": "x", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]});
    assert_eq!(param_of(audio), "messages[0].content[0].type");
    let args = json!({"model": "x", "messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]});
    assert_eq!(
        param_of(args),
        "messages[0].tool_calls[0].function.arguments"
    );
    let role = json!({"model": "x", "messages": [{"role": "robot", "content": "x"}]});
    assert_eq!(param_of(role), "messages[0].role");
    assert_eq!(param_of(json!({"model": "x", "messages": []})), "messages");
    let e = from_chat(b"{nope", &OPTS).unwrap_err();
    assert_eq!(e.code.as_deref(), Some("invalid_json"));
}

fn anthropic(body: Value) -> Value {
    value_of(&from_chat(&bytes_of(&body), &OPTS).unwrap().body)
}

#[test]
fn tool_messages_merge_into_one_user_turn() {
    let v = anthropic(json!({"model": "x", "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": ""}},
            {"id": "b", "type": "function", "function": {"name": "f", "arguments": "{\"k\":1}"}}]},
        {"role": "tool", "tool_call_id": "a", "content": "1"},
        {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "2"}]},
        {"role": "user", "content": "and?"},
        {"role": "user", "content": [{"type": "text", "text": "more"}]}]}));
    let turns = v["messages"].as_array().unwrap();
    assert_eq!(turns.len(), 3);
    assert_eq!(
        turns[1]["content"],
        json!([{"type": "tool_use", "id": "a", "name": "f", "input": {}},
            {"type": "tool_use", "id": "b", "name": "f", "input": {"k": 1}}])
    );
    assert_eq!(
        turns[2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "a", "content": "1"},
            {"type": "tool_result", "tool_use_id": "b", "content": "2"},
            {"type": "text", "text": "and?"}, {"type": "text", "text": "more"}]})
    );
}

#[test]
fn image_urls_become_sources() {
    let p = "messages[0].content[0].image_url.url";
    let block = |url| serde_json::to_value(image_block(url, p).unwrap()).unwrap();
    assert_eq!(
        block("data:image/webp;base64,UklG"),
        json!({"type": "image", "source":
            {"type": "base64", "media_type": "image/webp", "data": "UklG"}})
    );
    assert_eq!(
        block("http://h/x.png")["source"],
        json!({"type": "url", "url": "http://h/x.png"})
    );
    for bad in [
        "data:image/png,AAAA",
        "data:image/svg+xml;base64,AA",
        "data:image/png;base64",
        "file:///etc/passwd",
    ] {
        let e = image_block(bad, p).unwrap_err();
        assert_eq!(e.param.as_deref(), Some(p), "{bad}");
    }
}

#[test]
fn part_and_call_errors_are_located() {
    let file = |f: Value| {
        json!({"model": "x", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "read"}, {"type": "file", "file": f}]}]})
    };
    assert_eq!(
        param_of(file(json!({"file_id": "file-1"}))),
        "messages[0].content[1].file.file_id"
    );
    assert_eq!(
        param_of(file(json!({"file_data": "data:text/plain;base64,AA"}))),
        "messages[0].content[1].file.file_data"
    );
    let pdf = anthropic(file(
        json!({"file_data": "data:application/pdf;base64,JVBE"}),
    ));
    assert_eq!(
        pdf["messages"][0]["content"][1]["source"],
        json!({"type": "base64", "media_type": "application/pdf", "data": "JVBE"})
    );
    let system = json!({"model": "x", "messages": [{"role": "system", "content": [
        {"type": "image_url", "image_url": {"url": "https://h/i.png"}}]}]});
    assert_eq!(param_of(system), "messages[0].content[0].type");
    // Unknown fields deep in the request are dropped and named by their path.
    let extra = json!({"model": "x", "messages": [{"role": "user", "content": "a", "foo": 1},
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "x": 1,
        "function": {"name": "f", "arguments": "{}"}}]}]});
    let t = from_chat(&bytes_of(&extra), &OPTS).unwrap();
    assert_eq!(t.dropped, ["messages[].foo", "messages[].tool_calls[].x"]);
}

#[test]
fn tool_choice_and_parallel_calls() {
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    let base = |mut extra: Value| {
        extra["tools"] = tools.clone();
        anthropic(user(extra))["tool_choice"].clone()
    };
    assert_eq!(
        base(json!({"tool_choice": "required"})),
        json!({"type": "any"})
    );
    assert_eq!(
        base(json!({"tool_choice": "none", "parallel_tool_calls": false})),
        json!({"type": "none"})
    );
    assert_eq!(
        base(json!({"parallel_tool_calls": false})),
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    // Without tools there is nothing to choose: no tool_choice is sent.
    let v = anthropic(user(json!({"parallel_tool_calls": false})));
    assert!(v.get("tool_choice").is_none(), "{v}");
    let v = anthropic(user(
        json!({"reasoning_effort": "minimal", "stop": ["a", "b"],
        "stream": true, "user": "u"}),
    ));
    assert!(v.get("thinking").is_none());
    assert_eq!(v["stop_sequences"], json!(["a", "b"]));
    assert_eq!(v["metadata"], json!({"user_id": "u"}));
}

#[test]
fn echoed_reply_messages_are_history() {
    // What an SDK sends back after appending an OpenAI reply to the conversation.
    let v = anthropic(json!({"model": "x", "messages": [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": null, "refusal": "I can't.", "annotations": [],
            "audio": null, "function_call": null, "tool_calls": null},
        {"role": "user", "content": "b"}]}));
    assert_eq!(
        v["messages"][1],
        json!({"role": "assistant", "content": [{"type": "text", "text": "I can't."}]})
    );
}

#[test]
fn thinking_budget_stays_below_max_tokens() {
    let body = user(json!({"reasoning_effort": "high", "max_tokens": 2000}));
    let t = from_chat(&bytes_of(&body), &OPTS).unwrap();
    let v = value_of(&t.body);
    assert_eq!(v["thinking"]["budget_tokens"], 1999);
}

#[test]
fn anthropic_fields_openai_cannot_express() {
    let to = |v: Value| to_chat(&bytes_of(&v), &OPTS).unwrap_err();
    let base =
        json!({"model": "x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let mut v = base.clone();
    v["top_k"] = json!(5);
    assert_eq!(to(v).param.as_deref(), Some("top_k"));
    let mut v = base.clone();
    v["tools"] = json!([{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]);
    assert_eq!(to(v).param.as_deref(), Some("tools[0].type"));
    let mut v = base.clone();
    v["mcp_servers"] = json!([]);
    assert_eq!(to(v).param.as_deref(), Some("mcp_servers"));
    let mut v = base.clone();
    v["thinking"] = json!({"type": "enabled"});
    assert_eq!(to(v).param.as_deref(), Some("thinking.budget_tokens"));
    let mut v = base.clone();
    v["messages"][0]["content"] = json!([{"type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "x"}}]);
    assert_eq!(
        to(v).param.as_deref(),
        Some("messages[0].content[0].source")
    );
    let mut v = base;
    v["messages"][0]["content"] = json!([{"type": "tool_result", "tool_use_id": "t",
        "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA"}}]}]);
    assert_eq!(
        to(v).param.as_deref(),
        Some("messages[0].content[0].content[0].type")
    );
}

#[test]
fn streams_always_ask_for_usage_upstream() {
    let body = json!({"model": "x", "max_tokens": 5, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let opts = RequestOptions {
        max_tokens_field: MaxTokensField::MaxTokens,
        cache_points: false,
        fields: crate::formats::fields::FieldPolicy::DEFAULT,
        ..OPTS
    };
    let t = to_chat(&bytes_of(&body), &opts).unwrap();
    let v = value_of(&t.body);
    assert_eq!(v["stream_options"]["include_usage"], true);
    assert_eq!(v["max_tokens"], 5);
    assert!(t.stream && !t.include_usage);
}

#[test]
fn tool_results_become_tool_messages_first() {
    let body = json!({"model": "x", "max_tokens": 5, "thinking": {"type": "adaptive"},
        "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": true},
        "messages": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a",
            "content": "1", "is_error": true}]},
        {"role": "user", "content": [
            {"type": "document", "source": {"type": "base64",
                "media_type": "application/pdf", "data": "JVBE"}},
            {"type": "tool_result", "tool_use_id": "b"}]}]});
    let t = to_chat(&bytes_of(&body), &OPTS).unwrap();
    let v = value_of(&t.body);
    assert_eq!(
        v["messages"],
        json!([{"role": "tool", "tool_call_id": "a", "content": "1"},
            {"role": "tool", "tool_call_id": "b", "content": ""},
            {"role": "user", "content": [{"type": "file", "file": {
                "filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBE"}}]}])
    );
    assert_eq!(v["reasoning_effort"], "medium");
    assert_eq!(
        v["tool_choice"],
        json!({"type": "function", "function": {"name": "f"}})
    );
    assert_eq!(v["parallel_tool_calls"], false);
}

/// What Claude Code sends, in the shape it sends it (tests/clients/ has whole captures).
fn claude_code_like() -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": true,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "list files"}]},
            {"role": "system", "content": "Reminder: be brief."},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hm", "signature": "sig"},
                {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                "content": "denied", "is_error": true}]}],
        "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object"},
            "eager_input_streaming": true}],
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "output_config": {"effort": "medium"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": "u1"}})
}

#[test]
fn claude_code_requests_translate_with_hints_dropped_and_named() {
    let t = to_chat(&bytes_of(&claude_code_like()), &OPTS).unwrap();
    let v = value_of(&t.body);
    // The system message stays in place; effort wins over the thinking budget.
    assert_eq!(
        v["messages"][2],
        json!({"role": "system", "content": "Reminder: be brief."})
    );
    assert_eq!(v["reasoning_effort"], "medium");
    assert_eq!(v["tools"][0]["function"]["name"], "Bash");
    assert!(v["tools"][0].get("eager_input_streaming").is_none());
    // `is_error` has no chat field: named when the chat request is final.
    assert!(v["messages"][4].get("is_error").is_none());
    assert_eq!(
        t.dropped,
        [
            "context_management",
            "messages[].content[].is_error",
            "tools[].eager_input_streaming"
        ]
    );
}

#[test]
fn the_pivot_carries_top_k_and_is_error_to_the_next_hop() {
    let mut body = claude_code_like();
    body["top_k"] = json!(20);
    let f = crate::formats::fields::Fields::default();
    let t = super::to_chat(&bytes_of(&body), &OPTS, &f, true).unwrap();
    let v = value_of(&t.body);
    assert_eq!(v["top_k"], 20);
    assert_eq!(v["messages"][4]["is_error"], true);
    // For an OpenAI-style backend `top_k` is beyond the target: refused, or dropped on request.
    let e = to_chat(&bytes_of(&body), &OPTS).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("top_k"));
    let t = to_chat(&bytes_of(&body), &LENIENT).unwrap();
    assert!(t.dropped.contains(&"top_k".to_string()));
}

#[test]
fn cache_marks_reach_the_pivot_only_for_cache_points() {
    let ant = br#"{"model":"m","max_tokens":9,"system":[{"type":"text","text":"S","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":[{"type":"text","text":"Q","cache_control":{"type":"ephemeral"}}]}]}"#;
    let pivot = |cache_points| {
        let opts = RequestOptions {
            cache_points,
            ..OPTS
        };
        let chat = super::to_chat(ant, &opts, &Fields::default(), true).unwrap();
        String::from_utf8(chat.body).unwrap()
    };
    assert!(pivot(true).contains("cache_control"));
    assert!(!pivot(false).contains("cache_control"));
}

#[test]
fn output_effort_levels_map_onto_reasoning_effort() {
    for (effort, want) in [("low", "low"), ("high", "high"), ("max", "high")] {
        let mut body = claude_code_like();
        body["output_config"] = json!({"effort": effort});
        body.as_object_mut().unwrap().remove("thinking");
        let t = to_chat(&bytes_of(&body), &OPTS).unwrap();
        let v = value_of(&t.body);
        assert_eq!(v["reasoning_effort"], want, "{effort}");
    }
    let mut body = claude_code_like();
    body["thinking"] = json!({"type": "disabled"});
    let t = to_chat(&bytes_of(&body), &OPTS).unwrap();
    let v = value_of(&t.body);
    assert!(v.get("reasoning_effort").is_none());
}
