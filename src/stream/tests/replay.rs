//! Streams recorded into the pivot (by a collecting Translator and by a Recorder) and replayed
//! to every client API: the replay, read back with the client format's own decoder, says what
//! the recorded stream said, under the fresh id it was given, and ends properly.

use super::bedrock::{reasoning_stream, text_stream};
use super::{run, ANT_THINKING, ANT_TOOLS, CTX, GEMINI_TOOLS, OAI_TOOLS};
use crate::formats::openai::stream::finish_reason;
use crate::formats::{ids, reply_usage, Delta, FinishReason, Format, Usage};
use crate::stream::{replay, Decoder, Recorder, Translator};
use bytes::BytesMut;
use serde_json::Value;

/// A Responses stream as OpenAI sends it: a reasoning summary, text, a function call.
const RESPONSES: &str = r#"event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_0a1","object":"response","status":"in_progress","output":[],"usage":null}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[]}}

event: response.reasoning_summary_text.delta
data: {"type":"response.reasoning_summary_text.delta","sequence_number":2,"item_id":"rs_1","output_index":0,"summary_index":0,"delta":"**Weather** in \"Paris\""}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":3,"output_index":1,"item":{"id":"msg_1","type":"message","status":"in_progress","content":[],"role":"assistant"}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":1,"content_index":0,"delta":"Looking it up \u2600\n","logprobs":[]}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":5,"output_index":2,"item":{"id":"fc_1","type":"function_call","status":"in_progress","arguments":"","call_id":"call_w","name":"get_weather"}}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":6,"item_id":"fc_1","output_index":2,"delta":"{\"city\":"}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":7,"item_id":"fc_1","output_index":2,"delta":"\"Paris\"}"}

event: response.completed
data: {"type":"response.completed","sequence_number":8,"response":{"id":"resp_0a1","status":"completed","usage":{"input_tokens":50,"input_tokens_details":{"cached_tokens":10},"output_tokens":30,"output_tokens_details":{"reasoning_tokens":12},"total_tokens":80}}}

"#;

const CLIENTS: [Format; 3] = [Format::OpenAi, Format::Anthropic, Format::Responses];

/// What a client makes of a stream.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    id: Option<String>,
    text: String,
    reasoning: String,
    signature: Option<String>,
    redacted: Vec<String>,
    /// (id, name, arguments) by index.
    tools: Vec<(String, String, String)>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    done: bool,
    error: bool,
}

impl Seen {
    fn see(&mut self, d: &Delta<'_>) {
        match d {
            Delta::Start { id } => {
                self.id.get_or_insert_with(|| id.to_string());
            }
            Delta::Text(t) => self.text += &t.decode(),
            Delta::Reasoning(t) => self.reasoning += &t.decode(),
            Delta::ReasoningSignature(s) => self.signature = Some(s.decode().into_owned()),
            Delta::RedactedReasoning(r) => self.redacted.push(r.decode().into_owned()),
            Delta::ToolCall { index, id, name } => {
                let i = *index as usize;
                if self.tools.len() <= i {
                    self.tools.resize(i + 1, Default::default());
                }
                self.tools[i] = (id.decode().into(), name.decode().into(), String::new());
            }
            Delta::ToolArgs { index, json } => self.tools[*index as usize].2 += &json.decode(),
            Delta::Finish(r) => self.finish = Some(*r),
            Delta::Usage(u) => self.usage = Some(*u),
            Delta::Error(_) => self.error = true,
            Delta::Done => self.done = true,
        }
    }
}

/// A stream read with its format's decoder, as a client (or the gateway) reads it.
fn decode(format: Format, bytes: &[u8]) -> Seen {
    let mut dec = Decoder::new(format);
    let mut s = Seen::default();
    dec.push(bytes, &mut |d| s.see(&d)).unwrap();
    dec.end(&mut |d| s.see(&d));
    s
}

