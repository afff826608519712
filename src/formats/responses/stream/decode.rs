//! A Responses event stream → deltas. Events are told apart by their JSON `type`; the stream
//! ends with exactly one terminal event (`response.completed`, `.incomplete`, `.failed`) whose
//! `response` carries the usage. There is no `[DONE]`.

use crate::error::{ApiError, ErrorKind};
use crate::formats::openai::error as oai_error;
use crate::formats::pivot::unreadable_event;
use crate::formats::responses::WireUsage;
use crate::formats::{Delta, FinishReason, JsonStr};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    r#type: Cow<'a, str>,
    #[serde(default)]
    sequence_number: Option<u64>,
    #[serde(borrow, default)]
    delta: Option<&'a RawValue>,
    #[serde(default)]
    output_index: Option<u32>,
    #[serde(borrow, default)]
    item: Option<Item<'a>>,
    #[serde(borrow, default)]
    response: Option<Response<'a>>,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow)]
    r#type: Cow<'a, str>,
    #[serde(borrow, default)]
    call_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(borrow, default)]
    incomplete_details: Option<Incomplete<'a>>,
}

#[derive(Deserialize)]
struct Incomplete<'a> {
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
}

/// An `error` event's fields, flat as the spec has them.
#[derive(Deserialize)]
struct FlatError<'a> {
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    param: Option<Cow<'a, str>>,
}

/// Reads an `error` event in either shape: nested under `error` (what OpenAI sends) or flat
/// (the spec's `ResponseErrorEvent`, what Tollgate sends).
fn error_event(data: &[u8]) -> ApiError {
    let flat = match serde_json::from_slice::<FlatError<'_>>(data) {
        Ok(f) if f.error.is_none() && f.message.is_some() => f,
        _ => return oai_error::parse(500, data),
    };
    let kind = match flat.code.as_deref() {
        Some("rate_limit_exceeded") => ErrorKind::RateLimit,
        Some("insufficient_quota") => ErrorKind::Billing,
        Some("invalid_prompt") => ErrorKind::InvalidRequest,
        _ => ErrorKind::Server,
    };
    ApiError {
        status: 500,
        kind,
        code: flat.code.map(|c| Cow::Owned(c.into_owned())),
        param: flat.param.map(|p| Cow::Owned(p.into_owned())),
        message: flat.message.map(Cow::into_owned).unwrap_or_default(),
    }
}

/// Upstream Responses events → deltas.
#[derive(Default)]
pub struct EventDecoder {
    /// The `output_index` of each function call so far (its position is the call's index).
    calls: Vec<u32>,
    /// The last `sequence_number` seen (an error event the gateway adds follows it).
    pub last_sequence: Option<u64>,
}

