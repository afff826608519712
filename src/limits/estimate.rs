//! Prompt-token estimates made before a request is sent: what limits reserve, and what a
//! request is billed for when the provider never reported usage (a stream cut short).
//!
//! The text of a request is every string value in its body except identifiers and markers
//! (`model`, `role`, `type`, ids, `tool_choice`...), read as the body is parsed (`walk.rs`:
//! no tree of values is built); images and documents sent inline count
//! [`PER_IMAGE`] tokens each. OpenAI-family models (`gpt-*`, `o1`/`o3`/`o4`, `chatgpt-*`,
//! `text-embedding-*`...) are counted with their `tiktoken` encoding, string by string; any
//! other model as `ceil(chars / 4)`. Four tokens of framing per message are added, as OpenAI's
//! own accounting does.
//!
//! Tokenising costs (the split and merges: µs per KiB), so: past [`TOKENIZE_BYTES`] a
//! string's count is extrapolated from its tokenised head, past [`TOKENIZE_BODY_BYTES`] of a
//! body the rest is counted at the rate of what was tokenised, and the counts of strings of
//! [`CACHE_FROM`] bytes or more are remembered by a hash of their text. Chat clients resend the
//! whole conversation every turn and agents resend the same system prompt and tools, so most
//! strings have been counted before; even a short system prompt is cheaper looked up than
//! split again (the 1 KiB estimate of `benches/micro.rs`: 0.79 µs with its
//! counts remembered; 0.72 µs counting characters).

use super::bpe::{self, Bpe};
use super::split::{CL100K_PATTERN, O200K_PATTERN};
use super::walk;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use tiktoken_rs::tokenizer::{get_tokenizer, Tokenizer};

/// Tokens an inline image or document is counted as (a 1-megapixel image, about).
pub const PER_IMAGE: u64 = 1600;
/// Text of one string tokenised exactly; beyond it, extrapolated.
pub const TOKENIZE_BYTES: usize = 8 * 1024;
/// Strings at least this long have their counts remembered.
pub const CACHE_FROM: usize = 24;
/// Counts remembered at most, per thread (the memory is cleared when full).
const CACHE_ENTRIES: usize = 65_536;
/// Framing per message (role markers).
const PER_MESSAGE: u64 = 4;

/// An estimate of the prompt tokens of `body` (a request in any client API) for `model`.
/// A body that is not JSON counts by its length.
pub fn prompt_tokens(body: &[u8], model: &str) -> u64 {
    let bpe = encoding(model);
    let mut text = 0;
    let mut budget = Budget::default();
    let shape = walk::walk(body, &mut |s| {
        text += match bpe {
            Some(bpe) => budget.tokens(bpe, s),
            None => chars_to_tokens(s.chars().count()),
        }
    });
    match shape {
        Ok(shape) => text + shape.images * PER_IMAGE + shape.messages * PER_MESSAGE,
        Err(_) => chars_to_tokens(body.len()),
    }
}

/// Text of one body tokenised afresh at most; the strings past it are counted at the rate of
/// those counted before them. Merging costs up to ~0.1 µs a byte on text that is not whole
/// words (random letters, base64: `benches/micro.rs`, `prompt_estimate_unseen`), and the count
/// runs on the request's worker thread: unbounded, a 32 MiB body of such strings would hold
/// it for seconds. Remembered strings cost nothing and count exactly whatever their number.
pub const TOKENIZE_BODY_BYTES: usize = 8 * TOKENIZE_BYTES;

/// What is left of a body's [`TOKENIZE_BODY_BYTES`], and the rate of what was counted.
#[derive(Default)]
struct Budget {
    spent: usize,
    bytes: u64,
    tokens: u64,
}

impl Budget {
    /// A string's tokens: remembered, counted, or (the budget spent) at the body's rate so far.
    fn tokens(&mut self, bpe: &'static Bpe, text: &str) -> u64 {
        let remembered = remembered(bpe, text);
        let n = match remembered.count {
            Some(n) => n,
            None if self.spent < TOKENIZE_BODY_BYTES => {
                self.spent += text.len().min(TOKENIZE_BYTES);
                let n = bpe_tokens(bpe, text);
                remembered.keep(n);
                n
            }
            None => {
                return match self.bytes {
                    0 => chars_to_tokens(text.chars().count()),
                    b => (self.tokens.saturating_mul(text.len() as u64)).div_ceil(b),
                }
            }
        };
        self.bytes += text.len() as u64;
        self.tokens += n;
        n
    }
}

/// Tokens of generated text that passed by (`bytes` of it), for a stream cut short.
pub fn output_tokens(bytes: u64) -> u64 {
    bytes.div_ceil(4)
}

fn chars_to_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

/// The two BPE tables Tollgate counts with (every other OpenAI encoding is counted as cl100k).
#[derive(Clone, Copy)]
enum Family {
    O200k,
    Cl100k,
}

