//! The fleet's limit counters in a real `redis-server`, driven directly: concurrent
//! reservations and settlements go to Redis in groups (together, one script call for both) and
//! each request gets its own answer;
//! a window's counter expires with its window, an in-flight one an hour after its last change.

mod common;

use common::free_port;
use common::redis_server::Redis;
use std::sync::Arc;
use std::time::Duration;
use tollgate::clock::Period;
use tollgate::limits::counters::{Charge, Counters};
use tollgate::store::redis::RedisCounters;

/// A fresh Redis, its URL, and counters kept in it.
fn counters() -> (Redis, String, Arc<RedisCounters>) {
    let redis = Redis::start(free_port());
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let c = Arc::new(RedisCounters::new(&url, Duration::from_secs(2)).unwrap());
    (redis, url, c)
}

/// A charge of `amount` on `name`'s hourly counter, capped at `limit`.
fn charge(name: String, limit: f64, amount: f64) -> Charge {
    Charge {
        name,
        period: Period::Hour,
        limit,
        amount,
    }
}

/// Settlements made together (group commit) each get their own counters' values back, and
/// every delta lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_settlements_are_grouped_and_each_answered_with_its_own_values() {
    use tollgate::limits::counters::{Adjustment, Verdict};
    let (redis, _, c) = counters();
    let now = tollgate::clock::now();
    // Each of 40 requests holds 100 on its own counter and 1 on a shared one.
    for i in 0..40 {
        let charges = [
            charge(format!("own-{i}"), 1e9, 100.0),
            charge("shared".into(), 1e9, 1.0),
        ];
        assert!(matches!(
            c.reserve(now, &charges).await.unwrap(),
            Verdict::Admitted(_)
        ));
    }
    let start = Period::Hour.window(now).0;
    let settle = |i: usize| {
        let c = c.clone();
        tokio::spawn(async move {
            let adj = |name: String, delta: f64| Adjustment {
                name,
                period: Period::Hour,
                window_start: start,
                delta,
            };
            let own = adj(format!("own-{i}"), -(i as f64));
            (
                i,
                c.adjust(&[own, adj("shared".into(), 1.0)]).await.unwrap(),
            )
        })
    };
    let tasks: Vec<_> = (0..40).map(settle).collect();
    let mut shared = Vec::new();
    for t in tasks {
        let (i, values) = t.await.unwrap();
        assert_eq!(values.len(), 2);
        assert_eq!(
            values[0],
            100.0 - i as f64,
            "request {i} got another's value"
        );
        shared.push(values[1]);
    }
    shared.sort_by(f64::total_cmp);
    let want: Vec<f64> = (41..=80).map(f64::from).collect();
    assert_eq!(
        shared, want,
        "each shared delta applied once, in some order"
    );
    drop(redis);
}

/// A connection to the Redis at `url`, its command stats reset.
async fn reset_stats(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut conn)
        .await
        .unwrap();
    conn
}

/// (One thread: every request queues before the first call returns, whatever else the
/// machine does.)
#[tokio::test]
async fn concurrent_reservations_are_grouped_and_each_judged_on_its_own() {
    use tollgate::limits::counters::Verdict;
    let (redis, url, c) = counters();
    let now = tollgate::clock::now();
    // Loads the script, so the count below is of the grouped calls alone.
    c.reserve(now, &[charge("warm".into(), 1.0, 1.0)])
        .await
        .unwrap();
    reset_stats(&url).await;
    // 60 requests at once: each holds 100 on its own counter and 1 on a shared one that
    // admits 25; every fifth asks for more than its own counter allows.
    let reserve = |i: usize| {
        let c = c.clone();
        tokio::spawn(async move {
            let own_limit = if i % 5 == 4 { 50.0 } else { 1e9 };
            let charges = [
                charge(format!("own-{i}"), own_limit, 100.0),
                charge("shared".into(), 25.0, 1.0),
            ];
            (i, c.reserve(now, &charges).await.unwrap())
        })
    };
    let tasks: Vec<_> = (0..60).map(reserve).collect();
    let (mut shared, mut refused_shared) = (Vec::new(), 0);
    for t in tasks {
        match t.await.unwrap() {
            (i, v) if i % 5 == 4 => {
                let Verdict::Refused { index, standing } = v else {
                    panic!("{i} was admitted over its own limit")
                };
                assert_eq!((index, standing.used), (0, 0.0));
            }
            (_, Verdict::Admitted(s)) => {
                assert_eq!(s.len(), 2);
                assert_eq!(s[0].used, 100.0, "a request got another's value");
                shared.push(s[1].used);
            }
            (_, Verdict::Refused { index, standing }) => {
                assert_eq!((index, standing.used), (1, 25.0));
                refused_shared += 1;
            }
        }
    }
    shared.sort_by(f64::total_cmp);
    assert_eq!(shared, (1..=25).map(f64::from).collect::<Vec<_>>());
    assert_eq!(refused_shared, 48 - 25);
    // The requests over their own limit were refused on it and raised nothing.
    for i in (4..60).step_by(5) {
        let charges = [charge(format!("own-{i}"), 50.0, 50.0)];
        let v = c.reserve(now, &charges).await.unwrap();
        assert!(
            matches!(v, Verdict::Admitted(ref s) if s[0].used == 50.0),
            "{i}: {v:?}"
        );
    }
    let calls = redis.script_calls();
    eprintln!("{calls} script calls");
    assert!(calls < 60, "{calls} script calls for 60 + 12 reservations");
    drop(redis);
}

