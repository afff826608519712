//! Writes the compact token tables (src/limits/bpe_blob.rs) for o200k_base and cl100k_base
//! into OUT_DIR from tiktoken-rs's own encoders, so the binary carries them ready to read in
//! place: no table is built at start, none is held on the heap, and their pages are the
//! binary's own (shared by every process running it, touched only where counting looks).

#[path = "src/limits/bpe_blob.rs"]
#[allow(dead_code)] // the reader's half is `bpe.rs`'s
mod bpe_blob;

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/limits/bpe_blob.rs");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let tables = [
        ("o200k.bpe", tiktoken_rs::o200k_base(), 199_998),
        ("cl100k.bpe", tiktoken_rs::cl100k_base(), 100_256),
    ];
    for (name, core, n) in tables {
        let core = core.expect("tiktoken-rs builds its own encodings");
        let tokens = core
            ._decode_native_and_split((0..n).collect())
            .collect::<Vec<_>>();
        let blob = bpe_blob::encode(&tokens).expect("every token fits a slot's fields");
        std::fs::write(Path::new(&out).join(name), blob).expect("OUT_DIR is writable");
    }
}
