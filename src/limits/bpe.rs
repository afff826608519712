//! A compact BPE table for counting OpenAI tokens exactly. tiktoken-rs keeps each encoding as
//! hash maps of owned byte strings both ways, a sorted copy, and 128 clones of its split regex:
//! about 45 MiB resident for o200k. Counting needs only "the rank of these bytes", so the table
//! here is one blob (`bpe_blob.rs`: every token's bytes and an open-addressed index whose slots
//! hold a rank, where its bytes are and a tag; 3.3 MiB for o200k) written by `build.rs` from
//! tiktoken-rs's own encoder and read in place from the binary: nothing is built at start or
//! held on the heap, and only the pages counting touches are resident (shared by every process
//! running the binary). The merge loop
//! is tiktoken's (`_byte_pair_merge`), so counts are the same by construction; `tests`
//! compares them with tiktoken-rs on varied text. That loop's cost grows with a piece's length
//! squared, so a piece past [`SCAN_MAX`] bytes merges through a heap instead (the same merges),
//! and one past [`PIECE_MAX`] (no word: a run the split cannot cut) is counted from its head.
//!
//! tiktoken's split patterns end in `\s+(?!\S)|\s+`, a look-ahead the `regex` crate has not;
//! the backtracking engine that has it (fancy-regex) took ~30k instructions to split a
//! 20-byte prompt. The split here runs the pattern with `\s+` alone in the DFA-based `regex`
//! crate and gives back what the look-ahead would have ([`Bpe::pieces`]); an all-ASCII string
//! is split by hand instead (`split.rs`: the same pieces, without a search per piece).

use super::bpe_blob::{hash, short, Slot};
use super::memo::{self, Memo};
use super::split::{Ascii, CL100K_PATTERN, O200K_PATTERN};
use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input};

/// The end of tiktoken's split patterns: a run of spaces, all of it before the end of the text
/// or another space, else one space; [`Bpe::new`] replaces it with [`PLAIN_SPACES`].
const LOOKAHEAD_SPACES: &str = r"|\s+(?!\S)|\s+";
const PLAIN_SPACES: &str = r"|\s+";

/// The o200k_base table.
pub static O200K: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k.bpe"));
/// The cl100k_base table.
pub static CL100K: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cl100k.bpe"));

pub struct Bpe {
    /// Every token's bytes, rank after rank.
    bytes: &'static [u8],
    /// Little-endian `u64` [`Slot`]s, open addressing by a hash of a token's bytes.
    index: &'static [u8],
    /// Index slots - 1 (their number is a power of two).
    mask: usize,
    /// tiktoken's split of text into pieces before merging.
    split: Regex,
    /// The same split done by hand on ASCII text, for tiktoken's two patterns (each also has
    /// its own memo of piece counts on every thread, `memo.rs`).
    ascii: Option<Ascii>,
}

/// The `i`th little-endian `u32` of `b`.
fn word(b: &[u8], i: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[4 * i..4 * i + 4]);
    u32::from_le_bytes(w)
}

/// The `i`th slot of `index`.
fn slot(index: &[u8], i: usize) -> Slot {
    let mut w = [0u8; 8];
    w.copy_from_slice(&index[8 * i..8 * i + 8]);
    Slot(u64::from_le_bytes(w))
}

/// Why a table could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BpeError {
    #[error("token table of {0} bytes is cut short")]
    Short(usize),
    #[error("token split pattern: {0}")]
    Pattern(#[from] Box<regex_automata::meta::BuildError>),
    #[error("token split pattern does not end in tiktoken's `\\s+(?!\\S)|\\s+`")]
    Shape,
}

