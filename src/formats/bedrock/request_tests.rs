//! Thinking history on the way to Converse: an Anthropic client's signed thinking kept in its
//! place, and thinking turned off for a history Claude would refuse with it on.
use crate::error::ApiError;
use crate::formats::test_support::{self, bytes_of, value_of};
use crate::formats::{translate_request, Format, RequestOptions};
use serde_json::{json, Value};

const OPTS: RequestOptions<'static> = RequestOptions {
    model: "anthropic.claude-sonnet-4",
    cache_points: true,
    ..test_support::OPTS
};

/// `(Converse body, the fields named as dropped)`.
fn translate(from: Format, to: Format, body: &Value) -> Result<(Value, Vec<String>), ApiError> {
    let t = translate_request(from, to, &bytes_of(body), &OPTS)?;
    Ok((value_of(&t.body), t.dropped))
}

fn from_anthropic(body: &Value) -> (Value, Vec<String>) {
    translate(Format::Anthropic, Format::Bedrock, body).unwrap()
}

fn from_chat(body: &Value) -> (Value, Vec<String>) {
    translate(Format::OpenAi, Format::Bedrock, body).unwrap()
}

const THINKING: &str =
    r#"{"type": "thinking", "thinking": "Check the weather.", "signature": "c2ln"}"#;
const REDACTED: &str = r#"{"type": "redacted_thinking", "data": "cmVk"}"#;

