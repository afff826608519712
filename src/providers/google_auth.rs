//! Google service-account credentials: OAuth access tokens for Vertex AI.
//!
//! PLACEHOLDER (lead): a minimal API so the tree compiles; the helper writing this module
//! replaces all of it (keep `ServiceAccount::from_file`, `ServiceAccount: Clone` with a
//! `project_id: String`, `TokenSource::new(account, token_uri_override, backend_name)`,
//! `TokenSource::token().await`, `TokenSource::warm().await` if you can).

use std::sync::Arc;

#[derive(Clone)]
pub struct ServiceAccount {
    pub project_id: String,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceAccount(***)")
    }
}

impl ServiceAccount {
    pub fn from_file(path: &str) -> Result<ServiceAccount, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|_| format!("`{path}` is not JSON"))?;
        Ok(ServiceAccount {
            project_id: v["project_id"].as_str().unwrap_or_default().to_string(),
        })
    }
}

pub struct TokenSource;

#[derive(Debug, thiserror::Error)]
#[error("no token")]
pub struct TokenError;

impl TokenSource {
    pub fn new(_account: ServiceAccount, _token_uri: Option<String>, _backend: &str) -> TokenSource {
        TokenSource
    }

    pub async fn token(&self) -> Result<Arc<str>, TokenError> {
        Err(TokenError)
    }
}
