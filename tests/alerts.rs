//! Budget alerts through the real binary: as a team's spend climbs past 50% and 90% of its
//! daily budget, a local webhook receives one JSON notice per threshold; the first delivery
//! fails (500) and is retried.

mod common;

use common::{client, mock, sha256_hex, Gateway};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A webhook receiver: answers 500 to the first POST and 200 after; keeps the bodies it
/// accepted and counts every POST.
async fn receiver() -> (u16, Arc<Mutex<(Vec<Value>, usize)>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new((Vec::new(), 0usize)));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            let body = loop {
                let Ok(n @ 1..) = c.read(&mut buf).await else {
                    break None;
                };
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(str::to_string)
                        })
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= len {
                        break Some(body.to_string());
                    }
                }
            };
            let Some(body) = body else { continue };
            let first = {
                let mut s = s.lock().unwrap();
                s.1 += 1;
                s.1 == 1
            };
            let status = if first {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            if !first {
                s.lock()
                    .unwrap()
                    .0
                    .push(serde_json::from_str(&body).unwrap());
            }
            let resp =
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = c.write_all(resp.as_bytes()).await;
        }
    });
    (port, seen)
}

#[tokio::test]
async fn each_threshold_is_notified_once_with_retries() {
    let (hook, seen) = receiver().await;
    let m = mock("oa", &[]);
    let cfg = format!(
        "[alerts]\nwebhook_url = \"http://127.0.0.1:{hook}/hook\"\nthresholds = [0.5, 0.9]\nretries = 2\n\
         [[keys]]\nname = \"ka\"\nsha256 = \"{}\"\nteam = \"red\"\n\
         [[backends]]\nname = \"oa\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:{}\"\n\
         [[routes]]\nmodels = [\"gpt-4o-mini\"]\ntargets = [{{ backend = \"oa\" }}]\n\
         [[prices]]\nmodel = \"gpt-4o-*\"\ninput = 1000\noutput = 2000\n\
         [[limits]]\nscope = \"team\"\ncost_per_day_usd = 0.5\n",
        sha256_hex(b"sk-a"),
        m.port
    );
    let g = Gateway::start("", &cfg);
    // About $0.02 a request: spend the budget down until it refuses.
    let mut refused = false;
    for _ in 0..60 {
        let r = client()
            .post(g.url("/v1/chat/completions"))
            .bearer_auth("sk-a")
            .json(&json!({"model": "gpt-4o-mini", "max_tokens": 5,
                "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            refused = true;
            break;
        }
        assert_eq!(r.status(), 200);
    }
    assert!(refused, "the budget never ran out");
    let deadline = Instant::now() + Duration::from_secs(15);
    while seen.lock().unwrap().0.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "notices: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (notices, posts) = seen.lock().unwrap().clone();
    // Three POSTs: the first failed and was retried.
    assert_eq!(posts, 3, "{notices:?}");
    let thresholds: Vec<f64> = notices
        .iter()
        .map(|n| n["threshold"].as_f64().unwrap())
        .collect();
    assert_eq!(thresholds, [0.5, 0.9]);
    for n in &notices {
        assert_eq!(n["type"], "budget_threshold");
        assert_eq!(
            (n["scope"].as_str(), n["id"].as_str()),
            (Some("team"), Some("red"))
        );
        assert_eq!(n["budget"], "cost_per_day_usd");
        assert_eq!(n["limit_usd"], 0.5);
        let spent = n["spent_usd"].as_f64().unwrap();
        assert!(spent >= 0.5 * n["threshold"].as_f64().unwrap(), "{n}");
        assert!(
            n["period_start"]
                .as_str()
                .unwrap()
                .ends_with("T00:00:00.000Z"),
            "{n}"
        );
    }
}
