//! The chat-pivot toolkit: how every translator reads an OpenAI chat request (the pivot), so
//! targets differ only in their wire shapes. Bodies (`parse`), the chat fields kept in `extra`
//! (`check_extras`, `top_k`), message text and tool calls (`messages`), tools and tool choice
//! (`tools`), `data:` URLs (`media`), Claude's thinking budgets (Anthropic, Claude on Bedrock),
//! the token estimate, and the errors for unreadable upstream replies and streams. The field
//! policy's errors (`unsupported`, `join`) are in `formats::fields`.

pub(crate) mod media;
pub(crate) mod messages;
pub(crate) mod tools;

use crate::error::ApiError;
use crate::formats::fields::{unsupported, Fields};
use crate::formats::openai::types::Extra;
use serde_json::{json, Value};

/// Parses a client body, naming what is wrong with it.
pub(crate) fn parse<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            ApiError::bad_request(format!("The request body is not valid for this API: {e}"))
        } else {
            ApiError::invalid_json(format!(
                "We could not parse the JSON body of your request: {e}"
            ))
        }
    })
}

/// OpenAI request fields with no effect on the reply's content (storage, billing, routing and
/// caching hints, reproducibility and latency hints, verbosity), dropped and named when the
/// request is translated to another API.
const NO_EFFECT_FIELDS: [&str; 9] = [
    "store",
    "metadata",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
    "verbosity",
    "seed",
    "prediction",
    "prompt_cache_retention",
];

/// Whether a field that changes the reply is at its neutral value (what the target does anyway):
/// SDKs send `n: 1`, zero penalties and the like as defaults.
fn neutral(k: &str, v: &Value) -> bool {
    match k {
        "n" => v.as_u64() == Some(1),
        "logprobs" => v == &Value::Bool(false),
        "top_logprobs" | "frequency_penalty" | "presence_penalty" => v.as_f64() == Some(0.0),
        "logit_bias" => v.as_object().is_some_and(|o| o.is_empty()),
        "modalities" => v.as_array().is_some_and(|m| m.len() == 1 && m[0] == "text"),
        _ => false,
    }
}

/// Chat fields that change the reply's meaning: a translation that cannot honour them refuses
/// them by name (or drops them under `drop_params`).
const MEANINGFUL: [&str; 12] = [
    "n",
    "logprobs",
    "top_logprobs",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "modalities",
    "audio",
    "web_search_options",
    "functions",
    "function_call",
    "top_k",
];

/// Applies the field policy to the chat fields kept in `extra`, but for those in `mapped`
/// (which the target's translator carries itself). `who` ends the refusal: "for this model's
/// provider (Bedrock).".
pub(crate) fn check_extras(
    extra: &Extra,
    mapped: &[&str],
    who: &str,
    f: &Fields,
) -> Result<(), ApiError> {
    for (k, v) in extra.iter().filter(|(_, v)| !v.is_null()) {
        let k = k.as_str();
        if mapped.contains(&k) || neutral(k, v) {
            continue;
        }
        if NO_EFFECT_FIELDS.contains(&k) {
            f.ignore(k);
        } else if MEANINGFUL.contains(&k) {
            let why = if k == "n" {
                "must be 1"
            } else {
                "cannot be expressed"
            };
            f.unsupported(k.to_string(), &format!("{why} {who}"))?;
        } else {
            f.unknown_field(k.to_string())?;
        }
    }
    Ok(())
}

/// `top_k`, a chat extension (Anthropic's, Gemini's and Claude on Bedrock's sampling field), for
/// the translators whose target has it.
pub(crate) fn top_k(extra: &Extra, who: &str) -> Result<Option<u64>, ApiError> {
    match extra.get("top_k") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            unsupported("top_k".into(), &format!("must be a positive integer {who}"))
        }),
    }
}

/// A reasoning effort → Claude's `thinking` with a budget below `max_tokens` (Anthropic's
/// Messages API, and Claude on Bedrock through `additionalModelRequestFields`).
pub(crate) fn claude_thinking(
    effort: Option<&str>,
    max_tokens: u64,
    f: &Fields,
) -> Result<Option<Value>, ApiError> {
    let budget = match effort {
        None | Some("none" | "minimal") => return Ok(None),
        Some("low") => 1024,
        Some("medium") => 4096,
        Some("high") => 16384,
        Some("xhigh" | "max") => 32768,
        Some(_) => {
            return Err(unsupported(
                "reasoning_effort".into(),
                "has an unknown value.",
            ))
        }
    };
    if max_tokens <= 1024 {
        f.unsupported(
            "reasoning_effort".into(),
            "needs more than 1024 max tokens for this model's provider (Anthropic thinking budgets start at 1024).",
        )?;
        return Ok(None);
    }
    let budget = u64::min(budget, max_tokens - 1);
    Ok(Some(json!({"type": "enabled", "budget_tokens": budget})))
}

/// Four characters a token, as the count estimates have it, for plain text (embedding inputs
/// whose provider reports no count, a Responses request's texts).
pub(crate) fn text_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

/// An upstream's complete reply that does not parse.
pub(crate) fn unreadable_reply(e: serde_json::Error) -> ApiError {
    ApiError::bad_upstream(format!("The upstream reply could not be read: {e}"))
}

/// An upstream stream event (Anthropic, Bedrock, Responses) that does not parse.
pub(crate) fn unreadable_event(e: serde_json::Error) -> ApiError {
    ApiError::bad_upstream(format!("The upstream sent an unreadable stream event: {e}"))
}

/// An upstream stream chunk (OpenAI, Gemini) that does not parse.
pub(crate) fn unreadable_chunk(e: serde_json::Error) -> ApiError {
    ApiError::bad_upstream(format!("The upstream sent an unreadable stream chunk: {e}"))
}