impl Family {
    /// The family of an OpenAI-family model, if `model` is one.
    fn of(model: &str) -> Option<Family> {
        let o200k = [
            "gpt-5", "gpt-4.1", "gpt-4o", "o1", "o3", "o4", "chatgpt-", "gpt-oss",
        ];
        match get_tokenizer(model) {
            Some(Tokenizer::O200kBase) => Some(Family::O200k),
            Some(_) => Some(Family::Cl100k),
            None => o200k
                .iter()
                .any(|p| model.starts_with(p))
                .then_some(Family::O200k),
        }
    }

    fn slot(self) -> &'static (OnceLock<Option<Bpe>>, AtomicBool) {
        static SLOTS: [(OnceLock<Option<Bpe>>, AtomicBool); 2] = [
            (OnceLock::new(), AtomicBool::new(false)),
            (OnceLock::new(), AtomicBool::new(false)),
        ];
        &SLOTS[self as usize]
    }

    /// Reads the table in the binary (`bpe.rs`) and compiles its split pattern (milliseconds):
    /// blocking, never on a request. `None` if that fails (then the family counts characters).
    fn load(self) -> Option<&'static Bpe> {
        let table = self.slot().0.get_or_init(|| {
            let (blob, pattern) = match self {
                Family::O200k => (bpe::O200K, O200K_PATTERN),
                Family::Cl100k => (bpe::CL100K, CL100K_PATTERN),
            };
            let table = Bpe::new(blob, pattern);
            table.map_err(|e| log::error!("token table: {e}")).ok()
        });
        table.as_ref()
    }
}

/// The tokenizer of an OpenAI-family model, if `model` is one and its table is loaded. A table
/// not loaded yet is loaded on a thread of its own and the request counts characters meanwhile:
/// compiling its split pattern on the request's thread would stall every connection it serves.
fn encoding(model: &str) -> Option<&'static Bpe> {
    let family = Family::of(model)?;
    let (table, started) = family.slot();
    if let Some(bpe) = table.get() {
        return bpe.as_ref();
    }
    if !started.swap(true, Ordering::AcqRel) {
        let spawned = std::thread::Builder::new()
            .name("tollgate-tiktoken".into())
            .spawn(move || family.load());
        if spawned.is_err() {
            started.store(false, Ordering::Release);
        }
    }
    None
}

/// Loads the tables `models` are counted with, blocking: called off the async runtime when a
/// config with limits is loaded, so its first requests are counted exactly without waiting.
pub fn warm<'a>(models: impl IntoIterator<Item = &'a str>) {
    for family in models.into_iter().filter_map(Family::of) {
        family.slot().1.store(true, Ordering::Release);
        family.load();
    }
}

/// A string's remembered count, and where to keep it once counted. Strings of [`CACHE_FROM`]
/// bytes or more are remembered (keyed by the encoding and a hash of the text). Each thread
/// remembers its own: no lock shared by every request; with a few worker threads a repeated
/// string is split at most once on each.
struct Remembered {
    key: Option<u64>,
    count: Option<u64>,
}

fn remembered(bpe: &'static Bpe, text: &str) -> Remembered {
    if text.len() < CACHE_FROM {
        return Remembered {
            key: None,
            count: None,
        };
    }
    // foldhash: fast on long strings; a collision only misestimates one string.
    let key = foldhash::quality::FixedState::with_seed(0).hash_one((bpe as *const Bpe, text));
    Remembered {
        key: Some(key),
        count: CACHE.with_borrow(|c| c.get(&key).copied()),
    }
}

impl Remembered {
    fn keep(&self, n: u64) {
        let Some(key) = self.key else { return };
        CACHE.with_borrow_mut(|c| {
            if c.len() >= CACHE_ENTRIES {
                c.clear();
            }
            c.insert(key, n);
        });
    }
}

thread_local! {
    static CACHE: RefCell<HashMap<u64, u64>> = RefCell::default();
}

