//! The TLS listeners' certificates: read into their resolvers at start and again at every
//! applied reload, so a certificate rotated on disk (by cron, by an ACME client) is served by
//! the next handshake without a restart or a dropped connection.

use crate::config::ServerSettings;
use crate::net::tls::{load_pair, Served};

/// Reads the configured pairs into `served`. A pair that no longer loads keeps the one being
/// served (the config was checked moments before; the files changed in between).
pub fn load(served: &Served, s: &ServerSettings) -> Result<(), String> {
    let pairs = [
        (
            s.tls.as_ref().map(|t| &t.files),
            &served.client,
            "server.tls",
        ),
        (
            s.admin_tls.as_ref().map(|t| &t.files),
            &served.admin,
            "server.admin_tls",
        ),
    ];
    let mut errors = Vec::new();
    for (files, resolver, name) in pairs {
        let Some(f) = files else { continue };
        match load_pair(&f.cert, &f.key) {
            Ok(pair) => resolver.store(pair),
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(errors.join("; ")),
    }
}
