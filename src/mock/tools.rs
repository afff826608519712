//! Deterministic tool calls, one rule for both APIs: when the request offers tools, does not
//! forbid them, and the last turn is the user's own words (not tool results), the reply calls
//! the forced tool or the first one, plus the second in parallel when allowed.

use super::{reply, Obj};
use serde_json::{json, Map, Value};

pub struct Call {
    pub name: String,
    pub args: Value,
}

/// (name, JSON schema) of each offered tool.
type Offered<'a> = Vec<(&'a str, &'a Value)>;

fn choose(offered: Offered<'_>, forced: Option<&str>, parallel: bool, seed: u64) -> Vec<Call> {
    let picks: Vec<(&str, &Value)> = match forced {
        Some(name) => offered
            .into_iter()
            .filter(|(n, _)| *n == name)
            .take(1)
            .collect(),
        None => offered
            .into_iter()
            .take(if parallel { 2 } else { 1 })
            .collect(),
    };
    picks
        .into_iter()
        .enumerate()
        .map(|(i, (name, schema))| Call {
            name: name.to_string(),
            args: args(schema, seed.wrapping_add(i as u64)),
        })
        .collect()
}

/// Arguments from a JSON schema's properties: a word for strings, 42, true, else null.
pub fn args(schema: &Value, seed: u64) -> Value {
    let mut out = Map::new();
    let words = reply::words(seed, 8);
    for (i, (k, p)) in schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let v = match p["type"].as_str() {
            Some("string") => json!(words[i % words.len()].trim()),
            Some("number" | "integer") => json!(42),
            Some("boolean") => json!(true),
            _ => Value::Null,
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

pub fn openai_calls(req: &Value, seed: u64) -> Vec<Call> {
    let last = req["messages"].as_array().and_then(|m| m.last());
    if last.is_none_or(|m| m["role"] != "user") {
        return vec![];
    }
    let offered: Offered<'_> = req["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                t["function"]["name"].as_str()?,
                &t["function"]["parameters"],
            ))
        })
        .collect();
    let tc = &req["tool_choice"];
    if offered.is_empty() || tc == "none" {
        return vec![];
    }
    let forced = tc["function"]["name"].as_str();
    let parallel = req["parallel_tool_calls"] != json!(false);
    choose(offered, forced, parallel, seed)
}

/// The Responses API's calls: function tools are flat (`{type, name, parameters}`), and the
/// last input item must be the user's words (not a `function_call_output`).
pub fn responses_calls(req: &Value, seed: u64) -> Vec<Call> {
    let last = match &req["input"] {
        Value::Array(items) => items.last(),
        _ => None,
    };
    if last.is_some_and(|i| i["type"] == "function_call_output" || i["role"] == "assistant") {
        return vec![];
    }
    let offered: Offered<'_> = req["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["type"] == "function")
        .filter_map(|t| Some((t["name"].as_str()?, &t["parameters"])))
        .collect();
    let tc = &req["tool_choice"];
    if offered.is_empty() || tc == "none" {
        return vec![];
    }
    let forced = (tc["type"] == "function")
        .then(|| tc["name"].as_str())
        .flatten();
    let parallel = req["parallel_tool_calls"] != json!(false);
    choose(offered, forced, parallel, seed)
}

pub fn anthropic_calls(req: &Value, seed: u64) -> Vec<Call> {
    let last = req["messages"].as_array().and_then(|m| m.last());
    let Some(last) = last.filter(|m| m["role"] == "user") else {
        return vec![];
    };
    let only_results = last["content"]
        .as_array()
        .is_some_and(|c| !c.is_empty() && c.iter().all(|b| b["type"] == "tool_result"));
    let offered: Offered<'_> = req["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t["name"].as_str()?, &t["input_schema"])))
        .collect();
    let tc = &req["tool_choice"];
    if only_results || offered.is_empty() || tc["type"] == "none" {
        return vec![];
    }
    let forced = if tc["type"] == "tool" {
        tc["name"].as_str()
    } else {
        None
    };
    let parallel = tc["disable_parallel_tool_use"] != json!(true);
    choose(offered, forced, parallel, seed)
}

/// The JSON schema a request asks its reply to follow, in any of the mock's formats (chat,
/// Anthropic, Gemini, Responses; Bedrock's is a JSON string).
pub fn requested_schema(body: &Value) -> Option<Value> {
    let found = [
        &body["response_format"]["json_schema"]["schema"],
        &body["output_config"]["format"]["schema"],
        &body["generationConfig"]["responseJsonSchema"],
        &body["text"]["format"]["schema"],
    ]
    .into_iter()
    .find(|v| v.is_object());
    if let Some(v) = found {
        return Some(v.clone());
    }
    let bedrock = &body["outputConfig"]["textFormat"]["structure"]["jsonSchema"]["schema"];
    bedrock.as_str().and_then(|s| serde_json::from_str(s).ok())
}

