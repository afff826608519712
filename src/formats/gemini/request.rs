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

use super::messages;
use super::types::{
    FunctionCallingConfig, FunctionDecl, GenerationConfig, OutRequest, OutSystem, OutToolConfig,
    OutTools, ThinkingConfig,
};
use crate::error::ApiError;
use crate::formats::anthropic::request::{no_extra, parse, unsupported};
use crate::formats::openai::chat::{self, ChatRequest};
use crate::formats::{RequestOptions, Translated};
use serde_json::{json, Map, Value};

const WHO: &str = "for this model's provider (Gemini).";

/// OpenAI fields kept in `extra` that Gemini expresses: `seed` and the penalties.
#[derive(Default)]
struct Extras {
    seed: Option<i64>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
}

/// Reads the untyped OpenAI fields: mapped, fine at their neutral value, ignored, or a 400.
fn extras(extra: &Map<String, Value>) -> Result<Extras, ApiError> {
    let mut out = Extras::default();
    for (k, v) in extra {
        if v.is_null() || chat::NO_EFFECT_FIELDS.contains(&k.as_str()) {
            continue;
        }
        let ok = match k.as_str() {
            // Gemini's seed is an int32.
            "seed" => {
                out.seed = v.as_i64().filter(|s| i32::try_from(*s).is_ok());
                out.seed.is_some()
            }
            // Some models refuse penalties outright, so a neutral 0 is not sent.
            "presence_penalty" | "frequency_penalty" => match v.as_f64() {
                Some(f) => {
                    let slot = if k == "presence_penalty" {
                        &mut out.presence_penalty
                    } else {
                        &mut out.frequency_penalty
                    };
                    *slot = (f != 0.0).then_some(f);
                    true
                }
                None => false,
            },
            "n" => v.as_u64() == Some(1),
            "logprobs" => v == &json!(false),
            "top_logprobs" => v.as_f64() == Some(0.0),
            "logit_bias" => v.as_object().is_some_and(|o| o.is_empty()),
            "modalities" => v == &json!(["text"]),
            _ => false,
        };
        if !ok {
            let why = match k.as_str() {
                "seed" => "must be an integer that fits in 32 bits",
                "n" => "must be 1",
                _ => "cannot be expressed",
            };
            return Err(unsupported(k.clone(), &format!("{why} {WHO}")));
        }
    }
    Ok(out)
}

/// An OpenAI chat request → a Gemini `GenerateContentRequest` (the model goes in the URL).
pub fn from_chat(body: &[u8], _opts: &RequestOptions<'_>) -> Result<Translated, ApiError> {
    let req: ChatRequest = parse(body)?;
    let ex = extras(&req.extra)?;
    let msgs = req.messages.as_deref().unwrap_or_default();
    if msgs.is_empty() {
        return Err(ApiError::bad_request("`messages` must not be empty.").with_param("messages"));
    }
    let (system, contents) = messages::convert(msgs)?;
    if contents.is_empty() {
        return Err(ApiError::bad_request(
            "`messages` needs at least one user, assistant or tool message.",
        )
        .with_param("messages"));
    }
    let tools = match req.tools.as_deref() {
        Some(t) if !t.is_empty() => Some([tools_of(t)?]),
        _ => None,
    };
    // A tool choice without tools changes nothing (and OpenAI itself refuses it).
    let tool_config = match tools {
        Some(_) => tool_choice(req.tool_choice.as_ref())?,
        None => None,
    };
    let mut gen = GenerationConfig {
        max_output_tokens: req.max_completion_tokens.or(req.max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: req.stop.as_ref().map(|stop| match stop {
            chat::Stop::One(s) => vec![s.as_str()],
            chat::Stop::Many(v) => v.iter().map(String::as_str).collect(),
        }),
        seed: ex.seed,
        presence_penalty: ex.presence_penalty,
        frequency_penalty: ex.frequency_penalty,
        thinking_config: thinking(req.reasoning_effort.as_deref())?,
        ..GenerationConfig::default()
    };
    response_format(req.response_format.as_ref(), &mut gen)?;
    let out = OutRequest {
        contents,
        system_instruction: (!system.is_empty()).then_some(OutSystem { parts: system }),
        tools,
        tool_config,
        generation_config: gen,
    };
    let stream = req.stream == Some(true);
    let include_usage = req
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    Ok(Translated {
        body: serde_json::to_vec(&out).map_err(|_| ApiError::internal())?,
        stream,
        include_usage,
    })
}

/// `tools` → one `Tool` with a function declaration each.
fn tools_of(tools: &[chat::Tool]) -> Result<OutTools<'_>, ApiError> {
    let mut decls = Vec::with_capacity(tools.len());
    for (i, t) in tools.iter().enumerate() {
        let p = format!("tools[{i}]");
        let f = match (&*t.kind, &t.function) {
            ("function", Some(f)) => f,
            _ => {
                return Err(unsupported(
                    format!("{p}.type"),
                    &format!("must be a function tool {WHO}"),
                ))
            }
        };
        no_extra(&t.extra, &p)?;
        no_extra(&f.extra, &format!("{p}.function"))?;
        decls.push(FunctionDecl {
            name: &f.name,
            description: f.description.as_deref(),
            parameters_json_schema: f.parameters.as_ref().filter(|v| !v.is_null()),
        });
    }
    Ok(OutTools {
        function_declarations: decls,
    })
}

fn tool_choice(tc: Option<&Value>) -> Result<Option<OutToolConfig<'_>>, ApiError> {
    let (mode, allowed) = match tc {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => ("AUTO", None),
            "required" => ("ANY", None),
            "none" => ("NONE", None),
            _ => return Err(unsupported("tool_choice".into(), "has an unknown value.")),
        },
        Some(v) => match (v["type"].as_str(), v["function"]["name"].as_str()) {
            (Some("function"), Some(name)) => ("ANY", Some([name])),
            _ => {
                return Err(unsupported(
                    "tool_choice".into(),
                    &format!("must be auto, required, none or a named function {WHO}"),
                ))
            }
        },
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
        _ => {
            return Err(unsupported(
                "response_format.type".into(),
                "must be text, json_object or json_schema.",
            ))
        }
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
