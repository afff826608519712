use super::key::{key, Tenant};
use super::*;
use crate::config::CacheSettings;

fn cache() -> Arc<Cache> {
    Arc::new(Cache::new(
        &CacheSettings::default(),
        Duration::from_millis(100),
    ))
}

fn k() -> CacheKey {
    key(
        "r",
        "chat",
        br#"{"model":"m","messages":[]}"#,
        Tenant::Key("a"),
    )
    .unwrap()
}

fn reply() -> Reply {
    Reply {
        exact: Some(Bytes::from_static(b"{}")),
        ..Default::default()
    }
}

const WAIT: Duration = Duration::from_secs(5);
const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn identical_misses_wait_for_the_first_and_hit() {
    let c = cache();
    let Lookup::Miss(first) = c.lookup("r", k(), false, false, WAIT).await else {
        panic!("an empty cache hits");
    };
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                matches!(
                    c.lookup("r", k(), false, false, WAIT).await,
                    Lookup::Hit(..)
                )
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.store(first, "r".into(), reply(), HOUR).await.unwrap();
    for w in waiters {
        assert!(
            w.await.unwrap(),
            "a waiter did not get the first one's reply"
        );
    }
}

#[tokio::test]
async fn a_fill_dropped_without_a_reply_lets_waiters_go_upstream() {
    let c = cache();
    let Lookup::Miss(first) = c.lookup("r", k(), false, false, WAIT).await else {
        panic!("an empty cache hits");
    };
    let c2 = c.clone();
    let waiter = tokio::spawn(async move {
        match c2.lookup("r", k(), false, false, WAIT).await {
            Lookup::Miss(f) => f.waited,
            Lookup::Hit(..) => false,
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(first);
    assert!(
        waiter.await.unwrap(),
        "the waiter should miss after waiting"
    );
}

#[tokio::test]
async fn a_waiter_gives_up_after_its_timeout() {
    let c = cache();
    let Lookup::Miss(_first) = c.lookup("r", k(), false, false, WAIT).await else {
        panic!("an empty cache hits");
    };
    let t0 = std::time::Instant::now();
    let Lookup::Miss(f) = c
        .lookup("r", k(), false, false, Duration::from_millis(100))
        .await
    else {
        panic!("nothing was stored");
    };
    assert!(f.waited);
    assert!(
        t0.elapsed() < WAIT,
        "the waiter's own timeout did not apply"
    );
}

#[tokio::test]
async fn no_cache_skips_the_entry_and_replaces_it() {
    let c = cache();
    let Lookup::Miss(f) = c.lookup("r", k(), false, false, WAIT).await else {
        panic!("an empty cache hits");
    };
    c.store(f, "r".into(), reply(), HOUR).await.unwrap();
    assert!(matches!(
        c.lookup("r", k(), false, false, WAIT).await,
        Lookup::Hit(..)
    ));
    let Lookup::Miss(f) = c.lookup("r", k(), true, false, WAIT).await else {
        panic!("no-cache used the stored entry");
    };
    let mut fresh = reply();
    fresh.exact = Some(Bytes::from_static(b"{\"n\":2}"));
    c.store(f, "r".into(), fresh, HOUR).await.unwrap();
    let Lookup::Hit(e, _) = c.lookup("r", k(), false, false, WAIT).await else {
        panic!("the refreshed entry is missing");
    };
    assert_eq!(e.reply.exact.as_deref(), Some(&b"{\"n\":2}"[..]));
}

#[tokio::test]
async fn a_stream_needs_the_pivot_form() {
    let c = cache();
    let Lookup::Miss(f) = c.lookup("r", k(), false, false, WAIT).await else {
        panic!("an empty cache hits");
    };
    c.store(f, "r".into(), reply(), HOUR).await.unwrap();
    let Lookup::Miss(f) = c.lookup("r", k(), false, true, WAIT).await else {
        panic!("an entry without the pivot form served a stream");
    };
    let mut both = reply();
    both.pivot = Some(Bytes::from_static(b"{}"));
    c.store(f, "r".into(), both, HOUR).await.unwrap();
    assert!(matches!(
        c.lookup("r", k(), false, true, WAIT).await,
        Lookup::Hit(..)
    ));
}
