//! Golden translation fixtures between OpenAI chat and Anthropic Messages (the harness is
//! `tests/common/golden.rs`; `GOLDEN_UPDATE=1` regenerates).

#[path = "common/golden.rs"]
mod golden;

use golden::{check, json, opts, CASES, CTX};
use tollgate::formats::{translate_request, translate_response, Format};

#[test]
fn requests() {
    for case in CASES {
        let a = check(
            case,
            "chat.request.json",
            "anthropic.request.expected.json",
            |b| {
                json(
                    &translate_request(Format::OpenAi, Format::Anthropic, b, &opts())
                        .unwrap()
                        .body,
                )
            },
        );
        let b = check(
            case,
            "anthropic.request.json",
            "chat.request.expected.json",
            |b| {
                json(
                    &translate_request(Format::Anthropic, Format::OpenAi, b, &opts())
                        .unwrap()
                        .body,
                )
            },
        );
        assert!(a && b, "{case}: both request fixtures are expected");
    }
}

#[test]
fn responses() {
    let mut checked = 0;
    for case in CASES {
        let a = check(
            case,
            "anthropic.response.json",
            "chat.response.expected.json",
            |b| {
                json(
                    &translate_response(Format::Anthropic, Format::OpenAi, b, &CTX)
                        .unwrap()
                        .0,
                )
            },
        );
        let b = check(
            case,
            "chat.response.json",
            "anthropic.response.expected.json",
            |b| {
                json(
                    &translate_response(Format::OpenAi, Format::Anthropic, b, &CTX)
                        .unwrap()
                        .0,
                )
            },
        );
        checked += usize::from(a) + usize::from(b);
    }
    assert!(checked >= 12, "only {checked} response fixtures");
}
