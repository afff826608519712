//! Responses state on translated routes (Anthropic, Bedrock) through the real binary: a reply
//! is kept for its key; `previous_response_id` and `item_reference` send the earlier turn
//! upstream (read back from the mock's `last_body`); `GET`, `input_items` and `DELETE` are
//! answered from the store; another key, `store: false` and unknown ids get OpenAI's errors;
//! a streamed reply is kept too.

mod common;

use common::{client, get_json, mock, send_json, sha256_hex, Gateway, Proc};
use serde_json::{json, Value};

const A: &str = "sk-alice";
const B: &str = "sk-bob";

fn gateway(m: &Proc) -> Gateway {
    let p = m.port;
    let cfg = format!(
        "[[keys]]\nname = \"alice\"\nsha256 = \"{a}\"\n\
         [[keys]]\nname = \"bob\"\nsha256 = \"{b}\"\n\
         [[backends]]\nname = \"an\"\nprovider = \"anthropic\"\nurl = \"http://127.0.0.1:{p}\"\napi_key = \"k\"\n\
         [[backends]]\nname = \"bd\"\nprovider = \"bedrock\"\nurl = \"http://127.0.0.1:{p}\"\nregion = \"us-east-1\"\n\
         aws_access_key_id = \"AKID\"\naws_secret_access_key = \"secret\"\n\
         [[routes]]\nmodels = [\"m-anthropic\"]\ntargets = [{{ backend = \"an\", model = \"claude-sonnet-4-5\" }}]\n\
         [[routes]]\nmodels = [\"m-shared\"]\ntargets = [{{ backend = \"an\", model = \"claude-sonnet-4-5\" }}]\n\
         cache = {{ ttl_seconds = 600, scope = \"global\" }}\n\
         [[routes]]\nmodels = [\"m-bedrock\"]\ntargets = [{{ backend = \"bd\", model = \"anthropic.claude-3-haiku-20240307-v1:0\" }}]\n",
        a = sha256_hex(A.as_bytes()),
        b = sha256_hex(B.as_bytes()),
    );
    Gateway::start("", &cfg)
}

fn the_mock() -> Proc {
    let aws = [
        "--aws-access-key-id",
        "AKID",
        "--aws-secret-access-key",
        "secret",
    ];
    mock("state", &aws)
}

async fn post(g: &Gateway, key: &str, body: &Value) -> (u16, Value) {
    send_json(g, "/v1/responses", Some(key), &[], body).await
}

