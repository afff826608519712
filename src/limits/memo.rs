//! Token counts of short pieces met before, per thread and table. Text repeats its words, and
//! a piece's count depends on its bytes alone, so a word counted once is looked up after:
//! one multiply and a 16-byte compare in a 64 KiB table, where the token table's lookup costs
//! ~110 instructions (its probes, its slot's fields, a second read for the bytes) and a word
//! that is not one token several of them. (Hugging Face's `tokenizers` keeps such a word cache
//! in its BPE for the same reason.) Direct-mapped: a piece evicts whatever shared its slot, and
//! nothing is ever stale, so the counts stay exact whatever the hit rate.

use super::bpe_blob::fold;
use std::cell::RefCell;

/// Pieces at most this long are remembered (nearly every word): they fit the key inline.
pub const LONGEST: usize = 15;
/// Slots of one table's memo (16 bytes each, four to a cache line).
const SLOTS: usize = 4096;

/// A remembered piece: its bytes zero-padded in two words, read with word loads (a byte copy
/// into a key and a byte-wise hash were two thirds of a lookup's ~70 instructions), its length
/// in the top byte's low nibble and its count in the high one. A slot never written is all
/// zero, which no key is (a key's length is at least 1).
#[derive(Clone, Copy, Default)]
struct Slot {
    lo: u64,
    hi: u64,
}

/// The bits of `Slot::hi` that are the key (all but the count's nibble).
const KEY: u64 = !(0xf << 60);

/// One token table's remembered counts on this thread.
pub struct Memo {
    /// The table they were counted with (its bytes' address).
    table: usize,
    slots: Box<[Slot]>,
}

/// Memos a thread keeps: one for each of the two encodings counted here.
pub const TABLES: usize = 2;

thread_local! {
    static MEMOS: RefCell<[Option<Memo>; TABLES]> = const { RefCell::new([None, None]) };
}

/// Runs `f` with this thread's memo number `which` for the table at `table`; a memo made for
/// another table is emptied first, so no count crosses tables.
pub fn with<R>(which: usize, table: usize, f: impl FnOnce(&mut Memo) -> R) -> R {
    MEMOS.with(|memos| {
        let mut memos = memos.borrow_mut();
        let memo = memos[which % TABLES].get_or_insert_with(|| Memo::new(table));
        if memo.table != table {
            *memo = Memo::new(table);
        }
        f(memo)
    })
}

impl Memo {
    fn new(table: usize) -> Memo {
        Memo {
            table,
            slots: vec![Slot::default(); SLOTS].into_boxed_slice(),
        }
    }

    /// The count of `piece` (at most [`LONGEST`] bytes), remembered, or made by `count` and
    /// remembered. A longer piece, or a count past 15 (no piece of 15 bytes has more tokens
    /// than bytes), is made every time.
    pub fn count(&mut self, piece: &[u8], count: impl FnOnce() -> usize) -> usize {
        let Some(Slot { lo, hi }) = key(piece) else {
            return count();
        };
        let at = fold(lo ^ 0x243f_6a88_85a3_08d3, hi ^ 0x1319_8a2e_0370_7344) as usize;
        let at = at & (SLOTS - 1);
        let slot = &mut self.slots[at];
        if slot.lo == lo && slot.hi & KEY == hi {
            return (slot.hi >> 60) as usize;
        }
        let n = count();
        if n < 16 {
            *slot = Slot {
                lo,
                hi: hi | (n as u64) << 60,
            };
        }
        n
    }
}

/// `piece`'s key, or `None` if it is empty or past [`LONGEST`] bytes. Overlapping loads set their shared bytes
/// twice to the same value, so or-ing them (or shifting out the overlap) gives the bytes in
/// place: four or eight bytes read at each end of the piece cover it.
fn key(piece: &[u8]) -> Option<Slot> {
    let n = piece.len();
    let (lo, hi) = match n {
        1..=3 => {
            let (m, l) = (n / 2, n - 1);
            let byte = |i: usize| u64::from(piece[i]) << (8 * i);
            (byte(0) | byte(m) | byte(l), 0)
        }
        4..=8 => (word4(piece, 0) | word4(piece, n - 4) << (8 * (n - 4)), 0),
        9..=LONGEST => (word8(piece, 0), word8(piece, n - 8) >> (8 * (16 - n))),
        _ => return None,
    };
    Some(Slot {
        lo,
        hi: hi | (n as u64) << 56,
    })
}

fn word4(b: &[u8], at: usize) -> u64 {
    let w: [u8; 4] = b[at..at + 4].try_into().unwrap_or_default();
    u64::from(u32::from_le_bytes(w))
}

fn word8(b: &[u8], at: usize) -> u64 {
    let w: [u8; 8] = b[at..at + 8].try_into().unwrap_or_default();
    u64::from_le_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piece_is_counted_once_and_told_from_its_neighbours() {
        let mut m = Memo::new(1);
        let made = std::cell::Cell::new(0);
        let mut count = |p: &[u8], n: usize| {
            m.count(p, || {
                made.set(made.get() + 1);
                n
            })
        };
        assert_eq!(count(b" the", 1), 1);
        assert_eq!(count(b" the", 9), 1, "remembered");
        // A shorter or longer piece with the same start, and the empty piece, are others.
        assert_eq!(count(b" th", 2), 2);
        assert_eq!(count(b" the\0", 3), 3);
        assert_eq!(count(b"", 0), 0);
        // Too long to remember: counted every time.
        assert_eq!(count(b"internationalisation", 4), 4);
        assert_eq!(count(b"internationalisation", 5), 5);
        assert_eq!(made.get(), 6, "the empty piece is never remembered");
        // Every slot once: whatever shares a slot evicts, never answers for, another piece.
        for i in 0..3 * SLOTS as u32 {
            let (p, n) = (format!("w{i}"), i as usize % 16);
            assert_eq!(count(p.as_bytes(), n), n);
            assert_eq!(count(p.as_bytes(), 99), n);
        }
    }

    #[test]
    fn a_key_tells_every_short_piece_from_every_other() {
        // Pieces over a small alphabet, every length a key takes: no two share a key, and
        // the key holds the piece's bytes in place.
        let mut seen = std::collections::HashMap::new();
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for n in (1..=LONGEST).cycle().take(60_000) {
            let p: Vec<u8> = (0..n)
                .map(|_| b"ab\0\xff"[crate::limits::split::random(&mut x, 4)])
                .collect();
            let k = key(&p).expect("short");
            let mut bytes = [k.lo.to_le_bytes(), k.hi.to_le_bytes()].concat();
            assert_eq!(usize::from(bytes[15]), n);
            bytes.truncate(n);
            assert_eq!(bytes, p);
            if let Some(other) = seen.insert((k.lo, k.hi), p.clone()) {
                assert_eq!(other, p);
            }
        }
        assert!(key(b"").is_none() && key(&[b'a'; LONGEST + 1]).is_none());
        // A count that does not fit its nibble is made every time, never cut.
        let mut m = Memo::new(1);
        assert_eq!(m.count(b"\xf0\x9f", || 16), 16);
        assert_eq!(m.count(b"\xf0\x9f", || 17), 17);
    }

    #[test]
    fn a_memo_serves_only_its_table() {
        with(0, 10, |m| m.count(b"x", || 7));
        assert_eq!(with(0, 10, |m| m.count(b"x", || 1)), 7);
        assert_eq!(with(0, 11, |m| m.count(b"x", || 2)), 2, "another table");
        assert_eq!(with(1, 10, |m| m.count(b"x", || 3)), 3, "another memo");
    }
}
