//! Black-box harness: real `tollgate` processes (gateway and mocks) on free ports, stopped on
//! drop. Waiting is polling with a deadline, never a fixed sleep.
#![allow(dead_code)]

pub mod redis_server;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

pub fn free_port() -> u16 {
    static TAKEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let taken = TAKEN.get_or_init(|| Mutex::new(HashSet::new()));
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind an ephemeral port");
        if taken.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// A port nothing listens on (connections are refused).
pub fn dead_port() -> u16 {
    free_port()
}

pub fn wait_port(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        // A connection to itself (the kernel gave the probe the port it dials, as it may
        // with an ephemeral port nothing listens on yet) is no listener.
        let probe = TcpStream::connect(("127.0.0.1", port));
        if probe.is_ok_and(|s| s.local_addr().ok() != s.peer_addr().ok()) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("process exited before listening on {port}: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listening on {port} after 30s");
}

pub struct Proc {
    child: Child,
    pub port: u16,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(lines: &Mutex<Vec<String>>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(l) = lines.lock().unwrap().iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no line with {needle:?}; have {:?}", lines.lock().unwrap());
}

fn collect(r: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            l.lock().unwrap().push(line);
        }
    });
    lines
}

type Lines = Arc<Mutex<Vec<String>>>;

fn spawn(args: &[&str]) -> (Child, Lines, Lines) {
    spawn_bin(BIN, args)
}

fn spawn_bin(bin: &str, args: &[&str]) -> (Child, Lines, Lines) {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    // Tests never reach real providers.
    for k in [
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_BEARER_TOKEN_BEDROCK",
        "GOOGLE_APPLICATION_CREDENTIALS",
    ] {
        cmd.env_remove(k);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = collect(child.stdout.take().unwrap());
    let err = collect(child.stderr.take().unwrap());
    (child, out, err)
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`TERM`, `HUP`, `QUIT`, ...) to the process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args(["-s", sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -s {sig} failed");
    }

    /// The exit status, if the process ends within `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stdout lines (the gateway's access log).
    pub fn stdout(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for a stdout line containing `needle`.
    pub fn wait_line(&self, needle: &str) -> String {
        wait_for(&self.lines, needle)
    }

    /// Waits for a stderr line containing `needle`.
    pub fn wait_stderr(&self, needle: &str) -> String {
        wait_for(&self.stderr, needle)
    }
}

/// Any of the package's binaries (`CARGO_BIN_EXE_*`), once it listens on `port`.
pub fn start(bin: &str, args: &[&str], port: u16) -> Proc {
    let (mut child, lines, stderr) = spawn_bin(bin, args);
    wait_port(port, &mut child);
    Proc {
        child,
        port,
        lines,
        stderr,
    }
}

/// `tollgate mock --name NAME` plus extra flags.
pub fn mock(name: &str, extra: &[&str]) -> Proc {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["mock", "--listen", &listen, "--name", name];
    args.extend_from_slice(extra);
    start(BIN, &args, port)
}

/// `tollgate mock --tls` with a certificate it generates into a fresh directory; returns the
/// process and the certificate's path (for a client's or a backend's trusted roots).
pub fn tls_mock() -> (Proc, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "tollgate-tls-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let m = mock(
        "tls",
        &[
            "--tls",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    (m, cert)
}

/// `open = true` for a test config without `[[keys]]` (a config must say it serves without
/// keys), unless the test sets `open` itself.
pub fn open_unless_keyed(server_extra: &str, rest: &str) -> &'static str {
    let keyed = rest.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with("[[keys]]") || l.starts_with("managed_keys = true")
    });
    if keyed || server_extra.contains("open") {
        ""
    } else {
        "open = true\n"
    }
}

pub struct Gateway {
    pub proc: Proc,
    pub admin_port: u16,
    pub config_path: std::path::PathBuf,
}

