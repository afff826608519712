//! TLS on the gateway's own listeners, with Pingora's rustls acceptor (TLS 1.2 and 1.3 only).
//! Each listener serves the pair a [`Resolver`] holds; a reload reads the files again and swaps
//! the pair, so a rotated certificate is used by the next handshake while open connections keep
//! the one they started with. Client certificates (mTLS) are checked against the roots of a CA
//! file.

use arc_swap::ArcSwapOption;
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{
    ClientCertVerifier, ClientHello, CryptoProvider, ResolvesServerCert, RootCertStore,
    WebPkiClientVerifier,
};
use std::sync::Arc;

/// A certificate chain and its private key read from PEM files, checked to belong together.
/// The error names the files and the problem, never the key.
pub fn load_pair(cert: &str, key: &str) -> Result<Arc<CertifiedKey>, String> {
    pingora::tls::install_default_crypto_provider();
    let (chain, private) = match pingora::tls::load_certs_and_key_files(cert, key) {
        Ok(Some(pair)) => pair,
        Ok(None) => {
            return Err(format!(
                "`{cert}` must hold a PEM certificate chain and `{key}` a PEM private key"
            ))
        }
        Err(e) => {
            return Err(format!(
                "cannot read `{cert}` or `{key}`: {}",
                e.etype().as_str()
            ))
        }
    };
    let provider = CryptoProvider::get_default().ok_or("no TLS crypto provider")?;
    CertifiedKey::from_der(chain, private, provider)
        .map(Arc::new)
        .map_err(|e| format!("`{key}` is not the key of `{cert}` or cannot sign: {e}"))
}

/// The roots that client certificates must chain to (mTLS).
pub fn client_verifier(ca_file: &str) -> Result<Arc<dyn ClientCertVerifier>, String> {
    pingora::tls::install_default_crypto_provider();
    let mut roots = RootCertStore::empty();
    pingora::tls::load_ca_file_into_store(ca_file, &mut roots)
        .map_err(|e| format!("cannot read `{ca_file}`: {}", e.etype().as_str()))?;
    if roots.is_empty() {
        return Err(format!("`{ca_file}` holds no CA certificate (PEM)"));
    }
    WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .map_err(|e| format!("`{ca_file}`: {e}"))
}

/// The pair one listener serves; empty until the first is stored.
#[derive(Debug, Default)]
pub struct Resolver(ArcSwapOption<CertifiedKey>);

impl Resolver {
    pub fn store(&self, pair: Arc<CertifiedKey>) {
        self.0.store(Some(pair));
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.load_full()
    }
}

/// The pairs of the client and admin TLS listeners, for the life of the process.
#[derive(Debug, Default)]
pub struct Served {
    pub client: Arc<Resolver>,
    pub admin: Arc<Resolver>,
}