async fn call(g: &Gateway, method: reqwest::Method, key: &str, path: &str) -> (u16, Value) {
    let r = client()
        .request(method, g.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn last_body(m: &Proc) -> String {
    let stats = get_json(format!("{}/mock/stats", m.url()), None).await;
    stats["last_body"].as_str().unwrap_or_default().to_string()
}

fn weather(model: &str, city: &str) -> Value {
    json!({
        "model": model,
        "input": format!("What is the weather in {city}?"),
        "tools": [{"type": "function", "name": "get_weather",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
    })
}

fn call_item(v: &Value) -> Value {
    let out = v["output"].as_array().unwrap();
    let call = out.iter().find(|i| i["type"] == "function_call");
    call.unwrap_or_else(|| panic!("no call in {v}")).clone()
}

#[tokio::test]
async fn kept_replies_carry_turns_on_anthropic_and_bedrock() {
    let m = the_mock();
    let g = gateway(&m);
    for model in ["m-anthropic", "m-bedrock"] {
        let (s, first) = post(&g, A, &weather(model, &format!("Paris {model}"))).await;
        assert_eq!(s, 200, "{first}");
        let id = first["id"].as_str().unwrap().to_string();
        let fc = call_item(&first);
        // Read back by its key only.
        let (s, got) = call(&g, reqwest::Method::GET, A, &format!("/v1/responses/{id}")).await;
        assert_eq!((s, &got), (200, &first));
        let (s, e) = call(&g, reqwest::Method::GET, B, &format!("/v1/responses/{id}")).await;
        assert_eq!(s, 404, "{e}");
        assert_eq!(
            e["error"]["message"],
            format!("Response with id '{id}' not found.")
        );
        let path = format!("/v1/responses/{id}/input_items");
        let (s, items) = call(&g, reqwest::Method::GET, A, &path).await;
        assert_eq!(s, 200, "{items}");
        assert_eq!(items["object"], "list");
        let text = &items["data"][0]["content"][0]["text"];
        assert_eq!(text, &format!("What is the weather in Paris {model}?"));
        assert_eq!(items["first_id"], items["data"][0]["id"]);

        // The next turn: the earlier one is sent upstream before the tool's output.
        let next = json!({"model": model, "previous_response_id": id, "input": [
            {"type": "function_call_output", "call_id": fc["call_id"], "output": "sunny-42"}]});
        let (s, second) = post(&g, A, &next).await;
        assert_eq!(s, 200, "{second}");
        let sent = last_body(&m).await;
        assert!(sent.contains(&format!("Paris {model}")), "{sent}");
        assert!(
            sent.contains("sunny-42") && sent.contains("get_weather"),
            "{sent}"
        );
        assert_eq!(second["output"][0]["type"], "message", "{second}");
        // Another key cannot continue it.
        let (s, e) = post(&g, B, &next).await;
        assert_eq!(s, 400, "{e}");
        assert_eq!(e["error"]["code"], "previous_response_not_found");
        assert_eq!(e["error"]["param"], "previous_response_id");

        // An item of the earlier reply by reference.
        let by_ref = json!({"model": model, "input": [
            {"role": "user", "content": "Weather in Rome?"},
            {"type": "item_reference", "id": fc["id"]},
            {"type": "function_call_output", "call_id": fc["call_id"], "output": "rainy-7"}]});
        let (s, third) = post(&g, A, &by_ref).await;
        assert_eq!(s, 200, "{third}");
        let sent = last_body(&m).await;
        let call_id = fc["call_id"].as_str().unwrap();
        assert!(sent.contains(call_id) && sent.contains("rainy-7"), "{sent}");
        let (s, e) = post(&g, B, &by_ref).await;
        assert_eq!(s, 404, "{e}");
        assert!(e["error"]["message"]
            .as_str()
            .unwrap()
            .contains(fc["id"].as_str().unwrap()));

        // Cancel is for background responses; delete removes it.
        let cancel = format!("/v1/responses/{id}/cancel");
        let (s, _) = call(&g, reqwest::Method::POST, A, &cancel).await;
        assert_eq!(s, 400);
        let (s, _) = call(
            &g,
            reqwest::Method::DELETE,
            B,
            &format!("/v1/responses/{id}"),
        )
        .await;
        assert_eq!(s, 404);
        let (s, d) = call(
            &g,
            reqwest::Method::DELETE,
            A,
            &format!("/v1/responses/{id}"),
        )
        .await;
        assert_eq!(
            (s, d),
            (
                200,
                json!({"id": id, "object": "response", "deleted": true})
            )
        );
        let (s, _) = call(&g, reqwest::Method::GET, A, &format!("/v1/responses/{id}")).await;
        assert_eq!(s, 404);
    }
}

/// The mock answers one body with one message id, as OpenAI-compatible servers may repeat
/// ids (Ollama's): the same turn from two keys is two Responses, each read and continued.
#[tokio::test]
async fn the_same_turn_from_two_keys_is_kept_twice() {
    let m = the_mock();
    let g = gateway(&m);
    let turn = json!({"model": "m-anthropic", "input": "Hello there"});
    let (s, a) = post(&g, A, &turn).await;
    assert_eq!(s, 200, "{a}");
    let (s, b) = post(&g, B, &turn).await;
    assert_eq!(s, 200, "{b}");
    assert_ne!(a["id"], b["id"]);
    assert_ne!(a["output"][0]["id"], b["output"][0]["id"]);
    for (key, first) in [(A, &a), (B, &b)] {
        let id = first["id"].as_str().unwrap();
        let (s, got) = call(
            &g,
            reqwest::Method::GET,
            key,
            &format!("/v1/responses/{id}"),
        )
        .await;
        assert_eq!((s, &got), (200, first));
        let next = json!({"model": "m-anthropic", "previous_response_id": id, "input": "Again"});
        let (s, second) = post(&g, key, &next).await;
        assert_eq!(s, 200, "{second}");
        assert!(last_body(&m).await.contains("Hello there"));
    }
}

/// A cache shared by every key answers the second key from the first one's reply: that hit
/// is kept under ids of its own (items included), so each key still finds its own items.
#[tokio::test]
async fn a_shared_cache_hit_is_kept_under_ids_of_its_own() {
    let m = the_mock();
    let g = gateway(&m);
    let requests = || async {
        let stats = get_json(format!("{}/mock/stats", m.url()), None).await;
        stats["requests"].as_u64().unwrap_or_default()
    };
    let turn = weather("m-shared", "Oslo");
    let (s, a) = post(&g, A, &turn).await;
    assert_eq!(s, 200, "{a}");
    let before = requests().await;
    let (s, b) = post(&g, B, &turn).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(requests().await, before, "the second key's turn is a hit");
    let (fa, fb) = (call_item(&a), call_item(&b));
    assert_eq!(fa["call_id"], fb["call_id"]);
    assert_ne!(a["id"], b["id"]);
    assert_ne!(fa["id"], fb["id"]);
    for (key, fc) in [(A, &fa), (B, &fb)] {
        let by_ref = json!({"model": "m-shared", "input": [
            {"role": "user", "content": "And in Bergen?"},
            {"type": "item_reference", "id": fc["id"]},
            {"type": "function_call_output", "call_id": fc["call_id"], "output": "cold"}]});
        let (s, r) = post(&g, key, &by_ref).await;
        assert_eq!(s, 200, "{r}");
    }
}

#[tokio::test]
async fn store_false_keeps_nothing_and_streams_are_kept() {
    let m = the_mock();
    let g = gateway(&m);
    for model in ["m-anthropic", "m-bedrock"] {
        let mut body = weather(model, &format!("Oslo {model}"));
        body["store"] = false.into();
        let (s, v) = post(&g, A, &body).await;
        assert_eq!(s, 200, "{v}");
        let path = format!("/v1/responses/{}", v["id"].as_str().unwrap());
        assert_eq!(call(&g, reqwest::Method::GET, A, &path).await.0, 404);

        let mut body = weather(model, &format!("Lima {model}"));
        body["stream"] = true.into();
        let r = client()
            .post(g.url("/v1/responses"))
            .bearer_auth(A)
            .json(&body)
            .send()
            .await
            .unwrap();
        let text = r.text().await.unwrap();
        let done = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .find(|e| e["type"] == "response.completed")
            .unwrap_or_else(|| panic!("{text}"));
        let response = &done["response"];
        let path = format!("/v1/responses/{}", response["id"].as_str().unwrap());
        let (s, got) = call(&g, reqwest::Method::GET, A, &path).await;
        assert_eq!((s, &got), (200, response));
        // Continued by id: the streamed turn went upstream.
        let fc = call_item(response);
        let next = json!({"model": model, "previous_response_id": response["id"], "input": [
            {"type": "function_call_output", "call_id": fc["call_id"], "output": "cold-3"}]});
        let (s, v) = post(&g, A, &next).await;
        assert_eq!(s, 200, "{v}");
        assert!(last_body(&m).await.contains(&format!("Lima {model}")));
    }
    // What the kept responses hold is on the admin's metrics (scraped, not counted per request).
    let metrics = client().get(g.admin("/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    let held: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("tollgate_responses_kept_bytes "))
        .unwrap_or_else(|| panic!("no kept bytes in\n{text}"))
        .parse()
        .unwrap();
    // Two streamed replies and two continuations, each of some hundreds of bytes.
    assert!((1000..1_000_000).contains(&held), "{held}");
    // Unknown to the store and no route named: OpenAI's 404.
    let (s, e) = call(&g, reqwest::Method::GET, A, "/v1/responses/resp_nope").await;
    assert_eq!(s, 404);
    assert_eq!(
        e["error"]["message"],
        "Response with id 'resp_nope' not found."
    );
}
