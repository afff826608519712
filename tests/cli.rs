//! The command line: check, hash-key, version, and the shipped config running as is.

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::Command;

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(name: &str, text: &str) -> String {
    let p = std::env::temp_dir().join(format!("tollgate-cli-{}-{name}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn check_accepts_the_shipped_config() {
    let (code, out, err) = run(&["check", "-c", "conf/tollgate.toml"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok"));
}

#[test]
fn check_lists_every_error_with_path_and_line_and_no_secret() {
    let f = write(
        "bad.toml",
        r#"[server]
listen = ["127.0.0.1:8080"]

[[backends]]
name = "openai"
provider = "openai"
url = "https://api.openai.com"
api_key = "${TOLLGATE_TEST_UNSET_VAR}"

[[routes]]
models = ["gpt-4o"]
targets = [{ backend = "missing" }]
"#,
    );
    let (code, out, err) = run(&["check", "-c", &f], &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("line 8: `backends[0].api_key`: environment variable `TOLLGATE_TEST_UNSET_VAR` is not set"), "{err}");
    assert!(
        err.contains("line 12: `routes[0].targets[0].backend`: no backend named `missing`"),
        "{err}"
    );

    let f = write(
        "unknown.toml",
        "[server]\nlisten = [\"127.0.0.1:1\"]\nlisten_typo = 1\n",
    );
    let (code, _, err) = run(&["check", "-c", &f], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("line 3") && err.contains("listen_typo"),
        "{err}"
    );

    let f = write(
        "secret.toml",
        "[server]\nmax_body_bytes = \"${TOLLGATE_TEST_SECRET}\"\n",
    );
    let (code, _, err) = run(
        &["check", "-c", &f],
        &[("TOLLGATE_TEST_SECRET", "sk-live-very-secret")],
    );
    assert_eq!(code, 1);
    assert!(err.contains("server.max_body_bytes"), "{err}");
    assert!(!err.contains("sk-live-very-secret"), "{err}");

    let f = write("syntax.toml", "[server\n");
    let (code, _, err) = run(&["check", "-c", &f], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("line 1") && err.contains("invalid TOML"),
        "{err}"
    );
}

#[test]
fn hash_key_and_version() {
    let (code, out, _) = run(&["hash-key", "abc"], &[]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let (code, out, _) = run(&["--version"], &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("tollgate "));
}

/// The README's run command: the shipped config answers "demo" with no keys and no internet.
#[tokio::test]
async fn shipped_config_answers_demo_model() {
    let text = std::fs::read_to_string("conf/tollgate.toml").unwrap();
    let m = free_port();
    // Only the ports differ from the shipped file; `Gateway::start` supplies them in [server].
    let rest = text
        .replace("listen = [\"127.0.0.1:8080\"]", "")
        .replace("admin_listen = \"127.0.0.1:9091\"", "")
        .replace("[server]", "")
        .replace("open = true", "")
        .replace("127.0.0.1:9099", &format!("127.0.0.1:{m}"))
        // The copy lives in a temporary directory: the price file by its full path, and a
        // store of its own.
        .replace(
            "file = \"prices.toml\"",
            concat!(
                "file = \"",
                env!("CARGO_MANIFEST_DIR"),
                "/conf/prices.toml\""
            ),
        )
        .replace(
            "path = \"tollgate.db\"",
            &format!("path = \"{}/cli-{m}.db\"", std::env::temp_dir().display()),
        );
    assert!(text.contains("127.0.0.1:9099") && text.contains("file = \"prices.toml\""));
    let g = Gateway::start("", &rest);
    g.proc.wait_stderr("clients are served without a key");
    let c = client();
    let r = c
        .post(g.url("/v1/chat/completions"))
        .json(&json!({"model": "demo", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(!v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .is_empty());
    let r = c
        .post(g.url("/v1/chat/completions"))
        .json(&json!({"model": "demo", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    // OpenAI is off without its key: listed nowhere, and a clear 503 instead of a 401 upstream.
    let v = get_json(g.url("/v1/models"), None).await;
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["demo-claude", "demo-bedrock", "demo-gemini", "demo"]);
    // The cloud formats too, through the built-in mock's Bedrock and Gemini APIs.
    for model in ["demo-bedrock", "demo-gemini"] {
        let body = json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
        let r = c
            .post(g.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{model}");
        assert!(
            r.text().await.unwrap().ends_with("data: [DONE]\n\n"),
            "{model}"
        );
    }
    // Both directions of translation work out of the box, through the mock's two APIs.
    let v: Value = c
        .post(g.url("/v1/chat/completions"))
        .json(&chat("demo-claude"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "chat.completion");
    let r = c
        .post(g.url("/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "demo", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["type"], "message");
    let r = c
        .post(g.url("/v1/chat/completions"))
        .json(&chat("gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        assert_error_shape(&r.json().await.unwrap())["code"],
        "backend_disabled"
    );
}

#[test]
fn check_validates_a_composition_and_locates_errors_in_included_files() {
    let dir = std::env::temp_dir().join(format!("tollgate-compose-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    let put = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    put(
        "tollgate.toml",
        "include = [\"conf.d\", \"secrets.toml\"]\n[server]\nlisten = [\"127.0.0.1:8080\"]\n",
    );
    put(
        "conf.d/10-backends.toml",
        "[[backends]]\nname = \"local\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:9\"\n",
    );
    put(
        "conf.d/20-routes.toml",
        "[[routes]]\nmodels = [\"m\"]\ntargets = [{ backend = \"local\" }]\n",
    );
    put(
        "secrets.toml",
        "[[keys]]\nname = \"team\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n",
    );
    let main = dir.join("tollgate.toml");
    let main = main.to_str().unwrap();
    let (code, out, err) = run(&["check", "-c", main], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 backends, 1 routes, 1 keys"), "{out}");
    // A mistake in an included file names that file and its own line.
    put(
        "conf.d/20-routes.toml",
        "[[routes]]\nmodels = [\"m\"]\ntargets = [{ backend = \"nope\" }]\n",
    );
    let (code, _, err) = run(&["check", "-c", main], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("20-routes.toml) line 3: `routes[0].targets[0].backend`"),
        "{err}"
    );
}

/// The help texts say what the code serves: the mock answers every API it routes (each is
/// exercised by the mock_* suites), and the top-level help names every client API.
#[test]
fn help_names_every_api() {
    let (code, out, _) = run(&["mock", "--help"], &[]);
    assert_eq!(code, 0);
    for api in [
        "OpenAI",
        "Responses",
        "embeddings",
        "Azure",
        "Anthropic",
        "Gemini",
        "Vertex",
        "Bedrock",
    ] {
        assert!(
            out.contains(api),
            "`tollgate mock --help` names {api}:\n{out}"
        );
    }
    let (_, out, _) = run(&["--help"], &[]);
    for api in ["chat", "Responses", "embeddings", "Anthropic Messages"] {
        assert!(out.contains(api), "`tollgate --help` names {api}:\n{out}");
    }
}
