use super::*;
use proptest::prelude::*;

/// The items an input stands for.
fn values(input: &Input) -> Vec<Value> {
    match input {
        Input::Items(items) => items.clone(),
        Input::Text(literal) => vec![user_message(serde_json::from_str(literal).unwrap())],
    }
}

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
    let input = values(&e.input);
    assert_eq!(input.len(), 4);
    assert_eq!(input[..2], history[..]);
    assert_eq!(input[2]["id"], "fc_1");
    assert_eq!(input[3]["type"], "function_call_output");
    let body: Value = serde_json::from_slice(e.body.as_deref().unwrap()).unwrap();
    assert!(body.get("previous_response_id").is_none());
    assert_eq!(body["input"], Value::Array(input));
    assert_eq!(body["instructions"], "new");
}

#[test]
fn a_request_that_refers_to_nothing_keeps_its_own_body() {
    let s = parse(json!({"model": "m", "instructions": "i", "input": "hi"}));
    let e = s.expand(Vec::new(), &HashMap::new()).unwrap();
    assert!(e.body.is_none());
    let input = values(&e.input);
    assert_eq!(input.len(), 1);
    assert_eq!(input[0]["content"][0]["text"], "hi");
    assert_eq!(e.instructions.as_deref(), Some("i"));
    // A previous response with nothing in it still takes `previous_response_id` out.
    let s = parse(json!({"model": "m", "previous_response_id": "resp_1", "input": "hi"}));
    let body = s.expand(Vec::new(), &HashMap::new()).unwrap().body.unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(body.get("previous_response_id").is_none());
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

/// What kept input items were before [`Kept`]: the items copied, each object without a string
/// id given one, then written.
fn with_ids(mut items: Vec<Value>, response_id: &str) -> Vec<Value> {
    let stem = response_id.strip_prefix("resp_").unwrap_or(response_id);
    for (n, item) in items.iter_mut().enumerate() {
        if !item["id"].is_string() && item.is_object() {
            let prefix = match item["type"].as_str() {
                Some("function_call_output") => "fco",
                Some("function_call") => "fc",
                Some("reasoning") => "rs",
                _ => "msg",
            };
            item["id"] = json!(format!("{prefix}_{stem}_in{n}"));
        }
    }
    items
}

fn kept(items: &[Value], response_id: &str) -> (String, Vec<String>) {
    let ids = input_ids(items, response_id);
    let text = Kept { items, ids: &ids }.write().unwrap();
    (text, ids)
}

#[test]
fn kept_input_items_get_ids() {
    let items = vec![
        json!({"type": "message", "role": "user", "content": "a"}),
        json!({"id": "fc_9", "type": "function_call"}),
        json!({"type": "function_call_output", "call_id": "c", "output": "o"}),
        json!({"type": "reasoning", "id": null, "summary": []}),
        json!("not an object"),
        json!({"aa": 1, "zz": 2}),
    ];
    let (text, ids) = kept(&items, "resp_abc");
    assert_eq!(
        ids,
        [
            "msg_abc_in0",
            "fc_9",
            "fco_abc_in2",
            "rs_abc_in3",
            "msg_abc_in5"
        ]
    );
    let out: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(out[0]["id"], "msg_abc_in0");
    assert_eq!(out[1]["id"], "fc_9");
    assert_eq!(out[2]["id"], "fco_abc_in2");
    assert_eq!(out[3]["id"], "rs_abc_in3");
    assert_eq!(out[4], "not an object");
    // The same text as the items changed and written, key order included.
    assert_eq!(
        text,
        serde_json::to_string(&with_ids(items, "resp_abc")).unwrap()
    );
}

fn item() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("id".to_string()),
        Just("type".to_string()),
        Just("content".to_string()),
        "[a-z_]{0,4}",
        "[\\PC]{0,3}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[\\PC]{0,6}".prop_map(Value::from),
        prop_oneof![
            Just("function_call"),
            Just("function_call_output"),
            Just("reasoning"),
            Just("message")
        ]
        .prop_map(Value::from),
    ];
    let map = proptest::collection::btree_map(key, leaf.clone(), 0..6);
    prop_oneof![
        4 => map.prop_map(|m| Value::Object(m.into_iter().collect())),
        1 => leaf,
    ]
}

