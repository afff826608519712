//! Certificates for `tollgate mock --tls`: the given files, or a self-signed certificate for
//! localhost generated and written where the files were asked for.

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
    if !(cert.exists() && key.exists()) {
        generate(&cert, &key)?;
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

/// Pingora panics on unreadable files; refuse them here with a message instead.
fn check(cert: &Path, key: &Path) -> Result<(), String> {
    let pem = std::fs::read(cert).map_err(|e| format!("{}: {e}", cert.display()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .filter(Result::is_ok)
        .count();
    let kpem = std::fs::read(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let has_key = matches!(
        rustls_pemfile::private_key(&mut kpem.as_slice()),
        Ok(Some(_))
    );
    if certs == 0 || !has_key {
        return Err(format!(
            "{} / {}: no PEM certificate or key",
            cert.display(),
            key.display()
        ));
    }
    Ok(())
}
