//! `[responses]`: the Responses API's kept responses (translated routes): how long each is
//! kept and how many bytes the in-memory store may hold.

use super::schema::RawResponses;
use super::Validator;
use std::time::Duration;

/// An hour, as OpenAI keeps nothing shorter by default.
pub const DEFAULT_TTL_SECONDS: u64 = 3600;
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsesSettings {
    pub store_ttl: Duration,
    /// Bound of the in-memory store (oldest evicted first); Redis bounds itself.
    pub store_max_bytes: usize,
}

impl Default for ResponsesSettings {
    fn default() -> Self {
        ResponsesSettings {
            store_ttl: Duration::from_secs(DEFAULT_TTL_SECONDS),
            store_max_bytes: DEFAULT_MAX_BYTES as usize,
        }
    }
}

impl Validator<'_, '_> {
    pub(super) fn responses(&mut self, raw: RawResponses) -> ResponsesSettings {
        let ttl = raw.store_ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
        if ttl == 0 {
            self.err("responses.store_ttl_seconds", "must be greater than 0");
        }
        let max = raw.store_max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
        if max == 0 {
            self.err("responses.store_max_bytes", "must be greater than 0");
        }
        ResponsesSettings {
            store_ttl: Duration::from_secs(ttl.max(1)),
            store_max_bytes: usize::try_from(max).unwrap_or(usize::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::time::Duration;

    fn load(text: &str) -> Result<Config, Vec<crate::config::ConfigError>> {
        Config::from_str_with_env(text, &|_| None)
    }

    #[test]
    fn defaults_values_and_located_errors() {
        let c = load("").unwrap();
        assert_eq!(c.responses.store_ttl, Duration::from_secs(3600));
        assert_eq!(c.responses.store_max_bytes, 64 << 20);
        let c = load("[responses]\nstore_ttl_seconds = 60\nstore_max_bytes = 1000\n").unwrap();
        assert_eq!(c.responses.store_ttl, Duration::from_secs(60));
        assert_eq!(c.responses.store_max_bytes, 1000);
        let e = load("[responses]\nstore_ttl_seconds = 0\nstore_max_bytes = 0\n").unwrap_err();
        let at: Vec<_> = e.iter().map(|e| (e.path.as_str(), e.line)).collect();
        assert!(
            at.contains(&("responses.store_ttl_seconds", Some(2))),
            "{e:?}"
        );
        assert!(
            at.contains(&("responses.store_max_bytes", Some(3))),
            "{e:?}"
        );
        let e = load("[responses]\nttl = 5\n").unwrap_err();
        assert!(e[0].path.contains("responses"), "{e:?}");
    }
}
