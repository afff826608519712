//! A complete chat reply (the pivot) → a Response, for Responses clients whose backend speaks
//! another API. Items in OpenAI's order: reasoning (as a summary), the message (text or
//! refusal), then one `function_call` item per tool call.

use super::output::{Head, Item, Kind, Status};
use super::stream::stem;
use crate::error::ApiError;
use crate::formats::openai::stream::finish_reason;
use crate::formats::openai::types::ChatCompletion;
use crate::formats::pivot::unreadable_reply;
use crate::formats::{JsonStr, ReplyContext, Usage};
use bytes::BytesMut;

pub fn from_chat(body: &[u8], ctx: &ReplyContext<'_>) -> Result<(Vec<u8>, Usage), ApiError> {
    let c: ChatCompletion = serde_json::from_slice(body).map_err(unreadable_reply)?;
    let usage = c.usage.as_ref().map(|u| u.normalise()).unwrap_or_default();
    let stem = stem(&c.id);
    let Some(choice) = c.choices.into_iter().next() else {
        return Err(ApiError::bad_upstream("The upstream reply has no choices."));
    };
    let m = choice.message;
    let mut items = Vec::new();
    let add = |items: &mut Vec<Item>, kind: Kind, prefix: &str, text: &str| {
        let mut it = Item::new(kind, format!("{prefix}_{stem}_{}", items.len()));
        it.push_literal(JsonStr::encode(text).literal());
        items.push(it);
        items.len() - 1
    };
    if let Some(r) = m.reasoning_content.as_deref().or(m.reasoning.as_deref()) {
        add(&mut items, Kind::Reasoning, "rs", r);
    }
    if let Some(t) = m.content.as_deref().filter(|t| !t.is_empty()) {
        add(&mut items, Kind::Message, "msg", t);
    }
    if let Some(r) = m.refusal.as_deref() {
        add(&mut items, Kind::Refusal, "msg", r);
    }
    for tc in m.tool_calls.iter().flatten() {
        let i = add(&mut items, Kind::FunctionCall, "fc", &tc.function.arguments);
        items[i].call_id = JsonStr::encode(&tc.id).literal().to_string();
        items[i].set_name(
            &JsonStr::encode(&tc.function.name),
            ctx.tool_names.map(|n| &**n),
        );
    }
    let head = Head {
        id: format!("resp_{stem}"),
        model: JsonStr::encode(ctx.client_model).literal().to_string(),
        created: ctx.created,
    };
    let finish = choice.finish_reason.as_deref().map(finish_reason);
    let mut out = BytesMut::with_capacity(512 + body.len());
    head.write(&Status::Done(finish), &items, Some(&usage), &mut out);
    Ok((out.to_vec(), usage))
}