impl Bpe {
    /// The table laid out in `blob` (see `bpe_blob.rs`), splitting text with `pattern` (one of
    /// tiktoken's: it must end in [`LOOKAHEAD_SPACES`]).
    pub fn new(blob: &'static [u8], pattern: &str) -> Result<Bpe, BpeError> {
        let short = || BpeError::Short(blob.len());
        if blob.len() < 8 {
            return Err(short());
        }
        let slots = word(blob, 1) as usize;
        let bytes_at = slots.checked_mul(8).and_then(|b| b.checked_add(8));
        let Some(bytes_at) = bytes_at.filter(|&at| slots.is_power_of_two() && at <= blob.len())
        else {
            return Err(short());
        };
        let (index, bytes) = (&blob[8..bytes_at], &blob[bytes_at..]);
        Ok(Bpe {
            bytes,
            index,
            mask: slots - 1,
            split: split_regex(pattern)?,
            ascii: match pattern {
                O200K_PATTERN => Some(Ascii::O200k),
                CL100K_PATTERN => Some(Ascii::Cl100k),
                _ => None,
            },
        })
    }

    /// The rank of `piece`, if it is a token.
    fn rank(&self, piece: &[u8]) -> Option<u32> {
        let h = hash(piece);
        let (tag, mut at) = (Slot::tag_of(h), h as usize & self.mask);
        for _ in 0..=self.mask {
            let s = slot(self.index, at);
            if s.is_empty() {
                return None;
            }
            // A slot's bytes past the table's end (a table not built by `build.rs`) are no
            // match, never a panic.
            if s.tag() == tag && s.len() == piece.len() && self.is(s, piece) {
                return Some(s.rank());
            }
            at = (at + 1) & self.mask;
        }
        None
    }

    /// Whether the bytes of slot `s` (as long as `piece`) are `piece`'s: a short piece is
    /// compared as the two words [`short`] reads, without a call to `memcmp`.
    #[inline]
    fn is(&self, s: Slot, piece: &[u8]) -> bool {
        match self.bytes.get(s.offset()..s.offset() + s.len()) {
            Some(t) if t.len() <= 8 => short(t) == short(piece),
            t => t == Some(piece),
        }
    }

    /// Bytes of the table (for the tests' and the docs' figures).
    #[cfg(test)]
    pub fn table_bytes(&self) -> usize {
        self.bytes.len() + self.index.len()
    }

    /// The number of tokens `text` encodes to (tiktoken's `encode_ordinary(text).len()`).
    pub fn count(&self, text: &str) -> usize {
        let table = self.bytes.as_ptr() as usize;
        match self.ascii {
            Some(pattern) => memo::with(pattern as usize, table, |m| {
                self.count_pieces(text, Some(m))
            }),
            None => self.count_pieces(text, None),
        }
    }

    /// [`Bpe::count`], each short piece's count looked up in `memo` first.
    fn count_pieces(&self, text: &str, mut memo: Option<&mut Memo>) -> usize {
        let mut parts = Vec::new();
        let mut n = 0;
        let mut each = |piece: &[u8]| {
            n += match memo.as_deref_mut() {
                Some(m) => m.count(piece, || self.piece_tokens(piece, &mut parts)),
                None => self.piece_tokens(piece, &mut parts),
            }
        };
        match self.ascii.filter(|_| text.is_ascii()) {
            Some(ascii) => ascii.pieces(text.as_bytes()).for_each(&mut each),
            None => self.pieces(text).for_each(|p| each(p.as_bytes())),
        }
        n
    }

    /// The tokens of one piece; `parts` is scratch.
    fn piece_tokens(&self, piece: &[u8], parts: &mut Vec<(usize, u32)>) -> usize {
        match self.rank(piece) {
            Some(_) => 1,
            None if piece.len() > PIECE_MAX => self.extrapolated(piece),
            None if piece.len() > SCAN_MAX => self.merged_by_heap(piece),
            None => self.merged(piece, parts),
        }
    }

