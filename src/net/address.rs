//! Client addresses: allow and deny lists of CIDRs (per listener, per key), and the client
//! behind trusted proxies (`X-Forwarded-For`, walked from the right as nginx's
//! `real_ip_recursive` does: the first address that is not a trusted proxy is the client).

use ipnet::IpNet;
use std::net::IpAddr;

/// Which client addresses are served: none denied, and (with an allow list) only those in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressRules {
    pub allow: Vec<IpNet>,
    pub deny: Vec<IpNet>,
}

impl AddressRules {
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Deny wins over allow; no allow list allows every address not denied.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        !self.deny.iter().any(|n| n.contains(&ip))
            && (self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip)))
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:10.0.0.1`, how a dual-stack socket reports an
/// IPv4 peer) is matched as the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address.
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .map(|n| n.trunc())
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is not an address or CIDR (10.0.0.0/8, 2001:db8::/32)"))
}

/// The client of a request that came from `peer`: `peer` itself unless it is a trusted proxy;
/// then, walking `forwarded` (the `X-Forwarded-For` values in order) from the right, the
/// first address that is not a trusted proxy. An entry that is not an address stops the walk
/// (the hop before it is the best known).
pub fn client_behind<'a>(
    peer: IpAddr,
    forwarded: impl DoubleEndedIterator<Item = &'a [u8]>,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(&canonical(ip)));
    let mut client = canonical(peer);
    if !is_trusted(client) {
        return client;
    }
    for value in forwarded.rev() {
        for entry in value.rsplit(|&b| b == b',') {
            let Some(ip) = parse_hop(entry) else {
                return client;
            };
            client = canonical(ip);
            if !is_trusted(client) {
                return client;
            }
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(entry: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(entry).ok()?.trim();
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| parse_cidr(s).unwrap()).collect()
    }

    #[test]
    fn deny_wins_and_allow_lists_limit() {
        let r = AddressRules {
            allow: nets(&["10.0.0.0/8", "2001:db8::/32"]),
            deny: nets(&["10.9.0.0/16"]),
        };
        assert!(r.permits(ip("10.1.2.3")));
        assert!(r.permits(ip("::ffff:10.1.2.3")), "v4-mapped matches as v4");
        assert!(r.permits(ip("2001:db8::1")));
        assert!(!r.permits(ip("10.9.0.1")));
        assert!(!r.permits(ip("192.168.1.1")));
        let deny_only = AddressRules {
            allow: vec![],
            deny: nets(&["192.168.1.7"]),
        };
        assert!(deny_only.permits(ip("192.168.1.8")) && !deny_only.permits(ip("192.168.1.7")));
        assert!(AddressRules::default().permits(ip("1.2.3.4")));
        assert!(parse_cidr("10.0.0.0/33").is_err() && parse_cidr("nope").is_err());
        assert_eq!(parse_cidr("10.1.2.3/8").unwrap(), nets(&["10.0.0.0/8"])[0]);
    }

    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_right() {
        let trusted = nets(&["10.0.0.0/8"]);
        let xff = |v: &[&'static str]| v.iter().map(|s| s.as_bytes()).collect::<Vec<_>>();
        let walk =
            |peer: &str, v: &[&'static str]| client_behind(ip(peer), xff(v).into_iter(), &trusted);
        // An untrusted peer's header is ignored: anyone can write one.
        assert_eq!(walk("203.0.113.9", &["1.1.1.1"]), ip("203.0.113.9"));
        assert_eq!(
            walk("10.0.0.2", &["1.1.1.1, 198.51.100.7"]),
            ip("198.51.100.7")
        );
        // Trusted hops are skipped, across several headers too.
        assert_eq!(
            walk("10.0.0.2", &["1.1.1.1, 198.51.100.7", "10.0.0.5"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            walk("10.0.0.2", &["[2001:db8::1]:443, 10.1.1.1"]),
            ip("2001:db8::1")
        );
        // A spoofed left part does not matter; garbage stops the walk at the last good hop.
        assert_eq!(
            walk("10.0.0.2", &["6.6.6.6, junk, 10.0.0.3"]),
            ip("10.0.0.3")
        );
        assert_eq!(walk("10.0.0.2", &[]), ip("10.0.0.2"));
    }
}
