//! Readiness: once every listener accepts connections, tell systemd (`Type=notify`) that this
//! process is the service's main process and ready (`MAINPID=` + `READY=1`), and write the
//! pid file. After a binary upgrade the new process does the same, so systemd follows it
//! while the old one drains. Outside systemd (`NOTIFY_SOCKET` unset) only the pid file is
//! written. In daemon mode the starting process waits for this moment before it returns.
//!
//! Pingora binds its listeners when its services start, after any hook we could call, so
//! readiness is observed from outside: a connection to each address succeeds.

use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub struct Ready {
    /// Every address a listener binds (the proxy's and the admin listener's).
    pub addrs: Vec<SocketAddr>,
    /// Written with this process's id once ready (Pingora writes it only in daemon mode,
    /// and there before the listeners are up).
    pub pid_file: String,
    /// In daemon mode, the process that started this one: it waits (Pingora's
    /// `daemon_wait_for_ready`) for SIGUSR1, so `tollgate run -d` returns once the daemon
    /// serves.
    pub parent: Option<u32>,
}

/// How long the listeners may take to come up before readiness is given up.
const WAIT: Duration = Duration::from_secs(60);

#[async_trait::async_trait]
impl BackgroundService for Ready {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let until = Instant::now() + WAIT;
        for addr in &self.addrs {
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                if Instant::now() > until {
                    log::error!("listener {addr} did not come up; readiness not signalled");
                    return;
                }
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
        }
        let pid = std::process::id();
        if let Err(e) = std::fs::write(&self.pid_file, format!("{pid}\n")) {
            log::warn!("cannot write the pid file {}: {e}", self.pid_file);
        }
        use sd_notify::NotifyState::{MainPid, Ready as IsReady};
        if let Err(e) = sd_notify::notify(&[MainPid(pid), IsReady]) {
            log::warn!("cannot notify systemd of readiness: {e}");
        }
        if let Some(parent) = self.parent.and_then(|p| i32::try_from(p).ok()) {
            release(parent).await;
        }
        log::info!("ready: pid {pid}");
    }
}

/// Sends the starting process the SIGUSR1 it waits for, once it catches that signal: it
/// installs its handler only after the fork, and an early SIGUSR1 would kill it (its default
/// action), failing `run -d` although the daemon runs.
async fn release(parent: i32) {
    let until = Instant::now() + Duration::from_secs(10);
    while !catches_usr1(parent) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // SAFETY: kill(2) with a valid signal number touches no memory of ours.
    if unsafe { libc::kill(parent, libc::SIGUSR1) } != 0 {
        log::warn!("cannot tell the starting process (pid {parent}) this daemon is ready");
    }
}

/// Whether `pid` has a handler for SIGUSR1 (Linux: `SigCgt` in /proc/PID/status). Without
/// /proc the answer is yes: nothing better is known.
fn catches_usr1(pid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_none_or(|mask| mask & (1 << (libc::SIGUSR1 - 1)) != 0)
}