    /// tiktoken's split of `text`. Its `\s+(?!\S)` takes a run of spaces (the run has no line
    /// break: `\s*[\r\n]+` comes first) whole before the end of the text, else all but its
    /// last space, which then starts the next piece (" word"); a lone space before a non-space
    /// falls to `\s+`. The `\s+` here always takes the whole run, so a piece of two or more
    /// characters that ends in a space (not a line break) before more text gives one back.
    pub(crate) fn pieces<'t>(&self, text: &'t str) -> impl Iterator<Item = &'t str> + use<'_, 't> {
        let mut at = 0;
        std::iter::from_fn(move || {
            // Pieces follow one another, so the next starts where this one ends: an anchored
            // search runs the DFA forward only (an unanchored one also runs it backwards to
            // find the start). Same match: leftmost-first from a start that has one.
            let from = Input::new(text).range(at..);
            let m = (self.split.search(&from.clone().anchored(Anchored::Yes)))
                .or_else(|| self.split.search(&from))?;
            let piece = &text[m.start()..m.end()];
            let mut end = m.end();
            if end < text.len() {
                let mut chars = piece.chars();
                if let (Some(last), Some(_)) = (chars.next_back(), chars.next()) {
                    if last.is_whitespace() && last != '\r' && last != '\n' {
                        end -= last.len_utf8();
                    }
                }
            }
            at = end;
            Some(&text[m.start()..end])
        })
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

/// The longest piece [`Bpe::merged`] takes: its scan for the lowest pair makes a piece's cost
/// grow with its length squared (8 KiB of one letter, which the split leaves whole, took
/// 53 ms, a worker thread's whole time); longer pieces go to [`Bpe::merged_by_heap`].
const SCAN_MAX: usize = 64;

/// The longest piece merged whole: no word is this long, only a run the split cannot cut (one
/// letter repeated, a blob of letters); such a piece is counted from its head, as a string
/// past `estimate::TOKENIZE_BYTES` is, so a body's cost stays a few ns a byte whatever it holds.
const PIECE_MAX: usize = 1024;

impl Bpe {
    /// A piece longer than [`PIECE_MAX`]: its head's tokens, scaled to its length.
    fn extrapolated(&self, piece: &[u8]) -> usize {
        let head = self.merged_by_heap(&piece[..PIECE_MAX]).max(1);
        (head * piece.len()).div_ceil(PIECE_MAX)
    }

    /// [`Bpe::merged`] with the lowest pair found in a heap: the same merges in the same order
    /// (lowest rank first, the leftmost of equal ones), in `n log n`. A part is named by its
    /// first byte; `next`/`prev` link the parts left, and `rank[i]` is the rank of part `i`
    /// joined with the next (`u32::MAX`: none, or `i` merged away). A heap entry whose rank is
    /// no longer its part's is stale and skipped.
    fn merged_by_heap(&self, piece: &[u8]) -> usize {
        use std::cmp::Reverse;
        let n = piece.len();
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let pair = |next: &[usize], i: usize| match next[i] {
            j if j < n => self.rank(&piece[i..next[j]]).unwrap_or(u32::MAX),
            _ => u32::MAX,
        };
        let mut rank: Vec<u32> = (0..n).map(|i| pair(&next, i)).collect();
        let mut heap: std::collections::BinaryHeap<Reverse<(u32, usize)>> = (0..n)
            .filter(|&i| rank[i] != u32::MAX)
            .map(|i| Reverse((rank[i], i)))
            .collect();
        let mut parts = n;
        while let Some(Reverse((r, i))) = heap.pop() {
            if rank[i] != r {
                continue;
            }
            let j = next[i];
            next[i] = next[j];
            if next[j] < n {
                prev[next[j]] = i;
            }
            rank[j] = u32::MAX;
            parts -= 1;
            for at in [i, prev[i]].into_iter().filter(|&at| at < n) {
                rank[at] = pair(&next, at);
                if rank[at] != u32::MAX {
                    heap.push(Reverse((rank[at], at)));
                }
            }
        }
        parts
    }
}

