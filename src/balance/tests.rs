use super::*;
use crate::config::Config;

fn balancer(routes: &str, backends: &[&str]) -> (Config, Balancer) {
    let mut src = String::new();
    for b in backends {
        src += &format!(
            "[[backends]]\nname=\"{b}\"\nprovider=\"openai\"\nurl=\"http://127.0.0.1:1\"\n"
        );
    }
    src += routes;
    let cfg = Config::from_str_with_env(&src, &|_| None).unwrap();
    let m = Metrics::new().unwrap();
    let b = Balancer::new(&cfg, &m);
    (cfg, b)
}

fn order(b: &Balancer, r: &Route, pick: &Pick<'_>) -> Vec<usize> {
    let mut out = Vec::new();
    b.order(r, pick, &b.availability(r, pick), &mut out);
    out
}

fn router(cfg: &Config) -> crate::route::Router {
    crate::route::Router::new(cfg, |_| true)
}

#[test]
fn weights_are_honoured_and_interleaved() {
    let (cfg, b) = balancer(
        "[[routes]]\nname=\"r\"\nmodels=[\"m\"]\ntargets=[{backend=\"a\",weight=5},{backend=\"b\"},{backend=\"c\"}]\n",
        &["a", "b", "c"],
    );
    let router = router(&cfg);
    let r = router.find("m").unwrap().route;
    let firsts: Vec<usize> = (0..7).map(|_| order(&b, r, &Pick::default())[0]).collect();
    // nginx's smooth sequence for 5:1:1.
    assert_eq!(firsts, [0, 0, 1, 0, 2, 0, 0]);
}

#[test]
fn tiers_follow_each_other_and_unusable_targets_are_left_out() {
    let (cfg, b) = balancer(
        "[[routes]]\nmodels=[\"m\"]\ntargets=[{backend=\"a\",priority=1},{backend=\"b\"},{backend=\"c\",weight=3},{backend=\"d\",priority=2}]\n",
        &["a", "b", "c", "d"],
    );
    let router = router(&cfg);
    let r = router.find("m").unwrap().route;
    let mut avail = b.availability(r, &Pick::default());
    avail[3] = Avail::Down;
    let mut out = Vec::new();
    b.order(r, &Pick::default(), &avail, &mut out);
    assert_eq!(out.len(), 3);
    assert!(out[..2].contains(&1) && out[..2].contains(&2));
    assert_eq!(out[2], 0);
}

#[test]
fn least_load_prefers_the_idle_backend() {
    let (cfg, b) = balancer(
        "[[routes]]\nmodels=[\"m\"]\nstrategy=\"least-load\"\ntargets=[{backend=\"a\",weight=5},{backend=\"b\"}]\n",
        &["a", "b"],
    );
    let router = router(&cfg);
    let r = router.find("m").unwrap().route;
    assert_eq!(order(&b, r, &Pick::default()), [0, 1]);
    let held = b.backend(0).acquire("m", 0);
    assert_eq!(order(&b, r, &Pick::default()), [1, 0]);
    drop(held);
    assert_eq!(order(&b, r, &Pick::default()), [0, 1]);
}

#[test]
fn least_tokens_counts_estimates_outstanding() {
    let (cfg, b) = balancer(
        "[[routes]]\nmodels=[\"m\"]\nstrategy=\"least-load\"\nby=\"tokens\"\ntargets=[{backend=\"a\"},{backend=\"b\"}]\n",
        &["a", "b"],
    );
    let router = router(&cfg);
    let r = router.find("m").unwrap().route;
    let _big = b.backend(0).acquire("m", 9000);
    let _small1 = b.backend(1).acquire("m", 100);
    let _small2 = b.backend(1).acquire("m", 100);
    assert_eq!(order(&b, r, &Pick::default()), [1, 0]);
}

#[test]
fn affinity_keeps_keys_and_moves_only_the_leavers_share() {
    let (cfg, b) = balancer(
        "[[routes]]\nmodels=[\"m\"]\nstrategy=\"affinity\"\ntargets=[{backend=\"a\"},{backend=\"b\"},{backend=\"c\"}]\n",
        &["a", "b", "c"],
    );
    let router = router(&cfg);
    let r = router.find("m").unwrap().route;
    let keys: Vec<String> = (0..3000).map(|i| format!("key-{i}")).collect();
    let first = |down: Option<usize>| -> Vec<usize> {
        keys.iter()
            .map(|k| {
                let pick = Pick {
                    affinity: Some(k.as_bytes()),
                    ..Pick::default()
                };
                let mut avail = b.availability(r, &pick);
                if let Some(d) = down {
                    avail[d] = Avail::Down;
                }
                let mut out = Vec::new();
                b.order(r, &pick, &avail, &mut out);
                out[0]
            })
            .collect()
    };
    let all = first(None);
    assert_eq!(all, first(None), "the same key goes to the same target");
    for t in 0..3 {
        let share = all.iter().filter(|&&x| x == t).count();
        assert!((800..1200).contains(&share), "target {t}: {share}");
    }
    let without_c = first(Some(2));
    for (before, after) in all.iter().zip(&without_c) {
        if *before != 2 {
            assert_eq!(before, after, "only the leaving target's keys move");
        }
    }
}

#[test]
fn cost_orders_by_price_and_region_comes_first() {
    let (cfg, b) = balancer(
        "[[prices]]\nmodel=\"cheap\"\ninput=0.1\noutput=0.4\n\
         [[prices]]\nmodel=\"dear\"\ninput=3\noutput=15\n\
         [[routes]]\nmodels=[\"m\"]\nstrategy=\"cost\"\n\
         targets=[{backend=\"a\",model=\"dear\",region=\"eu\"},{backend=\"b\",model=\"cheap\"},{backend=\"c\"}]\n",
        &["a", "b", "c"],
    );
    let router = router(&cfg);
    let r = router.find("m").unwrap().route;
    let pick = Pick {
        model: "m",
        ..Pick::default()
    };
    assert_eq!(order(&b, r, &pick), [1, 0, 2]);
    let eu = Pick {
        model: "m",
        region: Some("eu"),
        ..Pick::default()
    };
    assert_eq!(order(&b, r, &eu), [0, 1, 2]);
}

#[test]
fn latency_prefers_the_faster_backend() {
    let (cfg, b) = balancer(
        "[[routes]]\nmodels=[\"m\"]\nstrategy=\"latency\"\ntargets=[{backend=\"a\"},{backend=\"b\"}]\n",
        &["a", "b"],
    );
    let router = router(&cfg);
    let r = router.find("m").unwrap().route;
    b.backend(0)
        .observe_latency(std::time::Duration::from_millis(400));
    b.backend(1)
        .observe_latency(std::time::Duration::from_millis(40));
    for _ in 0..20 {
        assert_eq!(order(&b, r, &Pick::default()), [1, 0]);
    }
}
