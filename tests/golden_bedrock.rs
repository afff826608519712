//! Golden translation fixtures for Bedrock's Converse API: each case's `chat.request.json`
//! becomes `bedrock.request.expected.json` (or, where Converse cannot express the request, the
//! 400 naming the field), and a case's `bedrock.response.json` (a `ConverseResponse`) becomes
//! `chat.response.from_bedrock.expected.json` and, for Anthropic clients (thinking with its
//! signature, redacted thinking), `anthropic.response.from_bedrock.expected.json` (the harness
//! is `tests/common/golden.rs`; `GOLDEN_UPDATE=1` regenerates). The `thinking` case's tool
//! loops check the history's thinking on its way to Converse (`thinking_tool_loops`).

#[path = "common/golden.rs"]
mod golden;

use golden::{check, opts, CASES, CTX};
use serde_json::{json, Value};
use tollgate::formats::bedrock::response;
use tollgate::formats::{translate_response, Format};

#[test]
fn requests() {
    for case in CASES {
        let ok = check(
            case,
            "chat.request.json",
            "bedrock.request.expected.json",
            |b| match tollgate::formats::translate_request(
                tollgate::formats::Format::OpenAi,
                tollgate::formats::Format::Bedrock,
                b,
                &opts(),
            ) {
                Ok(t) => serde_json::from_slice(&t.body).unwrap(),
                Err(e) => json!({"status": e.status, "param": e.param, "message": e.message}),
            },
        );
        assert!(ok, "{case}: chat.request.json is expected");
    }
}

#[test]
fn responses() {
    let mut checked = 0;
    for case in CASES {
        let ok = check(
            case,
            "bedrock.response.json",
            "chat.response.from_bedrock.expected.json",
            |b| {
                let mut v: Value =
                    serde_json::from_slice(&response::to_chat(b, &CTX).unwrap().0).unwrap();
                // Converse replies carry no id; the gateway mints a fresh one each time.
                let id = v["id"].as_str().unwrap();
                assert!(id.starts_with("chatcmpl-") && id.len() == 41, "{id}");
                v["id"] = json!("chatcmpl-(fresh)");
                v
            },
        );
        checked += usize::from(ok);
    }
    assert!(checked >= 6, "only {checked} response fixtures");
}

#[test]
fn anthropic_replies() {
    let mut checked = 0;
    for case in CASES {
        let ok = check(
            case,
            "bedrock.response.json",
            "anthropic.response.from_bedrock.expected.json",
            |b| {
                let out = translate_response(Format::Bedrock, Format::Anthropic, b, &CTX);
                let mut v: Value = serde_json::from_slice(&out.unwrap().0).unwrap();
                let id = v["id"].as_str().unwrap();
                assert!(id.starts_with("msg_") && id.len() == 36, "{id}");
                v["id"] = json!("msg_(fresh)");
                v
            },
        );
        checked += usize::from(ok);
    }
    assert!(checked >= 6, "only {checked} response fixtures");
}

/// A tool loop with thinking on: an Anthropic client's signed and redacted thinking reach
/// Converse as `reasoningContent` blocks ahead of the text and tool use; an OpenAI client's
/// history cannot carry them, so thinking is turned off for the request (Claude would refuse a
/// tool-use turn that does not start with thinking) and `reasoning_effort` is named.
#[test]
fn thinking_tool_loops() {
    let to_bedrock = |from: Format, b: &[u8]| {
        let mut o = opts();
        o.cache_points = true;
        let t = tollgate::formats::translate_request(from, Format::Bedrock, b, &o).unwrap();
        json!({"body": golden::json(&t.body), "dropped": t.dropped})
    };
    let anthropic = check(
        "thinking",
        "anthropic.request.tool_loop.json",
        "bedrock.request.from_anthropic.tool_loop.expected.json",
        |b| to_bedrock(Format::Anthropic, b),
    );
    let chat = check(
        "thinking",
        "chat.request.tool_loop.json",
        "bedrock.request.tool_loop.expected.json",
        |b| to_bedrock(Format::OpenAi, b),
    );
    assert!(anthropic && chat);
}