fn bpe_tokens(bpe: &Bpe, text: &str) -> u64 {
    if text.len() <= TOKENIZE_BYTES {
        return bpe.count(text) as u64;
    }
    let mut cut = TOKENIZE_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let head = bpe.count(&text[..cut]).max(1) as u64;
    // Scale the tokenised head's tokens-per-byte to the whole text.
    head.saturating_mul(text.len() as u64).div_ceil(cut as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_models_use_tiktoken() {
        warm(["gpt-4o"]);
        let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hello, world!"}]}"#;
        // "Hello, world!" is 4 tokens in o200k_base; plus one message's framing.
        assert_eq!(prompt_tokens(body, "gpt-4o"), 4 + PER_MESSAGE);
        assert_eq!(prompt_tokens(body, "gpt-5-mini"), 4 + PER_MESSAGE);
    }

    #[test]
    fn a_table_not_loaded_is_loaded_aside_and_characters_count_meanwhile() {
        const TEXT: &str = "internationalization internationalization";
        let body = br#"{"messages":[{"role":"user","content":"internationalization internationalization"}]}"#;
        // Nothing else in these tests loads cl100k (gpt-4's table).
        let first = prompt_tokens(body, "gpt-4");
        let by_chars = chars_to_tokens(TEXT.len()) + PER_MESSAGE;
        let bpe = tiktoken_rs::cl100k_base_singleton();
        let exact = bpe.encode_ordinary(TEXT).len() as u64 + PER_MESSAGE;
        assert_ne!(by_chars, exact);
        assert!(first == by_chars || first == exact, "{first}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while prompt_tokens(body, "gpt-4") != exact {
            assert!(std::time::Instant::now() < deadline, "never loaded");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn other_models_count_four_chars_a_token() {
        let body = br#"{"model":"claude","system":"12345678","messages":[{"role":"user","content":[{"type":"text","text":"abcd"}]}]}"#;
        // "12345678" and "abcd": 2 + 1 tokens.
        assert_eq!(prompt_tokens(body, "claude-sonnet-4-5"), 3 + PER_MESSAGE);
    }

    #[test]
    fn images_count_a_fixed_amount() {
        let body = br#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#;
        assert_eq!(prompt_tokens(body, "x"), PER_IMAGE + PER_MESSAGE);
    }

    #[test]
    fn long_text_is_extrapolated_not_tokenised_whole() {
        warm(["gpt-4o"]);
        let text = "word ".repeat(40_000);
        let body = serde_json::to_vec(
            &serde_json::json!({"messages": [{"role": "user", "content": text}]}),
        )
        .unwrap();
        let n = prompt_tokens(&body, "gpt-4o");
        assert!((39_000..=41_500).contains(&n), "{n}");
    }

    #[test]
    fn long_strings_are_counted_once_and_remembered() {
        warm(["gpt-4o"]);
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(20);
        let body = serde_json::to_vec(
            &serde_json::json!({"messages": [{"role": "user", "content": text}]}),
        )
        .unwrap();
        let bpe = encoding("gpt-4o").unwrap();
        let exact = bpe.count(&text) as u64;
        assert_eq!(prompt_tokens(&body, "gpt-4o"), exact + PER_MESSAGE);
        // Again, from the cache: the same count.
        assert_eq!(prompt_tokens(&body, "gpt-4o"), exact + PER_MESSAGE);
    }

    /// Past the body's budget a fresh string is counted at the rate of the strings before it,
    /// not tokenised; remembered strings count exactly and spend nothing.
    #[test]
    fn a_body_tokenises_its_budget_and_rates_the_rest() {
        warm(["gpt-4o"]);
        let bpe = encoding("gpt-4o").unwrap();
        let strings = TOKENIZE_BODY_BYTES / TOKENIZE_BYTES;
        // Fresh prose, exactly the budget, then a run of one letter: its own count is about a
        // token per eight bytes, the prose's about one per six.
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let prose: Vec<String> = (0..strings)
            .map(|i| {
                let mut s = format!("{nonce} {i} ");
                while s.len() < TOKENIZE_BYTES {
                    s.push_str("the quick brown fox jumps over the lazy dog ");
                }
                s.truncate(TOKENIZE_BYTES);
                s
            })
            .collect();
        let run = "x".repeat(4000);
        let mut all = prose.clone();
        all.push(run.clone());
        let body = |texts: &[String]| {
            let messages: Vec<_> = texts
                .iter()
                .map(|t| serde_json::json!({"role": "user", "content": t}))
                .collect();
            serde_json::to_vec(&serde_json::json!({ "messages": messages })).unwrap()
        };
        let counted: u64 = prose.iter().map(|t| bpe.count(t) as u64).sum();
        let bytes = (strings * TOKENIZE_BYTES) as u64;
        let rated = (counted * run.len() as u64).div_ceil(bytes);
        let framing = PER_MESSAGE * all.len() as u64;
        assert_ne!(rated, bpe.count(&run) as u64);
        assert_eq!(
            prompt_tokens(&body(&all), "gpt-4o"),
            counted + rated + framing
        );
        // The run counted alone (so remembered), then again past the budget: exactly.
        let exact = bpe.count(&run) as u64;
        assert_eq!(prompt_tokens(&body(&[run]), "gpt-4o"), exact + PER_MESSAGE);
        assert_eq!(
            prompt_tokens(&body(&all), "gpt-4o"),
            counted + exact + framing
        );
    }

    #[test]
    fn not_json_counts_by_length() {
        assert_eq!(prompt_tokens(b"abcdefgh", "gpt-4o"), 2);
        assert_eq!(output_tokens(9), 3);
    }
}
