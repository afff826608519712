//! `[[backends]]`: provider, URL (a default where the provider has one), key, headers,
//! timeouts, TLS trust, and the provider's own settings.

use super::presets;
use super::schema::RawBackend;
use super::{parse_url, BackendSpec, ProviderKind, Secret, UpstreamUrl, Validator};
use std::collections::HashMap;
use std::time::Duration;

impl Validator<'_, '_> {
    /// Validates every backend; returns them and their index by name.
    pub(super) fn backends(
        &mut self,
        raw: Vec<RawBackend>,
    ) -> (Vec<BackendSpec>, HashMap<String, usize>) {
        let mut names = HashMap::new();
        let mut out = Vec::new();
        for (i, b) in raw.into_iter().enumerate() {
            let p = format!("backends[{i}]");
            if b.name.is_empty() {
                self.err(format!("{p}.name"), "must not be empty");
            } else if names.insert(b.name.clone(), out.len()).is_some() {
                self.err(
                    format!("{p}.name"),
                    format!("duplicate backend name `{}`", b.name),
                );
            }
            out.push(self.backend(&p, b));
        }
        (out, names)
    }

    fn backend(&mut self, p: &str, b: RawBackend) -> BackendSpec {
        let (provider, default_url) = self.provider(p, &b);
        let url = match b.url.as_deref().or(default_url.as_deref()) {
            Some(u) => self.url(&format!("{p}.url"), u),
            // An unknown provider, or the setting its URL is made from, is reported already.
            None if !self.knows(&b.provider) || b.provider != "azure" => empty_url(),
            None => {
                self.err(
                    format!("{p}.url"),
                    format!("is required for provider `{}`", b.provider),
                );
                empty_url()
            }
        };
        let mut headers = Vec::new();
        for (k, v) in &b.headers {
            if http::HeaderName::from_bytes(k.as_bytes()).is_err()
                || http::HeaderValue::from_str(v).is_err()
            {
                self.err(
                    format!("{p}.headers.{k}"),
                    "not a valid HTTP header name and value",
                );
            }
            headers.push((k.clone(), Secret(v.clone())));
        }
        // A credential set from an environment variable that is empty: off until it is set.
        let enabled = [
            &b.api_key,
            &b.aws_access_key_id,
            &b.bedrock_api_key,
            &b.service_account_file,
        ]
        .iter()
        .all(|v| v.as_deref() != Some(""));
        if let Some(k) = &b.api_key {
            if http::HeaderValue::from_str(&format!("Bearer {k}")).is_err() {
                self.err(
                    format!("{p}.api_key"),
                    "contains characters not allowed in a header",
                );
            }
        }
        for (field, val) in [
            ("connect_timeout_ms", b.connect_timeout_ms),
            ("read_timeout_ms", b.read_timeout_ms),
            ("first_byte_timeout_ms", b.first_byte_timeout_ms),
            ("total_timeout_ms", b.total_timeout_ms),
            ("max_concurrent", b.max_concurrent.map(u64::from)),
        ] {
            if val == Some(0) {
                self.err(format!("{p}.{field}"), "must be greater than 0");
            }
        }
        let ca = b
            .ca_file
            .as_deref()
            .and_then(|f| self.ca_file(&format!("{p}.ca_file"), f));
        let ms = |v: Option<u64>, d: u64| Duration::from_millis(v.unwrap_or(d));
        let ejection = self.ejection(p, &b);
        let health_check = b.health_check.as_ref().map(|h| self.health_check(p, h));
        BackendSpec {
            first_byte_timeout: b.first_byte_timeout_ms.map(Duration::from_millis),
            total_timeout: b.total_timeout_ms.map(Duration::from_millis),
            max_concurrent: b.max_concurrent,
            ejection,
            health_check,
            name: b.name,
            provider,
            url,
            api_key: b.api_key.filter(|k| !k.is_empty()).map(Secret),
            enabled,
            headers,
            connect_timeout: ms(b.connect_timeout_ms, 5_000),
            read_timeout: ms(b.read_timeout_ms, 300_000),
            idle_timeout: ms(b.idle_timeout_ms, 60_000),
            ca,
            http2: b.http2.unwrap_or(true),
        }
    }