/// Every recorded upstream stream the stream tests use: (name, format, bytes).
fn upstreams() -> Vec<(&'static str, Format, Vec<u8>)> {
    let (translated, ok) = run(
        Format::Anthropic,
        Format::Responses,
        &[ANT_THINKING.as_bytes()],
        false,
    );
    assert!(ok, "{translated}");
    vec![
        ("openai", Format::OpenAi, OAI_TOOLS.into()),
        ("anthropic tools", Format::Anthropic, ANT_TOOLS.into()),
        ("anthropic thinking", Format::Anthropic, ANT_THINKING.into()),
        ("gemini", Format::Gemini, GEMINI_TOOLS.into()),
        ("bedrock text", Format::Bedrock, text_stream()),
        ("bedrock reasoning", Format::Bedrock, reasoning_stream()),
        ("responses", Format::Responses, RESPONSES.into()),
        (
            "responses (Tollgate's)",
            Format::Responses,
            translated.into(),
        ),
    ]
}

/// A translated stream (to an OpenAI client) run through a collecting Translator.
fn collected(from: Format, input: &[u8]) -> Option<Vec<u8>> {
    let mut t = Translator::new(from, Format::OpenAi, &CTX, true).collecting();
    let mut out = BytesMut::new();
    if let Err(e) = t.push(input, &mut out).and_then(|()| t.finish(&mut out)) {
        t.fail(&e, &mut out);
    }
    t.take_collected(&CTX)
}

