//! Token counts of short pieces met before, per thread and table. Text repeats its words, and
//! a piece's count depends on its bytes alone, so a word counted once is looked up after:
//! one hash and a 16-byte compare in an 80 KiB table, where the token table's lookup costs
//! ~110 instructions (its probes, its slot's fields, a second read for the bytes) and a word
//! that is not one token several of them. (Hugging Face's `tokenizers` keeps such a word cache
//! in its BPE for the same reason.) Direct-mapped: a piece evicts whatever shared its slot, and
//! nothing is ever stale, so the counts stay exact whatever the hit rate.

use super::bpe_blob::hash;
use std::cell::RefCell;

/// Pieces at most this long are remembered (nearly every word): they fit the key inline.
pub const LONGEST: usize = 15;
/// Slots of one table's memo (16 + 4 bytes each).
const SLOTS: usize = 4096;

#[derive(Clone, Copy, Default)]
struct Slot {
    /// The piece's bytes, zero-padded, and its length + 1 last: an empty slot matches nothing.
    key: [u8; 16],
    count: u32,
}

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
    /// remembered.
    pub fn count(&mut self, piece: &[u8], count: impl FnOnce() -> usize) -> usize {
        let Some(key) = key(piece) else {
            return count();
        };
        let slot = &mut self.slots[hash(piece) as usize & (SLOTS - 1)];
        if slot.key == key {
            return slot.count as usize;
        }
        let n = count();
        *slot = Slot {
            key,
            count: u32::try_from(n).unwrap_or(u32::MAX),
        };
        n
    }
}

fn key(piece: &[u8]) -> Option<[u8; 16]> {
    let n = piece.len();
    if n > LONGEST {
        return None;
    }
    let mut key = [0; 16];
    key[..n].copy_from_slice(piece);
    key[15] = n as u8 + 1;
    Some(key)
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
        assert_eq!(made.get(), 6);
        // Every slot once: whatever shares a slot evicts, never answers for, another piece.
        for i in 0..3 * SLOTS as u32 {
            let p = format!("w{i}");
            assert_eq!(count(p.as_bytes(), i as usize), i as usize);
            assert_eq!(count(p.as_bytes(), 0), i as usize);
        }
    }

    #[test]
    fn a_memo_serves_only_its_table() {
        with(0, 10, |m| m.count(b"x", || 7));
        assert_eq!(with(0, 10, |m| m.count(b"x", || 1)), 7);
        assert_eq!(with(0, 11, |m| m.count(b"x", || 2)), 2, "another table");
        assert_eq!(with(1, 10, |m| m.count(b"x", || 3)), 3, "another memo");
    }
}
