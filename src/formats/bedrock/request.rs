//! Requests from OpenAI chat clients to Bedrock's Converse API (`from_chat`), under the field
//! policy (`formats::fields`).
//!
//! Accepted and ignored: `user`, `parallel_tool_calls`, a tool's `strict`, an image's `detail`,
//! a message's `name`, and what the Anthropic translator also ignores (`store`, `metadata`,
//! `service_tier`, ...). `reasoning_effort` becomes Claude's `thinking` in
//! `additionalModelRequestFields`, with the Anthropic translator's budgets (Converse passes it
//! to the model as is); an assistant message's `thinking_blocks` (an Anthropic client's
//! signed thinking, through the pivot) become `reasoningContent` blocks while thinking is on,
//! and a history Claude would refuse with thinking on turns it off (`history`).
//! `tool_choice: "none"` has no Converse form: the tools are left out,
//! unless the history holds tool calls, which Bedrock only accepts with `toolConfig` present.

use super::messages::{self, cache_mark, cache_point, Turn};
use super::write::{Converse, Inference};
use super::WHO;
use crate::error::ApiError;
use crate::formats::fields::Fields;
use crate::formats::openai::types::{self as chat, ChatRequest};
use crate::formats::pivot::messages::no_turns;
use crate::formats::pivot::tools::{empty_object_schema, function_tools, ChatToolChoice};
use crate::formats::pivot::{self, claude_thinking};
use crate::formats::{RequestOptions, Translated};
use serde_json::{json, Map, Value};

/// An OpenAI chat request → a Converse request (the model goes in the URL), read from
/// the client's body or built by another client API's first hop.
pub fn from_chat(
    req: ChatRequest,
    opts: &RequestOptions<'_>,
    f: &Fields,
) -> Result<Translated, ApiError> {
    pivot::check_extras(&req.extra, &["top_k"], WHO, f)?;
    let msgs = req.messages.as_deref().unwrap_or_default();
    let (system, messages, tools_seen) = messages::convert(msgs, f)?;
    let max = req
        .max_completion_tokens
        .or(req.max_tokens)
        .or((opts.default_max_tokens > 0).then_some(u64::from(opts.default_max_tokens)));
    let mut model_fields = model_fields(&req, opts.model, max.unwrap_or(0), f)?;
    let messages = history(messages, &mut model_fields, f);
    if messages.is_empty() {
        return Err(no_turns());
    }
    let body = Converse {
        messages,
        system,
        inference: inference(&req, max),
        tool_config: tool_config(&req, tools_seen, f)?,
        output_config: output_format(req.response_format.as_ref(), f)?,
        model_fields,
    }
    .write();
    Ok(Translated::new(
        body,
        req.stream == Some(true),
        req.include_usage(),
    ))
}

/// The history as thinking allows it. With thinking on and a tool-use turn that does not start
/// with reasoning (`messages::thinking_fits`: a client that did not keep its thinking, or a
/// history from another provider), Claude would refuse the request: thinking is turned off for
/// it instead, and named as dropped (`reasoning_effort`, the pivot's name for Anthropic's
/// `thinking`). With thinking off, earlier reasoning is left out.
fn history<'a>(
    messages: Vec<Turn<'a>>,
    extra: &mut Map<String, Value>,
    f: &Fields,
) -> Vec<Turn<'a>> {
    if extra.contains_key("thinking") {
        if messages::thinking_fits(&messages) {
            return messages;
        }
        extra.remove("thinking");
        f.ignore("reasoning_effort");
    }
    messages::without_reasoning(messages)
}

/// Model-native fields Converse passes on: Claude's `thinking` (with the Anthropic
/// translator's budgets) and `top_k` (Claude's own name; Nova's `inferenceConfig.topK`).
fn model_fields(
    req: &ChatRequest,
    model: &str,
    max: u64,
    f: &Fields,
) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    if let Some(t) = claude_thinking(req.reasoning_effort.as_deref(), max, f)? {
        out.insert("thinking".into(), t);
    }
    if let Some(k) = pivot::top_k(&req.extra, WHO)? {
        if model.contains("anthropic.") {
            out.insert("top_k".into(), json!(k));
        } else if model.contains("amazon.nova") {
            out.insert("inferenceConfig".into(), json!({ "topK": k }));
        } else {
            f.unsupported(
                "top_k".into(),
                &format!("cannot be expressed for this model {WHO}"),
            )?;
        }
    }
    Ok(out)
}

fn inference(req: &ChatRequest, max: Option<u64>) -> Inference<'_> {
    Inference {
        max_tokens: max,
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req.stop.as_ref().map(chat::Stop::strs).unwrap_or_default(),
    }
}

