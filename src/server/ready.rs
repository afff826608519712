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
            // SAFETY: kill(2) with a valid signal number touches no memory of ours.
            if unsafe { libc::kill(parent, libc::SIGUSR1) } != 0 {
                log::warn!("cannot tell the starting process (pid {parent}) this daemon is ready");
            }
        }
        log::info!("ready: pid {pid}");
    }
}
