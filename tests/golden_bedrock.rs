//! Golden translation fixtures for Bedrock's Converse API: each case's `chat.request.json`
//! becomes `bedrock.request.expected.json` (or, where Converse cannot express the request, the
//! 400 naming the field), and a case's `bedrock.response.json` (a `ConverseResponse`) becomes
//! `chat.response.from_bedrock.expected.json`. `GOLDEN_UPDATE=1` rewrites the expected files
//! (read them before committing: a wrong golden is worse than none).

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use tollgate::formats::bedrock::{request, response};
use tollgate::formats::{MaxTokensField, ReplyContext, RequestOptions};

const CASES: [&str; 10] = [
    "text",
    "system",
    "multi_turn",
    "image",
    "tools",
    "parallel_tools",
    "tool_results",
    "json_schema",
    "stop",
    "thinking",
];

fn dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(case)
}

/// Translates `input` (if the case has it) and compares with `expected`.
fn check(case: &str, input: &str, expected: &str, translate: impl Fn(&[u8]) -> Value) -> bool {
    let Ok(body) = std::fs::read(dir(case).join(input)) else {
        return false;
    };
    let got = translate(&body);
    let path = dir(case).join(expected);
    if std::env::var_os("GOLDEN_UPDATE").is_some() {
        let text = serde_json::to_string_pretty(&got).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    let want: Value = serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|_| panic!("{} is missing", path.display())),
    )
    .unwrap();
    assert_eq!(got, want, "{case}: {input} → {expected}");
    true
}

fn opts() -> RequestOptions<'static> {
    RequestOptions {
        model: "target-model",
        default_max_tokens: 4096,
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
        cache_points: false,
    }
}

const CTX: ReplyContext<'static> = ReplyContext {
    client_model: "client-model",
    created: 1_700_000_000,
};

#[test]
fn requests() {
    for case in CASES {
        let ok = check(
            case,
            "chat.request.json",
            "bedrock.request.expected.json",
            |b| match request::from_chat(b, &opts()) {
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