fn block(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

/// A Claude Code-like tool loop: the assistant turn's thinking, text and tool use, then the
/// tool's result; `lead` is what the client kept of the thinking.
fn anthropic_loop(lead: Vec<Value>, thinking: bool) -> Value {
    let mut content = lead;
    content.push(json!({"type": "text", "text": "Let me look."}));
    content.push(
        json!({"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Paris"}}),
    );
    let mut body = json!({"model": "m", "max_tokens": 8000,
        "tools": [{"name": "weather", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "18C"}]}]});
    if thinking {
        body["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    }
    body
}

#[test]
fn anthropic_thinking_reaches_converse_before_text_and_tool_use() {
    let (v, dropped) = from_anthropic(&anthropic_loop(
        vec![block(THINKING), block(REDACTED)],
        true,
    ));
    assert_eq!(
        v["messages"][1]["content"],
        json!([
            {"reasoningContent": {"reasoningText": {"text": "Check the weather.", "signature": "c2ln"}}},
            {"reasoningContent": {"redactedContent": "cmVk"}},
            {"text": "Let me look."},
            {"toolUse": {"toolUseId": "t1", "name": "weather", "input": {"city": "Paris"}}}])
    );
    assert_eq!(
        v["additionalModelRequestFields"]["thinking"]["type"],
        "enabled"
    );
    assert!(dropped.is_empty(), "{dropped:?}");
}

#[test]
fn a_tool_loop_without_thinking_turns_thinking_off() {
    let (v, dropped) = from_anthropic(&anthropic_loop(vec![], true));
    assert!(v.get("additionalModelRequestFields").is_none(), "{v}");
    assert_eq!(dropped, ["reasoning_effort"]);
    // An unsigned thinking block (another provider's, through Tollgate) cannot be sent back.
    let unsigned = json!({"type": "thinking", "thinking": "x", "signature": ""});
    let (v, dropped) = from_anthropic(&anthropic_loop(vec![unsigned], true));
    assert!(v.get("additionalModelRequestFields").is_none(), "{v}");
    assert_eq!(
        v["messages"][1]["content"][0],
        json!({"text": "Let me look."})
    );
    assert_eq!(dropped, ["reasoning_effort"]);
}

#[test]
fn with_thinking_off_earlier_reasoning_is_left_out() {
    let (v, dropped) = from_anthropic(&anthropic_loop(vec![block(THINKING)], false));
    assert!(!v.to_string().contains("reasoningContent"), "{v}");
    assert!(dropped.is_empty(), "{dropped:?}");
    // A turn of nothing but reasoning goes, and the user turns around it are merged.
    let body = json!({"model": "m", "max_tokens": 100, "messages": [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": [block(THINKING)]},
        {"role": "user", "content": "b"}]});
    let (v, _) = from_anthropic(&body);
    assert_eq!(
        v["messages"],
        json!([{"role": "user", "content": [{"text": "a"}, {"text": "b"}]}])
    );
}

#[test]
fn thinking_stays_on_when_the_turn_started_with_it() {
    // Without interleaved thinking Claude thinks once per turn: the loop's later tool uses have
    // no thinking of their own.
    let mut body = anthropic_loop(vec![block(THINKING)], true);
    let msgs = body["messages"].as_array_mut().unwrap();
    msgs.push(json!({"role": "assistant", "content": [
        {"type": "tool_use", "id": "t2", "name": "weather", "input": {"city": "Rome"}}]}));
    msgs.push(json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t2", "content": "20C"}]}));
    let (v, dropped) = from_anthropic(&body);
    assert!(
        v["additionalModelRequestFields"]["thinking"].is_object(),
        "{v}"
    );
    assert!(dropped.is_empty(), "{dropped:?}");
    // A finished turn needs no thinking: a new question starts a new turn.
    let mut body = anthropic_loop(vec![], true);
    let msgs = body["messages"].as_array_mut().unwrap();
    msgs.push(json!({"role": "assistant", "content": "18C in Paris."}));
    msgs.push(json!({"role": "user", "content": "And Rome?"}));
    let (v, dropped) = from_anthropic(&body);
    assert!(
        v["additionalModelRequestFields"]["thinking"].is_object(),
        "{v}"
    );
    assert!(dropped.is_empty(), "{dropped:?}");
}

#[test]
fn thinking_blocks_never_reach_other_backends() {
    let body = anthropic_loop(vec![block(THINKING), block(REDACTED)], true);
    let (v, dropped) = translate(Format::Anthropic, Format::OpenAi, &body).unwrap();
    assert!(v["messages"][1].get("thinking_blocks").is_none(), "{v}");
    assert!(dropped.is_empty(), "{dropped:?}");
    let (v, dropped) = translate(Format::Anthropic, Format::Gemini, &body).unwrap();
    assert!(!v.to_string().contains("c2ln"), "{v}");
    assert!(dropped.is_empty(), "{dropped:?}");
}

/// An OpenAI chat tool loop asking for reasoning.
fn chat_loop(last: Value) -> Value {
    json!({"model": "m", "reasoning_effort": "low",
        "tools": [{"type": "function", "function": {"name": "w"}}],
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
            last]})
}

#[test]
fn chat_histories_follow_the_same_rule() {
    let (v, dropped) = from_chat(&chat_loop(
        json!({"role": "tool", "tool_call_id": "a", "content": "18C"}),
    ));
    assert!(v.get("additionalModelRequestFields").is_none(), "{v}");
    assert_eq!(dropped, ["reasoning_effort"]);
    let mut finished = chat_loop(json!({"role": "tool", "tool_call_id": "a", "content": "18C"}));
    let msgs = finished["messages"].as_array_mut().unwrap();
    msgs.push(json!({"role": "assistant", "content": "18C."}));
    msgs.push(json!({"role": "user", "content": "Thanks"}));
    let (v, dropped) = from_chat(&finished);
    assert!(
        v["additionalModelRequestFields"]["thinking"].is_object(),
        "{v}"
    );
    assert!(dropped.is_empty(), "{dropped:?}");
}

#[test]
fn thinking_blocks_of_another_shape_are_named() {
    let mut body = chat_loop(json!({"role": "tool", "tool_call_id": "a", "content": "18C"}));
    body["messages"][1]["thinking_blocks"] =
        json!([{"type": "thought", "text": "x"}, block(THINKING)]);
    let (v, dropped) = from_chat(&body);
    assert_eq!(dropped, ["messages[].thinking_blocks[]"]);
    // The signed one is kept, so thinking stays on.
    assert!(
        v["additionalModelRequestFields"]["thinking"].is_object(),
        "{v}"
    );
    assert!(v["messages"][1]["content"][0]["reasoningContent"].is_object());
}
