use super::*;
use crate::formats::framing::eventstream::FrameDecoder;
use crate::formats::{FinishReason, Usage};
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};

fn frame(out: &mut Vec<u8>, kind: &'static str, payload: &str) {
    let m = Message::new(payload.as_bytes().to_vec())
        .add_header(Header::new(":event-type", HeaderValue::String(kind.into())))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ));
    write_message_to(&m, out).unwrap();
}

fn exception(out: &mut Vec<u8>, kind: &'static str, message: &str) {
    let m = Message::new(format!(r#"{{"message":"{message}"}}"#).into_bytes())
        .add_header(Header::new(
            ":exception-type",
            HeaderValue::String(kind.into()),
        ))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("exception".into()),
        ));
    write_message_to(&m, out).unwrap();
}

/// Reasoning, text, a tool call in two fragments, stop, usage with cache reads; padding (`p`)
/// on some events, as Bedrock adds it.
fn tool_stream() -> Vec<u8> {
    let mut b = Vec::new();
    frame(
        &mut b,
        "messageStart",
        r#"{"p":"abcdefgh","role":"assistant"}"#,
    );
    frame(
        &mut b,
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"Think"}}}"#,
    );
    frame(
        &mut b,
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"signature":"sig=="}}}"#,
    );
    frame(&mut b, "contentBlockStop", r#"{"contentBlockIndex":0}"#);
    frame(
        &mut b,
        "contentBlockDelta",
        r#"{"contentBlockIndex":1,"delta":{"text":"Let me \"check\"."},"p":"xyz"}"#,
    );
    frame(&mut b, "contentBlockStop", r#"{"contentBlockIndex":1}"#);
    frame(
        &mut b,
        "contentBlockStart",
        r#"{"contentBlockIndex":2,"start":{"toolUse":{"toolUseId":"tooluse_1","name":"get_weather"}}}"#,
    );
    frame(
        &mut b,
        "contentBlockDelta",
        r#"{"contentBlockIndex":2,"delta":{"toolUse":{"input":"{\"city\":"}}}"#,
    );
    frame(
        &mut b,
        "contentBlockDelta",
        r#"{"contentBlockIndex":2,"delta":{"toolUse":{"input":"\"Paris\"}"}}}"#,
    );
    frame(&mut b, "contentBlockStop", r#"{"contentBlockIndex":2}"#);
    frame(&mut b, "messageStop", r#"{"stopReason":"tool_use"}"#);
    frame(
        &mut b,
        "metadata",
        r#"{"usage":{"inputTokens":8,"outputTokens":39,"totalTokens":77,"cacheReadInputTokens":30},"metrics":{"latencyMs":1506}}"#,
    );
    b
}

/// Deltas for `pieces`, owned, and whether the stream ended properly.
fn decode(pieces: &[&[u8]]) -> (Vec<String>, bool) {
    let mut frames = FrameDecoder::default();
    let mut dec = EventDecoder::default();
    let mut out = Vec::new();
    let mut emit = |d: Delta<'_>| out.push(format!("{d:?}"));
    for p in pieces {
        if frames.push(p, |f| dec.frame(f, &mut emit)).is_err() {
            return (out, false);
        }
    }
    if !frames.pending() {
        dec.end(&mut emit);
    }
    let done = out.last().is_some_and(|d| d == "Done");
    (out, done)
}

#[test]
fn tool_stream_deltas() {
    let (d, done) = decode(&[&tool_stream()]);
    assert!(done);
    let want = [
        format!("{:?}", Delta::Start { id: "".into() }),
        format!("{:?}", Delta::Reasoning(JsonStr::encode("Think"))),
        format!("{:?}", Delta::ReasoningSignature(JsonStr::encode("sig=="))),
        format!("{:?}", Delta::Text(JsonStr::encode("Let me \"check\"."))),
        format!(
            "{:?}",
            Delta::ToolCall {
                index: 0,
                id: JsonStr::encode("tooluse_1"),
                name: JsonStr::encode("get_weather")
            }
        ),
        format!(
            "{:?}",
            Delta::ToolArgs {
                index: 0,
                json: JsonStr::encode("{\"city\":")
            }
        ),
        format!(
            "{:?}",
            Delta::ToolArgs {
                index: 0,
                json: JsonStr::encode("\"Paris\"}")
            }
        ),
        format!("{:?}", Delta::Finish(FinishReason::ToolCalls)),
        format!(
            "{:?}",
            Delta::Usage(Usage {
                input: 38,
                cached_input: 30,
                cache_creation: 0,
                output: 39,
                reasoning: 0
            })
        ),
        "Done".to_string(),
    ];
    assert_eq!(d, want);
}

#[test]
fn the_same_deltas_at_every_split() {
    let all = tool_stream();
    let (whole, _) = decode(&[&all]);
    for i in 0..=all.len() {
        let (a, b) = all.split_at(i);
        assert_eq!(decode(&[a, b]).0, whole, "split at {i}");
    }
    let bytes: Vec<&[u8]> = all.chunks(1).collect();
    assert_eq!(decode(&bytes).0, whole);
}

#[test]
fn cut_streams_and_missing_metadata() {
    let all = tool_stream();
    // Cut inside a frame, or before the stop: not complete.
    assert!(!decode(&[&all[..all.len() - 5]]).1);
    let mut stopped = Vec::new();
    frame(
        &mut stopped,
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"text":"a"}}"#,
    );
    assert!(!decode(&[&stopped]).1);
    // Stopped without usage: complete.
    frame(&mut stopped, "messageStop", r#"{"stopReason":"end_turn"}"#);
    assert!(decode(&[&stopped]).1);
}

#[test]
fn exceptions_become_errors() {
    let mut b = Vec::new();
    frame(
        &mut b,
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"text":"a"}}"#,
    );
    exception(&mut b, "throttlingException", "Too many requests");
    let (d, done) = decode(&[&b]);
    assert!(!done);
    let last = d.last().unwrap();
    assert!(
        last.contains("Error") && last.contains("429") && last.contains("Too many requests"),
        "{last}"
    );
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data: Vec<u8>) {
        let _ = decode(&[&data]);
    }

    #[test]
    fn arbitrary_payloads_in_valid_frames_never_panic(kind in 0usize..5, payload: String) {
        let kinds = ["messageStart", "contentBlockStart", "contentBlockDelta", "messageStop", "metadata"];
        let mut b = Vec::new();
        frame(&mut b, kinds[kind], &payload);
        let _ = decode(&[&b]);
    }
}

