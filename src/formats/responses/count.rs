//! An estimate of a Responses request's input tokens (`/v1/responses/input_tokens` for a
//! backend that cannot count them): about four characters a token over the instructions, the
//! input's texts and arguments, and the tools' definitions, plus a few per item.

use crate::error::ApiError;
use serde_json::Value;

pub fn estimate(body: &[u8]) -> Result<u64, ApiError> {
    let req: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_json(format!("We could not parse the JSON body: {e}")))?;
    let mut chars = 0usize;
    let mut items = 0u64;
    if let Some(s) = req["instructions"].as_str() {
        chars += s.chars().count();
        items += 1;
    }
    match &req["input"] {
        Value::String(s) => {
            chars += s.chars().count();
            items += 1;
        }
        Value::Array(list) => {
            for item in list {
                texts(item, &mut chars);
                items += 1;
            }
        }
        _ => {}
    }
    if let Some(tools) = req.get("tools").filter(|t| !t.is_null()) {
        chars += tools.to_string().chars().count();
    }
    Ok(crate::formats::pivot::text_tokens(chars) + 3 * items)
}

/// Characters of the strings an input item holds (its text, arguments and outputs; not its
/// ids, types or roles).
fn texts(v: &Value, chars: &mut usize) {
    match v {
        Value::String(s) => *chars += s.chars().count(),
        Value::Array(a) => a.iter().for_each(|x| texts(x, chars)),
        Value::Object(o) => {
            for (k, x) in o {
                if !matches!(
                    k.as_str(),
                    "type" | "role" | "id" | "call_id" | "status" | "detail"
                ) {
                    texts(x, chars);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_texts_not_structure() {
        let plain = super::estimate(br#"{"model":"m","input":"abcdefgh"}"#).unwrap();
        assert_eq!(plain, 2 + 3);
        let items = super::estimate(
            br#"{"model":"m","instructions":"abcd","input":[{"role":"user","content":[{"type":"input_text","text":"abcdefgh"}]}]}"#,
        )
        .unwrap();
        assert_eq!(items, 3 + 6);
        assert!(super::estimate(b"{").is_err());
    }
}
