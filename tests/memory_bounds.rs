//! `[cache] max_bytes` and `[responses] store_max_bytes` bound the memory their stores really
//! hold: entries, their bookkeeping and the bodies' buffers, counted by an allocator that tracks
//! live bytes.

use bytes::Bytes;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;
use tollgate::cache::key::{key, Tenant};
use tollgate::cache::{Cache, Lookup, Reply};
use tollgate::config::CacheSettings;
use tollgate::store::responses::{MemoryResponses, ResponseStore, StoredResponse};

struct Live;

thread_local! {
    // Per thread: the tests run side by side, each on its own current-thread runtime.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(n: isize) {
    // `try_with`: a thread being torn down still frees memory.
    let _ = LIVE.try_with(|l| l.set(l.get() + n));
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        add(l.size() as isize);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        add(-(l.size() as isize));
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        add(n as isize - l.size() as isize);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Live = Live;

const MAX_BYTES: usize = 4 << 20;

/// A reply body the way the relay makes one: written into a growing `Vec` (so its buffer has
/// room to spare), then made `Bytes`.
fn body(n: usize) -> Bytes {
    let mut out = Vec::new();
    out.extend_from_slice(br#"{"id":"chatcmpl-"#);
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(br#"","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":""#);
    for w in 0..60 {
        out.extend_from_slice(if w % 2 == 0 { b"weather " } else { b"sunny " });
    }
    out.extend_from_slice(br#""},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":60,"total_tokens":80}}"#);
    Bytes::from(out)
}

async fn fill(c: &Cache, n: usize, shared_pivot: bool) {
    let req = format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{n}"}}]}}"#);
    let k = key("r", "chat", req.as_bytes(), Tenant::Global).expect("a key");
    let Lookup::Miss(f) = c.lookup("r", k, false, false, Duration::ZERO).await else {
        panic!("request {n} hit");
    };
    let exact = body(n);
    let pivot = match shared_pivot {
        true => exact.clone(),
        false => body(n),
    };
    let reply = Reply {
        exact: Some(exact),
        pivot: Some(pivot),
        ..Default::default()
    };
    c.store(f, "r".into(), reply, Duration::from_secs(3600))
        .await
        .expect("stored");
}

/// Live bytes once the cache is full and evicting, against its bound.
async fn held(shared_pivot: bool) -> (f64, usize) {
    let settings = CacheSettings {
        max_bytes: MAX_BYTES,
        ..Default::default()
    };
    let before = live();
    let c = Cache::new(&settings, Duration::from_millis(100));
    let mut most = 0;
    for n in 0..30_000 {
        fill(&c, n, shared_pivot).await;
        if n % 1000 == 999 {
            most = most.max(live() - before);
        }
    }
    let (counted, evicted) = c.stats();
    assert!(counted <= MAX_BYTES, "{counted} counted");
    assert!(
        evicted > 10_000,
        "only {evicted} evicted: the bound was never reached"
    );
    (most as f64 / MAX_BYTES as f64, 30_000 - evicted)
}

#[tokio::test(flavor = "current_thread")]
async fn max_bytes_bounds_the_memory_really_held() {
    for shared_pivot in [true, false] {
        let (ratio, entries) = held(shared_pivot).await;
        eprintln!("pivot shared {shared_pivot}: {entries} entries, {ratio:.2}× max_bytes live");
        // Within 10% of the bound, and not far below it (the bound is not overcounted).
        assert!(ratio <= 1.10, "{ratio:.2}× max_bytes live");
        assert!(ratio >= 0.75, "only {ratio:.2}× max_bytes live");
    }
}

/// A Responses reply as the gateway keeps one: the Response sent, its expanded input, and the
/// ids of both's items.
fn kept(n: usize) -> StoredResponse {
    let id = format!("resp_{n:024x}");
    let text = "It is sunny and warm today, with a light breeze. ".repeat(12);
    let response = format!(
        r#"{{"id":"{id}","object":"response","status":"completed","model":"claude-sonnet-4-5","output":[{{"id":"msg_{n:024x}_0","type":"message","status":"completed","role":"assistant","content":[{{"type":"output_text","text":"{text}","annotations":[]}}]}}],"usage":{{"input_tokens":20,"output_tokens":120,"total_tokens":140}}}}"#
    );
    let input = format!(
        r#"[{{"id":"in_{n:024x}_0","type":"message","role":"user","content":"What is the weather like?"}}]"#
    );
    StoredResponse::new(tollgate::store::responses::Parts {
        id: &id,
        owner: Some("team-a"),
        model: "claude-sonnet-4-5",
        response: &response,
        input: &input,
        instructions: None,
        item_ids: Some(&[format!("in_{n:024x}_0"), format!("msg_{n:024x}_0")]),
    })
}

#[tokio::test(flavor = "current_thread")]
async fn store_max_bytes_bounds_the_memory_really_held() {
    let before = live();
    let store = MemoryResponses::new(Duration::from_secs(3600), MAX_BYTES);
    let mut most = 0;
    for n in 0..20_000 {
        store.put(kept(n)).await.expect("kept");
        if n % 1000 == 999 {
            most = most.max(live() - before);
        }
    }
    assert!(store.bytes() <= MAX_BYTES, "{} counted", store.bytes());
    assert!(
        store
            .get(Some("team-a"), "resp_000000000000000000000000")
            .await
            .expect("read")
            .is_none(),
        "the bound was never reached"
    );
    let ratio = most as f64 / MAX_BYTES as f64;
    eprintln!("kept responses: {ratio:.2}× store_max_bytes live");
    assert!(ratio <= 1.10, "{ratio:.2}× store_max_bytes live");
    assert!(ratio >= 0.75, "only {ratio:.2}× store_max_bytes live");
}
