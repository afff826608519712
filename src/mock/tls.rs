//! Certificates for `tollgate mock --tls`: the given files, or a self-signed certificate for
//! localhost generated and written where the files were asked for (so a test can trust the
//! certificate file as its CA). Everything is checked here because Pingora's rustls
//! `TlsSettings` panics on files it cannot use.

use std::path::{Path, PathBuf};

/// The certificate and key paths to serve with, generating them when missing.
pub fn ensure(cert: Option<&str>, key: Option<&str>) -> Result<(String, String), String> {
    let (cert, key) = match (cert, key) {
        (Some(c), Some(k)) => (PathBuf::from(c), PathBuf::from(k)),
        (None, None) => {
            let dir =
                std::env::temp_dir().join(format!("tollgate-mock-tls-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            (dir.join("cert.pem"), dir.join("key.pem"))
        }
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    match (cert.exists(), key.exists()) {
        (true, true) => {}
        (false, false) => generate(&cert, &key)?,
        // Never overwrite half of a pair someone made.
        _ => {
            return Err(format!(
                "{} / {}: only one exists; give both files, or neither to generate them",
                cert.display(),
                key.display()
            ))
        }
    }
    check(&cert, &key)?;
    Ok((cert.display().to_string(), key.display().to_string()))
}

fn generate(cert: &Path, key: &Path) -> Result<(), String> {
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ck = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
    std::fs::write(cert, ck.cert.pem()).map_err(|e| format!("{}: {e}", cert.display()))?;
    std::fs::write(key, ck.key_pair.serialize_pem()).map_err(|e| format!("{}: {e}", key.display()))
}

/// Loads the pair as Pingora will, so a file it would panic on is refused here with a message.
fn check(cert: &Path, key: &Path) -> Result<(), String> {
    use pingora::tls::{load_certs_and_key_files, ServerConfig};
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let Ok(Some((certs, pkey))) = load_certs_and_key_files(&c, &k) else {
        return Err(format!("{c} / {k}: no PEM certificate or private key"));
    };
    pingora::tls::install_default_crypto_provider();
    ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, pkey)
        .map(drop)
        .map_err(|e| format!("{c} / {k}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_then_reuses_and_refuses_half_a_pair() {
        let dir = std::env::temp_dir().join(format!("tollgate-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (c, k) = (dir.join("c.pem"), dir.join("k.pem"));
        let (cs, ks) = (c.to_str().unwrap(), k.to_str().unwrap());
        let _ = std::fs::remove_file(&c);
        let _ = std::fs::remove_file(&k);
        ensure(Some(cs), Some(ks)).unwrap();
        let first = std::fs::read(&c).unwrap();
        ensure(Some(cs), Some(ks)).unwrap();
        assert_eq!(std::fs::read(&c).unwrap(), first, "existing files are used");
        std::fs::remove_file(&k).unwrap();
        assert!(ensure(Some(cs), Some(ks)).is_err());
        std::fs::write(&k, "not a key").unwrap();
        assert!(ensure(Some(cs), Some(ks)).is_err());
        // A key from another pair: Pingora would panic on it; refused here.
        let (c2, k2) = (dir.join("c2.pem"), dir.join("k2.pem"));
        ensure(c2.to_str(), k2.to_str()).unwrap();
        assert!(ensure(Some(cs), k2.to_str()).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
