//! Admission: read the body within the size limit, and find the `model` to route by without a
//! full parse (serde skips every other field and borrows the model in place).

use crate::error::ApiError;
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::ops::Range;

/// What routing needs from a request body.
#[derive(Debug)]
pub struct Probe {
    pub model: String,
    /// Byte range of the `model` value (with its quotes) in the body, for the override splice.
    pub model_span: Range<usize>,
}

pub fn probe(body: &[u8]) -> Result<Probe, ApiError> {
    #[derive(Deserialize)]
    struct Fields<'a> {
        #[serde(borrow)]
        model: Option<&'a RawValue>,
    }
    let fields: Fields<'_> = serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::bad_request("The request body must be a JSON object."),
            _ => ApiError::invalid_json(format!(
                "We could not parse the JSON body of your request: {e}"
            )),
        }
    })?;
    let raw = fields.model.ok_or_else(|| {
        ApiError::bad_request("You must provide a model parameter.").with_param("model")
    })?;
    let text = raw.get();
    let model: Cow<'_, str> = if text.starts_with('"') {
        serde_json::from_str(text).map_err(|_| ApiError::invalid_json("Invalid `model` string."))?
    } else {
        return Err(ApiError::bad_request("`model` must be a string.").with_param("model"));
    };
    if model.is_empty() {
        return Err(ApiError::bad_request("`model` must not be empty.").with_param("model"));
    }
    // RawValue borrows from `body`, so its offset is the pointer difference.
    let start = text.as_ptr() as usize - body.as_ptr() as usize;
    Ok(Probe {
        model: model.into_owned(),
        model_span: start..start + text.len(),
    })
}

/// The body with the `model` value replaced by `model`.
pub fn with_model(body: &Bytes, span: &Range<usize>, model: &str) -> Bytes {
    let quoted = serde_json::to_string(model).unwrap_or_else(|_| String::from("\"\""));
    let mut out = BytesMut::with_capacity(body.len() - span.len() + quoted.len());
    out.extend_from_slice(&body[..span.start]);
    out.extend_from_slice(quoted.as_bytes());
    out.extend_from_slice(&body[span.end..]);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_model_anywhere() {
        let b = br#"{"messages":[{"role":"user","content":"hi \"model\""}],"model":"gpt-4o","stream":true}"#;
        let p = probe(b).unwrap();
        assert_eq!(p.model, "gpt-4o");
        assert_eq!(&b[p.model_span.clone()], br#""gpt-4o""#);
    }

    #[test]
    fn escaped_model_is_decoded() {
        let p = probe(br#"{"model":"a\u0062c"}"#).unwrap();
        assert_eq!(p.model, "abc");
    }

    #[test]
    fn errors() {
        assert_eq!(
            probe(b"{").unwrap_err().code.as_deref(),
            Some("invalid_json")
        );
        assert_eq!(probe(b"[1]").unwrap_err().status, 400);
        assert_eq!(probe(b"{}").unwrap_err().param.as_deref(), Some("model"));
        assert_eq!(
            probe(br#"{"model":3}"#).unwrap_err().param.as_deref(),
            Some("model")
        );
        assert_eq!(
            probe(br#"{"model":""}"#).unwrap_err().param.as_deref(),
            Some("model")
        );
        assert!(probe(b"").is_err());
    }

    #[test]
    fn override_splices_only_the_value() {
        let body = Bytes::from_static(br#"{"model": "a", "x": "model"}"#);
        let p = probe(&body).unwrap();
        let out = with_model(&body, &p.model_span, "llama\"3");
        assert_eq!(&out[..], br#"{"model": "llama\"3", "x": "model"}"#);
    }
}
