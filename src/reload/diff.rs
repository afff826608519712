//! Which changed settings a reload cannot apply: they belong to the process (its sockets,
//! threads, files and store), so they wait for a restart or a binary upgrade
//! (`systemctl reload`), which re-reads everything.

use crate::config::Config;

/// The settings that differ between the running process's `boot` config and `new`, and that
/// only a new process applies.
pub fn restart_required(boot: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (&boot.server, &new.server);
    let tls_listen = |c: &Config| c.server.tls.as_ref().map(|t| t.listen.clone());
    let admin_tls = |c: &Config| c.server.admin_tls.as_ref().map(|t| t.client_ca.clone());
    let checks: [(&'static str, bool); 22] = [
        ("server.listen", a.listen != b.listen),
        ("server.admin_listen", a.admin_listen != b.admin_listen),
        ("server.threads", a.threads != b.threads),
        ("server.h2c", a.h2c != b.h2c),
        // The listener's edge is built once: its caps and the first head's deadline.
        (
            "server.max_connections",
            (a.max_connections, a.max_connections_per_client)
                != (b.max_connections, b.max_connections_per_client),
        ),
        (
            "server.header_timeout_seconds",
            a.header_timeout_seconds != b.header_timeout_seconds,
        ),
        ("server.tls.listen", tls_listen(boot) != tls_listen(new)),
        // The admin listener's TLS and its client CA are set when it binds; its pair reloads.
        ("server.admin_tls", admin_tls(boot) != admin_tls(new)),
        ("server.pid_file", a.pid_file != b.pid_file),
        ("server.upgrade_sock", a.upgrade_sock != b.upgrade_sock),
        (
            "server.grace_period_seconds",
            a.grace_period_seconds != b.grace_period_seconds,
        ),
        (
            "server.graceful_shutdown_timeout_seconds",
            a.graceful_shutdown_timeout_seconds != b.graceful_shutdown_timeout_seconds,
        ),
        ("store.kind", boot.store.kind != new.store.kind),
        (
            "store.flush_interval_ms",
            boot.store.flush_interval_ms != new.store.flush_interval_ms,
        ),
        // The counters' Redis line and its leases are made once.
        ("store.timeout_ms", boot.store.timeout != new.store.timeout),
        ("store.lease", boot.store.lease != new.store.lease),
        ("log.access_log", boot.log.access_log != new.log.access_log),
        ("log.level", boot.log.level != new.log.level),
        ("alerts", boot.alerts != new.alerts),
        ("responses", boot.responses != new.responses),
        // The cache's link to Redis is made once; its bounds and wait reload.
        (
            "cache.redis_url",
            boot.cache.redis_url != new.cache.redis_url,
        ),
        ("mock_listen", boot.mock_listen != new.mock_listen),
    ];
    checks
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> Config {
        let text = format!(
            "[server]\nlisten = [\"127.0.0.1:1\"]\n{extra}\n[[backends]]\nname = \"a\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:2\"\n[[routes]]\nmodels = [\"m\"]\ntargets = [{{backend = \"a\"}}]\n"
        );
        Config::from_str_with_env(&text, &|_| None).expect("valid")
    }

    #[test]
    fn only_process_settings_are_reported() {
        let boot = cfg("threads = 2");
        assert!(restart_required(&boot, &cfg("threads = 2\nmax_body_bytes = 10")).is_empty());
        assert_eq!(
            restart_required(&boot, &cfg("threads = 3\nkeepalive_timeout_seconds = 5")),
            vec!["server.threads"]
        );
    }
}
