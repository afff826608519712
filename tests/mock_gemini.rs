//! `tollgate mock`'s Gemini API on its own: AI Studio and Vertex AI paths, Google's auth
//! answers and error shape, CRLF-framed SSE that Tollgate's own decoder reads, embeddings.

mod common;

use common::*;
use serde_json::{json, Value};
use tollgate::error::ErrorKind;
use tollgate::formats::framing::sse::SseDecoder;
use tollgate::formats::gemini::{embeddings, error, response, stream::ChunkDecoder};
use tollgate::formats::openai::embeddings::EmbeddingRequest;
use tollgate::formats::{Delta, FinishReason, MaxTokensField, ReplyContext, RequestOptions};

const KEY: &str = "gm-key";
const STUDIO: &str = "/v1beta/models/gemini-2.5-flash";
const VERTEX: &str =
    "/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-2.5-flash";

fn hello() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]})
}

const AUTH: [(&str, &str); 1] = [("x-goog-api-key", KEY)];

/// Decodes an SSE body with Tollgate's decoders: (text, reasoning, tool names, finish, usage
/// seen, done, error).
fn decode(
    body: &[u8],
) -> (
    String,
    String,
    Vec<String>,
    Option<FinishReason>,
    bool,
    bool,
    bool,
) {
    let mut sse = SseDecoder::default();
    let mut dec = ChunkDecoder::default();
    let (mut text, mut reasoning, mut tools) = (String::new(), String::new(), vec![]);
    let (mut finish, mut usage, mut done, mut err) = (None, false, false, false);
    let mut on = |d: Delta<'_>| match d {
        Delta::Text(t) => text.push_str(&t.decode()),
        Delta::Reasoning(t) => reasoning.push_str(&t.decode()),
        Delta::ToolCall { name, .. } => tools.push(name.decode().into_owned()),
        Delta::Finish(f) => finish = Some(f),
        Delta::Usage(_) => usage = true,
        Delta::Done => done = true,
        Delta::Error(_) => err = true,
        _ => {}
    };
    sse.push(body, |ev| dec.event(ev.data, &mut on)).unwrap();
    dec.end(&mut on);
    (text, reasoning, tools, finish, usage, done, err)
}

