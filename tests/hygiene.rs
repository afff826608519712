//! Connection hygiene on raw sockets: HTTP/1.0 closes unless it asked for keep-alive, a request
//! with both Content-Length and Transfer-Encoding is refused and its connection closed, and a
//! model name past the cap is refused without being reflected. The gateway serves afterwards.

mod common;

use common::{backend, chat, client, mock, send, Gateway};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn gateway() -> (common::Proc, Gateway) {
    gateway_with("")
}

/// A gateway in front of one mock, `server_extra` in its `[server]`.
fn gateway_with(server_extra: &str) -> (common::Proc, Gateway) {
    let m = mock("m", &[]);
    let cfg = format!(
        "{}[[routes]]\nmodels = [\"m\"]\ntargets = [{{ backend = \"b\" }}]\n",
        backend("b", m.port, "")
    );
    (m, Gateway::start(server_extra, &cfg))
}

fn connect(g: &Gateway) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", g.proc.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Reads one response (head and a Content-Length body) off `s`.
fn response(s: &mut TcpStream) -> String {
    try_response(s).unwrap()
}

fn try_response(s: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? != 1 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(format!("{head}{}", String::from_utf8_lossy(&body)))
}

/// A connection served once (so it surely holds its slot). Tried again while the start-up
/// readiness probe's connection, closed but not yet noticed, still holds one of the slots.
fn served(g: &Gateway) -> TcpStream {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = connect(g);
        let sent = s.write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n");
        if sent.is_ok() && try_response(&mut s).is_ok_and(|r| r.contains(" 200")) {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "no connection served");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the server closed `s` (end of stream) within the read timeout.
fn closed(s: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).is_ok()
}

