//! Model prices (USD per 1M tokens), as `[[prices]]` and price files give them.
//!
//! Prices are keyed by model name or glob (`*` any run, `?` one character). A lookup prefers
//! an exact name; among matching globs the one with the most literal characters wins (so
//! `gpt-4o-mini*` beats `gpt-4o*`), ties going to the entry given first.

use std::collections::HashMap;

/// One model's prices, USD per 1M tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub input: f64,
    /// Input read from a prompt cache; `input`'s price when absent.
    pub cached_input: Option<f64>,
    /// Input written to a prompt cache; `input`'s price when absent.
    pub cache_write: Option<f64>,
    /// Output, reasoning included.
    pub output: f64,
}

/// Prices by model name or glob.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    /// Exact names (no `*` or `?`), mapped to their index in `entries`.
    exact: HashMap<String, usize>,
    /// Glob entries' indices, most literal characters first, then in the order given.
    globs: Vec<usize>,
    entries: Vec<(String, Price)>,
}

impl PriceTable {
    /// Builds the table; for a pattern given twice the first entry wins.
    pub fn new(entries: Vec<(String, Price)>) -> Self {
        let mut exact = HashMap::new();
        let mut globs = Vec::new();
        let mut seen_globs = std::collections::HashSet::new();
        for (i, (pattern, _)) in entries.iter().enumerate() {
            if pattern.contains(['*', '?']) {
                if seen_globs.insert(pattern.as_str()) {
                    globs.push(i);
                }
            } else {
                exact.entry(pattern.clone()).or_insert(i);
            }
        }
        // Stable: equal literal counts keep the order given.
        globs.sort_by_key(|&i| std::cmp::Reverse(literal_chars(&entries[i].0)));
        PriceTable {
            exact,
            globs,
            entries,
        }
    }

    /// The price of `model`: an exact entry, else the most specific matching glob.
    pub fn find(&self, model: &str) -> Option<&Price> {
        let i = match self.exact.get(model) {
            Some(&i) => i,
            None => *self
                .globs
                .iter()
                .find(|&&i| glob_match(&self.entries[i].0, model))?,
        };
        Some(&self.entries[i].1)
    }

    /// Number of entries (patterns given twice counted twice).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Characters of a pattern other than `*`.
fn literal_chars(pattern: &str) -> usize {
    pattern.chars().filter(|&c| c != '*').count()
}

/// Matches `text` against `pattern`, where `*` matches any run of characters (empty too) and
/// `?` exactly one. Iterative, backtracking only to the last `*`: O(pattern × text) at worst.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // After the last `*` seen: the pattern index following it, and the text index it
    // currently stops matching at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                pi += 1;
                star = Some((pi, ti));
                continue;
            }
            Some(b'?') => {
                pi += 1;
                ti += utf8_len(t[ti]);
                continue;
            }
            Some(&c) if c == t[ti] => {
                pi += 1;
                ti += 1;
                continue;
            }
            _ => {}
        }
        // Mismatch: let the last `*` swallow one more character, or fail.
        let Some((sp, st)) = star else {
            return false;
        };
        let next = st + utf8_len(t[st]);
        star = Some((sp, next));
        pi = sp;
        ti = next;
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Length of the UTF-8 sequence a leading byte starts (1 for a stray continuation byte, which
/// a `&str` never starts a character with).
fn utf8_len(b: u8) -> usize {
    match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(input: f64, output: f64) -> Price {
        Price {
            input,
            cached_input: None,
            cache_write: None,
            output,
        }
    }

    fn table(entries: &[(&str, f64)]) -> PriceTable {
        PriceTable::new(
            entries
                .iter()
                .map(|&(m, p)| (m.to_string(), price(p, p)))
                .collect(),
        )
    }

    fn input_price(t: &PriceTable, model: &str) -> Option<f64> {
        t.find(model).map(|p| p.input)
    }

    #[test]
    fn globs() {
        assert!(glob_match("gpt-4o*", "gpt-4o"));
        assert!(glob_match("gpt-4o*", "gpt-4o-mini"));
        assert!(glob_match("*", ""));
        assert!(glob_match(
            "*sonnet-4*",
            "us.anthropic.claude-sonnet-4-20250514-v1:0"
        ));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(glob_match("a*b*c", "abcbc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(!glob_match("gpt-4o", "gpt-4o-mini"));
        assert!(!glob_match("gpt-4o-mini*", "gpt-4o"));
        assert!(glob_match("o?-mini", "o3-mini"));
        assert!(glob_match("o?-mini", "oé-mini"));
        assert!(!glob_match("o?-mini", "o-mini"));
        assert!(!glob_match("o?-mini", "o33-mini"));
        assert!(glob_match("?*", "x"));
        assert!(!glob_match("?*", ""));
        // Many stars against a long near-miss: no exponential backtracking.
        let text = "a".repeat(10_000);
        assert!(!glob_match("*a*a*a*a*a*a*a*a*b", &text));
        assert!(glob_match("*a*a*a*a*a*a*a*a*", &text));
    }

    #[test]
    fn exact_beats_glob() {
        let t = table(&[("gpt-4o*", 1.0), ("gpt-4o-mini", 2.0)]);
        assert_eq!(input_price(&t, "gpt-4o-mini"), Some(2.0));
        assert_eq!(input_price(&t, "gpt-4o-mini-2024-07-18"), Some(1.0));
    }

    #[test]
    fn longer_glob_beats_shorter() {
        for entries in [
            [("gpt-4o*", 1.0), ("gpt-4o-mini*", 2.0)],
            [("gpt-4o-mini*", 2.0), ("gpt-4o*", 1.0)],
        ] {
            let t = table(&entries);
            assert_eq!(input_price(&t, "gpt-4o-mini-2024-07-18"), Some(2.0));
            assert_eq!(input_price(&t, "gpt-4o-2024-08-06"), Some(1.0));
        }
    }

    #[test]
    fn ties_go_to_the_first_given() {
        let t = table(&[
            ("a*", 1.0),
            ("*b", 2.0),
            ("a*", 3.0),
            ("ab", 4.0),
            ("ab", 5.0),
        ]);
        assert_eq!(input_price(&t, "axb"), Some(1.0));
        assert_eq!(input_price(&t, "ab"), Some(4.0));
        let t = table(&[("*b", 2.0), ("a*", 1.0)]);
        assert_eq!(input_price(&t, "axb"), Some(2.0));
    }

    #[test]
    fn question_mark() {
        let t = table(&[("o?", 1.0), ("o?-mini", 2.0), ("o*", 3.0)]);
        assert_eq!(input_price(&t, "o3"), Some(1.0));
        assert_eq!(input_price(&t, "o4-mini"), Some(2.0));
        assert_eq!(input_price(&t, "o4-mini-high"), Some(3.0));
    }

    #[test]
    fn no_match_is_none() {
        let t = table(&[("gpt-4o*", 1.0), ("claude-3-haiku", 2.0)]);
        assert!(t.find("llama3").is_none());
        assert!(t.find("claude-3-haiku-20240307").is_none());
        assert!(PriceTable::default().find("gpt-4o").is_none());
        assert!(PriceTable::default().is_empty());
    }
}