#[tokio::test]
async fn generate_content_has_googles_shape() {
    let m = mock("g", &["--expect-key", KEY]);
    let r = post_json(&m, &format!("{STUDIO}:generateContent"), &AUTH, &hello()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-mock-model"], "gemini-2.5-flash");
    let text = r.text().await.unwrap();
    assert!(
        text.starts_with("{\n  \"candidates\""),
        "pretty-printed: {text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    let c = &v["candidates"][0];
    assert_eq!(c["content"]["role"], "model");
    assert_eq!(c["finishReason"], "STOP");
    assert!(c["content"]["parts"][0]["text"].as_str().unwrap().len() > 10);
    let u = &v["usageMetadata"];
    assert_eq!(u["candidatesTokenCount"], 16);
    let sum = u["promptTokenCount"].as_u64().unwrap() + 16;
    assert_eq!(u["totalTokenCount"], sum);
    assert!(u.get("cachedContentTokenCount").is_none() && u.get("thoughtsTokenCount").is_none());
    assert_eq!(v["modelVersion"], "gemini-2.5-flash");
    assert!(v["responseId"].as_str().is_some_and(|s| s.len() >= 20));
    // The legacy `?key=` works too.
    let path = format!("{STUDIO}:generateContent?key={KEY}");
    assert_eq!(post_json(&m, &path, &[], &hello()).await.status(), 200);
}

#[tokio::test]
async fn keys_and_bodies_are_checked_as_google_does() {
    let m = mock("g", &["--expect-key", KEY]);
    let path = format!("{STUDIO}:generateContent");
    let r = post_json(&m, &path, &[("x-goog-api-key", "nope")], &hello()).await;
    assert_eq!(r.status(), 400);
    let body = r.bytes().await.unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(v["error"]["details"][0]["reason"], "API_KEY_INVALID");
    assert_eq!(error::parse(400, &body).kind, ErrorKind::Authentication);
    let r = post_json(&m, &path, &[], &hello()).await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["status"], "PERMISSION_DENIED");
    for bad in [
        json!({"messages": [{"role": "user", "content": "hi"}]}),
        json!({"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]}),
        json!({"contents": [{"role": "user", "parts": []}]}),
    ] {
        let r = post_json(&m, &path, &AUTH, &bad).await;
        assert_eq!(r.status(), 400, "{bad}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], 400);
        assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    }
    let faults = [("x-goog-api-key", KEY), ("x-mock-status", "429")];
    let r = post_json(&m, &path, &faults, &hello()).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let e = error::parse(429, &r.bytes().await.unwrap());
    assert_eq!(e.kind, ErrorKind::RateLimit);
}

#[tokio::test]
async fn sse_stream_uses_crlf_and_decodes() {
    let m = mock("g", &[]);
    let whole = post_json(&m, &format!("{STUDIO}:generateContent"), &[], &hello()).await;
    let whole: Value = whole.json().await.unwrap();
    let path = format!("{STUDIO}:streamGenerateContent?alt=sse");
    let r = post_json(&m, &path, &[], &hello()).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let body = r.bytes().await.unwrap();
    let s = std::str::from_utf8(&body).unwrap();
    assert!(s.starts_with("data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": "));
    assert!(s.ends_with("\r\n\r\n") && !s.contains("[DONE]"));
    assert_eq!(s.matches("\r\n\r\n").count(), 16, "a chunk per word");
    assert_eq!(s.matches("finishReason").count(), 1);
    let (text, _, tools, finish, usage, done, err) = decode(&body);
    assert_eq!(text, whole["candidates"][0]["content"]["parts"][0]["text"]);
    assert!(tools.is_empty() && usage && done && !err);
    assert_eq!(finish, Some(FinishReason::Stop));
    // Without alt=sse: one JSON array, streamed.
    let path = format!("{STUDIO}:streamGenerateContent");
    let v: Value = post_json(&m, &path, &[], &hello())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(16));
    // A stream error after two chunks: Google's error event, which the decoder reports.
    let r = post_json(
        &m,
        &format!("{STUDIO}:streamGenerateContent?alt=sse"),
        &[("x-mock-stream-error-after", "2")],
        &hello(),
    )
    .await;
    let body = r.bytes().await.unwrap();
    let (_, _, _, finish, _, done, err) = decode(&body);
    assert!(err && !done && finish.is_none());
}

#[tokio::test]
async fn tools_thoughts_and_cache_translate_back() {
    let m = mock("g", &[]);
    let chat = json!({"model": "g", "reasoning_effort": "low", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]});
    let opts = RequestOptions {
        model: "gemini-2.5-flash",
        default_max_tokens: 4096,
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
        cache_points: false,
        fields: tollgate::formats::fields::FieldPolicy::DEFAULT,
    };
    let t = tollgate::formats::translate_request(
        tollgate::formats::Format::OpenAi,
        tollgate::formats::Format::Gemini,
        &serde_json::to_vec(&chat).unwrap(),
        &opts,
    )
    .unwrap();
    let body: Value = serde_json::from_slice(&t.body).unwrap();
    let cached = [("x-mock-cached-tokens", "5")];
    let r = post_json(&m, &format!("{STUDIO}:generateContent"), &cached, &body).await;
    assert_eq!(r.status(), 200);
    let raw = r.bytes().await.unwrap();
    let v: Value = serde_json::from_slice(&raw).unwrap();
    let parts = &v["candidates"][0]["content"]["parts"];
    assert_eq!(parts[0]["thought"], true);
    assert_eq!(parts[1]["functionCall"]["name"], "get_weather");
    assert!(parts[1]["thoughtSignature"].is_string());
    assert_eq!(v["usageMetadata"]["cachedContentTokenCount"], 5);
    let ctx = ReplyContext {
        client_model: "g",
        created: 1,
        tool_names: None,
    };
    let (out, usage) = response::to_chat(&raw, &ctx).unwrap();
    let out: Value = serde_json::from_slice(&out).unwrap();
    let choice = &out["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["reasoning_content"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    let id = choice["message"]["tool_calls"][0]["id"].as_str().unwrap();
    assert!(id.contains("__thought__"), "{id}");
    assert_eq!((usage.cached_input, usage.reasoning), (5, 24));
    // The next turn carries the signature back, and the mock answers in text.
    let next = json!({"model": "g", "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tool_calls": [{"id": id, "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": id, "content": "18C"}],
        "tools": chat["tools"], "stream": true});
    let t = tollgate::formats::translate_request(
        tollgate::formats::Format::OpenAi,
        tollgate::formats::Format::Gemini,
        &serde_json::to_vec(&next).unwrap(),
        &opts,
    )
    .unwrap();
    let body: Value = serde_json::from_slice(&t.body).unwrap();
    assert_eq!(
        body["contents"][1]["parts"][0]["thoughtSignature"],
        parts[1]["thoughtSignature"]
    );
    let path = format!("{STUDIO}:streamGenerateContent?alt=sse");
    let r = post_json(&m, &path, &[], &body).await;
    let (text, _, tools, finish, _, done, _) = decode(&r.bytes().await.unwrap());
    assert!(!text.is_empty() && tools.is_empty() && done);
    assert_eq!(finish, Some(FinishReason::Stop));
}

#[tokio::test]
async fn golden_requests_are_accepted() {
    let m = mock("g", &[]);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for case in std::fs::read_dir(&dir).unwrap() {
        let p = case.unwrap().path().join("gemini.request.expected.json");
        let body: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let r = post_json(&m, &format!("{STUDIO}:generateContent"), &[], &body).await;
        assert_eq!(
            r.status(),
            200,
            "{}: {}",
            p.display(),
            r.text().await.unwrap()
        );
    }
}

#[tokio::test]
async fn vertex_paths_take_a_bearer_token() {
    let m = mock("v", &["--expect-key", KEY]);
    let path = format!("{VERTEX}:generateContent");
    let r = post_json(&m, &path, &AUTH, &hello()).await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["status"], "UNAUTHENTICATED");
    let bearer = [("authorization", "Bearer ya29.token")];
    let r = post_json(&m, &path, &bearer, &hello()).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["usageMetadata"]["trafficType"], "ON_DEMAND");
    assert!(v["createTime"].is_string());
    let path = path.replace("/v1/", "/v1beta1/");
    assert_eq!(post_json(&m, &path, &bearer, &hello()).await.status(), 200);
}

#[tokio::test]
async fn embeddings_both_ways() {
    let m = mock("e", &["--expect-key", KEY]);
    let req = EmbeddingRequest {
        inputs: vec!["hello".into(), "a longer piece of text".into()],
        base64: false,
        dimensions: Some(4),
        dropped: vec![],
    };
    let body = embeddings::request(&req, "gemini-embedding-001", false).unwrap();
    let path = "/v1beta/models/gemini-embedding-001:batchEmbedContents";
    let body: Value = serde_json::from_slice(&body).unwrap();
    let r = post_json(&m, path, &AUTH, &body).await;
    assert_eq!(r.status(), 200);
    let (vectors, tokens) = embeddings::response(&r.bytes().await.unwrap(), false).unwrap();
    assert_eq!((vectors.len(), vectors[0].len(), tokens), (2, 4, None));
    let body = embeddings::request(&req, "text-embedding-005", true).unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    let path = "/v1/projects/p/locations/l/publishers/google/models/text-embedding-005:predict";
    let r = post_json(&m, path, &[("authorization", "Bearer t")], &body).await;
    assert_eq!(r.status(), 200);
    let (v2, tokens) = embeddings::response(&r.bytes().await.unwrap(), true).unwrap();
    assert_eq!((v2.len(), v2[1].len()), (2, 4));
    assert!(tokens.is_some_and(|t| t > 0));
    // The same text embeds the same on both APIs.
    assert_eq!(vectors, v2);
}

#[tokio::test]
async fn function_responses_with_text_after_them_are_answered_with_text() {
    let m = mock("g", &["--expect-key", KEY]);
    let path = format!("{STUDIO}:generateContent");
    let decl = json!({"name": "find", "parametersJsonSchema": {"type": "object",
        "properties": {"kind": {"type": "string", "enum": ["a", "b"]}}, "required": ["kind"]}});
    let mut body = json!({"tools": [{"functionDeclarations": [decl]}],
        "contents": [{"role": "user", "parts": [{"text": "Find it"}]}]});
    let v: Value = post_json(&m, &path, &AUTH, &body)
        .await
        .json()
        .await
        .unwrap();
    let call = &v["candidates"][0]["content"]["parts"][0]["functionCall"];
    assert!(
        ["a", "b"].contains(&call["args"]["kind"].as_str().unwrap()),
        "{v}"
    );
    let contents = body["contents"].as_array_mut().unwrap();
    contents.push(json!({"role": "model", "parts": [{"functionCall": call}]}));
    contents.push(json!({"role": "user", "parts": [
        {"functionResponse": {"name": "find", "response": {"result": "found"}}},
        {"text": "<system-reminder>keep going</system-reminder>"}]}));
    let v: Value = post_json(&m, &path, &AUTH, &body)
        .await
        .json()
        .await
        .unwrap();
    let parts = v["candidates"][0]["content"]["parts"].as_array().unwrap();
    assert!(parts.iter().all(|p| p.get("functionCall").is_none()), "{v}");
}
