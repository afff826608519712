//! The golden-fixture harness shared by `tests/golden*.rs`: one directory per case in
//! `tests/golden/`, each input with the output expected in another format. `GOLDEN_UPDATE=1`
//! rewrites the expected files (read them before committing: a wrong golden is worse than none).
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use tollgate::formats::{MaxTokensField, ReplyContext, RequestOptions};

pub const CASES: [&str; 10] = [
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

/// Translates `input` (if the case has it) and compares with `expected`; false when the case
/// has no such input.
pub fn check(case: &str, input: &str, expected: &str, translate: impl Fn(&[u8]) -> Value) -> bool {
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

/// JSON bytes as a value.
pub fn json(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap()
}

pub fn opts() -> RequestOptions<'static> {
    RequestOptions {
        model: "target-model",
        default_max_tokens: 4096,
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
        cache_points: false,
        fields: tollgate::formats::fields::FieldPolicy::DEFAULT,
    }
}

pub const CTX: ReplyContext<'static> = ReplyContext {
    client_model: "client-model",
    created: 1_700_000_000,
    tool_names: None,
};
