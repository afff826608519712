//! What Google checks in a `GenerateContentRequest`, with its messages: JSON, known fields
//! (proto JSON takes both `camelCase` and `snake_case` names), `contents` present with roles
//! `user`/`model`, parts neither empty nor empty text. Bodies come back with camelCase keys.

use serde_json::{Map, Value};

const TOP: [&str; 9] = [
    "contents",
    "tools",
    "toolConfig",
    "safetySettings",
    "systemInstruction",
    "generationConfig",
    "cachedContent",
    "labels",
    "model",
];

const GENERATION: [&str; 24] = [
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "mediaResolution",
    "imageConfig",
    "routingConfig",
    "audioTimestamp",
    "modelSelectionConfig",
    "enableAffectiveDialog",
];

const PART: [&str; 12] = [
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "thought",
    "thoughtSignature",
    "executableCode",
    "codeExecutionResult",
    "videoMetadata",
    "mediaResolution",
    "partMetadata",
];

/// Values whose keys belong to the client (schemas, arguments), left as they are.
const OPAQUE: [&str; 8] = [
    "parametersJsonSchema",
    "parameters",
    "responseJsonSchema",
    "responseSchema",
    "args",
    "response",
    "labels",
    "metadata",
];

fn camel_key(k: &str) -> String {
    let mut out = String::with_capacity(k.len());
    let mut up = false;
    for c in k.chars() {
        match c {
            '_' => up = true,
            c if up => {
                out.extend(c.to_uppercase());
                up = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// Keys in camelCase, except inside values the client owns.
fn camel(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| {
                    let k = camel_key(&k);
                    let v = if OPAQUE.contains(&k.as_str()) {
                        v
                    } else {
                        camel(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(camel).collect()),
        v => v,
    }
}

fn unknown(o: &Map<String, Value>, known: &[&str], at: &str) -> Result<(), String> {
    match o.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) if at.is_empty() => Err(format!(
            "Invalid JSON payload received. Unknown name \"{k}\": Cannot find field."
        )),
        Some(k) => Err(format!(
            "Invalid JSON payload received. Unknown name \"{k}\" at '{at}': Cannot find field."
        )),
    }
}

fn parse(raw: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(raw)
        .map_err(|_| "Invalid JSON payload received. Unexpected token.".to_string())?;
    if !v.is_object() {
        return Err(
            "Invalid JSON payload received. Unknown name \"\": Root element must be a message."
                .into(),
        );
    }
    Ok(camel(v))
}

fn parts(parts: &Value, at: &str) -> Result<(), String> {
    let list = parts.as_array().filter(|p| !p.is_empty()).ok_or_else(|| {
        format!("* GenerateContentRequest.{at}.parts: contents.parts must not be empty.\n")
    })?;
    for (j, p) in list.iter().enumerate() {
        let o = p.as_object().ok_or_else(|| {
            format!("Invalid JSON payload received. Expected an object at '{at}.parts[{j}]'.")
        })?;
        unknown(o, &PART, &format!("{at}.parts[{j}]"))?;
        if o.get("text").is_some_and(|t| t.as_str() == Some("")) {
            return Err("Unable to submit request because it has an empty text parameter. Add a value to the parameter and try again.".into());
        }
    }
    Ok(())
}

fn request(body: &Value) -> Result<(), String> {
    let o = body.as_object().ok_or("Invalid JSON payload received.")?;
    unknown(o, &TOP, "")?;
    if let Some(g) = o.get("generationConfig").and_then(Value::as_object) {
        unknown(g, &GENERATION, "generation_config")?;
    }
    let contents = match o.get("contents").and_then(Value::as_array) {
        Some(c) if !c.is_empty() => c,
        _ => return Err("* GenerateContentRequest.contents: contents is not specified\n".into()),
    };
    for (i, c) in contents.iter().enumerate() {
        match c["role"].as_str() {
            None | Some("user" | "model") => {}
            Some(_) => return Err("Please use a valid role: user, model.".into()),
        }
        parts(&c["parts"], &format!("contents[{i}]"))?;
    }
    if let Some(sys) = o.get("systemInstruction") {
        parts(&sys["parts"], "system_instruction")?;
    }
    Ok(())
}

/// A `generateContent` / `streamGenerateContent` body.
pub(super) fn generate(raw: &[u8]) -> Result<Value, String> {
    let body = parse(raw)?;
    request(&body)?;
    Ok(body)
}

/// A `countTokens` body: `contents`, or a whole `generateContentRequest`.
pub(super) fn count(raw: &[u8]) -> Result<Value, String> {
    let body = parse(raw)?;
    if let Some(inner) = body.get("generateContentRequest") {
        request(inner)?;
        return Ok(inner.clone());
    }
    request(&body)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        generate(v.to_string().as_bytes()).unwrap_err()
    }

    #[test]
    fn checks_like_google() {
        assert!(generate(b"{").unwrap_err().contains("Invalid JSON"));
        assert!(generate(b"[]").is_err());
        assert!(err(json!({})).contains("contents is not specified"));
        assert!(
            err(json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}))
                .contains("valid role")
        );
        assert!(err(json!({"contents": [{"parts": []}]})).contains("must not be empty"));
        assert!(err(json!({"contents": [{"parts": [{"text": ""}]}]})).contains("empty text"));
        assert!(
            err(json!({"contents": [{"parts": [{"text": "x"}]}], "messages": []}))
                .contains("Unknown name \"messages\"")
        );
        assert!(err(json!({"contents": [{"parts": [{"text": "x"}]}],
            "generationConfig": {"max_tokens": 3}}))
        .contains("Unknown name \"maxTokens\" at 'generation_config'"));
    }

    #[test]
    fn snake_case_is_read_and_schemas_are_left_alone() {
        let v = generate(
            json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
                "generation_config": {"max_output_tokens": 5},
                "tools": [{"function_declarations": [{"name": "f",
                    "parameters_json_schema": {"properties": {"user_id": {"type": "string"}}}}]}]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(v["generationConfig"]["maxOutputTokens"], 5);
        let decl = &v["tools"][0]["functionDeclarations"][0];
        assert!(decl["parametersJsonSchema"]["properties"]["user_id"].is_object());
        let c = count(br#"{"generateContentRequest": {"contents": [{"parts": [{"text": "x"}]}]}}"#);
        assert!(c.unwrap()["contents"].is_array());
    }
}