#[tokio::test]
async fn http10_closes_unless_it_asks_for_keep_alive() {
    let (_m, g) = gateway();
    let mut s = connect(&g);
    s.write_all(b"GET /v1/models HTTP/1.0\r\n\r\n").unwrap();
    let r = response(&mut s);
    assert!(r.contains(" 200"), "{r}");
    assert!(closed(&mut s), "HTTP/1.0 without keep-alive is closed");

    let mut s = connect(&g);
    for _ in 0..2 {
        s.write_all(b"GET /v1/models HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        let r = response(&mut s);
        assert!(r.contains(" 200"), "{r}");
    }
    // HTTP/1.1 stays open between requests too.
    let mut s = connect(&g);
    for _ in 0..2 {
        s.write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert!(response(&mut s).contains(" 200"));
    }
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_refused_and_closed() {
    let (_m, g) = gateway();
    let mut s = connect(&g);
    let body = "{\"model\":\"m\"}";
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
         Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let r = response(&mut s);
    assert!(r.starts_with("http/1.1 400"), "{r}");
    assert!(
        r.contains("both Content-Length and Transfer-Encoding"),
        "{r}"
    );
    assert!(closed(&mut s), "the connection is closed");
    // Chunked alone is served.
    let r = client()
        .post(g.url("/v1/chat/completions"))
        .body(reqwest::Body::wrap_stream(futures_once(
            serde_json::to_vec(&chat("m")).unwrap(),
        )))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn futures_once(b: Vec<u8>) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::once(async move { Ok(b) })
}

#[tokio::test]
async fn a_huge_model_name_is_refused_without_being_reflected() {
    let (_m, g) = gateway();
    let model = "x".repeat(900 * 1024);
    let mut body = chat("m");
    body["model"] = model.clone().into();
    let r = send(&g, "/v1/chat/completions", None, &[], &body).await;
    assert_eq!(r.status(), 400);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = r.text().await.unwrap();
    assert!(
        text.len() < 1024 && text.contains("at most 256"),
        "{}",
        &text[..text.len().min(300)]
    );
    let line = g.proc.wait_line(&rid);
    assert!(line.len() < 2048, "the access log does not hold the name");
    let ok = send(&g, "/v1/chat/completions", None, &[], &chat("m")).await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn an_idle_h2_connection_is_closed_after_the_keep_alive_timeout() {
    let (_m, g) = gateway_with("keepalive_timeout_seconds = 1");
    let mut s = connect(&g);
    // The h2 preface and an empty SETTINGS frame, then nothing.
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let started = std::time::Instant::now();
    assert!(closed(&mut s), "the server closes an idle h2 connection");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn an_idle_http1_connection_is_closed_after_the_keep_alive_timeout() {
    // The connection's head clock closes it (Pingora's own keep-alive timer is off): after
    // the keep-alive timeout, not the head timeout (30 s by default) on top of it.
    let (_m, g) = gateway_with("keepalive_timeout_seconds = 1");
    let mut s = served(&g);
    let started = std::time::Instant::now();
    assert!(
        closed(&mut s),
        "the server closes an idle HTTP/1 connection"
    );
    let idle = started.elapsed();
    assert!(idle >= Duration::from_millis(900), "closed after {idle:?}");
    assert!(idle < Duration::from_secs(4), "closed after {idle:?}");
}

/// An upstream that streams one chat chunk, then ends its chunked body cleanly without
/// `[DONE]` (a stream cut after a clean end, as a crashing server's proxy may send).
fn upstream_without_done() -> u16 {
    common::raw_upstream(|_| {
        let event = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n";
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{event}\r\n0\r\n\r\n",
            event.len()
        )
    })
}

#[tokio::test]
async fn a_passthrough_stream_without_its_end_is_reported_cut() {
    use futures_util::StreamExt;
    let port = upstream_without_done();
    let cfg = format!(
        "{}[[routes]]\nmodels = [\"m\"]\ntargets = [{{ backend = \"b\" }}]\n",
        backend("b", port, "")
    );
    let g = Gateway::start("", &cfg);
    let mut body = chat("m");
    body["stream"] = true.into();
    let r = send(&g, "/v1/chat/completions", None, &[], &body).await;
    assert_eq!(r.status(), 200);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let (mut text, mut failed) = (String::new(), false);
    let mut s = r.bytes_stream();
    while let Some(c) = s.next().await {
        match c {
            Ok(b) => text.push_str(&String::from_utf8_lossy(&b)),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(
        failed,
        "the client sees a cut stream, not a clean end: {text}"
    );
    assert!(
        text.contains("\"Hi\"") && text.contains("\"error\""),
        "{text}"
    );
    let line: serde_json::Value = serde_json::from_str(&g.proc.wait_line(&rid)).unwrap();
    assert!(line["error"].is_string(), "the access log says so: {line}");
}

#[tokio::test]
async fn silent_and_slow_heads_are_closed_at_the_head_deadline() {
    let (_m, g) = gateway_with("header_timeout_seconds = 1");
    // Nothing at all.
    let mut silent = connect(&g);
    let t = std::time::Instant::now();
    assert!(closed(&mut silent), "a silent connection is closed");
    assert!(t.elapsed() < Duration::from_secs(4));
    // A head at a byte every 200 ms (slowloris): closed before it completes.
    let mut slow = connect(&g);
    let head = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut = false;
    for b in head {
        if slow.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(
        cut || rest.is_empty(),
        "no answer to a head that took too long"
    );
    // A prompt client on a kept-alive connection is unaffected, its second request included.
    let mut s = connect(&g);
    for _ in 0..2 {
        s.write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert!(response(&mut s).contains(" 200"));
        std::thread::sleep(Duration::from_millis(1500));
    }
}

#[tokio::test]
async fn connections_over_the_per_client_cap_are_closed_at_once() {
    let (_m, g) = gateway_with("max_connections_per_client = 2");
    // Two connections, each served once (so each surely holds its slot), then kept alive.
    let mut held: Vec<TcpStream> = (0..2).map(|_| served(&g)).collect();
    let mut third = connect(&g);
    let t = std::time::Instant::now();
    assert!(
        closed(&mut third),
        "the third connection from one address is closed"
    );
    assert!(t.elapsed() < Duration::from_secs(2));
    // The held ones still serve; once one goes, a new connection is served.
    held[0]
        .write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(response(&mut held[0]).contains(" 200"));
    drop(held.pop());
    std::thread::sleep(Duration::from_millis(200));
    let mut s = connect(&g);
    s.write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(response(&mut s).contains(" 200"));
}

#[tokio::test]
async fn long_request_lines_and_large_heads_get_414_and_431_in_the_api_shape() {
    let (_m, g) = gateway();
    let long_path = format!("/v1/chat/completions?{}", "q".repeat(9 * 1024));
    let mut s = connect(&g);
    s.write_all(format!("GET {long_path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let r = response(&mut s);
    assert!(r.starts_with("http/1.1 414"), "{}", &r[..r.len().min(300)]);
    assert!(
        r.contains("\"uri_too_long\"") && !r.contains("qqqq"),
        "not reflected"
    );
    assert!(closed(&mut s));

    let mut s = connect(&g);
    let big = "b".repeat(40 * 1024);
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: x\r\nanthropic-version: 2023-06-01\r\nx-big: {big}\r\ncontent-length: 2\r\n\r\n{{}}"
    );
    s.write_all(head.as_bytes()).unwrap();
    let r = response(&mut s);
    assert!(r.starts_with("http/1.1 431"), "{}", &r[..r.len().min(300)]);
    // An Anthropic client gets Anthropic's error shape.
    assert!(
        r.contains("\"type\":\"error\""),
        "{}",
        &r[..r.len().min(300)]
    );
    assert!(closed(&mut s));
    // Still serving.
    let ok = send(&g, "/v1/chat/completions", None, &[], &chat("m")).await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_502_says_whether_the_upstream_was_reached() {
    // One upstream reads the request and closes without a reply; another port refuses.
    let hangs_up = common::raw_upstream(|_| String::new());
    let cfg = format!(
        "{}{}[[routes]]\nmodels = [\"lost\"]\ntargets = [{{ backend = \"lost\" }}]\n\
         [[routes]]\nmodels = [\"refused\"]\ntargets = [{{ backend = \"refused\" }}]\n",
        backend("lost", hangs_up, ""),
        backend("refused", common::dead_port(), "")
    );
    let g = Gateway::start("", &cfg);
    let message = |model: &'static str| {
        let g = &g;
        async move {
            let r = client()
                .post(g.url("/v1/chat/completions"))
                .json(&chat(model))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 502);
            let v: serde_json::Value = r.json().await.unwrap();
            v["error"]["message"].as_str().unwrap().to_string()
        }
    };
    let lost = message("lost").await;
    assert!(lost.contains("after the request was sent"), "{lost}");
    let refused = message("refused").await;
    assert!(refused.contains("could be reached"), "{refused}");
}
