//! Embeddings: AI Studio's `batchEmbedContents` and `embedContent`, Vertex AI's `predict`.
//! Vectors are derived from a hash of the text (unit length, `outputDimensionality` or 8
//! values), so the same text always embeds the same.

use super::super::{raw, reply};
use serde_json::value::RawValue;
use serde_json::Value;

const DEFAULT_DIMS: u64 = 8;

fn parse(raw: &[u8]) -> Result<Value, String> {
    serde_json::from_slice::<Value>(raw)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| "Invalid JSON payload received. Unexpected token.".to_string())
}

fn dims(v: &Value, at: &str) -> Result<usize, String> {
    match v {
        Value::Null => Ok(DEFAULT_DIMS as usize),
        v => match v.as_u64() {
            Some(n @ 1..=3072) => Ok(n as usize),
            _ => Err(format!(
                "* {at}: outputDimensionality must be between 1 and 3072.\n"
            )),
        },
    }
}

/// The text of a `Content` (its parts' text joined).
fn text_of(content: &Value, at: &str) -> Result<String, String> {
    let parts = content["parts"].as_array().filter(|p| !p.is_empty());
    let parts = parts
        .ok_or_else(|| format!("* {at}.content.parts: contents.parts must not be empty.\n"))?;
    Ok(parts.iter().filter_map(|p| p["text"].as_str()).collect())
}

fn values(text: &str, dims: usize) -> Box<RawValue> {
    raw(&reply::embedding(text.as_bytes(), dims))
}

/// `batchEmbedContents`: every request names the URL's model (`models/{model}`).
pub(super) fn batch(body: &[u8], model: &str) -> Result<Box<RawValue>, String> {
    let v = parse(body)?;
    let requests = v["requests"]
        .as_array()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            "* BatchEmbedContentsRequest.requests: requests is not specified\n".to_string()
        })?;
    let want = format!("models/{model}");
    let mut out = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let at = format!("BatchEmbedContentsRequest.requests[{i}]");
        if r["model"].as_str() != Some(want.as_str()) {
            return Err(format!(
                "* {at}.model: model must be the same as the batch request's model ({want}).\n"
            ));
        }
        let text = text_of(&r["content"], &at)?;
        let n = dims(output_dims(r), &at)?;
        out.push(obj! {"values": values(&text, n)});
    }
    Ok(raw(&obj! {"embeddings": out}))
}

fn output_dims(v: &Value) -> &Value {
    v.get("outputDimensionality")
        .or_else(|| v.get("output_dimensionality"))
        .unwrap_or(&Value::Null)
}

/// `embedContent`: one content.
pub(super) fn single(body: &[u8]) -> Result<Box<RawValue>, String> {
    let v = parse(body)?;
    let at = "EmbedContentRequest";
    let text = text_of(&v["content"], at)?;
    let n = dims(output_dims(&v), at)?;
    Ok(raw(&obj! {"embedding": obj! {"values": values(&text, n)}}))
}

/// Vertex `predict`: `instances[].content`, `parameters.outputDimensionality`; each
/// prediction reports its token count.
pub(super) fn predict(body: &[u8]) -> Result<Box<RawValue>, String> {
    let v = parse(body)?;
    let instances = v["instances"].as_array().filter(|i| !i.is_empty());
    let instances =
        instances.ok_or_else(|| "Invalid instances: instances must not be empty.".to_string())?;
    let n = dims(output_dims(&v["parameters"]), "parameters")?;
    let mut chars = 0;
    let mut out = Vec::with_capacity(instances.len());
    for i in instances {
        let Some(text) = i["content"].as_str() else {
            return Err("Invalid instance: content must be a string.".into());
        };
        chars += text.chars().filter(|c| !c.is_whitespace()).count();
        let tokens = reply::prompt_tokens(text.len(), 0) - 3;
        let stats = obj! {"truncated": false, "token_count": tokens};
        out.push(obj! {"embeddings": obj! {"statistics": stats, "values": values(text, n)}});
    }
    Ok(raw(
        &obj! {"predictions": out, "metadata": obj! {"billableCharacterCount": chars}},
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(b: Result<Box<RawValue>, String>) -> Value {
        serde_json::from_str(b.unwrap().get()).unwrap()
    }

    #[test]
    fn shapes() {
        let b = br#"{"requests":[{"model":"models/e","content":{"parts":[{"text":"hi"}]},"outputDimensionality":4},
            {"model":"models/e","content":{"parts":[{"text":"hi"}]}}]}"#;
        let out = v(batch(b, "e"));
        assert_eq!(out["embeddings"][0]["values"].as_array().unwrap().len(), 4);
        assert_eq!(out["embeddings"][1]["values"].as_array().unwrap().len(), 8);
        assert!(batch(b, "other").unwrap_err().contains("model"));
        let out = v(predict(
            br#"{"instances":[{"content":"hello there"}],"parameters":{"outputDimensionality":3}}"#,
        ));
        let e = &out["predictions"][0]["embeddings"];
        assert_eq!(e["values"].as_array().unwrap().len(), 3);
        assert_eq!(e["statistics"]["token_count"], 3);
        assert_eq!(out["metadata"]["billableCharacterCount"], 10);
        assert!(single(br#"{"content":{"parts":[]}}"#).is_err());
        assert!(predict(br#"{"instances":[]}"#).is_err());
        assert!(batch(b"{", "e").is_err());
    }
}
