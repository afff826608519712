//! The second hop reads the pivot as it is (`Pivot::request`): the same requests, the same
//! fields dropped and the same refusals as when it wrote the chat request and parsed it back.

use super::*;
use crate::formats::test_support::{DROP_PARAMS, OPTS};
use serde_json::{json, Value};

/// The hop as it was: the chat request written, then translated as an OpenAI client's.
fn through_text(from: Format, to: Format, body: &[u8], opts: &RequestOptions) -> Outcome {
    let f = Fields::new(opts.fields);
    let r = match from {
        Format::Anthropic => anthropic::to_chat::to_pivot(body, opts, &f, true)
            .and_then(Pivot::write)
            .and_then(|chat| translate(Format::OpenAi, to, &chat.body, opts, &f)),
        _ => responses::to_chat::to_pivot(body, opts, &f).and_then(|(chat, names)| {
            let chat = chat.write()?;
            let mut t = translate(Format::OpenAi, to, &chat.body, opts, &f)
                .map_err(responses::to_chat::in_responses_terms)?;
            t.tool_names = names;
            Ok(t)
        }),
    };
    outcome(r.map(|mut t| {
        t.dropped = f.take();
        t
    }))
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Sent(Value, bool, bool, Vec<String>, bool),
    Refused(u16, Option<String>),
}

fn outcome(r: Result<Translated, ApiError>) -> Outcome {
    match r {
        Ok(t) => Outcome::Sent(
            serde_json::from_slice(&t.body).unwrap(),
            t.stream,
            t.include_usage,
            t.dropped,
            t.tool_names.is_some(),
        ),
        Err(e) => Outcome::Refused(e.status, e.param.map(|p| p.into_owned())),
    }
}

fn same(from: Format, body: Value) {
    let body = serde_json::to_vec(&body).unwrap();
    let lenient = RequestOptions {
        fields: DROP_PARAMS,
        cache_points: true,
        ..OPTS
    };
    for opts in [OPTS, lenient] {
        for to in [Format::Anthropic, Format::Bedrock, Format::Gemini] {
            if from == Format::Anthropic && to == Format::Anthropic {
                continue;
            }
            let now = outcome(translate_request(from, to, &body, &opts));
            let before = through_text(from, to, &body, &opts);
            assert_eq!(
                now,
                before,
                "{from:?} -> {to:?}: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
}

#[test]
fn responses_requests_reach_every_target_as_before() {
    let tool = json!({"type": "function", "name": "get", "description": "d",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}});
    for body in [
        json!({"model": "x", "input": "hi \"there\"\n\u{e9}"}),
        json!({"model": "x", "instructions": "be brief", "input": "hi", "stream": true,
            "temperature": 0.7, "top_p": 0.95, "max_output_tokens": 300, "user": "u"}),
        json!({"model": "x", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "what?"},
                {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}]},
            {"type": "function_call", "call_id": "c1", "name": "get", "arguments": "{\"q\":1}"},
            {"type": "function_call_output", "call_id": "c1", "output": "42"},
            {"type": "reasoning", "summary": []},
            {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}],
            "tools": [tool.clone()], "tool_choice": "required", "parallel_tool_calls": false}),
        json!({"model": "x", "input": "x", "tools": [{"type": "namespace", "name": "mcp__fs__",
            "tools": [tool.clone()]}], "tool_choice": {"type": "function", "name": "get"}}),
        json!({"model": "x", "input": "x", "reasoning": {"effort": "high"},
            "max_output_tokens": 5000, "text": {"format": {"type": "json_schema", "name": "s",
            "schema": {"type": "object"}}, "verbosity": "low"}}),
        json!({"model": "x", "input": "x", "metadata": {"a": "b"}, "store": false,
            "client_metadata": {"s": 1}, "max_tool_calls": 2, "frobnicate": true}),
        json!({"model": "x", "input": "x", "text": {"format": {"type": "json_object"}}}),
        json!({"model": "x", "input": [{"role": "system", "content": "only a system"}]}),
        json!({"model": "x", "input": "x", "temperature": 1.5, "top_logprobs": 2}),
        json!({"model": "x", "input": [{"role": "user", "content": 7}]}),
    ] {
        same(Format::Responses, body);
    }
}

#[test]
fn anthropic_requests_reach_bedrock_and_gemini_as_before() {
    let tool = json!({"name": "get", "description": "d", "input_schema": {"type": "object"},
        "cache_control": {"type": "ephemeral"}});
    for body in [
        json!({"model": "x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}),
        json!({"model": "x", "max_tokens": 2000, "stream": true, "temperature": 0.3,
            "top_k": 5, "stop_sequences": ["END"], "metadata": {"user_id": "u"},
            "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": [{"type": "text", "text": "q"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                 "data": "iVBORw0KGgo="}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hm", "signature": "sig"},
                {"type": "tool_use", "id": "t1", "name": "get", "input": {"q": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                "content": "42"}]}],
            "tools": [tool], "tool_choice": {"type": "any"}}),
        json!({"model": "x", "max_tokens": 10, "messages": []}),
        json!({"model": "x", "max_tokens": 10, "service_tier": "auto", "container": "c",
            "messages": [{"role": "user", "content": "hi"}]}),
    ] {
        same(Format::Anthropic, body);
    }
}
