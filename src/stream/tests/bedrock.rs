//! ConverseStream (binary frames) → each client API: ids, reasoning with its signature.

use super::{anthropic_events, openai_chunks, run};
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
fn text_stream() -> Vec<u8> {
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
    let (out, ok) = run(Format::Bedrock, to, &[input], true);
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