    /// The provider and its default URL. Settings of another provider are errors, so a typo
    /// in `provider` cannot silently drop them.
    fn provider(&mut self, p: &str, b: &RawBackend) -> (ProviderKind, Option<String>) {
        self.only_for(p, b);
        match b.provider.as_str() {
            "openai" => (
                ProviderKind::OpenAi {
                    preset: None,
                    responses: b.responses.unwrap_or(true),
                },
                Some(presets::OPENAI_URL.into()),
            ),
            "azure" => {
                let v = b.api_version.clone();
                let v = v.unwrap_or_else(|| presets::AZURE_API_VERSION.to_string());
                self.query_safe(&format!("{p}.api_version"), &v);
                (ProviderKind::Azure { api_version: v }, None)
            }
            "anthropic" => {
                let (version, default_max_tokens) =
                    self.anthropic_settings(p, b, presets::ANTHROPIC_VERSION);
                let kind = ProviderKind::Anthropic {
                    version,
                    default_max_tokens,
                };
                (kind, Some(presets::ANTHROPIC_URL.into()))
            }
            "bedrock" => self.bedrock(p, b),
            "gemini" => (ProviderKind::Gemini, Some(presets::GEMINI_URL.into())),
            "vertex" | "vertex-anthropic" => self.vertex(p, b),
            other => match presets::find(other) {
                Some((name, url)) => (
                    ProviderKind::OpenAi {
                        preset: Some(name),
                        responses: b.responses.unwrap_or(false),
                    },
                    Some(url.into()),
                ),
                None => {
                    self.err(
                        format!("{p}.provider"),
                        format!(
                            "unknown provider `{other}` (supported: {})",
                            presets::names()
                        ),
                    );
                    let kind = ProviderKind::OpenAi {
                        preset: None,
                        responses: false,
                    };
                    (kind, None)
                }
            },
        }
    }

    /// `anthropic_version` and `default_max_tokens`, for the providers that speak Anthropic's
    /// format (and Bedrock, whose Claude models need a token cap).
    pub(super) fn anthropic_settings(
        &mut self,
        p: &str,
        b: &RawBackend,
        default_version: &str,
    ) -> (String, u32) {
        let version = b.anthropic_version.clone();
        let version = version.unwrap_or_else(|| default_version.to_string());
        if http::HeaderValue::from_str(&version).is_err() {
            self.err(format!("{p}.anthropic_version"), "not a valid header value");
        }
        let max = b
            .default_max_tokens
            .unwrap_or(presets::ANTHROPIC_DEFAULT_MAX_TOKENS);
        if max == 0 {
            self.err(format!("{p}.default_max_tokens"), "must be greater than 0");
        }
        (version, max)
    }

    /// Rejects a provider setting on a backend of another provider.
    fn only_for(&mut self, p: &str, b: &RawBackend) {
        const ANTHROPIC_LIKE: &[&str] = &["anthropic", "vertex-anthropic"];
        const VERTEX: &[&str] = &["vertex", "vertex-anthropic"];
        const BEDROCK: &[&str] = &["bedrock"];
        let checks: [(&str, bool, &[&str]); 13] = [
            ("api_version", b.api_version.is_some(), &["azure"]),
            (
                "anthropic_version",
                b.anthropic_version.is_some(),
                ANTHROPIC_LIKE,
            ),
            (
                "default_max_tokens",
                b.default_max_tokens.is_some(),
                &["anthropic", "vertex-anthropic", "bedrock"],
            ),
            ("region", b.region.is_some(), BEDROCK),
            ("aws_access_key_id", b.aws_access_key_id.is_some(), BEDROCK),
            (
                "aws_secret_access_key",
                b.aws_secret_access_key.is_some(),
                BEDROCK,
            ),
            ("aws_session_token", b.aws_session_token.is_some(), BEDROCK),
            ("aws_profile", b.aws_profile.is_some(), BEDROCK),
            ("bedrock_api_key", b.bedrock_api_key.is_some(), BEDROCK),
            ("project", b.project.is_some(), VERTEX),
            ("location", b.location.is_some(), VERTEX),
            (
                "service_account_file",
                b.service_account_file.is_some(),
                VERTEX,
            ),
            ("token_uri", b.token_uri.is_some(), VERTEX),
        ];
        let openai_like = b.provider == "openai" || presets::find(&b.provider).is_some();
        if b.responses.is_some() && !openai_like {
            self.err(
                format!("{p}.responses"),
                "only applies to provider `openai` and the OpenAI-compatible presets",
            );
        }
        for (key, set, who) in checks {
            if set && !who.contains(&b.provider.as_str()) {
                let who = who.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>();
                self.err(
                    format!("{p}.{key}"),
                    format!("only applies to provider {}", who.join(" or ")),
                );
            }
        }
    }

