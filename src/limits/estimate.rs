//! Prompt-token estimates made before a request is sent: what limits reserve, and what a
//! request is billed for when the provider never reported usage (a stream cut short).
//!
//! The text of a request is every string value in its body except identifiers and markers
//! (`model`, `role`, `type`, ids, `tool_choice`...), joined by newlines; images and documents
//! sent inline count [`PER_IMAGE`] tokens each. OpenAI-family models (`gpt-*`, `o1`/`o3`/`o4`,
//! `chatgpt-*`, `text-embedding-*`...) are counted with their `tiktoken` encoding; any other
//! model as `ceil(chars / 4)`. Past [`TOKENIZE_BYTES`] of text the rest is extrapolated from
//! the tokenised part, so a huge prompt cannot hold a worker thread. Four tokens of framing
//! per message are added, as OpenAI's own accounting does.

use serde_json::Value;
use tiktoken_rs::tokenizer::{get_tokenizer, Tokenizer};
use tiktoken_rs::CoreBPE;

/// Tokens an inline image or document is counted as (a 1-megapixel image, about).
pub const PER_IMAGE: u64 = 1600;
/// Text tokenised exactly; beyond it, extrapolated.
pub const TOKENIZE_BYTES: usize = 32 * 1024;
/// Framing per message (role markers).
const PER_MESSAGE: u64 = 4;

/// Keys whose string values are not prompt text.
const NOT_TEXT: &[&str] = &[
    "model",
    "role",
    "type",
    "id",
    "tool_call_id",
    "tool_use_id",
    "tool_choice",
    "media_type",
    "mime_type",
    "detail",
    "format",
    "encoding_format",
    "reasoning_effort",
    "service_tier",
    "user",
    "stop",
    "signature",
    "cache_control",
    "metadata",
];

/// An estimate of the prompt tokens of `body` (a request in any client API) for `model`.
/// A body that is not JSON counts by its length.
pub fn prompt_tokens(body: &[u8], model: &str) -> u64 {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return chars_to_tokens(body.len());
    };
    let mut w = Walk::default();
    w.value(&v, "");
    let messages = ["messages", "input", "contents"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_array))
        .map_or(0, |m| m.len() as u64);
    text_tokens(&w.text, model) + w.images * PER_IMAGE + messages * PER_MESSAGE
}

/// Tokens of generated text that passed by (`bytes` of it), for a stream cut short.
pub fn output_tokens(bytes: u64) -> u64 {
    bytes.div_ceil(4)
}

fn chars_to_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

/// The tokenizer of an OpenAI-family model, if `model` is one.
fn encoding(model: &str) -> Option<&'static CoreBPE> {
    let family = get_tokenizer(model).or_else(|| {
        let o200k = [
            "gpt-5", "gpt-4.1", "gpt-4o", "o1", "o3", "o4", "chatgpt-", "gpt-oss",
        ];
        o200k
            .iter()
            .any(|p| model.starts_with(p))
            .then_some(Tokenizer::O200kBase)
    })?;
    Some(match family {
        Tokenizer::O200kBase => tiktoken_rs::o200k_base_singleton(),
        _ => tiktoken_rs::cl100k_base_singleton(),
    })
}

fn text_tokens(text: &str, model: &str) -> u64 {
    let Some(bpe) = encoding(model) else {
        return chars_to_tokens(text.chars().count());
    };
    if text.len() <= TOKENIZE_BYTES {
        return bpe.encode_ordinary(text).len() as u64;
    }
    let mut cut = TOKENIZE_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let head = bpe.encode_ordinary(&text[..cut]).len().max(1) as u64;
    // Scale the tokenised head's tokens-per-byte to the whole text.
    head.saturating_mul(text.len() as u64).div_ceil(cut as u64)
}

#[derive(Default)]
struct Walk {
    text: String,
    images: u64,
}

impl Walk {
    fn value(&mut self, v: &Value, key: &str) {
        match v {
            Value::String(s) if is_inline_media(key, s) => self.images += 1,
            Value::String(s) if !NOT_TEXT.contains(&key) => {
                if !self.text.is_empty() {
                    self.text.push('\n');
                }
                self.text.push_str(s);
            }
            Value::Array(a) => a.iter().for_each(|x| self.value(x, key)),
            Value::Object(o) => {
                for (k, x) in o {
                    if !NOT_TEXT.contains(&k.as_str()) {
                        self.value(x, k);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Base64 media (`data:` URLs, Anthropic's `source.data`, Gemini's `inlineData.data`).
fn is_inline_media(key: &str, s: &str) -> bool {
    s.starts_with("data:") || (key == "data" && s.len() > 256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_models_use_tiktoken() {
        let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hello, world!"}]}"#;
        // "Hello, world!" is 4 tokens in o200k_base; plus one message's framing.
        assert_eq!(prompt_tokens(body, "gpt-4o"), 4 + PER_MESSAGE);
        assert_eq!(prompt_tokens(body, "gpt-5-mini"), 4 + PER_MESSAGE);
    }

    #[test]
    fn other_models_count_four_chars_a_token() {
        let body = br#"{"model":"claude","system":"12345678","messages":[{"role":"user","content":[{"type":"text","text":"abcd"}]}]}"#;
        // "12345678\nabcd" = 13 chars → 4 tokens.
        assert_eq!(prompt_tokens(body, "claude-sonnet-4-5"), 4 + PER_MESSAGE);
    }

    #[test]
    fn images_count_a_fixed_amount() {
        let body = br#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#;
        assert_eq!(prompt_tokens(body, "x"), PER_IMAGE + PER_MESSAGE);
    }

    #[test]
    fn long_text_is_extrapolated_not_tokenised_whole() {
        let text = "word ".repeat(40_000);
        let body = serde_json::to_vec(
            &serde_json::json!({"messages": [{"role": "user", "content": text}]}),
        )
        .unwrap();
        let n = prompt_tokens(&body, "gpt-4o");
        assert!((39_000..=41_500).contains(&n), "{n}");
    }

    #[test]
    fn not_json_counts_by_length() {
        assert_eq!(prompt_tokens(b"abcdefgh", "gpt-4o"), 2);
        assert_eq!(output_tokens(9), 3);
    }
}
