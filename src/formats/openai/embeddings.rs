//! OpenAI's `/v1/embeddings`, the shape clients speak when the backend embeds in another API
//! (Gemini, Vertex, Bedrock): the request read into plain inputs, the reply written back as
//! floats or, when asked, base64 of little-endian `f32`s (what the `openai` SDK sends by default).

use crate::error::ApiError;
use crate::formats::fields::{unsupported, FieldPolicy, Fields};
use crate::formats::pivot::parse as parse_json;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt::Write as _;

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    input: Input<'a>,
    #[serde(default)]
    encoding_format: Option<Cow<'a, str>>,
    #[serde(default)]
    dimensions: Option<u32>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Input<'a> {
    One(#[serde(borrow)] Cow<'a, str>),
    Many(#[serde(borrow)] Vec<Cow<'a, str>>),
    /// Token ids (one list or several): only OpenAI's own tokenizer can read them.
    Tokens(serde::de::IgnoredAny),
}

/// An embeddings request reduced to what every provider can express.
#[derive(Debug)]
pub struct EmbeddingRequest<'a> {
    pub inputs: Vec<Cow<'a, str>>,
    /// `encoding_format: "base64"`.
    pub base64: bool,
    pub dimensions: Option<u32>,
    /// Fields dropped under the field policy, by name.
    pub dropped: Vec<String>,
}

impl EmbeddingRequest<'_> {
    /// Characters of input, for a token estimate when the provider reports none.
    pub fn chars(&self) -> usize {
        self.inputs.iter().map(|s| s.len()).sum()
    }
}

/// Reads a client's embeddings request. Token-id inputs are a 400 naming the field, unknown
/// fields go by the field policy; `model` and `user` are the gateway's business, not the
/// provider's.
pub fn parse(body: &[u8], policy: FieldPolicy) -> Result<EmbeddingRequest<'_>, ApiError> {
    let mut w: Wire<'_> = parse_json(body)?;
    w.extra.remove("model");
    w.extra.remove("user");
    let f = Fields::new(policy);
    f.unknown(&w.extra, "")?;
    let inputs = match w.input {
        Input::One(s) => vec![s],
        Input::Many(v) => v,
        Input::Tokens(_) => {
            return Err(unsupported(
                "input".into(),
                "must be a string or an array of strings when this model is served by another API (token ids are OpenAI's).",
            ))
        }
    };
    if inputs.is_empty() || inputs.iter().any(|s| s.is_empty()) {
        return Err(ApiError::bad_request("`input` must not be empty.").with_param("input"));
    }
    let base64 = match w.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return Err(
                ApiError::bad_request("`encoding_format` must be `float` or `base64`.")
                    .with_param("encoding_format"),
            )
        }
    };
    Ok(EmbeddingRequest {
        inputs,
        base64,
        dimensions: w.dimensions,
        dropped: f.take(),
    })
}

/// Writes OpenAI's embeddings list for `vectors` (one per input, in order).
pub fn response(
    vectors: &[Vec<f32>],
    prompt_tokens: u64,
    client_model: &str,
    base64: bool,
) -> Vec<u8> {
    let floats: usize = vectors.iter().map(Vec::len).sum();
    let mut out = String::with_capacity(128 + floats * if base64 { 6 } else { 12 });
    out.push_str("{\"object\":\"list\",\"data\":[");
    for (i, v) in vectors.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"object\":\"embedding\",\"index\":{i},\"embedding\":"
        );
        if base64 {
            let mut bytes = Vec::with_capacity(v.len() * 4);
            for f in v {
                bytes.extend_from_slice(&f.to_le_bytes());
            }
            out.push('"');
            base64::engine::general_purpose::STANDARD.encode_string(&bytes, &mut out);
            out.push('"');
        } else {
            out.push('[');
            for (j, f) in v.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                // JSON has no NaN or infinity; a provider never sends them, but stay valid.
                let f = if f.is_finite() { *f } else { 0.0 };
                let start = out.len();
                let _ = write!(out, "{f}");
                // Whole numbers print as `1`; keep them floats for typed clients.
                if !out[start..].contains(['.', 'e']) {
                    out.push_str(".0");
                }
            }
            out.push(']');
        }
        out.push('}');
    }
    out.push_str("],\"model\":");
    out.push_str(&serde_json::to_string(client_model).unwrap_or_else(|_| "\"\"".into()));
    let _ = write!(
        out,
        ",\"usage\":{{\"prompt_tokens\":{prompt_tokens},\"total_tokens\":{prompt_tokens}}}}}"
    );
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_or_many_inputs() {
        let r = parse(
            br#"{"model":"m","input":"hi","user":"u"}"#,
            crate::formats::fields::FieldPolicy::DEFAULT,
        )
        .unwrap();
        assert_eq!(r.inputs, vec!["hi"]);
        assert!(!r.base64);
        let r = parse(
            br#"{"input":["a","b"],"encoding_format":"base64","dimensions":4}"#,
            crate::formats::fields::FieldPolicy::DEFAULT,
        )
        .unwrap();
        assert_eq!((r.inputs.len(), r.base64, r.dimensions), (2, true, Some(4)));
        assert_eq!(r.chars(), 2);
    }

    #[test]
    fn rejects_what_other_apis_cannot_take() {
        let e = parse(
            br#"{"input":[1,2,3]}"#,
            crate::formats::fields::FieldPolicy::DEFAULT,
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input"));
        let e = parse(
            br#"{"input":"a","encoding_format":"int8"}"#,
            crate::formats::fields::FieldPolicy::DEFAULT,
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("encoding_format"));
        let r = parse(
            br#"{"input":"a","extra_thing":1}"#,
            crate::formats::fields::FieldPolicy::DEFAULT,
        )
        .unwrap();
        assert_eq!(r.dropped, ["extra_thing"]);
        assert!(parse(
            br#"{"input":[]}"#,
            crate::formats::fields::FieldPolicy::DEFAULT
        )
        .is_err());
        assert!(parse(b"{", crate::formats::fields::FieldPolicy::DEFAULT).is_err());
    }

    #[test]
    fn writes_floats_and_base64() {
        let v = vec![vec![0.5f32, -1.0], vec![0.25]];
        let out: Value = serde_json::from_slice(&response(&v, 7, "emb", false)).unwrap();
        assert_eq!(out["data"][0]["embedding"], serde_json::json!([0.5, -1.0]));
        assert_eq!(out["data"][1]["index"], 1);
        assert_eq!(out["usage"]["prompt_tokens"], 7);
        assert_eq!(out["model"], "emb");
        let out: Value = serde_json::from_slice(&response(&v, 7, "emb", true)).unwrap();
        let b = base64::engine::general_purpose::STANDARD
            .decode(out["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        assert_eq!(b, [0.5f32.to_le_bytes(), (-1.0f32).to_le_bytes()].concat());
    }
}
