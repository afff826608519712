//! `[cache] max_bytes` bounds the memory the response cache really holds: entries, their
//! bookkeeping and the bodies' buffers, counted by an allocator that tracks live bytes.

use bytes::Bytes;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;
use tollgate::cache::key::{key, Tenant};
use tollgate::cache::{Cache, Lookup, Reply};
use tollgate::config::CacheSettings;

struct Live;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
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
    let before = LIVE.load(Ordering::Relaxed);
    let c = Cache::new(&settings, Duration::from_millis(100));
    let mut most = 0;
    for n in 0..30_000 {
        fill(&c, n, shared_pivot).await;
        if n % 1000 == 999 {
            most = most.max(LIVE.load(Ordering::Relaxed) - before);
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
