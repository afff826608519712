//! Unit tests of the chat → Gemini request translator (the golden files cover whole requests).
use super::*;
use crate::formats::gemini::wire;
use crate::formats::test_support::{bytes_of, refused_param, user, value_of, with_fields, OPTS};
use serde_json::json;

/// The translator with its own field list, as `translate_request` runs it.
fn from_chat(body: &[u8], opts: &RequestOptions<'_>) -> Result<Translated, ApiError> {
    with_fields(opts, |f| {
        super::from_chat(crate::formats::pivot::parse(body)?, opts, f)
    })
}

fn gemini(body: Value) -> Value {
    value_of(&from_chat(&bytes_of(&body), &OPTS).unwrap().body)
}

fn param_of(body: Value) -> String {
    refused_param(from_chat(&bytes_of(&body), &OPTS))
}

#[test]
fn inexpressible_fields_are_named() {
    for (extra, param) in [
        (json!({"n": 2}), "n"),
        (json!({"logprobs": true}), "logprobs"),
        (json!({"seed": 1u64 << 40}), "seed"),
        (json!({"audio": {"voice": "x"}}), "audio"),
        (
            json!({"response_format": {"type": "xml"}}),
            "response_format.type",
        ),
        (json!({"reasoning_effort": "extreme"}), "reasoning_effort"),
        (
            json!({"tool_choice": "sometimes", "tools": [
            {"type": "function", "function": {"name": "f"}}]}),
            "tool_choice",
        ),
        (
            json!({"tools": [{"type": "custom", "custom": {"name": "x"}}]}),
            "tools[0].type",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url",
                "image_url": {"url": "ftp://x/y.png"}}]}]}),
            "messages[0].content[0].image_url.url",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "file",
                "file": {"file_id": "file-1"}}]}]}),
            "messages[0].content[0].file.file_id",
        ),
        (
            json!({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "1"}]}),
            "messages[0].tool_call_id",
        ),
        (
            json!({"messages": [{"role": "system", "content": "x"}]}),
            "messages",
        ),
    ] {
        assert_eq!(param_of(user(extra.clone())), param, "{extra}");
    }
}

#[test]
fn mapped_and_neutral_fields() {
    let v = gemini(user(
        json!({"seed": -7, "presence_penalty": 0.5, "frequency_penalty": 0,
        "n": 1, "logprobs": false, "store": true, "user": "u", "parallel_tool_calls": false,
        "temperature": 1.5, "stream": true}),
    ));
    assert_eq!(
        v["generationConfig"],
        json!({"seed": -7, "presencePenalty": 0.5, "temperature": 1.5})
    );
    assert!(v.get("model").is_none() && v.get("stream").is_none());
    let streaming = user(json!({"stream": true, "stream_options": {"include_usage": true}}));
    let t = from_chat(&bytes_of(&streaming), &OPTS).unwrap();
    assert!(t.stream && t.include_usage);
    // No generation settings at all: no generationConfig.
    assert!(gemini(user(json!({}))).get("generationConfig").is_none());
}

#[test]
fn json_object_and_no_thinking() {
    let v = gemini(user(json!({"response_format": {"type": "json_object"},
        "reasoning_effort": "none", "tool_choice": "auto"})));
    assert_eq!(
        v["generationConfig"],
        json!({"responseMimeType": "application/json", "thinkingConfig": {"thinkingBudget": 0}})
    );
    // A tool choice without tools is left out.
    assert!(v.get("toolConfig").is_none());
}

#[test]
fn media_parts() {
    let v = gemini(json!({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x.test/a/cat.PNG?s=1"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/photo"}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
        {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
        {"type": "text", "text": ""}]}]}));
    assert_eq!(
        v["contents"],
        json!([{"role": "user", "parts": [
            {"fileData": {"mimeType": "image/png", "fileUri": "https://x.test/a/cat.PNG?s=1"}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/photo"}},
            {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}},
            {"inlineData": {"mimeType": "audio/wav", "data": "UklG"}}]}])
    );
}

#[test]
fn thought_signatures_round_trip_through_tool_call_ids() {
    let id = wire::tool_call_id("r", 0, "f", "{}", Some("c2ln+/w=="));
    let v = gemini(json!({"messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": id, "type": "function", "function": {"name": "f", "arguments": ""}},
            {"id": "call_plain", "type": "function", "function": {"name": "g", "arguments": "{\"a\":[1]}"}}]},
        {"role": "tool", "tool_call_id": "call_plain", "content": "[1,2]"},
        {"role": "tool", "tool_call_id": id, "content": "{\"ok\":true}"}]}));
    assert_eq!(
        v["contents"],
        json!([{"role": "user", "parts": [{"text": "go"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2ln+/w="},
                {"functionCall": {"name": "g", "args": {"a": [1]}}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "g", "response": {"output": "[1,2]"}}},
                {"functionResponse": {"name": "f", "response": {"ok": true}}}]}])
    );
}

#[test]
fn bad_arguments_and_roles() {
    let body = json!({"messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]});
    assert_eq!(
        param_of(body),
        "messages[0].tool_calls[0].function.arguments"
    );
    let body = json!({"messages": [{"role": "robot", "content": "x"}]});
    assert_eq!(param_of(body), "messages[0].role");
    assert!(from_chat(b"{", &OPTS).is_err());
    assert!(from_chat(b"[]", &OPTS).is_err());
}

#[test]
fn top_k_late_system_text_and_tool_errors_reach_gemini() {
    let v = gemini(json!({"top_k": 40, "messages": [
        {"role": "user", "content": "go"},
        {"role": "system", "content": "late system text"},
        {"role": "assistant", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "a", "content": "boom", "is_error": true}]}));
    assert_eq!(v["generationConfig"]["topK"], 40);
    assert_eq!(
        v["systemInstruction"]["parts"][0]["text"],
        "late system text"
    );
    assert_eq!(
        v["contents"][2]["parts"][0]["functionResponse"]["response"],
        json!({"error": "boom"})
    );
}
