use super::*;

fn parse(v: Value) -> Stateful {
    Stateful::parse(&serde_json::to_vec(&v).unwrap()).unwrap()
}

#[test]
fn reads_what_the_request_refers_to() {
    let s = parse(json!({"model": "m", "input": "hi"}));
    assert!(s.stored() && s.previous().is_none() && s.references().is_empty());
    let s = parse(
        json!({"model": "m", "store": false, "previous_response_id": "resp_1",
        "input": [{"type": "item_reference", "id": "fc_1"}, {"role": "user", "content": "x"}]}),
    );
    assert!(!s.stored());
    assert_eq!(s.previous(), Some("resp_1"));
    assert_eq!(s.references(), ["fc_1"]);
    let bad = Stateful::parse(br#"{"model":"m","input":3}"#);
    assert_eq!(bad.err().unwrap().param.as_deref(), Some("input"));
}

#[test]
fn history_comes_first_references_are_replaced_instructions_are_not_carried() {
    let s = parse(
        json!({"model": "m", "instructions": "new", "previous_response_id": "resp_1",
        "input": [{"type": "item_reference", "id": "fc_1"},
                  {"type": "function_call_output", "call_id": "c1", "output": "42"}]}),
    );
    let history = vec![
        json!({"id": "msg_in0", "type": "message", "role": "user", "content": "q"}),
        json!({"id": "fc_1", "type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}),
    ];
    let items = HashMap::from([("fc_1".to_string(), history[1].clone())]);
    let e = s.expand(history.clone(), &items).unwrap();
    assert_eq!(e.instructions.as_deref(), Some("new"));
    assert_eq!(e.input.len(), 4);
    assert_eq!(e.input[..2], history[..]);
    assert_eq!(e.input[2]["id"], "fc_1");
    assert_eq!(e.input[3]["type"], "function_call_output");
    let body: Value = serde_json::from_slice(&e.body).unwrap();
    assert!(body.get("previous_response_id").is_none());
    assert_eq!(body["input"], Value::Array(e.input.clone()));
    assert_eq!(body["instructions"], "new");
}

#[test]
fn an_unknown_reference_is_a_404_naming_it() {
    let s = parse(
        json!({"model": "m", "input": [{"role": "user", "content": "x"},
        {"type": "item_reference", "id": "msg_nope"}]}),
    );
    let e = s.expand(Vec::new(), &HashMap::new()).err().unwrap();
    assert_eq!(e.status, 404);
    assert!(e.message.contains("'msg_nope'"), "{}", e.message);
    assert_eq!(e.param.as_deref(), Some("input[1]"));
    let p = previous_not_found("resp_x");
    assert_eq!(p.code.as_deref(), Some("previous_response_not_found"));
    assert_eq!(p.message, "Previous response with id 'resp_x' not found.");
}

#[test]
fn kept_input_items_get_ids() {
    let items = vec![
        json!({"type": "message", "role": "user", "content": "a"}),
        json!({"id": "fc_9", "type": "function_call"}),
        json!({"type": "function_call_output", "call_id": "c", "output": "o"}),
    ];
    let out = with_ids(items, "resp_abc");
    assert_eq!(out[0]["id"], "msg_abc_in0");
    assert_eq!(out[1]["id"], "fc_9");
    assert_eq!(out[2]["id"], "fco_abc_in2");
}