impl EventDecoder {
    /// Decodes one SSE event's data.
    pub fn event<'a>(
        &mut self,
        data: &'a [u8],
        emit: &mut impl FnMut(Delta<'a>),
    ) -> Result<(), ApiError> {
        let ev: Event<'a> = serde_json::from_slice(data).map_err(unreadable_event)?;
        if ev.sequence_number.is_some() {
            self.last_sequence = ev.sequence_number;
        }
        let text = || {
            ev.delta
                .and_then(JsonStr::from_raw)
                .filter(|s| !s.is_empty())
        };
        match &*ev.r#type {
            "response.created" => emit(Delta::Start {
                id: ev.response.and_then(|r| r.id).unwrap_or_default(),
            }),
            "response.output_text.delta" => text().into_iter().for_each(|t| emit(Delta::Text(t))),
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                text().into_iter().for_each(|t| emit(Delta::Reasoning(t)))
            }
            "response.output_item.added" => self.item_added(&ev, emit),
            "response.function_call_arguments.delta" => {
                let at = ev
                    .output_index
                    .and_then(|o| self.calls.iter().position(|c| *c == o));
                if let (Some(index), Some(json)) = (at, text()) {
                    emit(Delta::ToolArgs {
                        index: index as u32,
                        json,
                    });
                }
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                self.terminal(&ev.r#type, ev.response, emit)
            }
            "error" => emit(Delta::Error(Box::new(error_event(data)))),
            _ => {}
        }
        Ok(())
    }

    fn item_added<'a>(&mut self, ev: &Event<'a>, emit: &mut impl FnMut(Delta<'a>)) {
        let Some(item) = ev.item.as_ref().filter(|i| i.r#type == "function_call") else {
            return;
        };
        let index = self.calls.len() as u32;
        self.calls.push(ev.output_index.unwrap_or(index));
        let lit = |v: Option<&'a RawValue>| v.and_then(JsonStr::from_raw);
        emit(Delta::ToolCall {
            index,
            id: lit(item.call_id).unwrap_or(JsonStr::encode("")),
            name: lit(item.name).unwrap_or(JsonStr::encode("")),
        });
    }

    fn terminal<'a>(
        &mut self,
        kind: &str,
        response: Option<Response<'a>>,
        emit: &mut impl FnMut(Delta<'a>),
    ) {
        let response = response.unwrap_or(Response {
            id: None,
            usage: None,
            incomplete_details: None,
        });
        if let Some(u) = &response.usage {
            emit(Delta::Usage(u.normalise()));
        }
        let reason = response.incomplete_details.and_then(|d| d.reason);
        let finish = match (kind, reason.as_deref()) {
            ("response.incomplete", Some("content_filter")) => FinishReason::ContentFilter,
            ("response.incomplete", _) => FinishReason::Length,
            _ if !self.calls.is_empty() => FinishReason::ToolCalls,
            _ => FinishReason::Stop,
        };
        if kind != "response.failed" {
            emit(Delta::Finish(finish));
        }
        emit(Delta::Done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::Usage;

    const STREAM: &[&str] = &[
        r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","status":"in_progress","output":[],"usage":null}}"#,
        r#"{"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","content":[],"role":"assistant"}}"#,
        r#"{"type":"response.output_text.delta","sequence_number":2,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi \"there\"","logprobs":[]}"#,
        r#"{"type":"response.output_item.added","sequence_number":3,"output_index":1,"item":{"id":"fc_1","type":"function_call","status":"in_progress","arguments":"","call_id":"call_9","name":"get"}}"#,
        r#"{"type":"response.function_call_arguments.delta","sequence_number":4,"item_id":"fc_1","output_index":1,"delta":"{\"a\":1}"}"#,
        r#"{"type":"response.completed","sequence_number":5,"response":{"id":"resp_1","status":"completed","usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":4},"output_tokens":9,"output_tokens_details":{"reasoning_tokens":3},"total_tokens":21}}}"#,
    ];

    fn decode(events: &[&str]) -> Vec<String> {
        let mut d = EventDecoder::default();
        let mut out = Vec::new();
        for e in events {
            d.event(e.as_bytes(), &mut |x| out.push(format!("{x:?}")))
                .unwrap();
        }
        out
    }

    #[test]
    fn text_calls_usage_and_the_end() {
        let out = decode(STREAM);
        assert!(out[0].contains("resp_1"), "{out:?}");
        assert!(out[1].contains(r#"Hi \\\"there\\\""#), "{out:?}");
        assert!(
            out[2].contains("call_9") && out[2].contains("index: 0"),
            "{out:?}"
        );
        assert!(
            out[3].contains("ToolArgs") && out[3].contains("index: 0"),
            "{out:?}"
        );
        let want = Usage {
            input: 12,
            cached_input: 4,
            cache_creation: 0,
            output: 9,
            reasoning: 3,
        };
        assert_eq!(out[4], format!("{:?}", Delta::Usage(want)));
        assert_eq!(out[5], "Finish(ToolCalls)");
        assert_eq!(out[6], "Done");
    }

    #[test]
    fn incomplete_and_failed_and_errors() {
        let inc = r#"{"type":"response.incomplete","sequence_number":7,"response":{"incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":1,"output_tokens":2}}}"#;
        assert_eq!(decode(&[inc])[1..], ["Finish(Length)", "Done"]);
        let failed = r#"{"type":"response.failed","sequence_number":3,"response":{"status":"failed","usage":null}}"#;
        assert_eq!(decode(&[failed]), ["Done"]);
        let err = r#"{"type":"error","sequence_number":2,"error":{"type":"insufficient_quota","code":"insufficient_quota","message":"quota","param":null}}"#;
        assert!(decode(&[err])[0].starts_with("Error"));
        let flat = r#"{"type":"error","code":"rate_limit_exceeded","message":"slow","param":null,"sequence_number":4}"#;
        let mut got = None;
        EventDecoder::default()
            .event(flat.as_bytes(), &mut |d| {
                if let Delta::Error(e) = d {
                    got = Some(*e);
                }
            })
            .unwrap();
        let e = got.unwrap();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::RateLimit, "slow"));
        let mut d = EventDecoder::default();
        assert!(d.event(b"not json", &mut |_| {}).is_err());
        d.event(err.as_bytes(), &mut |_| {}).unwrap();
        assert_eq!(d.last_sequence, Some(2));
    }
}
