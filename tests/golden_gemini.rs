//! Golden translation fixtures for Gemini: each case's `chat.request.json` becomes
//! `gemini.request.expected.json`, and a case's `gemini.response.json` (a reply in Google's
//! shape) becomes `chat.response.from_gemini.expected.json`. `GOLDEN_UPDATE=1` rewrites the
//! expected files (read them before committing: a wrong golden is worse than none).

use serde_json::Value;
use std::path::{Path, PathBuf};
use tollgate::formats::gemini::{request, response};
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
fn check(case: &str, input: &str, expected: &str, translate: impl Fn(&[u8]) -> Vec<u8>) -> bool {
    let Ok(body) = std::fs::read(dir(case).join(input)) else {
        return false;
    };
    let got: Value = serde_json::from_slice(&translate(&body)).unwrap();
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
            "gemini.request.expected.json",
            |b| request::from_chat(b, &opts()).unwrap().body,
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
            "gemini.response.json",
            "chat.response.from_gemini.expected.json",
            |b| response::to_chat(b, &CTX).unwrap().0,
        );
        checked += usize::from(ok);
    }
    assert!(checked >= 6, "only {checked} response fixtures");
}
