//! Deterministic tool calls, one rule for every API: when the request offers tools, does not
//! forbid them, and the last turn is the user's own words (no tool result since the model last
//! spoke), the reply calls the forced tool or the first one, plus the second in parallel when
//! allowed, with arguments valid for the tool's schema. The user's words can name the call
//! instead: `mock:call NAME {JSON arguments}` calls the offered tool NAME (or one whose name
//! ends in `__NAME` or `.NAME`, as namespaced tools are flattened) with exactly those
//! arguments, and no tool at all when none is offered by that name.

use super::{reply, Obj};
use serde_json::{json, Map, Value};

pub struct Call {
    pub name: String,
    pub args: Value,
}

/// (name, JSON schema) of each offered tool.
type Offered<'a> = Vec<(&'a str, &'a Value)>;

fn choose(
    offered: Offered<'_>,
    forced: Option<&str>,
    parallel: bool,
    seed: u64,
    turn: &Value,
) -> Vec<Call> {
    if let Some((name, args)) = requested_call(turn) {
        let found = offered.iter().find(|(n, _)| named(n, &name));
        return found
            .map(|(n, _)| Call {
                name: n.to_string(),
                args,
            })
            .into_iter()
            .collect();
    }
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

/// Whether the offered tool `offered` is the one the user named.
fn named(offered: &str, name: &str) -> bool {
    offered == name
        || offered
            .strip_suffix(name)
            .is_some_and(|head| head.ends_with("__") || head.ends_with('.'))
}

const MARKER: &str = "mock:call ";

/// The call the user's words ask for (`mock:call NAME {JSON}`), in any text of `turn`.
pub fn requested_call(turn: &Value) -> Option<(String, Value)> {
    match turn {
        Value::String(s) => {
            let rest = &s[s.find(MARKER)? + MARKER.len()..];
            let rest = rest.trim_start();
            let end = rest.find(char::is_whitespace)?;
            let (name, json) = (&rest[..end], rest[end..].trim_start());
            let mut values = serde_json::Deserializer::from_str(json).into_iter::<Value>();
            match values.next() {
                Some(Ok(args)) if args.is_object() => Some((name.to_string(), args)),
                _ => None,
            }
        }
        Value::Array(a) => a.iter().find_map(requested_call),
        Value::Object(o) => o.values().find_map(requested_call),
        _ => None,
    }
}

/// Arguments for a tool's JSON schema: an object with every property, each valid for its
/// schema (see `value`).
pub fn args(schema: &Value, seed: u64) -> Value {
    match value(schema, seed, 0) {
        v @ Value::Object(_) => v,
        _ => Value::Object(Map::new()),
    }
}

/// A value valid for `schema`: `const` or a member of `enum` when given; else by `type` (the
/// first non-null one of a list; from `properties` or `items` when it is missing): a word for
/// strings, 42 for numbers (moved into `minimum`..`maximum`), true, an array of `minItems`
/// (at least one) items, an object with every property (nested ones included); the first
/// alternative of `anyOf`/`oneOf`/`allOf`.
fn value(schema: &Value, seed: u64, depth: usize) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(members) = schema["enum"].as_array().filter(|m| !m.is_empty()) {
        return members[(seed % members.len() as u64) as usize].clone();
    }
    for k in ["anyOf", "oneOf", "allOf"] {
        let alts = schema[k].as_array().into_iter().flatten();
        if let Some(alt) = alts.clone().find(|a| a["type"] != "null").or(alts.last()) {
            return value(alt, seed, depth + 1);
        }
    }
    let kind = match &schema["type"] {
        Value::String(t) => Some(t.as_str()),
        Value::Array(ts) => (ts.iter().filter_map(Value::as_str)).find(|t| *t != "null"),
        _ => None,
    };
    let kind = kind.or_else(|| {
        if schema.get("properties").is_some() {
            Some("object")
        } else if schema.get("items").is_some() {
            Some("array")
        } else {
            None
        }
    });
    match kind {
        Some("string") => {
            let w = reply::words(seed, 1).concat();
            let min = schema["minLength"].as_u64().unwrap_or(0) as usize;
            json!(format!("{w:x<min$}"))
        }
        Some("integer") => json!(number(schema, 42.0).round() as i64),
        // Whole numbers as integers (`42`, not `42.0`), as a model writes them.
        Some("number") => match number(schema, 42.0) {
            n if n.fract() == 0.0 && n.abs() < 1e15 => json!(n as i64),
            n => json!(n),
        },
        Some("boolean") => json!(true),
        Some("array") => {
            let n = schema["minItems"].as_u64().unwrap_or(1).max(1);
            let items = (0..n).map(|i| value(&schema["items"], seed.wrapping_add(i), depth + 1));
            Value::Array(items.collect())
        }
        Some("object") => {
            let mut out = Map::new();
            let props = schema["properties"].as_object().into_iter().flatten();
            for (i, (k, p)) in props.enumerate() {
                out.insert(k.clone(), value(p, seed.wrapping_add(i as u64), depth + 1));
            }
            Value::Object(out)
        }
        _ => Value::Null,
    }
}