fn tool_config(
    req: &ChatRequest,
    tools_seen: bool,
    fields: &Fields,
) -> Result<Option<Value>, ApiError> {
    let tools = req.tools.as_deref().unwrap_or_default();
    if tools.is_empty() {
        return Ok(None);
    }
    let mut specs = Vec::with_capacity(tools.len());
    for t in function_tools(tools, WHO, fields) {
        let t = t?;
        let cached = cache_mark(t.extra, &t.path, fields, &[])?;
        let schema = t.parameters.cloned().unwrap_or_else(empty_object_schema);
        let mut spec = json!({"name": t.name, "inputSchema": {"json": schema}});
        if let Some(d) = t.description {
            spec["description"] = json!(d);
        }
        specs.push(json!({ "toolSpec": spec }));
        if cached {
            specs.push(cache_point());
        }
    }
    let choice = match ChatToolChoice::read(req.tool_choice.as_ref(), WHO)? {
        None | Some(ChatToolChoice::Auto) => Some(json!({"auto": {}})),
        Some(ChatToolChoice::Required) => Some(json!({"any": {}})),
        Some(ChatToolChoice::Off) if tools_seen => None,
        Some(ChatToolChoice::Off) => return Ok(None),
        Some(ChatToolChoice::Function(name)) => Some(json!({"tool": {"name": name}})),
    };
    if specs.is_empty() {
        return Ok(None);
    }
    let mut tc = json!({ "tools": specs });
    if let Some(c) = choice {
        tc["toolChoice"] = c;
    }
    Ok(Some(tc))
}

