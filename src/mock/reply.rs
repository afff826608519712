//! Deterministic reply content: the same request body always gives the same words, usage and
//! embedding vectors.

use serde_json::Value;

const WORDS: [&str; 48] = [
    "the", "gateway", "routes", "every", "request", "to", "a", "provider", "and", "streams",
    "tokens", "back", "quickly", "while", "counting", "cost", "model", "answers", "with", "care",
    "latency", "stays", "low", "under", "load", "clients", "see", "one", "endpoint", "for", "many",
    "backends", "retries", "happen", "before", "bytes", "reach", "them", "so", "failures", "stay",
    "hidden", "budgets", "hold", "limits", "apply", "fairly", "today",
];

/// FNV-1a, 64-bit: a stable seed from bytes.
pub fn seed(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// xorshift64*: tiny and deterministic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// `n` words; each is one completion token. The first has no leading space.
pub fn words(seed: u64, n: usize) -> Vec<String> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let w = WORDS[(rng.next() % WORDS.len() as u64) as usize];
            if i == 0 {
                w.to_string()
            } else {
                format!(" {w}")
            }
        })
        .collect()
}

/// A rough prompt token count: about four characters a token plus per-message overhead, as
/// OpenAI's tokenisers give for English text.
pub fn prompt_tokens(text_chars: usize, messages: usize) -> u64 {
    (text_chars.div_ceil(4) + 3 * messages + 3) as u64
}

/// A unit-length vector of `dims` floats for `input`.
pub fn embedding(input: &[u8], dims: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed(input));
    let v: Vec<f32> = (0..dims)
        .map(|_| (rng.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)
        .collect();
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    v.into_iter().map(|x| x / norm).collect()
}

/// Characters of prompt text, number of messages and images, for the usage estimate.
pub(crate) fn prompt_size(req: &Value) -> (usize, usize, usize) {
    fn walk(v: &Value, chars: &mut usize, images: &mut usize) {
        match v {
            Value::String(s) => *chars += s.len(),
            Value::Array(a) => a.iter().for_each(|x| walk(x, chars, images)),
            Value::Object(o) => {
                if matches!(
                    o.get("type").and_then(Value::as_str),
                    Some("image_url" | "image")
                ) {
                    *images += 1;
                } else if let Some(t) = o.get("text") {
                    walk(t, chars, images);
                } else if let Some(c) = o.get("content") {
                    walk(c, chars, images);
                }
            }
            _ => {}
        }
    }
    let (mut chars, mut images) = (0, 0);
    let msgs = req["messages"].as_array().map_or(1, Vec::len);
    for m in req["messages"].as_array().into_iter().flatten() {
        walk(&m["content"], &mut chars, &mut images);
    }
    walk(&req["prompt"], &mut chars, &mut images);
    walk(&req["system"], &mut chars, &mut images);
    (chars, msgs, images)
}

/// Prompt tokens of a chat or Messages request: the text estimate plus 85 per image (OpenAI's
/// low-detail cost).
pub(crate) fn request_prompt_tokens(req: &Value) -> u64 {
    let (chars, msgs, images) = prompt_size(req);
    prompt_tokens(chars, msgs) + 85 * images as u64
}

/// The seed of a reply: what is asked, not how (a streamed and a plain request get the same
/// words).
pub(crate) fn request_seed(model: &str, req: &Value) -> u64 {
    seed(format!("{}|{}|{}", model, req["messages"], req["prompt"]).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic() {
        assert_eq!(words(seed(b"a"), 5), words(seed(b"a"), 5));
        assert_ne!(words(seed(b"a"), 5), words(seed(b"b"), 5));
        let e = embedding(b"x", 8);
        assert_eq!(e, embedding(b"x", 8));
        let n: f32 = e.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-4);
    }
}
