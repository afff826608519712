//! A Google service-account key file (a backend's `service_account_file`), read and
//! checked when the config loads; the provider's token source signs with it.

use jsonwebtoken::EncodingKey;
use serde::Deserialize;

/// A service-account key file's fields that matter here.
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    #[serde(rename = "type", default)]
    kind: String,
    pub client_email: String,
    /// Read by the token source only; never printed (see `Debug`).
    pub(crate) private_key: String,
    #[serde(default)]
    pub private_key_id: String,
    pub token_uri: String,
    #[serde(default)]
    pub project_id: String,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("private_key", &"***")
            .finish()
    }
}

impl ServiceAccount {
    /// Reads a key file; the error names the problem, never the key.
    pub fn from_file(path: &str) -> Result<ServiceAccount, String> {
        let text = std::fs::read(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
        let sa: ServiceAccount = serde_json::from_slice(&text).map_err(|e| {
            format!(
                "`{path}` is not a service-account key file (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        if sa.kind != "service_account" {
            return Err(format!(
                "`{path}` is not a service-account key file (its type is `{}`)",
                sa.kind
            ));
        }
        EncodingKey::from_rsa_pem(sa.private_key.as_bytes())
            .map_err(|_| format!("`{path}`: private_key is not an RSA key in PEM"))?;
        Ok(sa)
    }
}
