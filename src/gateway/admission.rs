//! Admission: find the `model` to route by without a full parse (serde skips every other field
//! and borrows the model in place), and splice a target's model override into the body.

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
    pub stream: bool,
    /// `stream_options` is present (`include_usage` says whether usage was asked for).
    pub has_stream_options: bool,
    /// OpenAI's `stream_options.include_usage`.
    pub include_usage: bool,
    /// The output cap the client set (`max_tokens`, `max_completion_tokens`,
    /// `max_output_tokens`), for the limits' reservation.
    pub max_tokens: Option<u64>,
}

pub fn probe(body: &[u8]) -> Result<Probe, ApiError> {
    #[derive(Deserialize)]
    struct Options {
        include_usage: Option<bool>,
    }
    #[derive(Deserialize)]
    struct Fields<'a> {
        #[serde(borrow)]
        model: Option<&'a RawValue>,
        // Raw, so a wrongly typed value is left for the provider's or translator's own error.
        #[serde(borrow)]
        stream: Option<&'a RawValue>,
        #[serde(borrow)]
        stream_options: Option<&'a RawValue>,
        #[serde(borrow)]
        max_tokens: Option<&'a RawValue>,
        #[serde(borrow)]
        max_completion_tokens: Option<&'a RawValue>,
        #[serde(borrow)]
        max_output_tokens: Option<&'a RawValue>,
    }
    let number = |v: Option<&RawValue>| v.and_then(|v| v.get().parse::<u64>().ok());
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
        stream: fields.stream.is_some_and(|v| v.get() == "true"),
        has_stream_options: fields.stream_options.is_some_and(|v| v.get() != "null"),
        include_usage: fields
            .stream_options
            .and_then(|o| serde_json::from_str::<Options>(o.get()).ok())
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        max_tokens: number(fields.max_completion_tokens)
            .or(number(fields.max_tokens))
            .or(number(fields.max_output_tokens)),
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
    fn reads_stream_usage_and_output_cap_leniently() {
        let p = probe(br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":50}"#).unwrap();
        assert!(p.stream && p.has_stream_options && p.include_usage);
        assert_eq!(p.max_tokens, Some(50));
        let p = probe(br#"{"model":"m","stream":"yes","stream_options":{},"max_completion_tokens":7,"max_tokens":9}"#).unwrap();
        assert!(!p.stream && p.has_stream_options && !p.include_usage);
        assert_eq!(p.max_tokens, Some(7));
        let p = probe(br#"{"model":"m","stream_options":null,"max_tokens":-1}"#).unwrap();
        assert!(!p.has_stream_options);
        assert_eq!(p.max_tokens, None);
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
