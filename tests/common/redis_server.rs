//! A real `redis-server` for the fleet tests, on a port of the test's choosing.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` without persistence, killed on drop.
pub struct Redis {
    pub child: Child,
    pub port: u16,
}

impl Redis {
    pub fn start(port: u16) -> Redis {
        Redis::start_with(port, &[])
    }

    /// With more of redis-server's options (`--requirepass`, …).
    pub fn start_with(port: u16, more: &[&str]) -> Redis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(more)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/setup --python installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut redis = Redis { child, port };
        while !redis.answers() {
            let exited = redis.child.try_wait().ok().flatten();
            assert!(exited.is_none(), "redis-server exited: {exited:?}");
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    /// EVALSHA and EVAL calls it has run since it started or its stats were last reset.
    pub fn script_calls(&self) -> u64 {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{}", self.port)).unwrap();
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut c)
            .unwrap();
        (info.lines())
            .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
            .filter_map(|l| {
                l.split("calls=")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    }

    /// Whether it answers `PING` (or asks for a password): a connection alone may be the
    /// client's own (a connect to a local port nobody listens on can pick that port as its
    /// source and reach itself).
    fn answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let mut got = [0u8; 7];
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        s.write_all(b"PING\r\n").is_ok()
            && s.read_exact(&mut got).is_ok()
            && (&got == b"+PONG\r\n" || &got == b"-NOAUTH")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