proptest! {
    #[test]
    fn kept_items_are_the_changed_items_written(
        items in proptest::collection::vec(item(), 0..6),
        id in "(resp_)?[a-z0-9]{0,8}",
    ) {
        let (text, ids) = kept(&items, &id);
        let changed = with_ids(items, &id);
        prop_assert_eq!(&text, &serde_json::to_string(&changed).unwrap());
        let want: Vec<String> = (changed.iter())
            .filter_map(|i| i["id"].as_str().map(str::to_string))
            .collect();
        prop_assert_eq!(ids, want);
    }
}

/// What a request's state reads as.
#[derive(Debug, PartialEq)]
struct Reading {
    previous: Option<String>,
    references: Vec<String>,
    stored: bool,
    instructions: Option<String>,
    /// The input as kept: its ids and its items.
    ids: Vec<String>,
    kept: Value,
}

fn reading(form: Form) -> Reading {
    let s = Stateful { form };
    let mut r = Reading {
        previous: s.previous().map(str::to_string),
        references: s.references().into_iter().map(str::to_string).collect(),
        stored: s.stored(),
        instructions: None,
        ids: Vec::new(),
        kept: Value::Null,
    };
    if let Ok(e) = s.expand(Vec::new(), &HashMap::new()) {
        r.ids = e.input.ids("resp_abc");
        r.kept = serde_json::from_str(&e.input.to_json(&r.ids).unwrap()).unwrap();
        r.instructions = e.instructions;
    }
    r
}

#[test]
fn the_text_form_reads_as_serde_reads_the_body() {
    let long = "é \u{1F980} \\ \" / \n".repeat(40);
    let bodies = [
        json!({"model": "m", "input": "hi"}).to_string(),
        json!({"model": "m", "input": long, "instructions": "be \"terse\"", "store": false})
            .to_string(),
        json!({"input": "x", "previous_response_id": null, "store": true}).to_string(),
        json!({"input": "x", "instructions": 3, "store": "false"}).to_string(),
        // Spacing, escapes written the long way, a repeated key (the last counts).
        r#" { "input" : "first" , "input" : "caf\u00e9 \/ \ud83e\udd80" , "store" : false } "#
            .to_string(),
        r#"{"metadata": {"input": "nested"}, "tools": [{"input": 1}], "input": "top"}"#.to_string(),
    ];
    for body in &bodies {
        let text = text_form(body.as_bytes()).expect(body);
        assert!(matches!(text, Form::Text { .. }), "{body}");
        let full = full_form(body.as_bytes()).unwrap();
        assert_eq!(reading(text), reading(full), "{body}");
    }
    // What the text form leaves to serde: history, items, a key with an escape, a string
    // serde refuses (a lone surrogate), no input.
    for body in [
        r#"{"input": "x", "previous_response_id": "resp_1"}"#,
        r#"{"input": [{"role": "user", "content": "x"}]}"#,
        r#"{"inp\u0075t": "x"}"#,
        r#"{"input": "\ud800"}"#,
        r#"{"model": "m"}"#,
        r#"{"input": "x"} trailing"#,
    ] {
        assert!(text_form(body.as_bytes()).is_none(), "{body}");
    }
    let lone = Stateful::parse(br#"{"input": "\ud800"}"#);
    assert_eq!(lone.err().unwrap().status, 400);
}

#[test]
fn a_kept_text_input_is_the_message_serde_writes_for_it() {
    for text in [
        "hi",
        "a \"b\" \\ c\nd",
        "é \u{1F980} \u{7f}",
        &"lorem ipsum ".repeat(90),
    ] {
        let literal = serde_json::to_string(text).unwrap();
        let fast = Input::Text(literal.into());
        let slow = Input::Items(vec![user_message(text.to_string())]);
        let ids = fast.ids("resp_abc");
        assert_eq!(ids, slow.ids("resp_abc"));
        assert_eq!(fast.to_json(&ids).unwrap(), slow.to_json(&ids).unwrap());
    }
}