#[test]
fn text_deltas_are_read_against_the_last_one_as_serde_reads_them() {
    let mut b = Vec::new();
    let texts = [
        r#"{"contentBlockIndex":0,"delta":{"text":"Hel"},"p":"abcd"}"#,
        r#"{"contentBlockIndex":0,"delta":{"text":"lo"},"p":"ab"}"#,
        r#"{"contentBlockIndex":0,"delta":{"text":""},"p":""}"#,
        r#"{"contentBlockIndex":0,"delta":{"text":"a"},"p":"abcdefgh"}"#,
        r#"{"contentBlockIndex":0,"delta":{"text":"caf\u00e9 \"q\""},"p":"x"}"#,
        r#"{"contentBlockIndex":0,"delta":{"text":"é"},"p":"x"}"#,
        r#"{"contentBlockIndex":0,"delta":{"text":"no pad"}}"#,
        r#"{"contentBlockIndex":0,"delta":{"text":"again"}}"#,
    ];
    for t in texts {
        frame(&mut b, "contentBlockDelta", t);
    }
    // The same bytes as a frame of another kind: not a text delta.
    frame(&mut b, "contentBlockStop", texts[7]);
    let (got, _) = decode(&[&b]);
    let mut alone = vec![format!("{:?}", Delta::Start { id: "".into() })];
    for t in texts {
        let mut one = Vec::new();
        frame(&mut one, "contentBlockDelta", t);
        alone.extend(decode(&[&one]).0.into_iter().skip(1));
    }
    assert_eq!(got, alone);
    assert_eq!(got.len(), 8, "{got:?}");
}