impl Gateway {
    /// Starts a gateway: `server_extra` goes into `[server]`, `rest` after it.
    pub fn start(server_extra: &str, rest: &str) -> Gateway {
        let port = free_port();
        let admin_port = free_port();
        let dir = std::env::temp_dir().join(format!("tollgate-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Each gateway keeps its own store unless the test names one.
        let store = match rest.contains("[store]") {
            true => String::new(),
            false => format!(
                "[store]\npath = \"{}\"\n",
                dir.join("tollgate.db").display()
            ),
        };
        let cfg = format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nadmin_listen = \"127.0.0.1:{admin_port}\"\nthreads = 2\n{}{server_extra}\n{store}{rest}",
            open_unless_keyed(server_extra, rest)
        );
        let config_path = dir.join("tollgate.toml");
        std::fs::write(&config_path, cfg).unwrap();
        let pid_file = dir.join("pid");
        let sock = dir.join("upgrade.sock");
        // Keep pid file and upgrade socket per test so parallel gateways never collide.
        let mut full = std::fs::read_to_string(&config_path).unwrap();
        full = full.replacen(
            "[server]\n",
            &format!(
                "[server]\npid_file = \"{}\"\nupgrade_sock = \"{}\"\n",
                pid_file.display(),
                sock.display()
            ),
            1,
        );
        std::fs::write(&config_path, full).unwrap();
        let (mut child, lines, stderr) = spawn(&["run", "-c", config_path.to_str().unwrap()]);
        wait_port(port, &mut child);
        wait_port(admin_port, &mut child);
        Gateway {
            proc: Proc {
                child,
                port,
                lines,
                stderr,
            },
            admin_port,
            config_path,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.proc.port)
    }

    pub fn admin(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }
}

pub fn backend(name: &str, port: u16, extra: &str) -> String {
    format!(
        "[[backends]]\nname = \"{name}\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:{port}\"\n{extra}\n"
    )
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().http1_only().build().unwrap()
}

pub fn h2c_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(b))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// How many requests the mock has answered (its `/mock/stats`).
#[allow(dead_code)]
pub async fn upstream_requests(m: &Proc) -> u64 {
    let stats = get_json(format!("{}/mock/stats", m.url()), None).await;
    stats["requests"].as_u64().unwrap_or(u64::MAX)
}

pub fn chat(model: &str) -> serde_json::Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "Say hello"}]})
}

/// Asserts the OpenAI error shape and returns the `error` object.
pub fn assert_error_shape(v: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    let e = v["error"]
        .as_object()
        .unwrap_or_else(|| panic!("no error object in {v}"));
    for k in ["message", "type", "param", "code"] {
        assert!(e.contains_key(k), "error lacks `{k}`: {v}");
    }
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    e.clone()
}

/// A streamed chat request for `model` (`"stream": true`).
#[allow(dead_code)]
pub async fn stream_chat(g: &Gateway, model: &str) -> reqwest::Response {
    let mut body = chat(model);
    body["stream"] = true.into();
    client()
        .post(g.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// POSTs `body` as JSON to the gateway's `path`, with a client key and extra headers.
#[allow(dead_code)]
pub async fn send(
    g: &Gateway,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> reqwest::Response {
    let mut r = client().post(g.url(path)).json(body);
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

/// [`send`], read as the status and the JSON body (`null` when there is none).
#[allow(dead_code)]
pub async fn send_json(
    g: &Gateway,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = send(g, path, key, headers, body).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// One scrape of the gateway's `/metrics`.
#[allow(dead_code)]
pub async fn metrics(g: &Gateway) -> String {
    let r = client().get(g.admin("/metrics")).send().await.unwrap();
    r.text().await.unwrap()
}

/// Polls the gateway's `/metrics` until it contains `needle`; returns the scrape.
#[allow(dead_code)]
pub async fn wait_metrics(g: &Gateway, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics(g).await;
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed {needle}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// POSTs `body` as JSON to `path` on a process with extra headers.
pub async fn post_json(
    m: &Proc,
    path: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> reqwest::Response {
    let mut r = client().post(format!("{}{path}", m.url())).json(body);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    // A process that stopped listening says why on stderr: shown with the failure.
    r.send().await.unwrap_or_else(|e| {
        panic!(
            "POST {path} to {}: {e}; its stderr: {:?}",
            m.url(),
            m.stderr()
        )
    })
}

/// OpenAI SSE data lines before `[DONE]`, and whether `[DONE]` came.
pub fn openai_chunks(text: &str) -> (Vec<serde_json::Value>, bool) {
    let mut done = false;
    let chunks = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .filter_map(|e| {
            let d = e.strip_prefix("data: ").unwrap_or_else(|| panic!("{e}"));
            done |= d == "[DONE]";
            (d != "[DONE]").then(|| serde_json::from_str(d).unwrap())
        })
        .collect();
    (chunks, done)
}

/// GETs `url` (with a bearer token if given) and reads its JSON body, whatever the status.
pub async fn get_json(url: String, token: Option<&str>) -> serde_json::Value {
    let mut r = client().get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap().json().await.unwrap()
}

/// A bare upstream on a free port: for each connection it reads one request (up to 64 KiB),
/// writes what `reply` makes of it (nothing: it hangs up) and closes. For the replies no mock
/// gives: an error that echoes its key, a stream that ends without its terminal event.
#[allow(dead_code)]
pub fn raw_upstream(reply: impl Fn(&str) -> String + Send + 'static) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut buf = vec![0u8; 65536];
            let n = s.read(&mut buf).unwrap_or(0);
            let _ = s.write_all(reply(&String::from_utf8_lossy(&buf[..n])).as_bytes());
        }
    });
    port
}
