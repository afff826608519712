//! Configs that cannot open the gate: a config without `[[keys]]` must say `open = true`, and
//! one without routes is refused, at `check`, at start and at every reload. Under load, a
//! truncated, empty or keyless file written over a keyed gateway's config (by SIGHUP or the
//! file watch) is refused: no request is served by it, none without a key.

mod common;

use common::{backend, chat, client, mock, sha256_hex, wait_metrics, Gateway, BIN};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SECRET: &str = "sk-gate-client";

fn key_table() -> String {
    format!(
        "[[keys]]\nname = \"k\"\nsha256 = \"{}\"\n",
        sha256_hex(SECRET.as_bytes())
    )
}

fn route() -> &'static str {
    "[[routes]]\nmodels = [\"m\"]\ntargets = [{ backend = \"b\" }]\n"
}

/// `tollgate check` on `text`: exit code and stderr.
fn check(name: &str, text: &str) -> (i32, String) {
    let p = std::env::temp_dir().join(format!("tollgate-gate-{}-{name}.toml", std::process::id()));
    std::fs::write(&p, text).unwrap();
    let out = Command::new(BIN)
        .args(["check", "-c", p.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), err)
}

#[test]
fn check_refuses_a_config_that_would_be_open_or_empty() {
    let b = backend("b", 1, "");
    let keyless = format!("{b}{}", route());
    let (code, err) = check("keyless", &keyless);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no [[keys]]") && err.contains("open = true"),
        "{err}"
    );

    // Saying so on purpose is accepted.
    let (code, err) = check("open", &format!("[server]\nopen = true\n{keyless}"));
    assert_eq!(code, 0, "{err}");
    // Keys and `open` together are a contradiction.
    let both = format!("[server]\nopen = true\n{b}{}{}", route(), key_table());
    let (code, err) = check("both", &both);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("server.open"), "{err}");

    // An editor's truncate-then-write: the empty file, and one cut before its routes.
    for (name, text) in [("empty", String::new()), ("cut", b.clone())] {
        let (code, err) = check(name, &text);
        assert_eq!(code, 1, "{name}: {err}");
        assert!(err.contains("no [[routes]]"), "{name}: {err}");
    }
}

#[test]
fn start_refuses_a_keyless_config() {
    let p = std::env::temp_dir().join(format!("tollgate-gate-{}-start.toml", std::process::id()));
    let port = common::free_port();
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\nadmin_listen = \"\"\n{}{}",
        backend("b", 1, ""),
        route()
    );
    std::fs::write(&p, text).unwrap();
    let out = Command::new(BIN)
        .args(["run", "-c", p.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no [[keys]]"), "{err}");
}

/// Counts of what the load saw: keyed requests not answered 200, and keyless requests that
/// were served.
#[derive(Default)]
struct Seen {
    keyed_failed: AtomicU32,
    keyless_served: AtomicU32,
    total: AtomicU32,
}

/// Keyed and keyless requests in a loop until `stop`.
async fn load(url: String, seen: Arc<Seen>, stop: Arc<AtomicBool>) {
    let c = client();
    while !stop.load(Ordering::Relaxed) {
        let keyed = c.post(&url).bearer_auth(SECRET).json(&chat("m")).send();
        let keyless = c.post(&url).json(&chat("m")).send();
        let (keyed, keyless) = tokio::join!(keyed, keyless);
        if keyed.map(|r| r.status().as_u16()).unwrap_or(0) != 200 {
            seen.keyed_failed.fetch_add(1, Ordering::Relaxed);
        }
        if keyless.map(|r| r.status().as_u16()).unwrap_or(0) == 200 {
            seen.keyless_served.fetch_add(1, Ordering::Relaxed);
        }
        seen.total.fetch_add(2, Ordering::Relaxed);
    }
}

#[tokio::test]
async fn reloads_of_broken_files_under_load_never_open_the_gate() {
    let m = mock("b", &[]);
    let good = format!("{}{}{}", backend("b", m.port, ""), route(), key_table());
    let g = Gateway::start("watch_config = true\nwatch_interval_ms = 100", &good);
    let original = std::fs::read_to_string(&g.config_path).unwrap();
    let head = original.split("[[backends]]").next().unwrap().to_string();

    let (seen, stop) = (Arc::new(Seen::default()), Arc::new(AtomicBool::new(false)));
    let url = g.url("/v1/chat/completions");
    let workers: Vec<_> = (0..4)
        .map(|_| tokio::spawn(load(url.clone(), seen.clone(), stop.clone())))
        .collect();

    // Each broken file is written over the config and left for the watch to see (it settles
    // after two polls) and signalled; then the good file goes back.
    let broken = [
        String::new(),
        head.clone(),
        format!("{head}{}{}", backend("b", m.port, ""), route()),
        format!("{head}{}", backend("b", m.port, "")),
    ];
    for text in &broken {
        std::fs::write(&g.config_path, text).unwrap();
        tokio::time::sleep(Duration::from_millis(350)).await;
        g.proc.signal("HUP");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    std::fs::write(&g.config_path, &original).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    let total = seen.total.load(Ordering::Relaxed);
    assert!(total > 40, "the load ran: {total} requests");
    assert_eq!(
        seen.keyless_served.load(Ordering::Relaxed),
        0,
        "keyless requests served"
    );
    assert_eq!(
        seen.keyed_failed.load(Ordering::Relaxed),
        0,
        "keyed requests refused"
    );
    // Every broken file was refused, by the signal at least, and said why at error level.
    let text = wait_metrics(
        &g,
        "tollgate_config_reloads_total{result=\"rejected\",trigger=\"signal\"} 4",
    )
    .await;
    assert!(
        !text.contains("result=\"applied\",trigger=\"signal\""),
        "{text}"
    );
    g.proc.wait_stderr("no [[routes]]");
    g.proc.wait_stderr("no [[keys]]");
}
