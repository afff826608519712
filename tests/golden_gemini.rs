//! Golden translation fixtures for Gemini: each case's `chat.request.json` becomes
//! `gemini.request.expected.json`, and a case's `gemini.response.json` (a reply in Google's
//! shape) becomes `chat.response.from_gemini.expected.json` (the harness is
//! `tests/common/golden.rs`; `GOLDEN_UPDATE=1` regenerates).

#[path = "common/golden.rs"]
mod golden;

use golden::{check, json, opts, CASES, CTX};
use tollgate::formats::gemini::response;

#[test]
fn requests() {
    for case in CASES {
        let ok = check(
            case,
            "chat.request.json",
            "gemini.request.expected.json",
            |b| {
                json(
                    &tollgate::formats::translate_request(
                        tollgate::formats::Format::OpenAi,
                        tollgate::formats::Format::Gemini,
                        b,
                        &opts(),
                    )
                    .unwrap()
                    .body,
                )
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
            "gemini.response.json",
            "chat.response.from_gemini.expected.json",
            |b| json(&response::to_chat(b, &CTX).unwrap().0),
        );
        checked += usize::from(ok);
    }
    assert!(checked >= 6, "only {checked} response fixtures");
}
