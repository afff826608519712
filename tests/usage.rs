//! Usage accounting through the real binary: for each provider format the mock speaks and
//! each client API, streaming and not, the tokens the gateway bills equal the usage the
//! provider reported (cached and reasoning tokens included); an OpenAI stream that did not ask
//! for usage is billed the same and never sees the usage chunk; a stream the client cancels,
//! or that breaks, is billed for what was generated and marked estimated.

mod common;

use common::{client, mock, Gateway, Proc};
use serde_json::{json, Value};

const MODELS: [&str; 4] = ["m-openai", "m-anthropic", "m-bedrock", "m-gemini"];

fn gateway(m: &Proc) -> Gateway {
    let p = m.port;
    let cfg = format!(
        "[[backends]]\nname = \"oa\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:{p}\"\n\
         [[backends]]\nname = \"an\"\nprovider = \"anthropic\"\nurl = \"http://127.0.0.1:{p}\"\napi_key = \"k\"\n\
         [[backends]]\nname = \"bd\"\nprovider = \"bedrock\"\nurl = \"http://127.0.0.1:{p}\"\nregion = \"us-east-1\"\n\
         aws_access_key_id = \"AKID\"\naws_secret_access_key = \"secret\"\n\
         [[backends]]\nname = \"gm\"\nprovider = \"gemini\"\nurl = \"http://127.0.0.1:{p}\"\napi_key = \"k\"\n\
         [[routes]]\nmodels = [\"m-openai\"]\ntargets = [{{ backend = \"oa\", model = \"gpt-4o\" }}]\n\
         [[routes]]\nmodels = [\"m-anthropic\"]\ntargets = [{{ backend = \"an\", model = \"claude-sonnet-4-5\" }}]\n\
         [[routes]]\nmodels = [\"m-bedrock\"]\ntargets = [{{ backend = \"bd\", model = \"anthropic.claude-3-haiku-20240307-v1:0\" }}]\n\
         [[routes]]\nmodels = [\"m-gemini\"]\ntargets = [{{ backend = \"gm\", model = \"gemini-2.5-flash\" }}]\n"
    );
    Gateway::start("", &cfg)
}

fn the_mock() -> Proc {
    mock(
        "usage",
        &[
            "--aws-access-key-id",
            "AKID",
            "--aws-secret-access-key",
            "secret",
        ],
    )
}

/// Usage in the gateway's terms: input (incl. cached), cached, output.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Seen {
    input: u64,
    cached: u64,
    output: u64,
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn from_openai(u: &Value) -> Seen {
    Seen {
        input: n(&u["prompt_tokens"]),
        cached: n(&u["prompt_tokens_details"]["cached_tokens"]),
        output: n(&u["completion_tokens"]),
    }
}

fn from_anthropic(u: &Value) -> Seen {
    let cached = n(&u["cache_read_input_tokens"]);
    Seen {
        input: n(&u["input_tokens"]) + cached + n(&u["cache_creation_input_tokens"]),
        cached,
        output: n(&u["output_tokens"]),
    }
}

fn from_log(v: &Value) -> Seen {
    Seen {
        input: n(&v["input_tokens"]),
        cached: n(&v["cached_input_tokens"]),
        output: n(&v["output_tokens"]),
    }
}

/// The access-log line of a request.
fn log_line(g: &Gateway, rid: &str) -> Value {
    serde_json::from_str(&g.proc.wait_line(&format!("\"request_id\":\"{rid}\""))).unwrap()
}

fn body(model: &str, anthropic: bool, stream: bool, include_usage: bool) -> Value {
    let mut b = json!({"model": model, "max_tokens": 40, "stream": stream,
        "messages": [{"role": "user", "content": "Count the tokens of this prompt, please."}]});
    if stream && include_usage && !anthropic {
        b["stream_options"] = json!({"include_usage": true});
    }
    b
}

async fn send(
    g: &Gateway,
    anthropic: bool,
    body: &Value,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let path = if anthropic {
        "/v1/messages"
    } else {
        "/v1/chat/completions"
    };
    let mut r = client()
        .post(g.url(path))
        .header("anthropic-version", "2023-06-01")
        .header("x-mock-cached-tokens", "3")
        .json(body);
    for (k, v) in extra {
        r = r.header(*k, *v);
    }
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 200);
    r
}

fn rid(r: &reqwest::Response) -> String {
    r.headers()["x-request-id"].to_str().unwrap().to_string()
}

/// The client's view of a stream's usage: every `data:` JSON event, folded.
fn stream_usage(text: &str, anthropic: bool) -> Option<Seen> {
    let mut seen: Option<Seen> = None;
    for data in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        if anthropic {
            if v["type"] == "message_start" {
                seen = Some(from_anthropic(&v["message"]["usage"]));
            } else if v["type"] == "message_delta" {
                // The closing report repeats the input counts when it knows them.
                let u = &v["usage"];
                if let Some(s) = &mut seen {
                    if u.get("input_tokens").is_some() {
                        *s = from_anthropic(u);
                    }
                    s.output = n(&u["output_tokens"]);
                }
            }
        } else if v["usage"].is_object() {
            seen = Some(from_openai(&v["usage"]));
        }
    }
    seen
}

