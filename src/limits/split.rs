//! tiktoken's split of ASCII text into pieces, without a regex. Most strings in a prompt are
//! ASCII (English, code, JSON), and on those the split patterns' Unicode classes come down to
//! six byte classes; the regex search per piece (~550 instructions for a 6-byte word, most of
//! it the search's own setup) was two thirds of counting an unseen KiB of prose. Text with any
//! other character keeps the regex (`Bpe::pieces`). The pieces are the same, piece for piece:
//! `bpe::tests` compares them with tiktoken's own pattern (fancy-regex) on random ASCII.

/// tiktoken's split of text before merging, for cl100k_base (from OpenAI's tiktoken).
pub(crate) const CL100K_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The same for o200k_base.
pub(crate) const O200K_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
);

/// Which pattern's split, done by hand for ASCII text.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ascii {
    O200k,
    Cl100k,
}

/// What the split asks of a byte, as bits of [`CLASS`]: one load answers it, and a run of a
/// class is a loop of a load and a test a byte (a closure per class through `position` took
/// twice the instructions).
const SPACE: u8 = 1;
const NEWLINE: u8 = 2;
const UPPER: u8 = 4;
const LOWER: u8 = 8;
const DIGIT: u8 = 16;
const SLASH: u8 = 32;
/// `[^\r\n\p{L}\p{N}]`: what may lead a word.
const LEAD: u8 = 64;
/// `[^\s\p{L}\p{N}]`: punctuation, symbols, controls.
const OTHER: u8 = 128;

/// Each byte's classes. `\s` in ASCII is tab, line feed, vertical tab, form feed, carriage
/// return and space (Rust's `is_ascii_whitespace` leaves out the vertical tab).
static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [0; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let space = matches!(b, b'\t'..=b'\r' | b' ');
        let newline = matches!(b, b'\r' | b'\n');
        let alnum = b.is_ascii_alphanumeric();
        let mut c = 0;
        c |= if space { SPACE } else { 0 };
        c |= if newline { NEWLINE } else { 0 };
        c |= if b.is_ascii_uppercase() { UPPER } else { 0 };
        c |= if b.is_ascii_lowercase() { LOWER } else { 0 };
        c |= if b.is_ascii_digit() { DIGIT } else { 0 };
        c |= if b == b'/' { SLASH } else { 0 };
        c |= if !newline && !alnum { LEAD } else { 0 };
        c |= if !space && !alnum { OTHER } else { 0 };
        t[i] = c;
        i += 1;
    }
    t
}

fn is(b: u8, class: u8) -> bool {
    CLASS[usize::from(b)] & class != 0
}

/// The end of the run of bytes of any of `class` from `i`.
fn run(b: &[u8], mut i: usize, class: u8) -> usize {
    while i < b.len() && is(b[i], class) {
        i += 1;
    }
    i
}

/// The length of the contraction (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`, any case) at
/// `i`, or 0.
fn contraction(b: &[u8], i: usize) -> usize {
    let at = |k: usize| b.get(i + k).map(u8::to_ascii_lowercase);
    if b.get(i) != Some(&b'\'') {
        return 0;
    }
    match (at(1), at(2)) {
        (Some(b's' | b't' | b'm' | b'd'), _) => 2,
        (Some(b'r'), Some(b'e')) | (Some(b'v'), Some(b'e')) | (Some(b'l'), Some(b'l')) => 3,
        _ => 0,
    }
}

impl Ascii {
    /// The pieces of `text`, which must be ASCII.
    pub(crate) fn pieces<'t>(self, text: &'t [u8]) -> impl Iterator<Item = &'t [u8]> + 't {
        let mut at = 0;
        std::iter::from_fn(move || {
            if at >= text.len() {
                return None;
            }
            let end = match self {
                Ascii::O200k => o200k(text, at),
                Ascii::Cl100k => cl100k(text, at),
            };
            let piece = &text[at..end];
            at = end;
            Some(piece)
        })
    }
}

