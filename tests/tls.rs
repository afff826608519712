//! TLS on the client and admin listeners through the real binary: h2 by ALPN, a certificate
//! rotated on disk and picked up by a reload while a stream that began before it finishes, a
//! config whose pair does not load refused, and client certificates (mTLS) on the admin
//! listener.

mod common;

use common::{backend, chat, free_port, mock, Gateway, BIN};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A CA and what it signs, as PEM.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        Ca {
            cert: p.self_signed(&key).unwrap(),
            key,
        }
    }

    /// A leaf for `names`: (certificate PEM, key PEM).
    fn sign(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.cert, &self.key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tollgate-tls-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes a server pair signed by `ca` to `cert.pem` and `key.pem` in `d`.
fn write_pair(d: &Path, ca: &Ca) {
    let (cert, key) = ca.sign(&["localhost", "127.0.0.1"]);
    std::fs::write(d.join("cert.pem"), cert).unwrap();
    std::fs::write(d.join("key.pem"), key).unwrap();
}

/// A client that trusts only `ca`, with a fresh connection pool.
fn trusting(ca: &Ca) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn tls_table(port: u16, d: &Path) -> String {
    format!(
        "[server.tls]\nlisten = [\"127.0.0.1:{port}\"]\ncert = \"{}\"\nkey = \"{}\"\n",
        d.join("cert.pem").display(),
        d.join("key.pem").display()
    )
}

fn route() -> &'static str {
    "[[routes]]\nmodels = [\"m\"]\ntargets = [{ backend = \"b\" }]\n"
}

#[tokio::test]
async fn a_rotated_certificate_is_served_after_a_reload_and_open_streams_finish() {
    let (ca_a, ca_b) = (Ca::new("A"), Ca::new("B"));
    let d = dir("rotate");
    write_pair(&d, &ca_a);
    let m = mock("b", &["--chunk-delay-ms", "40", "--words", "20"]);
    let port = free_port();
    let rest = format!("{}{}", backend("b", m.port, ""), route());
    let g = Gateway::start(&tls_table(port, &d), &rest);
    let url = format!("https://127.0.0.1:{port}/v1/chat/completions");

    let a = trusting(&ca_a);
    let r = a.post(&url).json(&chat("m")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "h2 by ALPN");
    assert!(trusting(&ca_b)
        .post(&url)
        .json(&chat("m"))
        .send()
        .await
        .is_err());

    // A stream starts on A's certificate; the certificate is rotated under it.
    let mut body = chat("m");
    body["stream"] = true.into();
    let mut stream = a.post(&url).json(&body).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    write_pair(&d, &ca_b);
    g.proc.signal("HUP");
    g.proc.wait_stderr("applied (signal");
    let mut text = String::new();
    while let Some(c) = stream.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&c));
    }
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");

    // New handshakes get B's certificate.
    let r = trusting(&ca_b)
        .post(&url)
        .json(&chat("m"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(trusting(&ca_a)
        .post(&url)
        .json(&chat("m"))
        .send()
        .await
        .is_err());
    // Plain HTTP still answers beside it.
    let plain = common::client().post(g.url("/v1/chat/completions"));
    assert_eq!(plain.json(&chat("m")).send().await.unwrap().status(), 200);
}

#[test]
fn a_pair_that_does_not_load_is_refused_by_check() {
    let (ca_a, ca_b) = (Ca::new("A"), Ca::new("B"));
    let d = dir("check");
    write_pair(&d, &ca_a);
    let (_, other_key) = ca_b.sign(&["localhost"]);
    std::fs::write(d.join("other.pem"), &other_key).unwrap();
    let cfg = |key: &str| {
        format!(
            "[server]\nlisten = []\nopen = true\n[server.tls]\nlisten = [\"127.0.0.1:1\"]\ncert = \"{}\"\nkey = \"{}\"\n{}{}",
            d.join("cert.pem").display(),
            d.join(key).display(),
            backend("b", 1, ""),
            route()
        )
    };
    let run = |name: &str, text: String| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        let out = std::process::Command::new(BIN)
            .args(["check", "-c", p.to_str().unwrap()])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run("good.toml", cfg("key.pem"));
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = run("mismatch.toml", cfg("other.pem"));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("server.tls.cert") && err.contains("not the key"),
        "{err}"
    );
    assert!(
        !err.contains("PRIVATE KEY"),
        "no key material in errors: {err}"
    );
    let (code, err) = run("missing.toml", cfg("nope.pem"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot read"), "{err}");
}

#[tokio::test]
async fn the_admin_listener_can_require_client_certificates() {
    let (server_ca, client_ca, stranger) = (Ca::new("S"), Ca::new("C"), Ca::new("X"));
    let d = dir("mtls");
    write_pair(&d, &server_ca);
    std::fs::write(d.join("clients.pem"), client_ca.pem()).unwrap();
    let m = mock("b", &[]);
    let extra = format!(
        "[server.admin_tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
        d.join("cert.pem").display(),
        d.join("key.pem").display(),
        d.join("clients.pem").display()
    );
    let g = Gateway::start(&extra, &format!("{}{}", backend("b", m.port, ""), route()));
    let url = format!("https://127.0.0.1:{}/healthz", g.admin_port);
    let with_identity = |ca: &Ca| {
        let (cert, key) = ca.sign(&["operator"]);
        let id = reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap();
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(server_ca.pem().as_bytes()).unwrap(),
            )
            .identity(id)
            .build()
            .unwrap()
    };
    let ok = with_identity(&client_ca).get(&url).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "ok\n");
    assert!(
        trusting(&server_ca).get(&url).send().await.is_err(),
        "no client certificate"
    );
    assert!(
        with_identity(&stranger).get(&url).send().await.is_err(),
        "another CA's client"
    );
    // Plain HTTP is not served on the admin port.
    assert!(common::client()
        .get(g.admin("/healthz"))
        .send()
        .await
        .is_err());
}
