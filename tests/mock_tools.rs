//! `tollgate mock`'s tool calls on its Anthropic API: the call a user's words name
//! (`mock:call`), arguments that satisfy the schema, and text after tool results (the rules
//! are the same for every API: `src/mock/tools.rs`).

mod common;

use common::*;
use serde_json::{json, Value};

const KEY: &str = "sk-mock";
const ANT: [(&str, &str); 2] = [("x-api-key", KEY), ("anthropic-version", "2023-06-01")];

fn tool(name: &str, schema: Value) -> Value {
    json!({"name": name, "description": name, "input_schema": schema})
}

#[tokio::test]
async fn the_users_words_can_name_the_call() {
    let m = mock("a", &["--expect-key", KEY]);
    let any = json!({"type": "object", "properties": {"command": {"type": "string"}}});
    let read = json!({"type": "object", "properties": {"file_path": {"type": "string"}},
        "required": ["file_path"]});
    let ask = |marker: &str| {
        json!({"model": "claude-x", "max_tokens": 64,
            "tools": [tool("Bash", any.clone()), tool("mcp__notes__Read", read.clone())],
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>context</system-reminder>"},
                {"type": "text", "text": format!("Read it. {marker}")}]}]})
    };
    let v: Value = post_json(
        &m,
        "/v1/messages",
        &ANT,
        &ask(r#"mock:call Read {"file_path": "/tmp/a b.txt"}"#),
    )
    .await
    .json()
    .await
    .unwrap();
    let calls: Vec<&Value> = (v["content"].as_array().unwrap().iter())
        .filter(|b| b["type"] == "tool_use")
        .collect();
    assert_eq!(calls.len(), 1, "{v}");
    assert_eq!(
        calls[0]["name"], "mcp__notes__Read",
        "a namespaced tool matches its last name"
    );
    assert_eq!(calls[0]["input"], json!({"file_path": "/tmp/a b.txt"}));
    // A tool that is not offered: no call at all, never the first tool instead.
    let v: Value = post_json(
        &m,
        "/v1/messages",
        &ANT,
        &ask(r#"mock:call Write {"x": 1}"#),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["stop_reason"], "end_turn", "{v}");
}

#[tokio::test]
async fn tool_arguments_satisfy_the_schema() {
    let m = mock("a", &["--expect-key", KEY]);
    let schema = json!({"type": "object", "required": ["unit", "days", "tags", "where", "exact"],
        "properties": {
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "ratio": {"type": "number", "maximum": 1},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "where": {"type": "object", "properties": {
                "city": {"type": "string", "minLength": 12},
                "zip": {"type": ["integer", "null"]}}},
            "exact": {"const": "yes"},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "boolean"}]}}});
    let body = json!({"model": "claude-x", "max_tokens": 64, "tools": [tool("weather", schema)],
        "messages": [{"role": "user", "content": "Weather?"}]});
    let v: Value = post_json(&m, "/v1/messages", &ANT, &body)
        .await
        .json()
        .await
        .unwrap();
    let call = (v["content"].as_array().unwrap().iter())
        .find(|b| b["type"] == "tool_use")
        .unwrap_or_else(|| panic!("{v}"));
    let a = &call["input"];
    assert!(
        ["celsius", "fahrenheit"].contains(&a["unit"].as_str().unwrap()),
        "{a}"
    );
    assert_eq!(a["days"], 7, "{a}");
    assert!(a["ratio"].as_f64().unwrap() <= 1.0, "{a}");
    let tags = a["tags"].as_array().unwrap();
    assert!(tags.len() >= 2 && tags.iter().all(Value::is_string), "{a}");
    assert!(a["where"]["city"].as_str().unwrap().len() >= 12, "{a}");
    assert!(a["where"]["zip"].is_i64(), "{a}");
    assert_eq!(
        (&a["exact"], &a["maybe"]),
        (&json!("yes"), &json!(true)),
        "{a}"
    );
}

#[tokio::test]
async fn tool_results_followed_by_text_are_answered_with_text() {
    let m = mock("a", &["--expect-key", KEY]);
    let schema = json!({"type": "object", "properties": {"q": {"type": "string"}}});
    let body = json!({"model": "claude-x", "max_tokens": 64, "tools": [tool("find", schema)],
        "messages": [
            {"role": "user", "content": "Find it"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "find", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "found"},
                {"type": "text", "text": "<system-reminder>keep going</system-reminder>"}]}]});
    let v: Value = post_json(&m, "/v1/messages", &ANT, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["stop_reason"], "end_turn", "{v}");
}
