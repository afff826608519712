//! Namespaced tool names named back in replies and streams, through the stream translator.
use super::*;
use crate::formats::{translate_response, Format, ReplyContext};
use crate::stream::Translator;
use bytes::BytesMut;
use std::sync::Arc;

fn names() -> Arc<ToolNames> {
    let mut n = ToolNames::default();
    n.add("mcp__fs__", "read", &[]);
    Arc::new(n)
}

#[test]
fn calls_of_flattened_tools_carry_their_namespace_in_replies_and_streams() {
    let names = names();
    let ctx = ReplyContext {
        client_model: "m",
        created: 1,
        tool_names: Some(&names),
    };
    let chat = br#"{"id":"c","choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"mcp__fs__read","arguments":"{}"}},{"id":"call_2","type":"function","function":{"name":"shell","arguments":"{}"}}]}}]}"#;
    let (out, _) = translate_response(Format::OpenAi, Format::Responses, chat, &ctx).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["output"][0]["name"], "read");
    assert_eq!(v["output"][0]["namespace"], "mcp__fs__");
    assert_eq!(v["output"][1]["name"], "shell");
    assert!(v["output"][1].get("namespace").is_none());

    let sse = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"mcp__fs__read\",\"arguments\":\"{}\"}}]}}]}\n\ndata: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n";
    let mut t = Translator::new(Format::OpenAi, Format::Responses, &ctx, false);
    let mut out = BytesMut::new();
    t.push(sse.as_bytes(), &mut out).unwrap();
    t.finish(&mut out).unwrap();
    let text = String::from_utf8(out.to_vec()).unwrap();
    let done = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .find(|e| e["type"] == "response.output_item.done")
        .expect("an item done event");
    assert_eq!(done["item"]["name"], "read");
    assert_eq!(done["item"]["namespace"], "mcp__fs__");
}
