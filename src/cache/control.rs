//! What a request asks of the cache: `Cache-Control: no-store` (bypass it), `no-cache` (fetch
//! fresh, then store), and `x-tollgate-cache-ttl: N` (keep this entry at most N seconds).

use http::HeaderMap;
use std::time::Duration;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Asked {
    pub no_store: bool,
    pub no_cache: bool,
    /// A shorter TTL for the entry this request stores (never longer than the route's).
    pub ttl: Option<Duration>,
}

pub const TTL_HEADER: &str = "x-tollgate-cache-ttl";

impl Asked {
    pub fn of(headers: &HeaderMap) -> Asked {
        let mut a = Asked::default();
        for v in headers.get_all(http::header::CACHE_CONTROL) {
            let Ok(v) = v.to_str() else { continue };
            for d in v.split(',') {
                let d = d.trim();
                // Directive names are case-insensitive (RFC 9111 §5.2).
                if d.eq_ignore_ascii_case("no-store") {
                    a.no_store = true;
                } else if d.eq_ignore_ascii_case("no-cache") {
                    a.no_cache = true;
                }
            }
        }
        a.ttl = headers
            .get(TTL_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        a
    }

    /// The entry's TTL: the route's, shortened by the request's header.
    pub fn ttl(&self, route: Duration) -> Duration {
        self.ttl.map_or(route, |t| t.min(route))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(pairs: &[(&str, &str)]) -> Asked {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        Asked::of(&h)
    }

    #[test]
    fn directives_and_ttl() {
        assert_eq!(asked(&[]), Asked::default());
        let a = asked(&[("cache-control", "max-age=0, No-Store")]);
        assert!(a.no_store && !a.no_cache);
        let a = asked(&[("cache-control", "private"), ("cache-control", "no-cache")]);
        assert!(a.no_cache && !a.no_store);
        let a = asked(&[(TTL_HEADER, " 5 ")]);
        assert_eq!(a.ttl(Duration::from_secs(600)), Duration::from_secs(5));
        assert_eq!(a.ttl(Duration::from_secs(2)), Duration::from_secs(2));
        assert_eq!(asked(&[(TTL_HEADER, "soon")]).ttl, None);
    }
}
