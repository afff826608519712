//! A compact BPE table for counting OpenAI tokens exactly. tiktoken-rs keeps each encoding as
//! hash maps of owned byte strings both ways, a sorted copy, and 128 clones of its split regex:
//! about 45 MiB resident for o200k. Counting needs only "the rank of these bytes", so the table
//! here holds every token's bytes in one arena, their offsets, and an open-addressed index of
//! ranks (about 4 MiB for o200k), built once from tiktoken-rs's own encoder, which is then
//! dropped. The merge loop is tiktoken's (`_byte_pair_merge`), so counts are the same by
//! construction; `tests` compares them with tiktoken-rs on varied text.

use fancy_regex::Regex;
use tiktoken_rs::CoreBPE;

pub struct Bpe {
    /// Every token's bytes, rank after rank.
    bytes: Box<[u8]>,
    /// Rank `r`'s bytes are `bytes[starts[r]..starts[r + 1]]`.
    starts: Box<[u32]>,
    /// Open addressing by a hash of the bytes: `rank + 1` per slot, 0 for empty.
    index: Box<[u32]>,
    /// tiktoken's split of text into pieces before merging.
    split: Regex,
}

/// FNV-1a: cheap, and good enough spread for token byte strings.
fn hash(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h = (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Bpe {
    /// The table of `core`'s ranks `0..n` (its ordinary tokens), splitting text with `pattern`.
    pub fn from_core(
        core: &CoreBPE,
        n: u32,
        pattern: &str,
    ) -> Result<Bpe, Box<fancy_regex::Error>> {
        let mut bytes = Vec::with_capacity(n as usize * 8);
        let mut starts = Vec::with_capacity(n as usize + 1);
        for token in core._decode_native_and_split((0..n).collect()) {
            starts.push(bytes.len() as u32);
            bytes.extend_from_slice(&token);
        }
        starts.push(bytes.len() as u32);
        // Load factor under one half: probes stay short.
        let slots = (n as usize * 2).next_power_of_two();
        let mut index = vec![0u32; slots];
        for r in 0..n {
            let (a, b) = (starts[r as usize] as usize, starts[r as usize + 1] as usize);
            let mut at = hash(&bytes[a..b]) as usize & (slots - 1);
            while index[at] != 0 {
                at = (at + 1) & (slots - 1);
            }
            index[at] = r + 1;
        }
        Ok(Bpe {
            bytes: bytes.into_boxed_slice(),
            starts: starts.into_boxed_slice(),
            index: index.into_boxed_slice(),
            split: Regex::new(pattern).map_err(Box::new)?,
        })
    }

    fn token(&self, r: u32) -> &[u8] {
        let (a, b) = (self.starts[r as usize], self.starts[r as usize + 1]);
        &self.bytes[a as usize..b as usize]
    }

    /// The rank of `piece`, if it is a token.
    fn rank(&self, piece: &[u8]) -> Option<u32> {
        let mask = self.index.len() - 1;
        let mut at = hash(piece) as usize & mask;
        loop {
            let r = self.index[at].checked_sub(1)?;
            if self.token(r) == piece {
                return Some(r);
            }
            at = (at + 1) & mask;
        }
    }

    /// Bytes held (for the tests' and the docs' figures).
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        self.bytes.len() + 4 * (self.starts.len() + self.index.len())
    }

    /// The number of tokens `text` encodes to (tiktoken's `encode_ordinary(text).len()`).
    pub fn count(&self, text: &str) -> usize {
        let mut parts = Vec::new();
        let mut n = 0;
        for piece in self.split.find_iter(text) {
            // The split regex cannot fail on these patterns but for its backtrack limit:
            // then the rest counts as characters ÷ 4, like an unknown model's text.
            let Ok(piece) = piece else {
                return n + text.len().div_ceil(4);
            };
            let piece = piece.as_str().as_bytes();
            n += match self.rank(piece) {
                Some(_) => 1,
                None => self.merged(piece, &mut parts),
            };
        }
        n
    }

    /// Tokens of a piece that is not itself a token: tiktoken's merge loop, which joins the
    /// adjacent pair of lowest rank until no pair is a token; `parts` is scratch.
    fn merged(&self, piece: &[u8], parts: &mut Vec<(usize, u32)>) -> usize {
        if piece.len() < 2 {
            return piece.len();
        }
        let pair = |parts: &[(usize, u32)], i: usize| -> u32 {
            if i + 3 < parts.len() {
                self.rank(&piece[parts[i].0..parts[i + 3].0])
                    .unwrap_or(u32::MAX)
            } else {
                u32::MAX
            }
        };
        parts.clear();
        for i in 0..piece.len() - 1 {
            parts.push((i, self.rank(&piece[i..i + 2]).unwrap_or(u32::MAX)));
        }
        parts.push((piece.len() - 1, u32::MAX));
        parts.push((piece.len(), u32::MAX));
        loop {
            let min = parts[..parts.len() - 1]
                .iter()
                .enumerate()
                .min_by_key(|(_, &(_, r))| r)
                .filter(|(_, &(_, r))| r != u32::MAX);
            let Some((i, _)) = min else { break };
            if i > 0 {
                parts[i - 1].1 = pair(parts, i - 1);
            }
            parts[i].1 = pair(parts, i);
            parts.remove(i + 1);
        }
        parts.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::estimate::{CL100K_PATTERN, O200K_PATTERN};

    /// Text of every kind the split and the merges treat apart.
    fn samples() -> Vec<String> {
        let mut v: Vec<String> = [
            "Hello, world! How are you doing today?",
            "fn main() {\n    println!(\"{}\", 1 + 2);\n}\n\n\n",
            "   leading and trailing spaces   \t\t\n",
            "日本語のテキストと中文文本，还有한국어 텍스트.",
            "emoji 🤖🚀🧪 and ZWJ 👩‍👩‍👧‍👦 sequences",
            "numbers 1234567890 3.14159 -42 1e10 0x1F",
            "I'm you're they'll we've she'd IT'S DON'T",
            "https://example.com/path?query=1&x=%20#frag",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Pseudo-random bytes from a varied alphabet.
        let alphabet: Vec<char> = "abcXYZ019 _-.,;:'\"\n\t()[]{}éßøЖж中文😀".chars().collect();
        let mut x = 0x9e37_79b9_u64;
        for len in [5, 40, 300, 2000] {
            let s: String = (0..len)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    alphabet[(x >> 33) as usize % alphabet.len()]
                })
                .collect();
            v.push(s);
        }
        v
    }

    /// Every string in the golden translation fixtures (real prompts, tools, replies).
    fn golden_strings() -> Vec<String> {
        fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::String(s) => out.push(s.clone()),
                serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                serde_json::Value::Object(m) => m.values().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if let Ok(v) = serde_json::from_slice(&std::fs::read(&p).unwrap_or_default())
                {
                    walk(&v, &mut out);
                }
            }
        }
        out
    }

    #[test]
    fn counts_are_tiktokens_and_the_table_is_small() {
        let cases = [
            (
                tiktoken_rs::cl100k_base_singleton(),
                100_256,
                CL100K_PATTERN,
            ),
            (tiktoken_rs::o200k_base_singleton(), 199_998, O200K_PATTERN),
        ];
        for (core, n, pattern) in cases {
            let table = Bpe::from_core(core, n, pattern).unwrap();
            let golden = golden_strings();
            assert!(golden.len() > 100, "{} golden strings", golden.len());
            for s in samples().iter().chain(&golden) {
                assert_eq!(table.count(s), core.encode_ordinary(s).len(), "{s:?}");
            }
            assert!(table.heap_bytes() < 5 << 20, "{} bytes", table.heap_bytes());
        }
    }
}
