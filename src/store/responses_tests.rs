use super::*;
use serde_json::{json, Value};

/// A response whose item ids are read from its JSON texts.
fn with_json(id: &str, owner: Option<&str>, response: Value, input: Value) -> StoredResponse {
    StoredResponse::new(Parts {
        id,
        owner,
        model: "m",
        response: &response.to_string(),
        input: &input.to_string(),
        instructions: None,
        item_ids: None,
    })
}

fn resp(id: &str, owner: Option<&str>, pad: usize) -> StoredResponse {
    let out = json!({"id": id, "output": [{"id": format!("msg_{id}"), "type": "message"}],
        "pad": "x".repeat(pad)});
    let input = json!([{"id": format!("in_{id}"), "type": "message", "role": "user"}]);
    with_json(id, owner, out, input)
}

/// A clock the test moves.
fn clock() -> (Clock, Arc<Mutex<Instant>>) {
    let t = Arc::new(Mutex::new(Instant::now()));
    let c = t.clone();
    (Arc::new(move || *c.lock().unwrap()), t)
}

#[tokio::test]
async fn expires_after_its_ttl() {
    let (c, t) = clock();
    let s = MemoryResponses::with_clock(Duration::from_secs(60), 1 << 20, c);
    s.put(resp("a", None, 0)).await.unwrap();
    *t.lock().unwrap() += Duration::from_secs(59);
    assert!(s.get(None, "a").await.unwrap().is_some());
    s.put(resp("b", None, 0)).await.unwrap();
    *t.lock().unwrap() += Duration::from_secs(2);
    assert!(s.get(None, "a").await.unwrap().is_none());
    assert!(s.holding(None, "msg_a").await.unwrap().is_none());
    assert!(s.get(None, "b").await.unwrap().is_some());
    *t.lock().unwrap() += Duration::from_secs(60);
    assert!(s.get(None, "b").await.unwrap().is_none());
    assert_eq!(s.bytes(), 0);
}

#[tokio::test]
async fn bounded_in_bytes_evicting_the_oldest() {
    let one = held_bytes(&resp("a", None, 1000));
    let s = MemoryResponses::new(Duration::from_secs(60), one * 3);
    for id in ["a", "b", "c"] {
        s.put(resp(id, None, 1000)).await.unwrap();
    }
    // Read "a": reads do not refresh; eviction is by age.
    assert!(s.get(None, "a").await.unwrap().is_some());
    s.put(resp("d", None, 1000)).await.unwrap();
    assert!(s.get(None, "a").await.unwrap().is_none());
    for id in ["b", "c", "d"] {
        assert!(s.get(None, id).await.unwrap().is_some(), "{id}");
    }
    assert!(s.bytes() <= one * 3);
    // Too large for the whole store: not kept, nothing else evicted.
    s.put(resp("huge", None, one * 4)).await.unwrap();
    assert!(s.get(None, "huge").await.unwrap().is_none());
    assert!(s.get(None, "b").await.unwrap().is_some());
}

#[tokio::test]
async fn replacing_and_deleting_keep_the_count_right() {
    let one = held_bytes(&resp("a", None, 100));
    let s = MemoryResponses::new(Duration::from_secs(60), one * 2);
    s.put(resp("a", None, 100)).await.unwrap();
    s.put(resp("a", None, 100)).await.unwrap();
    assert_eq!(s.bytes(), one);
    s.put(resp("b", None, 100)).await.unwrap();
    assert!(s.delete(None, "a").await.unwrap());
    assert!(!s.delete(None, "a").await.unwrap());
    assert_eq!(s.bytes(), one);
    // The stale order entry of "a" does not evict "b".
    s.put(resp("c", None, 100)).await.unwrap();
    assert!(s.get(None, "b").await.unwrap().is_some());
}

#[tokio::test]
async fn a_key_sees_only_its_own() {
    let s = MemoryResponses::new(Duration::from_secs(60), 1 << 20);
    s.put(resp("a", Some("alice"), 0)).await.unwrap();
    s.put(resp("o", None, 0)).await.unwrap();
    assert!(s.get(Some("alice"), "a").await.unwrap().is_some());
    assert!(s.get(Some("bob"), "a").await.unwrap().is_none());
    assert!(s.get(None, "a").await.unwrap().is_none());
    assert!(s.get(Some("alice"), "o").await.unwrap().is_none());
    assert!(s.holding(Some("bob"), "msg_a").await.unwrap().is_none());
    assert!(!s.delete(Some("bob"), "a").await.unwrap());
    let r = s.holding(Some("alice"), "in_a").await.unwrap().unwrap();
    assert_eq!(r.item("in_a").unwrap()["role"], "user");
    assert_eq!(r.item("msg_a").unwrap()["type"], "message");
    assert!(s.delete(Some("alice"), "a").await.unwrap());
}

