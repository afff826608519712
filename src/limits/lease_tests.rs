use super::*;
use crate::limits::counters::Local;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The shared store stand-in: counters in memory, its reservations counted, able to fail.
#[derive(Default)]
struct Store {
    counters: Local,
    reserves: AtomicUsize,
    adjusts: AtomicUsize,
    down: AtomicBool,
}

#[async_trait]
impl Counters for Store {
    async fn reserve(&self, now: i64, charges: &[Charge]) -> Result<Verdict, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError("down".into()));
        }
        self.reserves.fetch_add(1, Ordering::SeqCst);
        self.counters.reserve(now, charges).await
    }
    async fn adjust(&self, adjustments: &[Adjustment]) -> Result<Vec<f64>, StoreError> {
        self.adjusts.fetch_add(1, Ordering::SeqCst);
        self.counters.adjust(adjustments).await
    }
    async fn once(&self, name: &str, period: Period, now: i64) -> Result<bool, StoreError> {
        self.counters.once(name, period, now).await
    }
}

impl Store {
    fn value(&self, name: &str) -> f64 {
        let all = self.counters.snapshot();
        all.into_iter()
            .find(|(k, _)| k == name)
            .map_or(0.0, |w| w.1.value)
    }
}

fn charge(name: &str, period: Period, limit: f64, amount: f64) -> Charge {
    Charge {
        name: name.into(),
        period,
        limit,
        amount,
    }
}

fn minute(limit: f64, amount: f64) -> Charge {
    charge("rpm", Period::Minute, limit, amount)
}

async fn admitted(c: &Leased<Store>, now: i64, charges: &[Charge]) -> Option<Vec<Standing>> {
    match c.reserve(now, charges).await.unwrap() {
        Verdict::Admitted(s) => Some(s),
        Verdict::Refused { .. } => None,
    }
}

const NOW: i64 = 600;

#[tokio::test]
async fn a_lease_serves_requests_without_a_round_trip_each() {
    let store = Arc::new(Store::default());
    let c = Leased::new(store.clone(), 0.01);
    for i in 0..100 {
        let s = admitted(&c, NOW, &[minute(1000.0, 1.0)]).await.unwrap();
        // The instance's own count, its unused lease not counted.
        assert_eq!(s[0].used, f64::from(i + 1));
    }
    // Each round trip takes one request and a lease of 10 more: 100 requests, 10 trips.
    assert_eq!(store.reserves.load(Ordering::SeqCst), 10);
    assert_eq!(store.value("rpm"), 110.0);
}

