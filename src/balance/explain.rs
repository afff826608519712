//! `tollgate route`: the order in which the next request for a model would try its targets,
//! each with its state. The live state (load, ejections, cool-downs, active checks) comes from
//! the running gateway's admin listener (`/backends`) when it answers; otherwise the order is
//! the one a freshly started gateway would use.

use super::{Avail, BackendView, Balancer, Pick};
use crate::config::Config;
use crate::observe::Metrics;
use crate::route::{AffinityKey, Route, Router, Strategy};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::time::Duration;

pub struct Query {
    pub model: String,
    /// The client key's name (the affinity strategy's key).
    pub key: Option<String>,
    pub region: Option<String>,
}

pub fn explain(cfg: &Config, q: &Query) -> Result<String, String> {
    let metrics = Metrics::new().map_err(|e| e.to_string())?;
    let balancer = Balancer::new(cfg, &metrics);
    let router = Router::new(cfg, |i| cfg.backends.get(i).is_some_and(|b| b.enabled));
    let route = router
        .find(&q.model)
        .ok_or_else(|| format!("no route serves model `{}`", q.model))?
        .route;
    if let Some(k) = &q.key {
        if !cfg.keys.iter().any(|c| &c.name == k) {
            return Err(format!("no key named `{k}`"));
        }
    }
    let source = match live_state(cfg) {
        Ok(views) => {
            for v in &views {
                if let Some(b) = balancer.backends().iter().find(|b| *b.name == v.name) {
                    b.restore(v);
                }
            }
            "live state from the running gateway".to_string()
        }
        Err(why) => format!("state of a fresh start ({why})"),
    };
    let region = q.region.as_deref().or(cfg.balance.region.as_deref());
    let affinity = match &route.strategy {
        Strategy::Affinity(AffinityKey::Key) => q.key.as_deref().map(str::as_bytes),
        _ => None,
    };
    let pick = Pick {
        affinity,
        region,
        model: &q.model,
    };
    let avail = balancer.availability(route, &pick);
    let mut order = Vec::new();
    balancer.order(route, &pick, &avail, &mut order);
    let mut out = format!(
        "model `{}` → route `{}`: {}{}\n({source})\n",
        q.model,
        route.name,
        describe(&route.strategy),
        region.map_or(String::new(), |r| format!(
            "; targets in region `{r}` first"
        )),
    );
    for (n, &i) in order.iter().enumerate() {
        line(
            &mut out,
            &format!("{:>2}.", n + 1),
            route,
            &balancer,
            &pick,
            i,
            avail[i],
        );
    }
    for i in (0..route.targets.len()).filter(|i| !order.contains(i)) {
        line(&mut out, " --", route, &balancer, &pick, i, avail[i]);
    }
    Ok(out)
}

fn describe(s: &Strategy) -> &'static str {
    match s {
        Strategy::Weighted => "smooth weighted round robin within each priority tier",
        Strategy::LeastLoad => "fewest requests in flight first (ties by weight)",
        Strategy::LeastTokens => "fewest estimated tokens outstanding first (ties by weight)",
        Strategy::Latency => "power of two choices by time to first byte × load",
        Strategy::Cost => "cheapest by the configured prices first",
        Strategy::Affinity(_) => {
            "rendezvous hash of the request's affinity key (round robin without one)"
        }
    }
}

fn line(
    out: &mut String,
    pos: &str,
    route: &Route,
    b: &Balancer,
    pick: &Pick<'_>,
    i: usize,
    a: Avail,
) {
    let t = &route.targets[i];
    let state = b.backend(t.backend);
    let now = super::now_ms();
    let secs = |until: u64| until.saturating_sub(now) as f64 / 1000.0;
    let why = match a {
        Avail::Ready => format!(
            "ready (in flight {}, latency {:.0} ms)",
            state.in_flight(),
            state.latency_ms()
        ),
        Avail::Trial => "ejection over: the next request is its trial".into(),
        Avail::Busy => "busy: at its max_concurrent".into(),
        Avail::Cooling(u) => format!("cooling down for {:.1} s (Retry-After)", secs(u)),
        Avail::Ejected(u) => format!("ejected for {:.1} s after consecutive failures", secs(u)),
        Avail::Down => "unhealthy: failing its active health check".into(),
        Avail::Disabled => "disabled: its credentials are not set".into(),
    };
    let region = t
        .region
        .as_deref()
        .map_or(String::new(), |r| format!(" region {r}"));
    let _ = writeln!(
        out,
        "{pos} {} (model {}, priority {}, weight {}{region}): {why}",
        state.name,
        Balancer::upstream_model(t, pick),
        t.priority,
        t.weight,
    );
}

/// The running gateway's `/backends`, from the admin listener named in the config.
fn live_state(cfg: &Config) -> Result<Vec<BackendView>, String> {
    let addr = cfg
        .server
        .admin_listen
        .ok_or("no admin listener configured")?;
    let unreachable =
        |e: std::io::Error| format!("gateway admin listener {addr} not reachable: {e}");
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(unreachable)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(unreachable)?;
    let auth = cfg.server.admin_token.as_ref().map_or(String::new(), |t| {
        format!("Authorization: Bearer {}\r\n", t.expose())
    });
    write!(
        s,
        "GET /backends HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .map_err(unreachable)?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).map_err(unreachable)?;
    let text = String::from_utf8_lossy(&reply);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("a malformed reply from the admin listener")?;
    if !head.starts_with("HTTP/1.1 200") {
        let status = head.lines().next().unwrap_or_default();
        return Err(format!("the admin listener answered `{status}`"));
    }
    #[derive(serde::Deserialize)]
    struct All {
        backends: Vec<BackendView>,
    }
    let all: All = serde_json::from_str(body).map_err(|e| format!("unreadable /backends: {e}"))?;
    Ok(all.backends)
}
