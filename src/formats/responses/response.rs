//! A complete chat reply (the pivot) → a Response, for Responses clients whose backend speaks
//! another API. Items in OpenAI's order: reasoning (as a summary), the message (text or
//! refusal), then one `function_call` item per tool call.

use super::output::{Head, Item, Kind, Status};
use crate::error::ApiError;
use crate::formats::openai::response::{finish_str, Reply};
use crate::formats::openai::stream::finish_reason;
use crate::formats::openai::types::ChatCompletion;
use crate::formats::pivot::unreadable_reply;
use crate::formats::{ids, FinishReason, JsonStr, ReplyContext, Usage};
use bytes::BytesMut;

pub fn from_chat(body: &[u8], ctx: &ReplyContext<'_>) -> Result<(Vec<u8>, Usage), ApiError> {
    let c: ChatCompletion = serde_json::from_slice(body).map_err(unreadable_reply)?;
    let Some(choice) = c.choices.first() else {
        return Err(ApiError::bad_upstream("The upstream reply has no choices."));
    };
    let m = &choice.message;
    let calls = m.tool_calls.iter().flatten();
    let parts = Parts {
        reasoning: m.reasoning_content.as_deref().or(m.reasoning.as_deref()),
        text: m.content.as_deref(),
        refusal: m.refusal.as_deref(),
        tool_calls: (calls.map(|t| (&*t.id, &*t.function.name, &*t.function.arguments))).collect(),
        finish: choice.finish_reason.as_deref().map(finish_reason),
        usage: c.usage.as_ref().map(|u| u.normalise()).unwrap_or_default(),
    };
    Ok((parts.write(ctx).0, parts.usage))
}

/// What a kept Response is indexed by: its id and its output items' ids, in order.
pub type Ids = (String, Vec<String>);

/// A translator's reply (Anthropic's, Bedrock's) → a Response, without the chat completion
/// between them written and parsed again (that parse was half of this translation): the same
/// bytes as [`from_chat`] of its chat JSON (the tests compare); with the ids it wrote, so a
/// kept Response need not be read back for them.
pub(crate) fn from_reply(r: &Reply<'_>, ctx: &ReplyContext<'_>) -> (Vec<u8>, Usage, Ids) {
    let calls = r.tool_calls.iter();
    let parts = Parts {
        // The chat JSON carries no empty reasoning.
        reasoning: r.reasoning.as_deref().filter(|t| !t.is_empty()),
        text: r.text.as_deref(),
        refusal: None,
        tool_calls: (calls.map(|t| (&*t.id, &*t.function.name, &*t.function.arguments))).collect(),
        // As a chat client reads it (a stop sequence is a plain stop).
        finish: Some(finish_reason(finish_str(r.finish))),
        usage: r.usage,
    };
    let (out, ids) = parts.write(ctx);
    (out, r.usage, ids)
}

/// What a Response is made of, from either.
struct Parts<'a> {
    reasoning: Option<&'a str>,
    text: Option<&'a str>,
    refusal: Option<&'a str>,
    /// (id, name, arguments).
    tool_calls: Vec<(&'a str, &'a str, &'a str)>,
    finish: Option<FinishReason>,
    usage: Usage,
}

impl Parts<'_> {
    fn write(&self, ctx: &ReplyContext<'_>) -> (Vec<u8>, Ids) {
        // Fresh, not the upstream's: kept Responses are found by id, and an OpenAI-compatible
        // server may repeat ids (Ollama's are `chatcmpl-` and a number under 999).
        let stem = ids::fresh();
        let mut items = Vec::new();
        let add = |items: &mut Vec<Item>, kind: Kind, prefix: &str, text: &str| {
            let mut n = itoa::Buffer::new();
            let n = n.format(items.len());
            let mut it = Item::new(kind, ids::concat(&[prefix, "_", &stem, "_", n]));
            it.push_literal(JsonStr::encode(text).literal());
            items.push(it);
            items.len() - 1
        };
        if let Some(r) = self.reasoning {
            add(&mut items, Kind::Reasoning, "rs", r);
        }
        if let Some(t) = self.text.filter(|t| !t.is_empty()) {
            add(&mut items, Kind::Message, "msg", t);
        }
        if let Some(r) = self.refusal {
            add(&mut items, Kind::Refusal, "msg", r);
        }
        for &(id, name, arguments) in &self.tool_calls {
            let i = add(&mut items, Kind::FunctionCall, "fc", arguments);
            items[i].call_id = JsonStr::encode(id).literal().to_string();
            items[i].set_name(&JsonStr::encode(name), ctx.tool_names.map(|n| &**n));
        }
        let head = Head {
            id: ids::concat(&["resp_", &stem]),
            model: JsonStr::encode(ctx.client_model).literal().to_string(),
            created: ctx.created,
        };
        let text = self.text.map_or(0, str::len) + self.reasoning.map_or(0, str::len);
        let mut out = BytesMut::with_capacity(768 + text);
        head.write(
            &Status::Done(self.finish),
            &items,
            Some(&self.usage),
            &mut out,
        );
        let items = items.into_iter().map(|i| i.id).collect();
        // The buffer itself, not a copy of it.
        (Vec::from(out), (head.id, items))
    }
}

#[cfg(test)]
mod tests {
    use crate::formats::{
        anthropic, bedrock, translate_response, translate_response_kept, Format, ReplyContext,
    };
    use proptest::prelude::*;
    use serde_json::{json, Value};

