//! Deltas → a Responses client's typed events, event by event: names, dense sequence numbers,
//! item ids and output indexes, the done events with the full texts, the terminal Response.
//! Upstream streams are split at every byte (the same output however they arrive).

use super::{run, run_all_splits, run_raw, ANT_THINKING, ANT_TOOLS, OAI_TOOLS};
use crate::formats::Format;
use serde_json::Value;
use std::collections::HashMap;

/// `(event name, data)` of each event; the name must equal the data's `type`, and sequence
/// numbers must count from 0.
fn events(out: &str) -> Vec<(String, Value)> {
    let evs: Vec<(String, Value)> = out
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (name, data) = e.split_once('\n').unwrap();
            let name = name.strip_prefix("event: ").unwrap().to_string();
            let v: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(v["type"], name.as_str());
            (name, v)
        })
        .collect();
    for (i, (_, v)) in evs.iter().enumerate() {
        assert_eq!(v["sequence_number"], i, "{v}");
    }
    evs
}

fn names(evs: &[(String, Value)]) -> Vec<&str> {
    evs.iter().map(|(n, _)| n.as_str()).collect()
}

/// Checks what every translated stream must hold: items added in `output_index` order with
/// their ids, deltas naming an added item, each done event carrying the concatenated deltas,
/// and the terminal Response listing every item as its `output_item.done` said.
fn check_items(evs: &[(String, Value)]) {
    let mut ids: Vec<String> = Vec::new();
    let mut texts: HashMap<String, String> = HashMap::new();
    let mut done_items = Vec::new();
    for (name, v) in evs {
        match name.as_str() {
            "response.output_item.added" => {
                assert_eq!(v["output_index"], ids.len());
                ids.push(v["item"]["id"].as_str().unwrap().to_string());
            }
            n if n.ends_with(".delta") => {
                let id = v["item_id"].as_str().unwrap();
                assert_eq!(ids[v["output_index"].as_u64().unwrap() as usize], id);
                texts
                    .entry(id.to_string())
                    .or_default()
                    .push_str(v["delta"].as_str().unwrap());
            }
            "response.output_text.done" | "response.reasoning_summary_text.done" => {
                let id = v["item_id"].as_str().unwrap();
                assert_eq!(v["text"].as_str().unwrap(), texts[id]);
            }
            "response.function_call_arguments.done" => {
                let id = v["item_id"].as_str().unwrap();
                assert_eq!(v["arguments"].as_str().unwrap(), texts[id]);
                serde_json::from_str::<Value>(&texts[id]).unwrap();
            }
            "response.output_item.done" => {
                assert_eq!(v["item"]["status"], "completed");
                done_items.push(v["item"].clone());
            }
            _ => {}
        }
    }
    assert_eq!(done_items.len(), ids.len(), "every item is closed");
    let last = &evs.last().unwrap().1["response"];
    let mut output = last["output"].as_array().unwrap().clone();
    // Done events come in closing order; the Response lists items in output order.
    done_items.sort_by_key(|i| ids.iter().position(|id| i["id"] == id.as_str()));
    output.sort_by_key(|i| ids.iter().position(|id| i["id"] == id.as_str()));
    assert_eq!(output, done_items);
}

#[test]
fn anthropic_text_then_tool_call() {
    let out = run_all_splits(Format::Anthropic, Format::Responses, ANT_TOOLS, false);
    let evs = events(&out);
    assert_eq!(
        names(&evs),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    check_items(&evs);
    let created = &evs[0].1["response"];
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["output"], serde_json::json!([]));
    assert!(created["usage"].is_null());
    assert_eq!(created["model"], "client-model");
    let call = &evs[9].1["item"];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["call_id"], "toolu_01NRLabsLyVHZPKxbKvkfSMn");
    assert_eq!(call["arguments"], "");
    assert_eq!(evs[14].1["name"], "get_weather");
    let r = &evs[16].1["response"];
    assert_eq!(r["status"], "completed");
    assert_eq!(r["id"], "resp_STEM");
    assert_eq!(
        r["output"][0]["content"][0]["text"],
        "I'll check the current weather in Paris for you."
    );
    assert_eq!(r["output"][1]["arguments"], "{\"location\": \"Paris\"}");
    assert_eq!(r["usage"]["output_tokens"], 65);
    assert_eq!(
        r["usage"]["total_tokens"],
        r["usage"]["input_tokens"].as_u64().unwrap() + 65
    );
}

#[test]
fn anthropic_thinking_is_a_reasoning_summary_and_cache_reads_are_cached_tokens() {
    let out = run_all_splits(Format::Anthropic, Format::Responses, ANT_THINKING, false);
    let evs = events(&out);
    check_items(&evs);
    let n = names(&evs);
    assert_eq!(
        n[2..4],
        [
            "response.output_item.added",
            "response.reasoning_summary_part.added"
        ]
    );
    assert_eq!(evs[2].1["item"]["type"], "reasoning");
    let r = &evs.last().unwrap().1["response"];
    assert_eq!(r["output"][0]["summary"][0]["type"], "summary_text");
    assert!(!r["output"][0]["summary"][0]["text"]
        .as_str()
        .unwrap()
        .is_empty());
    assert_eq!(r["output"][1]["type"], "message");
    let u = &r["usage"];
    assert!(u["input_tokens_details"]["cached_tokens"].as_u64().unwrap() > 0);
    assert!(u["input_tokens"].as_u64() > u["input_tokens_details"]["cached_tokens"].as_u64());
}

