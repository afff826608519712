//! Stream translators end to end over recorded streams, split at every byte boundary.

use super::*;
use serde_json::{json, Value};

mod bedrock;
mod replay;
mod responses;

pub(super) const ANT_TOOLS: &str =
    include_str!("../../tests/fixtures/streams/anthropic_tool_use.sse");
pub(super) const ANT_THINKING: &str =
    include_str!("../../tests/fixtures/streams/anthropic_thinking_cache.sse");
pub(super) const OAI_TOOLS: &str =
    include_str!("../../tests/fixtures/streams/openai_tool_calls.sse");
pub(super) const GEMINI_TOOLS: &str =
    include_str!("../../tests/fixtures/streams/gemini_thinking_tools.sse");

pub(super) const CTX: ReplyContext<'static> = ReplyContext {
    client_model: "client-model",
    created: 1_700_000_000,
    tool_names: None,
};

/// Feeds `input` in the given pieces; returns the client bytes (a Response's fresh id read as
/// `STEM`, so runs compare) and whether it ended properly.
pub(super) fn run(
    from: Format,
    to: Format,
    pieces: &[&[u8]],
    include_usage: bool,
) -> (String, bool) {
    let (out, ok) = run_raw(from, to, pieces, include_usage);
    (stemless(&out), ok)
}

/// The Response's id stem (`resp_…`'s 32 hex digits), wherever it is, as `STEM`.
pub(super) fn stemless(out: &str) -> String {
    let Some(at) = out.find("\"id\":\"resp_") else {
        return out.to_string();
    };
    let from = at + "\"id\":\"resp_".len();
    let stem = &out[from..from + 32];
    assert!(stem.bytes().all(|c| c.is_ascii_hexdigit()), "{out}");
    out.replace(stem, "STEM")
}

/// [`run`] without the ids made alike.
pub(super) fn run_raw(
    from: Format,
    to: Format,
    pieces: &[&[u8]],
    include_usage: bool,
) -> (String, bool) {
    let mut t = Translator::new(from, to, &CTX, include_usage);
    let mut out = BytesMut::new();
    for p in pieces {
        if let Err(e) = t.push(p, &mut out) {
            t.fail(&e, &mut out);
            return (String::from_utf8(out.to_vec()).unwrap(), false);
        }
    }
    let ok = match t.finish(&mut out) {
        Ok(()) => true,
        Err(e) => {
            t.fail(&e, &mut out);
            false
        }
    };
    (String::from_utf8(out.to_vec()).unwrap(), ok)
}

/// The same output however the input is split (at every byte, and byte by byte).
pub(super) fn run_all_splits(from: Format, to: Format, input: &str, include_usage: bool) -> String {
    let b = input.as_bytes();
    let (whole, ok) = run(from, to, &[b], include_usage);
    assert!(ok, "{whole}");
    for i in 0..=b.len() {
        let (split, _) = run(from, to, &[&b[..i], &b[i..]], include_usage);
        assert_eq!(split, whole, "split at {i}");
    }
    let bytes: Vec<&[u8]> = b.chunks(1).collect();
    assert_eq!(run(from, to, &bytes, include_usage).0, whole);
    whole
}

fn openai_chunks(out: &str) -> Vec<Value> {
    out.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let d = e.strip_prefix("data: ").expect("data line");
            if d == "[DONE]" {
                json!("[DONE]")
            } else {
                serde_json::from_str(d).unwrap()
            }
        })
        .collect()
}

fn anthropic_events(out: &str) -> Vec<(String, Value)> {
    out.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (name, data) = e.split_once('\n').unwrap();
            let name = name.strip_prefix("event: ").unwrap().to_string();
            let v: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(v["type"], name.as_str());
            (name, v)
        })
        .collect()
}

/// What an OpenAI client accumulates from chunks.
struct OaiReply {
    content: String,
    reasoning: String,
    tools: Vec<(String, String, String)>,
    finish: Option<String>,
    usage: Option<Value>,
    done: bool,
}