    fn knows(&self, provider: &str) -> bool {
        matches!(
            provider,
            "openai" | "azure" | "anthropic" | "bedrock" | "gemini" | "vertex" | "vertex-anthropic"
        ) || presets::find(provider).is_some()
    }

    fn query_safe(&mut self, path: &str, v: &str) {
        if v.is_empty()
            || !v
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
        {
            self.err(
                path.to_string(),
                "must be a version such as 2024-10-21 or 2025-04-01-preview",
            );
        }
    }

    pub(super) fn url(&mut self, path: &str, u: &str) -> UpstreamUrl {
        parse_url(u).unwrap_or_else(|m| {
            self.err(path.to_string(), m);
            empty_url()
        })
    }

    /// Reads PEM certificates to trust for this backend. Each is parsed here so that a bad
    /// file is a config error (Pingora's TLS layer would panic on it).
    fn ca_file(&mut self, path: &str, file: &str) -> Option<Vec<Vec<u8>>> {
        let fail = |v: &mut Self, m: String| {
            v.err(path.to_string(), m);
            None
        };
        let pem = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => return fail(self, format!("cannot read `{file}`: {e}")),
        };
        let mut certs = Vec::new();
        for c in rustls_pemfile::certs(&mut pem.as_slice()) {
            match c {
                Ok(der) if x509_parser::parse_x509_certificate(&der).is_ok() => {
                    certs.push(der.to_vec())
                }
                _ => return fail(self, format!("`{file}` holds an unreadable certificate")),
            }
        }
        if certs.is_empty() {
            return fail(self, format!("`{file}` holds no PEM certificate"));
        }
        Some(certs)
    }
}

fn empty_url() -> UpstreamUrl {
    UpstreamUrl {
        tls: false,
        host: String::new(),
        port: 0,
        base_path: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, ProviderKind};

    fn load(src: &str) -> Result<Config, Vec<ConfigError>> {
        Config::from_str_with_env(src, &|_| None)
    }

    #[test]
    fn provider_defaults_and_presets() {
        let c = load(
            "[[backends]]\nname=\"a\"\nprovider=\"anthropic\"\n\
             [[backends]]\nname=\"g\"\nprovider=\"groq\"\n\
             [[backends]]\nname=\"o\"\nprovider=\"openai\"\n\
             [[backends]]\nname=\"z\"\nprovider=\"azure\"\nurl=\"https://r.openai.azure.com\"\n",
        )
        .unwrap();
        let b = &c.backends;
        assert_eq!(b[0].url.host, "api.anthropic.com");
        assert_eq!(
            b[0].provider,
            ProviderKind::Anthropic {
                version: "2023-06-01".into(),
                default_max_tokens: 4096
            }
        );
        assert_eq!(b[1].url.host, "api.groq.com");
        assert_eq!(b[1].url.base_path, "/openai/v1");
        assert_eq!(
            b[1].provider,
            ProviderKind::OpenAi {
                preset: Some("groq"),
                responses: false
            }
        );
        assert_eq!(b[2].url.host, "api.openai.com");
        assert_eq!(
            b[3].provider,
            ProviderKind::Azure {
                api_version: "2024-10-21".into()
            }
        );
    }

    #[test]
    fn provider_settings_are_checked() {
        let e = load(
            "[[backends]]\nname=\"z\"\nprovider=\"azure\"\n\
             [[backends]]\nname=\"o\"\nprovider=\"openai\"\napi_version=\"x\"\ndefault_max_tokens=5\n\
             [[backends]]\nname=\"a\"\nprovider=\"anthropic\"\ndefault_max_tokens=0\n\
             [[backends]]\nname=\"q\"\nprovider=\"nope\"\n",
        )
        .unwrap_err();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "backends[0].url",
                "backends[1].api_version",
                "backends[1].default_max_tokens",
                "backends[2].default_max_tokens",
                "backends[3].provider"
            ],
            "{e:?}"
        );
        assert!(e[4].message.contains("groq"), "{e:?}");
        assert_eq!(e[1].line, Some(7));
    }

    #[test]
    fn ca_file_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("tollgate-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        for f in [
            bad.to_str().unwrap(),
            junk.to_str().unwrap(),
            "/nonexistent.pem",
        ] {
            let src = format!(
                "[[backends]]\nname=\"a\"\nprovider=\"openai\"\nurl=\"https://h\"\nca_file=\"{f}\"\n"
            );
            let e = load(&src).unwrap_err();
            assert_eq!(e[0].path, "backends[0].ca_file", "{e:?}");
        }
    }
}