#[test]
fn item_ids_are_the_string_ids_of_input_and_output_items() {
    let input = json!([
        {"id": "in_a", "type": "message", "content": [{"id": "not-an-item"}]},
        "a bare string",
        {"id": 7, "type": "message"},
        {"type": "message"},
        {"id": "in_b"}
    ]);
    let out = json!({"id": "r1", "output": [{"id": "msg_r1", "type": "message"}]});
    let r = with_json("r1", None, out, input.clone());
    assert_eq!(r.item_ids().collect::<Vec<_>>(), ["in_a", "in_b", "msg_r1"]);
    let r = with_json("r1", None, json!({"id": "r1"}), input);
    assert_eq!(r.item_ids().collect::<Vec<_>>(), ["in_a", "in_b"]);
}

#[test]
fn every_part_reads_back_as_given_in_one_allocation() {
    let ids = ["in_1".to_string(), String::new(), "msg_\u{e9}".into()];
    let r = StoredResponse::new(Parts {
        id: "resp_1",
        owner: Some(""),
        model: "claude",
        response: "{}",
        input: "[]",
        instructions: Some("be brief"),
        item_ids: Some(&ids),
    });
    assert_eq!(r.id(), "resp_1");
    // An empty owner is a key named so, not an open gateway's response.
    assert_eq!(r.owner(), Some(""));
    assert!(r.owned_by(Some("")) && !r.owned_by(None));
    assert_eq!((r.model(), r.response(), r.input()), ("claude", "{}", "[]"));
    assert_eq!(r.instructions(), Some("be brief"));
    assert_eq!(r.item_ids().collect::<Vec<_>>(), ["in_1", "", "msg_\u{e9}"]);
    assert_eq!(r.items(), 3);
    let bare = resp("a", None, 0);
    assert_eq!((bare.owner(), bare.instructions()), (None, None));
}

#[test]
fn json_kept_as_text_is_checked_when_a_shared_store_writes_it() {
    let part = |response| {
        StoredResponse::new(Parts {
            id: "r",
            owner: Some("k"),
            model: "m",
            response,
            input: "[]",
            instructions: Some("i"),
            item_ids: Some(&[]),
        })
    };
    let r = part("{\"id\": \"r\", \"output\": [1, 2]}");
    let text = serde_json::to_string(&r).unwrap();
    let back: StoredResponse = serde_json::from_str(&text).unwrap();
    assert_eq!(back.response(), r.response());
    assert_eq!((back.owner(), back.instructions()), (Some("k"), Some("i")));
    assert!(serde_json::to_string(&part("{\"id\": ")).is_err());
}

#[tokio::test]
async fn the_item_index_answers_only_for_items_the_response_holds() {
    let s = MemoryResponses::new(Duration::from_secs(60), 1 << 20);
    s.put(resp("a", None, 0)).await.unwrap();
    s.put(resp("b", None, 0)).await.unwrap();
    // Another id under the same slot as one of "a"'s items (two ids sharing a hash): the
    // index leads to "a", which does not hold it, so it is not found.
    {
        let mut g = s.lock();
        let at = g.slot("msg_elsewhere");
        let a = g.items[&g.slot("msg_a")];
        g.items.insert(at, a);
    }
    assert!(s.holding(None, "msg_elsewhere").await.unwrap().is_none());
    assert_eq!(s.holding(None, "msg_a").await.unwrap().unwrap().id(), "a");
    // A response put again under its id keeps its items found; deleting it unindexes them,
    // and leaves another response's items alone.
    s.put(resp("a", None, 10)).await.unwrap();
    assert_eq!(s.holding(None, "in_a").await.unwrap().unwrap().id(), "a");
    assert!(s.delete(None, "a").await.unwrap());
    assert!(s.holding(None, "in_a").await.unwrap().is_none());
    assert!(s.holding(None, "msg_a").await.unwrap().is_none());
    assert_eq!(s.holding(None, "msg_b").await.unwrap().unwrap().id(), "b");
    assert_eq!(s.holding(None, "in_b").await.unwrap().unwrap().id(), "b");
}

#[tokio::test]
async fn a_response_found_under_another_ids_slot_is_not_that_id() {
    let s = MemoryResponses::new(Duration::from_secs(60), 1 << 20);
    s.put(resp("a", None, 0)).await.unwrap();
    // "a" moved under the slot of "z" (two response ids sharing a hash).
    {
        let mut g = s.lock();
        let (from, to) = (g.slot("a"), g.slot("z"));
        let e = g.entries.remove(&from).unwrap();
        g.entries.insert(to, e);
    }
    assert!(s.get(None, "z").await.unwrap().is_none());
    assert!(!s.delete(None, "z").await.unwrap());
    assert!(s.get(None, "a").await.unwrap().is_none());
}
