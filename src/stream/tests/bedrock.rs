//! ConverseStream (binary frames) → each client API: ids, reasoning with its signature.

use super::{anthropic_events, openai_chunks, run_raw};
use crate::formats::Format;
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use serde_json::Value;

fn frame(out: &mut Vec<u8>, kind: &'static str, payload: &str) {
    let m = Message::new(payload.as_bytes().to_vec())
        .add_header(Header::new(":event-type", HeaderValue::String(kind.into())))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ));
    write_message_to(&m, out).unwrap();
}

/// A text reply, as Bedrock streams it (no id anywhere).
pub(super) fn text_stream() -> Vec<u8> {
    let mut b = Vec::new();
    frame(&mut b, "messageStart", r#"{"role":"assistant"}"#);
    frame(
        &mut b,
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#,
    );
    frame(&mut b, "contentBlockStop", r#"{"contentBlockIndex":0}"#);
    frame(&mut b, "messageStop", r#"{"stopReason":"end_turn"}"#);
    frame(
        &mut b,
        "metadata",
        r#"{"usage":{"inputTokens":8,"outputTokens":2,"totalTokens":10},"metrics":{"latencyMs":1}}"#,
    );
    b
}

fn translate(to: Format, input: &[u8]) -> String {
    let (out, ok) = run_raw(Format::Bedrock, to, &[input], true);
    assert!(ok, "{out}");
    out
}

/// The reply id each client API sees.
fn reply_id(to: Format, out: &str) -> String {
    let v: Value = match to {
        Format::OpenAi => openai_chunks(out)[0]["id"].clone(),
        Format::Anthropic => anthropic_events(out)[0].1["message"]["id"].clone(),
        _ => {
            let data = out.split("data: ").nth(1).unwrap();
            let v: Value = serde_json::from_str(data.lines().next().unwrap()).unwrap();
            v["response"]["id"].clone()
        }
    };
    v.as_str().unwrap().to_string()
}

#[test]
fn every_stream_gets_its_own_id() {
    let input = text_stream();
    for (to, prefix) in [
        (Format::OpenAi, "chatcmpl-"),
        (Format::Anthropic, "msg_"),
        (Format::Responses, "resp_"),
    ] {
        let a = reply_id(to, &translate(to, &input));
        let b = reply_id(to, &translate(to, &input));
        assert!(a.starts_with(prefix), "{a}");
        assert!(!a.contains("tollgate"), "{a}");
        assert_eq!(a.len(), prefix.len() + 32, "{a}");
        assert_ne!(a, b, "{to:?}");
    }
    // One id for all of a stream's chunks.
    let chunks = openai_chunks(&translate(Format::OpenAi, &input));
    let ids: Vec<&Value> = chunks.iter().filter_map(|c| c.get("id")).collect();
    assert!(ids.len() > 2 && ids.iter().all(|i| *i == ids[0]));
}

/// Reasoning with its signature, a redacted block, then text, as ConverseStream sends them.
pub(super) fn reasoning_stream() -> Vec<u8> {
    let mut b = Vec::new();
    frame(&mut b, "messageStart", r#"{"role":"assistant"}"#);
    for delta in [
        r#"{"text":"Let me "}"#,
        r#"{"text":"think."}"#,
        r#"{"signature":"EqQBsig=="}"#,
    ] {
        let ev = format!(r#"{{"contentBlockIndex":0,"delta":{{"reasoningContent":{delta}}}}}"#);
        frame(&mut b, "contentBlockDelta", &ev);
    }
    frame(&mut b, "contentBlockStop", r#"{"contentBlockIndex":0}"#);
    frame(
        &mut b,
        "contentBlockDelta",
        r#"{"contentBlockIndex":1,"delta":{"reasoningContent":{"redactedContent":"cmVkYWN0ZWQ="}}}"#,
    );
    frame(&mut b, "contentBlockStop", r#"{"contentBlockIndex":1}"#);
    frame(
        &mut b,
        "contentBlockDelta",
        r#"{"contentBlockIndex":2,"delta":{"text":"Done."}}"#,
    );
    frame(&mut b, "contentBlockStop", r#"{"contentBlockIndex":2}"#);
    frame(&mut b, "messageStop", r#"{"stopReason":"end_turn"}"#);
    b
}

#[test]
fn reasoning_reaches_anthropic_clients_as_signed_thinking() {
    let input = reasoning_stream();
    let out = translate(Format::Anthropic, &input);
    let evs = anthropic_events(&out);
    let blocks: Vec<(&str, String)> = evs
        .iter()
        .filter(|(n, _)| n.starts_with("content_block"))
        .map(|(n, v)| {
            let what = match n.as_str() {
                "content_block_start" => v["content_block"]["type"].as_str().unwrap(),
                "content_block_delta" => v["delta"]["type"].as_str().unwrap(),
                _ => "stop",
            };
            (what, v["index"].to_string())
        })
        .collect();
    let want = [
        ("thinking", "0"),
        ("thinking_delta", "0"),
        ("thinking_delta", "0"),
        ("signature_delta", "0"),
        ("stop", "0"),
        ("redacted_thinking", "1"),
        ("stop", "1"),
        ("text", "2"),
        ("text_delta", "2"),
        ("stop", "2"),
    ];
    let want: Vec<(&str, String)> = want.iter().map(|(a, b)| (*a, b.to_string())).collect();
    assert_eq!(blocks, want, "{out}");
    let sig = evs
        .iter()
        .find(|(_, v)| v["delta"]["type"] == "signature_delta");
    assert_eq!(sig.unwrap().1["delta"]["signature"], "EqQBsig==");
    let redacted = evs
        .iter()
        .find(|(_, v)| v["content_block"]["type"] == "redacted_thinking");
    assert_eq!(redacted.unwrap().1["content_block"]["data"], "cmVkYWN0ZWQ=");
}

#[test]
fn reasoning_reaches_openai_clients_without_signatures() {
    let out = translate(Format::OpenAi, &reasoning_stream());
    let chunks = openai_chunks(&out);
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, "Let me think.");
    assert!(!out.contains("EqQBsig") && !out.contains("cmVk"), "{out}");
}
