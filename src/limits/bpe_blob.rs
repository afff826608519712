//! The compact BPE table's layout, shared by `build.rs` (which writes one blob per encoding
//! into the binary) and `bpe.rs` (which reads it in place): so both hash and lay out the same.
//!
//! A blob is little-endian `u32`s then bytes: `n` (tokens), `slots` (index size, a power of
//! two), `starts[n + 1]` (rank `r`'s bytes are `bytes[starts[r]..starts[r + 1]]`),
//! `index[slots]` (open addressing by [`hash`] of the bytes: `rank + 1`, 0 for empty), then
//! every token's bytes, rank after rank.

/// FNV-1a: cheap, and good enough spread for token byte strings.
pub fn hash(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h = (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The blob of `tokens` (rank order).
#[allow(dead_code)] // used by build.rs only
pub fn encode(tokens: &[Vec<u8>]) -> Vec<u8> {
    let n = tokens.len();
    let mut starts = Vec::with_capacity(n + 1);
    let mut at = 0u32;
    for t in tokens {
        starts.push(at);
        at += t.len() as u32;
    }
    starts.push(at);
    // Load factor under one half: probes stay short.
    let slots = (n * 2).next_power_of_two();
    let mut index = vec![0u32; slots];
    for (r, t) in tokens.iter().enumerate() {
        let mut i = hash(t) as usize & (slots - 1);
        while index[i] != 0 {
            i = (i + 1) & (slots - 1);
        }
        index[i] = r as u32 + 1;
    }
    let mut out = Vec::with_capacity(4 * (3 + n + slots) + at as usize);
    for w in [n as u32, slots as u32].iter().chain(&starts).chain(&index) {
        out.extend_from_slice(&w.to_le_bytes());
    }
    tokens.iter().for_each(|t| out.extend_from_slice(t));
    out
}
