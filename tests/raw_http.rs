//! What a typed HTTP client cannot send: hop-by-hop headers, `Expect: 100-continue`, and
//! malformed input. Raw HTTP/1.1 over a socket.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn setup() -> (Proc, Gateway) {
    let m = mock("m", &["--expect-key", "sk-up"]);
    let cfg = format!(
        "{}[[routes]]\nmodels = [\"m\"]\ntargets = [{{ backend = \"m\" }}]\n",
        backend("m", m.port, "api_key = \"sk-up\"")
    );
    (m, Gateway::start("", &cfg))
}

fn connect(g: &Gateway) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", g.proc.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads one response with a Content-Length body; returns (head, body).
fn read_response(s: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap() == 0 {
            panic!(
                "connection closed mid-head: {}",
                String::from_utf8_lossy(&buf)
            );
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (head, String::from_utf8_lossy(&body).into_owned())
}

/// A fresh connection still gets answered.
fn assert_still_serves(g: &Gateway) {
    let mut s = connect(g);
    s.write_all(b"GET /v1/models HTTP/1.1\r\nHost: gw\r\n\r\n")
        .unwrap();
    let (head, _) = read_response(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn hop_by_hop_and_client_credentials_stay_at_the_gateway() {
    let (_m, g) = setup();
    let mut s = connect(&g);
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n\
         Connection: keep-alive, X-Private-Hop\r\nX-Private-Hop: 1\r\nKeep-Alive: timeout=5\r\n\
         Proxy-Authorization: Basic Zm9vOmJhcg==\r\nTE: trailers\r\nx-api-key: sk-client\r\n\
         X-End-To-End: kept\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let (head, _) = read_response(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let seen = header(&head, "x-mock-request-headers").unwrap();
    let seen: Vec<&str> = seen.split(',').collect();
    for gone in [
        "x-private-hop",
        "keep-alive",
        "proxy-authorization",
        "te",
        "x-api-key",
        "connection",
    ] {
        assert!(
            !seen.contains(&gone),
            "{gone} reached the provider: {seen:?}"
        );
    }
    assert!(seen.contains(&"x-end-to-end"), "{seen:?}");
    // The connection stays usable for the next request.
    write!(s, "GET /v1/models HTTP/1.1\r\nHost: gw\r\n\r\n").unwrap();
    let (head, body) = read_response(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.contains("\"id\":\"m\""), "{body}");
}

#[test]
fn expect_100_continue_is_answered() {
    let (_m, g) = setup();
    let mut s = connect(&g);
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(body.as_bytes()).unwrap();
    let (head, _) = read_response(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let seen = header(&head, "x-mock-request-headers").unwrap();
    assert!(!seen.split(',').any(|h| h == "expect"));
}

#[test]
fn malformed_input_never_takes_the_gateway_down() {
    let (_m, g) = setup();
    let garbage: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02\x03\r\n\r\n".to_vec(),
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: abc\r\n\r\n".to_vec(),
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 5\r\n\r\n{\"mo".to_vec(),
        b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(70_000)).into_bytes(),
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 9\r\n\r\n\xff\xfe{\"\"}\xc3(".to_vec(),
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 30\r\n\r\n{\"model\":\"m\",\"model\":[1,2]}  ".to_vec(),
    ];
    for g_bytes in &garbage {
        let mut s = connect(&g);
        let _ = s.write_all(g_bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        // Either an HTTP error or a closed connection; never a hang (read timeout) or a crash.
        assert!(out.is_empty() || text.starts_with("HTTP/1.1 4"), "{text}");
    }
    assert_still_serves(&g);
}

/// A head that cannot be parsed gets a 400 and `CONNECT` (no tunnels here) a 405, each on a
/// connection then closed; the gateway reads its requests' heads itself (`gateway/app.rs`).
#[test]
fn an_unparsable_head_is_a_400_and_connect_a_405() {
    let (_m, g) = setup();
    for (raw, status) in [
        (
            &b"GET /v1/models HTTP/1.1\r\nno colon here\r\n\r\n"[..],
            "400",
        ),
        (
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            "405",
        ),
    ] {
        let mut s = connect(&g);
        s.write_all(raw).unwrap();
        let (head, _) = read_response(&mut s);
        assert!(head.starts_with(&format!("HTTP/1.1 {status}")), "{head}");
        let mut rest = Vec::new();
        assert_eq!(
            s.read_to_end(&mut rest).unwrap(),
            0,
            "the connection is closed"
        );
    }
    assert_still_serves(&g);
}

#[test]
fn client_leaving_mid_stream_is_logged_and_harmless() {
    let (_m, g) = setup();
    let mut s = connect(&g);
    let body = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nx-request-id: leaver-1\r\n\
         x-mock-chunk-delay-ms: 100\r\nx-mock-words: 50\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut first = [0u8; 64];
    assert!(s.read(&mut first).unwrap() > 0);
    drop(s);
    let line = g.proc.wait_line("leaver-1");
    assert!(line.contains("\"error\":\"client_disconnected\""), "{line}");
    assert_still_serves(&g);
}

#[test]
fn oversized_upload_with_expect_continue_gets_413_without_sending() {
    let m = mock("m", &[]);
    let cfg = format!(
        "{}[[routes]]\nmodels = [\"m\"]\ntargets = [{{ backend = \"m\" }}]\n",
        backend("m", m.port, "")
    );
    let g = Gateway::start("max_body_bytes = 1000", &cfg);
    let mut s = connect(&g);
    s.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 5000000\r\n\r\n",
    )
    .unwrap();
    let (head, body) = read_response(&mut s);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(body.contains("request_too_large"));
}

/// Per request: the bytes its first read returned, and the whole request's length.
type Reads = std::sync::Arc<std::sync::Mutex<Vec<(usize, usize)>>>;

/// A raw upstream that answers every request with one chat completion and records [`Reads`];
/// `once`: it answers one request a connection and closes on the next one unanswered, as a
/// server whose idle timeout ran out just as the connection was reused.
fn recording_upstream(once: bool) -> (u16, Reads) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Reads::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let (mut s, record) = (conn.unwrap(), record.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                let mut answered = false;
                // Blocked in `read` before the request comes: the first read returns what the
                // first segment carried.
                while let Ok(first) = s.read(&mut buf) {
                    if first == 0 || (once && answered) {
                        return;
                    }
                    answered = true;
                    let mut got = first;
                    let total = loop {
                        let head = String::from_utf8_lossy(&buf[..got]).to_ascii_lowercase();
                        if let Some(end) = head.find("\r\n\r\n") {
                            let len: usize = head[..end]
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .map_or(0, |v| v.trim().parse().unwrap());
                            if got >= end + 4 + len {
                                break end + 4 + len;
                            }
                        }
                        got += s.read(&mut buf[got..]).unwrap();
                    };
                    record.lock().unwrap().push((first, total));
                    let body = r#"{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    s.write_all(reply.as_bytes()).unwrap();
                }
            });
        }
    });
    (port, seen)
}

/// A gateway routing model `m` to the raw upstream on `port`.
fn gateway_to(port: u16) -> Gateway {
    let cfg = format!(
        "{}[[routes]]\nmodels = [\"m\"]\ntargets = [{{ backend = \"m\" }}]\n",
        backend("m", port, "api_key = \"sk-up\"")
    );
    Gateway::start("", &cfg)
}

/// A chat request with `content` on a fresh connection, answered 200.
fn chat_ok(g: &Gateway, content: &str) {
    let body = format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{content}"}}]}}"#);
    let mut s = connect(g);
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let (head, reply) = read_response(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}{reply}");
}

/// The request goes upstream in one piece: header and body in one write (`net/send.rs`), so
/// the upstream is woken once with all of it (with Pingora's own writing, which flushes the
/// header and then the body, a reader waiting in `read` gets the header alone: a segment and a
/// wake-up more a request, on new and pooled connections alike).
#[test]
fn a_request_reaches_the_upstream_in_one_piece() {
    let (port, seen) = recording_upstream(false);
    let g = gateway_to(port);
    for i in 0..20 {
        chat_ok(&g, &"x".repeat(100 * i));
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 20);
    for &(first, total) in seen.iter() {
        assert_eq!(first, total, "the first read held {first} of {total} bytes");
    }
}

/// Pooled connections the upstream closes as they are reused are passed over, down to a fresh
/// one: every request is answered, none twice (with one retry, the second dead connection in
/// a row was a 502).
#[test]
fn dead_pooled_connections_are_passed_over_for_a_fresh_one() {
    let (port, seen) = recording_upstream(true);
    let g = gateway_to(port);
    // Three at once: up to three connections, each pooled once answered, each then closed by
    // the upstream on its next request.
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| chat_ok(&g, "hi"));
        }
    });
    for _ in 0..3 {
        // Time for the last answer's connection to go back to the pool (its release follows
        // the reply): each request then meets dead pooled connections first.
        std::thread::sleep(Duration::from_millis(100));
        chat_ok(&g, "again");
    }
    assert_eq!(seen.lock().unwrap().len(), 6);
}