/// `response_format` json_schema → `outputConfig.textFormat` (the schema as a string).
fn output_format(rf: Option<&Value>, f: &Fields) -> Result<Option<Value>, ApiError> {
    let Some(rf) = rf.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match rf["type"].as_str() {
        Some("text") => Ok(None),
        Some("json_schema") => {
            let s = &rf["json_schema"];
            let schema = s.get("schema").filter(|v| !v.is_null()).ok_or_else(|| {
                ApiError::bad_request("`response_format.json_schema.schema` is required.")
                    .with_param("response_format.json_schema.schema")
            })?;
            let mut js = json!({"schema": schema.to_string()});
            for k in ["name", "description"] {
                if let Some(v) = s.get(k).filter(|v| v.is_string()) {
                    js[k] = v.clone();
                }
            }
            Ok(Some(json!({"textFormat": {
                "type": "json_schema", "structure": {"jsonSchema": js}}})))
        }
        _ => f
            .unsupported(
                "response_format.type".into(),
                &format!("must be text or json_schema {WHO}"),
            )
            .map(|()| None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_support::{self, bytes_of, value_of, with_fields};
    use crate::formats::{translate_request, Format, MaxTokensField};

    /// The translator with its own field list, as `translate_request` runs it.
    fn from_chat(body: &[u8], opts: &RequestOptions<'_>) -> Result<Translated, ApiError> {
        with_fields(opts, |f| {
            super::from_chat(crate::formats::pivot::parse(body)?, opts, f)
        })
    }

    fn translate(body: Value) -> Result<Value, ApiError> {
        Ok(value_of(&from_chat(&bytes_of(&body), &OPTS)?.body))
    }

    const OPTS: RequestOptions<'static> = RequestOptions {
        model: "anthropic.claude-3-haiku",
        ..test_support::OPTS
    };

    #[test]
    fn top_k_and_tool_errors_reach_claude_on_bedrock() {
        let v = translate(json!({"top_k": 7, "messages": [
            {"role": "user", "content": "go"},
            {"role": "system", "content": "late system text"},
            {"role": "assistant", "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "a", "content": "boom", "is_error": true}],
            "tools": [{"type": "function", "function": {"name": "w"}}]}))
        .unwrap();
        assert_eq!(v["additionalModelRequestFields"]["top_k"], 7);
        assert_eq!(v["system"], json!([{"text": "late system text"}]));
        assert_eq!(
            v["messages"][2]["content"][0]["toolResult"]["status"],
            "error"
        );
        let nova = RequestOptions {
            model: "amazon.nova-pro-v1:0",
            ..OPTS
        };
        let t = from_chat(
            br#"{"top_k":3,"messages":[{"role":"user","content":"x"}]}"#,
            &nova,
        );
        let v = value_of(&t.unwrap().body);
        assert_eq!(
            v["additionalModelRequestFields"]["inferenceConfig"]["topK"],
            3
        );
        let llama = RequestOptions {
            model: "meta.llama3",
            ..OPTS
        };
        let e = from_chat(
            br#"{"top_k":3,"messages":[{"role":"user","content":"x"}]}"#,
            &llama,
        );
        assert_eq!(e.unwrap_err().param.as_deref(), Some("top_k"));
    }

    #[test]
    fn tool_results_join_one_user_turn_and_roles_alternate() {
        let v = translate(json!({"model": "m", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "w", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "b", "type": "function", "function": {"name": "w", "arguments": "{\"city\":\"Rome\"}"}}]},
            {"role": "tool", "tool_call_id": "a", "content": "{\"tempC\":18}"},
            {"role": "tool", "tool_call_id": "b", "content": "sunny"},
            {"role": "user", "content": "Thanks"}],
            "tools": [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}],
            "tool_choice": "none"}))
        .unwrap();
        assert_eq!(v["system"], json!([{"text": "Be brief."}]));
        let m = v["messages"].as_array().unwrap();
        let roles: Vec<&str> = m.iter().map(|t| t["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["user", "assistant", "user"]);
        assert_eq!(
            m[1]["content"][1]["toolUse"]["input"],
            json!({"city": "Rome"})
        );
        let results = m[2]["content"].as_array().unwrap();
        assert_eq!(
            results[0]["toolResult"]["content"],
            json!([{"json": {"tempC": 18}}])
        );
        assert_eq!(
            results[1]["toolResult"]["content"],
            json!([{"text": "sunny"}])
        );
        assert_eq!(results[2], json!({"text": "Thanks"}));
        // `none` with tool history keeps the tools (Bedrock requires them) without a choice.
        assert!(v["toolConfig"]["toolChoice"].is_null());
        assert_eq!(v["toolConfig"]["tools"][0]["toolSpec"]["name"], "w");
        assert_eq!(v["inferenceConfig"]["maxTokens"], 4096);
    }

    #[test]
    fn parameters_schema_and_thinking() {
        let v = translate(json!({"messages": [{"role": "user", "content": "x"}],
            "max_tokens": 2000, "temperature": 0.5, "top_p": 0.9, "stop": "END",
            "reasoning_effort": "low",
            "response_format": {"type": "json_schema", "json_schema": {"name": "r",
                "schema": {"type": "object"}}}}))
        .unwrap();
        assert_eq!(
            v["inferenceConfig"],
            json!({"maxTokens": 2000, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]})
        );
        let js = &v["outputConfig"]["textFormat"]["structure"]["jsonSchema"];
        assert_eq!(js["schema"], "{\"type\":\"object\"}");
        assert_eq!(js["name"], "r");
        assert_eq!(
            v["additionalModelRequestFields"]["thinking"],
            json!({"type": "enabled", "budget_tokens": 1024})
        );
    }

    #[test]
    fn cache_marks_become_cache_points() {
        let cc = json!({"type": "ephemeral"});
        let v = translate(json!({"messages": [
            {"role": "system", "content": "Long context.", "cache_control": cc},
            {"role": "user", "content": [{"type": "text", "text": "doc", "cache_control": cc},
                                         {"type": "text", "text": "question"}]}],
            "tools": [{"type": "function", "function": {"name": "w"}, "cache_control": cc}]}))
        .unwrap();
        let point = json!({"cachePoint": {"type": "default"}});
        assert_eq!(v["system"], json!([{"text": "Long context."}, point]));
        assert_eq!(
            v["messages"][0]["content"],
            json!([{"text": "doc"}, point, {"text": "question"}])
        );
        assert_eq!(v["toolConfig"]["tools"][1], point);
        // Through the pivot from an Anthropic client (anthropic's request tests: only for
        // Bedrock, which has cache points).
        let ant = br#"{"model":"m","max_tokens":9,"system":[{"type":"text","text":"S","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":[{"type":"text","text":"Q","cache_control":{"type":"ephemeral"}}]}]}"#;
        let opts = RequestOptions {
            model: "m",
            default_max_tokens: 0,
            max_tokens_field: MaxTokensField::MaxCompletionTokens,
            cache_points: true,
            fields: crate::formats::fields::FieldPolicy::DEFAULT,
        };
        let t = translate_request(Format::Anthropic, Format::Bedrock, ant, &opts).unwrap();
        let v = value_of(&t.body);
        assert_eq!(v["system"][1], point);
        assert_eq!(v["messages"][0]["content"][1], point);
    }

    #[test]
    fn what_converse_cannot_express_is_named() {
        let base = |extra: Value| {
            let mut b = json!({"messages": [{"role": "user", "content": "x"}]});
            b.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            translate(b).unwrap_err()
        };
        assert_eq!(base(json!({"n": 2})).param.as_deref(), Some("n"));
        // A reproducibility hint changes no reply's meaning: dropped and named.
        let t = from_chat(
            br#"{"messages":[{"role":"user","content":"x"}],"seed":1}"#,
            &OPTS,
        );
        assert_eq!(t.unwrap().dropped, ["seed"]);
        let e = base(json!({"response_format": {"type": "json_object"}}));
        assert_eq!(e.param.as_deref(), Some("response_format.type"));
        let e = translate(json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}))
        .unwrap_err();
        assert_eq!(
            e.param.as_deref(),
            Some("messages[0].content[0].image_url.url")
        );
        let v = translate(json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}))
        .unwrap();
        assert_eq!(
            v["messages"][0]["content"][0],
            json!({"image": {"format": "png", "source": {"bytes": "AAAA"}}})
        );
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod thinking_tests;
