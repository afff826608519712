//! The compact BPE table's layout, shared by `build.rs` (which writes one blob per encoding
//! into the binary) and `bpe.rs` (which reads it in place): so both hash and lay out the same.
//!
//! A blob is two little-endian `u32`s, `n` (tokens) and `slots` (a power of two), then
//! `index[slots]` as little-endian `u64`s (open addressing by [`hash`] of a token's bytes; 0
//! for an empty slot), then every token's bytes, rank after rank. A slot holds all a lookup
//! needs ([`Slot`]): the rank, where the bytes are and how long, and a tag of the hash. So a
//! probe that is not the piece is told apart in the index without reading any bytes, and one
//! that is reads them once: two places in memory a lookup, not three (the index, then an
//! offsets array, then the bytes), which is most of what merging costs on text that is not
//! whole words.

/// The hash of a token's bytes: a folded multiply (foldhash's mix) over the bytes read a word
/// at a time. Most lookups are of a word of a few bytes, read in two loads ([`short`]); FNV-1a
/// took a dependent multiply a byte (callgrind: a lookup 145 -> 117 instructions).
pub fn hash(b: &[u8]) -> u64 {
    const K: [u64; 3] = [
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
    ];
    let n = b.len();
    let (mut h, mut at) = (K[0] ^ n as u64, 0);
    // Every whole word but the last; the last 8 bytes (which may overlap them) end it.
    while n > 8 && at + 8 < n {
        h = fold(h ^ le64(b, at), K[1]);
        at += 8;
    }
    let (x, y) = if n > 8 { (le64(b, n - 8), 0) } else { short(b) };
    fold(h ^ x, K[2] ^ y)
}

/// A piece of at most 8 bytes as two words that, with its length, tell it from any other
/// (wyhash's read: its first and last four bytes, or its first, middle and last byte).
#[inline]
pub fn short(b: &[u8]) -> (u64, u64) {
    let n = b.len();
    if n >= 4 {
        (le32(b, 0), le32(b, n - 4))
    } else if n > 0 {
        (
            u64::from(b[0]),
            u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]),
        )
    } else {
        (0, 0)
    }
}

/// The 128-bit product of `a` and `b`, its halves xored.
pub fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ (p >> 64) as u64
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fn le32(b: &[u8], at: usize) -> u64 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u64::from(u32::from_le_bytes(w))
}

/// One index slot: `rank:18 | len:8 | offset:22 | tag:16`, low bits first. An empty slot
/// is 0 (no token has length 0).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Slot(pub u64);

const RANK_BITS: u32 = 18;
const LEN_BITS: u32 = 8;
const OFFSET_BITS: u32 = 22;

impl Slot {
    /// The slot of the token of `rank` whose `len` bytes start at `offset`; `None` when a
    /// field does not fit.
    pub fn new(rank: usize, len: usize, offset: usize, h: u64) -> Option<Slot> {
        let fits = |v: usize, bits: u32| (v as u64) < 1 << bits;
        (fits(rank, RANK_BITS) && len > 0 && fits(len, LEN_BITS) && fits(offset, OFFSET_BITS)).then(
            || {
                Slot(
                    rank as u64
                        | (len as u64) << RANK_BITS
                        | (offset as u64) << (RANK_BITS + LEN_BITS)
                        | Slot::tag_of(h) << (RANK_BITS + LEN_BITS + OFFSET_BITS),
                )
            },
        )
    }

    /// The bits of a hash a slot keeps: its top sixteen (the index is addressed by its low
    /// bits, so the two are independent).
    pub fn tag_of(h: u64) -> u64 {
        h >> 48
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn rank(self) -> u32 {
        (self.0 & ((1 << RANK_BITS) - 1)) as u32
    }

    pub fn len(self) -> usize {
        ((self.0 >> RANK_BITS) & ((1 << LEN_BITS) - 1)) as usize
    }

    pub fn offset(self) -> usize {
        ((self.0 >> (RANK_BITS + LEN_BITS)) & ((1 << OFFSET_BITS) - 1)) as usize
    }

    pub fn tag(self) -> u64 {
        self.0 >> (RANK_BITS + LEN_BITS + OFFSET_BITS)
    }
}

/// The blob of `tokens` (rank order); `None` when a token or the table is too large for a
/// slot's fields.
#[cfg_attr(not(test), allow(dead_code))] // build.rs's, and the tests'
pub fn encode(tokens: &[Vec<u8>]) -> Option<Vec<u8>> {
    let n = tokens.len();
    // Load factor 0.76 for o200k and cl100k: a probe that is not the piece is told apart by
    // its tag, and the next slots are in the same cache line, so the index stays small.
    let slots = n.next_power_of_two();
    let mut index = vec![0u64; slots];
    let mut offset = 0;
    for (r, t) in tokens.iter().enumerate() {
        let h = hash(t);
        let mut i = h as usize & (slots - 1);
        while index[i] != 0 {
            i = (i + 1) & (slots - 1);
        }
        index[i] = Slot::new(r, t.len(), offset, h)?.0;
        offset += t.len();
    }
    let mut out = Vec::with_capacity(8 + 8 * slots + offset);
    out.extend_from_slice(&u32::try_from(n).ok()?.to_le_bytes());
    out.extend_from_slice(&u32::try_from(slots).ok()?.to_le_bytes());
    index
        .iter()
        .for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
    tokens.iter().for_each(|t| out.extend_from_slice(t));
    Some(out)
}
