//! Requests from OpenAI chat clients to Gemini's `generateContent` (`from_chat`). A field
//! Gemini cannot express is a 400 naming it.
//!
//! Accepted and ignored: `user` (Gemini has no end-user field), `parallel_tool_calls` (Gemini
//! has no switch; it may call several functions at once either way), a tool's `strict`, an
//! image's `detail`, a message's `name`, and what the Anthropic translator also ignores
//! (`store`, `metadata`, `service_tier`, ...). `n` above 1 is refused: only the first candidate
//! would be translated back.
//!
//! `reasoning_effort` → `thinkingConfig` with the budgets Google's own OpenAI compatibility
//! layer uses: `low` 1,024, `medium` 8,192, `high` 24,576 tokens (`minimal` 512), with
//! `includeThoughts` so the thought summaries come back as `reasoning_content`; `none` is a
//! budget of 0 (thinking off where the model allows it). Like OpenAI's `max_completion_tokens`,
//! Gemini's `maxOutputTokens` covers thoughts too, so neither is adjusted for the other.

use super::types::{
    FunctionCallingConfig, FunctionDecl, GenerationConfig, OutRequest, OutSystem, OutToolConfig,
    OutTools, ThinkingConfig,
};
use super::{messages, WHO};
use crate::error::ApiError;
use crate::formats::fields::{unsupported, Fields};
use crate::formats::openai::types::{self as chat, ChatRequest};
use crate::formats::pivot;
use crate::formats::pivot::messages::{no_messages, no_turns};
use crate::formats::pivot::tools::{function_tools, ChatToolChoice};
use crate::formats::{RequestOptions, Translated};
use serde_json::{Map, Value};

/// OpenAI fields kept in `extra` that Gemini expresses: `seed` and the penalties.
#[derive(Default)]
struct Extras {
    seed: Option<i64>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
    top_k: Option<u64>,
}

/// Reads the untyped OpenAI fields Gemini expresses; the rest go by the field policy.
fn extras(extra: &Map<String, Value>, f: &Fields) -> Result<Extras, ApiError> {
    const MAPPED: [&str; 4] = ["seed", "presence_penalty", "frequency_penalty", "top_k"];
    pivot::check_extras(extra, &MAPPED, WHO, f)?;
    let mut out = Extras::default();
    if let Some(v) = extra.get("seed").filter(|v| !v.is_null()) {
        // Gemini's seed is an int32.
        out.seed = v.as_i64().filter(|s| i32::try_from(*s).is_ok());
        if out.seed.is_none() {
            return Err(unsupported(
                "seed".into(),
                &format!("must be an integer that fits in 32 bits {WHO}"),
            ));
        }
    }
    for (k, slot) in [
        ("presence_penalty", &mut out.presence_penalty),
        ("frequency_penalty", &mut out.frequency_penalty),
    ] {
        match extra.get(k).filter(|v| !v.is_null()).map(Value::as_f64) {
            None => {}
            // Some models refuse penalties outright, so a neutral 0 is not sent.
            Some(Some(p)) => *slot = (p != 0.0).then_some(p),
            Some(None) => return Err(unsupported(k.into(), &format!("must be a number {WHO}"))),
        }
    }
    out.top_k = pivot::top_k(extra, WHO)?;
    Ok(out)
}

