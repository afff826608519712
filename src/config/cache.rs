//! `[cache]` (the response cache's store: its size, the largest entry, how long identical
//! requests wait for the first) and a route's `cache = { ttl_seconds, scope }`.

use super::schema::{RawCache, RawRouteCache};
use super::Validator;
use std::time::Duration;

/// 256 MiB: a few thousand typical replies.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Larger replies are served but not stored (one entry may not crowd out the rest).
pub const DEFAULT_MAX_ENTRY_BYTES: u64 = 4 * 1024 * 1024;
/// Identical requests wait this long for the first one's reply, then go upstream themselves.
pub const DEFAULT_COALESCE_TIMEOUT_MS: u64 = 30_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// Bytes the in-memory store holds, least recently used evicted first.
    pub max_bytes: usize,
    pub max_entry_bytes: usize,
    pub coalesce_timeout: Duration,
    /// A Redis the fleet's gateways share entries through (each keeps its memory in front).
    pub redis_url: Option<String>,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            max_bytes: DEFAULT_MAX_BYTES as usize,
            max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES as usize,
            coalesce_timeout: Duration::from_millis(DEFAULT_COALESCE_TIMEOUT_MS),
            redis_url: None,
        }
    }
}

/// A route's caching: how long an entry is fresh, and whether keys share entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteCache {
    pub ttl: Duration,
    /// `scope = "global"`: one entry serves every key (default: each key its own).
    pub global: bool,
}

impl Validator<'_, '_> {
    pub(super) fn cache(&mut self, raw: RawCache) -> CacheSettings {
        let mut positive = |name: &str, v: Option<u64>, default: u64| {
            let v = v.unwrap_or(default);
            if v == 0 {
                self.err(format!("cache.{name}"), "must be greater than 0");
            }
            usize::try_from(v.max(1)).unwrap_or(usize::MAX)
        };
        let max_bytes = positive("max_bytes", raw.max_bytes, DEFAULT_MAX_BYTES);
        let max_entry = positive(
            "max_entry_bytes",
            raw.max_entry_bytes,
            DEFAULT_MAX_ENTRY_BYTES,
        );
        let wait = positive(
            "coalesce_timeout_ms",
            raw.coalesce_timeout_ms,
            DEFAULT_COALESCE_TIMEOUT_MS,
        );
        let redis_url = raw.redis_url.filter(|u| {
            let ok = u.starts_with("redis://") || u.starts_with("rediss://");
            if !ok {
                self.err(
                    "cache.redis_url",
                    "must be redis://host:port or rediss://...",
                );
            }
            ok
        });
        CacheSettings {
            max_bytes,
            max_entry_bytes: max_entry.min(max_bytes),
            coalesce_timeout: Duration::from_millis(wait as u64),
            redis_url,
        }
    }

    /// A route's `cache` table at `p`.
    pub(super) fn route_cache(
        &mut self,
        p: &str,
        raw: Option<RawRouteCache>,
    ) -> Option<RouteCache> {
        let raw = raw?;
        if raw.ttl_seconds == 0 {
            self.err(format!("{p}.cache.ttl_seconds"), "must be greater than 0");
        }
        let global = match raw.scope.as_deref() {
            None | Some("key") => false,
            Some("global") => true,
            Some(_) => {
                self.err(format!("{p}.cache.scope"), "must be \"key\" or \"global\"");
                false
            }
        };
        Some(RouteCache {
            ttl: Duration::from_secs(raw.ttl_seconds.max(1)),
            global,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::time::Duration;

    fn load(text: &str) -> Result<Config, Vec<crate::config::ConfigError>> {
        Config::from_str_with_env(text, &|_| None)
    }

    const ROUTE: &str = "[[backends]]\nname = \"b\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:1\"\napi_key = \"k\"\n[[routes]]\nmodels = [\"m\"]\ntargets = [{ backend = \"b\" }]\n";

    #[test]
    fn defaults_values_and_located_errors() {
        let c = load("").unwrap();
        assert_eq!(c.cache.max_bytes, 256 << 20);
        assert_eq!(c.cache.coalesce_timeout, Duration::from_secs(30));
        let c = load("[cache]\nmax_bytes = 1000\nmax_entry_bytes = 5000\n").unwrap();
        assert_eq!((c.cache.max_bytes, c.cache.max_entry_bytes), (1000, 1000));
        let e = load("[cache]\nmax_bytes = 0\n").unwrap_err();
        assert_eq!(
            (e[0].path.as_str(), e[0].line),
            ("cache.max_bytes", Some(2))
        );
        let c = load("[cache]\nredis_url = \"redis://127.0.0.1:6379\"\n").unwrap();
        assert_eq!(c.cache.redis_url.as_deref(), Some("redis://127.0.0.1:6379"));
        let e = load("[cache]\nredis_url = \"http://x\"\n").unwrap_err();
        assert_eq!(e[0].path, "cache.redis_url");
        let e = load("[cache]\nsize = 5\n").unwrap_err();
        assert!(e[0].path.contains("cache"), "{e:?}");
    }

    #[test]
    fn route_cache_ttl_and_scope() {
        let c = load(ROUTE).unwrap();
        assert_eq!(c.routes[0].cache, None);
        let c = load(&format!("{ROUTE}cache = {{ ttl_seconds = 60 }}\n")).unwrap();
        let rc = c.routes[0].cache.unwrap();
        assert_eq!((rc.ttl, rc.global), (Duration::from_secs(60), false));
        let text = format!("{ROUTE}cache = {{ ttl_seconds = 60, scope = \"global\" }}\n");
        assert!(load(&text).unwrap().routes[0].cache.unwrap().global);
        let text = format!("{ROUTE}cache = {{ ttl_seconds = 0, scope = \"team\" }}\n");
        let e = load(&text).unwrap_err();
        let paths: Vec<_> = e.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"routes[0].cache.ttl_seconds"), "{e:?}");
        assert!(paths.contains(&"routes[0].cache.scope"), "{e:?}");
    }
}
