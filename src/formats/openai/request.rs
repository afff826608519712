//! Usage for OpenAI-style streams that pass through: the upstream is always asked for it.

use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};

const OPTION: &[u8] = br#""stream_options":{"include_usage":true},"#;

/// The request body with `stream_options.include_usage` set, so the upstream stream ends with
/// a usage chunk. Without `stream_options` in the body the field is spliced in after the
/// opening brace (no parse); otherwise the body is re-serialised. `None`: not a JSON object.
pub fn ask_for_usage(body: &[u8], has_options: bool) -> Option<Bytes> {
    if !has_options {
        let at = body.iter().position(|b| !b.is_ascii_whitespace())?;
        if body[at] != b'{' {
            return None;
        }
        let mut out = BytesMut::with_capacity(body.len() + OPTION.len());
        out.extend_from_slice(&body[..=at]);
        out.extend_from_slice(OPTION);
        out.extend_from_slice(&body[at + 1..]);
        return Some(out.freeze());
    }
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object_mut()?;
    match obj.get_mut("stream_options").and_then(Value::as_object_mut) {
        Some(o) => {
            o.insert("include_usage".into(), Value::Bool(true));
        }
        None => {
            obj.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    let mut body = String::with_capacity(body.len() + 48);
    crate::formats::write::value(&mut body, &v);
    Some(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(b: &Bytes) -> Value {
        serde_json::from_slice::<Value>(b).unwrap()["stream_options"]["include_usage"].clone()
    }

    #[test]
    fn splices_or_rewrites() {
        let b = ask_for_usage(br#" {"model":"m","stream":true}"#, false).unwrap();
        assert_eq!(asked(&b), true);
        assert!(b.starts_with(br#" {"stream_options""#));
        let b = ask_for_usage(
            br#"{"model":"m","stream_options":{"include_usage":false,"x":1}}"#,
            true,
        )
        .unwrap();
        assert_eq!(asked(&b), true);
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["stream_options"]["x"], 1);
        let b = ask_for_usage(br#"{"model":"m","stream_options":"bad"}"#, true).unwrap();
        assert_eq!(asked(&b), true);
        assert!(ask_for_usage(b"[1]", false).is_none());
    }
}