fn accumulate_openai(chunks: &[Value]) -> OaiReply {
    let mut r = OaiReply {
        content: String::new(),
        reasoning: String::new(),
        tools: vec![],
        finish: None,
        usage: None,
        done: false,
    };
    let id = chunks[0]["id"].clone();
    for c in chunks {
        if c == "[DONE]" {
            r.done = true;
            continue;
        }
        assert_eq!(c["id"], id);
        assert!(c["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert_eq!(c["model"], "client-model");
        assert_eq!(c["created"], 1_700_000_000);
        assert_eq!(c["object"], "chat.completion.chunk");
        if !c["usage"].is_null() {
            r.usage = Some(c["usage"].clone());
            assert_eq!(c["choices"], json!([]));
            continue;
        }
        let ch = &c["choices"][0];
        let d = &ch["delta"];
        r.content += d["content"].as_str().unwrap_or("");
        r.reasoning += d["reasoning_content"].as_str().unwrap_or("");
        for tc in d["tool_calls"].as_array().into_iter().flatten() {
            let i = tc["index"].as_u64().unwrap() as usize;
            if let Some(id) = tc["id"].as_str() {
                assert_eq!(i, r.tools.len());
                let name = tc["function"]["name"].as_str().unwrap().to_string();
                r.tools.push((id.to_string(), name, String::new()));
            }
            r.tools[i].2 += tc["function"]["arguments"].as_str().unwrap_or("");
        }
        if let Some(f) = ch["finish_reason"].as_str() {
            r.finish = Some(f.to_string());
        }
    }
    r
}

#[test]
fn anthropic_tool_use_to_openai() {
    let out = run_all_splits(Format::Anthropic, Format::OpenAi, ANT_TOOLS, true);
    let r = accumulate_openai(&openai_chunks(&out));
    assert_eq!(
        r.content,
        "I'll check the current weather in Paris for you."
    );
    assert_eq!(r.tools.len(), 1);
    assert_eq!(r.tools[0].0, "toolu_01NRLabsLyVHZPKxbKvkfSMn");
    assert_eq!(r.tools[0].1, "get_weather");
    let args: Value = serde_json::from_str(&r.tools[0].2).unwrap();
    assert_eq!(args, json!({"location": "Paris"}));
    assert_eq!(r.finish.as_deref(), Some("tool_calls"));
    let u = r.usage.unwrap();
    assert_eq!(u["prompt_tokens"], 377);
    assert_eq!(u["completion_tokens"], 65);
    assert_eq!(u["total_tokens"], 442);
    assert!(r.done);
}

#[test]
fn anthropic_thinking_and_cache_usage_to_openai() {
    // CRLF framing, escapes and non-ASCII text pass through unchanged.
    let out = run_all_splits(Format::Anthropic, Format::OpenAi, ANT_THINKING, true);
    let r = accumulate_openai(&openai_chunks(&out));
    assert_eq!(r.reasoning, "Let me think \"hard\".");
    assert_eq!(r.content, "Line one\nline two ✓");
    assert_eq!(r.finish.as_deref(), Some("stop"));
    let u = r.usage.unwrap();
    assert_eq!(
        u["prompt_tokens"], 100,
        "input + cache reads + cache writes"
    );
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 70);
    assert_eq!(u["prompt_tokens_details"]["cache_write_tokens"], 20);
    assert_eq!(u["completion_tokens"], 42);
}

#[test]
fn usage_chunk_only_when_asked() {
    let (out, ok) = run(
        Format::Anthropic,
        Format::OpenAi,
        &[ANT_TOOLS.as_bytes()],
        false,
    );
    assert!(ok);
    let chunks = openai_chunks(&out);
    assert!(chunks
        .iter()
        .all(|c| c == "[DONE]" || c.get("usage").is_none()));
    assert_eq!(accumulate_openai(&chunks).usage, None);
}

#[test]
fn openai_tool_calls_to_anthropic() {
    let out = run_all_splits(Format::OpenAi, Format::Anthropic, OAI_TOOLS, false);
    let evs = anthropic_events(&out);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let m = &evs[0].1["message"];
    assert_eq!(m["id"], "msg_ABf");
    assert_eq!(m["model"], "client-model");
    assert_eq!(evs[3].1["delta"]["text"], "Checking \"both\"\n");
    assert_eq!(evs[5].1["index"], 1);
    assert_eq!(evs[5].1["content_block"]["id"], "call_JMW1");
    assert_eq!(evs[5].1["content_block"]["name"], "get_weather");
    let args: String = evs[6..8]
        .iter()
        .map(|(_, v)| v["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(args, "{\"city\":\"Paris\"}");
    assert_eq!(evs[9].1["content_block"]["name"], "get_time");
    assert_eq!(evs[10].1["index"], 2);
    let d = &evs[12].1;
    assert_eq!(d["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        d["usage"]["input_tokens"], 12,
        "44 prompt tokens minus 32 cached"
    );
    assert_eq!(d["usage"]["cache_read_input_tokens"], 32);
    assert_eq!(d["usage"]["output_tokens"], 16);
}

/// The `usage` keys of Anthropic's current `Usage` type that a translated reply knows.
const ANT_USAGE_KEYS: [&str; 4] = [
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "input_tokens",
    "output_tokens",
];

fn usage_keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[test]
fn message_start_has_the_input_tokens_known_by_then() {
    // Gemini reports the prompt in its first chunk: `message_start` says so.
    let out = run_all_splits(Format::Gemini, Format::Anthropic, GEMINI_TOOLS, false);
    let evs = anthropic_events(&out);
    let start = &evs[0].1["message"]["usage"];
    assert_eq!(usage_keys(start), ANT_USAGE_KEYS);
    assert_eq!(start["input_tokens"], 1210 - 1024);
    assert_eq!(start["cache_read_input_tokens"], 1024);
    assert_eq!(start["output_tokens"], 0);
    let delta = &evs.iter().find(|(n, _)| n == "message_delta").unwrap().1["usage"];
    assert_eq!(usage_keys(delta), ANT_USAGE_KEYS);
    assert_eq!(delta["input_tokens"], 1210 - 1024);
    assert_eq!(delta["output_tokens"], 129);
    // OpenAI reports usage last: 0 at the start, the real numbers in `message_delta`.
    let out = run_all_splits(Format::OpenAi, Format::Anthropic, OAI_TOOLS, false);
    let evs = anthropic_events(&out);
    let start = &evs[0].1["message"]["usage"];
    assert_eq!(usage_keys(start), ANT_USAGE_KEYS);
    assert_eq!(start["input_tokens"], 0);
    let delta = &evs.iter().find(|(n, _)| n == "message_delta").unwrap().1["usage"];
    assert_eq!(
        (
            delta["input_tokens"].as_u64(),
            delta["cache_read_input_tokens"].as_u64()
        ),
        (Some(12), Some(32))
    );
    // A server that reports usage in every chunk: its first report is in `message_start`.
    let input = "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":0}}\n\n\
        data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
    let out = run_all_splits(Format::OpenAi, Format::Anthropic, input, false);
    let evs = anthropic_events(&out);
    assert_eq!(evs[0].1["message"]["usage"]["input_tokens"], 21);
    assert_eq!(evs[0].1["message"]["id"], "msg_c1");
}

#[test]
fn message_start_goes_out_with_the_chunk_that_began_the_reply() {
    // The role-only first chunk: `message_start` is sent before any text arrives.
    let first = "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
    let mut t = Translator::new(Format::OpenAi, Format::Anthropic, &CTX, false);
    let mut out = BytesMut::new();
    t.push(first.as_bytes(), &mut out).unwrap();
    let evs = anthropic_events(std::str::from_utf8(&out).unwrap());
    assert_eq!(evs[0].0, "message_start");
    // An error before the reply began is the error event alone.
    let err = "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n";
    let (out, _) = run(Format::OpenAi, Format::Anthropic, &[err.as_bytes()], false);
    assert_eq!(anthropic_events(&out).len(), 1);
}

#[test]
fn anthropic_in_stream_error_becomes_openai_error_event() {
    let input = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let (out, ok) = run(Format::Anthropic, Format::OpenAi, &[input.as_bytes()], true);
    assert!(ok, "an error event is a proper end");
    let chunks = openai_chunks(&out);
    let last = chunks.last().unwrap();
    assert_eq!(last["error"]["message"], "Overloaded");
    assert_eq!(last["error"]["type"], "service_unavailable_error");
    assert!(!out.contains("[DONE]"));
}

#[test]
fn openai_error_event_becomes_anthropic_error_event() {
    let input = "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n";
    let (out, _) = run(
        Format::OpenAi,
        Format::Anthropic,
        &[input.as_bytes()],
        false,
    );
    let evs = anthropic_events(&out);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].1["error"]["type"], "api_error");
    assert_eq!(evs[0].1["error"]["message"], "boom");
}