/// A document valid for the requested schema's properties, in fragments as a model streams
/// it; else `words()`.
pub fn structured_or(body: &Value, seed: u64, words: impl FnOnce() -> Vec<String>) -> Vec<String> {
    match requested_schema(body) {
        Some(schema) => fragments(&args(&schema, seed).to_string()),
        None => words(),
    }
}

/// Output tokens the calls count as: about four characters a token.
pub fn tokens(calls: &[Call]) -> usize {
    calls
        .iter()
        .map(|c| (c.name.len() + c.args.to_string().len()).div_ceil(4))
        .sum()
}

/// `s` in two or three pieces, as providers stream argument fragments.
pub fn fragments(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let step = chars.len().div_ceil(3).max(1);
    chars.chunks(step).map(|c| c.iter().collect()).collect()
}

pub fn openai_id(seed: u64, i: usize) -> String {
    format!("call_mock{seed:012x}{i}")
}

/// The `tool_calls` of a whole message.
pub fn openai_message_calls(calls: &[Call], seed: u64) -> Vec<Obj> {
    calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            obj! {"id": openai_id(seed, i), "type": "function",
            "function": obj! {"name": c.name, "arguments": c.args.to_string()}}
        })
        .collect()
}

/// Streamed `tool_calls` items as OpenAI sends them, one per chunk: per call, a first fragment
/// with the index, id, type and name and empty arguments, then the arguments in pieces.
pub fn openai_stream_fragments(calls: &[Call], seed: u64) -> Vec<Obj> {
    let mut out = Vec::new();
    for (i, c) in calls.iter().enumerate() {
        out.push(
            obj! {"index": i, "id": openai_id(seed, i), "type": "function",
            "function": obj! {"name": c.name, "arguments": ""}},
        );
        for f in fragments(&c.args.to_string()) {
            out.push(obj! {"index": i, "function": obj! {"arguments": f}});
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> Value {
        json!({"type": "function", "function": {"name": name, "parameters": {"type": "object",
            "properties": {"s": {"type": "string"}, "n": {"type": "number"},
                "b": {"type": "boolean"}, "o": {"type": "object"}}}}})
    }

    fn names(calls: &[Call]) -> Vec<&str> {
        calls.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn openai_rule() {
        let user = json!([{"role": "user", "content": "hi"}]);
        let mut req = json!({"messages": user, "tools": [tool("a"), tool("b"), tool("c")]});
        assert_eq!(names(&openai_calls(&req, 1)), ["a", "b"]);
        let args = &openai_calls(&req, 1)[0].args;
        assert_eq!(
            (args["n"].clone(), args["b"].clone()),
            (json!(42), json!(true))
        );
        assert!(args["s"].is_string() && args["o"].is_null());
        assert_eq!(openai_calls(&req, 1)[0].args, openai_calls(&req, 1)[0].args);
        req["parallel_tool_calls"] = json!(false);
        assert_eq!(names(&openai_calls(&req, 1)), ["a"]);
        req["tool_choice"] = json!({"type": "function", "function": {"name": "c"}});
        assert_eq!(names(&openai_calls(&req, 1)), ["c"]);
        req["tool_choice"] = json!("none");
        assert!(openai_calls(&req, 1).is_empty());
        req["tool_choice"] = json!("auto");
        req["messages"] = json!([{"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": []}, {"role": "tool", "content": "7"}]);
        assert!(openai_calls(&req, 1).is_empty(), "after tool results: text");
    }

    #[test]
    fn anthropic_rule() {
        let schema = json!({"type": "object", "properties": {"x": {"type": "integer"}}});
        let mut req = json!({"messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "a", "input_schema": schema}, {"name": "b", "input_schema": schema}]});
        assert_eq!(names(&anthropic_calls(&req, 1)), ["a", "b"]);
        req["tool_choice"] = json!({"type": "tool", "name": "b"});
        assert_eq!(names(&anthropic_calls(&req, 1)), ["b"]);
        req["tool_choice"] = json!({"type": "any", "disable_parallel_tool_use": true});
        assert_eq!(names(&anthropic_calls(&req, 1)), ["a"]);
        req["tool_choice"] = json!({"type": "none"});
        assert!(anthropic_calls(&req, 1).is_empty());
        req["tool_choice"] = json!({"type": "auto"});
        req["messages"] = json!([{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t", "content": "7"}]}]);
        assert!(anthropic_calls(&req, 1).is_empty());
    }

    #[test]
    fn two_or_three_fragments_that_join_up() {
        for s in ["{}", "{\"a\":1}", "{\"city\":\"the gateway\"}"] {
            let f = fragments(s);
            assert!((2..=3).contains(&f.len()), "{s}: {f:?}");
            assert_eq!(f.concat(), s);
        }
    }
}