/// `n` moved into the schema's bounds.
fn number(schema: &Value, n: f64) -> f64 {
    let n = schema["maximum"].as_f64().map_or(n, |max| n.min(max));
    schema["minimum"].as_f64().map_or(n, |min| n.max(min))
}

pub fn openai_calls(req: &Value, seed: u64) -> Vec<Call> {
    let messages = req["messages"].as_array().map_or(&[][..], Vec::as_slice);
    let Some(last) = messages.last().filter(|m| m["role"] == "user") else {
        return vec![];
    };
    // The turn since the model last spoke: tool results there (a user message may follow them)
    // are answered with text.
    let turn = messages
        .iter()
        .rev()
        .take_while(|m| m["role"] != "assistant");
    if turn.clone().any(|m| m["role"] == "tool") {
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
    choose(offered, forced, parallel, seed, &last["content"])
}

/// The Responses API's calls: function tools are flat (`{type, name, parameters}`), and the
/// last input item must be the user's words (not a `function_call_output`).
pub fn responses_calls(req: &Value, seed: u64) -> Vec<Call> {
    let items = req["input"].as_array().map_or(&[][..], Vec::as_slice);
    let spoke = |i: &&Value| i["role"] == "assistant" || i["type"] == "function_call";
    let mut turn = items.iter().rev().take_while(|i| !spoke(i));
    if items.last().is_some_and(|i| spoke(&i)) || turn.any(|i| i["type"] == "function_call_output")
    {
        return vec![];
    }
    let words = match (&req["input"], items.last()) {
        (Value::String(_), _) => &req["input"],
        (_, Some(last)) => &last["content"],
        (_, None) => &Value::Null,
    };
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
    choose(offered, forced, parallel, seed, words)
}

pub fn anthropic_calls(req: &Value, seed: u64) -> Vec<Call> {
    let last = req["messages"].as_array().and_then(|m| m.last());
    let Some(last) = last.filter(|m| m["role"] == "user") else {
        return vec![];
    };
    // Tool results answered, even with text after them in the same message.
    let results = last["content"]
        .as_array()
        .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_result"));
    let offered: Offered<'_> = req["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t["name"].as_str()?, &t["input_schema"])))
        .collect();
    let tc = &req["tool_choice"];
    if results || offered.is_empty() || tc["type"] == "none" {
        return vec![];
    }
    let forced = if tc["type"] == "tool" {
        tc["name"].as_str()
    } else {
        None
    };
    let parallel = tc["disable_parallel_tool_use"] != json!(true);
    choose(offered, forced, parallel, seed, &last["content"])
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
        assert!(args["s"].is_string() && args["o"] == json!({}));
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
