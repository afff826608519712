//! The load benchmark's driver: closed-loop connections at a fixed concurrency, each sending
//! its next request when the previous one finished, every latency recorded, and the serving
//! process's CPU time read around each point; scenarios interleaved over rounds.

use super::rounds::{self, Figures};
use super::{measure, Spec, Target, KEY};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

#[derive(Default)]
pub struct Point {
    totals: Vec<Duration>,
    ttfbs: Vec<Duration>,
    pub errors: u64,
    secs: f64,
    /// CPU seconds the serving process spent over the point, and the requests it answered in
    /// that time (warm-up included).
    cpu_secs: f64,
    served: u64,
    /// Each round's figures ([`Figures`]), in round order.
    rounds: Vec<Figures>,
    /// The reference's (the passthrough's) figures around each round's slice of this
    /// scenario: the mean of the reference slices just before and just after it (none for
    /// the reference itself). The report pairs them with `rounds`.
    around: Vec<Figures>,
}

fn pct(v: &[Duration], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() as f64 * q) as usize).min(v.len() - 1);
    v[i].as_secs_f64() * 1e6
}

impl Point {
    pub fn summary(&mut self) -> Value {
        self.totals.sort_unstable();
        self.ttfbs.sort_unstable();
        json!({
            "requests": self.totals.len(),
            "errors": self.errors,
            "rps": self.totals.len() as f64 / self.secs,
            "rounds_rps": column(&self.rounds, 0), "ref_rounds_rps": column(&self.around, 0),
            "rounds_p50_us": column(&self.rounds, 1), "ref_rounds_p50_us": column(&self.around, 1),
            "rounds_p99_us": column(&self.rounds, 2), "ref_rounds_p99_us": column(&self.around, 2),
            "rounds_ttfb_p99_us": column(&self.rounds, 3),
            "ref_rounds_ttfb_p99_us": column(&self.around, 3),
            "rounds_cpu_us": column(&self.rounds, 4), "ref_rounds_cpu_us": column(&self.around, 4),
            "p50_us": pct(&self.totals, 0.50), "p90_us": pct(&self.totals, 0.90),
            "p99_us": pct(&self.totals, 0.99), "max_us": pct(&self.totals, 1.0),
            "ttfb_p50_us": pct(&self.ttfbs, 0.50), "ttfb_p99_us": pct(&self.ttfbs, 0.99),
            "cpu_us_per_request": if self.served > 0 && self.cpu_secs > 0.0 {
                json!(self.cpu_secs * 1e6 / self.served as f64)
            } else {
                Value::Null
            },
        })
    }
}

/// One request; returns (total, time to first body byte), or why it failed (a non-2xx status
/// with the start of its body, or the transport error) so a failed run says what went wrong.
async fn one(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    spec: &Spec,
) -> Result<(Duration, Duration), String> {
    let mut req = hyper::Request::post(spec.path)
        .header("host", "bench")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {KEY}"));
    for (k, v) in &spec.extra {
        req = req.header(*k, v.as_str());
    }
    let body = match spec.unique {
        Some(at) => unique_body(&spec.body, at),
        None => spec.body.clone(),
    };
    let req = req
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    sender
        .ready()
        .await
        .map_err(|e| format!("connection not ready: {e}"))?;
    let t0 = Instant::now();
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = resp.status();
    let mut body = resp.into_body();
    let mut first = None;
    let mut head = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("body after {:?}: {e}", t0.elapsed()))?;
        if let Some(d) = frame.data_ref().filter(|d| !d.is_empty()) {
            first.get_or_insert_with(|| t0.elapsed());
            if !status.is_success() && head.len() < 300 {
                head.extend_from_slice(d);
            }
        }
    }
    let total = t0.elapsed();
    if !status.is_success() {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&head)));
    }
    Ok((total, first.unwrap_or(total)))
}

/// Where the first 8 bytes of `body`'s last `content` string are, if it has one that long.
pub fn counter_at(body: &[u8]) -> Option<usize> {
    let key = b"\"content\":\"";
    (0..body.len().saturating_sub(key.len() + 8))
        .rev()
        .find(|&i| body[i..].starts_with(key))
        .map(|at| at + key.len())
}

/// `body` with the 8 bytes at `at` replaced by a counter, in hex.
fn unique_body(body: &Bytes, at: usize) -> Bytes {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = N.fetch_add(1, Ordering::Relaxed) as u32;
    let mut b = body.to_vec();
    for (k, d) in b[at..at + 8].iter_mut().enumerate() {
        *d = HEX[(n >> (28 - 4 * k) & 0xf) as usize];
    }
    Bytes::from(b)
}

