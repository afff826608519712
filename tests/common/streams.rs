//! Synthetic upstream streams of a given length, for the translator benchmark and the
//! allocation test: `n` text events framed as Anthropic, OpenAI, Gemini (SSE with CRLF) and
//! Bedrock (binary event-stream frames) send them.

/// An Anthropic Messages stream with `n` text deltas.
pub fn anthropic(n: usize) -> String {
    let mut s = String::from(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n\
         event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
         event: ping\ndata: {\"type\": \"ping\"}\n\n",
    );
    for i in 0..n {
        s += &format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\" word{i}\"}}}}\n\n");
    }
    s += &format!(
        "event: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":0}}\n\n\
         event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"end_turn\",\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":{n}}}}}\n\n\
         event: message_stop\ndata: {{\"type\":\"message_stop\"}}\n\n"
    );
    s
}

/// An OpenAI chat stream with `n` content chunks and a usage chunk.
pub fn openai(n: usize) -> String {
    let head = "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o\",\"system_fingerprint\":\"fp_x\",\"choices\":[";
    let mut s = format!("{head}{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n");
    for i in 0..n {
        s += &format!("{head}{{\"index\":0,\"delta\":{{\"content\":\" word{i}\"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n");
    }
    s += &format!("{head}{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}],\"usage\":null}}\n\n");
    s += &format!("{head}],\"usage\":{{\"prompt_tokens\":25,\"completion_tokens\":{n},\"total_tokens\":{}}}}}\n\ndata: [DONE]\n\n", n + 25);
    s
}

/// A Gemini `streamGenerateContent?alt=sse` stream with `n` text chunks, CRLF-framed as
/// Google sends it; the last chunk carries the finish reason and usage.
#[allow(dead_code)]
pub fn gemini(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s += &format!("data: {{\"candidates\": [{{\"content\": {{\"parts\": [{{\"text\": \" word{i}\"}}],\"role\": \"model\"}},\"index\": 0}}],\"usageMetadata\": {{\"promptTokenCount\": 25,\"totalTokenCount\": 25}},\"modelVersion\": \"gemini-2.0-flash\",\"responseId\": \"bench\"}}\r\n\r\n");
    }
    s += &format!("data: {{\"candidates\": [{{\"content\": {{\"parts\": [{{\"text\": \"\"}}],\"role\": \"model\"}},\"finishReason\": \"STOP\",\"index\": 0}}],\"usageMetadata\": {{\"promptTokenCount\": 25,\"candidatesTokenCount\": {n},\"totalTokenCount\": {}}},\"modelVersion\": \"gemini-2.0-flash\",\"responseId\": \"bench\"}}\r\n\r\n", n + 25);
    s
}

/// A Bedrock ConverseStream body with `n` text deltas: binary frames with valid CRCs.
#[allow(dead_code)]
pub fn bedrock(n: usize) -> Vec<u8> {
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    let mut out = Vec::new();
    let mut frame = |kind: &'static str, payload: String| {
        let m = Message::new(payload.into_bytes())
            .add_header(Header::new(":event-type", HeaderValue::String(kind.into())))
            .add_header(Header::new(
                ":content-type",
                HeaderValue::String("application/json".into()),
            ))
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("event".into()),
            ));
        write_message_to(&m, &mut out).unwrap();
    };
    frame(
        "messageStart",
        r#"{"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ","role":"assistant"}"#.into(),
    );
    for i in 0..n {
        frame(
            "contentBlockDelta",
            format!(
                r#"{{"contentBlockIndex":0,"delta":{{"text":" word{i}"}},"p":"abcdefghijklmn"}}"#
            ),
        );
    }
    frame(
        "contentBlockStop",
        r#"{"contentBlockIndex":0,"p":"abcdefghijklmnopqrs"}"#.into(),
    );
    frame(
        "messageStop",
        r#"{"p":"abcdefghijklmnopqrstuvwxyzABCDEF","stopReason":"end_turn"}"#.into(),
    );
    frame(
        "metadata",
        format!(
            r#"{{"metrics":{{"latencyMs":120}},"p":"abc","usage":{{"inputTokens":25,"outputTokens":{n},"totalTokens":{}}}}}"#,
            n + 25
        ),
    );
    out
}

/// Bytes cut into pieces of about `size` bytes, as a network would deliver them.
pub fn bytes_pieces(s: &[u8], size: usize) -> Vec<bytes::Bytes> {
    s.chunks(size).map(bytes::Bytes::copy_from_slice).collect()
}