    const CTX: ReplyContext<'static> = ReplyContext {
        client_model: "client \"m\"",
        created: 7,
        tool_names: None,
    };

    /// The Response straight from the reply and through its chat JSON: the same bytes.
    fn same(from: Format, reply: &Value) {
        let body = serde_json::to_vec(reply).unwrap();
        let direct = translate_response(from, Format::Responses, &body, &CTX).unwrap();
        let (chat, usage) = match from {
            Format::Anthropic => anthropic::response::to_chat(&body, &CTX).unwrap(),
            _ => bedrock::response::to_chat(&body, &CTX).unwrap(),
        };
        let (through, _) = super::from_chat(&chat, &CTX).unwrap();
        // Each translation makes a fresh id.
        let stemless = |b: &[u8]| {
            let s = String::from_utf8_lossy(b).into_owned();
            let stem = s["{\"id\":\"resp_".len()..]
                .split('"')
                .next()
                .unwrap()
                .to_string();
            s.replace(&stem, "STEM")
        };
        assert_eq!(stemless(&direct.0), stemless(&through), "{reply}");
        assert_eq!(direct.1, usage);
        // The ids said with a kept reply are those its JSON holds.
        let (kept, _, ids) = translate_response_kept(from, Format::Responses, &body, &CTX).unwrap();
        let v: Value = serde_json::from_slice(&kept).unwrap();
        let items: Vec<String> = (v["output"].as_array().unwrap().iter())
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids, Some((v["id"].as_str().unwrap().to_string(), items)));
    }

    /// Kept Responses are found by id, and upstream ids may repeat (Ollama's are `chatcmpl-`
    /// and a number under 999): the same reply twice is two Responses, items and all.
    #[test]
    fn each_reply_gets_a_fresh_response_id_whatever_the_upstream_id() {
        let chat = json!({"id": "chatcmpl-7", "object": "chat.completion", "created": 1,
            "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Hi"}}]});
        let body = serde_json::to_vec(&chat).unwrap();
        let ant = message(json!([{"type": "text", "text": "Hi"}]), "end_turn");
        let ant = serde_json::to_vec(&ant).unwrap();
        let kept = |from, body: &[u8]| {
            let (_, _, ids) = translate_response_kept(from, Format::Responses, body, &CTX).unwrap();
            ids.unwrap()
        };
        let ((a, a_items), (b, b_items)) =
            (kept(Format::Anthropic, &ant), kept(Format::Anthropic, &ant));
        assert_ne!(a, b);
        assert_ne!(a_items, b_items);
        assert_eq!(a.len(), "resp_".len() + 32, "{a}");
        let (x, _) = super::from_chat(&body, &CTX).unwrap();
        let (y, _) = super::from_chat(&body, &CTX).unwrap();
        assert_ne!(x, y);
    }

    fn message(content: Value, stop: &str) -> Value {
        json!({"id": "msg_01A", "type": "message", "role": "assistant", "content": content,
            "stop_reason": stop, "usage": {"input_tokens": 12, "output_tokens": 5,
            "cache_read_input_tokens": 3, "cache_creation_input_tokens": 2}})
    }

    #[test]
    fn anthropic_replies_read_straight_or_through_chat_are_the_same() {
        for (content, stop) in [
            (
                json!([{"type": "text", "text": "Hello \"you\"\n\u{e9}\u{1F600}"}]),
                "end_turn",
            ),
            (json!([]), "end_turn"),
            (json!([{"type": "text", "text": ""}]), "max_tokens"),
            (json!([{"type": "text", "text": "a"}]), "stop_sequence"),
            (json!([{"type": "text", "text": "a"}]), "refusal"),
            (
                json!([{"type": "thinking", "thinking": "hmm\t", "signature": "s"},
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "get \"w\"", "input": {"q": "x\"y"}},
                {"type": "tool_use", "id": "toolu_2", "name": "n"}]),
                "tool_use",
            ),
            (json!([{"type": "thinking", "thinking": ""}]), "end_turn"),
        ] {
            same(Format::Anthropic, &message(content, stop));
        }
    }

    #[test]
    fn bedrock_replies_read_straight_or_through_chat_are_the_same() {
        for (content, stop) in [
            (json!([{"text": "Hi \\ there"}]), "end_turn"),
            (
                json!([{"reasoningContent": {"reasoningText": {"text": "r", "signature": "s"}}},
                {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"a": [1, 2]}}}]),
                "tool_use",
            ),
            (json!([{"text": "a"}]), "guardrail_intervened"),
            (json!([{"text": "a"}]), "max_tokens"),
        ] {
            let reply = json!({"output": {"message": {"role": "assistant", "content": content}},
                "stopReason": stop, "usage": {"inputTokens": 4, "outputTokens": 2,
                "cacheReadInputTokens": 1}});
            same(Format::Bedrock, &reply);
        }
    }

    proptest! {
        #[test]
        fn any_text_reads_the_same_straight_or_through_chat(
            text in any::<String>(),
            thinking in any::<String>(),
            args in any::<String>(),
        ) {
            let content = json!([{"type": "thinking", "thinking": thinking},
                {"type": "text", "text": text},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"s": args}}]);
            same(Format::Anthropic, &message(content, "tool_use"));
        }
    }
}
