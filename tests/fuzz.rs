//! Fuzzing on stable Rust: the request parsers and every translator fed mutations of the
//! committed seed corpus (the golden fixtures in `tests/golden/` and the recorded streams in
//! `tests/fixtures/streams/`): bytes flipped, cut, repeated and spliced in. Each must answer
//! with a value or an error, never a panic. (cargo-fuzz needs a nightly toolchain, which CI
//! does not have; proptest shrinks a failing input to a small one and prints it.)

#[path = "common/golden.rs"]
mod golden;

use bytes::BytesMut;
use golden::{opts, CTX};
use proptest::prelude::*;
use std::path::Path;
use tollgate::formats::{translate_request, translate_response, Format};
use tollgate::stream::Translator;

const CLIENTS: [Format; 3] = [Format::OpenAi, Format::Anthropic, Format::Responses];
const ALL: [Format; 5] = [
    Format::OpenAi,
    Format::Anthropic,
    Format::Bedrock,
    Format::Gemini,
    Format::Responses,
];

/// Every seed file whose name ends with `suffix`, under `dir`.
fn seeds(dir: &str, suffix: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(std::fs::read(&p).unwrap());
            }
        }
    }
    assert!(!out.is_empty(), "no seeds in {dir} ending {suffix}");
    out
}

/// One edit of a seed.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Cut(usize),
    Insert(usize, Vec<u8>),
    Repeat(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        any::<usize>().prop_map(Edit::Cut),
        (
            any::<usize>(),
            prop::collection::vec(
                prop_oneof![
                    Just(b'"'),
                    Just(b'{'),
                    Just(b'}'),
                    Just(b'['),
                    Just(b','),
                    Just(b'\\'),
                    Just(b'\n'),
                    any::<u8>()
                ],
                1..8
            )
        )
            .prop_map(|(i, v)| Edit::Insert(i, v)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Edit::Repeat(i, n)),
    ]
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for e in edits {
        let at = |i: usize, b: &Vec<u8>| if b.is_empty() { 0 } else { i % b.len() };
        match e {
            Edit::Flip(i, x) if !b.is_empty() => {
                let i = at(*i, &b);
                b[i] ^= x | 1;
            }
            Edit::Cut(i) => {
                let i = at(*i, &b);
                b.truncate(i);
            }
            Edit::Insert(i, v) => {
                let i = at(*i, &b);
                b.splice(i..i, v.iter().copied());
            }
            Edit::Repeat(i, n) => {
                let i = at(*i, &b);
                let end = (i + n).min(b.len());
                let piece = b[i..end].to_vec();
                b.splice(end..end, piece);
            }
            _ => {}
        }
    }
    b
}

fn mutated(pool: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = pool.len();
    (0..n, prop::collection::vec(edit(), 0..6)).prop_map(move |(i, e)| apply(&pool[i], &e))
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn requests_never_panic(body in mutated(seeds("tests/golden", ".request.json"))) {
        let _ = tollgate::gateway::probe(&body);
        let o = opts();
        for from in CLIENTS {
            for to in ALL {
                let _ = translate_request(from, to, &body, &o);
            }
        }
    }

    #[test]
    fn replies_never_panic(body in mutated(seeds("tests/golden", ".response.json"))) {
        for from in ALL {
            for to in CLIENTS {
                let _ = translate_response(from, to, &body, &CTX);
            }
        }
    }

    #[test]
    fn streams_never_panic(
        body in mutated(seeds("tests/fixtures/streams", ".sse")),
        split in 1usize..97,
    ) {
        for from in ALL {
            for to in CLIENTS {
                let mut t = Translator::new(from, to, &CTX, true);
                let mut out = BytesMut::new();
                for piece in body.chunks(split) {
                    if t.push(piece, &mut out).is_err() {
                        break;
                    }
                }
                let _ = t.finish(&mut out);
            }
        }
    }
}
