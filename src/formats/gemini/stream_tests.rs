//! The Gemini stream decoder over a recorded-shape stream with CRLF framing, split at every
//! byte, and over arbitrary bytes.
use super::*;
use crate::formats::framing::sse::SseDecoder;

const STREAM: &str = include_str!("../../../tests/fixtures/streams/gemini_thinking_tools.sse");

/// A delta as text, to compare sequences (deltas borrow from the event being decoded).
fn show(d: &Delta<'_>) -> String {
    match d {
        Delta::Start { id } => format!("start {id}"),
        Delta::Text(t) => format!("text {}", t.literal()),
        Delta::Reasoning(t) => format!("reasoning {}", t.literal()),
        Delta::ReasoningSignature(t) => format!("signature {}", t.literal()),
        Delta::RedactedReasoning(t) => format!("redacted {}", t.literal()),
        Delta::ToolCall { index, id, name } => {
            format!("call {index} {} {}", id.literal(), name.literal())
        }
        Delta::ToolArgs { index, json } => format!("args {index} {}", json.literal()),
        Delta::Finish(r) => format!("finish {r:?}"),
        Delta::Usage(u) => format!(
            "usage in={} cached={} out={} reasoning={}",
            u.input, u.cached_input, u.output, u.reasoning
        ),
        Delta::Error(e) => format!("error {} {}", e.status, e.message),
        Delta::Done => "done".into(),
    }
}

/// Feeds `pieces` through the SSE decoder and the chunk decoder, then ends the body.
fn run(pieces: &[&[u8]]) -> Result<Vec<String>, ApiError> {
    let mut sse = SseDecoder::default();
    let mut dec = ChunkDecoder::default();
    let mut out = Vec::new();
    for p in pieces {
        sse.push(p, |ev| {
            dec.event(ev.data, &mut |d: Delta<'_>| out.push(show(&d)))
        })?;
    }
    dec.end(&mut |d: Delta<'_>| out.push(show(&d)));
    Ok(out)
}

#[test]
fn recorded_stream_decodes_the_same_however_split() {
    assert!(STREAM.contains("\r\n\r\n"), "Gemini frames with CRLF");
    let b = STREAM.as_bytes();
    let whole = run(&[b]).unwrap();
    let id0 = wire::tool_call_id(
        "xGwBacnqNab8xN8PqJmH6Ag",
        0,
        "get_weather",
        r#"{"city":"Paris"}"#,
        Some("CiQBEU0yD7pXvs4wv+3ZLLv0dNW12KR/AbC="),
    );
    let id1 = wire::tool_call_id(
        "xGwBacnqNab8xN8PqJmH6Ag",
        1,
        "get_weather",
        r#"{"city":"Z\u00fcrich","units":["c"]}"#,
        None,
    );
    let usage_first = "usage in=1210 cached=1024 out=88 reasoning=88";
    let usage_last = "usage in=1210 cached=1024 out=129 reasoning=88";
    // Each chunk's usage comes before its parts (an Anthropic client's `message_start` then
    // has the prompt tokens).
    let want = vec![
        "start xGwBacnqNab8xN8PqJmH6Ag".to_string(),
        usage_first.into(),
        r#"reasoning "**Checking the weather**\n\nThe user wants Paris and Z\u00fcrich.""#.into(),
        "usage in=1210 cached=1024 out=93 reasoning=88".into(),
        r#"text "Checking \"both\" cities""#.into(),
        usage_last.into(),
        r#"text ".\n""#.into(),
        format!("call 0 \"{id0}\" \"get_weather\""),
        r#"args 0 "{\"city\":\"Paris\"}""#.into(),
        format!("call 1 \"{id1}\" \"get_weather\""),
        r#"args 1 "{\"city\":\"Z\\u00fcrich\",\"units\":[\"c\"]}""#.into(),
        "finish ToolCalls".into(),
        usage_last.into(),
        "done".into(),
    ];
    assert_eq!(whole, want);
    assert_eq!(
        wire::signature_of(&id0).as_deref(),
        Some("CiQBEU0yD7pXvs4wv+3ZLLv0dNW12KR/AbC=")
    );
    for i in 0..=b.len() {
        assert_eq!(run(&[&b[..i], &b[i..]]).unwrap(), whole, "split at {i}");
    }
    let bytes: Vec<&[u8]> = b.chunks(1).collect();
    assert_eq!(run(&bytes).unwrap(), whole);
}

#[test]
fn a_stream_without_a_finish_ends_with_nothing() {
    let cut = STREAM.split("\r\n\r\n").next().unwrap().to_string() + "\r\n\r\n";
    let out = run(&[cut.as_bytes()]).unwrap();
    assert_eq!(out[1], "usage in=1210 cached=1024 out=88 reasoning=88");
    assert!(out.last().unwrap().starts_with("reasoning"), "{out:?}");
    assert!(!out.iter().any(|d| d == "done"));
}

#[test]
fn errors_blocks_and_length() {
    let body = "data: {\"error\": {\"code\": 503,\"message\": \"The model is overloaded.\",\"status\": \"UNAVAILABLE\"}}\r\n\r\n";
    assert_eq!(
        run(&[body.as_bytes()]).unwrap(),
        ["error 503 The model is overloaded."]
    );
    let body = "data: {\"promptFeedback\": {\"blockReason\": \"SAFETY\"},\"usageMetadata\": {\"promptTokenCount\": 7,\"totalTokenCount\": 7}}\r\n\r\n";
    let out = run(&[body.as_bytes()]).unwrap();
    // No `responseId`: a fresh one, not one shared by every reply.
    let fresh = out[0].strip_prefix("start ").unwrap();
    assert_eq!(fresh.len(), 32, "{out:?}");
    assert_ne!(run(&[body.as_bytes()]).unwrap()[0], out[0]);
    assert_eq!(
        &out[2..],
        [
            "finish ContentFilter",
            "usage in=7 cached=0 out=0 reasoning=0",
            "done"
        ]
    );
    let body = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"a\"}],\"role\": \"model\"},\"finishReason\": \"MAX_TOKENS\",\"index\": 0}]}\r\n\r\n";
    let out = run(&[body.as_bytes()]).unwrap();
    assert_eq!(&out[1..], ["text \"a\"", "finish Length", "done"]);
    assert!(run(&[b"data: not json\r\n\r\n"]).is_err());
    assert!(run(&[b"data: {\"candidates\": [{\"content\": {\"parts\": 7}}]}\n\n"]).is_err());
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..2048), cut in 0usize..2048) {
            let cut = cut.min(input.len());
            let _ = run(&[&input[..cut], &input[cut..]]);
            let mut dec = ChunkDecoder::default();
            let _ = dec.event(&input, &mut |_| {});
            dec.end(&mut |_| {});
        }

        #[test]
        fn mangled_stream_never_panics(cut in 0usize..1500, byte in any::<u8>()) {
            let mut b = STREAM.as_bytes().to_vec();
            let at = cut.min(b.len() - 1);
            b[at] = byte;
            let _ = run(&[&b]);
        }
    }
}