/// An OpenAI chat request → a Gemini `GenerateContentRequest` (the model goes in the URL), read from
/// the client's body or built by another client API's first hop.
pub fn from_chat(
    req: ChatRequest,
    _opts: &RequestOptions<'_>,
    f: &Fields,
) -> Result<Translated, ApiError> {
    let ex = extras(&req.extra, f)?;
    let msgs = req.messages.as_deref().unwrap_or_default();
    if msgs.is_empty() {
        return Err(no_messages());
    }
    let (system, contents) = messages::convert(msgs, f)?;
    if contents.is_empty() {
        return Err(no_turns());
    }
    let tools = match req.tools.as_deref() {
        Some(t) if !t.is_empty() => Some([tools_of(t, f)?]),
        _ => None,
    }
    .filter(|[t]| !t.function_declarations.is_empty());
    // A tool choice without tools changes nothing (and OpenAI itself refuses it).
    let tool_config = match tools {
        Some(_) => tool_choice(req.tool_choice.as_ref())?,
        None => None,
    };
    let mut gen = GenerationConfig {
        max_output_tokens: req.max_completion_tokens.or(req.max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: req.stop.as_ref().map(chat::Stop::strs),
        seed: ex.seed,
        top_k: ex.top_k,
        presence_penalty: ex.presence_penalty,
        frequency_penalty: ex.frequency_penalty,
        thinking_config: thinking(req.reasoning_effort.as_deref())?,
        ..GenerationConfig::default()
    };
    response_format(req.response_format.as_ref(), &mut gen, f)?;
    let out = OutRequest {
        contents,
        system_instruction: (!system.is_empty()).then_some(OutSystem { parts: system }),
        tools,
        tool_config,
        generation_config: gen,
    };
    let body = serde_json::to_vec(&out).map_err(|_| ApiError::internal())?;
    Ok(Translated::new(
        body,
        req.stream == Some(true),
        req.include_usage(),
    ))
}

/// `tools` → one `Tool` with a function declaration each.
fn tools_of<'a>(tools: &'a [chat::Tool], fields: &Fields) -> Result<OutTools<'a>, ApiError> {
    let mut decls = Vec::with_capacity(tools.len());
    for t in function_tools(tools, WHO, fields) {
        let t = t?;
        fields.unknown(t.extra, &t.path)?;
        decls.push(FunctionDecl {
            name: t.name,
            description: t.description,
            parameters_json_schema: t.parameters,
        });
    }
    Ok(OutTools {
        function_declarations: decls,
    })
}

fn tool_choice(tc: Option<&Value>) -> Result<Option<OutToolConfig<'_>>, ApiError> {
    let (mode, allowed) = match ChatToolChoice::read(tc, WHO)? {
        None => return Ok(None),
        Some(ChatToolChoice::Auto) => ("AUTO", None),
        Some(ChatToolChoice::Required) => ("ANY", None),
        Some(ChatToolChoice::Off) => ("NONE", None),
        Some(ChatToolChoice::Function(name)) => ("ANY", Some([name])),
    };
    Ok(Some(OutToolConfig {
        function_calling_config: FunctionCallingConfig {
            mode,
            allowed_function_names: allowed,
        },
    }))
}

fn response_format<'a>(
    rf: Option<&'a Value>,
    gen: &mut GenerationConfig<'a>,
    f: &Fields,
) -> Result<(), ApiError> {
    let Some(rf) = rf.filter(|v| !v.is_null()) else {
        return Ok(());
    };
    match rf["type"].as_str() {
        Some("text") => {}
        Some("json_object") => gen.response_mime_type = Some("application/json"),
        Some("json_schema") => {
            gen.response_mime_type = Some("application/json");
            gen.response_json_schema = rf
                .get("json_schema")
                .and_then(|s| s.get("schema"))
                .filter(|s| !s.is_null());
        }
        _ => f.unsupported(
            "response_format.type".into(),
            "must be text, json_object or json_schema.",
        )?,
    }
    Ok(())
}

fn thinking(effort: Option<&str>) -> Result<Option<ThinkingConfig>, ApiError> {
    let budget = match effort {
        None => return Ok(None),
        Some("none") => {
            return Ok(Some(ThinkingConfig {
                thinking_budget: 0,
                include_thoughts: None,
            }))
        }
        Some("minimal") => 512,
        Some("low") => 1024,
        Some("medium") => 8192,
        Some("high") => 24576,
        Some("xhigh" | "max") => 32768,
        Some(_) => {
            return Err(unsupported(
                "reasoning_effort".into(),
                "has an unknown value.",
            ))
        }
    };
    Ok(Some(ThinkingConfig {
        thinking_budget: budget,
        include_thoughts: Some(true),
    }))
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