/// The end of the run of small ASCII letters from `i` (with `CASELESS`, of letters of either
/// case), eight bytes a step: a word is most of a piece, and testing its bytes one at a time
/// through the class table was two thirds of the split's instructions. Per byte `x` (its top
/// bit cleared first, so no sum carries into the next byte), `x + 0x1f` reaches 0x80 from
/// `a` on and `x + 0x05` from past `z` on; or-ing 0x20 makes a capital small.
fn letters(b: &[u8], mut i: usize, caseless: bool) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOP: u64 = ONES * 0x80;
    let fold = if caseless { ONES * 0x20 } else { 0 };
    while let Some(w) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(w.try_into().unwrap_or_default());
        let y = (x & !TOP) | fold;
        let small = (y + ONES * 0x1f) & !(y + ONES * 0x05) & !x & TOP;
        let other = !small & TOP;
        if other != 0 {
            return i + (other.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    run(b, i, if caseless { UPPER | LOWER } else { LOWER })
}

/// o200k's piece at `i`: a word (an optional lead, capitals, then small letters, then a
/// contraction), up to three digits, punctuation (after an optional space, then line breaks
/// and slashes), or spaces.
fn o200k(b: &[u8], i: usize) -> usize {
    let j = if is(b[i], LEAD) { i + 1 } else { i };
    let upper = run(b, j, UPPER);
    let lower = letters(b, upper, false);
    if lower > j {
        return lower + contraction(b, lower);
    }
    digits_or_marks(b, i, NEWLINE | SLASH)
}

/// cl100k's piece at `i`: a contraction, a word (an optional lead, then letters), up to three
/// digits, punctuation (after an optional space, then line breaks), or spaces.
fn cl100k(b: &[u8], i: usize) -> usize {
    let c = contraction(b, i);
    if c > 0 {
        return i + c;
    }
    let j = if is(b[i], LEAD) { i + 1 } else { i };
    let end = letters(b, j, true);
    if end > j {
        return end;
    }
    digits_or_marks(b, i, NEWLINE)
}

/// The alternatives both patterns end with: `\p{N}{1,3}`, ` ?[^\s\p{L}\p{N}]+` and then the
/// bytes in `trail`, `\s*[\r\n]+`, and `\s+` as `Bpe::pieces` reads it (a run of spaces gives
/// its last space to the next piece, unless it is one character or ends the text).
fn digits_or_marks(b: &[u8], i: usize, trail: u8) -> usize {
    if b[i].is_ascii_digit() {
        return run(b, i, DIGIT).min(i + 3);
    }
    let j = if b[i] == b' ' { i + 1 } else { i };
    if j < b.len() && is(b[j], OTHER) {
        let marks = run(b, j, OTHER);
        return run(b, marks, trail);
    }
    let spaces = run(b, i, SPACE);
    if let Some(last) = b[i..spaces].iter().rposition(|&c| is(c, NEWLINE)) {
        return i + last + 1;
    }
    if spaces < b.len() && spaces - i >= 2 {
        spaces - 1
    } else {
        spaces
    }
}

/// A xorshift generator's next value below `k` (`x` its state), for tests' random text.
#[cfg(test)]
pub(super) fn random(x: &mut u64, k: usize) -> usize {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x as usize % k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiktoken(pattern: &str, s: &str) -> Vec<String> {
        let re = fancy_regex::Regex::new(pattern).unwrap();
        (re.find_iter(s).map(|m| m.unwrap().as_str().to_string())).collect()
    }

    fn split(ascii: Ascii, s: &str) -> Vec<String> {
        (ascii.pieces(s.as_bytes()))
            .map(|p| String::from_utf8(p.to_vec()).unwrap())
            .collect()
    }

    const PATTERNS: [(Ascii, &str); 2] = [
        (Ascii::O200k, O200K_PATTERN),
        (Ascii::Cl100k, CL100K_PATTERN),
    ];

    /// tiktoken's pieces (its pattern, look-ahead and all, run by fancy-regex), on random text
    /// dense in what the alternatives tell apart: capitals and small letters, contractions in
    /// either case, digit runs, every ASCII space, line breaks, slashes, punctuation, controls.
    #[test]
    fn the_split_of_ascii_is_tiktokens() {
        let alphabet = b" \t\n\r\x0b\x0c  aZbYsStTrReEvVlLmMdD'''7890/.!$-\"\x00\x7f`{@[";
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for (ascii, pattern) in PATTERNS {
            let re = fancy_regex::Regex::new(pattern).unwrap();
            for len in (1..48).chain([300, 2000]).cycle().take(6000) {
                let s: String = (0..len)
                    .map(|_| alphabet[random(&mut x, alphabet.len())] as char)
                    .collect();
                let want: Vec<&str> = re.find_iter(&s).map(|m| m.unwrap().as_str()).collect();
                assert_eq!(split(ascii, &s), want, "{ascii:?} {s:?}");
            }
        }
    }

    #[test]
    fn a_run_of_letters_ends_at_the_first_other_byte() {
        let text = b"abcdefghijklmnopqrstuvwxyz`{@[ABCDEFGHIJKLMNOPQRSTUVWXYZ\xc3\xa9xyz";
        for i in 0..text.len() {
            let small = run(text, i, LOWER);
            let any = run(text, i, UPPER | LOWER);
            assert_eq!(letters(text, i, false), small, "at {i}");
            assert_eq!(letters(text, i, true), any, "at {i}");
        }
        assert_eq!(letters(b"ab\xe1\xe2\xe3\xe4\xe5\xe6\xe7", 0, true), 2);
    }

    #[test]
    fn words_contractions_numbers_and_spaces() {
        for s in [
            "Hello, world! It's 12345 o'clock; DON'T we'LL see.\n\n  x  \r\n\ty",
            "fn main() {\n    println!(\"{}\", 1 + 2);\n}\n\n\n",
            "path/to/file */\n/ 'sam 'Re  \x0b\x0cend   ",
            " ",
            "'",
            "ABCdef GHI jKL",
        ] {
            for (ascii, pattern) in PATTERNS {
                assert_eq!(split(ascii, s), tiktoken(pattern, s), "{ascii:?} {s:?}");
            }
        }
        assert_eq!(
            split(Ascii::O200k, "It's DON'T"),
            ["It's", " DON'T"],
            "o200k keeps contractions on their word"
        );
        assert_eq!(split(Ascii::Cl100k, "It's"), ["It", "'s"]);
    }
}