#[test]
fn openai_parallel_calls_keep_escapes_and_ids() {
    let out = run_all_splits(Format::OpenAi, Format::Responses, OAI_TOOLS, false);
    let evs = events(&out);
    check_items(&evs);
    let r = &evs.last().unwrap().1["response"];
    let out_items = r["output"].as_array().unwrap();
    assert_eq!(out_items.len(), 3);
    assert_eq!(out_items[0]["content"][0]["text"], "Checking \"both\"\n");
    assert_eq!(out_items[1]["call_id"], "call_JMW1");
    assert_eq!(out_items[2]["call_id"], "call_DNYT");
    assert_eq!(out_items[2]["arguments"], "{\"tz\":\"CET\"}");
    let ids: Vec<&str> = out_items
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["msg_STEM_0", "fc_STEM_1", "fc_STEM_2"]);
    let u = &r["usage"];
    assert_eq!(u["input_tokens"], 44);
    assert_eq!(u["input_tokens_details"]["cached_tokens"], 32);
    assert_eq!(u["output_tokens"], 16);
}

/// The gateway keeps Responses by id, and OpenAI-compatible servers may repeat theirs
/// (Ollama's are `chatcmpl-` and a number under 999): one upstream id, two Response ids.
#[test]
fn each_stream_gets_a_fresh_response_id_whatever_the_upstream_id() {
    let ids = || {
        let (out, ok) = run_raw(
            Format::OpenAi,
            Format::Responses,
            &[OAI_TOOLS.as_bytes()],
            false,
        );
        assert!(ok, "{out}");
        let evs = events(&out);
        let r = &evs.last().unwrap().1["response"];
        let items: Vec<String> = (r["output"].as_array().unwrap().iter())
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect();
        (r["id"].as_str().unwrap().to_string(), items)
    };
    let ((a, a_items), (b, b_items)) = (ids(), ids());
    assert_ne!(a, b);
    assert!(
        a_items.iter().all(|i| !b_items.contains(i)),
        "{a_items:?} {b_items:?}"
    );
    let hex = a.strip_prefix("resp_").unwrap();
    assert!(
        hex.len() == 32 && hex.bytes().all(|c| c.is_ascii_hexdigit()),
        "{a}"
    );
    assert!(a_items[0].contains(hex), "{a_items:?}");
}

#[test]
fn a_length_stop_is_an_incomplete_response() {
    let input = "data: {\"id\":\"chatcmpl-x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n\
        data: {\"id\":\"chatcmpl-x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n\
        data: {\"id\":\"chatcmpl-x\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
    let out = run_all_splits(Format::OpenAi, Format::Responses, input, false);
    let evs = events(&out);
    let (name, last) = evs.last().unwrap();
    assert_eq!(name, "response.incomplete");
    assert_eq!(last["response"]["status"], "incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
}

#[test]
fn an_upstream_error_is_an_error_event_then_response_failed() {
    let input = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n\
        event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
        event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n\
        event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let (out, ok) = run(
        Format::Anthropic,
        Format::Responses,
        &[input.as_bytes()],
        false,
    );
    assert!(ok, "an error event is a proper end");
    let evs = events(&out);
    let n = names(&evs);
    assert_eq!(n[n.len() - 2..], ["error", "response.failed"]);
    // Flat, as the spec's ResponseErrorEvent; codes from the spec's enums only.
    let err = &evs[n.len() - 2].1;
    let keys: Vec<&String> = err.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["code", "message", "param", "sequence_number", "type"],
        "{err}"
    );
    assert_eq!(err["message"], "Overloaded");
    assert_eq!(err["code"], "server_error");
    assert!(err["param"].is_null());
    let failed = &evs[n.len() - 1].1["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["message"], "Overloaded");
    assert_eq!(failed["error"]["code"], "server_error");
    assert_eq!(failed["output"][0]["content"][0]["text"], "Hel");
}

#[test]
fn a_cut_stream_ends_failed() {
    let cut = &ANT_TOOLS[..ANT_TOOLS.len() / 2];
    let (out, ok) = run(
        Format::Anthropic,
        Format::Responses,
        &[cut.as_bytes()],
        false,
    );
    assert!(!ok);
    let evs = events(&out);
    assert_eq!(evs.last().unwrap().0, "response.failed");
    assert_eq!(evs[evs.len() - 2].0, "error");
    assert_eq!(evs[evs.len() - 2].1["code"], "server_error");
    assert_eq!(
        evs.last().unwrap().1["response"]["error"]["code"],
        "server_error"
    );
}

#[test]
fn error_codes_come_from_the_spec_enum() {
    use crate::error::ApiError;
    use crate::formats::responses::error::code as response_error_code;
    let limited = ApiError::limited("slow".into(), false);
    let quota = ApiError::limited("spent".into(), true);
    let upstream = ApiError::upstream_rate_limited("m");
    assert_eq!(response_error_code(&limited), "rate_limit_exceeded");
    assert_eq!(response_error_code(&quota), "rate_limit_exceeded");
    assert_eq!(response_error_code(&upstream), "rate_limit_exceeded");
    assert_eq!(
        response_error_code(&ApiError::stream_broken()),
        "server_error"
    );
    assert_eq!(response_error_code(&ApiError::internal()), "server_error");
    assert_eq!(
        response_error_code(&ApiError::bad_request("too long")),
        "invalid_prompt"
    );
    let mut image = ApiError::bad_request("bad image");
    image.code = Some("invalid_image_url".into());
    assert_eq!(response_error_code(&image), "invalid_image_url");
    let mut out = bytes::BytesMut::new();
    crate::formats::responses::error::event(&limited.with_param("input"), 7, &mut out);
    let data = std::str::from_utf8(&out).unwrap();
    let data = data.split("data: ").nth(1).unwrap().trim();
    let v: Value = serde_json::from_str(data).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"type": "error", "code": "rate_limit_exceeded", "message": "slow",
            "param": "input", "sequence_number": 7})
    );
}
