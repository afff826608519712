//! Golden translation fixtures for Responses clients: a case's `responses.request.json` becomes
//! the chat request (`chat.request.from_responses.expected.json`) and, through the pivot, each
//! provider format's (`{anthropic,bedrock,gemini}.request.from_responses.expected.json`; a 400
//! naming the field where the format cannot express it); a case's replies in each format
//! (`chat.response.json`, `anthropic.response.json`, `bedrock.response.json`,
//! `gemini.response.json`) become `responses.response.from_{format}.expected.json` (the
//! harness is `tests/common/golden.rs`; `GOLDEN_UPDATE=1` regenerates).

#[path = "common/golden.rs"]
mod golden;

use golden::{check, opts, CASES, CTX};
use serde_json::{json, Value};
use tollgate::formats::{translate_request, translate_response, Format};

const TARGETS: [(Format, &str); 4] = [
    (Format::OpenAi, "chat"),
    (Format::Anthropic, "anthropic"),
    (Format::Bedrock, "bedrock"),
    (Format::Gemini, "gemini"),
];

#[test]
fn requests() {
    let mut checked = 0;
    for case in CASES {
        for (to, name) in TARGETS {
            let expected = format!("{name}.request.from_responses.expected.json");
            let ok = check(
                case,
                "responses.request.json",
                &expected,
                |b| match translate_request(Format::Responses, to, b, &opts()) {
                    Ok(t) => serde_json::from_slice(&t.body).unwrap(),
                    Err(e) => json!({"status": e.status, "param": e.param, "message": e.message}),
                },
            );
            checked += usize::from(ok);
        }
    }
    assert!(checked >= 32, "only {checked} request fixtures");
}

#[test]
fn responses() {
    let mut checked = 0;
    for case in CASES {
        for (from, name) in TARGETS {
            let input = format!("{name}.response.json");
            let expected = format!("responses.response.from_{name}.expected.json");
            let ok = check(case, &input, &expected, |b| {
                let (out, _) = translate_response(from, Format::Responses, b, &CTX).unwrap();
                let mut v: Value = serde_json::from_slice(&out).unwrap();
                fresh_ids(&mut v);
                v
            });
            checked += usize::from(ok);
        }
    }
    assert!(checked >= 20, "only {checked} response fixtures");
}

/// Every Response gets a fresh id, whatever the upstream's (the gateway keeps Responses by id,
/// and upstream ids may repeat): 32 hex digits, read as `(fresh)`.
fn fresh_ids(v: &mut Value) {
    let id = v["id"].as_str().unwrap().to_string();
    let fresh = id.len() == 37 && id[5..].bytes().all(|b| b.is_ascii_hexdigit());
    assert!(id.starts_with("resp_") && fresh, "{id}");
    let text = v.to_string().replace(&id[5..], "(fresh)");
    *v = serde_json::from_str(&text).unwrap();
}
