//! The stream translators allocate nothing per event beyond their output: translating a
//! 500-event reply costs a bounded number of allocations, however many events it has.

#[path = "common/streams.rs"]
mod streams;

use bytes::BytesMut;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use tollgate::formats::{Format, ReplyContext};
use tollgate::stream::Translator;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations to translate a reply of `events` text events, fed in 512-byte pieces into an
/// output buffer that is drained (as the relay does) after every piece.
fn allocations(from: Format, to: Format, events: usize) -> usize {
    let input = match from {
        Format::Anthropic => streams::anthropic(events).into_bytes(),
        Format::OpenAi => streams::openai(events).into_bytes(),
        Format::Gemini => streams::gemini(events).into_bytes(),
        Format::Bedrock => streams::bedrock(events),
        // Responses streams reach only Responses clients, passed through.
        Format::Responses => unreachable!("Responses streams are never translated from"),
    };
    let pieces = streams::bytes_pieces(&input, 512);
    let ctx = ReplyContext {
        client_model: "client-model",
        created: 1_700_000_000,
        tool_names: None,
    };
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut t = Translator::new(from, to, &ctx, true);
    let before = ALLOCS.load(Ordering::Relaxed);
    for p in &pieces {
        t.push(p, &mut out).unwrap();
        out.clear();
    }
    t.finish(&mut out).unwrap();
    ALLOCS.load(Ordering::Relaxed) - before
}

#[test]
fn no_allocation_per_event() {
    for (from, to) in [
        (Format::Anthropic, Format::OpenAi),
        (Format::OpenAi, Format::Anthropic),
        (Format::Gemini, Format::OpenAi),
        (Format::Gemini, Format::Anthropic),
    ] {
        let small = allocations(from, to, 50);
        let large = allocations(from, to, 500);
        // Ten times the events, (almost) the same allocations: per-stream setup only.
        assert!(
            large <= small + 4 && large < 40,
            "{from:?} → {to:?}: {small} allocations for 50 events, {large} for 500"
        );
    }
    // A Responses client's done events repeat each item's whole text, so the encoder keeps it:
    // one growing buffer per item (amortised doubling, a few more for ten times the text).
    for from in [Format::Anthropic, Format::OpenAi, Format::Gemini] {
        let small = allocations(from, Format::Responses, 50);
        let large = allocations(from, Format::Responses, 500);
        assert!(
            large <= small + 6 && large < 60,
            "{from:?} → Responses: {small} allocations for 50 events, {large} for 500"
        );
    }
    // Bedrock's binary frames are decoded by `aws-smithy-eventstream`, which builds an owned
    // message per frame (a header vector, each header's name and value, the payload): a fixed
    // cost per event, bounded here so it cannot grow unnoticed. (One test: the allocation
    // counter is global, so the cases must not run in parallel.)
    for to in [Format::OpenAi, Format::Anthropic] {
        let small = allocations(Format::Bedrock, to, 50);
        let large = allocations(Format::Bedrock, to, 500);
        let per_event = (large - small) as f64 / 450.0;
        assert!(
            per_event <= 30.0,
            "Bedrock → {to:?}: {per_event:.1} allocations per event"
        );
    }
}