#[tokio::test]
async fn a_fleet_on_leases_admits_exactly_the_limit() {
    let store = Arc::new(Store::default());
    let fleet = [
        Leased::new(store.clone(), 0.03),
        Leased::new(store.clone(), 0.03),
        Leased::new(store.clone(), 0.03),
    ];
    let (mut admitted_n, mut refused_in_a_row, mut i) = (0, 0, 0);
    // Round robin until every instance is refused: near the limit the leases shrink to the
    // request itself, and what each holds it uses itself.
    while refused_in_a_row < fleet.len() {
        match admitted(&fleet[i % 3], NOW, &[minute(100.0, 1.0)]).await {
            Some(_) => (admitted_n, refused_in_a_row) = (admitted_n + 1, 0),
            None => refused_in_a_row += 1,
        }
        i += 1;
    }
    assert_eq!(admitted_n, 100);
    assert_eq!(store.value("rpm"), 100.0);
    // Once the store had no room for a lease, a refused request costs one round trip, not two.
    let before = store.reserves.load(Ordering::SeqCst);
    assert!(admitted(&fleet[0], NOW, &[minute(100.0, 1.0)])
        .await
        .is_none());
    assert_eq!(store.reserves.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn a_request_larger_than_the_lease_or_in_flight_is_counted_in_the_store_each_time() {
    let store = Arc::new(Store::default());
    let c = Leased::new(store.clone(), 0.001);
    // A lease of 1 token cannot cover a 50-token request: no lease is asked for.
    for _ in 0..3 {
        admitted(&c, NOW, &[charge("tpm", Period::Minute, 1000.0, 50.0)]).await;
    }
    let open = charge("inflight", Period::Open, 1e9, 1.0);
    for _ in 0..3 {
        admitted(
            &Leased::new(store.clone(), 0.5),
            NOW,
            std::slice::from_ref(&open),
        )
        .await;
    }
    assert_eq!(store.reserves.load(Ordering::SeqCst), 6);
    assert_eq!((store.value("tpm"), store.value("inflight")), (150.0, 3.0));
}

#[tokio::test]
async fn settlements_stay_in_the_lease_until_it_is_short_and_the_excess_goes_back() {
    let store = Arc::new(Store::default());
    let c = Leased::new(store.clone(), 0.01);
    let s = admitted(&c, NOW, &[minute(10_000.0, 50.0)]).await.unwrap();
    assert_eq!((store.value("rpm"), s[0].used), (150.0, 50.0));
    let adj = |delta| Adjustment {
        name: "rpm".into(),
        period: Period::Minute,
        window_start: s[0].window_start,
        delta,
    };
    // Used 20 more than estimated: out of the lease of 100.
    assert_eq!(c.adjust(&[adj(20.0)]).await.unwrap(), [70.0]);
    // 90 more: the lease has 80, so the store counts it.
    assert_eq!(c.adjust(&[adj(90.0)]).await.unwrap(), [240.0]);
    assert_eq!(store.adjusts.load(Ordering::SeqCst), 1);
    // An estimate 150 above use: the lease holds 230, past twice its size, so 130 go back.
    assert_eq!(c.adjust(&[adj(-150.0)]).await.unwrap(), [10.0]);
    for _ in 0..100 {
        if store.value("rpm") != 240.0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(store.value("rpm"), 110.0);
    // A rolled-over window's settlement is the store's.
    let late = Adjustment {
        window_start: 0,
        ..adj(5.0)
    };
    assert_eq!(c.adjust(&[late]).await.unwrap(), [0.0]);
}

#[tokio::test]
async fn a_refused_or_failed_round_trip_puts_back_what_the_leases_gave() {
    let store = Arc::new(Store::default());
    let c = Leased::new(store.clone(), 0.01);
    let both = |amount| {
        [
            minute(1000.0, 1.0),
            charge("tpm", Period::Minute, 500.0, amount),
        ]
    };
    admitted(&c, NOW, &both(1.0)).await.unwrap();
    // rpm is covered by its lease, tpm is not and the store refuses it: rpm's unit goes back.
    match c.reserve(NOW, &both(600.0)).await.unwrap() {
        Verdict::Refused { index, .. } => assert_eq!(index, 1),
        v => panic!("{v:?}"),
    }
    store.down.store(true, Ordering::SeqCst);
    assert!(c.reserve(NOW, &both(10.0)).await.is_err());
    // The lease still holds 10 rpm, 5 tpm: five requests of 1 each pass with the store down.
    for _ in 0..5 {
        assert!(admitted(&c, NOW, &both(1.0)).await.is_some());
    }
    assert!(c.reserve(NOW, &both(1.0)).await.is_err());
    // A new window does not use the last one's lease.
    store.down.store(false, Ordering::SeqCst);
    let before = store.reserves.load(Ordering::SeqCst);
    admitted(&c, NOW + 60, &both(1.0)).await.unwrap();
    assert_eq!(store.reserves.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn a_counter_refused_without_a_lease_is_not_asked_again() {
    let store = Arc::new(Store::default());
    let c = Leased::new(store.clone(), 0.01);
    // rpm asks for a lease, tpm (600 tokens, past its 5-token lease) does not; tpm is refused.
    let both = [
        minute(1000.0, 1.0),
        charge("tpm", Period::Minute, 500.0, 600.0),
    ];
    match c.reserve(NOW, &both).await.unwrap() {
        Verdict::Refused { index, .. } => assert_eq!(index, 1),
        v => panic!("{v:?}"),
    }
    assert_eq!(store.reserves.load(Ordering::SeqCst), 1);
    assert_eq!((store.value("rpm"), store.value("tpm")), (0.0, 0.0));
}
