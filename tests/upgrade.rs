//! Zero-downtime binary upgrade through the real binary, with the very commands the systemd
//! unit's `ExecReload=` runs: under continuous requests and long streams, no request fails,
//! every stream completes with all its events, the old process drains and exits 0, and the
//! new one (a daemon that told "systemd" it is the main process and ready) serves.

mod common;

use common::{backend, chat, client, mock, Gateway, BIN};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Stops the upgraded daemon (not our child) when the test ends, however it ends.
struct Daemon(Option<u32>);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

/// The unit's `ExecReload=` lines, for this gateway's binary and config.
fn exec_reload(config: &str, main_pid: u32) -> Vec<String> {
    include_str!("../systemd/tollgate.service")
        .lines()
        .filter_map(|l| l.strip_prefix("ExecReload="))
        .map(|l| {
            l.replace("/usr/bin/tollgate", BIN)
                .replace("/etc/tollgate/tollgate.toml", config)
                .replace("$MAINPID", &main_pid.to_string())
        })
        .collect()
}

/// Requests one after another on fresh connections until `stop`; counts each outcome.
async fn keep_asking(
    url: String,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
) {
    let c = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    while !stop.load(Ordering::Relaxed) {
        let r = c.post(&url).json(&chat("m")).send().await;
        let good = match r {
            Ok(r) if r.status() == 200 => {
                r.text().await.is_ok_and(|t| t.contains("chat.completion"))
            }
            Ok(r) => {
                eprintln!("status {}", r.status());
                false
            }
            Err(e) => {
                eprintln!("request failed: {e:?}");
                false
            }
        };
        let n = if good { &ok } else { &failed };
        n.fetch_add(1, Ordering::Relaxed);
    }
}

/// A long stream, read to its end; returns its text.
async fn long_stream(url: String) -> String {
    let mut body = chat("m");
    body["stream"] = true.into();
    let mut r = client().post(url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut text = String::new();
    while let Some(c) = r.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&c));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_reload_upgrades_the_binary_under_load_without_a_failed_request() {
    let m = mock("m", &["--chunk-delay-ms", "40", "--words", "40"]);
    let cfg = format!(
        "{}[[routes]]\nmodels = [\"m\"]\ntargets = [{{ backend = \"b\" }}]\n",
        backend("b", m.port, "")
    );
    let mut g = Gateway::start("grace_period_seconds = 30", &cfg);
    let dir = g.config_path.parent().unwrap().to_path_buf();
    let old_pid = g.proc.pid();
    let url = g.url("/v1/chat/completions");

    let (stop, ok, failed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let askers: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(keep_asking(
                url.clone(),
                stop.clone(),
                ok.clone(),
                failed.clone(),
            ))
        })
        .collect();
    // Streams of 42 events over ~1.7 s, started before the upgrade.
    let streams: Vec<_> = (0..4)
        .map(|_| tokio::spawn(long_stream(url.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = ok.load(Ordering::Relaxed);
    assert!(before > 0);

    // "systemd": a notify socket, and the unit's reload commands in order.
    let notify_path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&notify_path);
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let log = std::fs::File::create(dir.join("upgraded.log")).unwrap();
    let mut daemon = Daemon(None);
    let config = g.config_path.to_str().unwrap().to_string();
    for line in exec_reload(&config, old_pid) {
        let status = tokio::task::spawn_blocking({
            let (log, notify_path, line) =
                (log.try_clone().unwrap(), notify_path.clone(), line.clone());
            move || {
                Command::new("sh")
                    .args(["-c", &line])
                    .env_clear()
                    .env("PATH", "/usr/bin:/bin")
                    .env("NOTIFY_SOCKET", notify_path)
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().unwrap())
                    .stderr(log)
                    .status()
                    .unwrap()
            }
        })
        .await
        .unwrap();
        assert!(status.success(), "`{line}` failed: {status}");
    }
    // The last command returned once the new process serves: it had already said so, as the
    // main process.
    notify.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 256];
    let n = notify
        .recv(&mut buf)
        .expect("no readiness notice when the command returned");
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    let new_pid: u32 = std::fs::read_to_string(dir.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    daemon.0 = Some(new_pid);
    assert_ne!(new_pid, old_pid);
    assert!(
        msg.contains(&format!("MAINPID={new_pid}")) && msg.contains("READY=1"),
        "{msg}"
    );

    // The old process finishes its streams, then exits 0.
    let status = g
        .proc
        .wait_exit(Duration::from_secs(20))
        .expect("old process still running");
    assert!(status.success(), "{status}");
    let after_exit = ok.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ok.load(Ordering::Relaxed) < after_exit + 20 {
        assert!(Instant::now() < deadline, "the new process does not serve");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for a in askers {
        a.await.unwrap();
    }
    for s in streams {
        let text = s.await.unwrap();
        assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
        assert_eq!(text.matches("chat.completion.chunk").count(), 42, "{text}");
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "failed requests");
    // Streams started on the new process complete too.
    let text = long_stream(url).await;
    assert!(text.trim_end().ends_with("data: [DONE]"));
}

#[tokio::test]
async fn run_as_a_daemon_returns_once_the_listeners_accept() {
    let (port, admin) = (common::free_port(), common::free_port());
    let dir = std::env::temp_dir().join(format!("tollgate-daemon-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\nadmin_listen = \"127.0.0.1:{admin}\"\nthreads = 1\nopen = true\n\
         pid_file = \"{pid}\"\nupgrade_sock = \"{sock}\"\n[store]\npath = \"{db}\"\n\
         [log]\naccess_log = \"access.log\"\n{}\
         [[routes]]\nmodels = [\"m\"]\ntargets = [{{ backend = \"b\" }}]\n",
        backend("b", common::dead_port(), ""),
        pid = dir.join("pid").display(),
        sock = dir.join("upgrade.sock").display(),
        db = dir.join("t.db").display(),
    );
    let path = dir.join("tollgate.toml");
    std::fs::write(&path, cfg).unwrap();
    let status = Command::new(BIN)
        .args(["run", "-d", "-c", path.to_str().unwrap()])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    let pid: u32 = std::fs::read_to_string(dir.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _daemon = Daemon(Some(pid));
    // No polling: both listeners accept the moment the command has returned.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert!(std::net::TcpStream::connect(("127.0.0.1", admin)).is_ok());
    // A relative path means the directory the daemon was started from, as before the fork.
    let r = client()
        .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .json(&chat("m"))
        .send()
        .await
        .unwrap();
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(dir.join("access.log")).is_ok_and(|t| t.contains(&rid)) {
        assert!(
            Instant::now() < deadline,
            "no access log line in the start directory"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
