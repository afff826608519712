//! `[server]`: listeners (plain and TLS), threads, timeouts, shutdown, the admin token, and
//! whether a config without keys is open on purpose.

use super::schema::{RawAdminTls, RawServer, RawTls};
use std::net::SocketAddr;

/// A certificate chain and its key, as PEM files: read and checked when the config loads, and
/// read again by every reload (so a rotated certificate is picked up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: String,
    pub key: String,
}

/// `[server.tls]`: client listeners over TLS (h2 and HTTP/1.1 by ALPN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListen {
    pub listen: Vec<SocketAddr>,
    pub files: TlsFiles,
    /// Its own address rules (`None`: `[server]`'s).
    pub addresses: Option<AddressRules>,
}

/// `[server.admin_tls]`: the admin listener over TLS; with `client_ca`, only clients with a
/// certificate from that CA get through the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTls {
    pub files: TlsFiles,
    pub client_ca: Option<String>,
}
use super::{Config, ConfigError, Secret, ServerSettings, Validator};
use crate::net::address::{parse_cidr, AddressRules};
use ipnet::IpNet;

impl Validator<'_, '_> {
    pub(super) fn server(&mut self, s: RawServer) -> ServerSettings {
        if s.listen.is_empty() && s.tls.is_none() {
            self.err(
                "server.listen",
                "at least one address is required (or `[server.tls] listen`)",
            );
        }
        let listen = s
            .listen
            .iter()
            .enumerate()
            .filter_map(|(i, a)| self.addr(format!("server.listen[{i}]"), a))
            .collect();
        let admin_listen = match s.admin_listen.as_deref() {
            None | Some("") => None,
            Some(a) => self.addr("server.admin_listen".into(), a),
        };
        if s.client_read_timeout_seconds == 0 {
            self.err(
                "server.client_read_timeout_seconds",
                "must be greater than 0",
            );
        }
        if s.max_request_line_bytes < 256 || s.max_header_bytes < 1024 {
            self.err(
                "server.max_header_bytes",
                "must be at least 1024 (and max_request_line_bytes at least 256)",
            );
        }
        if s.header_timeout_seconds == 0 {
            self.err("server.header_timeout_seconds", "must be greater than 0");
        }
        if s.max_body_bytes == 0 {
            self.err("server.max_body_bytes", "must be greater than 0");
        }
        if s.admin_require_token && s.admin_token.as_deref().unwrap_or("").is_empty() {
            self.err("server.admin_require_token", "needs `admin_token`");
        }
        if s.watch_interval_ms < 100 {
            self.err("server.watch_interval_ms", "must be at least 100");
        }
        let threads = match s.threads {
            Some(0) => {
                self.err("server.threads", "must be at least 1");
                1
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        ServerSettings {
            listen,
            admin_listen,
            max_body_bytes: usize::try_from(s.max_body_bytes).unwrap_or(usize::MAX),
            threads,
            h2c: s.h2c,
            keepalive_timeout_seconds: s.keepalive_timeout_seconds,
            client_read_timeout_seconds: s.client_read_timeout_seconds,
            header_timeout_seconds: s.header_timeout_seconds,
            max_request_line_bytes: s.max_request_line_bytes,
            max_header_bytes: s.max_header_bytes,
            max_connections: s.max_connections,
            max_connections_per_client: s.max_connections_per_client,
            grace_period_seconds: s.grace_period_seconds,
            graceful_shutdown_timeout_seconds: s.graceful_shutdown_timeout_seconds,
            pid_file: s.pid_file.unwrap_or_else(|| "/tmp/tollgate.pid".into()),
            upgrade_sock: s
                .upgrade_sock
                .unwrap_or_else(|| "/tmp/tollgate_upgrade.sock".into()),
            admin_require_token: s.admin_require_token,
            admin_token: s.admin_token.filter(|t| !t.is_empty()).map(Secret),
            watch_config: s.watch_config,
            watch_interval_ms: s.watch_interval_ms,
            open: s.open,
            trusted_proxies: self.cidrs("server.trusted_proxies", &s.trusted_proxies),
            addresses: self.address_rules("server", &s.allow, &s.deny),
            tls: s.tls.and_then(|t| self.tls(t)),
            admin_tls: s.admin_tls.and_then(|t| self.admin_tls(t)),
        }
    }

    /// A list of CIDRs (or single addresses), each bad one located.
    pub(super) fn cidrs(&mut self, p: &str, list: &[String]) -> Vec<IpNet> {
        let mut out = Vec::new();
        for (i, c) in list.iter().enumerate() {
            match parse_cidr(c) {
                Ok(n) => out.push(n),
                Err(e) => self.err(format!("{p}[{i}]"), e),
            }
        }
        out
    }

    /// `allow` and `deny` under `p`.
    pub(super) fn address_rules(
        &mut self,
        p: &str,
        allow: &[String],
        deny: &[String],
    ) -> AddressRules {
        AddressRules {
            allow: self.cidrs(&format!("{p}.allow"), allow),
            deny: self.cidrs(&format!("{p}.deny"), deny),
        }
    }

    fn tls(&mut self, t: RawTls) -> Option<TlsListen> {
        if t.listen.is_empty() {
            self.err("server.tls.listen", "at least one address is required");
        }
        let listen = (t.listen.iter().enumerate())
            .filter_map(|(i, a)| self.addr(format!("server.tls.listen[{i}]"), a))
            .collect();
        let addresses = (t.allow.is_some() || t.deny.is_some()).then(|| {
            let (allow, deny) = (t.allow.unwrap_or_default(), t.deny.unwrap_or_default());
            self.address_rules("server.tls", &allow, &deny)
        });
        let files = self.tls_files("server.tls", t.cert, t.key)?;
        Some(TlsListen {
            listen,
            files,
            addresses,
        })
    }

    fn admin_tls(&mut self, t: RawAdminTls) -> Option<AdminTls> {
        if let Some(ca) = &t.client_ca {
            if let Err(e) = crate::net::tls::client_verifier(ca) {
                self.err("server.admin_tls.client_ca", &e);
            }
        }
        let files = self.tls_files("server.admin_tls", t.cert, t.key)?;
        Some(AdminTls {
            files,
            client_ca: t.client_ca,
        })
    }

    /// The pair must load now: a listener never starts, or reloads, without one it can serve.
    fn tls_files(&mut self, p: &str, cert: String, key: String) -> Option<TlsFiles> {
        match crate::net::tls::load_pair(&cert, &key) {
            Ok(_) => Some(TlsFiles { cert, key }),
            Err(e) => {
                self.err(format!("{p}.cert"), &e);
                None
            }
        }
    }
}

impl Config {
    /// What makes a whole config unsafe to serve, checked wherever a config file is loaded
    /// (`check`, start, every reload): without a credential (`[[keys]]`, managed keys,
    /// `[[auth.jwt]]`) it must say `open = true` (and with one it must not), and it needs a
    /// route. So an editor's truncated file or a config cut before its keys is never applied.
    /// (Sections are validated on their own; this is about the whole.)
    pub fn gate(&self) -> Vec<ConfigError> {
        let err = |path: &str, message: &str| ConfigError {
            file: None,
            path: path.to_string(),
            line: None,
            message: message.to_string(),
        };
        let mut errors = Vec::new();
        // Managed keys and trusted token issuers are credentials as much as keys.
        let closed = !self.keys.is_empty() || self.auth.closes();
        match (self.server.open, closed) {
            (false, false) => errors.push(err(
                "keys",
                "no [[keys]]: every client would be served. Add [[keys]] (or `[auth] \
                 managed_keys = true`, or [[auth.jwt]]), or set `[server] open = true` to serve \
                 without keys on purpose",
            )),
            (true, true) => errors.push(err(
                "server.open",
                "is true but client credentials are configured ([[keys]], [auth] managed_keys \
                 or [[auth.jwt]]); remove one of them",
            )),
            _ => {}
        }
        if self.routes.is_empty() {
            errors.push(err(
                "routes",
                "no [[routes]]: every request would be refused; at least one route is required",
            ));
        }
        errors
    }
}