/// Replays `pivot` to `to` under a fresh id: the client's bytes, what it reads, the tally.
fn replayed(to: Format, pivot: &[u8]) -> (String, Seen, Usage) {
    let fresh = ids::fresh();
    let mut out = BytesMut::new();
    let tally = replay(to, &CTX, true, pivot, &fresh, &mut out).unwrap();
    let seen = decode(to, &out);
    let prefix = match to {
        Format::OpenAi => "chatcmpl-",
        Format::Anthropic => "msg_",
        _ => "resp_",
    };
    let id = seen.id.clone().unwrap_or_default();
    if to == Format::Responses {
        // Every Response's id is its own fresh one.
        let hex = id.strip_prefix(prefix).unwrap_or_default();
        assert!(
            hex.len() == 32 && hex.bytes().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
    } else {
        assert_eq!(id, format!("{prefix}{fresh}"), "{to:?}");
    }
    assert!(seen.done && !seen.error, "{to:?} ends properly");
    let out = String::from_utf8(out.to_vec()).unwrap();
    (out, seen, tally.usage.unwrap_or_default())
}

/// What a client of `to` must read from a replay of a stream that said `want`.
fn check(what: &str, to: Format, want: &Seen, (out, got, tally): &(String, Seen, Usage)) {
    assert_eq!(got.text, want.text, "{what}");
    assert_eq!(got.reasoning, want.reasoning, "{what}");
    assert_eq!(got.tools, want.tools, "{what}");
    assert_eq!(got.finish, want.finish, "{what}");
    let usage = want.usage.unwrap_or_default();
    assert_eq!(*tally, usage, "{what}");
    // Anthropic's usage has no reasoning count.
    let reasoning = if to == Format::Anthropic {
        0
    } else {
        usage.reasoning
    };
    let usage = Usage { reasoning, ..usage };
    assert_eq!(got.usage.unwrap_or_default(), usage, "{what}");
    // Only Anthropic's API carries the reasoning's signature and redacted blocks.
    let signature = want.signature.clone().filter(|_| to == Format::Anthropic);
    assert_eq!(got.signature, signature, "{what}");
    for r in &want.redacted {
        let block = format!("{{\"type\":\"redacted_thinking\",\"data\":\"{r}\"}}");
        assert_eq!(
            out.contains(&block),
            to == Format::Anthropic,
            "{what}: {out}"
        );
    }
    match to {
        Format::OpenAi => assert!(out.ends_with("data: [DONE]\n\n"), "{what}"),
        Format::Anthropic => assert!(out.ends_with("\"message_stop\"}\n\n"), "{what}"),
        _ => assert!(out.contains("event: response.completed\n"), "{what}"),
    }
}

#[test]
fn recorded_streams_replay_to_every_client_api() {
    for (name, from, input) in upstreams() {
        let original = decode(from, &input);
        assert!(original.done && !original.error, "{name}");
        let pivot = collected(from, &input).unwrap_or_else(|| panic!("{name}: nothing kept"));
        for to in CLIENTS {
            let what = format!("{name} → {to:?}");
            check(&what, to, &original, &replayed(to, &pivot));
        }
    }
}

#[test]
fn a_recorder_keeps_what_a_collecting_translator_keeps() {
    let upstreams = upstreams();
    let passing = upstreams
        .iter()
        .filter(|(_, f, _)| matches!(f, Format::OpenAi | Format::Anthropic | Format::Responses));
    for (name, from, input) in passing {
        let want = collected(*from, input).unwrap();
        // In pieces, as the relay passes them on.
        let mut r = Recorder::new(*from);
        input.chunks(7).for_each(|p| r.push(p));
        assert_eq!(r.finish(&CTX).as_deref(), Some(&want[..]), "{name}");
        // Byte by byte, the same reply.
        let mut r = Recorder::new(*from);
        input.chunks(1).for_each(|p| r.push(p));
        assert_eq!(r.finish(&CTX), Some(want), "{name}");
    }
}

/// Whether a Recorder of `input` keeps a reply.
fn recorded(from: Format, input: &str) -> bool {
    let mut r = Recorder::new(from);
    r.push(input.as_bytes());
    r.finish(&CTX).is_some()
}

#[test]
fn incomplete_streams_keep_nothing() {
    let cut = |s: &'static str, at: &str| &s[..s.rfind(at).unwrap()];
    let cuts = [
        (Format::OpenAi, cut(OAI_TOOLS, "data: [DONE]")),
        (Format::Anthropic, cut(ANT_TOOLS, "event: message_stop")),
        (Format::Responses, cut(RESPONSES, "event: response.completed")),
        // Its end without a finish.
        (Format::OpenAi, "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n"),
    ];
    for (from, input) in cuts {
        assert_eq!(collected(from, input.as_bytes()), None, "{input}");
        assert!(!recorded(from, input), "{input}");
    }
    // An error in the stream, even one followed by a proper end.
    let error = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let failed = ANT_TOOLS.replace(
        "event: message_stop",
        &format!("{error}event: message_stop"),
    );
    assert_eq!(collected(Format::Anthropic, failed.as_bytes()), None);
    assert!(!recorded(Format::Anthropic, &failed));
    // What the decoder cannot read makes a Recorder give up, whatever follows.
    let garbage = format!("data: {{not json\n\n{OAI_TOOLS}");
    assert!(!recorded(Format::OpenAi, &garbage));
    assert_eq!(collected(Format::OpenAi, garbage.as_bytes()), None);
    // A Translator not asked to collect keeps nothing.
    let mut t = Translator::new(Format::OpenAi, Format::OpenAi, &CTX, true);
    t.push(OAI_TOOLS.as_bytes(), &mut BytesMut::new()).unwrap();
    assert_eq!(t.take_collected(&CTX), None);
}

const GOLDEN: [&str; 2] = [
    include_str!("../../../tests/golden/parallel_tools/chat.response.json"),
    include_str!("../../../tests/golden/thinking/chat.response.json"),
];

#[test]
fn openai_completions_replay_to_every_client_api() {
    for body in GOLDEN {
        let v: Value = serde_json::from_str(body).unwrap();
        let m = &v["choices"][0]["message"];
        let text = |k: &str| m[k].as_str().unwrap_or_default().to_string();
        let tools = m["tool_calls"].as_array().into_iter().flatten();
        let want = Seen {
            text: text("content"),
            reasoning: text("reasoning_content"),
            tools: tools
                .map(|t| {
                    let s = |v: &Value| v.as_str().unwrap().to_string();
                    let f = &t["function"];
                    (s(&t["id"]), s(&f["name"]), s(&f["arguments"]))
                })
                .collect(),
            finish: v["choices"][0]["finish_reason"].as_str().map(finish_reason),
            usage: reply_usage(Format::OpenAi, body.as_bytes()),
            ..Seen::default()
        };
        for to in CLIENTS {
            let r = replayed(to, body.as_bytes());
            check(&format!("{body} → {to:?}"), to, &want, &r);
            if to == Format::Anthropic {
                // `message_start` already has the input tokens, as Anthropic's own has.
                let start = r.0.split("data: ").nth(1).unwrap().lines().next().unwrap();
                let start: Value = serde_json::from_str(start).unwrap();
                let input = want.usage.unwrap().uncached_input();
                assert_eq!(start["message"]["usage"]["input_tokens"], input, "{start}");
            }
        }
    }
}

#[test]
fn replays_without_a_usage_chunk_or_of_unreadable_replies() {
    let mut out = BytesMut::new();
    let body = GOLDEN[0].as_bytes();
    let tally = replay(Format::OpenAi, &CTX, false, body, "", &mut out).unwrap();
    assert_eq!(
        tally.usage.map(|u| u.output),
        Some(20),
        "counted all the same"
    );
    assert_eq!(decode(Format::OpenAi, &out).usage, None);
    let fresh = decode(Format::OpenAi, &out).id.unwrap();
    assert_eq!(fresh.len(), "chatcmpl-".len() + 32, "{fresh}");
    for to in CLIENTS {
        let mut out = BytesMut::new();
        let e = replay(to, &CTX, true, b"{\"choices\":", "x", &mut out).unwrap_err();
        assert_eq!(e.status, 502);
        assert!(out.is_empty());
    }
}

#[test]
fn namespaced_calls_are_kept_flat_and_named_back_by_the_replay() {
    use crate::formats::{test_support::OPTS, translate_request, ReplyContext};
    let body = serde_json::json!({"model": "m", "input": "q", "tools": [{"type": "namespace",
        "name": "mcp__fs__", "tools": [{"type": "function", "name": "read"}]}]});
    let body = body.to_string();
    let t = translate_request(Format::Responses, Format::OpenAi, body.as_bytes(), &OPTS);
    let names = t.unwrap().tool_names.unwrap();
    let ctx = ReplyContext {
        tool_names: Some(&names),
        ..CTX
    };
    let sse = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"mcp__fs__read\",\"arguments\":\"{}\"}}]}}]}\n\ndata: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n";
    let mut tr = Translator::new(Format::OpenAi, Format::Responses, &ctx, false).collecting();
    tr.push(sse.as_bytes(), &mut BytesMut::new()).unwrap();
    tr.finish(&mut BytesMut::new()).unwrap();
    // The pivot has the upstream's (flat) name; the request's map names it back.
    let pivot = tr.take_collected(&ctx).unwrap();
    let call = |ctx: &ReplyContext<'_>| {
        let mut out = BytesMut::new();
        replay(Format::Responses, ctx, false, &pivot, "", &mut out).unwrap();
        let out = String::from_utf8(out.to_vec()).unwrap();
        let done = out.lines().filter_map(|l| l.strip_prefix("data: "));
        let done = done.map(|d| serde_json::from_str::<Value>(d).unwrap());
        let mut done = done.filter(|e| e["type"] == "response.output_item.done");
        let item = done.next().unwrap()["item"].clone();
        (item["name"].clone(), item["namespace"].clone())
    };
    assert_eq!(call(&ctx), ("read".into(), "mcp__fs__".into()));
    assert_eq!(call(&CTX), ("mcp__fs__read".into(), Value::Null));
}
