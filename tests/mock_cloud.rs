//! `tollgate mock`'s Bedrock part on its own: SigV4 checked as AWS does (403 in Bedrock's
//! shape) and ConverseStream frames with valid CRCs. Vertex's part is in `mock_vertex.rs`.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::SystemTime;
use tollgate::formats::framing::eventstream::FrameDecoder;

const CONVERSE: &str = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse";

fn converse() -> Value {
    json!({"messages": [{"role": "user", "content": [{"text": "Hi"}]}],
           "inferenceConfig": {"maxTokens": 5}})
}

/// A request signed by the gateway's own Bedrock signer would be circular; this test signs
/// with `aws-sigv4` directly, as any AWS client does.
fn signed(url: &str, body: &[u8], secret: &str, token: Option<&str>) -> reqwest::RequestBuilder {
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    use aws_smithy_runtime_api::client::identity::Identity;
    let id: Identity =
        Credentials::new("AKIDMOCK", secret, token.map(str::to_string), None, "t").into();
    let params = v4::SigningParams::builder()
        .identity(&id)
        .region("us-east-1")
        .name("bedrock")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let host = url.trim_start_matches("http://").split('/').next().unwrap();
    let headers = [("host", host), ("content-type", "application/json")];
    let req =
        SignableRequest::new("POST", url, headers.into_iter(), SignableBody::Bytes(body)).unwrap();
    let (instructions, _) = sign(req, &params).unwrap().into_parts();
    let mut r = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in instructions.headers() {
        r = r.header(k, v);
    }
    r
}

fn bedrock_mock() -> Proc {
    mock(
        "bedrock",
        &[
            "--aws-access-key-id",
            "AKIDMOCK",
            "--aws-secret-access-key",
            "mock-secret",
        ],
    )
}

#[tokio::test]
async fn bedrock_checks_signatures_as_aws_does() {
    let m = bedrock_mock();
    let url = format!("{}{CONVERSE}", m.url());
    let body = serde_json::to_vec(&converse()).unwrap();
    let ok = signed(&url, &body, "mock-secret", Some("tok"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["x-mock-model"],
        "anthropic.claude-3-haiku-20240307-v1:0"
    );
    let v: Value = ok.json().await.unwrap();
    assert_eq!(v["stopReason"], "max_tokens");
    assert_eq!(v["usage"]["outputTokens"], 5);

    let bad = signed(&url, &body, "wrong", None).send().await.unwrap();
    assert_eq!(bad.status(), 403);
    let kind = bad.headers()["x-amzn-errortype"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(kind.starts_with("InvalidSignatureException:"), "{kind}");
    let v: Value = bad.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("signature"));

    // The body is part of the signature: a changed body fails.
    let r = signed(&url, &body, "mock-secret", None)
        .body(b"{\"messages\":[]}".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client().post(&url).json(&converse()).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn bedrock_streams_crc_checked_frames_and_exceptions() {
    let m = bedrock_mock();
    let url = format!(
        "{}{}",
        m.url(),
        CONVERSE.replace("converse", "converse-stream")
    );
    let body = serde_json::to_vec(&converse()).unwrap();
    let r = signed(&url, &body, "mock-secret", None)
        .header("x-mock-stream-error-after", "3")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let bytes = r.bytes().await.unwrap();
    let mut kinds = Vec::new();
    FrameDecoder::default()
        .push(&bytes, |f| {
            kinds.push(format!("{}:{}", f.message_type, f.kind));
            Ok(())
        })
        .unwrap();
    assert_eq!(
        kinds,
        [
            "event:messageStart",
            "event:contentBlockDelta",
            "event:contentBlockDelta",
            "exception:throttlingException"
        ]
    );
}

#[tokio::test]
async fn bedrock_tool_results_before_a_cache_point_are_answered_with_text() {
    let m = bedrock_mock();
    let url = format!("{}{CONVERSE}", m.url());
    let spec = json!({"toolSpec": {"name": "find", "inputSchema": {"json":
        {"type": "object", "properties": {"q": {"type": "string"}}}}}});
    let mut body = json!({"toolConfig": {"tools": [spec]},
        "messages": [{"role": "user", "content": [{"text": "Find it"}]}]});
    let ask = |body: &Value| {
        signed(
            &url,
            &serde_json::to_vec(body).unwrap(),
            "mock-secret",
            None,
        )
    };
    let v: Value = ask(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["stopReason"], "tool_use", "{v}");
    let content = v["output"]["message"]["content"].clone();
    let msgs = body["messages"].as_array_mut().unwrap();
    msgs.push(json!({"role": "assistant", "content": content}));
    // As Claude Code sends it through a Bedrock route: the results, then a cache point.
    msgs.push(json!({"role": "user", "content": [
        {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "found"}]}},
        {"cachePoint": {"type": "default"}}]}));
    let v: Value = ask(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["stopReason"], "end_turn", "{v}");
}
