use super::*;
use serde_json::json;
use std::time::Instant;

fn stored(id: &str, owner: Option<&str>) -> StoredResponse {
    let response = json!({"id": id, "output": [{"id": "msg_1", "type": "message"}]});
    let input = json!([{"id": "in_1", "type": "message", "role": "user"}]);
    StoredResponse::new(crate::store::responses::Parts {
        id,
        owner,
        model: "m",
        response: &response.to_string(),
        input: &input.to_string(),
        instructions: Some("be brief"),
        item_ids: None,
    })
}

#[test]
fn keys_are_namespaced_by_owner() {
    assert_eq!(
        response_key(Some("alice"), "resp_1"),
        "tollgate:response:5.alice:resp_1"
    );
    assert_eq!(response_key(None, "resp_1"), "tollgate:response:-:resp_1");
    assert_eq!(
        item_key(Some("alice"), "msg_1"),
        "tollgate:response-item:5.alice:msg_1"
    );
    assert_eq!(
        response_key(Some("alice"), "r"),
        format!("{}r", response_prefix(Some("alice")))
    );
    // No owner and id spell another pair's key, nor the open gateway's.
    assert_ne!(
        response_key(Some("a"), "x:r"),
        response_key(Some("a:x"), "r")
    );
    assert_ne!(response_key(Some("-"), "r"), response_key(None, "r"));
    assert_ne!(item_key(Some("a"), "x:i"), item_key(Some("a:x"), "i"));
    // Counter keys are `tollgate:{scope}:…`; no scope is named `response`.
    assert!(!RESPONSE.starts_with("tollgate:key:"));
}

#[test]
fn a_value_decodes_for_its_owner_only() {
    let json = serde_json::to_string(&stored("resp_1", Some("alice"))).unwrap();
    let r = decode(Some("alice"), &json).unwrap().unwrap();
    assert_eq!((r.id(), r.model()), ("resp_1", "m"));
    assert_eq!(r.instructions(), Some("be brief"));
    assert_eq!(r.item_ids().collect::<Vec<_>>(), ["in_1", "msg_1"]);
    assert!(decode(Some("bob"), &json).unwrap().is_none());
    assert!(decode(None, &json).unwrap().is_none());
    assert!(decode(Some("alice"), "{\"id\":").is_err());
}

#[test]
fn a_bad_url_is_refused() {
    assert!(RedisResponses::new("not a url", Duration::from_secs(1)).is_err());
    let s = RedisResponses::new("redis://127.0.0.1:1", Duration::ZERO).unwrap();
    assert_eq!(s.ttl_seconds, 1);
}

/// Nothing listens: every operation is the trait's error, soon, and a retry within the
/// second fails at once rather than connecting again.
#[tokio::test]
async fn an_unreachable_redis_is_an_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let s = RedisResponses::new(
        &format!("redis://127.0.0.1:{port}"),
        Duration::from_secs(60),
    )
    .unwrap();
    let t = Instant::now();
    assert!(s.get(Some("alice"), "resp_1").await.is_err());
    assert!(s.put(stored("resp_1", Some("alice"))).await.is_err());
    let e = s.holding(None, "msg_1").await.unwrap_err();
    assert!(e.to_string().contains("not connected"), "{e}");
    assert!(s.delete(None, "resp_1").await.is_err());
    assert!(t.elapsed() < Duration::from_secs(2));
}
