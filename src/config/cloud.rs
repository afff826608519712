//! The cloud providers' backend settings: Bedrock's region and AWS credentials, Vertex AI's
//! project, location and service account. Credentials not written in the file come from the
//! providers' standard environment variables and files, read once at load.

use super::presets;
use super::schema::RawBackend;
use super::ServiceAccount;
use super::{ProviderKind, Secret, Validator};
use std::sync::Arc;

/// How Bedrock requests are authorised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsAuth {
    /// SigV4 with these credentials.
    Keys {
        access_key_id: Secret,
        secret_access_key: Secret,
        session_token: Option<Secret>,
    },
    /// A Bedrock API key, sent as a bearer token.
    ApiKey(Secret),
}

/// How Vertex AI requests are authorised.
#[derive(Debug, Clone)]
pub enum GoogleAuth {
    /// OAuth tokens from a service account (the file's `token_uri` unless overridden).
    ServiceAccount {
        file: String,
        account: Arc<ServiceAccount>,
        token_uri: Option<String>,
    },
    /// Vertex AI express mode: an API key.
    ApiKey,
}

impl PartialEq for GoogleAuth {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                GoogleAuth::ServiceAccount {
                    file: a,
                    token_uri: ta,
                    ..
                },
                GoogleAuth::ServiceAccount {
                    file: b,
                    token_uri: tb,
                    ..
                },
            ) => a == b && ta == tb,
            (GoogleAuth::ApiKey, GoogleAuth::ApiKey) => true,
            _ => false,
        }
    }
}

impl Eq for GoogleAuth {}

impl Validator<'_, '_> {
    /// `provider = "bedrock"`: region, credentials and the default URL for the region.
    pub(super) fn bedrock(&mut self, p: &str, b: &RawBackend) -> (ProviderKind, Option<String>) {
        let region = b
            .region
            .clone()
            .or_else(|| (self.env)("AWS_REGION"))
            .or_else(|| (self.env)("AWS_DEFAULT_REGION"))
            .unwrap_or_default();
        let url = if region.is_empty() {
            self.err(
                format!("{p}.region"),
                "is required (or set AWS_REGION) for provider `bedrock`",
            );
            None
        } else if !region
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        {
            self.err(format!("{p}.region"), "must be a region such as us-east-1");
            None
        } else {
            Some(format!("https://bedrock-runtime.{region}.amazonaws.com"))
        };
        let auth = self.aws_auth(p, b);
        let (_, default_max_tokens) = self.anthropic_settings(p, b, "");
        let kind = ProviderKind::Bedrock {
            region,
            auth,
            default_max_tokens,
        };
        (kind, url)
    }

