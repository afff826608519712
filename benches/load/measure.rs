//! What the load benchmark reads of the processes it measures (CPU time and resident memory,
//! from `/proc`) and of the machine and commit it measures them on.

/// CPU seconds (user + system, every thread) process `pid` has used; 0 for pid 0 or when it
/// cannot be read. `/proc` counts in USER_HZ, 100 a second on Linux.
pub fn cpu_secs(pid: u32) -> f64 {
    if pid == 0 {
        return 0.0;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime) are the 12th and 13th after the name.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// A `/proc/{pid}/status` field in KiB (`VmRSS:`, `VmHWM:`, `RssAnon:`, ...).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The KiB the gateway's bounded stores say they hold (the response cache and the kept
/// Responses, by its admin's `/metrics`): memory it keeps by configuration, which a bare
/// proxy has no counterpart of. `None` when the metrics cannot be read.
pub async fn stores_kib(admin_port: u16) -> Option<f64> {
    use http_body_util::{BodyExt, Full};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], admin_port));
    let mut sender = super::driver::connect(addr).await?;
    let req = hyper::Request::get("/metrics")
        .header("host", "bench")
        .body(Full::new(bytes::Bytes::new()))
        .ok()?;
    let resp = sender.send_request(req).await.ok()?;
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    let text = String::from_utf8_lossy(&body);
    let gauge = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
    };
    let cache = gauge("tollgate_cache_bytes")?;
    Some((cache + gauge("tollgate_responses_kept_bytes").unwrap_or(0.0)) / 1024.0)
}

/// The machine (cores, CPU model) and the commit measured, for the report.
pub fn machine() -> serde_json::Value {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    // The commit measured (with `+changes` when the tree differs from it).
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let mut commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    if git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty()) {
        commit += "+changes";
    }
    serde_json::json!({"cores": cores, "cpu": model, "date": tollgate::clock::now_rfc3339(),
           "commit": commit, "note": "load generator, mock and proxy share these cores"})
}