#[test]
fn truncated_streams_end_with_an_error_event() {
    let cut = &ANT_TOOLS[..ANT_TOOLS.len() / 2];
    let (out, ok) = run(Format::Anthropic, Format::OpenAi, &[cut.as_bytes()], false);
    assert!(!ok);
    assert!(openai_chunks(&out).last().unwrap()["error"].is_object());
    let cut = &OAI_TOOLS[..OAI_TOOLS.len() / 2];
    let (out, ok) = run(Format::OpenAi, Format::Anthropic, &[cut.as_bytes()], false);
    assert!(!ok);
    assert_eq!(anthropic_events(&out).last().unwrap().0, "error");
}

#[test]
fn unreadable_upstream_events_are_errors() {
    for from in [Format::OpenAi, Format::Anthropic] {
        let (out, ok) = run(from, Format::OpenAi, &[b"data: {not json\n\n"], false);
        assert!(!ok);
        assert!(out.contains("bad_upstream_response"), "{out}");
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..2048), cut in 0usize..2048) {
            for from in [Format::OpenAi, Format::Anthropic] {
                for to in [Format::OpenAi, Format::Anthropic, Format::Responses] {
                    let cut = cut.min(input.len());
                    let _ = run(from, to, &[&input[..cut], &input[cut..]], true);
                }
            }
        }

        #[test]
        fn mangled_recordings_never_panic(seed in any::<u64>(), flips in 1usize..8) {
            for (from, src) in [(Format::Anthropic, ANT_TOOLS), (Format::Anthropic, ANT_THINKING), (Format::OpenAi, OAI_TOOLS)] {
                let mut b = src.as_bytes().to_vec();
                let mut x = seed | 1;
                for _ in 0..flips {
                    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                    let i = (x as usize) % b.len();
                    b[i] = (x >> 32) as u8;
                }
                for to in [Format::OpenAi, Format::Anthropic, Format::Responses] {
                    let _ = run(from, to, &[&b], true);
                }
            }
        }

        #[test]
        fn sse_decoder_any_split(input in proptest::collection::vec(any::<u8>(), 0..1024), cut in 0usize..1024) {
            let cut = cut.min(input.len());
            let collect = |pieces: &[&[u8]]| {
                let mut d = SseDecoder::new(256);
                let mut evs = Vec::new();
                for p in pieces {
                    if d.push(p, |e| { evs.push((e.event.to_vec(), e.data.to_vec())); Ok::<(), TooLarge>(()) }).is_err() {
                        return None;
                    }
                }
                Some(evs)
            };
            let whole = collect(&[&input]);
            let split = collect(&[&input[..cut], &input[cut..]]);
            if let (Some(a), Some(b)) = (whole, split) {
                prop_assert_eq!(a, b);
            }
        }
    }
}

#[test]
fn huge_usage_numbers_saturate() {
    let max = u64::MAX;
    let input = format!("event: message_start\ndata: {{\"type\":\"message_start\",\"message\":{{\"id\":\"m\",\"usage\":{{\"input_tokens\":{max},\"cache_read_input_tokens\":{max},\"cache_creation_input_tokens\":{max},\"output_tokens\":{max}}}}}}}\n\nevent: message_stop\ndata: {{\"type\":\"message_stop\"}}\n\n");
    for to in [Format::OpenAi, Format::Anthropic] {
        let (out, ok) = run(Format::Anthropic, to, &[input.as_bytes()], true);
        assert!(ok, "{out}");
    }
}