    /// Bedrock credentials, first found: `bedrock_api_key`; `aws_access_key_id` with
    /// `aws_secret_access_key` (and `aws_session_token`); `aws_profile` from the shared
    /// credentials file; then the environment (`AWS_BEARER_TOKEN_BEDROCK`, `AWS_ACCESS_KEY_ID`
    /// ..., `AWS_PROFILE`).
    fn aws_auth(&mut self, p: &str, b: &RawBackend) -> AwsAuth {
        let placeholder = AwsAuth::ApiKey(Secret(String::new()));
        if let Some(k) = &b.bedrock_api_key {
            return AwsAuth::ApiKey(Secret(k.clone()));
        }
        match (&b.aws_access_key_id, &b.aws_secret_access_key) {
            // Both from an unset variable: the backend is disabled, not wrong.
            (Some(id), _) if id.is_empty() => return placeholder,
            (Some(id), Some(secret)) => {
                return AwsAuth::Keys {
                    access_key_id: Secret(id.clone()),
                    secret_access_key: Secret(secret.clone()),
                    // An unset `${AWS_SESSION_TOKEN:-}` is no token.
                    session_token: b
                        .aws_session_token
                        .clone()
                        .filter(|t| !t.is_empty())
                        .map(Secret),
                };
            }
            (Some(_), None) | (None, Some(_)) => {
                self.err(
                    format!("{p}.aws_access_key_id"),
                    "needs aws_secret_access_key with it (and the other way round)",
                );
                return placeholder;
            }
            (None, None) => {}
        }
        if let Some(profile) = &b.aws_profile {
            return self.aws_profile(&format!("{p}.aws_profile"), profile);
        }
        let env = self.env;
        if let Some(k) = env("AWS_BEARER_TOKEN_BEDROCK").filter(|k| !k.is_empty()) {
            return AwsAuth::ApiKey(Secret(k));
        }
        if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            return AwsAuth::Keys {
                access_key_id: Secret(id),
                secret_access_key: Secret(secret),
                session_token: env("AWS_SESSION_TOKEN").map(Secret),
            };
        }
        if let Some(profile) = env("AWS_PROFILE") {
            return self.aws_profile(&format!("{p}.aws_profile"), &profile);
        }
        self.err(
            p.to_string(),
            "no AWS credentials: set aws_access_key_id and aws_secret_access_key, aws_profile, \
             bedrock_api_key, or the AWS environment variables",
        );
        placeholder
    }

    /// Reads a profile from the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE` or
    /// `~/.aws/credentials`).
    fn aws_profile(&mut self, path: &str, profile: &str) -> AwsAuth {
        let file = (self.env)("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_else(|| {
            format!(
                "{}/.aws/credentials",
                (self.env)("HOME").unwrap_or_default()
            )
        });
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                self.err(path.to_string(), format!("cannot read `{file}`: {e}"));
                return AwsAuth::ApiKey(Secret(String::new()));
            }
        };
        let get = |key: &str| ini_value(&text, profile, key).map(Secret);
        match (get("aws_access_key_id"), get("aws_secret_access_key")) {
            (Some(access_key_id), Some(secret_access_key)) => AwsAuth::Keys {
                access_key_id,
                secret_access_key,
                session_token: get("aws_session_token"),
            },
            _ => {
                self.err(
                    path.to_string(),
                    format!("profile `{profile}` in `{file}` has no aws_access_key_id and aws_secret_access_key"),
                );
                AwsAuth::ApiKey(Secret(String::new()))
            }
        }
    }

    /// `provider = "vertex"` or `"vertex-anthropic"`: project, location, credentials.
    pub(super) fn vertex(&mut self, p: &str, b: &RawBackend) -> (ProviderKind, Option<String>) {
        let auth = self.google_auth(p, b);
        // The service account's own project unless another is named.
        let project = match (&b.project, &auth) {
            (Some(p), _) => p.clone(),
            (None, GoogleAuth::ServiceAccount { account, .. }) => account.project_id.clone(),
            (None, GoogleAuth::ApiKey) => String::new(),
        };
        let location = b.location.clone().unwrap_or_else(|| "us-central1".into());
        let label = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        };
        let disabled = b.service_account_file.as_deref() == Some("");
        if !label(&project) && b.api_key.is_none() && !disabled {
            self.err(
                format!("{p}.project"),
                "is required: the Google Cloud project id",
            );
        }
        if !label(&location) {
            self.err(
                format!("{p}.location"),
                "must be a location such as us-central1 or global",
            );
        }
        let url = if location == "global" {
            Some("https://aiplatform.googleapis.com".to_string())
        } else if label(&location) {
            Some(format!("https://{location}-aiplatform.googleapis.com"))
        } else {
            None
        };
        let kind = if b.provider == "vertex" {
            ProviderKind::Vertex {
                project,
                location,
                auth,
            }
        } else {
            let (version, default_max_tokens) =
                self.anthropic_settings(p, b, presets::VERTEX_ANTHROPIC_VERSION);
            ProviderKind::VertexAnthropic {
                project,
                location,
                auth,
                version,
                default_max_tokens,
            }
        };
        (kind, url)
    }

    /// A service account (`service_account_file`, else `GOOGLE_APPLICATION_CREDENTIALS`), or
    /// express mode with `api_key`.
    fn google_auth(&mut self, p: &str, b: &RawBackend) -> GoogleAuth {
        if let Some(uri) = &b.token_uri {
            if super::parse_url(uri).is_err() {
                self.err(format!("{p}.token_uri"), "must be an http(s) URL");
            }
        }
        let file = b
            .service_account_file
            .clone()
            .or_else(|| (self.env)("GOOGLE_APPLICATION_CREDENTIALS"));
        let Some(file) = file.filter(|f| !f.is_empty()) else {
            // `Some("")`: from an unset variable, the backend is disabled, not wrong.
            if b.api_key.is_none() && b.service_account_file.is_none() {
                self.err(
                    format!("{p}.service_account_file"),
                    "is required (or GOOGLE_APPLICATION_CREDENTIALS, or api_key for express mode)",
                );
            }
            return GoogleAuth::ApiKey;
        };
        match ServiceAccount::from_file(&file) {
            Ok(account) => GoogleAuth::ServiceAccount {
                file,
                account: Arc::new(account),
                token_uri: b.token_uri.clone(),
            },
            Err(e) => {
                self.err(format!("{p}.service_account_file"), e.to_string());
                GoogleAuth::ApiKey
            }
        }
    }
}

/// `key` of `[profile]` in an INI-style AWS file (`#` and `;` start comments).
fn ini_value(text: &str, profile: &str, key: &str) -> Option<String> {
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            in_section = name == profile || name.strip_prefix("profile ") == Some(profile);
            continue;
        }
        if in_section {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == key {
                    return Some(v.trim().to_string());
                }
            }
        }
    }
    None
}