/// 10 requests hold 10 each on an hourly counter "pool" of 100: full. Returns the time and a
/// settlement giving 6 back.
async fn fill_pool(c: &RedisCounters) -> (i64, tollgate::limits::counters::Adjustment) {
    use tollgate::limits::counters::{Adjustment, Verdict};
    let now = tollgate::clock::now();
    for _ in 0..10 {
        let v = c.reserve(now, &[charge("pool".into(), 100.0, 10.0)]).await;
        assert!(matches!(v, Ok(Verdict::Admitted(_))), "{v:?}");
    }
    let back = Adjustment {
        name: "pool".into(),
        period: Period::Hour,
        window_start: Period::Hour.window(now).0,
        delta: -6.0,
    };
    (now, back)
}

/// A settlement and a reservation that arrive together go in one script call: on one thread,
/// each turn queues a request's settlement and the next reservation before the group task
/// runs, so 10 turns take 10 calls (20 when each kind had its own); every delta lands once,
/// and the settlement goes first (the reservation fits only in what it gave back). A
/// settlement queued alone waits for the reservation after it.
#[tokio::test]
async fn a_settlement_rides_with_the_reservation_after_it() {
    use tollgate::limits::counters::Verdict;
    let (redis, url, c) = counters();
    let (now, back) = fill_pool(&c).await;
    let mut conn = reset_stats(&url).await;
    let back = [back];
    let start = back[0].window_start;
    let again = [charge("pool".into(), 100.0, 6.0)];
    for turn in 0..10 {
        // Joined in order: the settlement is queued, then the reservation.
        let (settled, reserved) = tokio::join!(c.adjust(&back), c.reserve(now, &again));
        assert_eq!(settled.unwrap(), [94.0]);
        let reserved = reserved.unwrap();
        assert!(
            matches!(reserved, Verdict::Admitted(_)),
            "{turn}: {reserved:?}"
        );
    }
    assert_eq!(redis.script_calls(), 10, "one call a turn");
    // A settlement made alone waits a moment for the next reservation and goes with it.
    for turn in 0..10 {
        let settling = tokio::spawn({
            let (c, back) = (c.clone(), back.clone());
            async move { c.adjust(&back).await }
        });
        // The settlement is queued and the group task has it before the reservation comes.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        let reserved = c.reserve(now, &again).await.unwrap();
        assert!(
            matches!(reserved, Verdict::Admitted(_)),
            "{turn}: {reserved:?}"
        );
        assert_eq!(settling.await.unwrap().unwrap(), [94.0]);
    }
    let calls = redis.script_calls() - 10;
    eprintln!("{calls} calls for 10 settlements and 10 reservations, one after another");
    assert!(
        calls < 15,
        "{calls} calls for 10 settlements and 10 reservations"
    );
    let used: String = redis::cmd("GET")
        .arg(format!("tollgate:pool:{start}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        used.parse::<f64>().unwrap(),
        100.0,
        "each delta and charge once"
    );
    drop(redis);
}

/// A key's TTL, or sets it to `set` seconds.
async fn ttl(conn: &mut redis::aio::MultiplexedConnection, key: &str, set: Option<i64>) -> i64 {
    let mut cmd = redis::cmd(if set.is_some() { "EXPIRE" } else { "TTL" });
    cmd.arg(key);
    if let Some(s) = set {
        cmd.arg(s);
    }
    cmd.query_async::<i64>(conn).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_counter_expires_with_its_window_and_an_in_flight_one_after_its_last_change() {
    let (redis, url, c) = counters();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let now = tollgate::clock::now();
    for period in [Period::Hour, Period::Open] {
        let charges = [Charge {
            name: "ttl".into(),
            period,
            limit: 1e9,
            amount: 1.0,
        }];
        let key = format!("tollgate:ttl:{}", period.window(now).0);
        c.reserve(now, &charges).await.unwrap();
        let first = ttl(&mut conn, &key, None).await;
        assert!(first > 0 && first <= 3605, "{period:?}: {first}");
        ttl(&mut conn, &key, Some(10)).await;
        c.reserve(now, &charges).await.unwrap();
        let after = ttl(&mut conn, &key, None).await;
        match period {
            Period::Open => assert!(after > 3000, "renewed by the change: {after}"),
            _ => assert!(after <= 10, "a window's expiry is not moved: {after}"),
        }
    }
    drop(redis);
}

/// The script raises a counter before judging it: a refused request must leave every counter
/// as it found it (value and expiry), create none, and a settlement of an expired counter must
/// not bring it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_and_a_late_settlement_leave_the_counters_as_they_were() {
    use tollgate::limits::counters::{Adjustment, Verdict};
    let (redis, url, c) = counters();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let now = tollgate::clock::now();
    let start = Period::Hour.window(now).0;
    let key = |name: &str| format!("tollgate:{name}:{start}");
    let get = |k: String| redis::cmd("GET").arg(k).to_owned();
    c.reserve(now, &[charge("kept".into(), 10.0, 4.0)])
        .await
        .unwrap();
    ttl(&mut conn, &key("kept"), Some(500)).await;
    // "kept" fits (4 + 3 <= 10), "fresh" would be created, "full" refuses (6 + 5 > 10).
    c.reserve(now, &[charge("full".into(), 10.0, 6.0)])
        .await
        .unwrap();
    let refused = c
        .reserve(
            now,
            &[
                charge("kept".into(), 10.0, 3.0),
                charge("fresh".into(), 10.0, 1.0),
                charge("full".into(), 10.0, 5.0),
            ],
        )
        .await
        .unwrap();
    assert!(
        matches!(refused, Verdict::Refused { index: 2, ref standing } if standing.used == 6.0),
        "{refused:?}"
    );
    let kept: String = get(key("kept")).query_async(&mut conn).await.unwrap();
    let fresh: Option<String> = get(key("fresh")).query_async(&mut conn).await.unwrap();
    let full: String = get(key("full")).query_async(&mut conn).await.unwrap();
    assert_eq!((kept.as_str(), fresh, full.as_str()), ("4", None, "6"));
    let left = ttl(&mut conn, &key("kept"), None).await;
    assert!(left > 400 && left <= 500, "the expiry is kept: {left}");
    // A settlement for a counter that has expired (here: never was) reads 0 and makes no key.
    let gone = Adjustment {
        name: "gone".into(),
        period: Period::Hour,
        window_start: start,
        delta: -2.0,
    };
    let late = Adjustment {
        delta: 5.0,
        ..gone.clone()
    };
    assert_eq!(c.adjust(&[gone, late]).await.unwrap(), [0.0, 0.0]);
    let none: Option<String> = get(key("gone")).query_async(&mut conn).await.unwrap();
    assert_eq!(none, None);
    drop(redis);
}

/// A settlement nobody waits for (no budget alerts) goes with the next reservation's call;
/// alone, it is sent within a few milliseconds by the flush task, which then goes quiet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_nobody_waits_for_goes_with_the_next_call_or_soon_alone() {
    use tollgate::limits::counters::Verdict;
    let (redis, url, c) = counters();
    let (now, back) = fill_pool(&c).await;
    let start = back.window_start;
    let conn = reset_stats(&url).await;
    let back = || vec![back.clone()];
    // Full until the settlement lands: the reservation fits only if it went first.
    c.adjust_later(back()).unwrap();
    let v = c.reserve(now, &[charge("pool".into(), 100.0, 6.0)]).await;
    assert!(
        matches!(v, Ok(Verdict::Admitted(ref s)) if s[0].used == 100.0),
        "{v:?}"
    );
    assert_eq!(redis.script_calls(), 1, "the settlement rode along");
    c.adjust_later(back()).unwrap();
    let used = || {
        let mut conn = conn.clone();
        let key = format!("tollgate:pool:{start}");
        async move {
            let v: String = redis::cmd("GET")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
            v.parse::<f64>().unwrap()
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while used().await != 94.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the settlement never landed"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(redis.script_calls(), 2, "one call for it, then quiet");
    drop(redis);
}

/// The counters' own connection signs in and selects the URL's database, with a password
/// alone or a user and password; a wrong password is an error, not a hang.
#[tokio::test]
async fn the_url_s_password_user_and_database_are_used() {
    use tollgate::limits::counters::Verdict;
    let redis = Redis::start_with(free_port(), &["--requirepass", "s3cret"]);
    let port = redis.port;
    let now = tollgate::clock::now();
    let start = Period::Hour.window(now).0;
    for (url, db) in [
        (format!("redis://:s3cret@127.0.0.1:{port}/3"), 3),
        (format!("redis://default:s3cret@127.0.0.1:{port}"), 0),
    ] {
        let c = RedisCounters::new(&url, Duration::from_secs(2)).unwrap();
        let v = c.reserve(now, &[charge("signed".into(), 10.0, 1.0)]).await;
        assert!(matches!(v, Ok(Verdict::Admitted(_))), "{url}: {v:?}");
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let used: Option<String> = redis::cmd("GET")
            .arg(format!("tollgate:signed:{start}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(used.as_deref(), Some("1"), "in database {db}");
        let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    }
    let wrong = format!("redis://:wrong@127.0.0.1:{port}");
    let c = RedisCounters::new(&wrong, Duration::from_secs(2)).unwrap();
    let v = c.reserve(now, &[charge("signed".into(), 10.0, 1.0)]).await;
    assert!(v.is_err(), "{v:?}");
    drop(redis);
}