pub async fn connect(
    addr: SocketAddr,
) -> Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let s = TcpStream::connect(addr).await.ok()?;
    let _ = s.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(sender)
}

/// One load point against `port`; with `pid`, the CPU time that process spent on it.
pub async fn run_point(
    port: u16,
    spec: &Spec,
    conc: usize,
    (warmup, dur): (Duration, Duration),
    pid: u32,
) -> Point {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let cpu0 = measure::cpu_secs(pid);
    let start = Instant::now() + warmup;
    let end = start + dur;
    let mut tasks = Vec::with_capacity(conc);
    for _ in 0..conc {
        let spec = spec.clone();
        tasks.push(tokio::spawn(async move {
            let mut p = Point::default();
            let mut sender = connect(addr).await;
            while Instant::now() < end {
                let Some(s) = sender.as_mut() else {
                    p.errors += 1;
                    eprintln!("load: could not connect to port {port}");
                    sender = connect(addr).await;
                    continue;
                };
                let t = Instant::now();
                match one(s, &spec).await {
                    Ok((total, ttfb)) if t >= start && t < end => {
                        p.served += 1;
                        p.totals.push(total);
                        p.ttfbs.push(ttfb);
                    }
                    Ok(_) => p.served += 1,
                    Err(why) => {
                        p.errors += 1;
                        eprintln!("load: request to port {port} failed: {why}");
                        sender = connect(addr).await;
                    }
                }
            }
            p
        }));
    }
    let mut all = Point {
        secs: dur.as_secs_f64(),
        ..Point::default()
    };
    for t in tasks {
        if let Ok(p) = t.await {
            all.totals.extend(p.totals);
            all.ttfbs.extend(p.ttfbs);
            all.errors += p.errors;
            all.served += p.served;
        } else {
            all.errors += 1;
        }
    }
    all.cpu_secs = measure::cpu_secs(pid) - cpu0;
    all
}

/// One slice folded into a scenario's pooled point; returns the slice's figures.
fn fold(acc: &mut Point, mut p: Point) -> Figures {
    p.totals.sort_unstable();
    p.ttfbs.sort_unstable();
    let cpu = if p.served > 0 && p.cpu_secs > 0.0 {
        p.cpu_secs * 1e6 / p.served as f64
    } else {
        f64::NAN
    };
    let figures = [
        p.totals.len() as f64 / p.secs,
        pct(&p.totals, 0.50),
        pct(&p.totals, 0.99),
        pct(&p.ttfbs, 0.99),
        cpu,
    ];
    acc.totals.extend(p.totals);
    acc.ttfbs.extend(p.ttfbs);
    acc.errors += p.errors;
    acc.secs += p.secs;
    acc.cpu_secs += p.cpu_secs;
    acc.served += p.served;
    figures
}

/// One figure of each round, in round order.
fn column(rounds: &[Figures], k: usize) -> Vec<f64> {
    rounds.iter().map(|f| f[k]).collect()
}

/// Runs every scenario `rounds` times, each slice of a scenario between two slices of the
/// reference (`targets[reference]`, the passthrough; `rounds::order`). A scenario's round is
/// compared with the mean of the two reference slices around it, measured seconds apart, so
/// the shared machine's drift (its speed moves by tens of percent over a minute) falls on both
/// sides of a ratio rather than between them. The tables pool every slice; the reference's
/// round figures are the means of its slices in that round.
pub async fn interleaved(
    targets: &[Target],
    reference: usize,
    spec: &Spec,
    conc: usize,
    (warmup, dur): (Duration, Duration),
    rounds: usize,
) -> Vec<(&'static str, Point)> {
    let mut pooled: Vec<(&'static str, Point)> =
        targets.iter().map(|t| (t.name, Point::default())).collect();
    for r in 0..rounds {
        let seq = rounds::order(targets.len(), reference, r);
        let mut slices = Vec::with_capacity(seq.len());
        for &i in &seq {
            let t = targets[i];
            let p = run_point(t.port, &t.spec(spec), conc, (warmup, dur), t.pid).await;
            slices.push(fold(&mut pooled[i].1, p));
        }
        let (scenarios, own) = rounds::pair(&seq, &slices, reference);
        for (i, figures, around) in scenarios {
            pooled[i].1.rounds.push(figures);
            pooled[i].1.around.push(around);
        }
        pooled[reference].1.rounds.push(own);
    }
    pooled
}