impl super::BackendSpec {
    /// Every secret the backend is configured with (its key, its extra headers' values, AWS
    /// credentials), so nothing it sends back can carry one to a client.
    pub fn secrets(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.api_key.iter().map(|k| k.expose()).collect();
        out.extend(self.headers.iter().map(|(_, v)| v.expose()));
        if let super::ProviderKind::Bedrock { auth, .. } = &self.provider {
            match auth {
                AwsAuth::Keys {
                    access_key_id,
                    secret_access_key,
                    session_token,
                } => {
                    out.extend([access_key_id.expose(), secret_access_key.expose()]);
                    out.extend(session_token.iter().map(|t| t.expose()));
                }
                AwsAuth::ApiKey(k) => out.push(k.expose()),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::ini_value;
    use crate::config::{AwsAuth, Config, ConfigError, GoogleAuth, ProviderKind};

    fn load(src: &str, env: &[(&str, &str)]) -> Result<Config, Vec<ConfigError>> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_str_with_env(src, &|k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn bedrock_keys_region_and_url() {
        let c = load(
            "[[backends]]\nname=\"b\"\nprovider=\"bedrock\"\nregion=\"eu-west-1\"\n\
             aws_access_key_id=\"AKID\"\naws_secret_access_key=\"s\"\naws_session_token=\"t\"\n",
            &[],
        )
        .unwrap();
        let b = &c.backends[0];
        assert_eq!(b.url.host, "bedrock-runtime.eu-west-1.amazonaws.com");
        assert!(b.url.tls);
        let ProviderKind::Bedrock { region, auth, .. } = &b.provider else {
            panic!("{:?}", b.provider)
        };
        assert_eq!(region, "eu-west-1");
        assert!(matches!(auth, AwsAuth::Keys { session_token: Some(t), .. } if t.expose() == "t"));
    }

    #[test]
    fn bedrock_credentials_from_the_environment_and_profiles() {
        let src = "[[backends]]\nname=\"b\"\nprovider=\"bedrock\"\n";
        let c = load(
            src,
            &[
                ("AWS_REGION", "us-west-2"),
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
            ],
        )
        .unwrap();
        assert_eq!(
            c.backends[0].url.host,
            "bedrock-runtime.us-west-2.amazonaws.com"
        );
        let e = load(src, &[]).unwrap_err();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["backends[0].region", "backends[0]"]);
        let text = "[default]\naws_access_key_id = A\n[profile dev]\n# c\naws_access_key_id=B\naws_secret_access_key = S2\n";
        assert_eq!(
            ini_value(text, "dev", "aws_access_key_id").as_deref(),
            Some("B")
        );
        assert_eq!(ini_value(text, "default", "aws_secret_access_key"), None);
    }

    #[test]
    fn empty_aws_key_disables_the_backend() {
        let c = load(
            "[[backends]]\nname=\"b\"\nprovider=\"bedrock\"\nregion=\"us-east-1\"\n\
             aws_access_key_id=\"\"\naws_secret_access_key=\"\"\n",
            &[],
        )
        .unwrap();
        assert!(!c.backends[0].enabled);
    }

    #[test]
    fn vertex_service_account_and_urls() {
        let sa = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vertex/service-account.json"
        );
        let src = format!(
            "[[backends]]\nname=\"v\"\nprovider=\"vertex\"\nproject=\"p\"\nlocation=\"global\"\n\
             service_account_file=\"{sa}\"\ntoken_uri=\"http://127.0.0.1:1/token\"\n\
             [[backends]]\nname=\"c\"\nprovider=\"vertex-anthropic\"\nproject=\"p\"\n\
             location=\"europe-west1\"\nservice_account_file=\"{sa}\"\n"
        );
        let c = load(&src, &[]).unwrap();
        assert_eq!(c.backends[0].url.host, "aiplatform.googleapis.com");
        assert_eq!(
            c.backends[1].url.host,
            "europe-west1-aiplatform.googleapis.com"
        );
        let ProviderKind::VertexAnthropic { version, auth, .. } = &c.backends[1].provider else {
            panic!()
        };
        assert_eq!(version, "vertex-2023-10-16");
        assert!(matches!(
            auth,
            GoogleAuth::ServiceAccount {
                token_uri: None,
                ..
            }
        ));
    }

    #[test]
    fn vertex_and_bedrock_settings_are_checked() {
        let e = load(
            "[[backends]]\nname=\"v\"\nprovider=\"vertex\"\nlocation=\"us central\"\n\
             service_account_file=\"/nonexistent.json\"\n\
             [[backends]]\nname=\"o\"\nprovider=\"openai\"\nregion=\"us-east-1\"\nproject=\"p\"\n\
             [[backends]]\nname=\"b\"\nprovider=\"bedrock\"\nregion=\"us-east-1\"\naws_access_key_id=\"A\"\n",
            &[],
        )
        .unwrap_err();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "backends[0].service_account_file",
                "backends[0].project",
                "backends[0].location",
                "backends[1].region",
                "backends[1].project",
                "backends[2].aws_access_key_id",
            ],
            "{e:?}"
        );
        assert!(e.iter().all(|e| !e.message.contains("\"A\"")));
    }
}