/// tiktoken's `pattern` with its look-ahead alternative dropped (see [`Bpe::pieces`]).
fn split_regex(pattern: &str) -> Result<Regex, BpeError> {
    let head = pattern
        .strip_suffix(LOOKAHEAD_SPACES)
        .ok_or(BpeError::Shape)?;
    Ok(Regex::new(&format!("{head}{PLAIN_SPACES}")).map_err(Box::new)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::split::random;

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
            (tiktoken_rs::cl100k_base_singleton(), CL100K, CL100K_PATTERN),
            (tiktoken_rs::o200k_base_singleton(), O200K, O200K_PATTERN),
        ];
        for (core, blob, pattern) in cases {
            let table = Bpe::new(blob, pattern).unwrap();
            let golden = golden_strings();
            assert!(golden.len() > 100, "{} golden strings", golden.len());
            let all: Vec<String> = samples().into_iter().chain(golden).collect();
            // Twice: the second pass finds every short piece's count remembered (`memo.rs`).
            for s in all.iter().chain(&all) {
                assert_eq!(table.count(s), core.encode_ordinary(s).len(), "{s:?}");
            }
            assert!(
                table.table_bytes() < 7 << 19,
                "{} bytes",
                table.table_bytes()
            );
        }
    }

    /// The split is tiktoken's piece for piece (its look-ahead pattern run by fancy-regex) on
    /// text dense in the runs of spaces and line breaks the look-ahead decides.
    #[test]
    fn the_split_is_tiktokens() {
        let alphabet: Vec<char> = " \t\n\r\u{a0}\u{3000}aZé\u{301}7'/.!中😀".chars().collect();
        let mut x = 0x2545_f491_u64;
        for pattern in [O200K_PATTERN, CL100K_PATTERN] {
            let table = Bpe::new(O200K, pattern).unwrap();
            let tiktoken = fancy_regex::Regex::new(pattern).unwrap();
            for len in (1..40).chain([200, 1000]).cycle().take(3000) {
                let s: String = (0..len)
                    .map(|_| alphabet[random(&mut x, alphabet.len())])
                    .collect();
                let want: Vec<&str> = tiktoken
                    .find_iter(&s)
                    .map(|m| m.unwrap().as_str())
                    .collect();
                let got: Vec<&str> = table.pieces(&s).collect();
                assert_eq!(got, want, "{s:?}");
            }
        }
    }

    /// The heap's merges are the scan's, piece for piece: on runs of one letter (the worst
    /// case for the scan, and the split leaves them whole), on few-letter alphabets (many equal
    /// ranks, so the leftmost rule decides), and, through `count`, against tiktoken-rs.
    #[test]
    fn long_pieces_merge_by_heap_as_the_scan_does() {
        let mut x = 0x51_7cc1_b727_220a_u64;
        let mut rand = move |k: usize| random(&mut x, k);
        for (blob, pattern) in [(O200K, O200K_PATTERN), (CL100K, CL100K_PATTERN)] {
            let table = Bpe::new(blob, pattern).unwrap();
            let mut parts = Vec::new();
            for len in [2, 3, 65, 100, 333, 1000, 1500] {
                for alphabet in ["x", "ab", "abc", "xyz ", "aAbB", "0a"] {
                    let a = alphabet.as_bytes();
                    let piece: Vec<u8> = (0..len).map(|_| a[rand(a.len())]).collect();
                    assert_eq!(
                        table.merged_by_heap(&piece),
                        table.merged(&piece, &mut parts),
                        "{:?}",
                        String::from_utf8_lossy(&piece)
                    );
                }
            }
        }
        let core = tiktoken_rs::o200k_base_singleton();
        let table = Bpe::new(O200K, O200K_PATTERN).unwrap();
        for text in [
            "x".repeat(1000),
            "ab".repeat(500),
            format!("{}q", "Zz".repeat(400)),
        ] {
            assert_eq!(table.count(&text), core.encode_ordinary(&text).len());
        }
        // Longer than PIECE_MAX: counted from its head, within 1% of tiktoken's count.
        for text in ["x".repeat(5000), "ab".repeat(1500)] {
            let (got, want) = (table.count(&text), core.encode_ordinary(&text).len());
            assert!(got.abs_diff(want) * 100 <= want, "{got} against {want}");
        }
    }

    #[test]
    fn every_rank_is_found_from_its_own_bytes() {
        for (blob, n) in [(O200K, 199_998u32), (CL100K, 100_256)] {
            let table = Bpe::new(blob, O200K_PATTERN).unwrap();
            assert_eq!(word(blob, 0), n);
            let mut seen = vec![false; n as usize];
            let (mut bytes, mut at) = (0, 0);
            let mut slots: Vec<Slot> = (0..=table.mask).map(|i| slot(table.index, i)).collect();
            slots.retain(|s| !s.is_empty());
            slots.sort_by_key(|s| s.rank());
            for s in slots {
                let token = &table.bytes[s.offset()..s.offset() + s.len()];
                assert_eq!(table.rank(token), Some(s.rank()), "rank {}", s.rank());
                assert!(!std::mem::replace(&mut seen[s.rank() as usize], true));
                // Rank after rank, end to end.
                assert_eq!(s.offset(), at);
                (bytes, at) = (bytes + s.len(), at + s.len());
            }
            assert!(seen.iter().all(|&s| s), "every rank has a slot");
            assert_eq!(bytes, table.bytes.len());
        }
    }

    /// The hash spreads the tokens as a random one would: linear probing at the tables' load
    /// (0.76 for o200k) finds a key in 0.5 (1 + 1 / (1 - 0.76)) = 2.6 probes on average. A hash
    /// that clustered would cost every lookup more probes.
    #[test]
    fn the_hash_spreads_the_tokens() {
        for blob in [O200K, CL100K] {
            let table = Bpe::new(blob, O200K_PATTERN).unwrap();
            let (mut probes, mut n) = (0, 0);
            for at in 0..=table.mask {
                let s = slot(table.index, at);
                if s.is_empty() {
                    continue;
                }
                let token = &table.bytes[s.offset()..s.offset() + s.len()];
                let home = hash(token) as usize & table.mask;
                probes += ((at.wrapping_sub(home)) & table.mask) + 1;
                n += 1;
            }
            let mean = probes as f64 / n as f64;
            assert!(mean < 3.0, "{mean:.2} probes a token");
        }
    }

    /// A slot keeps what it is given, and refuses what does not fit its fields.
    #[test]
    fn a_slot_holds_its_fields() {
        let h = 0xfedc_ba98_7654_3210;
        let s = Slot::new(199_997, 128, (1 << 22) - 1, h).unwrap();
        assert_eq!(
            (s.rank(), s.len(), s.offset()),
            (199_997, 128, (1 << 22) - 1)
        );
        assert_eq!(s.tag(), 0xfedc);
        assert!(!s.is_empty());
        assert!(Slot::new(1 << 18, 1, 0, h).is_none());
        assert!(Slot::new(0, 256, 0, h).is_none());
        assert!(Slot::new(0, 0, 0, h).is_none());
        assert!(Slot::new(0, 1, 1 << 22, h).is_none());
        // A table too large for the fields is refused, not written wrong.
        assert!(super::super::bpe_blob::encode(&[vec![7u8; 300]]).is_none());
    }

    #[test]
    fn a_cut_table_is_refused() {
        static CUT: [u8; 12] = [5, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            Bpe::new(&CUT, O200K_PATTERN),
            Err(BpeError::Short(12))
        ));
        assert!(matches!(
            Bpe::new(&O200K[..1000], O200K_PATTERN),
            Err(BpeError::Short(1000))
        ));
        assert!(matches!(Bpe::new(O200K, "("), Err(BpeError::Shape)));
        let bad = format!("({LOOKAHEAD_SPACES}");
        assert!(matches!(Bpe::new(O200K, &bad), Err(BpeError::Pattern(_))));
    }
}