#[tokio::test]
async fn billed_tokens_equal_the_providers_report_for_every_format_and_front() {
    let m = the_mock();
    let g = gateway(&m);
    for model in MODELS {
        for anthropic in [false, true] {
            let case = format!("{model} anthropic={anthropic}");
            // Not streamed.
            let r = send(&g, anthropic, &body(model, anthropic, false, false), &[]).await;
            let id = rid(&r);
            let v: Value = r.json().await.unwrap();
            let client = if anthropic {
                from_anthropic(&v["usage"])
            } else {
                from_openai(&v["usage"])
            };
            assert!(client.input > 0 && client.output > 0, "{case}: {v}");
            let line = log_line(&g, &id);
            assert_eq!(from_log(&line), client, "{case}: {line}");
            assert_eq!(line["estimated"], false, "{case}");
            assert_eq!(n(&line["total_tokens"]), client.input + client.output);

            // Streamed, usage asked for: the client's view and the bill agree.
            let r = send(&g, anthropic, &body(model, anthropic, true, true), &[]).await;
            let id = rid(&r);
            let text = r.text().await.unwrap();
            let streamed =
                stream_usage(&text, anthropic).unwrap_or_else(|| panic!("{case}: {text}"));
            assert_eq!(streamed, client, "{case}: stream and reply differ");
            let line = log_line(&g, &id);
            assert_eq!(from_log(&line), client, "{case}: {line}");
            assert!(line["ttft_ms"].as_f64().is_some(), "{case}: {line}");
            if anthropic {
                continue;
            }
            // An OpenAI stream that did not ask: no usage chunk, billed all the same.
            let r = send(&g, false, &body(model, false, true, false), &[]).await;
            let id = rid(&r);
            let text = r.text().await.unwrap();
            assert!(
                !text.contains("\"usage\":{"),
                "{case}: usage leaked: {text}"
            );
            assert!(text.trim_end().ends_with("data: [DONE]"), "{case}: {text}");
            assert_eq!(from_log(&log_line(&g, &id)), client, "{case}");
        }
    }
}

#[tokio::test]
async fn reasoning_tokens_are_billed_as_reported() {
    let m = the_mock();
    let g = gateway(&m);
    let mut b = body("m-openai", false, false, false);
    b["reasoning_effort"] = json!("high");
    let r = send(&g, false, &b, &[]).await;
    let id = rid(&r);
    let v: Value = r.json().await.unwrap();
    let reasoning = n(&v["usage"]["completion_tokens_details"]["reasoning_tokens"]);
    assert!(reasoning > 0, "{v}");
    let line = log_line(&g, &id);
    assert_eq!(n(&line["reasoning_tokens"]), reasoning);
    assert_eq!(
        n(&line["output_tokens"]),
        n(&v["usage"]["completion_tokens"])
    );
}

/// Reads a slow stream's first events over a raw connection, then closes it (with unread
/// data, so the gateway's next write fails at once). Returns the request id.
async fn read_some_then_cancel(g: &Gateway, model: &str, anthropic: bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut b = body(model, anthropic, true, true);
    b["max_tokens"] = json!(1000);
    let b = b.to_string();
    let rid = format!("cancel-{model}-{anthropic}");
    let path = if anthropic {
        "/v1/messages"
    } else {
        "/v1/chat/completions"
    };
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         anthropic-version: 2023-06-01\r\nx-request-id: {rid}\r\nx-mock-words: 400\r\n\
         x-mock-chunk-delay-ms: 20\r\ncontent-length: {}\r\n\r\n{b}",
        b.len()
    );
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", g.proc.port))
        .await
        .unwrap();
    c.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < 1500 {
        let k = c.read(&mut buf).await.unwrap();
        assert!(k > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..k]);
    }
    drop(c);
    rid
}

#[tokio::test]
async fn a_cancelled_stream_is_billed_for_what_was_generated() {
    let m = the_mock();
    let g = gateway(&m);
    for model in MODELS {
        for anthropic in [false, true] {
            let id = read_some_then_cancel(&g, model, anthropic).await;
            let line = log_line(&g, &id);
            let case = format!("{model} anthropic={anthropic}: {line}");
            assert_eq!(line["estimated"], true, "{case}");
            assert!(n(&line["input_tokens"]) > 0, "{case}");
            // Some words went by, far fewer than the 400 asked for.
            let out = n(&line["output_tokens"]);
            assert!((2..300).contains(&out), "{case}");
            assert_eq!(line["error"], "client_disconnected", "{case}");
        }
    }
}

#[tokio::test]
async fn a_broken_stream_is_billed_for_what_passed() {
    let m = the_mock();
    let g = gateway(&m);
    for model in ["m-openai", "m-anthropic"] {
        let b = body(model, false, true, false);
        let r = send(
            &g,
            false,
            &b,
            &[("x-mock-words", "50"), ("x-mock-drop-after", "10")],
        )
        .await;
        let id = rid(&r);
        let _ = r.text().await;
        let line = log_line(&g, &id);
        assert_eq!(line["estimated"], true, "{model}: {line}");
        assert!(n(&line["output_tokens"]) > 0, "{model}: {line}");
    }
}
